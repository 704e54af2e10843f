"""Independent pandas computation of the retention definitions in ``retention.py``, for tests and benchmarks.

It shares only the :class:`retention.RetentionQuery` object with the SQL. Where the SQL compares raw timestamps
against UTC bounds of local midnights and lets PostgreSQL truncate dates to weeks and months, this module converts
every event to its local time with pandas and uses pandas periods (``D``, ``W-SUN`` = ISO weeks from Monday,
``M``), so an error in either approach to days, periods and time zones shows up as a disagreement.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from retention import RetentionQuery

FREQ = {"day": "D", "week": "W-SUN", "month": "M"}


def _usable(events: pd.DataFrame, query: RetentionQuery) -> pd.DataFrame:
    """Rows with a user and a time, columns renamed to time/uid/event_name, plus local ``period`` and ``day``."""
    frame = events.rename(columns={query.time_col: "time", query.user_col: "uid", query.event_col: "event_name"})
    frame = frame.dropna(subset=["uid", "time"]).copy()
    frame["uid"] = frame["uid"].astype(str)
    local = pd.to_datetime(frame["time"]).dt.tz_localize("UTC").dt.tz_convert(query.tz).dt.tz_localize(None)
    frame["day"] = local.dt.date
    frame["period"] = local.dt.to_period(FREQ[query.period])
    return frame


def _cohorts(frame: pd.DataFrame, query: RetentionQuery) -> pd.DataFrame:
    """One row per cohort membership: uid, period (the cohort's), anchor (first cohort event in that period)."""
    installs = frame[frame["event_name"].isin(query.cohort_events)]
    if query.retention == "first":
        first = installs.sort_values("time").drop_duplicates("uid")
        return first[["uid", "period", "time"]].rename(columns={"time": "anchor"}).reset_index(drop=True)
    return installs.groupby(["uid", "period"], as_index=False)["time"].min().rename(columns={"time": "anchor"})


def _returns(frame: pd.DataFrame, query: RetentionQuery) -> pd.DataFrame:
    return frame[frame["event_name"].isin(query.returning_events)] if query.returning_events else frame


def cohort_retention_reference(events: pd.DataFrame, query: RetentionQuery) -> tuple[set, set]:
    """Cohort and retained uids (as ``str``) of ``query``'s single cohort over ``events``.

    Parameters
    ----------
    events : pandas.DataFrame
        One row per event; columns named by ``query.time_col`` (naive UTC timestamps), ``query.user_col`` and
        ``query.event_col``.

    Returns
    -------
    cohort_uids, retained_uids : set of str
    """
    frame = _usable(events, query)
    cohorts = _cohorts(frame, query)
    target = pd.Period(query.cohort_date, FREQ[query.period])
    cohort = cohorts[cohorts["period"] == target]
    joined = _returns(frame, query).merge(cohort[["uid", "anchor"]], on="uid")
    inside = (joined["time"] >= joined["anchor"]) & (joined["day"] >= query.window_start)
    if query.window_end is not None:
        inside &= joined["day"] <= query.window_end
    return set(cohort["uid"]), set(joined.loc[inside, "uid"])


def retention_table_reference(events: pd.DataFrame, query: RetentionQuery) -> pd.DataFrame:
    """Period-0..N retention table, same layout as :func:`retention.retention_table`, computed cohort by cohort."""
    frame = _usable(events, query)
    cohorts = _cohorts(frame, query)
    returns = _returns(frame, query)
    times = pd.to_datetime(events[query.time_col].dropna())
    last_day = times.max().tz_localize("UTC").tz_convert(query.tz).date() if len(times) else None
    rows = {}
    for period, members in cohorts.groupby("period"):
        joined = returns.merge(members[["uid", "anchor"]], on="uid")
        joined = joined[joined["time"] >= joined["anchor"]]
        row = {"cohort_size": len(members)}
        for k in range(query.intervals + 1):
            target = period + k
            if target.start_time.date() > last_day:
                row[f"period_{k}"] = np.nan
                continue
            hit = joined["period"] == target if query.mode == "on" else joined["period"] >= target
            row[f"period_{k}"] = joined.loc[hit, "uid"].nunique() / len(members)
        rows[period.start_time.date()] = row
    columns = ["cohort_size", *[f"period_{k}" for k in range(query.intervals + 1)]]
    table = pd.DataFrame.from_dict(rows, orient="index", columns=columns)
    table.index.name = "cohort_start"
    return table
