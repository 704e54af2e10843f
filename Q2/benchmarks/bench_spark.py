"""Benchmark: the local engine vs the Spark engine in local mode on generated CloudFront logs of growing size.

    make bench-q2 ... or:  cd Q2 && ../.venv/bin/python -m benchmarks.bench_spark [--sizes-gb 0.25 0.5 1] [--files 8]

Writes ``--files`` CloudFront logs of equal size (a CDN writes many files; Spark runs one task per file) under
Q2/data/bench_spark/, then for each total size (the first files making up that size) measures side by side:
- local: ``raw_data_analytics.py FILES --json`` as its own process (wall, CPU, peak RSS);
- spark whole process: the same command with ``--engine spark --master local[2]`` (JVM start-up included; peak RSS of
  the process tree, JVM and Python workers included);
- spark warm: ``q2_spark.scan_logs`` in an already started local[2] session (wall; stage times and shuffle spill from
  Spark's monitoring REST API on loopback).
Checks that all three give the same total_bytes, prints a table and rewrites its section of Q2/RESULTS.md. The log
files are deleted at the end unless --keep.
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
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import psutil

import dummy_log
import log_scan

Q2 = Path(__file__).resolve().parents[1]
CLI = Q2 / "raw_data_analytics.py"
DATA = Q2 / "data" / "bench_spark"
RESULTS = Q2 / "RESULTS.md"
SECTION = "bench_spark"
QUERY = ["--start", "2017-08-24", "--end", "2017-08-25"]


def tree_rss(process: psutil.Process) -> int:
    """RSS of a process and all its descendants (the JVM and Spark's Python workers), bytes."""
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
            try:
                self.peak = max(self.peak, tree_rss(self.process))
            except psutil.Error:
                return
            time.sleep(0.05)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def run_process(command: list) -> tuple:
    """(wall s, peak tree RSS bytes, parsed JSON stdout) of a command."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    with PeakSampler(process.pid) as sampler:
        out, _ = process.communicate()
    wall = time.perf_counter() - started
    if process.returncode != 0:
        raise RuntimeError(f"{command[:3]}... exited with {process.returncode}")
    return wall, sampler.peak, json.loads(out)


def write_logs(n_files: int, file_bytes: int) -> list:
    DATA.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n_files):
        path = DATA / f"E2EXAMPLE.2017-08-24-{i:02d}.log"
        if not path.exists() or abs(path.stat().st_size - file_bytes) > 2 * 1024 * 1024:
            dummy_log.write_cloudfront_log(path, file_bytes, random_state=i, overwrite=True)
        paths.append(path)
    return paths


def stage_metrics(ui_url: str, app_id: str, since_stage: int) -> tuple:
    """(list of (stage name, wall s), spilled bytes memory+disk) of the stages after ``since_stage``."""
    with urllib.request.urlopen(f"{ui_url}/api/v1/applications/{app_id}/stages?status=complete", timeout=10) as r:
        stages = json.load(r)
    stages = [s for s in stages if s["stageId"] > since_stage]
    times = []
    for s in sorted(stages, key=lambda s: s["stageId"]):
        start = dt.datetime.fromisoformat(s["submissionTime"].replace("GMT", "+00:00"))
        end = dt.datetime.fromisoformat(s["completionTime"].replace("GMT", "+00:00"))
        times.append((s["name"].split(" at ")[0], (end - start).total_seconds()))
    spill = sum(s.get("memoryBytesSpilled", 0) + s.get("diskBytesSpilled", 0) for s in stages)
    return times, spill, max([since_stage, *(s["stageId"] for s in stages)])


def machine_line() -> str:
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.1f} GiB, {cpu}"


def commit() -> str:
    def git(*args):
        return subprocess.run(["git", *args], cwd=Q2, capture_output=True, text=True).stdout.strip()

    return git("rev-parse", "--short", "HEAD") + ("-dirty" if git("status", "--porcelain") else "")


def write_section(text: str) -> None:
    """Replace this benchmark's section of RESULTS.md (other sections are left as they are)."""
    begin, end = f"<!-- BEGIN {SECTION} -->", f"<!-- END {SECTION} -->"
    old = RESULTS.read_text() if RESULTS.exists() else "# Q2 benchmark results\n\nWritten by the benchmark scripts.\n"
    block = f"{begin}\n{text.rstrip()}\n{end}"
    if begin in old and end in old:
        new = old[: old.index(begin)] + block + old[old.index(end) + len(end) :]
    else:
        new = old.rstrip() + "\n\n" + block + "\n"
    RESULTS.write_text(new)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes-gb", type=float, nargs="+", default=[0.25, 0.5, 1.0])
    parser.add_argument("--files", type=int, default=8, help="log files making up the largest size")
    parser.add_argument("--keep", action="store_true", help="keep the generated logs")
    args = parser.parse_args(argv)
    load_before = os.getloadavg()
    file_bytes = int(max(args.sizes_gb) * 2**30 / args.files)
    paths = write_logs(args.files, file_bytes)
    import q2_spark

    spark = q2_spark.spark_session("local[2]", conf={"spark.ui.enabled": "true", "spark.ui.port": "4047"})
    app_id, ui_url = spark.sparkContext.applicationId, spark.sparkContext.uiWebUrl
    query = log_scan.BytesQuery(("jpg",), dt.date(2017, 8, 24), dt.date(2017, 8, 25))
    q2_spark.scan_logs(spark, [str(paths[0])], query)  # warm-up: Python workers started, modules imported
    last_stage = stage_metrics(ui_url, app_id, -1)[2]
    rows = []
    for size in sorted(args.sizes_gb):
        chosen = [str(p) for p in paths[: max(1, round(len(paths) * size / max(args.sizes_gb)))]]
        gib = sum(os.path.getsize(p) for p in chosen) / 2**30
        local_wall, local_rss, local_json = run_process([sys.executable, str(CLI), *chosen, "--json", *QUERY])
        spark_wall, spark_rss, spark_json = run_process(
            [sys.executable, str(CLI), *chosen, "--json", *QUERY, "--engine", "spark", "--master", "local[2]"]
        )
        with PeakSampler(os.getpid()) as sampler:
            started = time.perf_counter()
            warm = q2_spark.scan_logs(spark, chosen, query)
            warm_wall = time.perf_counter() - started
        stages, spill, last_stage = stage_metrics(ui_url, app_id, last_stage)
        totals = {local_json["total_bytes"], spark_json["total_bytes"], warm.total_bytes}
        if len(totals) != 1:
            raise SystemExit(f"engines disagree at {size} GB: {totals}")
        rows.append(
            (gib, len(chosen), local_wall, local_rss, spark_wall, spark_rss, warm_wall, sampler.peak, stages, spill)
        )
        print(f"{gib:.2f} GiB: local {local_wall:.1f} s, spark process {spark_wall:.1f} s, warm {warm_wall:.1f} s")
    spark.stop()
    load_after = os.getloadavg()
    lines = [
        "## Local engine vs Spark local[2] (bench_spark)",
        "",
        f"- commit {commit()}, {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC; machine: {machine_line()}",
        f"- load average before {load_before[0]:.1f} / after {load_after[0]:.1f} (1 min): the machine is shared, "
        "so the ratios measured side by side in this run are what count",
        f"- command: `cd Q2 && ../.venv/bin/python -m benchmarks.bench_spark {' '.join(argv or sys.argv[1:])}`",
        "- generated CloudFront logs split into files of equal size (one Spark task per file); query: .jpg bytes on "
        "2017-08-24..25; all three runs gave the same total_bytes",
        "- peak memory: RSS of the process tree (Spark: the JVM and its Python workers included); warm: the driver "
        "process with an already started session",
        "",
        "| GiB | files | local s | local peak MiB | Spark process s | Spark process peak MiB | Spark warm s "
        "| Spark warm peak MiB | warm / local | warm s per GiB | shuffle spill MiB | warm stages (s) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for gib, n, lw, lr, sw, sr, ww, wr, stages, spill in rows:
        # the first stage reads the files and runs the local engine in the tasks; the others merge the results
        stage_text = f"scan {stages[0][1]:.1f}, merge {sum(secs for _, secs in stages[1:]):.1f}" if stages else "-"
        lines.append(
            f"| {gib:.2f} | {n} | {lw:.1f} | {lr / 2**20:.0f} | {sw:.1f} | {sr / 2**20:.0f} | {ww:.1f} | "
            f"{wr / 2**20:.0f} | {ww / lw:.1f}x | {ww / gib:.1f} | {spill / 2**20:.0f} | {stage_text} |"
        )
    if len(rows) > 1:
        slope = np.polyfit([r[0] for r in rows], [r[6] for r in rows], 1)
        lines += ["", f"Spark warm time fits {slope[1]:.1f} s + {slope[0]:.1f} s per GiB (least squares)."]
    write_section("\n".join(lines))
    print("\n".join(lines))
    if not args.keep:
        shutil.rmtree(DATA, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
