"""Benchmark: the local batch vs the Spark neighbour search in local mode on generated Last.fm sets of growing size.

    cd Q3b && ../.venv/bin/python -m benchmarks.bench_spark_knn [--users 20000 40000 80000] [--process-users 20000]

For each size, on files written by ``lastfm_generator`` (fixed seed), measures side by side:
- local: ``recommender.py batch`` as its own process (the production route: capped posting lists + exact re-rank
  in numba), wall and peak RSS;
- Spark warm: ``user_knn.build_batch(..., neighbour_search=SparkNeighbourSearch(spark))`` in an already started
  local[2] session: wall of the whole batch and of the Spark search, stage times and shuffle spill from Spark's
  monitoring REST API (loopback), peak RSS of the process tree (the JVM included);
- Spark whole process (the sizes in ``--process-users``): ``recommender.py batch --engine spark --master local[2]``;
and the overlap of the Spark lists with the local ones. Prints a table and rewrites its section of Q3b/RESULTS.md.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import psutil

import lastfm_data
import lastfm_generator
import user_knn

Q3B = Path(__file__).resolve().parents[1]
CLI = Q3B / "recommender.py"
RESULTS = Q3B / "RESULTS.md"
SECTION = "bench_spark_knn"


def tree_rss(process: psutil.Process) -> int:
    total = 0
    for p in [process, *process.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            total += p.memory_info().rss
    return total


class PeakSampler:
    """Samples tree_rss(pid) every 50 ms in a thread; ``peak`` is the largest seen."""

    def __init__(self, pid: int):
        self.process, self.peak, self._stop = psutil.Process(pid), 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            with contextlib.suppress(psutil.Error):
                self.peak = max(self.peak, tree_rss(self.process))
            time.sleep(0.05)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def run_process(command: list) -> tuple:
    """(wall s, peak tree RSS bytes) of a command that must succeed; on failure its stderr is kept in a file and
    the first exception line is shown."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    with PeakSampler(process.pid) as sampler:
        _, err = process.communicate()
    if process.returncode != 0:
        text = err.decode(errors="replace")
        log = Path(tempfile.mkstemp(prefix="bench-spark-knn-", suffix=".log")[1])
        log.write_text(text)
        cause = next((line for line in text.splitlines() if "Exception" in line or "Error" in line), text[-300:])
        raise RuntimeError(f"{' '.join(command[:4])}... exited with {process.returncode}: {cause} (stderr: {log})")
    return time.perf_counter() - started, sampler.peak


def stage_metrics(ui_url: str, app_id: str, since_stage: int) -> tuple:
    """(seconds of each stage in order, shuffle written bytes, spilled bytes (memory + disk), last stage id) of the
    completed stages after ``since_stage``, from Spark's monitoring REST API."""
    with urllib.request.urlopen(f"{ui_url}/api/v1/applications/{app_id}/stages?status=complete", timeout=10) as r:
        stages = sorted((s for s in json.load(r) if s["stageId"] > since_stage), key=lambda s: s["stageId"])

    def seconds(s):
        start = dt.datetime.fromisoformat(s["submissionTime"].replace("GMT", "+00:00"))
        return (dt.datetime.fromisoformat(s["completionTime"].replace("GMT", "+00:00")) - start).total_seconds()

    shuffle = sum(s.get("shuffleWriteBytes", 0) for s in stages)
    spill = sum(s.get("memoryBytesSpilled", 0) + s.get("diskBytesSpilled", 0) for s in stages)
    return [seconds(s) for s in stages], shuffle, spill, max([since_stage, *(s["stageId"] for s in stages)])


def list_overlap(a: pd.DataFrame, b: pd.DataFrame) -> float:
    ours = a.groupby("user")["artist_name"].apply(set)
    theirs = b.groupby("user")["artist_name"].apply(set).reindex(ours.index)
    return float(np.mean([len(x & y) / len(x) if isinstance(y, set) else 0.0 for x, y in zip(ours, theirs)]))


def machine_line() -> str:
    cpu = platform.processor() or ""
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    return f"{os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.1f} GiB, {cpu}"


def commit() -> str:
    def git(*args):
        return subprocess.run(["git", *args], cwd=Q3B, capture_output=True, text=True).stdout.strip()

    head = git("rev-parse", "--short", "HEAD")
    return head + ("-dirty" if git("status", "--porcelain") else "") if head else "(not a git checkout)"


def write_section(text: str) -> None:
    """Replace this benchmark's section of RESULTS.md (other sections are left as they are)."""
    begin, end = f"<!-- BEGIN {SECTION} -->", f"<!-- END {SECTION} -->"
    old = RESULTS.read_text() if RESULTS.exists() else "# Q3b benchmark results\n\nWritten by the benchmark scripts.\n"
    block = f"{begin}\n{text.rstrip()}\n{end}"
    if begin in old and end in old:
        new = old[: old.index(begin)] + block + old[old.index(end) + len(end) :]
    else:
        new = old.rstrip() + "\n\n" + block + "\n"
    RESULTS.write_text(new)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, nargs="+", default=[20_000, 40_000, 80_000])
    parser.add_argument("--process-users", type=int, nargs="*", default=[20_000], help="sizes also run as processes")
    args = parser.parse_args(argv)
    import q3b_spark

    load_before = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="bench-spark-knn-"))
    spark = q3b_spark.spark_session("local[2]", conf={"spark.ui.enabled": "true", "spark.ui.port": "4048"})
    app_id, ui_url = spark.sparkContext.applicationId, spark.sparkContext.uiWebUrl
    last_stage, rows = -1, []
    try:
        for n_users in sorted(args.users):
            folder = work / str(n_users)
            lastfm_generator.generate_lastfm(folder, n_users, random_state=1)
            local_out = folder / "local.parquet"
            local_wall, local_rss = run_process(
                [sys.executable, str(CLI), "batch", "--data-dir", str(folder), "--out", str(local_out)]
            )
            plays, _ = lastfm_data.load_plays(folder / lastfm_data.PLAYS_FILE)
            profiles, _ = lastfm_data.load_profiles(folder / lastfm_data.PROFILES_FILE)
            search = q3b_spark.SparkNeighbourSearch(spark)
            with PeakSampler(os.getpid()) as sampler:
                started = time.perf_counter()
                recs, _ = user_knn.build_batch(plays, profiles, 20, neighbour_search=search)
                warm_wall = time.perf_counter() - started
            stages, shuffle, spill, last_stage = stage_metrics(ui_url, app_id, last_stage)
            overlap = list_overlap(recs, pd.read_parquet(local_out))
            process = (None, None)
            if n_users in args.process_users:
                process = run_process(
                    [sys.executable, str(CLI), "batch", "--data-dir", str(folder), "--out", str(folder / "s.parquet")]
                    + ["--engine", "spark", "--master", "local[2]"]
                )
            rows.append(
                (n_users, local_wall, local_rss, warm_wall, search.timings["spark neighbours"], sampler.peak)
                + (stages, shuffle, spill, overlap, *process)
            )
            print(f"{n_users:,} users: local {local_wall:.1f} s, Spark warm {warm_wall:.1f} s, overlap {overlap:.3f}")
            shutil.rmtree(folder, ignore_errors=True)
            report(rows, argv, load_before)
    finally:
        spark.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


def report(rows: list, argv, load_before) -> None:
    """Print the table of the sizes done so far and write it to RESULTS.md."""
    load_after = os.getloadavg()
    lines = [
        "## Local batch vs Spark local[2] neighbour search (bench_spark_knn)",
        "",
        f"- commit {commit()}, {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC; machine: {machine_line()}",
        f"- load average before {load_before[0]:.1f} / after {load_after[0]:.1f} (1 min): the machine is shared, "
        "so the ratios measured side by side in this run are what count",
        f"- command: `cd Q3b && ../.venv/bin/python -m benchmarks.bench_spark_knn {' '.join(argv or sys.argv[1:])}`",
        "- generated Last.fm sets (seed 1), top 20 per user, k = 50, posting cap 100, 100 candidates re-ranked; local: "
        "the production route as a process (load included); Spark warm: the same batch in a started session, the "
        "neighbour search on Spark; overlap: mean share of a user's Spark list found in the local list",
        "- peak memory: RSS of the process tree (Spark: the JVM included)",
        "",
        "| users | local process s | local peak MiB | Spark warm batch s | of which Spark search s "
        "| Spark warm peak MiB | shuffle written MiB | shuffle spill MiB | overlap with local "
        "| Spark process s | Spark process peak MiB |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for n, lw, lr, ww, ws, wr, _, shuffle, spill, overlap, pw, pr in rows:
        process_cells = f"{pw:.1f} | {pr / 2**20:.0f}" if pw is not None else "not run | -"
        lines.append(
            f"| {n:,} | {lw:.1f} | {lr / 2**20:.0f} | {ww:.1f} | {ws:.1f} | {wr / 2**20:.0f} | "
            f"{shuffle / 2**20:.0f} | {spill / 2**20:.0f} | {overlap:.3f} | {process_cells} |"
        )
    lines += [
        "",
        "The wall seconds of each Spark stage of the warm run, in the order Spark ran them:",
        "",
        "| users | stages | seconds of each stage |",
        "|---|---|---|",
    ]
    lines += [f"| {r[0]:,} | {len(r[6])} | {', '.join(f'{x:.1f}' for x in r[6])} |" for r in rows]
    if len(rows) > 1:
        growth = [f"{rows[i][4] / rows[i - 1][4]:.2f}x" for i in range(1, len(rows))]
        lines += ["", f"Spark search time growth per doubling of users: {', '.join(growth)} (2.00x = linear)."]
    write_section("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    sys.exit(main())
