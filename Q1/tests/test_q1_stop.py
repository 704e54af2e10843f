"""Stopping: a signal cancels the running statement on the server, --timeout is one line, abandoned servers go."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import psycopg2
import pytest

import sql as q1_cli
from pg_server import APPLICATION_NAME, remove_abandoned_servers
from q1_testing import events_frame, load_events

pytestmark = pytest.mark.slow  # every test here runs on the embedded PostgreSQL

Q1_DIR = Path(__file__).resolve().parents[1]
ROWS = events_frame([(f"2017-04-0{1 + i % 3} 10:00:00", f"u{i % 7}", "FIRST_INSTALL") for i in range(60)])


@pytest.fixture
def slow_view(conn, table_name):
    """A view over 60 events that sleeps 0.5 s per row read: the cohort query on it runs for tens of seconds."""
    load_events(conn, table_name, ROWS)
    with conn.cursor() as cur:
        cur.execute(
            f'CREATE VIEW "{table_name}_slow" AS SELECT e.time, e.uid, e.event_name '
            f'FROM "{table_name}" AS e CROSS JOIN LATERAL (SELECT pg_sleep(0.5)) AS pause'
        )
    conn.commit()
    return f"{table_name}_slow"


def _our_queries(conn, view):
    with conn.cursor() as cur:
        cur.execute(
            "SELECT pid, state FROM pg_stat_activity WHERE application_name = %s AND query LIKE %s AND pid <> "
            "pg_backend_pid()",
            (APPLICATION_NAME, f"%{view}%"),
        )
        rows = cur.fetchall()
    conn.rollback()
    return rows


def _wait_for(predicate, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_cancels_the_query_on_the_server(pg_dsn, conn, slow_view, signum):
    run = subprocess.Popen(
        [sys.executable, str(Q1_DIR / "sql.py"), "--dsn", pg_dsn, "--no-seed", "--table", slow_view],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert _wait_for(lambda: any(state == "active" for _, state in _our_queries(conn, slow_view)), 30)
        sent = time.monotonic()
        run.send_signal(signum)
        out, err = run.communicate(timeout=15)
    finally:
        run.kill()
    assert time.monotonic() - sent < 10  # the query would have run for 30 s more
    assert run.returncode == 128 + signum
    assert out == "" and "Traceback" not in err
    name = signal.Signals(signum).name
    assert err.strip().splitlines()[-1] == f"stopped by {name}: the running query was cancelled on the server"
    assert _wait_for(lambda: not _our_queries(conn, slow_view), 5)


def test_timeout_is_one_line_exit_2(pg_dsn, conn, slow_view, capsys):
    started = time.monotonic()
    code = q1_cli.main(["--dsn", pg_dsn, "--no-seed", "--table", slow_view, "--timeout", "1"])
    assert time.monotonic() - started < 10
    captured = capsys.readouterr()
    assert code == 2 and captured.out == "" and "Traceback" not in captured.err
    assert captured.err.strip().splitlines()[-1] == (
        "error: the query ran longer than --timeout 1 s and was cancelled on the server; "
        "raise --timeout, or see the index hint above"
    )
    assert _wait_for(lambda: not _our_queries(conn, slow_view), 5)


def test_server_of_a_killed_run_is_removed_by_the_next(tmp_path):
    script = "from pg_server import embedded_server\nwith embedded_server() as uri:\n    print(uri, flush=True)\n"
    script += "    import time; time.sleep(300)\n"
    env = {**os.environ, "PYTHONPATH": str(Q1_DIR)}
    run = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env)
    try:
        uri = run.stdout.readline().strip()
        pgdata = Path(psycopg2.extensions.parse_dsn(uri)["host"])
        postmaster = psutil.Process(int((pgdata / "postmaster.pid").read_text().split()[0]))
    finally:
        run.kill()  # SIGKILL: no cleanup runs
        run.wait()
    assert postmaster.is_running() and pgdata.exists()  # left behind, as a killed run leaves it
    removed = remove_abandoned_servers()
    assert pgdata.parent in removed and not pgdata.parent.exists()
    assert _wait_for(lambda: not postmaster.is_running() or postmaster.status() == psutil.STATUS_ZOMBIE, 10)
