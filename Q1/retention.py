"""Install-cohort retention on a PostgreSQL events table: the definition object and the SQL that answers it.

Definitions (the pandas reference in ``tests/retention_reference.py`` reads the same object):

* **events table**: a time column (``timestamp`` holding UTC, or ``timestamptz``), a user column (any type with
  equality: text, bigint, uuid...) and an event-name column; named ``time``, ``uid``, ``event_name`` unless told
  otherwise. Rows with a NULL user or time belong to no user and are ignored.
* **day**: a calendar day in the time zone ``tz`` (IANA name), the half-open range ``[local midnight, next local
  midnight)``, compared against the raw column so the predicates stay sargable. A **week** is an ISO week (Monday
  to Sunday) and a **month** a calendar month, both of local days.
* **cohort** of period P: with ``retention="first"``, users whose *first* cohort event (any of ``cohort_events``)
  falls in P; with ``"recurring"``, users with any cohort event in P (a user can be in several cohorts). A user's
  **anchor** is their first cohort event in P; returning events before it never count.
* **retained** in a window of whole days [S, E]: a cohort user with a returning event (any of
  ``returning_events``; any event when empty) at or after the anchor, inside ``[S 00:00, E+1 00:00)``; with
  ``mode="on-or-after"`` the window has no end.
* **period-k retention** (the report): share of a cohort with a returning event in period P+k (``mode="on"``),
  or in any period P+k or later (``"on-or-after"``). Cells whose period starts after the last day present in the
  data are left empty (NaN). The **all cohorts** row is the cohort-size-weighted mean of each column over the
  cohorts that have that cell.

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
PERIODS = ("day", "week", "month")
RETENTION_TYPES = ("first", "recurring")
MODES = ("on", "on-or-after")
REPORT_WORK_MEM = "64MB"  # PostgreSQL work_mem for the report query
_NAME = r"[A-Za-z_][A-Za-z0-9_]{0,62}"
_TABLE_NAME = re.compile(rf"{_NAME}(\.{_NAME})?")
_COLUMN_NAME = re.compile(_NAME)


def table_identifier(name: str) -> sql.Identifier:
    """Turn ``table`` or ``schema.table`` into a quoted :class:`psycopg2.sql.Identifier`.

    Raises
    ------
    ValueError
        The name is not one or two plain SQL identifiers (letters, digits, ``_``, at most 63 characters each),
        e.g. ``x; DROP TABLE y`` or a name ending in a newline; such names are refused rather than quoted, so a
        typo cannot create an odd table.
    """
    if not _TABLE_NAME.fullmatch(name):
        raise ValueError(
            f"table name {name!r} is not a plain identifier; use letters, digits and _ (optionally schema.table)"
        )
    return sql.Identifier(*name.split("."))


def check_column_name(option: str, name: str) -> str:
    """Return ``name`` if it is a plain SQL identifier, else raise ``ValueError`` naming ``option``."""
    if not _COLUMN_NAME.fullmatch(name):
        raise ValueError(f"{option} {name!r} is not a plain column name; use letters, digits and _")
    return name


def check_time_zone(tz: str) -> str:
    """Return ``tz`` if it is a canonical IANA time-zone name, else raise ``ValueError``.

    Only names in :func:`zoneinfo.available_timezones` other than ``localtime`` are accepted: ``localtime``,
    ``posix/...`` and ``right/...`` are files of the system's zone database that PostgreSQL does not know, and
    would otherwise fail only after seeding.
    """
    if tz not in zoneinfo.available_timezones() or tz == "localtime":
        raise ValueError(f"unknown time zone {tz!r}; use an IANA name such as UTC or Asia/Hong_Kong")
    return tz


def period_start(day: dt.date, period: str) -> dt.date:
    """First day of the ``period`` ("day", "week": ISO week from Monday, "month") that contains ``day``."""
    if period == "week":
        return day - dt.timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    return day


def add_periods(start: dt.date, n: int, period: str) -> dt.date:
    """First day of the period ``n`` periods after the one starting on ``start`` (``start`` is a period start)."""
    if period == "week":
        return start + dt.timedelta(weeks=n)
    if period == "month":
        months = start.year * 12 + start.month - 1 + n
        return dt.date(months // 12, months % 12 + 1, 1)
    return start + dt.timedelta(days=n)


def _names(option: str, names) -> tuple[str, ...]:
    names = tuple(names)
    bad = [n for n in names if not isinstance(n, str) or not n or not n.isprintable()]
    if bad:
        raise ValueError(f"{option} {bad[0]!r} is not a usable event name; give a non-empty printable name")
    return names


@dataclass(frozen=True)
class RetentionQuery:
    """One install-cohort retention question (see the module docstring for the definitions).

    Attributes
    ----------
    cohort_date : datetime.date
        A day in the cohort's period (local day in ``tz``); the cohort is the period that contains it.
    window_start, window_end : datetime.date
        First and last whole day of the return window, inclusive; default the first day of the next period and the
        last day of period ``intervals`` (at least 1). ``window_end`` must be None with ``mode="on-or-after"``.
    tz : str
        IANA time zone in which days begin and end; stored timestamps are UTC.
    table : str
        Events table, ``name`` or ``schema.name``.
    cohort_events : tuple of str
        Events that put a user in a cohort (default FIRST_INSTALL).
    returning_events : tuple of str
        Events that count as a return; empty means any event.
    period : {"day", "week", "month"}
    intervals : int
        Last period number N of the report (columns 0..N), and of the default window; N >= 0.
    retention : {"first", "recurring"}
    mode : {"on", "on-or-after"}
    time_col, user_col, event_col : str
        Column names in ``table``.

    Raises
    ------
    ValueError
        Any attribute out of its domain, a window starting before the cohort's period or ending before it starts,
        an unknown time zone, a table or column name that is not a plain identifier.
    """

    cohort_date: dt.date = dt.date(2017, 4, 1)
    window_start: dt.date | None = None
    window_end: dt.date | None = None
    tz: str = "UTC"
    table: str = DEFAULT_TABLE
    cohort_events: tuple[str, ...] = (COHORT_EVENT,)
    returning_events: tuple[str, ...] = ()
    period: str = "day"
    intervals: int = 7
    retention: str = "first"
    mode: str = "on"
    time_col: str = "time"
    user_col: str = "uid"
    event_col: str = "event_name"

    def __post_init__(self):
        for option, value, choices in (
            ("--period", self.period, PERIODS),
            ("--retention", self.retention, RETENTION_TYPES),
            ("--mode", self.mode, MODES),
        ):
            if value not in choices:
                raise ValueError(f"{option} {value!r} is not one of {', '.join(choices)}")
        if self.intervals < 0:
            raise ValueError(f"--intervals must be 0 or more, got {self.intervals}")
        object.__setattr__(self, "cohort_events", _names("--cohort-event", self.cohort_events or (COHORT_EVENT,)))
        object.__setattr__(self, "returning_events", _names("--returning-event", self.returning_events))
        if self.mode == "on-or-after" and self.window_end is not None:
            raise ValueError("--window-end does not apply with --mode on-or-after (the window has no end)")
        try:
            first, after = self.cohort_period
            if self.window_start is None:
                object.__setattr__(self, "window_start", after)
            if self.mode == "on" and self.window_end is None:
                last = add_periods(first, max(self.intervals, 1) + 1, self.period) - _DAY
                object.__setattr__(self, "window_end", last)
            if self.window_end is not None:
                self.window_end + _DAY  # the SQL ends the window at the next midnight
        except (OverflowError, ValueError):  # datetime's "date value out of range", "year 10000 is out of range"
            raise ValueError(
                "the cohort or its window reaches past 9999-12-30, the last day that can be queried; "
                "use earlier dates or fewer --intervals"
            ) from None
        if self.window_start < first:
            raise ValueError(
                f"window start {self.window_start} is before the cohort's first day {first}; "
                "events before the install never count as returning"
            )
        if self.window_end is not None and self.window_end < self.window_start:
            raise ValueError(f"window end {self.window_end} is before window start {self.window_start}")
        check_time_zone(self.tz)
        table_identifier(self.table)
        for option, name in (
            ("--time-col", self.time_col),
            ("--user-col", self.user_col),
            ("--event-col", self.event_col),
        ):
            check_column_name(option, name)

    @property
    def cohort_period(self) -> tuple[dt.date, dt.date]:
        """``(first day, first day after)`` of the cohort's period."""
        first = period_start(self.cohort_date, self.period)
        return first, add_periods(first, 1, self.period)


_DAY = dt.timedelta(days=1)


@dataclass
class RetentionResult:
    """Answer to the single-cohort question of a :class:`RetentionQuery`.

    The uid sets (as text) are filled only when asked for (``list_users``). ``sql`` is the exact statement text
    the server ran, parameters included.
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
    """The events table is missing or lacks the time/user/event columns."""


def time_column_has_tz(conn, query: RetentionQuery) -> bool:
    """Inspect ``query.table`` and say whether its time column is ``timestamptz`` (else plain ``timestamp``).

    Raises
    ------
    EventsTableError
        Table not found, a required column missing, or the time column is not a timestamp type.
    """
    table = query.table
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
    needed = {"--time-col": query.time_col, "--user-col": query.user_col, "--event-col": query.event_col}
    missing = [f"{name} ({option})" for option, name in needed.items() if name not in columns]
    if missing:
        raise EventsTableError(
            f"table {table} lacks column(s) {', '.join(missing)}; it has {', '.join(columns)}; "
            "name yours with --time-col/--user-col/--event-col"
        )
    kind = columns[query.time_col]
    if kind.startswith("timestamp with time zone"):
        return True
    if kind.startswith("timestamp"):
        return False
    raise EventsTableError(f"column {table}.{query.time_col} has type {kind}; expected timestamp (UTC) or timestamptz")


def index_statements(query: RetentionQuery) -> list[sql.Composed]:
    """CREATE INDEX statements that speed up the cohort query on ``query.table``: cohort scan and per-user probes.

    A partial ``(time) INCLUDE (user) WHERE event = cohort event`` index (a plain ``(time) INCLUDE (user)`` one for
    several cohort events) finds the cohort with an index-only range scan; it holds one entry per install, not per
    event, so it is cheap to build. ``(user, time)`` answers "any return in the window?" with one probe per cohort
    user. Neither is needed for a correct answer.
    """
    table = table_identifier(query.table)
    base = query.table.rpartition(".")[2]
    t, u, e = (sql.Identifier(n) for n in (query.time_col, query.user_col, query.event_col))
    partial = sql.SQL(" WHERE {} = {}").format(e, sql.Literal(query.cohort_events[0]))
    return [
        sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} ({}) INCLUDE ({}){}").format(
            sql.Identifier(f"{base}_install_time_idx"),
            table,
            t,
            u,
            partial if len(query.cohort_events) == 1 else sql.SQL(""),
        ),
        sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} ({}, {})").format(
            sql.Identifier(f"{base}_uid_time_idx"), table, u, t
        ),
    ]


def missing_index_hint(conn, query: RetentionQuery) -> str | None:
    """One line naming the index that would speed up the cohort query, or None when ``query.table`` has it.

    Looks for a btree index led by ``(user, time)``; without one the query still runs, with hash joins over full
    scans of the table.
    """
    with conn.cursor() as cur:
        cur.execute(
            """
            SELECT array_agg(a.attname::text ORDER BY k.ord)
            FROM pg_index i
            CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
            JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
            WHERE i.indrelid = to_regclass(%s) AND k.ord <= 2
            GROUP BY i.indexrelid
            """,
            (table_identifier(query.table).as_string(conn),),
        )
        leading = [tuple(row[0]) for row in cur.fetchall()]
    if (query.user_col, query.time_col) in leading:
        return None
    create = index_statements(query)[1].as_string(conn).replace("IF NOT EXISTS ", "")
    return (
        f"hint: {query.table} has no index on ({query.user_col}, {query.time_col}); the query scans the whole "
        f"table. If you may, {create} makes it faster."
    )


def _instant(param: str, has_tz: bool) -> sql.Composable:
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


def _event_filter(column: sql.Composable, names: tuple[str, ...]) -> sql.Composable:
    """``column IN ('a', 'b')`` (a single name becomes ``= 'a'``, so a partial index on it applies)."""
    return sql.SQL("{} IN ({})").format(column, sql.SQL(", ").join(map(sql.Literal, names)))


def _columns(query: RetentionQuery, alias: str) -> tuple[sql.Composable, sql.Composable, sql.Composable]:
    return tuple(sql.Identifier(alias, name) for name in (query.time_col, query.user_col, query.event_col))


def cohort_retention_sql(query: RetentionQuery, has_tz: bool = False, list_users: bool = False):
    """Build the single-cohort retention query.

    Returns
    -------
    statement : psycopg2.sql.Composed
        Returns one row ``(cohort_size, retained_users[, cohort_uids, retained_uids])``, uids as ``text[]``.
    params : dict
        Bind parameters for ``statement``.

    Notes
    -----
    Set-based, so it plans well on a table with no index: one scan of the cohort events up to the cohort's end
    (grouped per user, the first one kept), one scan of the window joined to the cohort (a hash semi-join).
    Every predicate on time compares the raw column with a constant, so the indexes of :func:`index_statements`
    apply when they exist: an index-only range scan of the cohort events and one ``(user, time)`` probe per
    cohort user.
    """
    first, after = query.cohort_period
    params = {
        "tz": query.tz,
        "cohort_day": first.isoformat(),
        "cohort_next_day": after.isoformat(),
        "window_first_day": query.window_start.isoformat(),
    }
    it, iu, ie = _columns(query, "i")
    rt, ru, re_ = _columns(query, "r")
    if query.retention == "first":
        # First-ever cohort event falls in the period: group every earlier one too, keep users whose minimum is in P.
        cohort_range = sql.SQL("{} < {}").format(it, _instant("cohort_next_day", has_tz))
        having = sql.SQL("\n    HAVING min({}) >= {}").format(it, _instant("cohort_day", has_tz))
    else:
        cohort_range = sql.SQL("{t} >= {start} AND {t} < {end}").format(
            t=it, start=_instant("cohort_day", has_tz), end=_instant("cohort_next_day", has_tz)
        )
        having = sql.SQL("")
    returning = [sql.SQL("{} >= {}").format(rt, _instant("window_first_day", has_tz))]
    if query.window_end is not None:
        params["window_after_last_day"] = (query.window_end + _DAY).isoformat()
        returning.append(sql.SQL("{} < {}").format(rt, _instant("window_after_last_day", has_tz)))
    if query.returning_events:
        returning.append(_event_filter(re_, query.returning_events))
    users = sql.SQL(""",
       (SELECT array_agg(uid::text ORDER BY uid) FROM cohort) AS cohort_uids,
       (SELECT array_agg(uid::text ORDER BY uid) FROM retained) AS retained_uids""")
    statement = sql.SQL(
        """WITH cohort AS (
    -- cohort members and their anchor: the first cohort event in the cohort's period
    SELECT {iu} AS uid, min({it}) AS anchor
    FROM {table} AS i
    WHERE {cohort_filter} AND {iu} IS NOT NULL AND {cohort_range}
    GROUP BY {iu}{having}
),
retained AS (
    -- a returning event in the window, never before the anchor
    SELECT c.uid FROM cohort AS c
    WHERE EXISTS (
        SELECT 1 FROM {table} AS r
        WHERE {ru} = c.uid AND {returning} AND {rt} >= c.anchor)
)
SELECT (SELECT count(*) FROM cohort) AS cohort_size,
       (SELECT count(*) FROM retained) AS retained_users{users}"""
    ).format(
        table=table_identifier(query.table),
        iu=iu,
        it=it,
        ru=ru,
        rt=rt,
        cohort_filter=_event_filter(ie, query.cohort_events),
        cohort_range=cohort_range,
        having=having,
        returning=sql.SQL(" AND ").join(returning),
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
    has_tz = time_column_has_tz(conn, query)
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


def _period_of(local_date: sql.Composable, period: str) -> sql.Composable:
    """SQL for the first day of the period containing a local date (ISO weeks start on Monday, as in PostgreSQL)."""
    if period == "day":
        return local_date
    return sql.SQL("date_trunc({}, {}::timestamp)::date").format(sql.Literal(period), local_date)


def retention_table_sql(query: RetentionQuery, has_tz: bool = False):
    """Build the cohort-table query (every cohort in the data, periods 0..N).

    Returns
    -------
    statement : psycopg2.sql.Composed
        Rows ``(cohort_start, cohort_size, period_number, users, last_data_day)``. With ``mode="on"``, ``users``
        is the number of cohort users active in period ``period_number``; with ``"on-or-after"``, the number whose
        *last* active period is ``period_number`` (periods after N counted as N), to be summed from the right.
        ``period_number``/``users`` are NULL for a cohort with no such activity. ``last_data_day`` is the local
        date of the latest event in the table, the same on every row.
    params : dict

    Notes
    -----
    The local periods spanned by the data are listed once (``bounds``) with the instant each begins; an event's
    period is then ``width_bucket(time, instants)``, a binary search, rather than a time-zone conversion of every
    event, and period numbers are differences of those indexes. Each user's activity is aggregated per period
    before the join to the cohorts. The periods are listed as plain timestamps, so the session's ``TimeZone``
    (a midnight it skips, say) never moves them.
    """
    t, u, ev = (sql.Identifier(n) for n in (query.time_col, query.user_col, query.event_col))
    bucket = sql.SQL("width_bucket({}, (SELECT instants FROM bounds))").format(t)
    group = sql.SQL("GROUP BY {}").format(u)
    if query.retention == "recurring":
        group = sql.SQL("GROUP BY {}, {}").format(u, bucket)
    returning = sql.SQL("")
    if query.returning_events:
        returning = sql.SQL(" AND {}").format(_event_filter(ev, query.returning_events))
    k = sql.SQL("(a.period - c.cohort_period)")
    if query.mode == "on":
        # (cohort, user, period) rows are unique: activity has one row per user and period, cohort one per user
        # and cohort period.
        per_user = sql.SQL("SELECT c.cohort_period, {k} AS period_number").format(k=k)
        per_user_rest = sql.SQL("WHERE {k} <= %(intervals)s").format(k=k)
    else:
        per_user = sql.SQL("SELECT c.cohort_period, least(max({k}), %(intervals)s) AS period_number").format(k=k)
        per_user_rest = sql.SQL("GROUP BY c.cohort_period, c.uid")
    first_instant = sql.SQL("(p::timestamp AT TIME ZONE %(tz)s)")
    if not has_tz:
        first_instant = sql.SQL("({} AT TIME ZONE 'UTC')").format(first_instant)
    statement = sql.SQL(
        """WITH span AS (
    SELECT {first_period} AS first_period, {last_day} AS last_day FROM {table}
),
bounds AS (
    -- every local period from the first event's to the last event's, and the instant it begins
    SELECT array_agg(p::date ORDER BY p) AS starts, array_agg({first_instant} ORDER BY p) AS instants
    FROM span, generate_series(span.first_period::timestamp, span.last_day::timestamp, %(step)s::interval) AS p
),
cohort AS (
    SELECT {u} AS uid, min({t}) AS anchor, width_bucket(min({t}), (SELECT instants FROM bounds)) AS cohort_period
    FROM {table}
    WHERE {cohort_filter} AND {u} IS NOT NULL AND {t} IS NOT NULL
    {group}
),
activity AS (
    -- one row per user and period with a returning event: its last one (an event at or after the anchor exists
    -- in a period exactly when the period's last event is)
    SELECT {u} AS uid, {bucket} AS period, max({t}) AS last_time
    FROM {table}
    WHERE {u} IS NOT NULL AND {t} IS NOT NULL{returning}
    GROUP BY 1, 2
),
per_user AS (
    {per_user}
    FROM cohort AS c
    JOIN activity AS a ON a.uid = c.uid AND a.period >= c.cohort_period AND a.last_time >= c.anchor
    {per_user_rest}
),
cohort_size AS (
    SELECT cohort_period, count(*) AS cohort_size FROM cohort GROUP BY cohort_period
),
counts AS (
    SELECT cohort_period, period_number, count(*) AS users FROM per_user GROUP BY cohort_period, period_number
)
SELECT (SELECT starts[s.cohort_period] FROM bounds) AS cohort_start, s.cohort_size, n.period_number, n.users,
       (SELECT last_day FROM span) AS last_data_day
FROM cohort_size AS s LEFT JOIN counts AS n USING (cohort_period)
ORDER BY s.cohort_period, n.period_number"""
    ).format(
        table=table_identifier(query.table),
        u=u,
        t=t,
        bucket=bucket,
        first_period=_period_of(_local_date(sql.SQL("min({})").format(t), has_tz), query.period),
        last_day=_local_date(sql.SQL("max({})").format(t), has_tz),
        first_instant=first_instant,
        cohort_filter=_event_filter(ev, query.cohort_events),
        group=group,
        per_user=per_user,
        per_user_rest=per_user_rest,
        returning=returning,
    )
    params = {"tz": query.tz, "intervals": query.intervals, "step": f"1 {query.period}"}
    return statement, params


def retention_table(conn, query: RetentionQuery) -> pd.DataFrame:
    """Run :func:`retention_table_sql` and pivot it.

    Returns
    -------
    pandas.DataFrame
        Index ``cohort_start`` (``datetime.date`` of the period's first day, ascending); column ``cohort_size``
        (int) then ``period_0`` .. ``period_N`` (float shares in [0, 1]); NaN where period P+k starts after the
        last day in the data.

    Raises
    ------
    EventsTableError
        See :func:`time_column_has_tz`.
    """
    has_tz = time_column_has_tz(conn, query)
    statement, params = retention_table_sql(query, has_tz)
    with conn.cursor() as cur:
        # The per-user, per-period aggregate of a 10M-event table spills to disk at the default 4 MB; SET LOCAL
        # lasts until this transaction ends.
        cur.execute("SET LOCAL work_mem = %s", (REPORT_WORK_MEM,))
        cur.execute(statement, params)
        rows = cur.fetchall()
    n = query.intervals
    columns = [f"period_{k}" for k in range(n + 1)]
    if not rows:
        return pd.DataFrame(columns=["cohort_size", *columns], index=pd.Index([], name="cohort_start"))
    long = pd.DataFrame(rows, columns=["cohort_start", "cohort_size", "period_number", "users", "last_day"])
    sizes = long.groupby("cohort_start")["cohort_size"].first()
    counts = long.dropna(subset=["period_number"]).pivot(index="cohort_start", columns="period_number", values="users")
    counts = counts.reindex(index=sizes.index, columns=range(n + 1)).fillna(0)
    if query.mode == "on-or-after":
        counts = counts.iloc[:, ::-1].cumsum(axis=1).iloc[:, ::-1]  # last active period >= k
    shares = counts.div(sizes, axis=0)
    last_day = long["last_day"].iloc[0]
    known = np.array([[add_periods(start, k, query.period) <= last_day for k in range(n + 1)] for start in sizes.index])
    shares = shares.where(known)
    shares.columns = columns
    table = pd.concat([sizes.astype(int), shares.astype(float)], axis=1)
    table.index.name = "cohort_start"
    return table


def all_cohorts_row(table: pd.DataFrame) -> pd.Series:
    """Cohort-size-weighted mean of each ``period_k`` column over the cohorts that have that cell.

    Returns a Series with the table's columns: ``cohort_size`` is the total of all cohorts, each ``period_k`` is
    ``sum(share * size) / sum(size)`` over rows where the share is not NaN (NaN when no row has it).
    """
    sizes = table["cohort_size"].astype(float)
    shares = table.drop(columns="cohort_size")
    known = shares.notna()
    weights = known.mul(sizes, axis=0).sum()
    means = shares.fillna(0).mul(sizes, axis=0).sum() / weights.where(weights > 0)
    return pd.concat([pd.Series({"cohort_size": int(sizes.sum())}), means])
