"""openr_core: value types, component interfaces, plugin hooks, registry, configs and CLI.

Importing it stays light (no torch, no vllm); plugins load on first use.
"""

from openr_core.errors import ConfigError, DataError, OpenrError, PluginError, RegistryError
from openr_core.hookspecs import hookimpl
from openr_core.interfaces import Component, Generator, Labeler, RewardModel, Searcher, Task, Trainer
from openr_core.plugins import get_plugins
from openr_core.types import (
    Budget,
    Completion,
    GenerationRequest,
    GenerationResult,
    Grade,
    LabelledExample,
    Problem,
    SamplingParams,
    ScoreRequest,
    SearchResult,
    Solution,
    Step,
    StepScores,
)


def get_component(kind: str, name: str, **config):
    """Build a registered component by config key and name, e.g. ``get_component("task", "arith")``."""
    from openr_core.config import Where, structure

    entry = get_plugins().entry(kind, name)
    cls = entry.load()
    return cls(structure(cls.Config, config, Where(f"<{kind} {name}>"), get_plugins()))


__all__ = [
    "Budget", "Completion", "Component", "ConfigError", "DataError", "GenerationRequest",
    "GenerationResult", "Generator", "Grade", "Labeler", "LabelledExample", "OpenrError",
    "PluginError", "Problem", "RegistryError", "RewardModel", "SamplingParams", "ScoreRequest",
    "SearchResult", "Searcher", "Solution", "Step", "StepScores", "Task", "Trainer",
    "get_component", "get_plugins", "hookimpl",
]
