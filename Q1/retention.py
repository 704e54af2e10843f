"""Install-cohort retention on a PostgreSQL events table: the definition object and the SQL that answers it.

Definitions (the pandas reference in ``retention_reference.py`` reads the same objects):

* **events table**: columns ``time`` (``timestamp`` holding UTC, or ``timestamptz``), ``uid``, ``event_name``.
  Rows with a NULL ``uid`` or ``time`` belong to no user and are ignored.
* **day**: a calendar day in the time zone ``tz`` (IANA name). A day is the half-open range
  ``[local midnight, next local midnight)``, compared against the raw column so the predicates stay sargable.
* **cohort** of day D: users whose *first* ``FIRST_INSTALL`` event falls on D; repeated installs count once.
* **retained** in window [S, E] (whole days, inclusive): a cohort user with any event (of any name) at or after
  their first install and inside ``[S 00:00, E+1 00:00)``. Events before the install never count.
* **day-k retention** (``--report``): share of a cohort with an event on exactly day D+k (day 0 is the install
  day, so it is 100%). Cells whose day lies after the last day present in the data are left empty (NaN).

The query shape follows PostHog's retention query: one explicit parameter object, one query builder.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from psycopg2 import sql

DEFAULT_TABLE = "piwik_track"
COHORT_EVENT = "FIRST_INSTALL"
_NAME = r"[A-Za-z_][A-Za-z0-9_]{0,62}"
_TABLE_NAME = re.compile(rf"^{_NAME}(\.{_NAME})?$")


def table_identifier(name: str) -> sql.Identifier:
    """Turn ``table`` or ``schema.table`` into a quoted :class:`psycopg2.sql.Identifier`.

    Raises
    ------
    ValueError
        The name is not one or two plain SQL identifiers (letters, digits, ``_``, at most 63 characters each),
        e.g. ``x; DROP TABLE y``; such names are refused rather than quoted, so a typo cannot create an odd table.
    """
    if not _TABLE_NAME.match(name):
        raise ValueError(
            f"table name {name!r} is not a plain identifier; use letters, digits and _ (optionally schema.table)"
        )
    return sql.Identifier(*name.split("."))


def check_time_zone(tz: str) -> str:
    """Return ``tz`` if it is an IANA time-zone name known to Python's zoneinfo, else raise ``ValueError``."""
    try:
        zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {tz!r}; use an IANA name such as UTC or Asia/Hong_Kong") from None
    return tz


@dataclass(frozen=True)
class RetentionQuery:
    """One install-cohort retention question.

    Attributes
    ----------
    cohort_date : datetime.date
        Install day D of the cohort (local day in ``tz``).
    window_start, window_end : datetime.date
        First and last whole day of the return window, inclusive; default D+1 and D+7.
    tz : str
        IANA time zone in which days begin and end; stored timestamps are UTC.
    table : str
        Events table, ``name`` or ``schema.name``.
    cohort_event : str
        Event that defines the cohort (its first occurrence per user).

    Raises
    ------
    ValueError
        Window starts before the cohort day or ends before it starts, unknown time zone, bad table name.
    """

    cohort_date: dt.date = dt.date(2017, 4, 1)
    window_start: dt.date | None = None
    window_end: dt.date | None = None
    tz: str = "UTC"
    table: str = DEFAULT_TABLE
    cohort_event: str = COHORT_EVENT

    def __post_init__(self):
        if self.window_start is None:
            object.__setattr__(self, "window_start", self.cohort_date + dt.timedelta(days=1))
        if self.window_end is None:
            object.__setattr__(self, "window_end", self.cohort_date + dt.timedelta(days=7))
        if self.window_start < self.cohort_date:
            raise ValueError(
                f"window start {self.window_start} is before the cohort day {self.cohort_date}; "
                "events before the install never count as returning"
            )
        if self.window_end < self.window_start:
            raise ValueError(f"window end {self.window_end} is before window start {self.window_start}")
        check_time_zone(self.tz)
        table_identifier(self.table)


@dataclass(frozen=True)
class RetentionTableQuery:
    """The day-0..N retention table of every install cohort in the data (``--report``).

    Attributes
    ----------
    days : int
        Last day number N shown (columns ``day_0`` .. ``day_N``), N >= 0.
    tz, table, cohort_event : see :class:`RetentionQuery`.
    """

    days: int = 7
    tz: str = "UTC"
    table: str = DEFAULT_TABLE
    cohort_event: str = COHORT_EVENT

    def __post_init__(self):
        if self.days < 0:
            raise ValueError(f"--days must be 0 or more, got {self.days}")
        check_time_zone(self.tz)
        table_identifier(self.table)


@dataclass
class RetentionResult:
    """Answer to a :class:`RetentionQuery`; the uid sets are filled only when asked for (``list_users``).

    ``sql`` is the exact statement text the server ran, parameters included.
    """

    cohort_size: int
    retained_users: int
    sql: str = field(default="", repr=False)
    cohort_uids: set[str] | None = field(default=None, repr=False)
    retained_uids: set[str] | None = field(default=None, repr=False)

    @property
    def retention_rate(self) -> float | None:
        """``retained_users / cohort_size``, or ``None`` for an empty cohort."""
        return self.retained_users / self.cohort_size if self.cohort_size else None


class EventsTableError(ValueError):
    """The events table is missing or lacks the ``time``/``uid``/``event_name`` columns."""


def time_column_has_tz(conn, table: str) -> bool:
    """Inspect ``table`` and say whether its ``time`` column is ``timestamptz`` (else plain ``timestamp``).

    Raises
    ------
    EventsTableError
        Table not found, a required column missing, or ``time`` is not a timestamp type.
    """
    with conn.cursor() as cur:
        cur.execute(
            """
            SELECT a.attname, format_type(a.atttypid, a.atttypmod)
            FROM pg_attribute a
            WHERE a.attrelid = to_regclass(%s) AND a.attnum > 0 AND NOT a.attisdropped
            """,
            (table_identifier(table).as_string(conn),),
        )
        columns = dict(cur.fetchall())
    if not columns:
        raise EventsTableError(f"table {table} does not exist; seed it (drop --no-seed) or pass --table")
    missing = [c for c in ("time", "uid", "event_name") if c not in columns]
    if missing:
        raise EventsTableError(f"table {table} lacks column(s) {', '.join(missing)}; expected time, uid, event_name")
    kind = columns["time"]
    if kind.startswith("timestamp with time zone"):
        return True
    if kind.startswith("timestamp"):
        return False
    raise EventsTableError(f"column {table}.time has type {kind}; expected timestamp (UTC) or timestamptz")


def _day_start(param: str, has_tz: bool) -> sql.Composable:
    """SQL for the instant local midnight of the date in ``%(param)s`` begins, in the column's own type."""
    local_midnight = sql.SQL("(%({})s::timestamp AT TIME ZONE %(tz)s)").format(sql.SQL(param))
    if has_tz:
        return local_midnight
    return sql.SQL("({} AT TIME ZONE 'UTC')").format(local_midnight)


def _local_date(column: sql.Composable, has_tz: bool) -> sql.Composable:
    """SQL for the local calendar date (in ``%(tz)s``) of a timestamp column."""
    if has_tz:
        return sql.SQL("({} AT TIME ZONE %(tz)s)::date").format(column)
    return sql.SQL("(({} AT TIME ZONE 'UTC') AT TIME ZONE %(tz)s)::date").format(column)


def cohort_retention_sql(query: RetentionQuery, has_tz: bool = False, list_users: bool = False):
    """Build the single-cohort retention query.

    Returns
    -------
    statement : psycopg2.sql.Composed
        Returns one row ``(cohort_size, retained_users[, cohort_uids, retained_uids])``.
    params : dict
        Bind parameters for ``statement``.

    Notes
    -----
    Every predicate on ``time`` compares the raw column with a constant, so an index on ``time`` of the
    install events and one on ``(uid, time)`` apply (see ``seed.index_statements``): index range scans find
    the install day's installs and any earlier installs (anti-join), then each cohort user costs one index
    probe that stops at the first event in the window.
    """
    day = dt.timedelta(days=1)
    params = {
        "cohort_event": query.cohort_event,
        "tz": query.tz,
        "cohort_day": query.cohort_date.isoformat(),
        "cohort_next_day": (query.cohort_date + day).isoformat(),
        "window_first_day": query.window_start.isoformat(),
        "window_after_last_day": (query.window_end + day).isoformat(),
    }
    table = table_identifier(query.table)
    users = sql.SQL(""",
       array_agg(uid ORDER BY uid) AS cohort_uids,
       array_agg(uid ORDER BY uid) FILTER (WHERE retained) AS retained_uids""")
    statement = sql.SQL(
        """WITH cohort AS (
    -- users whose FIRST install falls on the cohort day
    SELECT i.uid, min(i.time) AS installed_at
    FROM {table} AS i
    WHERE i.event_name = %(cohort_event)s
      AND i.uid IS NOT NULL
      AND i.time >= {cohort_start} AND i.time < {cohort_end}
      AND NOT EXISTS (
          SELECT 1 FROM {table} AS earlier
          WHERE earlier.uid = i.uid AND earlier.event_name = %(cohort_event)s
            AND earlier.time < {cohort_start})
    GROUP BY i.uid
    ORDER BY i.uid  -- probe the (uid, time) index in key order: neighbouring probes share pages
),
member AS (
    -- retained: any event in [first window day 00:00, day after the last 00:00), never before the install
    SELECT c.uid, EXISTS (
        SELECT 1 FROM {table} AS e
        WHERE e.uid = c.uid
          AND e.time >= {window_start} AND e.time < {window_end}
          AND e.time >= c.installed_at) AS retained
    FROM cohort AS c
)
SELECT count(*) AS cohort_size,
       count(*) FILTER (WHERE retained) AS retained_users{users}
FROM member"""
    ).format(
        table=table,
        cohort_start=_day_start("cohort_day", has_tz),
        cohort_end=_day_start("cohort_next_day", has_tz),
        window_start=_day_start("window_first_day", has_tz),
        window_end=_day_start("window_after_last_day", has_tz),
        users=users if list_users else sql.SQL(""),
    )
    return statement, params


def cohort_retention(conn, query: RetentionQuery, list_users: bool = False) -> RetentionResult:
    """Run :func:`cohort_retention_sql` on ``conn``.

    Raises
    ------
    EventsTableError
        See :func:`time_column_has_tz`.
    """
    has_tz = time_column_has_tz(conn, query.table)
    statement, params = cohort_retention_sql(query, has_tz, list_users)
    with conn.cursor() as cur:
        text = cur.mogrify(statement, params).decode()
        cur.execute(text)
        row = cur.fetchone()
    result = RetentionResult(cohort_size=row[0], retained_users=row[1], sql=text)
    if list_users:
        result.cohort_uids = set(row[2] or [])
        result.retained_uids = set(row[3] or [])
    return result


def retention_table_sql(query: RetentionTableQuery, has_tz: bool = False):
    """Build the cohort-table query.

    Returns
    -------
    statement : psycopg2.sql.Composed
        Rows ``(cohort_date, cohort_size, day_number, active_users, last_data_day)``; ``day_number`` and
        ``active_users`` are NULL for a cohort with no activity in days 0..N. ``last_data_day`` is the local
        date of the latest event in the table, the same on every row.
    params : dict
    """
    table = table_identifier(query.table)
    statement = sql.SQL(
        """WITH first_install AS (
    SELECT uid, min(time) AS installed_at
    FROM {table}
    WHERE event_name = %(cohort_event)s AND uid IS NOT NULL AND time IS NOT NULL
    GROUP BY uid
),
cohort AS (
    SELECT uid, installed_at, {install_day} AS cohort_date FROM first_install
),
active_day AS (
    SELECT DISTINCT c.cohort_date, c.uid, {event_day} - c.cohort_date AS day_number
    FROM cohort AS c
    JOIN {table} AS e ON e.uid = c.uid AND e.time >= c.installed_at
),
cohort_size AS (
    SELECT cohort_date, count(*) AS cohort_size FROM cohort GROUP BY cohort_date
),
active AS (
    SELECT cohort_date, day_number, count(*) AS active_users
    FROM active_day WHERE day_number <= %(days)s
    GROUP BY cohort_date, day_number
)
SELECT s.cohort_date, s.cohort_size, a.day_number, a.active_users,
       (SELECT {last_day} FROM {table}) AS last_data_day
FROM cohort_size AS s LEFT JOIN active AS a USING (cohort_date)
ORDER BY s.cohort_date, a.day_number"""
    ).format(
        table=table,
        install_day=_local_date(sql.Identifier("installed_at"), has_tz),
        event_day=_local_date(sql.SQL("e.time"), has_tz),
        last_day=_local_date(sql.SQL("max(time)"), has_tz),
    )
    params = {"cohort_event": query.cohort_event, "tz": query.tz, "days": query.days}
    return statement, params


def retention_table(conn, query: RetentionTableQuery) -> pd.DataFrame:
    """Run :func:`retention_table_sql` and pivot it.

    Returns
    -------
    pandas.DataFrame
        Index ``cohort_date`` (``datetime.date``, ascending); column ``cohort_size`` (int) then ``day_0`` ..
        ``day_N`` (float shares in [0, 1]); NaN where the cohort day plus k lies after the last day in the data.
    """
    has_tz = time_column_has_tz(conn, query.table)
    statement, params = retention_table_sql(query, has_tz)
    with conn.cursor() as cur:
        cur.execute(statement, params)
        rows = cur.fetchall()
    day_columns = [f"day_{k}" for k in range(query.days + 1)]
    if not rows:
        return pd.DataFrame(columns=["cohort_size", *day_columns], index=pd.Index([], name="cohort_date"))
    long = pd.DataFrame(rows, columns=["cohort_date", "cohort_size", "day_number", "active_users", "last_day"])
    sizes = long.groupby("cohort_date")["cohort_size"].first()
    active = long.dropna(subset=["day_number"]).pivot(index="cohort_date", columns="day_number", values="active_users")
    shares = active.reindex(index=sizes.index, columns=range(query.days + 1)).fillna(0).div(sizes, axis=0)
    last_day = long["last_day"].iloc[0]
    days_known = np.array([(last_day - d).days for d in sizes.index])
    shares = shares.where(np.arange(query.days + 1)[None, :] <= days_known[:, None])
    shares.columns = day_columns
    table = pd.concat([sizes.astype(int), shares.astype(float)], axis=1)
    table.index.name = "cohort_date"
    return table
