"""Puts Q2/ (the modules under test) and Q2/tests/ (the reference implementation) on sys.path."""
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
for folder in (HERE.parent, HERE):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

SHARED_LOGS = HERE.parents[2] / "shared" / "data" / "logs"


@pytest.fixture
def shared_logs() -> Path:
    """The real log samples in <repo>/../shared/data/logs (skips when that folder is absent)."""
    if not SHARED_LOGS.is_dir():
        pytest.skip(f"real log samples not found at {SHARED_LOGS}")
    return SHARED_LOGS
