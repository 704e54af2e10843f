"""Q1 benchmark: the cohort query on an indexed and an unindexed events table, the previous query form, and the
weekly report, measured side by side in one run on one server; writes its section of Q1/RESULTS.md.

    make bench-q1                                   # 10M events (about a minute to seed)
    make bench-q1 ARGS="--events 1000000"           # quick

Without --dsn/DATABASE_URL/PG* it uses the embedded PostgreSQL (temporary, fsync off: see pg_server.py). The
previous form (a correlated EXISTS per cohort user) costs cohort size x table size without indexes, so on the
unindexed table it is timed in full at --small-events, and at full size only up to --previous-timeout seconds.
Not a test: timings on a shared machine are noisy, so read the ratios, measured minutes apart on the same server.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psycopg2.errors
from psycopg2 import sql

from event_generator import app_events
from pg_server import open_connection
from retention import RetentionQuery, cohort_retention, index_statements, retention_table
from seed import seed_events, vacuum_analyze

Q1_DIR = Path(__file__).resolve().parents[1]
SECTION = "bench_retention"

# The cohort query as it was before the set-based form (cohort 2017-04-01 UTC, window 04-02..04-08): the EXISTS in
# the select list is a correlated SubPlan, run once per cohort user.
PREVIOUS_QUERY = """WITH cohort AS (
    SELECT i.uid, min(i.time) AS installed_at
    FROM {table} AS i
    WHERE i.event_name = 'FIRST_INSTALL' AND i.uid IS NOT NULL
      AND i.time >= '2017-04-01' AND i.time < '2017-04-02'
      AND NOT EXISTS (
          SELECT 1 FROM {table} AS earlier
          WHERE earlier.uid = i.uid AND earlier.event_name = 'FIRST_INSTALL' AND earlier.time < '2017-04-01')
    GROUP BY i.uid
    ORDER BY i.uid
),
member AS (
    SELECT c.uid, EXISTS (
        SELECT 1 FROM {table} AS e
        WHERE e.uid = c.uid AND e.time >= '2017-04-02' AND e.time < '2017-04-09'
          AND e.time >= c.installed_at) AS retained
    FROM cohort AS c
)
SELECT count(*), count(*) FILTER (WHERE retained) FROM member"""


def timed(function, repeat: int = 1):
    """Median wall-clock seconds of ``repeat`` calls, and the last result."""
    seconds = []
    for _ in range(repeat):
        started = time.perf_counter()
        result = function()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds), result


def seed(conn, table: str, n_events: int) -> float:
    started = time.perf_counter()
    seed_events(conn, table, app_events(n_events, max(1, n_events // 10), seed=11), {"bench": n_events}, replace=True)
    return time.perf_counter() - started


def drop_indexes(conn, table: str) -> None:
    with conn.cursor() as cur:
        for name in ("install_time_idx", "uid_time_idx"):
            cur.execute(sql.SQL("DROP INDEX IF EXISTS {}").format(sql.Identifier(f"{table}_{name}")))
    conn.commit()
    vacuum_analyze(conn, table)


def previous_form(conn, table: str, timeout_s: float | None = None):
    """(cohort size, retained) by the previous query form, or None when it ran past ``timeout_s``."""
    with conn.cursor() as cur:
        if timeout_s:
            cur.execute("SET statement_timeout = %s", (int(timeout_s * 1000),))
        try:
            cur.execute(PREVIOUS_QUERY.format(table=table))
            return tuple(cur.fetchone())
        except psycopg2.errors.QueryCanceled:
            return None
        finally:
            conn.rollback()
            cur.execute("RESET statement_timeout")


def ours(conn, table: str):
    result = cohort_retention(conn, RetentionQuery(table=table))
    return result.cohort_size, result.retained_users


def machine() -> str:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} CPUs ({model}), {memory_gib:.0f} GiB"


def commit() -> str:
    def git(*args):
        return subprocess.run(["git", *args], cwd=Q1_DIR, capture_output=True, text=True).stdout.strip()

    return git("rev-parse", "--short", "HEAD") + ("-dirty" if git("status", "--porcelain", ".") else "")


def write_section(path: Path, body: str) -> None:
    """Replace this script's section of ``path`` (between its BEGIN/END markers), keeping everything else."""
    begin, end = f"<!-- BEGIN {SECTION} -->", f"<!-- END {SECTION} -->"
    text = path.read_text() if path.exists() else "# Q1 benchmark results\n\nWritten by the scripts in `benchmarks/`.\n"
    block = f"{begin}\n{body.rstrip()}\n{end}"
    pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--events", type=int, default=10_000_000, help="events in the main table (default 10M)")
    p.add_argument("--small-events", type=int, default=100_000, help="table for the full previous-form run")
    p.add_argument("--previous-timeout", type=float, default=120, help="seconds the previous form may run at --events")
    p.add_argument(
        "--repeat", type=int, default=3, help="timed runs per cohort query; median (default 3; reports once)"
    )
    p.add_argument("--dsn", help="server to use (default: DATABASE_URL, PG* env, else embedded)")
    p.add_argument("--results", type=Path, default=Q1_DIR / "RESULTS.md")
    args = p.parse_args(argv)
    load_before = os.getloadavg()
    code_version = commit()  # before the work: files edited during a long run do not change what was measured
    started_at = dt.datetime.now(dt.timezone.utc)
    rows = []

    def row(what, seconds, answer, note=""):
        rows.append((what, seconds, answer, note))
        shown = "n/a" if seconds is None else f"{seconds:.3f} s"
        print(f"  {what:<58} {shown:>11}  {answer}  {note}", flush=True)

    with open_connection(args.dsn) as (conn, source):
        with conn.cursor() as cur:
            cur.execute("SHOW server_version")
            server = f"PostgreSQL {cur.fetchone()[0]} ({source})"
        print(server, flush=True)
        table = "bench_events"
        seeded = seed(conn, table, args.events)
        print(f"  seeded {args.events:,} events with indexes in {seeded:.1f} s", flush=True)
        ours(conn, table)  # warm the caches once
        indexed_s, indexed = timed(lambda: ours(conn, table), args.repeat)
        row("cohort query, indexed table", indexed_s, indexed)
        drop_indexes(conn, table)
        ours(conn, table)
        unindexed_s, unindexed = timed(lambda: ours(conn, table), args.repeat)
        row("cohort query, unindexed table", unindexed_s, unindexed, f"{unindexed_s / indexed_s:.2f}x indexed")
        previous_s, previous = timed(lambda: previous_form(conn, table, args.previous_timeout))
        if previous is None:
            bound = args.previous_timeout / unindexed_s
            row(
                "previous form, unindexed table",
                None,
                f"> {args.previous_timeout:g} s (cancelled)",
                f"> {bound:.0f}x ours",
            )
        else:
            row("previous form, unindexed table", previous_s, previous, f"{previous_s / unindexed_s:.0f}x ours")
        report_query = RetentionQuery(table=table, period="week", intervals=4)
        report_s, report = timed(lambda: retention_table(conn, report_query))
        row("weekly report (4 weeks), unindexed table", report_s, f"{len(report)} cohorts")
        daily_s, daily = timed(lambda: retention_table(conn, RetentionQuery(table=table, intervals=7)))
        row("daily report (7 days), unindexed table", daily_s, f"{len(daily)} cohorts")
        for statement in index_statements(RetentionQuery(table=table)):
            with conn.cursor() as cur:
                cur.execute(statement)
        conn.commit()
        vacuum_analyze(conn, table)
        report_ix_s, _ = timed(lambda: retention_table(conn, report_query))
        row("weekly report (4 weeks), indexed table", report_ix_s, f"{len(report)} cohorts")

        small = "bench_small"
        seed(conn, small, args.small_events)
        drop_indexes(conn, small)
        small_ours_s, small_ours = timed(lambda: ours(conn, small), args.repeat)
        row(f"cohort query, unindexed {args.small_events:,}-event table", small_ours_s, small_ours)
        small_prev_s, small_prev = timed(lambda: previous_form(conn, small))
        row(
            f"previous form, unindexed {args.small_events:,}-event table",
            small_prev_s,
            small_prev,
            f"{small_prev_s / small_ours_s:.0f}x ours",
        )
        with conn.cursor() as cur:
            cur.execute(f"DROP TABLE {table}, {small}")
        conn.commit()
    agree = indexed == unindexed and small_ours == small_prev and previous in (None, indexed)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    load_after = os.getloadavg()

    lines = [
        f"## Cohort query and report ({args.events:,} events, {args.events // 10:,} users)",
        "",
        f"- commit `{code_version}`, {started_at:%Y-%m-%d %H:%M} UTC, {server}",
        f"- machine: {machine()}",
        f"- load average before {', '.join(f'{x:.2f}' for x in load_before)}; after "
        f"{', '.join(f'{x:.2f}' for x in load_after)}",
        f"- command: `{' '.join(['python -m benchmarks.bench_retention', *(argv or sys.argv[1:])])}`",
        f"- seed (generate + COPY + indexes + VACUUM ANALYZE): {seeded:.1f} s; client peak RSS {peak_mb:.0f} MB",
        f"- all forms gave the same (cohort size, retained) answer: {agree}",
        "",
        "| what | seconds (median of runs) | answer | ratio |",
        "|---|---:|---|---|",
    ]
    for what, seconds, answer, note in rows:
        lines.append(f"| {what} | {'n/a' if seconds is None else f'{seconds:.3f}'} | {answer} | {note} |")
    write_section(args.results, "\n".join(lines))
    print(f"answers agree: {agree}; wrote {args.results}")
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
