"""Tests of rec_api: Flask's test client for the details, a real gunicorn process on loopback for the serving
path (known, unknown and cold-start users, 400s, readers during version switches, rollback)."""

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rec_api
import rec_store

Q3B = Path(rec_api.__file__).resolve().parent

N_USERS, N_PER_USER = 40, 20


def text(**kwargs):
    """Any Unicode text that can travel in a URL (lone surrogates cannot be UTF-8 encoded)."""
    return st.text(st.characters(blacklist_categories=("Cs",)), **kwargs)


def batch(random_state, users=None):
    """A batch of N_USERS x N_PER_USER rows; ``users`` pins the user ids so versions differ only in content."""
    recommendations, fallbacks = rec_store.synthetic_batch(
        N_USERS, N_PER_USER, n_artists=101, random_state=random_state
    )
    if users is not None:
        recommendations["user"] = np.repeat(np.asarray(users, dtype=object), N_PER_USER)
    return recommendations, fallbacks


def as_api_artists(frame, with_source=True):
    """Reference: the JSON artists list the API should return for these rows, built from the frame."""
    rows = frame.sort_values("rank")
    return [
        {
            "rank": int(r.rank),
            "mbid": r.artist_mbid,
            "name": r.artist_name,
            "score": float(r.score),
            **({"source": r.source} if with_source else {}),
        }
        for r in rows.itertuples()
    ]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """An SQLite store holding one version, and the batch it holds."""
    url = f"sqlite:///{tmp_path_factory.mktemp('api') / 'recs.db'}"
    recommendations, fallbacks = batch(random_state=1)
    rec_store.open_store(url).write_version(recommendations, fallbacks)
    return url, recommendations, fallbacks


@pytest.fixture(scope="module")
def client(served):
    return rec_api.create_app(served[0]).test_client()


def test_known_user_gets_own_list(client, served):
    _, recommendations, _ = served
    user = recommendations["user"].iloc[N_PER_USER * 3]
    own = recommendations[recommendations["user"] == user]
    default = client.get(f"/users/{user}/recommendations")
    assert default.status_code == 200
    assert default.get_json()["artists"] == as_api_artists(own)[:10]
    body = client.get(f"/users/{user}/recommendations?n=100").get_json()
    assert body == {
        "user": user,
        "version": 1,
        "known_user": True,
        "source": own["source"].iloc[0],
        "country": None,
        "artists": as_api_artists(own),
    }
    assert (
        client.get(f"/users/{user}/recommendations?n=3&country=Germany").get_json()["artists"]
        == as_api_artists(own)[:3]
    )


@pytest.mark.parametrize(
    "query, country",
    [
        ("?country=germany", "Germany"),
        ("?country=%20Korea,%20Republic%20of", "Korea, Republic of"),
        ("?country=Narnia", ""),
        ("", ""),
        ("?country=", ""),
    ],
)
def test_unknown_user_gets_cold_start_list(client, served, query, country):
    _, _, fallbacks = served
    expected = as_api_artists(fallbacks[fallbacks["country"] == country], with_source=False)
    response = client.get(f"/users/{'0' * 40}/recommendations{query}{'&' if query else '?'}n=25")
    assert response.status_code == 200
    assert response.get_json() == {
        "user": "0" * 40,
        "version": 1,
        "known_user": False,
        "source": "country" if country else "global",
        "country": country or None,
        "artists": expected[:25],
    }


@pytest.mark.parametrize(
    "path",
    [
        "/users/abc/recommendations?n=0",
        "/users/abc/recommendations?n=101",
        "/users/abc/recommendations?n=-1",
        "/users/abc/recommendations?n=ten",
        "/users/abc/recommendations?n=",
        "/users/abc/recommendations?n=1.5",
        "/users/abc/recommendations?n=1e1",
        "/users/abc/recommendations?n=%D9%A3",
        f"/users/{'a' * 129}/recommendations",
        "/users/a%20b/recommendations",
        "/users/-abc/recommendations",
        "/users/%C3%BC/recommendations",
        "/users/a/b/recommendations",
        "/users/abc/recommendations?country=%00",
        f"/users/abc/recommendations?country={'x' * 101}",
    ],
)
def test_bad_input_is_a_400_with_json_error(client, path):
    response = client.get(path)
    assert response.status_code == 400
    assert set(response.get_json()) == {"error"}


@settings(max_examples=60, deadline=None)
@given(user=text(max_size=150), n=st.one_of(st.none(), text(max_size=8)), country=text(max_size=120))
def test_no_user_input_causes_a_500(client, user, n, country):
    """Property: any user id / n / country is answered without a server error; 200s carry artists, 400s a reason."""
    from urllib.parse import quote

    query = {"country": country, **({"n": n} if n is not None else {})}
    response = client.get(f"/users/{quote(user, safe='')}/recommendations", query_string=query)
    assert response.status_code < 500
    if response.status_code == 200:
        assert response.get_json()["artists"]
    if response.status_code == 400:
        assert response.get_json()["error"]


def test_healthz_reports_version_age_and_users(client, served):
    body = client.get("/healthz").get_json()
    assert body["status"] == "ok" and body["version"] == 1
    assert body["n_users"] == served[1]["user"].nunique() == N_USERS
    assert 0 <= body["age_seconds"] < 600
    store = rec_api.rec_store.open_store(served[0])
    later = datetime.fromisoformat(body["created_at"]) + timedelta(hours=25)
    assert rec_api.health_body(store, now=later)[0]["age_seconds"] == 25 * 3600


def test_unreadable_store_makes_healthz_503(served, monkeypatch):
    app = rec_api.create_app(served[0])

    def broken():
        raise OSError("disk I/O error")

    monkeypatch.setattr(app.extensions["rec_store"], "info", broken)
    response = app.test_client().get("/healthz")
    assert response.status_code == 503 and response.get_json()["status"] == "error"


def test_empty_store_answers_503_and_missing_store_fails_at_start(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    rec_store.open_store(url)
    monkeypatch.setenv(rec_api.STORE_ENV, url)
    empty = rec_api.create_app().test_client()
    assert empty.get("/healthz").status_code == 503
    response = empty.get("/users/abc/recommendations")
    assert response.status_code == 503 and "no version" in response.get_json()["error"]
    with pytest.raises(SystemExit) as exit_info:
        rec_api.create_app(f"sqlite:///{tmp_path / 'missing.db'}")
    assert exit_info.value.code == rec_api.STORE_ERROR_EXIT


def free_port() -> int:
    """A loopback port free right now (the OS picks it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def gunicorn_command(port: int, workers: int) -> list[str]:
    """The README's start command, on a loopback port, quiet below warnings."""
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "--chdir",
        str(Q3B),
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--log-level",
        "warning",
        "rec_api:create_app()",
    ]


def test_gunicorn_without_store_stops_with_one_line_and_no_traceback(tmp_path):
    result = subprocess.run(
        gunicorn_command(free_port(), workers=1),
        env={**os.environ, rec_api.STORE_ENV: "postgresql://u:secret@127.0.0.1:1/x"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr and "secret" not in result.stderr
    ours = [line for line in result.stderr.splitlines() if line.startswith("rec_api:")]
    assert len(ours) == 1
    assert "cannot serve postgresql://u:***@127.0.0.1:1/x" in ours[0] and "host 127.0.0.1 port 1 database x" in ours[0]


# ------------------------------------------------------------------------------------------------------------
# A real gunicorn process on a loopback port
# ------------------------------------------------------------------------------------------------------------


def get_json(base, path):
    try:
        with urllib.request.urlopen(base + path, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as err:
        return err.code, json.load(err)


@pytest.fixture(scope="module")
def gunicorn(tmp_path_factory):
    """gunicorn with 2 workers serving a fresh SQLite store (version 1) on a free loopback port."""
    url = f"sqlite:///{tmp_path_factory.mktemp('gunicorn') / 'recs.db'}"
    store = rec_store.open_store(url)
    users = batch(random_state=0)[0]["user"].unique()
    batches = {1: batch(random_state=100, users=users)}
    store.write_version(*batches[1])
    port = free_port()
    process = subprocess.Popen(
        gunicorn_command(port, workers=2), env={**os.environ, rec_api.STORE_ENV: url}, stderr=subprocess.PIPE, text=True
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if get_json(base, "/healthz")[0] == 200:
                break
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"gunicorn did not start: {process.communicate()[1][-2000:]}")
        time.sleep(0.2)
    yield base, store, users, batches
    process.terminate()
    process.wait(timeout=20)


def test_gunicorn_serves_known_unknown_and_bad_requests(gunicorn):
    base, _, users, batches = gunicorn
    recommendations, fallbacks = batches[1]
    status, body = get_json(base, f"/users/{users[5]}/recommendations?n=4")
    assert status == 200
    assert body["artists"] == as_api_artists(recommendations[recommendations["user"] == users[5]])[:4]
    status, body = get_json(base, "/users/someone-new/recommendations?n=2&country=POLAND")
    assert (status, body["source"], body["country"]) == (200, "country", "Poland")
    assert body["artists"] == as_api_artists(fallbacks[fallbacks["country"] == "Poland"], with_source=False)[:2]
    assert get_json(base, "/users/someone-new/recommendations")[1]["source"] == "global"
    assert get_json(base, f"/users/{users[0]}/recommendations?n=500") == (
        400,
        {"error": "n must be an integer from 1 to 100, got '500'"},
    )


def test_gunicorn_readers_never_see_missing_or_mixed_answers_during_switches(gunicorn, monkeypatch):
    """HTTP clients hammer gunicorn while new versions are written in small commits and then rolled back.

    Each version holds different content for the same users, so a missing user, a partial version or a mix of
    two versions gives an answer that differs from the reference list of the version the answer reports.
    """
    base, store, users, batches = gunicorn
    monkeypatch.setattr(rec_store, "USERS_PER_CHUNK", 3)
    for version in (2, 3, 4):
        batches[version] = batch(random_state=100 + version, users=users)
    expected = {v: {u: as_api_artists(g) for u, g in recs.groupby("user")} for v, (recs, _) in batches.items()}
    done, answers, failures = threading.Event(), [], []

    def hammer(seed):
        rng = np.random.default_rng(seed)
        while not done.is_set():
            user = users[rng.integers(len(users))]
            status, body = get_json(base, f"/users/{user}/recommendations?n=100")
            answers.append(body.get("version"))
            if status != 200 or not body["known_user"] or body["artists"] != expected[body["version"]][user]:
                failures.append((status, user, body))

    threads = [threading.Thread(target=hammer, args=(seed,)) for seed in range(3)]
    for thread in threads:
        thread.start()
    try:
        for version in (2, 3, 4):
            assert store.write_version(*batches[version]) == version
            time.sleep(0.3)
        assert store.rollback() == 3
        time.sleep(0.3)
    finally:
        done.set()
        for thread in threads:
            thread.join()

    assert failures == []
    assert len(answers) > 30 and {1, 2, 3, 4} & set(answers) >= {2, 3, 4}
    assert get_json(base, "/healthz")[1]["version"] == 3
    user = users[7]
    assert get_json(base, f"/users/{user}/recommendations?n=100")[1]["artists"] == expected[3][user]
