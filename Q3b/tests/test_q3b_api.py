"""Tests of rec_api: Flask's test client for the details (single and bulk answers, 400s, readiness, metrics, the
OpenAPI contract); the production server (`recommender.py serve`: nginx in front of gunicorn) on loopback for
the serving path (slow clients, nginx's own errors as JSON, the access log, readers during version switches)."""

import json
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta
from pathlib import Path

import jsonschema
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

import rec_api
import rec_store
from q3b_synthetic import synthetic_batch

Q3B = Path(rec_api.__file__).resolve().parent

N_USERS, N_PER_USER = 40, 20


def text(**kwargs):
    """Any Unicode text that can travel in a URL (lone surrogates cannot be UTF-8 encoded)."""
    return st.text(st.characters(blacklist_categories=("Cs",)), **kwargs)


def batch(random_state, users=None):
    """A batch of N_USERS x N_PER_USER rows; ``users`` pins the user ids so versions differ only in content."""
    recommendations, fallbacks = synthetic_batch(N_USERS, N_PER_USER, n_artists=101, random_state=random_state)
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


def test_readyz_reports_served_and_newest_version_ages_and_healthz_is_alive(client, served):
    assert client.get("/healthz").get_json() == {"status": "alive"}
    body = client.get("/readyz").get_json()
    assert body["status"] == "ok" and body["version"] == body["newest_version"] == 1
    assert body["n_users"] == served[1]["user"].nunique() == N_USERS
    assert 0 <= body["age_seconds"] < 600
    store = rec_store.open_store(served[0])
    later = datetime.fromisoformat(body["created_at"]) + timedelta(hours=25)
    assert rec_api.ready_body(store, now=later)[0]["age_seconds"] == 25 * 3600


def test_age_after_promoting_an_older_version(tmp_path):
    """The served version's age is its own; the newest version's age is the last batch's (what to alert on)."""
    url = f"sqlite:///{tmp_path / 'recs.db'}"
    store = rec_store.open_store(url)
    store.write_version(*batch(random_state=1))
    store.write_version(*batch(random_state=2))
    store.promote(1)
    created = {v["version"]: datetime.fromisoformat(v["created_at"]) for v in store.versions()}
    now = created[2] + timedelta(hours=3)
    body, status = rec_api.ready_body(store, now=now)
    assert status == 200 and (body["version"], body["newest_version"]) == (1, 2)
    assert body["age_seconds"] == (now - created[1]).total_seconds()
    assert body["newest_age_seconds"] == 3 * 3600


def test_bulk_answers_equal_single_answers_from_one_version(client, served):
    _, recommendations, _ = served
    users = list(recommendations["user"].unique()[:5])
    asked = [users[0].upper(), "somebody-new", *users[1:]]
    response = client.post("/recommendations", json={"users": asked, "n": 7, "country": "Poland"})
    assert response.status_code == 200 and response.headers[rec_api.VERSION_HEADER] == "1"
    body = response.get_json()
    assert body["version"] == 1 and [r["user"] for r in body["results"]] == asked
    for result in body["results"]:
        single = client.get(f"/users/{result['user']}/recommendations?n=7&country=Poland").get_json()
        assert {"version": 1, **result} == single
    assert body["results"][0]["known_user"] and not body["results"][1]["known_user"]


def test_hex_ids_match_case_insensitively(client, served):
    _, recommendations, _ = served
    user = recommendations["user"].iloc[0]
    own = as_api_artists(recommendations[recommendations["user"] == user])[:3]
    for spelling in (user, user.upper(), user[:20].upper() + user[20:]):
        body = client.get(f"/users/{spelling}/recommendations?n=3").get_json()
        assert body["known_user"] and body["artists"] == own and body["user"] == spelling


@pytest.mark.parametrize(
    "body, message",
    [
        ({"users": []}, "1 to 100"),
        ({"users": ["a"] * 101}, "1 to 100"),
        ({"users": "abc"}, "list"),
        ({"users": ["ok", "-bad"]}, "malformed user id"),
        ({"users": ["ok"], "n": 0}, "n must be"),
        ({"users": ["ok"], "n": True}, "n must be"),
        ({"users": ["ok"], "n": "5"}, "n must be"),
        ({"users": ["ok"], "limit": 5}, "unknown field"),
        ({"users": ["ok"], "country": 5}, "country"),
        ([1, 2], "JSON object"),
    ],
)
def test_bad_bulk_requests_are_400_with_json_error(client, body, message):
    response = client.post("/recommendations", json=body)
    assert response.status_code == 400 and message in response.get_json()["error"]


def test_bulk_needs_a_json_body(client):
    for kwargs in ({"data": "users=abc"}, {"data": "{not json", "content_type": "application/json"}):
        response = client.post("/recommendations", **kwargs)
        assert response.status_code == 400 and set(response.get_json()) == {"error"}
    too_big = client.post("/recommendations", data="x" * (rec_api.MAX_BODY_BYTES + 1), content_type="application/json")
    assert too_big.status_code == 413 and "error" in too_big.get_json()


def metric_values(text: str) -> dict:
    """{(sample name, frozenset of labels): value} parsed by prometheus_client's own text parser."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_count_requests_by_route_and_status_and_report_the_served_version(served):
    app = rec_api.create_app(served[0])
    client = app.test_client()
    user = served[1]["user"].iloc[0]
    for _ in range(3):
        client.get(f"/users/{user}/recommendations")
    client.get("/users/-bad/recommendations")
    client.get("/nowhere")
    client.post("/recommendations", json={"users": [user]})
    values = metric_values(client.get("/metrics").get_data(as_text=True))
    route = "/users/<path:user_id>/recommendations"
    assert (
        values[("rec_http_requests_total", frozenset({"route": route, "method": "GET", "status": "200"}.items()))] == 3
    )
    assert (
        values[("rec_http_requests_total", frozenset({"route": route, "method": "GET", "status": "400"}.items()))] == 1
    )
    unmatched = frozenset({"route": "unmatched", "method": "GET", "status": "404"}.items())
    assert values[("rec_http_requests_total", unmatched)] == 1
    bulk = frozenset({"route": "/recommendations", "method": "POST", "status": "200"}.items())
    assert values[("rec_http_requests_total", bulk)] == 1
    count = ("rec_http_request_duration_seconds_count", frozenset({"route": route, "status": "200"}.items()))
    assert values[count] == 3
    under_inf = (
        "rec_http_request_duration_seconds_bucket",
        frozenset({"route": route, "status": "200", "le": "+Inf"}.items()),
    )
    assert values[under_inf] == 3
    assert values[("rec_served_version", frozenset())] == 1
    assert 0 <= values[("rec_served_version_age_seconds", frozenset())] < 600
    assert values[("rec_store_errors_total", frozenset())] == 0


def test_made_up_methods_do_not_create_new_metric_series(served):
    client = rec_api.create_app(served[0]).test_client()
    for i in range(20):
        assert client.open("/healthz", method=f"X{i}METHOD").status_code == 405
    client.open("/healthz", method="DELETE")
    values = metric_values(client.get("/metrics").get_data(as_text=True))
    methods = {}
    for (name, labels), value in values.items():
        if name == "rec_http_requests_total":
            method = dict(labels)["method"]
            methods[method] = methods.get(method, 0) + value
    assert methods == {"other": 20, "DELETE": 1}


def test_unreadable_store_makes_readyz_503_and_counts_store_errors(served, monkeypatch):
    app = rec_api.create_app(served[0])

    def broken(*args, **kwargs):
        raise OSError("disk I/O error")

    monkeypatch.setattr(app.extensions["rec_store"], "info", broken)
    monkeypatch.setattr(app.extensions["rec_store"], "lookup", broken)
    client = app.test_client()
    response = client.get("/readyz")
    assert response.status_code == 503 and response.get_json()["status"] == "error"
    assert client.get("/healthz").status_code == 200  # alive all the same
    failed = client.get("/users/abc/recommendations")
    assert failed.status_code == 500 and failed.get_json() == {"error": "internal error"}
    values = metric_values(client.get("/metrics").get_data(as_text=True))
    assert values[("rec_store_errors_total", frozenset())] == 2  # readyz and the lookup
    assert values[("rec_served_version", frozenset())] == 0
    again = metric_values(client.get("/metrics").get_data(as_text=True))
    assert again[("rec_store_errors_total", frozenset())] == 3  # and the first scrape's own read


def test_unreachable_store_is_a_503_for_requests_and_counts_store_errors(served, monkeypatch):
    app = rec_api.create_app(served[0])

    def down(*args, **kwargs):
        raise rec_store.StoreUnreachableError("cannot connect to PostgreSQL at host db port 5432 database recs")

    monkeypatch.setattr(app.extensions["rec_store"], "lookup", down)
    client = app.test_client()
    single = client.get("/users/abc/recommendations")
    bulk = client.post("/recommendations", json={"users": ["abc"]})
    for response in (single, bulk):
        assert response.status_code == 503
        assert response.get_json() == {"error": "the store cannot be reached; retry shortly"}
    values = metric_values(client.get("/metrics").get_data(as_text=True))
    assert values[("rec_store_errors_total", frozenset())] == 2


def test_empty_store_answers_503_and_missing_store_fails_at_start(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    rec_store.open_store(url)
    monkeypatch.setenv(rec_api.STORE_ENV, url)
    empty = rec_api.create_app().test_client()
    assert empty.get("/readyz").status_code == 503
    response = empty.get("/users/abc/recommendations")
    assert response.status_code == 503 and "no version" in response.get_json()["error"]
    with pytest.raises(SystemExit) as exit_info:
        rec_api.create_app(f"sqlite:///{tmp_path / 'missing.db'}")
    assert exit_info.value.code == rec_api.STORE_ERROR_EXIT


def validate(document: dict, ref: str, body) -> None:
    """Validate ``body`` against ``ref`` inside the OpenAPI document (its schemas are JSON Schema 2020-12)."""
    jsonschema.Draft202012Validator({**document, "$ref": ref}).validate(body)


def test_answers_follow_the_openapi_document(client, served):
    """Contract test: every route of the app is documented, and every answer (200s and errors, several shapes)
    validates against the schema the document gives for its path, method and status."""
    document = client.get("/openapi.json").get_json()
    jsonschema.Draft202012Validator.check_schema({**document, "$ref": "#/components/schemas/Error"})
    documented = {path.replace("{user_id}", "<path:user_id>") for path in document["paths"]}
    routes = {rule.rule for rule in client.application.url_map.iter_rules() if rule.endpoint != "static"}
    assert routes == documented
    user = served[1]["user"].iloc[0]
    calls = [
        ("get", f"/users/{user}/recommendations?n=100", None),
        ("get", "/users/somebody/recommendations?country=Germany", None),
        ("get", "/users/somebody/recommendations?n=0", None),
        ("get", "/users/-x/recommendations", None),
        ("post", "/recommendations", {"users": [user, "somebody"], "n": 3}),
        ("post", "/recommendations", {"users": []}),
        ("get", "/healthz", None),
        ("get", "/readyz", None),
    ]
    for method, url, body in calls:
        response = getattr(client, method)(url, json=body)
        path = "/users/{user_id}/recommendations" if url.startswith("/users/") else url.split("?")[0]
        spec = document["paths"][path][method]["responses"][str(response.status_code)]
        ref = spec["content"]["application/json"]["schema"]["$ref"]
        validate(document, ref, response.get_json())
    with pytest.raises(jsonschema.ValidationError):  # the check can fail: an answer without artists
        validate(document, "#/components/schemas/Recommendations", {"user": "u", "version": 1})


# ------------------------------------------------------------------------------------------------------------
# The production server: `recommender.py serve` (nginx in front of gunicorn) on a loopback port
# ------------------------------------------------------------------------------------------------------------


def free_port() -> int:
    """A loopback port free right now (the OS picks it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def get_json(base, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base + path, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as err:
        return err.code, json.load(err)


def raw_request(port: int, data: bytes) -> tuple[int, bytes]:
    """Send ``data`` as it is and return (status, body) of the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(data)
        answer = b""
        while chunk := conn.recv(65536):  # until the body's Content-Length is in (nginx may keep reading a body)
            answer += chunk
            head, _, body = answer.partition(b"\r\n\r\n")
            length = re.search(rb"(?im)^content-length: *([0-9]+)", head)
            if length and len(body) >= int(length.group(1)):
                break
    return int(head.split()[1]), body


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`recommender.py serve` on a free loopback port, serving a fresh SQLite store (version 1)."""
    folder = tmp_path_factory.mktemp("serve")
    url = f"sqlite:///{folder / 'recs.db'}"
    store = rec_store.open_store(url)
    users = batch(random_state=0)[0]["user"].unique()
    batches = {1: batch(random_state=100, users=users)}
    store.write_version(*batches[1])
    port = free_port()
    access_log = folder / "access.log"
    command = [sys.executable, str(Q3B / "recommender.py"), "serve", "--store", url, "--bind", f"127.0.0.1:{port}"]
    process = subprocess.Popen(
        [*command, "--access-log", str(access_log)], stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if get_json(base, "/readyz")[0] == 200:
                break
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"serve did not start: {process.communicate()[1][-2000:]}")
        time.sleep(0.2)
    yield {"base": base, "port": port, "store": store, "users": users, "batches": batches, "log": access_log}
    process.terminate()
    process.wait(timeout=30)


@pytest.mark.slow
def test_serve_answers_known_unknown_bulk_and_bad_requests(server):
    base, users, (recommendations, fallbacks) = server["base"], server["users"], server["batches"][1]
    status, body = get_json(base, f"/users/{users[5].upper()}/recommendations?n=4")
    assert status == 200
    assert body["artists"] == as_api_artists(recommendations[recommendations["user"] == users[5]])[:4]
    status, body = get_json(base, "/users/someone-new/recommendations?n=2&country=POLAND")
    assert (status, body["source"], body["country"]) == (200, "country", "Poland")
    assert body["artists"] == as_api_artists(fallbacks[fallbacks["country"] == "Poland"], with_source=False)[:2]
    status, body = get_json(base, "/recommendations", {"users": list(users[:3]), "n": 2})
    assert status == 200 and [r["known_user"] for r in body["results"]] == [True] * 3
    assert get_json(base, f"/users/{users[0]}/recommendations?n=500") == (
        400,
        {"error": "n must be an integer from 1 to 100, got '500'"},
    )


@pytest.mark.slow
@pytest.mark.parametrize(
    "data, status",
    [
        (b"GARBAGE\r\n\r\n", 400),
        (b"GET /users/" + b"a" * 9000 + b"/recommendations HTTP/1.1\r\nHost: x\r\n\r\n", 414),
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n", 400),
        (b"GET /users/%2Fabc/recommendations HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 404),
        (b"GET /_error/400 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 404),
        (b"POST /recommendations HTTP/1.1\r\nHost: x\r\nContent-Length: 70000\r\n\r\n", 413),
    ],
)
def test_every_error_body_is_json_including_nginx_own(server, data, status):
    got, body = raw_request(server["port"], data)
    assert got == status
    assert set(json.loads(body)) == {"error"}


@pytest.mark.slow
def test_slow_clients_holding_partial_headers_do_not_block_others(server):
    """Eight clients send half a request header and wait; meanwhile other requests are answered at once."""
    port = server["port"]
    slow = [socket.create_connection(("127.0.0.1", port)) for _ in range(8)]
    try:
        for conn in slow:
            conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
        started, latencies = time.monotonic(), []
        while time.monotonic() - started < 3:
            t0 = time.monotonic()
            status, body = get_json(server["base"], f"/users/{server['users'][1]}/recommendations?n=1")
            latencies.append(time.monotonic() - t0)
            assert status == 200 and body["known_user"]
        assert len(latencies) >= 20 and max(latencies) < 1.0
        for conn in slow:  # they are still connected and get their answer once the header is complete
            conn.sendall(b"1\r\nConnection: close\r\n\r\n")
        for conn in slow:
            conn.settimeout(10)
            assert conn.recv(100).startswith(b"HTTP/1.1 200")
    finally:
        for conn in slow:
            conn.close()


@pytest.mark.slow
def test_access_log_has_one_json_line_per_request_and_metrics_sum_all_workers(server):
    base = server["base"]
    before = metric_values(urllib.request.urlopen(base + "/metrics", timeout=10).read().decode())
    for i in range(12):
        get_json(base, f"/users/nobody-{i}/recommendations?n=1")
    marker = "/users/marker-line/recommendations?n=2"
    get_json(base, marker)
    after = metric_values(urllib.request.urlopen(base + "/metrics", timeout=10).read().decode())
    key = (
        "rec_http_requests_total",
        frozenset({"route": "/users/<path:user_id>/recommendations", "method": "GET", "status": "200"}.items()),
    )
    assert after[key] - before.get(key, 0) == 13  # two gunicorn workers, one sum
    assert after[("rec_served_version", frozenset())] >= 1
    time.sleep(0.2)  # nginx writes the line after the answer
    lines = [json.loads(line) for line in server["log"].read_text().splitlines()]
    ours = [line for line in lines if line["uri"] == marker]
    assert len(ours) == 1 and ours[0]["status"] == 200 and ours[0]["method"] == "GET"
    assert ours[0]["version"] == str(get_json(base, "/readyz")[1]["version"])
    assert float(ours[0]["request_time_s"]) >= 0


@pytest.mark.slow
def test_readers_never_see_missing_or_mixed_answers_during_switches(server, monkeypatch):
    """HTTP clients hammer the server while new versions are written in small commits and then promoted back.

    Each version holds different content for the same users, so a missing user, a partial version or a mix of
    two versions gives an answer that differs from the reference list of the version the answer reports.
    """
    base, store, users, batches = server["base"], server["store"], server["users"], server["batches"]
    monkeypatch.setattr(rec_store, "USERS_PER_CHUNK", 3)
    for version in (2, 3, 4):
        batches[version] = batch(random_state=100 + version, users=users)
    expected = {v: {u: as_api_artists(g) for u, g in recs.groupby("user")} for v, (recs, _) in batches.items()}
    done, answers, failures = threading.Event(), [], []

    def hammer(seed):
        rng = np.random.default_rng(seed)
        while not done.is_set():
            asked = list(users[rng.integers(len(users), size=3)])
            status, body = get_json(base, "/recommendations", {"users": asked, "n": 100})
            answers.append(body.get("version"))
            for result in body.get("results", [None]):
                if (
                    status != 200
                    or not result["known_user"]
                    or result["artists"] != expected[body["version"]][result["user"]]
                ):
                    failures.append((status, body))

    threads = [threading.Thread(target=hammer, args=(seed,)) for seed in range(3)]
    for thread in threads:
        thread.start()
    try:
        for version in (2, 3, 4):
            assert store.write_version(*batches[version]) == version
            time.sleep(0.3)
        assert store.promote(2) == 2
        time.sleep(0.3)
    finally:
        done.set()
        for thread in threads:
            thread.join()

    assert failures == []
    assert len(answers) > 30 and {1, 2, 3, 4} & set(answers) >= {2, 3, 4}
    assert get_json(base, "/readyz")[1]["version"] == 2
