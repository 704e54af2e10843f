"""Q3b serving benchmark: `recommender.py serve` (nginx -> gunicorn -> rec_api) on loopback under wrk, with 50
slow clients holding partial headers, while a new full-size version is written and switched in.

    make bench-q3b-api                                   # full size: 359,347 users x 20, 60 s paced phases
    make bench-q3b-api ARGS="--users 20000 --duration 15"   # quick look

Needs wrk (Debian: apt-get install -y wrk) and nginx.  The store is filled with tests/q3b_synthetic.py (random
content of the Last.fm 360K shape: 359,347 users x 20 artists, the size the recommender's batch writes) through the
store's own writer, so the benchmark measures serving alone.  Phases, side by side in one run:

  idle    wrk paced at --rate requests/s for --duration s; --slow-clients connections hold half a request header
  switch  the same load and slow clients while a thread of the benchmark writes a new version with the store's
          own writer (at --writer-nice, default 10 as the crontab runs the batch) and switches readers to it;
          measured as wrk runs of 15 s until the write, its switch, the pruning and the space reclaim are done,
          plus one more run (and at least --duration s).  The figure to compare with the target (p99 < 20 ms at
          500 requests/s, zero errors, zero mixed-version answers).
  max     wrk unpaced for --max-duration s: the throughput ceiling on this machine

Request mix: 90% known users, 5% unknown (global cold start), 5% unknown with ?country=; n from 1 to 20.  A checker
thread meanwhile asks POST /recommendations for 5 sampled users at a time (~20 calls/s) and compares every list with
the reference of the version the answer names: a mixed or partial version shows up as a mismatch.  Pacing uses
wrk's Lua delay() (wrk is closed-loop, so the achieved rate is printed next to the target).  Writes its section of
Q3b/RESULTS.md, Q3b/out/bench_api.json and Q3b/out/bench_api.png.  Read the load average printed with the figures:
the 2 cores are shared.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import psutil

import rec_store
from tests.q3b_synthetic import synthetic_batch

Q3B = Path(__file__).resolve().parents[1]
FULL_USERS = 359_347  # users in the Last.fm 360K dataset
SECTION = "bench_api"
SEGMENT_S = 15  # the switch phase is measured in wrk runs of this length until the new version is in

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


def start_serve(store_url: str, port: int, workers: int, threads: int, access_log: Path) -> subprocess.Popen:
    """`recommender.py serve` on 127.0.0.1:port; returns once /readyz answers 200."""
    command = [sys.executable, str(Q3B / "recommender.py"), "serve", "--store", store_url]
    command += ["--bind", f"127.0.0.1:{port}", "--workers", str(workers), "--threads", str(threads)]
    process = subprocess.Popen([*command, "--access-log", str(access_log)])
    for _ in range(600):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as response:
                if response.status == 200:
                    return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("serve did not answer /readyz within 60 s")


class SlowClients(threading.Thread):
    """``count`` connections that each send half a request header and then wait; one closed by the server (nginx's
    header timeout) is opened again at once, so ``count`` are held all the time."""

    def __init__(self, port: int, count: int):
        super().__init__(daemon=True)
        self.port, self.count, self.stop, self.reopened = port, count, threading.Event(), 0

    def _open(self) -> socket.socket:
        conn = socket.create_connection(("127.0.0.1", self.port))
        conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
        conn.setblocking(False)
        return conn

    def run(self):
        conns = [self._open() for _ in range(self.count)]
        while not self.stop.wait(0.2):
            for i, conn in enumerate(conns):
                try:
                    conn.recv(4096)  # an answer or a close: the server gave up on this one
                except BlockingIOError:
                    continue  # still waiting, as intended
                except OSError:
                    pass
                conn.close()
                conns[i] = self._open()
                self.reopened += 1
        for conn in conns:
            conn.close()


class Checker(threading.Thread):
    """POST /recommendations for 5 sampled users at a time, ~20 calls/s; every list is compared with the reference
    of the version the answer names.  Counts calls, HTTP errors and mismatches (mixed or partial versions)."""

    def __init__(self, url: str, references: dict[int, dict[str, list[str]]], seed: int = 2):
        super().__init__(daemon=True)
        self.url, self.references, self.stop = url, references, threading.Event()
        self.rng = np.random.default_rng(seed)
        self.calls = self.errors = self.mismatches = 0
        self.versions: dict[int, int] = {}

    def run(self):
        users = list(next(iter(self.references.values())))
        while not self.stop.wait(0.05):
            asked = [users[i] for i in self.rng.integers(len(users), size=5)]
            data = json.dumps({"users": asked, "n": 100}).encode()
            request = urllib.request.Request(
                f"{self.url}/recommendations", data=data, headers={"Content-Type": "application/json"}
            )
            self.calls += 1
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    body = json.load(response)
            except (OSError, ValueError):
                self.errors += 1
                continue
            version = body["version"]
            self.versions[version] = self.versions.get(version, 0) + 1
            expected = self.references.get(version, {})
            for result in body["results"]:
                if [a["name"] for a in result["artists"]] != expected.get(result["user"]):
                    self.mismatches += 1


def references(recommendations, users: np.ndarray) -> dict[str, list[str]]:
    """Each sampled user's artist names in rank order, straight from the batch frame (pandas)."""
    rows = recommendations[recommendations["user"].isin(set(users))].sort_values(["user", "rank"])
    return {user: group["artist_name"].tolist() for user, group in rows.groupby("user")}


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
    """One wrk run; returns the RESULT line's figures plus the achieved rate, the server's (nginx + gunicorn) CPU
    time per request and the 1-minute load average meanwhile (other processes on the shared CPU included)."""
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


def merge_segments(segments: list[dict]) -> dict:
    """One phase from consecutive wrk runs: counts and errors summed, rate over the total time, and each latency
    percentile the highest of the runs' (an upper bound of the phase's percentile: wrk cannot merge histograms)."""
    merged = {key: sum(s[key] for s in segments) for key in ("requests", "duration_s", "errors")}
    merged["rate_per_s"] = round(merged["requests"] / merged["duration_s"], 1)
    for key in ("p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms"):
        merged[key] = max(s[key] for s in segments)
    cpu = sum(s["server_cpu_ms_per_request"] * s["requests"] for s in segments) / merged["requests"]
    merged["server_cpu_ms_per_request"] = round(cpu, 3)
    merged["loadavg_1min"] = round(sum(s["loadavg_1min"] for s in segments) / len(segments), 2)
    merged["segments_p99_ms"] = [s["p99_ms"] for s in segments]
    return merged


def machine() -> str:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor() or "?",
    )
    memory = psutil.virtual_memory().total / 2**30
    return f"{os.cpu_count()} cores ({model}), {memory:.0f} GiB"


def commit() -> str:
    def git(*args):
        return subprocess.run(["git", *args], cwd=Q3B, capture_output=True, text=True).stdout.strip()

    return git("rev-parse", "--short", "HEAD") + ("-dirty" if git("status", "--porcelain", ".") else "")


def write_results(report: dict, command: str, load_before, load_after) -> Path:
    """Rewrite this benchmark's section of Q3b/RESULTS.md (other sections are left as they are)."""
    phases = report["phases"]
    lines = [
        f"<!-- BEGIN {SECTION} -->",
        "## Serving: `recommender.py serve` under load, slow clients and a version switch (`benchmarks/bench_api.py`)",
        "",
        f"- commit {commit()}, {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; machine: {machine()}",
        f"- load average before {load_before[0]:.2f} / {load_before[1]:.2f} / {load_before[2]:.2f}, after"
        f" {load_after[0]:.2f} / {load_after[1]:.2f} / {load_after[2]:.2f}",
        f"- command: `{command}`",
        f"- store: {report['store']}, {report['users']:,} users x 20 ({report['rows']:,} rows, synthetic content);"
        f" server: nginx + gunicorn {report['gunicorn']}; {report['slow_clients']} slow clients holding half a"
        f" header throughout (re-opened {report['slow_reopened']} times after nginx's header timeout)",
        f"- first version written in {report['first_write_s']} s; during the switch phase: {report['writes']}"
        f" (writer at nice {report['writer_nice']}); the switch phase ran {report['switch_segments']} wrk runs of"
        f" {SEGMENT_S} s until one full run after the switch, and its percentiles are the highest of the runs'"
        f" (p99 per run: {phases['switch']['segments_p99_ms']})",
        "",
        "| phase | length s | target req/s | achieved req/s | p50 ms | p90 ms | p99 ms | max ms | errors |"
        " server CPU ms/req | load avg |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in phases.items():
        target = "unpaced" if name == "max" else f"{report['rate_target']:.0f}"
        lines.append(
            f"| {name} | {r['duration_s']:.0f} | {target} | {r['rate_per_s']:.1f} | {r['p50_ms']:.2f}"
            f" | {r['p90_ms']:.2f} | {r['p99_ms']:.2f} | {r['max_ms']:.1f} | {r['errors']}"
            f" | {r['server_cpu_ms_per_request']:.3f} | {r['loadavg_1min']:.2f} |"
        )
    check = report["checker"]
    switch = phases["switch"]
    met = switch["p99_ms"] < 20 and switch["errors"] == 0 and check["mismatches"] == 0 and check["errors"] == 0
    lines += [
        "",
        f"- mixed-version check (POST /recommendations, 5 users per call, idle + switch phases): {check['calls']:,}"
        f" calls, {check['errors']} errors, {check['mismatches']} lists differing from the version named;"
        f" answers by version: {check['versions']}",
        f"- p99 switch/idle: {report['p99_ratio_switch_over_idle']}; peak RSS of the server (nginx + gunicorn)"
        f" {report['peak_rss_server_mb']} MB, of the benchmark {report['peak_rss_benchmark_mb']} MB",
        f"- target (switch phase: p99 < 20 ms at 500 req/s, zero errors, zero mixed answers):"
        f" {'met' if met and switch['rate_per_s'] >= 475 else 'NOT met'} in this run"
        + ("" if switch["rate_per_s"] >= 475 else f" (achieved {switch['rate_per_s']:.0f} req/s)"),
        f"<!-- END {SECTION} -->",
    ]
    path = Q3B / "RESULTS.md"
    text = path.read_text() if path.exists() else "# Q3b results\n\nWritten by the benchmark scripts.\n"
    section = "\n".join(lines)
    begin, end = f"<!-- BEGIN {SECTION} -->", f"<!-- END {SECTION} -->"
    if begin in text and end in text:
        text = text[: text.index(begin)] + section + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    path.write_text(text)
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=FULL_USERS, help="users in the store (default: full 360K)")
    parser.add_argument("--duration", type=int, default=60, help="seconds per paced phase (default 60)")
    parser.add_argument("--max-duration", type=int, default=20, help="seconds of the unpaced phase (default 20)")
    parser.add_argument("--rate", type=float, default=500, help="target requests/s of the paced phases")
    parser.add_argument("--connections", type=int, default=10)
    parser.add_argument("--slow-clients", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker")
    parser.add_argument(
        "--writer-nice",
        type=int,
        default=10,
        help="nice value of the writing thread (default 10, as deploy/crontab.example runs the batch)",
    )
    parser.add_argument("--store", help="store URL (default: a fresh SQLite file in Q3b/out/bench_api/)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("bench_api: wrk not found; install it with: apt-get install -y wrk", file=sys.stderr)
        return 2
    load_before = os.getloadavg()
    out = Q3B / "out"
    work = out / "bench_api"
    if args.store is None:
        shutil.rmtree(work, ignore_errors=True)  # the benchmark's own scratch store, rebuilt every run
    work.mkdir(parents=True, exist_ok=True)
    store_url = args.store or f"sqlite:///{work / 'recs.db'}"
    store = rec_store.open_store(store_url)

    t0 = time.perf_counter()
    batches = [synthetic_batch(args.users, random_state=seed) for seed in (1, 2)]
    users = batches[0][0]["user"].unique()
    batches[1][0]["user"] = np.repeat(users, 20)  # same users, new content, as a real next-day batch
    sample = users[np.random.default_rng(3).integers(0, len(users), 1000)]
    print(f"synthesised {len(batches[0][0]):,} rows x 2 batches in {time.perf_counter() - t0:.1f} s", flush=True)
    t0 = time.perf_counter()
    first = store.write_version(*batches[0])
    first_write_s = time.perf_counter() - t0
    refs = {first: references(batches[0][0], sample), first + 1: references(batches[1][0], sample)}
    print(f"wrote version {first} ({args.users:,} users) in {first_write_s:.1f} s", flush=True)

    paths_file, script = work / "paths.txt", work / "mix.lua"
    paths_file.write_text("\n".join(request_paths(users, 50_000, np.random.default_rng(0))) + "\n")
    script.write_text(WRK_SCRIPT)
    port = free_port()
    server = start_serve(store_url, port, args.workers, args.threads, work / "access.log")
    meter = ServerMeter(server.pid)
    meter.start()
    url = f"http://127.0.0.1:{port}"
    # each connection waits delay_ms between answer and next request; ~2 ms for the answer itself
    delay_ms = max(0.0, args.connections * 1000 / args.rate - 2.0)
    slow = SlowClients(port, args.slow_clients)
    checker = Checker(url, refs)
    results, writes = {}, []
    try:
        run_wrk(url, paths_file, script, 5, args.connections, delay_ms, meter)  # warm-up: page cache, imports
        slow.start()
        checker.start()
        print(f"phase idle: {args.duration} s at ~{args.rate:.0f}/s, {args.slow_clients} slow clients", flush=True)
        results["idle"] = run_wrk(url, paths_file, script, args.duration, args.connections, delay_ms, meter)

        def writer():
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

        print(
            f"phase switch: >= {args.duration} s at ~{args.rate:.0f}/s while version {first + 1} is written", flush=True
        )
        phase_start = time.perf_counter()
        thread = threading.Thread(target=writer)
        thread.start()
        segments = []  # wrk runs of SEGMENT_S until the write and its switch are done, then one more
        while thread.is_alive() or len(segments) * SEGMENT_S < args.duration or not segments[-1].get("after"):
            after = not thread.is_alive()
            segments.append(run_wrk(url, paths_file, script, SEGMENT_S, args.connections, delay_ms, meter))
            segments[-1]["after"] = after
        thread.join()
        results["switch"] = merge_segments(segments)
        checker.stop.set()
        checker.join()
        print(f"phase max: {args.max_duration} s unpaced", flush=True)
        results["max"] = run_wrk(url, paths_file, script, args.max_duration, args.connections * 2, 0, meter)
    finally:
        slow.stop.set()
        checker.stop.set()
        meter.stop.set()
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)

    report = {
        "users": args.users,
        "rows": args.users * 20,
        "rate_target": args.rate,
        "gunicorn": f"{args.workers} gthread workers x {args.threads} threads",
        "store": store_url.split(":", 1)[0],
        "first_write_s": round(first_write_s, 1),
        "writes": writes,
        "writer_nice": args.writer_nice,
        "slow_clients": args.slow_clients,
        "slow_reopened": slow.reopened,
        "checker": {
            "calls": checker.calls,
            "errors": checker.errors,
            "mismatches": checker.mismatches,
            "versions": checker.versions,
        },
        "phases": results,
        "switch_segments": len(segments),
        "p99_ratio_switch_over_idle": round(results["switch"]["p99_ms"] / results["idle"]["p99_ms"], 2),
        "peak_rss_server_mb": round(meter.peak / 1e6),
        "peak_rss_benchmark_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
    print(f"\n{'phase':8} {'rate/s':>8} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8} {'errors':>7}")
    for name, r in results.items():
        print(
            f"{name:8} {r['rate_per_s']:8.1f} {r['p50_ms']:8.2f} {r['p90_ms']:8.2f} {r['p99_ms']:8.2f}"
            f" {r['max_ms']:8.1f} {r['errors']:7d}"
        )
    print(f"checker: {report['checker']}; writes: {writes}; slow clients re-opened {slow.reopened} times")
    (out / "bench_api.json").write_text(json.dumps(report, indent=2))
    plot(results, out / "bench_api.png", args)
    command = "make bench-q3b-api" + (f' ARGS="{" ".join(sys.argv[1:])}"' if sys.argv[1:] else "")
    print(f"wrote {write_results(report, command, load_before, os.getloadavg())}, {out / 'bench_api.json'}")
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
    ax.set_title(
        f"recommender.py serve (nginx + gunicorn), {args.users:,} users, loopback, {os.cpu_count()} shared cores"
    )
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


if __name__ == "__main__":
    sys.exit(main())
