"""Q3b serving benchmark: gunicorn + rec_api on loopback under wrk, with and without a batch writing a new version.

    .venv/bin/python Q3b/benchmarks/bench_api.py                      # full size: 359,347 users x 20, 60 s phases
    .venv/bin/python Q3b/benchmarks/bench_api.py --users 20000 --duration 15   # quick look

Needs wrk (Debian: apt-get install -y wrk).  The store is filled with rec_store.synthetic_batch (random content of
the Last.fm 360K shape: 359,347 users x 20 artists, the same size the recommender's batch writes), not with the
recommender's own output, so the benchmark measures serving alone.  Phases, side by side in one run:

  idle    wrk paced at --rate requests/s for --duration s, nothing else writing
  switch  the same load while a thread of the benchmark process writes a new version (~760 MB in SQLite) and
          switches readers to it; the phase lasts at least --duration s and 1.2 x the first write's time + 20 s,
          so that the whole write, its switch and the pruning fall inside.  The figure to compare with the
          target (p99 < 20 ms at 500 requests/s, zero errors).  --writer-nice N lowers the writer's CPU priority
          as a production batch would run (see deploy/crontab.example); the default 0 competes with the API.
  max     wrk unpaced for --max-duration s: the throughput ceiling on this machine

Request mix: 90% known users, 5% unknown (global cold start), 5% unknown with ?country=; n from 1 to 20.  Pacing
uses wrk's Lua delay() (wrk is closed-loop: a slow answer delays that connection's next request, so the achieved
rate is printed next to the target).  Figures go to stdout, Q3b/out/bench_api.json and Q3b/out/bench_api.png.
Not a test: the CPU is shared, so read the switch/idle ratios and the load average printed with them.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import psutil

import rec_store

Q3B = Path(__file__).resolve().parents[1]

FULL_USERS = 359_347  # users in the Last.fm 360K dataset
WRK_SCRIPT = r"""
local paths = {}
local delay_ms = 0
function init(args)
  for line in io.lines(args[1]) do paths[#paths + 1] = line end
  delay_ms = tonumber(args[2])
  math.randomseed(tonumber(tostring({}):sub(8), 16) or os.time())  -- a different sequence per wrk thread
end
function request() return wrk.format("GET", paths[math.random(#paths)]) end
function delay() return delay_ms end
function done(s, latency, requests)
  io.write(string.format(
    'RESULT {"requests": %d, "duration_s": %.3f, "errors_connect": %d, "errors_read": %d, "errors_write": %d,' ..
    ' "errors_status": %d, "errors_timeout": %d, "p50_ms": %.3f, "p90_ms": %.3f, "p99_ms": %.3f,' ..
    ' "p999_ms": %.3f, "max_ms": %.3f, "mean_ms": %.3f}\n',
    s.requests, s.duration / 1e6, s.errors.connect, s.errors.read, s.errors.write, s.errors.status,
    s.errors.timeout, latency:percentile(50) / 1e3, latency:percentile(90) / 1e3, latency:percentile(99) / 1e3,
    latency:percentile(99.9) / 1e3, latency.max / 1e3, latency.mean / 1e3))
end
"""


def request_paths(users: np.ndarray, n_paths: int, rng: np.random.Generator) -> list[str]:
    """The request mix: 90% known users, 5% unknown, 5% unknown with a country; n uniform in 1..20."""
    kind = rng.random(n_paths)
    n = rng.integers(1, 21, n_paths)
    paths = []
    for i in range(n_paths):
        if kind[i] < 0.90:
            paths.append(f"/users/{users[rng.integers(len(users))]}/recommendations?n={n[i]}")
        elif kind[i] < 0.95:
            paths.append(f"/users/{rng.bytes(20).hex()}/recommendations?n={n[i]}")
        else:
            paths.append(f"/users/{rng.bytes(20).hex()}/recommendations?n={n[i]}&country=Germany")
    return paths


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_gunicorn(store_url: str, port: int, workers: int, worker_class: str, threads: int) -> subprocess.Popen:
    """gunicorn serving rec_api on 127.0.0.1:port; returns once /healthz answers 200."""
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "--chdir",
        str(Q3B),
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--worker-class",
        worker_class,
        "--threads",
        str(threads),
        "--log-level",
        "warning",
        "rec_api:create_app()",
    ]
    process = subprocess.Popen(command, env={**os.environ, "RECS_STORE": store_url})
    for _ in range(300):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
                if response.status == 200:
                    return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("gunicorn did not answer /healthz within 30 s")


class ServerMeter(threading.Thread):
    """Watches the gunicorn process tree: peak summed RSS (sampled every 0.5 s) and CPU seconds used so far."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.root, self.peak, self.stop = psutil.Process(pid), 0, threading.Event()
        self.workers = self.root.children(recursive=True)  # fixed set unless a worker dies

    def cpu_seconds(self) -> float:
        """User + system CPU seconds of the master and workers (a contention-free cost measure)."""
        return sum(sum(p.cpu_times()[:2]) for p in [self.root, *self.workers])

    def run(self):
        while not self.stop.wait(0.5):
            try:
                procs = [self.root, *self.root.children(recursive=True)]
                self.peak = max(self.peak, sum(p.memory_info().rss for p in procs))
            except psutil.Error:
                pass


def run_wrk(
    url: str, paths_file: Path, script: Path, duration: int, connections: int, delay_ms: float, meter: ServerMeter
) -> dict:
    """One wrk run; returns the RESULT line's figures plus the achieved rate, the gunicorn CPU time per request
    and the 1-minute load average meanwhile (other processes on the shared CPU included)."""
    load_before, cpu_before = os.getloadavg()[0], meter.cpu_seconds()
    command = [
        "wrk",
        "-t2",
        f"-c{connections}",
        f"-d{duration}s",
        "--timeout",
        "5s",
        "--latency",
        "-s",
        str(script),
        url,
        "--",
        str(paths_file),
        f"{delay_ms:.3f}",
    ]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    result = json.loads(next(line for line in output.splitlines() if line.startswith("RESULT "))[7:])
    result["rate_per_s"] = round(result["requests"] / result["duration_s"], 1)
    result["errors"] = sum(v for k, v in result.items() if k.startswith("errors_"))
    result["server_cpu_ms_per_request"] = round((meter.cpu_seconds() - cpu_before) * 1000 / result["requests"], 3)
    result["loadavg_1min"] = round((load_before + os.getloadavg()[0]) / 2, 2)
    return result


def check_content(url: str, recommendations, version: int, rng: np.random.Generator, n_users: int = 200) -> str:
    """After the switch: ask the API for random known users and compare with the batch just written."""
    users = recommendations["user"].unique()[rng.integers(0, recommendations["user"].nunique(), n_users)]
    expected = recommendations[recommendations["user"].isin(set(users))].sort_values(["user", "rank"])
    by_user = {u: g["artist_name"].tolist() for u, g in expected.groupby("user")}
    matches = 0
    for user in users:
        with urllib.request.urlopen(f"{url}/users/{user}/recommendations?n=100", timeout=10) as response:
            body = json.load(response)
        matches += body["version"] == version and [a["name"] for a in body["artists"]] == by_user[user]
    return f"content check after the switch: {matches}/{n_users} users match version {version} exactly"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=FULL_USERS, help="users in the store (default: full 360K)")
    parser.add_argument("--duration", type=int, default=60, help="seconds per paced phase (default 60)")
    parser.add_argument("--max-duration", type=int, default=20, help="seconds of the unpaced phase (default 20)")
    parser.add_argument("--rate", type=float, default=500, help="target requests/s of the paced phases")
    parser.add_argument("--connections", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--worker-class", default="gthread", choices=("sync", "gthread"))
    parser.add_argument("--threads", type=int, default=4, help="threads per gthread worker")
    parser.add_argument(
        "--writer-nice",
        type=int,
        default=0,
        help="nice value of the writing thread in the switch phase (default 0: same as the API)",
    )
    parser.add_argument("--store", help="store URL (default: a fresh SQLite file in Q3b/out/bench_api/)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("bench_api: wrk not found; install it with: apt-get install -y wrk", file=sys.stderr)
        return 2

    out = Q3B / "out"
    work = out / "bench_api"
    if args.store is None:
        shutil.rmtree(work, ignore_errors=True)  # the benchmark's own scratch store, rebuilt every run
    work.mkdir(parents=True, exist_ok=True)
    store_url = args.store or f"sqlite:///{work / 'recs.db'}"
    store = rec_store.open_store(store_url)

    t0 = time.perf_counter()
    batches = [rec_store.synthetic_batch(args.users, random_state=seed) for seed in (1, 2)]
    users = batches[0][0]["user"].unique()
    for recommendations, _ in batches[1:]:
        recommendations["user"] = np.repeat(users, 20)  # same users, new content, as a real next-day batch
    print(f"synthesised {len(batches[0][0]):,} rows x 2 batches in {time.perf_counter() - t0:.1f} s", flush=True)
    t0 = time.perf_counter()
    store.write_version(*batches[0])
    first_write_s = time.perf_counter() - t0
    print(
        f"wrote version {store.info()['version']} ({args.users:,} users) in {first_write_s:.1f} s "
        f"(file {sum(f.stat().st_size for f in work.glob('recs.db*')) / 1e6:.0f} MB)",
        flush=True,
    )

    paths_file, script = work / "paths.txt", work / "mix.lua"
    paths_file.write_text("\n".join(request_paths(users, 50_000, np.random.default_rng(0))) + "\n")
    script.write_text(WRK_SCRIPT)
    port = free_port()
    server = start_gunicorn(store_url, port, args.workers, args.worker_class, args.threads)
    rss = ServerMeter(server.pid)
    rss.start()
    url = f"http://127.0.0.1:{port}"
    # each connection waits delay_ms between answer and next request; ~1 ms for the answer itself
    delay_ms = max(0.0, args.connections * 1000 / args.rate - 1.0)
    results, writes = {}, []
    try:
        run_wrk(url, paths_file, script, 5, args.connections, delay_ms, rss)  # warm-up: page cache, worker imports
        print(f"phase idle: {args.duration} s at ~{args.rate:.0f}/s", flush=True)
        results["idle"] = run_wrk(url, paths_file, script, args.duration, args.connections, delay_ms, rss)

        def writer():
            # a production batch is not latency-critical and may run below the API's CPU priority
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), args.writer_nice)
            start = time.perf_counter()
            version = store.write_version(*batches[1])
            writes.append(
                {
                    "version": version,
                    "seconds": round(time.perf_counter() - start, 1),
                    "switched_at_s": round(time.perf_counter() - phase_start, 1),
                }
            )

        # long enough to cover one whole write plus its switch and pruning, judged by the first write's time
        switch_s = max(args.duration, int(first_write_s * 1.2) + 20)
        print(f"phase switch: {switch_s} s at ~{args.rate:.0f}/s while versions are written", flush=True)
        phase_start = time.perf_counter()
        thread = threading.Thread(target=writer)
        thread.start()
        results["switch"] = run_wrk(url, paths_file, script, switch_s, args.connections, delay_ms, rss)
        thread.join()
        content_check = check_content(url, batches[1][0], store.info()["version"], np.random.default_rng(1))
        print(content_check, flush=True)
        print(f"phase max: {args.max_duration} s unpaced", flush=True)
        results["max"] = run_wrk(url, paths_file, script, args.max_duration, args.connections * 2, 0, rss)
    finally:
        rss.stop.set()
        server.terminate()
        server.wait(timeout=30)

    report = {
        "users": args.users,
        "rows": args.users * 20,
        "cpus": os.cpu_count(),
        "rate_target": args.rate,
        "gunicorn": f"{args.workers} x {args.worker_class}"
        + (f" x {args.threads} threads" if args.worker_class == "gthread" else ""),
        "store": store_url.split(":", 1)[0],
        "first_write_s": round(first_write_s, 1),
        "writes_during_switch": writes,
        "switch_phase_s": switch_s,
        "writer_nice": args.writer_nice,
        "content_check": content_check,
        "phases": results,
        "p99_ratio_switch_over_idle": round(results["switch"]["p99_ms"] / results["idle"]["p99_ms"], 2),
        "peak_rss_gunicorn_mb": round(rss.peak / 1e6),
        "peak_rss_benchmark_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
    print(
        f"\n{'phase':8} {'rate/s':>8} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8} {'errors':>7}"
        f" {'cpu ms/req':>10} {'load1':>6}"
    )
    for name, r in results.items():
        print(
            f"{name:8} {r['rate_per_s']:8.1f} {r['p50_ms']:8.2f} {r['p90_ms']:8.2f} {r['p99_ms']:8.2f}"
            f" {r['max_ms']:8.1f} {r['errors']:7d} {r['server_cpu_ms_per_request']:10.3f} {r['loadavg_1min']:6.2f}"
        )
    print(f"versions written during the switch phase: {writes}")
    print(
        f"p99 switch/idle: {report['p99_ratio_switch_over_idle']}; peak RSS gunicorn (all workers) "
        f"{report['peak_rss_gunicorn_mb']} MB, benchmark process {report['peak_rss_benchmark_mb']} MB"
    )
    (out / "bench_api.json").write_text(json.dumps(report, indent=2))
    plot(results, out / "bench_api.png", args)
    print(f"wrote {out / 'bench_api.json'} and {out / 'bench_api.png'}")
    return 0


def plot(results: dict, path: Path, args) -> None:
    """Bar chart of p50/p90/p99 latency per phase, with the 20 ms p99 target line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    names, width = list(results), 0.25
    for i, q in enumerate(("p50_ms", "p90_ms", "p99_ms")):
        ax.bar(np.arange(len(names)) + (i - 1) * width, [results[n][q] for n in names], width, label=q[:-3])
    ax.axhline(20, color="red", linestyle="--", label="p99 target 20 ms")
    ax.set_xticks(
        np.arange(len(names)),
        [f"{n}\n{results[n]['rate_per_s']:.0f} req/s, {results[n]['errors']} errors" for n in names],
    )
    ax.set_ylabel("latency (ms)")
    ax.set_title(f"rec_api on gunicorn, {args.users:,} users, loopback, {os.cpu_count()} shared cores")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


if __name__ == "__main__":
    sys.exit(main())
