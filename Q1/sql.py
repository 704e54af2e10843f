"""Q1: install-cohort retention on PostgreSQL (command line).

Seeds ``piwik_track(time, uid, event_name)`` with synthetic events (unless ``--no-seed``), prints the SQL and
how many users whose first FIRST_INSTALL was on the cohort day came back in the window. Without ``--dsn``,
``DATABASE_URL`` or ``PG*`` settings it runs on a temporary embedded PostgreSQL. See Q1/README.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import signal
import sys
from pathlib import Path

import psycopg2.errors

from event_generator import DISTRIBUTIONS, check_generator_arguments, generate_events
from pg_server import ServerUnavailable, open_connection
from retention import (
    DEFAULT_TABLE,
    EventsTableError,
    RetentionQuery,
    RetentionTableQuery,
    cohort_retention,
    retention_table,
)
from retention_report import ReportOutputError, format_retention_table, report_paths, write_retention_heatmap
from seed import SeedRefused, seed_events

DEFAULT_OUT = Path(__file__).resolve().parent / "out"


def iso_date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date as YYYY-MM-DD, got {text!r}") from None


class OneLineErrorParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (``sql.py: error: ... (see --help)``), not the usage block."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def parse_args(argv=None) -> argparse.Namespace:
    day = iso_date
    p = OneLineErrorParser(
        prog=Path(__file__).name, description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    q = p.add_argument_group("retention question")
    q.add_argument("--cohort-date", type=day, default=dt.date(2017, 4, 1), help="install day D (default 2017-04-01)")
    q.add_argument("--window-start", type=day, help="first return day, inclusive (default D+1)")
    q.add_argument("--window-end", type=day, help="last return day, inclusive (default D+7)")
    q.add_argument("--tz", default="UTC", help="IANA time zone where days begin (default UTC; data is UTC)")
    q.add_argument("--report", action="store_true", help="day-0..N retention table of every cohort (+CSV, PNG)")
    q.add_argument("--days", type=int, default=7, help="last day number N of --report (default 7)")
    q.add_argument("--list-users", action="store_true", help="also print the retained uids")
    q.add_argument("--json", action="store_true", help="print JSON only (status lines go to stderr)")
    q.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"folder for --report files (default {DEFAULT_OUT})")
    q.add_argument("--overwrite", action="store_true", help="let --report replace its existing files in --out")
    d = p.add_argument_group("database")
    d.add_argument("--dsn", help="libpq DSN or postgresql:// URL (else DATABASE_URL, PG* env, or embedded server)")
    d.add_argument(
        "--table", default=DEFAULT_TABLE, help=f"events table, name or schema.name (default {DEFAULT_TABLE})"
    )
    d.add_argument("--no-seed", action="store_true", help="query the existing table; load nothing")
    d.add_argument("--replace", action="store_true", help="drop and re-seed the table if it exists with other rows")
    g = p.add_argument_group("synthetic events (when seeding)")
    g.add_argument(
        "--distribution",
        choices=DISTRIBUTIONS,
        default="app",
        help="app: app-like installs and decaying returns; uniform: the original random events",
    )
    g.add_argument("--events", type=int, default=10_000, help="number of events (default 10,000)")
    g.add_argument("--users", type=int, default=1_000, help="number of users (default 1,000)")
    g.add_argument("--start", type=day, default=dt.date(2017, 4, 1), help="first day of events (default 2017-04-01)")
    g.add_argument("--end", type=day, default=dt.date(2017, 4, 10), help="last day of events (default 2017-04-10)")
    g.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    return p.parse_args(argv)


def status(message: str) -> None:
    print(message, file=sys.stderr)


def seed(conn, args) -> None:
    stamp = {
        "distribution": args.distribution,
        "events": args.events,
        "users": args.users,
        "start": args.start.isoformat(),
        "end": args.end.isoformat(),
        "seed": args.seed,
    }
    frames = generate_events(args.distribution, args.events, args.users, args.start, args.end, args.seed)
    report = seed_events(conn, args.table, frames, stamp, replace=args.replace, total=args.events)
    if report.action == "reused":
        status(f"table {args.table} already holds this seed ({args.distribution}, {args.events:,} events); reusing it")
    else:
        took = ", ".join(f"{k} {v:.1f}s" for k, v in report.seconds.items())
        status(
            f"{report.action} table {args.table}: {report.rows:,} {args.distribution} events "
            f"from {args.users:,} users, {args.start}..{args.end}, seed {args.seed} ({took})"
        )


def answer_cohort(conn, args) -> None:
    query = RetentionQuery(args.cohort_date, args.window_start, args.window_end, args.tz, args.table)
    result = cohort_retention(conn, query, list_users=args.list_users)
    if args.json:
        out = {
            "cohort_date": query.cohort_date.isoformat(),
            "cohort_size": result.cohort_size,
            "retained_users": result.retained_users,
            "retention_rate": result.retention_rate,
        }
        if args.list_users:
            out["retained_uids"] = sorted(result.retained_uids)
        print(json.dumps(out))
        return
    print(result.sql + ";\n")
    rate = "n/a (empty cohort)" if result.retention_rate is None else f"{100 * result.retention_rate:.1f}%"
    print(f"cohort {query.cohort_date} ({query.tz}): {result.cohort_size} users whose first FIRST_INSTALL was that day")
    print(
        f"retained: {result.retained_users} of them had an event from {query.window_start} to {query.window_end} "
        f"inclusive ({rate})"
    )
    if args.list_users:
        print("retained uids:", " ".join(sorted(result.retained_uids)))


def answer_report(conn, args) -> None:
    query = RetentionTableQuery(args.days, args.tz, args.table)
    table = retention_table(conn, query)
    if args.json:
        print(table.reset_index().astype({"cohort_date": str}).to_json(orient="records"))
        return
    csv_path, png_path = report_paths(args.out, args.overwrite)  # checked before the work too; files may have appeared
    args.out.mkdir(parents=True, exist_ok=True)
    table.to_csv(csv_path)
    png_path = write_retention_heatmap(
        table, png_path, f"Day-k retention by install cohort ({args.tz}, table {args.table})"
    )
    print(f"Day-k retention (share of each install cohort active on day k, {args.tz}; blank = beyond the data)")
    print(format_retention_table(table))
    print(f"\nwrote {csv_path} and {png_path}")


def _exit_on_sigterm(signum, frame):
    # Unwind normally on `kill`, so the embedded server is stopped and its temporary folder removed.
    raise SystemExit(128 + signum)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        # Validate everything before starting a server, so a typo costs no seed.
        RetentionQuery(args.cohort_date, args.window_start, args.window_end, args.tz, args.table)
        RetentionTableQuery(args.days, args.tz, args.table)
        if args.report and not args.json:
            report_paths(args.out, args.overwrite)
        if not args.no_seed:
            check_generator_arguments(args.distribution, args.events, args.users, args.start, args.end)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        with open_connection(args.dsn) as (conn, source):
            status(f"PostgreSQL: {source}")
            if not args.no_seed:
                seed(conn, args)
            (answer_report if args.report else answer_cohort)(conn, args)
    except (EventsTableError, ServerUnavailable, SeedRefused, ReportOutputError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except psycopg2.errors.InsufficientPrivilege as exc:
        print(f"error: PostgreSQL refused: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; nothing was committed by an unfinished seed", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    sys.exit(main())
