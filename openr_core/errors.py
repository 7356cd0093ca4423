"""The errors openr raises on purpose. The CLI prints them as one line (no traceback without --debug)."""


class OpenrError(Exception):
    """Base class: anything the user can fix from the message alone."""


class ConfigError(OpenrError):
    """A config file or override is wrong: names the file, the path inside it and what is allowed."""


class RegistryError(OpenrError):
    """A component name is unknown, registered twice, or its target cannot be loaded."""


class UnknownComponentError(RegistryError, KeyError):
    """No component of that kind has that name."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


class DuplicateComponentError(RegistryError):
    """Two distributions register the same name for the same kind."""


class PluginError(OpenrError):
    """A plugin failed to import or one of its hooks failed."""


class DataError(OpenrError):
    """Input data (a dataset file, a record, a model folder) is malformed."""


class OutputError(OpenrError):
    """Results cannot be written (disk full, read-only folder, no permission): names the file.
    What was written before stays whole, so running the same command again resumes."""
