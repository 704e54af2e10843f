"""Independent pandas computation of the retention definitions in ``retention.py``, for tests and cross-checks.

It shares only the parameter objects with the SQL. Where the SQL compares raw timestamps against UTC
bounds of local midnights, this module converts every event to its local calendar date and compares dates,
so an error in either approach to days and time zones shows up as a disagreement.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from retention import RetentionQuery, RetentionTableQuery


def local_dates(times: pd.Series, tz: str) -> pd.Series:
    """Local calendar date in ``tz`` of naive UTC timestamps. Shape kept; values are ``datetime.date``."""
    return pd.to_datetime(times).dt.tz_localize("UTC").dt.tz_convert(tz).dt.date


def _first_installs(events: pd.DataFrame, cohort_event: str) -> pd.Series:
    """First install time per uid (index uid), ignoring rows without uid or time."""
    usable = events.dropna(subset=["uid", "time"])
    installs = usable[usable["event_name"] == cohort_event]
    return installs.groupby("uid")["time"].min().rename("installed_at")


def cohort_retention_reference(events: pd.DataFrame, query: RetentionQuery) -> tuple[set, set]:
    """Cohort and retained uids for ``query`` over ``events``.

    Parameters
    ----------
    events : pandas.DataFrame
        Columns ``time`` (naive UTC timestamps), ``uid``, ``event_name``; one row per event.

    Returns
    -------
    cohort_uids, retained_uids : set of str
    """
    first = _first_installs(events, query.cohort_event)
    cohort = first[local_dates(first, query.tz).to_numpy() == query.cohort_date]
    joined = events.dropna(subset=["uid", "time"]).merge(cohort, left_on="uid", right_index=True)
    day = local_dates(joined["time"], query.tz)
    returned = (joined["time"] >= joined["installed_at"]) & (day >= query.window_start) & (day <= query.window_end)
    return set(cohort.index), set(joined.loc[returned, "uid"])


def retention_table_reference(events: pd.DataFrame, query: RetentionTableQuery) -> pd.DataFrame:
    """Day-0..N retention table, same layout as :func:`retention.retention_table`, computed cohort by cohort."""
    first = _first_installs(events, query.cohort_event)
    install_day = pd.Series(local_dates(first, query.tz).to_numpy(), index=first.index)
    usable = events.dropna(subset=["uid", "time"]).merge(first, left_on="uid", right_index=True)
    usable = usable[usable["time"] >= usable["installed_at"]]
    usable_day = local_dates(usable["time"], query.tz).to_numpy()
    last_day = local_dates(events["time"].dropna(), query.tz).max()
    rows = {}
    for cohort_date in sorted(set(install_day)):
        members = set(install_day.index[install_day.to_numpy() == cohort_date])
        row = {"cohort_size": len(members)}
        for k in range(query.days + 1):
            day = cohort_date + pd.Timedelta(days=k).to_pytimedelta()
            if day > last_day:
                row[f"day_{k}"] = np.nan
                continue
            active = set(usable.loc[(usable_day == day) & usable["uid"].isin(members).to_numpy(), "uid"])
            row[f"day_{k}"] = len(active) / len(members)
        rows[cohort_date] = row
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "cohort_date"
    return table
