"""Shared fixtures for the Q3a tests: paths to the real and demo data."""

from pathlib import Path

import pytest

Q3A = Path(__file__).resolve().parents[1]
REPO = Q3A.parent

REAL_ARTICLES = REPO.parent / "shared" / "data" / "hk01" / "articles.csv"


@pytest.fixture
def real_articles_path() -> Path:
    if not REAL_ARTICLES.parent.exists():
        pytest.skip(f"real HK01 data folder {REAL_ARTICLES.parent} is absent")
    return REAL_ARTICLES


@pytest.fixture
def demo_train_path() -> Path:
    return Q3A / "demo" / "demo_train.csv"


@pytest.fixture
def demo_test_path() -> Path:
    return Q3A / "demo" / "demo_test.csv"


@pytest.fixture
def q3a_dir() -> Path:
    return Q3A


@pytest.fixture
def write_csv():
    """Function writing ``text`` to ``path`` in ``encoding`` (default UTF-8) and returning the path."""

    def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
        path.write_bytes(text.encode(encoding))
        return path

    return write
