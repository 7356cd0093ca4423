"""Fixtures for the openr-math tests: where the real data is, and a shared grader."""

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]  # tests -> math -> plugins -> repo


def shared_data_dir() -> Path:
    """``$OPENR_SHARED_DATA``, else ``<repo>/../shared/data``."""
    env = os.environ.get("OPENR_SHARED_DATA")
    return Path(env).expanduser() if env else REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real benchmark data; tests using it skip (with the reason) when it is absent."""
    path = shared_data_dir()
    if not path.is_dir():
        pytest.skip(f"shared data folder not found at {path} (set OPENR_SHARED_DATA to its location)")
    return path


@pytest.fixture(scope="session")
def grader():
    from openr_math.grader import Grader

    return Grader(timeout=5.0)
