"""Property: on random event sets the SQL and the independent pandas reference name the same users."""

import datetime as dt
import zoneinfo

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from q1_testing import load_events, read_back
from retention import RetentionQuery, RetentionTableQuery, cohort_retention, retention_table
from retention_reference import cohort_retention_reference, retention_table_reference

BASE = dt.datetime(2017, 4, 1)
# Whole-hour, half-hour and +14h offsets; none has a DST change at local midnight (see README limitations).
ZONES = ["UTC", "Asia/Hong_Kong", "America/New_York", "Australia/Adelaide", "Pacific/Kiritimati", "Asia/Kathmandu"]
NAMES = ["FIRST_INSTALL", "FIRST_INSTALL", "APP_OPEN", "A"]
SETTINGS = settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _boundary_seconds(tz: str) -> list[int]:
    """Seconds of the UTC day at which local midnight falls in ``tz``, and one second either side; plus UTC's own."""
    offset = int(zoneinfo.ZoneInfo(tz).utcoffset(BASE).total_seconds())
    midnight = (-offset) % 86_400
    return [0, 1, 86_399, 15 * 3600, midnight, (midnight - 1) % 86_400, (midnight + 1) % 86_400]


def _edge_instants(tz: str, days) -> list[dt.datetime]:
    """Naive-UTC instants of local midnight of each day in ``tz``, and the second before each."""
    midnights = [
        dt.datetime.combine(d, dt.time(), zoneinfo.ZoneInfo(tz)).astimezone(dt.timezone.utc).replace(tzinfo=None)
        for d in days
    ]
    return midnights + [m - dt.timedelta(seconds=1) for m in midnights]


@st.composite
def event_sets(draw):
    tz = draw(st.sampled_from(ZONES))
    cohort = BASE.date() + dt.timedelta(days=draw(st.integers(-1, 2)))
    start = cohort + dt.timedelta(days=draw(st.integers(0, 2)))
    end = start + dt.timedelta(days=draw(st.integers(0, 3)))
    uid = st.sampled_from([f"u{i}" for i in range(5)])
    second = st.one_of(st.sampled_from(_boundary_seconds(tz)), st.integers(0, 86_399))
    # Days and windows share a narrow range so events often sit near a window or cohort edge.
    anywhere = st.builds(lambda d, s: BASE + dt.timedelta(days=d, seconds=s), st.integers(-1, 7), second)
    on_edge = st.sampled_from(
        _edge_instants(tz, [cohort, cohort + dt.timedelta(days=1), start, end + dt.timedelta(days=1)])
    )
    name = st.sampled_from(NAMES)
    cohort_midnight = _edge_instants(tz, [cohort])[0]
    on_cohort_day = st.builds(lambda s: cohort_midnight + dt.timedelta(seconds=s), st.integers(0, 86_399))
    # Installs are drawn apart (several on the cohort day) so most examples have a cohort worth checking.
    installs = st.lists(st.tuples(st.one_of(on_cohort_day, anywhere), uid, st.just("FIRST_INSTALL")), max_size=8)
    install_rows = draw(installs)
    # Edge events mostly go to installed users: an off-by-one at a window edge only shows on a cohort member.
    edge_uid = st.sampled_from(sorted({u for _, u, _ in install_rows})) if install_rows else uid
    rows = (
        install_rows
        + draw(st.lists(st.tuples(on_edge, edge_uid, name), max_size=8))
        + draw(st.lists(st.tuples(anywhere, uid, name), min_size=1, max_size=12))
    )
    events = pd.DataFrame(rows, columns=["time", "uid", "event_name"]).astype({"time": "datetime64[s]"})
    return events, tz, cohort, start, end


@pytest.fixture
def fresh_table(conn, table_name):
    """Drops the test's own table between hypothesis examples."""

    def reset(events):
        with conn.cursor() as cur:
            cur.execute(f'DROP TABLE IF EXISTS "{table_name}"')
        conn.commit()
        load_events(conn, table_name, events)
        return read_back(conn, table_name)

    return reset


@SETTINGS
@given(case=event_sets())
def test_cohort_users_match_reference(conn, table_name, fresh_table, case):
    events, tz, cohort, start, end = case
    stored = fresh_table(events)
    query = RetentionQuery(cohort, start, end, tz=tz, table=table_name)
    result = cohort_retention(conn, query, list_users=True)
    assert (result.cohort_uids, result.retained_uids) == cohort_retention_reference(stored, query)


@SETTINGS
@given(case=event_sets(), days=st.integers(0, 9))
def test_retention_table_matches_reference(conn, table_name, fresh_table, case, days):
    events, tz, *_ = case
    stored = fresh_table(events)
    query = RetentionTableQuery(days=days, tz=tz, table=table_name)
    expected = retention_table_reference(stored, query)
    got = retention_table(conn, query)
    if expected.empty:
        assert got.empty
    else:
        pd.testing.assert_frame_equal(got, expected, check_dtype=False)
