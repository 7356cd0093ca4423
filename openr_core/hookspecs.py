"""The plugin hooks. Each ``register_*`` hook receives a ``register`` callback.

A plugin module (named by an entry point in group ``openr``) implements any of them::

    from openr_core import hookimpl

    @hookimpl
    def register_generators(register):
        register("echo", "my_plugin.echo:EchoGenerator", doc="Repeats the prompt.")

``register(name, target, doc=None)``: ``target`` is a class or a lazy ``"module:Class"``
string, imported only when the component is used, so listing and validating stay cheap.
``doc`` is the one-line description ``openr ls`` shows (default: the class docstring).
Every hook is documented in docs/plugins.md.
"""

import pluggy

PROJECT = "openr"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_generators(register):
    """Register Generator implementations (called once when plugins load)."""


@hookspec
def register_reward_models(register):
    """Register RewardModel implementations (called once when plugins load)."""


@hookspec
def register_labelers(register):
    """Register Labeler implementations (called once when plugins load)."""


@hookspec
def register_searchers(register):
    """Register Searcher implementations (called once when plugins load)."""


@hookspec
def register_trainers(register):
    """Register Trainer implementations (called once when plugins load)."""


@hookspec
def register_tasks(register):
    """Register Task implementations (called once when plugins load)."""


@hookspec
def register_launchers(register):
    """Register Launcher implementations: where a job's batches run (``local`` and ``ray`` are built in)."""


@hookspec
def register_commands(cli):
    """Add click commands to the ``openr`` group ``cli`` (called when the CLI starts)."""
