"""Q2 test fixtures: the real log samples in ../shared (modules are on sys.path via pyproject.toml)."""

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent

SHARED_LOGS = HERE.parents[2] / "shared" / "data" / "logs"


@pytest.fixture
def shared_logs() -> Path:
    """The real log samples in <repo>/../shared/data/logs (skips when that folder is absent)."""
    if not SHARED_LOGS.is_dir():
        pytest.skip(f"real log samples not found at {SHARED_LOGS}")
    return SHARED_LOGS
