"""Helpers shared by the Q1 tests (a uniquely named module: all parts' tests run in one pytest process)."""

import pandas as pd

from seed import seed_events


def events_frame(rows) -> pd.DataFrame:
    """DataFrame from ``(iso time, uid, event_name)`` tuples, times as naive UTC seconds."""
    return pd.DataFrame(rows, columns=["time", "uid", "event_name"]).astype({"time": "datetime64[s]"})


def load_events(conn, table: str, events: pd.DataFrame) -> None:
    """Create ``table`` and COPY ``events`` into it with the project's loader."""
    seed_events(conn, table, [events], stamp={"test": table})


def read_back(conn, table: str) -> pd.DataFrame:
    """The table's rows as the server stores them (columns time, uid, event_name)."""
    with conn.cursor() as cur:
        cur.execute(f'SELECT time, uid, event_name FROM "{table}"')
        return pd.DataFrame(cur.fetchall(), columns=["time", "uid", "event_name"])
