"""Versioned key-value store for the daily Last.fm artist recommendations.

A daily batch (``python Q3b/recommender.py batch --store URL``) writes every user's top-N artists as one new
*version*; the HTTP API (``rec_api.py``) reads the current version.  One small interface, two backends:

* ``sqlite:///path/to/recs.db`` -- an SQLite file in WAL mode (the embedded default; relative paths are resolved
  against the current directory, ``sqlite:////abs/path.db`` is absolute);
* ``postgresql://user:pass@host:port/db`` (or ``postgres://``) -- any libpq DSN, e.g. the docker-compose service or
  an embedded server.

Data model (same tables in both backends)::

    rec_versions (version, created_at, n_users, n_countries, complete)   one row per version
    rec_current  (id = 1, version)                                       the one-row pointer readers follow
    rec_users    (version, user_id, payload)                             key = (version, user), value = JSON list
    rec_fallbacks(version, country_key, country, payload)                top artists per country, '' = global

A user's value is the JSON array ``[[artist_mbid, artist_name, score, source], ...]`` in rank order (rank 1 first),
so a request is one primary-key lookup.  Atomic switch: the rows of a new version are written under a new version id
that no reader follows yet; one short transaction then marks it complete and moves ``rec_current``.  Every read is a
single SQL statement joining the pointer with the rows, so it sees exactly one committed snapshot (SQLite WAL
snapshot / PostgreSQL MVCC statement snapshot): one complete version, never a mix or an empty set.  After the switch
the store keeps the newest :data:`KEEP_VERSIONS` complete versions (and always the current one) and deletes the rest.

Other backends implement the same six methods (see ``Q3b/SERVING.md``): e.g. Redis with one hash per version
(``recs:v{N}`` user -> JSON) written first and a ``recs:current`` key flipped with ``SET`` afterwards; DynamoDB with
partition key ``version#user`` and a one-item pointer table updated after the batch write.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import io
import json
import os
import re
import sys
import threading
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

RECOMMENDATION_COLUMNS = ("user", "rank", "artist_mbid", "artist_name", "score", "source")
FALLBACK_COLUMNS = ("country", "rank", "artist_mbid", "artist_name", "score")
SOURCES = ("neighbours", "country", "global")
KEEP_VERSIONS = 3
USERS_PER_CHUNK = 20_000  # one committed insert per chunk keeps SQLite's WAL and Python's memory small

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS rec_versions (version INTEGER PRIMARY KEY, created_at TEXT NOT NULL,"
    " n_users INTEGER NOT NULL, n_countries INTEGER NOT NULL, complete INTEGER NOT NULL DEFAULT 0)",
    "CREATE TABLE IF NOT EXISTS rec_current (id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER)",
    "CREATE TABLE IF NOT EXISTS rec_users (version INTEGER NOT NULL, user_id TEXT NOT NULL,"
    " payload TEXT NOT NULL, PRIMARY KEY (version, user_id))",
    "CREATE TABLE IF NOT EXISTS rec_fallbacks (version INTEGER NOT NULL, country_key TEXT NOT NULL,"
    " country TEXT NOT NULL, payload TEXT NOT NULL, PRIMARY KEY (version, country_key))",
)
_USER_QUERY = (
    "SELECT c.version, u.payload FROM rec_current c"
    " LEFT JOIN rec_users u ON u.version = c.version AND u.user_id = ? WHERE c.id = 1"
)
_FALLBACK_QUERY = (
    "SELECT c.version, f.country_key, f.country, f.payload FROM rec_current c"
    " LEFT JOIN rec_fallbacks f ON f.version = c.version AND f.country_key IN (?, '') WHERE c.id = 1"
)
_INFO_QUERY = (
    "SELECT v.version, v.created_at, v.n_users FROM rec_current c"
    " JOIN rec_versions v ON v.version = c.version WHERE c.id = 1"
)


class NoVersionError(LookupError):
    """The store holds no complete version yet (no batch has finished)."""


class StoreBusyError(RuntimeError):
    """Another batch or rollback holds the store's writer lock."""


class StoreUnreachableError(ConnectionError):
    """The PostgreSQL server of a store URL cannot be reached; the message names host, port and database."""


def country_key(country: str | None) -> str:
    """Lookup key of a country name: stripped and case-folded; ``None`` or '' give '' (the global list)."""
    return (country or "").strip().casefold()


# --------------------------------------------------------------------------------------------------------------
# Validation and encoding of a batch (pure functions; nothing touches the store before these succeed)
# --------------------------------------------------------------------------------------------------------------


def _require_columns(frame: pd.DataFrame, columns: tuple[str, ...], name: str) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"{name} must be a pandas DataFrame, got {type(frame).__name__}")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{name} lacks column(s) {missing}; expected {list(columns)}")
    if len(frame) == 0:
        raise ValueError(f"{name} is empty; refusing to switch readers to an empty version")


def _text_column(frame: pd.DataFrame, column: str) -> np.ndarray:
    """Column as an object array of str; missing values (NaN/None) become '' (Last.fm rows without an mbid)."""
    values = frame[column].astype(object).where(frame[column].notna(), "").astype(str)
    # pandas hashes '' and '\x00' alike and PostgreSQL text cannot hold NUL: refuse it rather than alter data.
    with_nul = values.str.contains("\x00", regex=False)
    if with_nul.any():
        raise ValueError(
            f"{column}: {int(with_nul.sum())} row(s) contain a NUL character (\\x00), e.g. row"
            f" {values.index[with_nul.to_numpy()][0]!r}; remove it before writing"
        )
    return values.to_numpy(dtype=object)


def _group_order(keys: pd.Series, ranks: pd.Series, name: str, key_name: str) -> tuple[np.ndarray, np.ndarray]:
    """Row order grouping ``keys`` together by ascending rank, and the start offset of every group.

    Raises ValueError unless every group's ranks are exactly 1..k (no duplicate, missing or non-integer rank).
    """
    rank_values = pd.to_numeric(ranks, errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(rank_values) | (rank_values != np.round(rank_values))
    if bad.any():
        raise ValueError(f"{name}: {int(bad.sum())} row(s) have a non-integer rank, e.g. {ranks[bad].iloc[0]!r}")
    codes, _ = pd.factorize(keys, sort=False)
    order = np.lexsort((rank_values, codes))
    sorted_codes = codes[order]
    starts = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]])
    sizes = np.diff(np.r_[starts, len(order)])
    expected = np.arange(len(order)) - np.repeat(starts, sizes) + 1
    wrong = rank_values[order] != expected
    if wrong.any():
        first = keys.to_numpy()[order][np.flatnonzero(wrong)[0]]
        n_groups = len(np.unique(sorted_codes[wrong]))
        raise ValueError(
            f"{name}: ranks of {n_groups} {key_name}(s) are not exactly 1..k without duplicates,"
            f" e.g. {key_name} {first!r}; write one row per ({key_name}, rank)"
        )
    return order, starts


def _finite_scores(frame: pd.DataFrame, name: str) -> np.ndarray:
    scores = pd.to_numeric(frame["score"], errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(scores)
    if bad.any():
        raise ValueError(f"{name}: {int(bad.sum())} row(s) have a missing or non-finite score")
    return scores


class _GroupEncoder:
    """Encodes each group's rows (in rank order) as the JSON array ``[[mbid, name, score(, source)], ...]``.

    json.dumps per user costs ~50 us at 359K users x 20 rows; instead every distinct (mbid, name) pair is encoded
    once as the text ``["mbid","name",`` and each row only appends ``repr(score)`` (Python's shortest round-trip
    float, as json.dumps writes it) and a constant tail such as ``,"neighbours"]``.
    """

    def __init__(
        self,
        keys: np.ndarray,
        order: np.ndarray,
        starts: np.ndarray,
        mbid: np.ndarray,
        name: np.ndarray,
        scores: np.ndarray,
        tails: np.ndarray,
    ):
        pairs = pd.DataFrame({"mbid": mbid, "name": name})
        codes = pairs.groupby(["mbid", "name"], sort=False).ngroup().to_numpy()  # numbered by first appearance
        distinct = pairs.drop_duplicates()
        prefixes = np.array(
            [
                json.dumps([m, n], ensure_ascii=False, separators=(",", ":"))[:-1] + ","
                for m, n in zip(distinct["mbid"], distinct["name"])
            ],
            dtype=object,
        )
        self._keys, self._order, self._starts = keys, order, starts
        self._ends = np.r_[starts[1:], len(order)]
        self._prefix, self._scores, self._tails = prefixes[codes], scores, tails

    def __len__(self) -> int:
        return len(self._starts)

    def encode(self, first: int, stop: int) -> list[tuple[str, str]]:
        """(key, JSON text) of groups ``first``..``stop-1``."""
        lo, hi = self._starts[first], self._ends[stop - 1]
        rows = self._order[lo:hi]
        parts = [
            p + repr(s) + t
            for p, s, t in zip(self._prefix[rows].tolist(), self._scores[rows].tolist(), self._tails[rows].tolist())
        ]
        return [
            (self._keys[rows[a]], "[" + ",".join(parts[a:b]) + "]")
            for a, b in zip(self._starts[first:stop] - lo, self._ends[first:stop] - lo)
        ]


class PreparedBatch:
    """A validated batch, encoded lazily chunk by chunk (see :func:`prepare_batch`)."""

    def __init__(self, recommendations: pd.DataFrame, fallbacks: pd.DataFrame):
        _require_columns(recommendations, RECOMMENDATION_COLUMNS, "recommendations")
        _require_columns(fallbacks, FALLBACK_COLUMNS, "fallbacks")
        users = recommendations["user"]
        if users.isna().any() or (users.astype(str).str.len() == 0).any():
            raise ValueError("recommendations: some rows have an empty user id")
        sources = recommendations["source"].astype(str)
        unknown = ~sources.isin(SOURCES)
        if unknown.any():
            raise ValueError(
                f"recommendations: {int(unknown.sum())} row(s) have a source outside {SOURCES},"
                f" e.g. {sources[unknown].iloc[0]!r}"
            )
        user_ids = users.astype(str)
        order, starts = _group_order(user_ids, recommendations["rank"], "recommendations", "user")
        tails = sources.map({s: "," + json.dumps(s) + "]" for s in SOURCES}).to_numpy(dtype=object)
        self._users = _GroupEncoder(
            user_ids.to_numpy(dtype=object),
            order,
            starts,
            _text_column(recommendations, "artist_mbid"),
            _text_column(recommendations, "artist_name"),
            _finite_scores(recommendations, "recommendations"),
            tails,
        )

        countries = _text_column(fallbacks, "country")
        keys = np.array([country_key(c) for c in countries], dtype=object)
        if len(set(countries)) != len(set(keys)):
            raise ValueError("fallbacks: two country names differ only in case or surrounding spaces")
        order, starts = _group_order(pd.Series(keys), fallbacks["rank"], "fallbacks", "country")
        if "" not in set(keys):
            raise ValueError("fallbacks: no global list (rows with country '') for users of unknown country")
        encoder = _GroupEncoder(
            keys,
            order,
            starts,
            _text_column(fallbacks, "artist_mbid"),
            _text_column(fallbacks, "artist_name"),
            _finite_scores(fallbacks, "fallbacks"),
            np.full(len(fallbacks), "]", dtype=object),
        )
        self.fallback_rows = [
            (key, str(name).strip(), payload)
            for (key, payload), name in zip(encoder.encode(0, len(starts)), countries[order[starts]])
        ]

    @property
    def n_users(self) -> int:
        """Number of distinct users in the batch."""
        return len(self._users)

    def user_chunks(self, users_per_chunk: int | None = None) -> Iterator[list[tuple[str, str]]]:
        """Yield lists of (user_id, payload JSON) for at most ``users_per_chunk`` (default USERS_PER_CHUNK) users."""
        users_per_chunk = users_per_chunk or USERS_PER_CHUNK
        for first in range(0, self.n_users, users_per_chunk):
            yield self._users.encode(first, min(first + users_per_chunk, self.n_users))


def prepare_batch(recommendations: pd.DataFrame, fallbacks: pd.DataFrame) -> PreparedBatch:
    """Validate a batch against the serving contract before anything is written.

    Parameters
    ----------
    recommendations : DataFrame, one row per (user, rank)
        Columns ``user`` (str, Last.fm user sha1), ``rank`` (int, exactly 1..k per user), ``artist_mbid`` (str,
        may be '' or missing), ``artist_name`` (str), ``score`` (finite float), ``source`` (one of :data:`SOURCES`).
    fallbacks : DataFrame, one row per (country, rank)
        Columns ``country`` (str, '' = global list, which must be present), ``rank``, ``artist_mbid``,
        ``artist_name``, ``score``: the cold-start lists for users the batch does not know.

    Raises
    ------
    ValueError
        Missing column, empty frame, empty user id, unknown source, non-finite score, ranks that are not 1..k per
        user/country (duplicates or gaps), no global fallback, or country names that collide case-insensitively.
        Nothing is dropped silently: one bad row rejects the whole batch.
    """
    return PreparedBatch(recommendations, fallbacks)


def _decode(payload: str, n: int, fields: tuple[str, ...]) -> list[dict]:
    return [dict(zip(("rank",) + fields, (rank, *row))) for rank, row in enumerate(json.loads(payload)[:n], start=1)]


def _check_n(n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    return int(n)


# --------------------------------------------------------------------------------------------------------------
# The store
# --------------------------------------------------------------------------------------------------------------


class RecStore:
    """Versioned recommendation store; use :func:`open_store` to get one.

    Reader methods are thread-safe (one connection per thread and process, opened lazily, so a store created
    before gunicorn forks its workers is safe).  Only one writer (batch or rollback) runs at a time; a second one
    gets :class:`StoreBusyError`.
    """

    url: str
    _begin = "BEGIN"

    def __init__(self, url: str, create: bool = True):
        self.url = url
        self._local = threading.local()
        if create:
            conn = self._connect()
            with self._transaction(conn) as cur:
                for statement in _SCHEMA:
                    cur.execute(statement)
            conn.close()
        else:  # readers (the API) never take a write lock; they only check that this is a store
            try:
                self._read_one("SELECT COUNT(*) FROM rec_current", ())
            except StoreUnreachableError:
                raise
            except Exception as err:  # sqlite3 / psycopg2 errors share no base class
                raise ValueError(f"{url} is not a recommendation store (no rec_current table): {err}") from None

    # --- backend hooks -----------------------------------------------------------------------------------------
    def _connect(self):
        raise NotImplementedError

    def _sql(self, query: str) -> str:
        return query

    def _bulk_insert(self, cur, table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
        raise NotImplementedError

    @contextlib.contextmanager
    def _writer_lock(self, conn):
        raise NotImplementedError
        yield

    # --- connections and transactions --------------------------------------------------------------------------
    def _reader(self):
        """This thread's reader connection (re-opened after a fork)."""
        local = self._local
        if getattr(local, "pid", None) != os.getpid():
            local.conn, local.pid = self._connect(), os.getpid()
        return local.conn

    def _read_one(self, query: str, params: tuple) -> list[tuple]:
        cur = self._reader().cursor()
        try:
            cur.execute(self._sql(query), params)
            return cur.fetchall()
        finally:
            cur.close()

    @contextlib.contextmanager
    def _transaction(self, conn):
        cur = conn.cursor()
        cur.execute(self._begin)
        try:
            yield cur
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        else:
            cur.execute("COMMIT")
        finally:
            cur.close()

    # --- reads ---------------------------------------------------------------------------------------------------
    def get_user(self, user: str, n: int = 20) -> tuple[int, list[dict]] | None:
        """The current version and a known user's top ``n`` artists, or None if the current version lacks the user.

        Returns ``(version, rows)``; rows are dicts ``rank`` (1-based), ``artist_mbid``, ``artist_name``, ``score``,
        ``source``, in rank order, at most ``n`` of them.  Raises NoVersionError before the first batch.
        """
        n = _check_n(n)
        rows = self._read_one(_USER_QUERY, (str(user),))
        if not rows or rows[0][0] is None:
            raise NoVersionError("the store holds no version yet; run the daily batch first")
        version, payload = rows[0]
        if payload is None:
            return None
        return int(version), _decode(payload, n, ("artist_mbid", "artist_name", "score", "source"))

    def get_fallback(self, country: str | None, n: int = 20) -> tuple[int, str, list[dict]]:
        """Cold-start list for a user the batch does not know: the country's top artists, else the global ones.

        ``country`` is matched case-insensitively after stripping spaces; None, '' or an unknown country give the
        global list.  Returns ``(version, country_used, rows)`` where ``country_used`` is the stored country name
        or '' for the global list; rows are dicts ``rank``, ``artist_mbid``, ``artist_name``, ``score``.
        Raises NoVersionError before the first batch.
        """
        n = _check_n(n)
        rows = self._read_one(_FALLBACK_QUERY, (country_key(country),))
        if not rows or rows[0][0] is None:
            raise NoVersionError("the store holds no version yet; run the daily batch first")
        by_key = {key: (name, payload) for _, key, name, payload in rows if key is not None}
        name, payload = by_key.get(country_key(country)) or by_key.get("", ("", "[]"))
        return int(rows[0][0]), name, _decode(payload, n, ("artist_mbid", "artist_name", "score"))

    def info(self) -> dict | None:
        """``{"version", "created_at" (ISO 8601 UTC), "n_users"}`` of the current version, or None if there is none."""
        rows = self._read_one(_INFO_QUERY, ())
        if not rows:
            return None
        version, created_at, n_users = rows[0]
        return {"version": int(version), "created_at": created_at, "n_users": int(n_users)}

    def versions(self) -> list[dict]:
        """Complete versions kept, newest first: dicts ``version``, ``created_at``, ``n_users``, ``n_countries``,
        ``current`` (bool)."""
        rows = self._read_one(
            "SELECT v.version, v.created_at, v.n_users, v.n_countries, v.version = c.version FROM rec_versions v"
            " LEFT JOIN rec_current c ON c.id = 1 WHERE v.complete = 1 ORDER BY v.version DESC",
            (),
        )
        return [
            {"version": int(v), "created_at": t, "n_users": int(u), "n_countries": int(k), "current": bool(cur)}
            for v, t, u, k, cur in rows
        ]

    # --- writes --------------------------------------------------------------------------------------------------
    def write_version(
        self, recommendations: pd.DataFrame, fallbacks: pd.DataFrame, *, progress: bool | None = None
    ) -> int:
        """Write a batch as a new version, switch readers to it atomically, prune to the last KEEP_VERSIONS.

        ``recommendations`` and ``fallbacks`` follow :func:`prepare_batch` (which raises ValueError on bad input
        before anything is written).  ``progress`` shows a tqdm bar (default: when stderr is a terminal).
        Returns the new version id (int, increasing).  Raises StoreBusyError if another writer is active.
        If the write fails midway, readers keep the previous version and the partial rows are deleted.
        """
        from tqdm import tqdm

        batch = prepare_batch(recommendations, fallbacks)
        show = sys.stderr.isatty() if progress is None else progress
        conn = self._connect()
        try:
            with self._writer_lock(conn):
                self._delete_incomplete(conn)  # left over by a crashed batch; the lock says no one else is writing
                with self._transaction(conn) as cur:
                    cur.execute("SELECT COALESCE(MAX(version), 0) + 1 FROM rec_versions")
                    version = int(cur.fetchone()[0])
                    cur.execute(
                        self._sql(
                            "INSERT INTO rec_versions (version, created_at, n_users, n_countries,"
                            " complete) VALUES (?, ?, ?, ?, 0)"
                        ),
                        (version, _now(), batch.n_users, len(batch.fallback_rows)),
                    )
                try:
                    with tqdm(
                        total=batch.n_users, unit="user", desc=f"writing version {version}", disable=not show
                    ) as bar:
                        for chunk in batch.user_chunks():
                            with self._transaction(conn) as cur:
                                self._bulk_insert(
                                    cur,
                                    "rec_users",
                                    ("version", "user_id", "payload"),
                                    [(version, user, payload) for user, payload in chunk],
                                )
                            bar.update(len(chunk))
                    with self._transaction(conn) as cur:
                        self._bulk_insert(
                            cur,
                            "rec_fallbacks",
                            ("version", "country_key", "country", "payload"),
                            [(version, *row) for row in batch.fallback_rows],
                        )
                    with self._transaction(conn) as cur:  # the switch: one short transaction
                        cur.execute(
                            self._sql("UPDATE rec_versions SET complete = 1, created_at = ? WHERE version = ?"),
                            (_now(), version),
                        )
                        self._point_to(cur, version)
                except BaseException:
                    with contextlib.suppress(Exception):  # keep the original error if the cleanup fails too
                        self._delete_incomplete(conn)
                    raise
                self._prune(conn)
        finally:
            conn.close()
        return version

    def rollback(self) -> int:
        """Point readers back to the newest complete version older than the current one; returns its id.

        The rolled-back version stays stored until pruning.  Raises NoVersionError if there is no current version
        and LookupError if no older version is kept.
        """
        conn = self._connect()
        try:
            with self._writer_lock(conn), self._transaction(conn) as cur:
                cur.execute("SELECT version FROM rec_current WHERE id = 1")
                row = cur.fetchone()
                if row is None or row[0] is None:
                    raise NoVersionError("the store holds no version to roll back from")
                cur.execute(
                    self._sql("SELECT MAX(version) FROM rec_versions WHERE complete = 1 AND version < ?"), (row[0],)
                )
                previous = cur.fetchone()[0]
                if previous is None:
                    raise LookupError(f"no version older than {row[0]} is kept; nothing to roll back to")
                self._point_to(cur, previous)
        finally:
            conn.close()
        return int(previous)

    def close(self) -> None:
        """Close this thread's reader connection (others close when their thread or process ends)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None and getattr(self._local, "pid", None) == os.getpid():
            with contextlib.suppress(Exception):  # a connection the server already dropped
                conn.close()
        self._local.conn = self._local.pid = None

    def _point_to(self, cur, version: int) -> None:
        cur.execute(
            self._sql(
                "INSERT INTO rec_current (id, version) VALUES (1, ?)"
                " ON CONFLICT (id) DO UPDATE SET version = excluded.version"
            ),
            (version,),
        )

    def _delete_versions(self, cur, versions: list[int]) -> None:
        for version in versions:
            for table in ("rec_users", "rec_fallbacks", "rec_versions"):
                cur.execute(self._sql(f"DELETE FROM {table} WHERE version = ?"), (version,))

    def _delete_incomplete(self, conn) -> None:
        with self._transaction(conn) as cur:
            cur.execute("SELECT version FROM rec_versions WHERE complete = 0")
            self._delete_versions(cur, [r[0] for r in cur.fetchall()])

    def _prune(self, conn) -> None:
        with self._transaction(conn) as cur:
            cur.execute(
                "SELECT v.version FROM rec_versions v LEFT JOIN rec_current c ON c.id = 1"
                " WHERE v.complete = 1 AND v.version <> c.version ORDER BY v.version DESC"
            )
            older = [r[0] for r in cur.fetchall()]
            self._delete_versions(cur, older[KEEP_VERSIONS - 1 :])


class SQLiteStore(RecStore):
    """SQLite file in WAL mode: readers never wait for the batch writer and read one committed snapshot."""

    _begin = "BEGIN IMMEDIATE"

    def __init__(self, url: str, path: Path, create: bool = True):
        self.path = path
        super().__init__(url, create)

    def _connect(self):
        import sqlite3

        conn = sqlite3.connect(self.path, isolation_level=None, timeout=30)  # autocommit; BEGIN is explicit
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    def _bulk_insert(self, cur, table, columns, rows):
        marks = ", ".join("?" * len(columns))
        cur.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)

    @contextlib.contextmanager
    def _writer_lock(self, conn):
        with open(f"{self.path}.writer-lock", "w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise StoreBusyError(f"another batch or rollback is writing {self.path}; retry when it ends") from None
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _prune(self, conn) -> None:
        super()._prune(conn)
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)")  # hand the WAL back to the database file


class PostgresStore(RecStore):
    """PostgreSQL by DSN: MVCC gives every reader statement one committed snapshot."""

    _LOCK_ID = 0x51_3B_5EC5  # arbitrary constant naming this store's advisory lock

    def _connect(self):
        import psycopg2

        try:
            conn = psycopg2.connect(self.url)
        except psycopg2.OperationalError as err:
            raise StoreUnreachableError(_unreachable_message(self.url, err)) from None
        conn.autocommit = True  # BEGIN/COMMIT are explicit, single reads need no transaction
        return conn

    def _sql(self, query: str) -> str:
        return query.replace("?", "%s")

    def _read_one(self, query, params):
        import psycopg2

        try:
            return super()._read_one(query, params)
        except (psycopg2.OperationalError, psycopg2.InterfaceError):
            self.close()  # the server restarted or dropped us: reconnect once
            return super()._read_one(query, params)

    def _bulk_insert(self, cur, table, columns, rows):
        buffer = io.StringIO()
        csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(rows)  # "" is text, not NULL
        buffer.seek(0)
        cur.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv)", buffer)

    @contextlib.contextmanager
    def _writer_lock(self, conn):
        cur = conn.cursor()
        cur.execute("SELECT pg_try_advisory_lock(%s)", (self._LOCK_ID,))
        if not cur.fetchone()[0]:
            raise StoreBusyError("another batch or rollback is writing this PostgreSQL store; retry when it ends")
        try:
            yield
        finally:
            cur.execute("SELECT pg_advisory_unlock(%s)", (self._LOCK_ID,))
            cur.close()


def _unreachable_message(url: str, err: Exception) -> str:
    """One line naming host, port and database of a PostgreSQL URL (never its password) and the fix."""
    from psycopg2.extensions import parse_dsn

    try:
        dsn = parse_dsn(url)
    except Exception:  # noqa: BLE001 -- a malformed URL: psycopg2's own message says what is wrong
        dsn = {}
    reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return (
        f"cannot connect to PostgreSQL at host {dsn.get('host', 'localhost')} port {dsn.get('port', '5432')} "
        f"database {dsn.get('dbname', '?')} ({reason}); start the server or fix the store URL"
    )


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def open_store(url: str, *, create: bool = True) -> RecStore:
    """Open (and with ``create`` initialise) the store named by ``url``.

    ``sqlite:///relative.db`` / ``sqlite:////absolute.db`` open an SQLite file (its folder is created when
    ``create``); ``postgresql://...`` or ``postgres://...`` connect with psycopg2 (the tables are created if absent).
    Without ``create`` nothing is written (what the API wants): the store must already exist.  Raises ValueError
    for any other scheme, an in-memory SQLite database, or (without ``create``) a database without the store's
    tables; FileNotFoundError when ``create`` is False and the SQLite file does not exist; and
    StoreUnreachableError when PostgreSQL cannot be reached.
    """
    if not isinstance(url, str):
        raise ValueError(f"store URL must be a string, got {type(url).__name__}")
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresStore(url, create)
    match = re.fullmatch(r"sqlite:///(.+)", url)
    if match is None:
        raise ValueError(f"unsupported store URL {url!r}; use sqlite:///path/to/recs.db or postgresql://user@host/db")
    if match.group(1) == ":memory:":
        raise ValueError("an in-memory SQLite store is not shared between connections; give a file path")
    path = Path(match.group(1))
    if not create and not path.exists():
        raise FileNotFoundError(
            f"store file {path} does not exist; write a batch first (python Q3b/recommender.py batch --store URL)"
        )
    if create:
        path.parent.mkdir(parents=True, exist_ok=True)
    return SQLiteStore(url, path, create)


def synthetic_batch(
    n_users: int,
    n_per_user: int = 20,
    *,
    n_artists: int = 10_007,
    countries: tuple[str, ...] = (
        "United States",
        "Germany",
        "United Kingdom",
        "Poland",
        "Brazil",
        "Korea, Republic of",
    ),
    random_state: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A contract-shaped batch with random content, for load benchmarks and tests of the serving layer only.

    Not a recommender: users are random 40-hex ids (the Last.fm 360K id shape), each gets ``n_per_user`` distinct
    artists out of ``n_artists`` (a prime, so a random start and stride never repeat an artist) with decreasing
    scores; ~5% of users are marked ``country`` and ~1% ``global`` as if they had no neighbours; about one artist
    in 50 has no mbid and names include quotes and non-ASCII letters.  Fallbacks: top 100 per country and global.
    Returns ``(recommendations, fallbacks)`` as described in :func:`prepare_batch`; deterministic in ``random_state``.
    """
    rng = np.random.default_rng(random_state)
    users = np.array(re.findall("." * 40, rng.bytes(20 * n_users).hex()), dtype=object)
    artist_ids = np.array(
        [
            f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"
            for h in re.findall("." * 32, rng.bytes(16 * n_artists).hex())
        ],
        dtype=object,
    )
    artist_ids[rng.random(n_artists) < 0.02] = ""
    stems = np.array(
        ["Die Ärzte", 'The "Band"', "Sigur Rós", "AC/DC", "Mötley Crüe", "Björk", "Guns N' Roses"], dtype=object
    )
    names = np.array([f"{stems[i % len(stems)]} {i}" for i in range(n_artists)], dtype=object)
    start = rng.integers(0, n_artists, n_users)
    stride = rng.integers(1, n_artists, n_users)
    picks = (start[:, None] + np.arange(n_per_user)[None, :] * stride[:, None]) % n_artists
    scores = -np.sort(-rng.random((n_users, n_per_user)), axis=1)
    source = rng.choice(np.array(SOURCES, dtype=object), size=n_users, p=[0.94, 0.05, 0.01])
    recommendations = pd.DataFrame(
        {
            "user": np.repeat(users, n_per_user),
            "rank": np.tile(np.arange(1, n_per_user + 1), n_users),
            "artist_mbid": artist_ids[picks.ravel()],
            "artist_name": names[picks.ravel()],
            "score": scores.ravel(),
            "source": np.repeat(source, n_per_user),
        }
    )
    top = min(100, n_artists)
    groups = []
    for country in ("",) + tuple(countries):
        chosen = rng.choice(n_artists, size=top, replace=False)
        groups.append(
            pd.DataFrame(
                {
                    "country": country,
                    "rank": np.arange(1, top + 1),
                    "artist_mbid": artist_ids[chosen],
                    "artist_name": names[chosen],
                    "score": -np.sort(-rng.random(top)),
                }
            )
        )
    return recommendations, pd.concat(groups, ignore_index=True)


def main(argv: list[str] | None = None) -> int:
    """Operator CLI: ``python Q3b/rec_store.py {info,versions,rollback} --store URL``."""
    import argparse

    parser = argparse.ArgumentParser(description="Inspect or roll back the recommendation store.")
    parser.add_argument("command", choices=("info", "versions", "rollback"))
    parser.add_argument(
        "--store",
        default=os.environ.get("RECS_STORE"),
        help="store URL, e.g. sqlite:///Q3b/data/recs.db (default: $RECS_STORE)",
    )
    args = parser.parse_args(argv)
    if not args.store:
        parser.error("give --store URL or set RECS_STORE")
    try:
        store = open_store(args.store, create=False)
        if args.command == "info":
            result = store.info()
        elif args.command == "versions":
            result = store.versions()
        else:
            result = {"current_version": store.rollback()}
    except Exception as err:  # noqa: BLE001 -- user-facing errors become one line; our bugs keep the traceback
        if not isinstance(err, (ValueError, LookupError, OSError, StoreBusyError)) and not type(
            err
        ).__module__.startswith("psycopg2"):
            raise
        print(f"rec_store {args.command}: {err}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
