"""The SQL answers against hand-checked events and against the pandas reference on generated events."""

import datetime as dt
import uuid

import numpy as np
import pandas as pd
import psycopg2.extras
import pytest

from event_generator import generate_events
from q1_testing import events_frame, load_events, read_back
from retention import RetentionQuery, cohort_retention, retention_table
from retention_reference import cohort_retention_reference, retention_table_reference

pytestmark = pytest.mark.slow  # every test here runs on the embedded PostgreSQL

D = dt.date(2017, 4, 1)

# Hand-checked: cohort 2017-04-01 UTC is {late, midnight, never_back, boundary}; retained (04-02..04-08) is
# {late, midnight}. Reasons are in the uid names.
HAND_EVENTS = events_frame(
    [
        ("2017-04-01 10:00:00", "late", "FIRST_INSTALL"),
        ("2017-04-08 15:00:00", "late", "APP_OPEN"),  # afternoon of the window's last day: counts
        ("2017-04-01 23:59:59", "midnight", "FIRST_INSTALL"),
        ("2017-04-02 00:00:00", "midnight", "A"),  # first second of the window: counts
        ("2017-03-31 09:00:00", "never_back", "APP_OPEN"),  # before the install: never counts
        ("2017-04-01 09:00:00", "never_back", "FIRST_INSTALL"),
        ("2017-04-01 00:00:00", "boundary", "FIRST_INSTALL"),
        ("2017-04-01 12:00:00", "boundary", "FIRST_INSTALL"),  # repeated install, same day: one user
        ("2017-04-09 00:00:00", "boundary", "APP_OPEN"),  # first second after the window: does not count
        ("2017-03-31 23:59:59", "earlier", "FIRST_INSTALL"),  # first install the day before: not in cohort
        ("2017-04-01 08:00:00", "earlier", "FIRST_INSTALL"),
        ("2017-04-03 08:00:00", "earlier", "APP_OPEN"),
        ("2017-04-01 08:00:00", "no_install", "APP_OPEN"),  # never installed: not in cohort
        ("2017-04-03 08:00:00", "no_install", "APP_OPEN"),
    ]
)


def test_hand_checked_cohort_and_window_edges(conn, table_name):
    load_events(conn, table_name, HAND_EVENTS)
    result = cohort_retention(conn, RetentionQuery(D, table=table_name), list_users=True)
    assert result.cohort_uids == {"late", "midnight", "never_back", "boundary"}
    assert result.retained_uids == {"late", "midnight"}
    assert (result.cohort_size, result.retained_users, result.retention_rate) == (4, 2, 0.5)


def test_original_between_to_date_form_drops_last_afternoon(conn, table_name):
    """Why the windows are half-open: BETWEEN to_date(a) AND to_date(b) stops at 00:00 of the last day."""
    load_events(conn, table_name, HAND_EVENTS)
    with conn.cursor() as cur:
        cur.execute(f"""SELECT count(*) FROM "{table_name}" WHERE uid = 'late'
                        AND time BETWEEN to_date('2017-04-02', 'YYYY-MM-DD') AND to_date('2017-04-08', 'YYYY-MM-DD')""")
        assert cur.fetchone()[0] == 0
    assert "late" in cohort_retention(conn, RetentionQuery(D, table=table_name), list_users=True).retained_uids


def test_time_zone_moves_day_boundaries(conn, table_name):
    # 2017-04-01 17:00 UTC is 2017-04-02 01:00 in Hong Kong (UTC+8, no DST).
    load_events(
        conn,
        table_name,
        events_frame(
            [
                ("2017-03-31 17:00:00", "hk", "FIRST_INSTALL"),  # HK 04-01 01:00: cohort in HK, not in UTC
                ("2017-04-08 17:00:00", "hk", "APP_OPEN"),  # HK 04-09 01:00: after the HK window
                ("2017-04-01 01:00:00", "both", "FIRST_INSTALL"),  # HK 04-01 09:00: cohort in both
                ("2017-04-01 17:00:00", "both", "APP_OPEN"),  # HK 04-02 01:00: retained in HK, day 0 in UTC
            ]
        ),
    )
    hk = cohort_retention(conn, RetentionQuery(D, tz="Asia/Hong_Kong", table=table_name), list_users=True)
    utc = cohort_retention(conn, RetentionQuery(D, table=table_name), list_users=True)
    assert (hk.cohort_uids, hk.retained_uids) == ({"hk", "both"}, {"both"})
    assert (utc.cohort_uids, utc.retained_uids) == ({"both"}, set())


def test_timestamptz_column_gives_same_answer(conn, table_name):
    load_events(conn, table_name, HAND_EVENTS)
    with conn.cursor() as cur:
        cur.execute(f"""CREATE TABLE "{table_name}_tz" AS
                        SELECT time AT TIME ZONE 'UTC' AS time, uid, event_name FROM "{table_name}" """)
    for tz in ("UTC", "America/New_York"):
        plain = cohort_retention(conn, RetentionQuery(D, tz=tz, table=table_name), list_users=True)
        aware = cohort_retention(conn, RetentionQuery(D, tz=tz, table=f"{table_name}_tz"), list_users=True)
        assert (plain.cohort_uids, plain.retained_uids) == (aware.cohort_uids, aware.retained_uids)


@pytest.mark.parametrize("distribution", ["app", "uniform"])
def test_generated_events_match_pandas_over_rows_read_back(conn, table_name, distribution):
    load_events(conn, table_name, pd.concat(generate_events(distribution)))
    stored = read_back(conn, table_name)
    assert len(stored) == 10_000
    for query in (
        RetentionQuery(D, table=table_name),
        RetentionQuery(dt.date(2017, 4, 3), tz="Asia/Hong_Kong", table=table_name),
        RetentionQuery(D, D, D, tz="America/Los_Angeles", table=table_name),
    ):
        result = cohort_retention(conn, query, list_users=True)
        assert (result.cohort_uids, result.retained_uids) == cohort_retention_reference(stored, query)
        assert (result.cohort_size, result.retained_users) == (len(result.cohort_uids), len(result.retained_uids))


def test_report_matches_reference_and_leaves_future_cells_empty(conn, table_name):
    load_events(conn, table_name, pd.concat(generate_events("app")))
    stored = read_back(conn, table_name)
    query = RetentionQuery(intervals=12, tz="Asia/Hong_Kong", table=table_name)
    table = retention_table(conn, query)
    pd.testing.assert_frame_equal(table, retention_table_reference(stored, query), check_dtype=False)
    assert (table["period_0"] == 1.0).all()  # everyone is active on their install day
    last_cohort = table.index.max()
    assert np.isnan(table.loc[last_cohort, "period_1"])  # nothing after the last day is known
    assert np.isnan(table.loc[table.index.min(), "period_12"])  # 12 days after the first cohort is past the data


def test_report_cell_equals_single_day_cohort_query(conn, table_name):
    load_events(conn, table_name, pd.concat(generate_events("uniform")))
    table = retention_table(conn, RetentionQuery(intervals=3, table=table_name))
    for k in range(4):
        day = D + dt.timedelta(days=k)
        one_day = cohort_retention(conn, RetentionQuery(D, day, day, table=table_name))
        assert one_day.cohort_size == table.loc[D, "cohort_size"]
        assert one_day.retained_users == round(table.loc[D, f"period_{k}"] * one_day.cohort_size)


@pytest.mark.parametrize(
    "uid_type, to_uid", [("bigint", lambda i: 10**12 + i), ("uuid", lambda i: str(uuid.UUID(int=i)))]
)
def test_other_column_names_and_uid_types_match_reference(conn, table_name, uid_type, to_uid):
    """A table laid out like an analytics export: ts timestamptz, user_id bigint or uuid, action text."""
    events = pd.concat(generate_events("app")).reset_index(drop=True)
    numbers = {uid: i for i, uid in enumerate(sorted(events["uid"].unique()))}
    with conn.cursor() as cur:
        cur.execute(f'CREATE TABLE "{table_name}" (ts timestamptz, user_id {uid_type}, action text)')
        rows = [(t.to_pydatetime().replace(tzinfo=dt.timezone.utc), to_uid(numbers[u]), e) for t, u, e in events.values]
        psycopg2.extras.execute_values(cur, f'INSERT INTO "{table_name}" VALUES %s', rows)
    conn.commit()
    frame = pd.DataFrame(
        {
            "ts": events["time"],
            "user_id": [str(to_uid(numbers[u])) for u in events["uid"]],
            "action": events["event_name"],
        }
    )
    columns = {"time_col": "ts", "user_col": "user_id", "event_col": "action", "table": table_name}
    query = RetentionQuery(D, tz="Asia/Hong_Kong", returning_events=("APP_OPEN",), **columns)
    result = cohort_retention(conn, query, list_users=True)
    assert (result.cohort_uids, result.retained_uids) == cohort_retention_reference(frame, query)
    assert len(result.retained_uids) > 10 and all(isinstance(u, str) for u in result.retained_uids)
    report_query = RetentionQuery(period="week", intervals=2, mode="on-or-after", **columns)
    pd.testing.assert_frame_equal(
        retention_table(conn, report_query), retention_table_reference(frame, report_query), check_dtype=False
    )


def test_report_does_not_depend_on_the_session_time_zone(conn, table_name):
    # Asia/Amman skipped 2017-03-31 00:00 (clocks went to 01:00). A session in that zone must not move the report's
    # UTC day boundaries: "late" installs on 03-31 00:30 UTC, which is in the UTC cohort of 03-31.
    load_events(
        conn,
        table_name,
        events_frame(
            [
                ("2017-03-30 12:00:00", "early", "FIRST_INSTALL"),
                ("2017-03-31 00:30:00", "late", "FIRST_INSTALL"),
                ("2017-04-01 00:30:00", "late", "APP_OPEN"),
                ("2017-04-02 12:00:00", "early", "APP_OPEN"),
            ]
        ),
    )
    stored = read_back(conn, table_name)
    query = RetentionQuery(intervals=2, table=table_name)
    with conn.cursor() as cur:
        cur.execute("SET TimeZone = 'Asia/Amman'")
    table = retention_table(conn, query)
    pd.testing.assert_frame_equal(table, retention_table_reference(stored, query), check_dtype=False)
    assert table.loc[dt.date(2017, 3, 31), "cohort_size"] == 1 and table.loc[dt.date(2017, 3, 31), "period_1"] == 1.0
