"""Q1 test fixtures: one embedded PostgreSQL per session, a fresh table name per test."""

import uuid
from pathlib import Path

import psycopg2
import pytest

from pg_server import embedded_server

TESTS_DIR = Path(__file__).resolve().parent


@pytest.fixture(scope="session")
def pg_dsn():
    """URI of a temporary embedded PostgreSQL shared by all Q1 tests (started once, stopped at the end)."""
    with embedded_server() as uri:
        yield uri


@pytest.fixture
def conn(pg_dsn):
    connection = psycopg2.connect(pg_dsn)
    yield connection
    connection.rollback()
    connection.close()


@pytest.fixture
def table_name():
    """A table name no other test uses, so tests never see each other's rows."""
    return f"events_{uuid.uuid4().hex[:12]}"
