"""The serving side of the recommender CLI: the batch's store lock and input checks (one line, exit 2, nothing
written, served version untouched), versions/promote/rollback, and `serve` starting and stopping as one."""

import gzip
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil
import pytest

import lastfm_data
import rec_store
import recommender
from q3b_synthetic import synthetic_batch

Q3B = Path(__file__).resolve().parents[1]
PROFILE_LINE = "5f82c2d9cfeb0fa321d7d982f8bd1045b8e8cd4e\tm\t34\tSweden\tOct 26, 2006\n"


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err
    return err


@pytest.fixture
def store_with_one_version(tmp_path):
    """An SQLite store holding version 1, and its URL."""
    url = f"sqlite:///{tmp_path / 'store' / 'recs.db'}"
    store = rec_store.open_store(url)
    store.write_version(*synthetic_batch(20, 5, n_artists=31, random_state=0))
    return url, store


def _batch(tmp_path, url, plays=None, profiles=None):
    argv = ["batch", "--store", url, "--out", str(tmp_path / "recs.parquet"), "--data-dir", str(tmp_path)]
    argv += ["--plays", str(plays)] if plays else []
    argv += ["--profiles", str(profiles)] if profiles else []
    return recommender.main(argv)


def _nothing_written(tmp_path, store):
    assert not (tmp_path / "recs.parquet").exists() and not (tmp_path / "recs_fallbacks.parquet").exists()
    assert [v["version"] for v in store.versions()] == [1] and store.info()["version"] == 1


def test_second_batch_stops_before_loading_while_the_store_is_locked(
    tmp_path, store_with_one_version, monkeypatch, capsys
):
    url, store = store_with_one_version
    loaded = []
    monkeypatch.setattr(recommender, "load_inputs", lambda *a, **k: loaded.append(a))
    (tmp_path / lastfm_data.PLAYS_FILE).write_text("")
    (tmp_path / lastfm_data.PROFILES_FILE).write_text("")
    other = rec_store.open_store(url)  # another writer, as a running batch holds it
    with other.lock():
        assert _batch(tmp_path, url) == 2
        assert "another batch or rollback is writing" in _one_line(capsys)
    assert loaded == []
    _nothing_written(tmp_path, store)


def test_input_without_a_usable_row_is_one_line_and_writes_nothing(tmp_path, store_with_one_version, capsys):
    url, store = store_with_one_version
    plays = tmp_path / "plays.tsv"
    plays.write_text("not a sha1\tx\ty\t1\n" * 5, encoding="utf-8")
    profiles = tmp_path / "profiles.tsv"
    profiles.write_text(PROFILE_LINE, encoding="utf-8")
    assert _batch(tmp_path, url, plays, profiles) == 2
    assert "no usable row" in _one_line(capsys)
    _nothing_written(tmp_path, store)


def test_truncated_gz_is_one_line_and_writes_nothing(tmp_path, store_with_one_version, capsys):
    url, store = store_with_one_version
    recs, _ = synthetic_batch(50, 5, random_state=1)
    lines = "".join(f"{r.user}\t{r.artist_mbid}\t{r.artist_name}\t{r.rank * 10}\n" for r in recs.itertuples())
    whole = gzip.compress(lines.encode() * 20)
    plays = tmp_path / "plays.tsv.gz"
    plays.write_bytes(whole[: len(whole) // 2])
    profiles = tmp_path / "profiles.tsv"
    profiles.write_text(PROFILE_LINE, encoding="utf-8")
    assert _batch(tmp_path, url, plays, profiles) == 2
    err = _one_line(capsys)
    assert str(plays) in err and "cannot be read to the end" in err
    _nothing_written(tmp_path, store)


@pytest.mark.parametrize("where", ["below a file", "in /proc"])
def test_store_that_cannot_be_written_is_one_line_before_loading(where, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(recommender, "load_inputs", lambda *a, **k: pytest.fail("inputs loaded"))
    (tmp_path / "a-file").write_text("x")
    path = tmp_path / "a-file" / "recs.db" if where == "below a file" else Path("/proc/q3b-recs.db")
    assert _batch(tmp_path, f"sqlite:///{path}") == 2
    assert _one_line(capsys).startswith(f"recommender.py batch: --store sqlite:///{path}: ")
    assert not (tmp_path / "recs.parquet").exists()


def test_versions_promote_and_rollback_commands(tmp_path, store_with_one_version, capsys):
    url, store = store_with_one_version
    store.write_version(*synthetic_batch(20, 5, n_artists=31, random_state=1))
    assert recommender.main(["versions", "--store", url]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("version     2") and out[0].endswith("<- served") and out[1].startswith("version     1")
    assert recommender.main(["rollback", "--store", url]) == 0
    assert store.info()["version"] == 1 and "version 1" in capsys.readouterr().out
    assert recommender.main(["rollback", "--store", url]) == 2
    assert "nothing to roll back to" in _one_line(capsys)
    assert recommender.main(["promote", "2", "--store", url]) == 0
    assert store.info()["version"] == 2
    assert recommender.main(["promote", "7", "--store", url]) == 2
    assert "version 7 is not" in _one_line(capsys) and store.info()["version"] == 2
    assert recommender.main(["versions", "--store", f"sqlite:///{tmp_path / 'none.db'}"]) == 2
    assert "does not exist" in _one_line(capsys)


def test_serve_refuses_a_missing_store_and_a_busy_port_in_one_line(tmp_path, store_with_one_version, capsys):
    assert recommender.main(["serve", "--store", f"sqlite:///{tmp_path / 'none.db'}", "--bind", "127.0.0.1:1"]) == 2
    assert "does not exist" in _one_line(capsys)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert recommender.main(["serve", "--store", store_with_one_version[0], "--bind", f"127.0.0.1:{port}"]) == 2
        assert f"cannot listen on 127.0.0.1:{port}" in _one_line(capsys)
    assert recommender.main(["serve", "--store", store_with_one_version[0], "--bind", "localhost"]) == 2
    assert "expected HOST:PORT" in _one_line(capsys)


@pytest.mark.slow
def test_serve_stops_everything_it_started_on_sigterm(store_with_one_version, tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, str(Q3B / "recommender.py"), "serve", "--store", store_with_one_version[0]]
        + ["--bind", f"127.0.0.1:{port}", "--access-log", os.devnull],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert "serving http://127.0.0.1:" in process.stderr.readline()
        children = psutil.Process(process.pid).children(recursive=True)
        names = {p.name() for p in children}
        assert "nginx" in names and len(children) >= 4  # nginx master + worker, gunicorn master + 2 workers
        process.send_signal(signal.SIGTERM)  # Ctrl-C (SIGINT) takes the same path
        assert process.wait(timeout=30) == 0
        gone, alive = psutil.wait_procs(children, timeout=10)
        assert alive == []
        with socket.socket() as again:
            assert again.connect_ex(("127.0.0.1", port)) != 0  # nothing listens any more
    finally:
        if process.poll() is None:
            process.kill()


@pytest.mark.parametrize("where", ["no-folder/access.log", "."])
def test_serve_refuses_an_unwritable_access_log_in_one_line_before_starting(
    where, tmp_path, store_with_one_version, capfd
):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = tmp_path / where
    argv = ["serve", "--store", store_with_one_version[0], "--bind", f"127.0.0.1:{port}", "--access-log", str(log)]
    assert recommender.main(argv) == 2
    err = capfd.readouterr().err.strip()  # nginx and gunicorn would write to the file descriptor, not sys.stderr
    assert len(err.splitlines()) == 1 and err.startswith(f"recommender.py serve: --access-log {log}: cannot write"), err


@pytest.mark.slow
def test_access_log_stays_json_when_a_request_carries_bytes_that_are_not_ascii(store_with_one_version, tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = tmp_path / "access.log"
    process = subprocess.Popen(
        [sys.executable, str(Q3B / "recommender.py"), "serve", "--store", store_with_one_version[0]]
        + ["--bind", f"127.0.0.1:{port}", "--access-log", str(log)],
        stderr=subprocess.PIPE,
        text=True,
    )
    requests = [
        b"GET /users/\xff\xfe/recommendations HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nUser-Agent: caf\xc3\xa9 \xff\r\nConnection: close\r\n\r\n",
        b"GET /users/abc/recommendations?n=2 HTTP/1.1\r\nHost: x\r\nUser-Agent: probe\r\nConnection: close\r\n\r\n",
    ]
    try:
        assert "serving http://127.0.0.1:" in process.stderr.readline()
        for raw in requests:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as client:
                client.sendall(raw)
                while client.recv(65536):
                    pass
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
    lines = [json.loads(line.decode("utf-8")) for line in log.read_bytes().splitlines()]  # every line is JSON
    mine = [line for line in lines if not line["user_agent"].startswith("Python-urllib/")]  # not serve's probe
    assert [(line["uri"], line["status"], line["user_agent"]) for line in mine] == [
        ("(not printable ASCII)", 400, ""),
        ("/healthz", 200, "(not printable ASCII)"),
        ("/users/abc/recommendations?n=2", 200, "probe"),
    ]


@pytest.mark.slow
def test_serve_finds_a_relative_sqlite_store_as_the_batch_wrote_it(store_with_one_version, tmp_path):
    # SERVING.md's commands run from the repository root with sqlite:///Q3b/data/recs.db: relative to the folder
    # serve is started in, for gunicorn's workers as well
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, str(Q3B / "recommender.py"), "serve", "--store", "sqlite:///store/recs.db"]
        + ["--bind", f"127.0.0.1:{port}", "--access-log", os.devnull],
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first = process.stderr.readline()
        assert "serving http://127.0.0.1:" in first, first + process.stderr.read(2000)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=10) as answer:
            assert json.load(answer)["version"] == 1
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()


@pytest.mark.slow
def test_serve_exits_1_and_frees_the_port_when_nginx_dies_on_its_own(store_with_one_version, tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, str(Q3B / "recommender.py"), "serve", "--store", store_with_one_version[0]]
        + ["--bind", f"127.0.0.1:{port}", "--access-log", os.devnull],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert "serving http://127.0.0.1:" in process.stderr.readline()
        children = psutil.Process(process.pid).children(recursive=True)
        master = next(p for p in psutil.Process(process.pid).children() if p.name() == "nginx")
        master.kill()  # as the OOM killer would: its workers are left behind
        assert process.wait(timeout=30) == 1
        gone, alive = psutil.wait_procs(children, timeout=10)
        assert alive == []
        with socket.socket() as again:
            assert again.connect_ex(("127.0.0.1", port)) != 0  # nothing listens any more
    finally:
        if process.poll() is None:
            process.kill()


@pytest.mark.slow
def test_nginx_answers_503_in_json_when_gunicorn_is_not_there(tmp_path):
    import rec_serve

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    conf = rec_serve.render_nginx_conf(tmp_path, "127.0.0.1", port, tmp_path / "no-gunicorn.sock", os.devnull)
    (tmp_path / "nginx.conf").write_text(conf)
    nginx = subprocess.Popen([rec_serve.find_nginx(), "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")])
    try:
        for _ in range(300):  # until nginx listens
            with socket.socket() as client:
                if client.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert nginx.poll() is None, "nginx stopped"
            time.sleep(0.1)
        with pytest.raises(urllib.error.HTTPError) as answer:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10)
        assert answer.value.code == 503
        assert json.loads(answer.value.read()) == {"error": "the API is not available; retry shortly"}
    finally:
        nginx.send_signal(signal.SIGQUIT)
        nginx.wait(timeout=15)
