"""The production server of the recommendations API: nginx in front of gunicorn, started and stopped as one.

``python Q3b/recommender.py serve --store URL --bind 127.0.0.1:8000`` calls :func:`serve`, which

1. checks the store (it must hold the tables a batch writes) and that the address is free;
2. starts gunicorn (``rec_api:create_app()``, gthread workers) on a Unix socket in a fresh run folder, with
   ``PROMETHEUS_MULTIPROC_DIR`` there so that ``/metrics`` sums all workers;
3. starts nginx with ``deploy/nginx.conf`` (filled in with the address, the socket and the access log) as the
   only process listening on ``--bind``: it reads every request completely, with timeouts, before gunicorn sees
   it, so slow or idle clients never hold a gunicorn thread;
4. waits until ``/healthz`` answers through nginx, then until SIGINT or SIGTERM (or one of the two stops), and
   stops both (nginx first, so no request reaches a stopping gunicorn) and deletes the run folder.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import rec_store

Q3B = Path(__file__).resolve().parent
NGINX_TEMPLATE = Q3B / "deploy" / "nginx.conf"
START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 15


class ServeError(Exception):
    """The server cannot start (bad address, port in use, no nginx, unusable store); one line for the user."""


def parse_bind(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (IPv6 as ``[::1]:PORT``) -> (host, port); raises ServeError otherwise."""
    host, sep, port = text.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ServeError(f"--bind {text!r}: expected HOST:PORT, e.g. 127.0.0.1:8000")
    return host, int(port)


def find_nginx() -> str:
    """Path of the nginx binary (PATH, then /usr/sbin); raises ServeError naming the package to install."""
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if found is None:
        raise ServeError("nginx is not installed; install the Debian package: apt-get install nginx (or make sysdeps)")
    return found


def render_nginx_conf(run_dir: Path, host: str, port: int, socket_path: Path, access_log: str) -> str:
    """deploy/nginx.conf with its @NAME@ fields filled in.  As root, nginx's workers run as ``nobody``."""
    listen = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    user = ""
    if os.geteuid() == 0:
        import grp

        nobody = pwd.getpwnam("nobody")
        user = f"user {nobody.pw_name} {grp.getgrgid(nobody.pw_gid).gr_name};"
    fields = {
        "@USER@": user,
        "@RUN@": str(run_dir),
        "@LISTEN@": listen,
        "@SOCKET@": str(socket_path),
        "@ACCESS_LOG@": "/dev/stdout" if access_log == "-" else str(Path(access_log).resolve()),
    }
    text = NGINX_TEMPLATE.read_text()
    for field, value in fields.items():
        text = text.replace(field, value)
    return text


def _check_address_free(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as err:
            raise ServeError(f"cannot listen on {host}:{port}: {err.strerror}; choose another --bind") from None


def _check_access_log(access_log: str) -> None:
    """Open the access log for appending as nginx will (creating it), so a bad path is one line before any start."""
    if access_log == "-":
        return
    try:
        with open(access_log, "a"):
            pass
    except OSError as err:
        raise ServeError(
            f"--access-log {access_log}: cannot write there ({err.strerror}); choose another file"
        ) from None


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM if serve itself dies (Linux), so nothing is left behind."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _accepts(socket_path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(socket_path))
        except OSError:
            return False
    return True


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def _stop(process: subprocess.Popen, sig: int) -> None:
    """Stop ``process`` with ``sig`` (SIGKILL after STOP_TIMEOUT_S), then whatever is left of its process group.

    Each child runs in a session of its own, so its group holds only what it forked: after a master that stopped
    by itself (an nginx master killed by the OOM killer, say), its orphaned workers, which would keep the port.
    """
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(sig)
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def serve(
    store_url: str,
    bind: str,
    *,
    workers: int = 2,
    threads: int = 4,
    access_log: str = "-",
    stop: threading.Event | None = None,
    on_ready=None,
) -> int:
    """Run nginx + gunicorn serving ``store_url`` on ``bind`` until SIGINT/SIGTERM (or ``stop`` is set).

    Parameters: ``workers`` gunicorn worker processes x ``threads`` threads each; ``access_log`` '-' (stdout) or a
    file for nginx's JSON access log; ``on_ready(url)`` is called once /healthz answers.  Returns 0 after a
    requested stop, 1 if nginx or gunicorn stopped by itself.  Raises ServeError before starting anything for a
    bad address, a port in use, a missing nginx, a store that cannot be served or an access log that cannot be
    written.
    """
    host, port = parse_bind(bind)
    nginx = find_nginx()
    try:
        rec_store.open_store(store_url, create=False)
    except (FileNotFoundError, ValueError, ConnectionError) as err:
        raise ServeError(f"--store: {err}") from None
    _check_address_free(host, port)
    _check_access_log(access_log)
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())

    run_dir = Path(tempfile.mkdtemp(prefix="q3b-serve-"))
    run_dir.chmod(0o755)  # nginx's workers (user nobody when started as root) reach the socket through it
    (run_dir / "metrics").mkdir()
    socket_path = run_dir / "gunicorn.sock"
    (run_dir / "nginx.conf").write_text(render_nginx_conf(run_dir, host, port, socket_path, access_log))
    children: list[tuple[subprocess.Popen, int]] = []
    try:
        gunicorn = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--pythonpath",  # not --chdir: a relative sqlite:/// store URL means the same file as for serve
                str(Q3B),
                "--bind",
                f"unix:{socket_path}",
                "--workers",
                str(workers),
                "--worker-class",
                "gthread",
                "--threads",
                str(threads),
                "--graceful-timeout",
                "10",
                "--keep-alive",  # longer than nginx keeps an idle upstream connection: nginx closes it first
                "75",
                "--log-level",
                "warning",
                "rec_api:create_app()",
            ],
            env={**os.environ, "RECS_STORE": store_url, "PROMETHEUS_MULTIPROC_DIR": str(run_dir / "metrics")},
            start_new_session=True,  # Ctrl-C reaches serve only, which stops the children in order
            preexec_fn=_die_with_parent,
        )
        children.append((gunicorn, signal.SIGTERM))
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _accepts(socket_path):  # nginx starts once gunicorn listens: no failed first requests
            if gunicorn.poll() is not None:
                raise ServeError(f"gunicorn stopped while starting (exit code {gunicorn.returncode}); see above")
            if stop.is_set():
                return 0
            if time.monotonic() > deadline:
                raise ServeError(f"gunicorn did not listen on {socket_path} within {START_TIMEOUT_S} s")
            time.sleep(0.1)
        server = subprocess.Popen(
            [nginx, "-p", str(run_dir), "-c", str(run_dir / "nginx.conf"), "-e", "stderr"],
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        children.insert(0, (server, signal.SIGQUIT))  # nginx first: SIGQUIT finishes the requests in flight
        local = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)  # where a wildcard address is reached
        probe = f"http://{f'[{local}]' if ':' in local else local}:{port}/healthz"
        while not _answers(probe):
            for process, _ in children:
                if process.poll() is not None:
                    name = "nginx" if process is server else "gunicorn"
                    raise ServeError(f"{name} stopped while starting (exit code {process.returncode}); see above")
            if stop.is_set():
                return 0
            if time.monotonic() > deadline:
                raise ServeError(f"no answer from {probe} within {START_TIMEOUT_S} s")
            time.sleep(0.1)
        if on_ready is not None:
            on_ready(probe.rsplit("/", 1)[0])
        while not stop.wait(0.5):
            if any(process.poll() is not None for process, _ in children):
                return 1
        return 0
    finally:
        for process, sig in children:
            _stop(process, sig)
        shutil.rmtree(run_dir, ignore_errors=True)
