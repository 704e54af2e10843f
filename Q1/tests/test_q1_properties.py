"""Property: on random event sets and random questions the SQL and the independent pandas reference agree."""

import datetime as dt
import zoneinfo

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from q1_testing import load_events, read_back
from retention import MODES, PERIODS, RETENTION_TYPES, RetentionQuery, cohort_retention, retention_table
from retention_reference import cohort_retention_reference, retention_table_reference

pytestmark = pytest.mark.slow  # every test here runs on the embedded PostgreSQL

# Each base day sits next to daylight-saving changes of some zones below, several of them at local midnight
# (Havana and Beirut skip 00:00-01:00, Asuncion and Santiago repeat 23:00-24:00), so day, week and month bounds fall
# in gaps and folds. Kathmandu (+05:45) and Kiritimati (+14) test odd and extreme offsets.
BASES = [dt.datetime(2017, 3, 12), dt.datetime(2017, 3, 26), dt.datetime(2017, 4, 1), dt.datetime(2017, 5, 13)]
ZONES = [
    "UTC",
    "America/Havana",
    "Asia/Beirut",
    "America/Asuncion",
    "America/Santiago",
    "America/New_York",
    "Europe/London",
    "Australia/Adelaide",
    "Asia/Kathmandu",
    "Pacific/Kiritimati",
]
NAMES = ["FIRST_INSTALL", "FIRST_INSTALL", "first_open", "APP_OPEN", "A"]
SPREAD_DAYS = {"day": (-1, 7), "week": (-8, 16), "month": (-35, 45)}
SETTINGS = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _midnights(tz: str, days) -> list[dt.datetime]:
    """Naive-UTC instants at which each local day in ``tz`` begins (the first instant of the day when midnight is
    skipped), and the second before each."""
    zone = zoneinfo.ZoneInfo(tz)
    starts = []
    for d in days:
        local = dt.datetime.combine(d, dt.time(), zone)
        utc = local.astimezone(dt.timezone.utc)
        if utc.astimezone(zone).date() != d:  # midnight is in a gap: the day begins when the clock jumps
            utc = dt.datetime.combine(d, dt.time(1), zone).astimezone(dt.timezone.utc)
        starts.append(utc.replace(tzinfo=None))
    return starts + [s - dt.timedelta(seconds=1) for s in starts]


@st.composite
def questions(draw):
    """(events, RetentionQuery without a table): a small event set and a question whose edges it often touches."""
    base = draw(st.sampled_from(BASES))
    tz = draw(st.sampled_from(ZONES))
    period = draw(st.sampled_from(PERIODS))
    mode = draw(st.sampled_from(MODES))
    cohort = base.date() + dt.timedelta(days=draw(st.integers(-1, 2)))
    first = RetentionQuery(cohort, period=period, tz=tz).cohort_period[0]
    window_start = window_end = None
    if draw(st.booleans()):  # an explicit window; else the defaults (next period .. period N)
        window_start = first + dt.timedelta(days=draw(st.integers(0, 9)))
        if mode == "on":
            window_end = window_start + dt.timedelta(days=draw(st.integers(0, 9)))
    query = RetentionQuery(
        cohort,
        window_start,
        window_end,
        tz=tz,
        cohort_events=draw(st.sampled_from([("FIRST_INSTALL",), ("FIRST_INSTALL", "first_open")])),
        returning_events=draw(st.sampled_from([(), ("APP_OPEN",), ("APP_OPEN", "A")])),
        period=period,
        intervals=draw(st.integers(0, 4)),
        retention=draw(st.sampled_from(RETENTION_TYPES)),
        mode=mode,
    )
    low, high = SPREAD_DAYS[period]
    anywhere = st.builds(
        lambda d, s: base + dt.timedelta(days=d, seconds=s), st.integers(low, high), st.integers(0, 86_399)
    )
    edges = [first, query.cohort_period[1], query.window_start]
    edges += [] if query.window_end is None else [query.window_end + dt.timedelta(days=1)]
    on_edge = st.sampled_from(_midnights(tz, edges))
    uid = st.sampled_from([f"u{i}" for i in range(5)])
    installs = st.lists(st.tuples(st.one_of(on_edge, anywhere), uid, st.sampled_from(NAMES[:3])), max_size=8)
    install_rows = draw(installs)
    # Edge events mostly go to installed users: an off-by-one at a window edge only shows on a cohort member.
    edge_uid = st.sampled_from(sorted({u for _, u, _ in install_rows})) if install_rows else uid
    name = st.sampled_from(NAMES)
    rows = (
        install_rows
        + draw(st.lists(st.tuples(on_edge, edge_uid, name), max_size=8))
        + draw(st.lists(st.tuples(anywhere, uid, name), min_size=1, max_size=12))
    )
    events = pd.DataFrame(rows, columns=["time", "uid", "event_name"]).astype({"time": "datetime64[s]"})
    return events, query


@pytest.fixture
def fresh_table(conn, table_name):
    """Loads a hypothesis example into the test's own table (dropped between examples); returns the stored rows."""

    def reset(events):
        with conn.cursor() as cur:
            cur.execute(f'DROP TABLE IF EXISTS "{table_name}"')
        conn.commit()
        load_events(conn, table_name, events)
        return read_back(conn, table_name)

    return reset


def _on(query: RetentionQuery, table: str) -> RetentionQuery:
    fields = {name: getattr(query, name) for name in query.__dataclass_fields__}
    return RetentionQuery(**{**fields, "table": table})


@SETTINGS
@given(case=questions())
def test_cohort_users_match_reference(conn, table_name, fresh_table, case):
    events, query = case
    stored = fresh_table(events)
    query = _on(query, table_name)
    result = cohort_retention(conn, query, list_users=True)
    assert (result.cohort_uids, result.retained_uids) == cohort_retention_reference(stored, query)


@SETTINGS
@given(case=questions())
def test_retention_table_matches_reference(conn, table_name, fresh_table, case):
    events, query = case
    stored = fresh_table(events)
    query = _on(query, table_name)
    expected = retention_table_reference(stored, query)
    got = retention_table(conn, query)
    if expected.empty:
        assert got.empty
    else:
        pd.testing.assert_frame_equal(got, expected, check_dtype=False)
