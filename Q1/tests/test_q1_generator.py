"""The app-like generator has the shape of a mobile app's analytics, checked with the pandas reference."""

import datetime as dt

import pandas as pd
import pytest

from event_generator import APP_EVENT_NAMES, app_events, generate_events, uniform_events
from retention import RetentionQuery
from retention_reference import retention_table_reference


@pytest.fixture(scope="module")
def app():
    return pd.concat(app_events(200_000, 20_000, chunk_users=7_000))  # several chunks, uneven last one


def test_exact_counts_one_install_first(app):
    assert len(app) == 200_000 and app["uid"].nunique() == 20_000
    installs = app[app["event_name"] == "FIRST_INSTALL"]
    assert installs["uid"].is_unique and len(installs) == 20_000
    first_time = app.groupby("uid")["time"].min()
    assert (installs.set_index("uid")["time"].reindex(first_time.index) == first_time).all()
    assert app["uid"].str.fullmatch(r"[0-9a-f]{16}").all()
    assert set(app["event_name"]) == {"FIRST_INSTALL", *APP_EVENT_NAMES}
    assert app["time"].min() >= pd.Timestamp("2017-04-01") and app["time"].max() < pd.Timestamp("2017-04-11")


def test_retention_curve_looks_like_an_app(app):
    table = retention_table_reference(app, RetentionQuery(intervals=7))
    weights = table["cohort_size"]
    day1 = (table["period_1"] * weights).sum() / weights[table["period_1"].notna()].sum()
    day7 = (table["period_7"] * weights).sum() / weights[table["period_7"].notna()].sum()
    assert 0.25 <= day1 <= 0.45 and 0.08 <= day7 <= 0.20, (day1, day7)
    assert table["cohort_size"].min() > 1_000  # installs spread over every day of the range


def test_fixed_seed_reproduces_and_uniform_keeps_original_shape():
    assert pd.concat(generate_events("app")).equals(pd.concat(generate_events("app")))
    uniform = uniform_events()
    assert len(uniform) == 10_000 and uniform["uid"].nunique() <= 1_000
    assert set(uniform["event_name"]) == {"FIRST_INSTALL", "A", "B"}
    assert uniform["time"].dt.date.min() == dt.date(2017, 4, 1) and uniform["time"].dt.date.max() == dt.date(
        2017, 4, 10
    )


def test_refuses_fewer_events_than_users():
    with pytest.raises(ValueError, match="at least one event per user"):
        next(app_events(10, 100))
