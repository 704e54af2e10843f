"""Q1: install-cohort retention on PostgreSQL (command line).

Seeds ``piwik_track(time, uid, event_name)`` with synthetic events (unless ``--no-seed``), prints the SQL and
how many users of a cohort (first FIRST_INSTALL in a day, week or month) came back in the window, or with
``--report`` the retention table of every cohort. Without ``--dsn``, ``DATABASE_URL`` or ``PG*`` settings it runs
on a temporary embedded PostgreSQL. Ctrl-C or SIGTERM cancels the running query on the server. See Q1/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import signal
import sys
from pathlib import Path

import pandas as pd
import psycopg2.errors
import psycopg2.extensions
import psycopg2.extras

from event_generator import DISTRIBUTIONS, check_generator_arguments, generate_events
from pg_server import ServerUnavailable, open_connection
from retention import (
    COHORT_EVENT,
    DEFAULT_TABLE,
    MODES,
    PERIODS,
    RETENTION_TYPES,
    EventsTableError,
    RetentionQuery,
    all_cohorts_row,
    cohort_retention,
    missing_index_hint,
    retention_table,
    table_identifier,
    time_column_has_tz,
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


def positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0, got {text!r}")
    return value


def parse_args(argv=None) -> argparse.Namespace:
    day = iso_date
    p = OneLineErrorParser(
        prog=Path(__file__).name, description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    q = p.add_argument_group("retention question")
    q.add_argument(
        "--cohort-date", type=day, default=dt.date(2017, 4, 1), help="a day of the cohort's period (default 2017-04-01)"
    )
    q.add_argument(
        "--window-start", type=day, help="first return day, inclusive (default: first day of the next period)"
    )
    q.add_argument("--window-end", type=day, help="last return day, inclusive (default: last day of period N)")
    q.add_argument("--tz", default="UTC", help="IANA time zone where days begin (default UTC; data is UTC)")
    q.add_argument(
        "--period", choices=PERIODS, default="day", help="cohort and return periods; week = ISO week (default day)"
    )
    q.add_argument(
        "--intervals",
        "--days",
        type=int,
        default=7,
        metavar="N",
        help="last period number N of --report and of the default window (default 7)",
    )
    q.add_argument(
        "--cohort-event",
        action="append",
        metavar="NAME",
        help=f"event that starts a cohort; repeatable (default {COHORT_EVENT})",
    )
    q.add_argument(
        "--returning-event",
        action="append",
        metavar="NAME",
        help="event that counts as a return; repeatable (default any event)",
    )
    q.add_argument(
        "--retention",
        choices=RETENTION_TYPES,
        default="first",
        help="first: cohort by first cohort event; recurring: by every period with one",
    )
    q.add_argument(
        "--mode",
        choices=MODES,
        default="on",
        help="on: returned in the period/window; on-or-after: then or any time later",
    )
    q.add_argument("--report", action="store_true", help="period-0..N retention table of every cohort (+CSV, PNG)")
    q.add_argument("--list-users", action="store_true", help="also print the retained uids")
    q.add_argument("--json", action="store_true", help="print JSON only (status lines go to stderr)")
    q.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"folder for --report files (default {DEFAULT_OUT})")
    q.add_argument("--overwrite", action="store_true", help="let --report replace its existing files in --out")
    d = p.add_argument_group("database")
    d.add_argument("--dsn", help="libpq DSN or postgresql:// URL (else DATABASE_URL, PG* env, or embedded server)")
    d.add_argument(
        "--table", default=DEFAULT_TABLE, help=f"events table, name or schema.name (default {DEFAULT_TABLE})"
    )
    d.add_argument("--time-col", default="time", help="timestamp column (default time)")
    d.add_argument("--user-col", default="uid", help="user id column (default uid)")
    d.add_argument("--event-col", default="event_name", help="event name column (default event_name)")
    d.add_argument(
        "--timeout", type=positive_seconds, metavar="SECONDS", help="cancel a retention query that runs longer"
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


def build_query(args) -> RetentionQuery:
    """The :class:`RetentionQuery` the arguments ask; ``ValueError`` (one line) when they do not make one."""
    return RetentionQuery(
        cohort_date=args.cohort_date,
        window_start=args.window_start,
        window_end=args.window_end,
        tz=args.tz,
        table=args.table,
        cohort_events=tuple(args.cohort_event or (COHORT_EVENT,)),
        returning_events=tuple(args.returning_event or ()),
        period=args.period,
        intervals=args.intervals,
        retention=args.retention,
        mode=args.mode,
        time_col=args.time_col,
        user_col=args.user_col,
        event_col=args.event_col,
    )


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


def cohort_label(query: RetentionQuery) -> str:
    first, after = query.cohort_period
    if query.period == "week":
        year, week, _ = first.isocalendar()
        return f"week {year}-W{week:02d} ({first}..{after - dt.timedelta(days=1)})"
    if query.period == "month":
        return f"month {first:%Y-%m}"
    return str(first)


def answer_cohort(conn, query: RetentionQuery, args) -> None:
    result = cohort_retention(conn, query, list_users=args.list_users)
    first, _ = query.cohort_period
    if args.json:
        out = {
            "cohort_start": first.isoformat(),
            "period": query.period,
            "window_start": query.window_start.isoformat(),
            "window_end": None if query.window_end is None else query.window_end.isoformat(),
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
    which = "first " if query.retention == "first" else "a "
    events = "/".join(query.cohort_events)
    returning = "/".join(query.returning_events) or "any"
    until = "onwards" if query.window_end is None else f"to {query.window_end} inclusive"
    print(f"cohort {cohort_label(query)} ({query.tz}): {result.cohort_size} users whose {which}{events} was then")
    print(f"retained: {result.retained_users} of them had {returning} event from {query.window_start} {until} ({rate})")
    if args.list_users:
        print("retained uids:", " ".join(sorted(result.retained_uids)))


def answer_report(conn, query: RetentionQuery, args) -> None:
    table = retention_table(conn, query)
    overall = all_cohorts_row(table)
    if args.json:
        cohorts = table.reset_index().astype({"cohort_start": str}).to_dict(orient="records")
        out = {"cohorts": cohorts, "all_cohorts": overall.to_dict()}
        print(json.dumps(_nan_to_none(out), allow_nan=False))
        return
    if table.empty:  # most often a cohort event named otherwise in the user's table: say so, draw no empty heatmap
        status(
            f"no cohort: {query.table} has no {'/'.join(query.cohort_events)} event with a user and a time; "
            "name your cohort event with --cohort-event (nothing written)"
        )
        return
    csv_path, png_path = report_paths(args.out, args.overwrite)  # checked before the work too; files may have appeared
    args.out.mkdir(parents=True, exist_ok=True)
    with_overall = pd.concat([table, overall.to_frame("all cohorts").T.rename_axis(table.index.name)])
    with_overall["cohort_size"] = with_overall["cohort_size"].astype(int)
    with_overall.to_csv(csv_path)
    what = f"{query.period}-k retention" + (" (on or after)" if query.mode == "on-or-after" else "")
    write_retention_heatmap(
        table, png_path, f"{what.capitalize()} by cohort ({query.tz}, table {query.table})", query.period
    )
    print(f"{what.capitalize()} (share of each cohort active in {query.period} k, {query.tz}; blank = beyond the data)")
    print(format_retention_table(with_overall))
    print(f"\nwrote {csv_path} and {png_path}")


def _nan_to_none(value):
    """JSON has no NaN: empty cells (beyond the data) become null."""
    if isinstance(value, dict):
        return {k: _nan_to_none(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nan_to_none(v) for v in value]
    if isinstance(value, float) and value != value:
        return None
    if hasattr(value, "item"):  # numpy scalar
        return _nan_to_none(value.item())
    return value


class _Stop:
    """The signal that asked us to stop, set by :func:`_stop_on_signal` (None while running)."""

    signum: int | None = None


def _stop_on_signal(signum, frame):
    # KeyboardInterrupt is what psycopg2's wait_select answers with conn.cancel(): the server stops the statement.
    _Stop.signum = signum
    raise KeyboardInterrupt


@contextlib.contextmanager
def cancellable_queries():
    """While inside, a signal cancels the running statement on the server (psycopg2's documented wait_select).

    Not used around COPY, which psycopg2 cannot run with a wait callback.
    """
    previous = psycopg2.extensions.get_wait_callback()
    psycopg2.extensions.set_wait_callback(psycopg2.extras.wait_select)
    try:
        yield
    finally:
        psycopg2.extensions.set_wait_callback(previous)


def run(args, query: RetentionQuery) -> None:
    with open_connection(args.dsn) as (conn, source):
        status(f"PostgreSQL: {source}")
        if not args.no_seed:
            seed(conn, args)
        if args.timeout:
            with conn.cursor() as cur:
                cur.execute("SET statement_timeout = %s", (max(1, round(args.timeout * 1000)),))
        with cancellable_queries():
            time_column_has_tz(conn, query)  # a missing table or column is named before any hint
            hint = None if args.report else missing_index_hint(conn, query)
            if hint:
                status(hint)
                args.hint_shown = True
            (answer_report if args.report else answer_cohort)(conn, query, args)


def main(argv=None) -> int:
    args = parse_args(argv)
    args.hint_shown = False
    try:
        # Validate everything before starting a server, so a typo costs no seed.
        query = build_query(args)
        if args.report and not args.json:
            report_paths(args.out, args.overwrite)
        if not args.no_seed:
            check_generator_arguments(args.distribution, args.events, args.users, args.start, args.end)
            table_identifier(args.table)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    _Stop.signum = None
    handlers = {signum: signal.signal(signum, _stop_on_signal) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        run(args, query)
    except (EventsTableError, ServerUnavailable, SeedRefused, ReportOutputError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (psycopg2.errors.InsufficientPrivilege, psycopg2.errors.InvalidParameterValue) as exc:
        print(f"error: PostgreSQL refused: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, psycopg2.errors.QueryCanceled) as exc:
        signum = _Stop.signum or (signal.SIGINT if isinstance(exc, KeyboardInterrupt) else None)
        if signum is None:
            reason = " ".join(str(exc).split())
            if args.timeout and "statement timeout" in reason:
                print(
                    f"error: the query ran longer than --timeout {args.timeout:g} s and was cancelled on the server; "
                    + ("raise --timeout, or see the index hint above" if args.hint_shown else "raise --timeout"),
                    file=sys.stderr,
                )
            else:
                print(f"error: PostgreSQL cancelled the query ({reason})", file=sys.stderr)
            return 2
        name = signal.Signals(signum).name
        seed_note = "" if args.no_seed else "; nothing was committed by an unfinished seed"
        print(f"stopped by {name}: the running query was cancelled on the server{seed_note}", file=sys.stderr)
        return 128 + signum
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
    return 0


if __name__ == "__main__":
    sys.exit(main())
