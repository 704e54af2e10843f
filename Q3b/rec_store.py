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
snapshot / PostgreSQL MVCC statement snapshot): one complete version, never a mix or an empty set; a lookup of
many users (:meth:`RecStore.lookup`) is one statement too.  After the switch the store keeps the newest
:data:`KEEP_VERSIONS` complete versions (and always the current one), deletes the rest and gives their space back
(SQLite: incremental vacuum and a WAL checkpoint that truncates the WAL; PostgreSQL: plain VACUUM).

One writer at a time: :meth:`RecStore.lock` (an ``flock`` beside the SQLite file, an advisory lock in PostgreSQL)
is taken by the batch before it loads its input and by :meth:`RecStore.promote` / :meth:`RecStore.rollback`.

Other backends implement the same methods (see ``Q3b/SERVING.md``): e.g. Redis with one hash per version
(``recs:v{N}`` user -> JSON) written first and a ``recs:current`` key flipped with ``SET`` afterwards; DynamoDB with
partition key ``version#user`` and a one-item pointer table updated after the batch write.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
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
    "SELECT v.version, v.created_at, v.n_users, n.version, n.created_at FROM rec_current c"
    " JOIN rec_versions v ON v.version = c.version"
    " JOIN rec_versions n ON n.version = (SELECT MAX(version) FROM rec_versions WHERE complete = 1) WHERE c.id = 1"
)
_HEX_ID = re.compile(r"[0-9A-Fa-f]+")


def _lookup_query(n_ids: int) -> str:
    """One statement reading the current version's rows of ``n_ids`` user ids and the two fallback lists, so the
    whole answer comes from one committed snapshot (the union's parts cannot see different versions)."""
    marks = ", ".join("?" * n_ids)
    return (
        "SELECT c.version, 'u', u.user_id, NULL, u.payload FROM rec_current c"
        f" LEFT JOIN rec_users u ON u.version = c.version AND u.user_id IN ({marks}) WHERE c.id = 1"
        " UNION ALL"
        " SELECT c.version, 'f', f.country_key, f.country, f.payload FROM rec_current c"
        " JOIN rec_fallbacks f ON f.version = c.version AND f.country_key IN (?, '') WHERE c.id = 1"
    )


def id_candidates(user: str) -> tuple[str, ...]:
    """The stored ids a requested user id may match: itself, and for an id of hex digits only (Last.fm's sha1 ids)
    also its lower- and upper-case spellings, so hex ids match case-insensitively; other ids match exactly."""
    if _HEX_ID.fullmatch(user):
        return tuple(dict.fromkeys((user, user.lower(), user.upper())))
    return (user,)


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


_USER_FIELDS = ("artist_mbid", "artist_name", "score", "source")
_FALLBACK_FIELDS = ("artist_mbid", "artist_name", "score")


@dataclasses.dataclass(frozen=True)
class Lookup:
    """Answer of :meth:`RecStore.lookup`: all from batch ``version``.

    ``users`` maps each requested id to its rows (dicts ``rank``, ``artist_mbid``, ``artist_name``, ``score``,
    ``source``) or None when the version does not know the user; ``fallback`` is ``(country_used, rows)`` (rows
    without ``source``; ``country_used`` '' for the global list) when some user is unknown, else None.
    """

    version: int
    users: dict[str, list[dict] | None]
    fallback: tuple[str, list[dict]] | None


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
    before gunicorn forks its workers is safe).  Only one writer (batch, promote or rollback) runs at a time; a
    second one gets :class:`StoreBusyError` at once.
    """

    url: str
    _begin = "BEGIN"

    def __init__(self, url: str, create: bool = True):
        self.url = url
        self._local = threading.local()
        self._lock_depth = 0
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

    def _reclaim(self, conn) -> None:
        """Give the space of pruned versions back (after a switch)."""
        raise NotImplementedError

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
        return int(version), _decode(payload, n, _USER_FIELDS)

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
        return int(rows[0][0]), name, _decode(payload, n, _FALLBACK_FIELDS)

    def lookup(self, users: list[str], n: int = 20, country: str | None = None) -> Lookup:
        """Several users' top ``n`` artists and, if one of them is unknown, the cold-start list, in one snapshot.

        ``users`` : list of str (callers bound its length; the API allows 100).  Ids of hex digits only match
        case-insensitively (see :func:`id_candidates`), an exact match winning.  ``country`` picks the fallback
        list as in :meth:`get_fallback`.  One SQL statement reads everything, so every list of the answer belongs
        to the one version it reports.  Raises NoVersionError before the first batch, ValueError for a bad ``n``.
        """
        n = _check_n(n)
        wanted = {user: id_candidates(str(user)) for user in users}
        ids = list(dict.fromkeys(c for candidates in wanted.values() for c in candidates)) or [""]
        rows = self._read_one(_lookup_query(len(ids)), (*ids, country_key(country)))
        if not rows or rows[0][0] is None:
            raise NoVersionError("the store holds no version yet; run the daily batch first")
        payloads = {key: payload for _, kind, key, _, payload in rows if kind == "u" and key is not None}
        fallbacks = {key: (name, payload) for _, kind, key, name, payload in rows if kind == "f"}
        found = {}
        for user, candidates in wanted.items():
            payload = next((payloads[c] for c in candidates if c in payloads), None)
            found[user] = None if payload is None else _decode(payload, n, _USER_FIELDS)
        fallback = None
        if None in found.values():
            name, payload = fallbacks.get(country_key(country)) or fallbacks.get("", ("", "[]"))
            fallback = (name, _decode(payload, n, _FALLBACK_FIELDS))
        return Lookup(int(rows[0][0]), found, fallback)

    def info(self) -> dict | None:
        """The current (served) version and the newest complete one, or None if there is no current version.

        Keys: ``version``, ``created_at`` (ISO 8601 UTC, when that version was written), ``n_users``, and
        ``newest_version``, ``newest_created_at`` of the newest complete version (the same unless an operator
        promoted an older one: then the served data is older than the last successful batch).
        """
        rows = self._read_one(_INFO_QUERY, ())
        if not rows:
            return None
        version, created_at, n_users, newest, newest_created_at = rows[0]
        return {
            "version": int(version),
            "created_at": created_at,
            "n_users": int(n_users),
            "newest_version": int(newest),
            "newest_created_at": newest_created_at,
        }

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
        return self.write_prepared(prepare_batch(recommendations, fallbacks), progress=progress)

    def write_prepared(self, batch: PreparedBatch, *, progress: bool | None = None) -> int:
        """:meth:`write_version` of a batch already checked by :func:`prepare_batch` (so a caller can check it
        before writing anything else); same result and errors."""
        show = sys.stderr.isatty() if progress is None else progress
        with self.lock():
            return self._write(batch, show)

    def _write(self, batch: PreparedBatch, show: bool) -> int:
        from tqdm import tqdm

        conn = self._connect()
        try:
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
                with tqdm(total=batch.n_users, unit="user", desc=f"writing version {version}", disable=not show) as bar:
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
            self._reclaim(conn)
        finally:
            conn.close()
        return version

    @contextlib.contextmanager
    def lock(self):
        """Hold the store's single-writer lock for the ``with`` block; re-entrant for this object.

        The batch takes it before loading its input, so a second batch fails at once instead of after minutes of
        work; :meth:`write_version`, :meth:`promote` and :meth:`rollback` take it themselves.  Raises
        StoreBusyError immediately if another process (or store object) holds it, OSError if the SQLite lock file
        beside the store cannot be created.  Not to be shared between threads while held.
        """
        if self._lock_depth:
            self._lock_depth += 1
            try:
                yield
            finally:
                self._lock_depth -= 1
            return
        conn = self._connect()
        try:
            with self._writer_lock(conn):
                self._lock_depth = 1
                try:
                    yield
                finally:
                    self._lock_depth = 0
        finally:
            conn.close()

    def promote(self, version: int) -> int:
        """Point readers at kept complete ``version`` (roll forward or back); returns it.

        Raises LookupError naming the kept versions when ``version`` is not one of them, StoreBusyError while a
        batch writes.  Nothing is deleted: the versions kept stay as they are until the next batch prunes.
        """
        with self.lock():
            kept = [v["version"] for v in self.versions()]
            if version not in kept:
                shown = ", ".join(map(str, kept)) or "none"
                raise LookupError(f"version {version} is not a complete version kept in the store (kept: {shown})")
            conn = self._connect()
            try:
                with self._transaction(conn) as cur:
                    self._point_to(cur, int(version))
            finally:
                conn.close()
        return int(version)

    def rollback(self) -> int:
        """Promote the newest complete version older than the current one; returns its id.

        Raises NoVersionError if there is no current version and LookupError if no older version is kept.
        """
        with self.lock():
            current = self.info()
            if current is None:
                raise NoVersionError("the store holds no version to roll back from")
            older = [v["version"] for v in self.versions() if v["version"] < current["version"]]
            if not older:
                raise LookupError(f"no version older than {current['version']} is kept; nothing to roll back to")
            return self.promote(older[0])

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
        conn.execute("PRAGMA auto_vacuum=INCREMENTAL")  # takes effect only in a new file (before the first table)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA journal_size_limit=67108864")  # the WAL file shrinks back to 64 MB after checkpoints
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

    def _reclaim(self, conn) -> None:
        # auto_vacuum=INCREMENTAL (set when the file is created): move pages into the pruned version's free pages
        # and cut the file; then copy the WAL into the database and truncate it to zero bytes.  Readers are not
        # blocked: the checkpoint waits (busy timeout) for the ones still reading an older snapshot.
        conn.executescript("PRAGMA incremental_vacuum;")  # execute() would free only one page: run it to the end
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


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

    def _reclaim(self, conn) -> None:
        # plain VACUUM (not FULL): the pruned rows' space becomes reusable by the next batch, readers are not blocked
        cur = conn.cursor()
        try:
            cur.execute("VACUUM rec_users, rec_fallbacks, rec_versions")
        finally:
            cur.close()

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
