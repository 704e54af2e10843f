"""Load generated events into PostgreSQL with COPY, in one transaction, without harming existing tables.

Rules (a user's real database may be on the other end):

* a table this run did not create is never dropped, truncated or altered, except when ``replace=True``
  (``--replace``), which drops and re-creates it inside the same transaction as the load;
* a non-empty existing table is refused, unless it carries this seeder's stamp for the very same generator
  parameters (then it already holds exactly these rows and is reused untouched, so reruns work);
* an existing empty table with the right columns is filled, but gets no indexes (the schema is the owner's);
* CREATE TABLE, COPY, CREATE INDEX and the stamp are one transaction: a failure leaves no partial table.
"""

from __future__ import annotations

import io
import json
import sys
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
from psycopg2 import sql
from tqdm import tqdm

from retention import RetentionQuery, index_statements, table_identifier, time_column_has_tz

STAMP_PREFIX = "offsite-test Q1 seed "


class SeedRefused(Exception):
    """Seeding would overwrite or alter data the user did not ask to replace. ``str(exc)`` is one line."""


@dataclass
class SeedReport:
    """What :func:`seed_events` did. Times are wall-clock seconds."""

    action: str  # "created", "replaced", "filled existing empty table" or "reused"
    rows: int = 0
    seconds: dict = field(default_factory=dict)


def events_to_csv(frame: pd.DataFrame) -> bytes:
    """CSV bytes (no header) of ``frame[time, uid, event_name]`` in the form COPY ... (FORMAT csv) reads.

    pyarrow's multi-threaded CSV writer is used because formatting, not the server, limits the load rate.
    """
    table = pa.Table.from_pandas(frame[["time", "uid", "event_name"]], preserve_index=False)
    out = io.BytesIO()
    pa_csv.write_csv(table, out, pa_csv.WriteOptions(include_header=False))
    return out.getvalue()


def copy_events(cur, table: str, frames: Iterable[pd.DataFrame], total: int | None = None, freeze: bool = False) -> int:
    """COPY every frame into ``table`` through ``cur``; return the number of rows sent.

    ``freeze=True`` (only for a table created in the current transaction) writes the rows frozen and
    all-visible, so index-only scans need no heap visits and VACUUM has little left to do.
    Shows a tqdm bar on a terminal. Does not commit.
    """
    options = sql.SQL("FORMAT csv, FREEZE" if freeze else "FORMAT csv")
    statement = (
        sql.SQL("COPY {} (time, uid, event_name) FROM STDIN WITH ({})")
        .format(table_identifier(table), options)
        .as_string(cur)
    )
    rows = 0
    with tqdm(total=total, unit="event", unit_scale=True, desc=f"COPY {table}", disable=not sys.stderr.isatty()) as bar:
        for n_rows, payload in _prefetched_csv(frames):
            cur.copy_expert(statement, io.BytesIO(payload))
            rows += n_rows
            bar.update(n_rows)
    return rows


def _prefetched_csv(frames: Iterable[pd.DataFrame]) -> Iterator[tuple[int, bytes]]:
    """Yield ``(rows, csv bytes)`` per frame; the next frame is generated and formatted in a worker thread
    while the server parses the current one (numpy and pyarrow release the GIL, so this uses a second core).
    """
    frames = iter(frames)

    def prepare():
        frame = next(frames, None)
        return None if frame is None else (len(frame), events_to_csv(frame))

    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(prepare)
        while (result := pending.result()) is not None:
            pending = pool.submit(prepare)
            yield result


def _table_state(cur, table: str) -> tuple[bool, bool, str | None]:
    """``(exists, has_rows, comment)`` of ``table``."""
    cur.execute(
        "SELECT to_regclass(%s) IS NOT NULL, obj_description(to_regclass(%s), 'pg_class')",
        (table_identifier(table).as_string(cur),) * 2,
    )
    exists, comment = cur.fetchone()
    if not exists:
        return False, False, None
    cur.execute(sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(table_identifier(table)))
    return True, cur.fetchone()[0], comment


def seed_events(
    conn, table: str, frames: Iterable[pd.DataFrame], stamp: dict, replace: bool = False, total: int | None = None
) -> SeedReport:
    """Create ``table`` and load ``frames`` into it in one transaction (see module docstring for the rules).

    Parameters
    ----------
    conn : psycopg2 connection (not in autocommit mode)
    table : str
        ``name`` or ``schema.name``; validated by :func:`retention.table_identifier`.
    frames : iterable of DataFrame
        Event chunks with columns ``time`` (naive UTC), ``uid``, ``event_name``; consumed only if loading.
    stamp : dict
        JSON-serialisable generator parameters, stored as the table comment to recognise our own table.
    replace : bool
        Drop and re-create an existing table (``--replace``).
    total : int, optional
        Expected row count, for the progress bar.

    Raises
    ------
    SeedRefused
        The table exists with rows (and is not our identical seed) and ``replace`` is False.
    EventsTableError
        An existing empty table lacks the needed columns.
    """
    ident = table_identifier(table)
    stamp_text = STAMP_PREFIX + json.dumps(stamp, sort_keys=True)
    seconds = {}
    try:
        with conn.cursor() as cur:
            exists, has_rows, comment = _table_state(cur, table)
            if exists and not replace:
                if comment == stamp_text:
                    conn.rollback()
                    return SeedReport("reused")
                if has_rows:
                    raise SeedRefused(
                        f"table {table} already exists and has rows; pass --replace to drop and re-seed it, "
                        f"--no-seed to query it as it is, or --table to seed another table"
                    )
                time_column_has_tz(conn, RetentionQuery(table=table))
                started = time.perf_counter()
                rows = copy_events(cur, table, frames, total)
                seconds["copy"] = time.perf_counter() - started
                conn.commit()
                return SeedReport("filled existing empty table", rows, seconds)
            if exists:
                cur.execute(sql.SQL("DROP TABLE {}").format(ident))
            # Byte-order ("C") collation: ids have no linguistic order, and it lets index builds sort 2-3x faster.
            cur.execute(
                sql.SQL(
                    'CREATE TABLE {} (time timestamp NOT NULL, uid text COLLATE "C" NOT NULL, '
                    'event_name text COLLATE "C" NOT NULL)'
                ).format(ident)
            )
            started = time.perf_counter()
            rows = copy_events(cur, table, frames, total, freeze=True)
            seconds["copy"] = time.perf_counter() - started
            started = time.perf_counter()
            for statement in index_statements(RetentionQuery(table=table)):
                cur.execute(statement)
            cur.execute(sql.SQL("COMMENT ON TABLE {} IS %s").format(ident), (stamp_text,))
            seconds["indexes"] = time.perf_counter() - started
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    started = time.perf_counter()
    vacuum_analyze(conn, table)
    seconds["vacuum_analyze"] = time.perf_counter() - started
    return SeedReport("replaced" if exists else "created", rows, seconds)


def vacuum_analyze(conn, table: str) -> None:
    """VACUUM (ANALYZE) a table we just created: statistics for the planner, visibility map for index-only scans."""
    previous = conn.autocommit
    conn.autocommit = True  # VACUUM cannot run inside a transaction block
    try:
        with conn.cursor() as cur:
            cur.execute(sql.SQL("VACUUM (ANALYZE) {}").format(table_identifier(table)))
    finally:
        conn.autocommit = previous
