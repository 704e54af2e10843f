"""Benchmark: our scanner vs. an awk one-liner vs. DuckDB read_csv + SUM on a generated CloudFront log.

    .venv/bin/python Q2/benchmarks/bench_bytes.py [--size-gb 1] [--repeat 3] [--keep]

Writes Q2/data/bench_cloudfront_1g.log (and a 2 GB file: the 1 GB file twice, so it also crosses a mid-file
#Fields header), runs each tool ``--repeat`` times side by side as separate processes, checks all three agree on the
total, and prints the best wall time of each, the ratios, and our peak RSS at 1 GB and 2 GB. The files are deleted
at the end unless --keep. The machine may be shared: the load average is printed with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

import dummy_log

Q2 = Path(__file__).resolve().parents[1]

START, END = "2017-08-24", "2017-08-25"
AWK = (
    f'!/^#/ && $1 >= "{START}" && $1 <= "{END}" && tolower($8) ~ /\\.(jpg|jpeg)$/ {{ s += $4 }} '
    'END { printf "%.0f\\n", s }'
)
DUCKDB = """
import duckdb, sys
names = sys.argv[2].split(",")
sql = f'''SELECT SUM(CASE WHEN "sc-bytes" = '-' THEN 0 ELSE CAST("sc-bytes" AS BIGINT) END)
FROM read_csv('{sys.argv[1]}', delim='\\t', header=false, comment='#', quote='', escape='', all_varchar=true,
              names={names!r}, null_padding=true)
WHERE "date" BETWEEN '{start}' AND '{end}' AND regexp_matches("cs-uri-stem", '\\\\.(jpg|jpeg)$', 'i')'''
con = duckdb.connect()
con.execute('SET enable_progress_bar = false')
print(con.sql(sql).fetchone()[0])
""".replace("{start}", START).replace("{end}", END)


def run_measured(command: list) -> tuple:
    """Run ``command``; return (wall s, CPU s (user+sys), peak RSS bytes of the process sampled every 10 ms, stdout).

    CPU seconds are reported because the machine may be shared: wall time then depends on other processes.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    peak, handle = 0, psutil.Process(process.pid)

    def sample():
        nonlocal peak
        while process.poll() is None:
            try:
                rss = handle.memory_info().rss + sum(c.memory_info().rss for c in handle.children(recursive=True))
                peak = max(peak, rss)
            except psutil.Error:
                pass
            time.sleep(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()
    out, err = process.communicate()
    wall = time.perf_counter() - started
    sampler.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if process.returncode != 0:
        raise RuntimeError(f"{command[0]} failed: {err.decode()[-500:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, peak, out.decode()


def tools(path: Path) -> dict:
    python = sys.executable
    return {
        "ours": [python, str(Q2 / "raw_data_analytics.py"), str(path), "--format", "cloudfront", "--json"],
        "awk": [shutil.which("awk") or "awk", "-F\t", AWK, str(path)],
        "duckdb": [python, "-c", DUCKDB, str(path), ",".join(dummy_log.CLOUDFRONT_FIELDS)],
    }


def total_of(tool: str, out: str) -> int:
    return json.loads(out)["total_bytes"] if tool == "ours" else int(out.strip())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-gb", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    args = parser.parse_args()
    data = Q2 / "data"
    one = data / f"bench_cloudfront_{args.size_gb:g}g.log"
    two = data / f"bench_cloudfront_{2 * args.size_gb:g}g.log"
    if not one.exists():
        t = time.perf_counter()
        dummy_log.write_cloudfront_log(one, int(args.size_gb * 1e9))
        print(f"generated {one.name} ({one.stat().st_size / 1e9:.2f} GB) in {time.perf_counter() - t:.1f} s")
    try:
        best, cpu_best, totals, rss = {}, {}, {}, {}
        for _ in range(args.repeat):  # interleaved, so load from other processes hits all tools alike
            for tool, command in tools(one).items():
                wall, cpu, peak, out = run_measured(command)
                best[tool] = min(best.get(tool, wall), wall)
                cpu_best[tool] = min(cpu_best.get(tool, cpu), cpu)
                totals[tool] = total_of(tool, out)
                if tool == "ours":
                    rss[one.stat().st_size] = max(rss.get(one.stat().st_size, 0), peak)
        if len(set(totals.values())) != 1:
            raise RuntimeError(f"tools disagree on the total: {totals}")
        if not two.exists():
            with open(two, "wb") as out:
                for _ in range(2):
                    with open(one, "rb") as part:
                        shutil.copyfileobj(part, out, 1 << 24)
        wall2, cpu2, peak2, out2 = run_measured(tools(two)["ours"])
        rss[two.stat().st_size] = peak2
        assert json.loads(out2)["total_bytes"] == 2 * totals["ours"]
        size_mb = one.stat().st_size / 1e6
        print(f"file: {one.name}, {size_mb:.0f} MB, total_bytes={totals['ours']} (all three agree)")
        print(
            f"load average (1, 5, 15 min): {', '.join(f'{x:.1f}' for x in os.getloadavg())} "
            f"on {os.cpu_count()} cores; best of {args.repeat}"
        )
        for tool, wall in best.items():
            print(
                f"  {tool:<7} wall {wall:6.2f} s ({size_mb / wall:4.0f} MB/s)  ours/{tool} = {best['ours'] / wall:.2f}"
                f"   CPU {cpu_best[tool]:6.2f} s  ours/{tool} = {cpu_best['ours'] / cpu_best[tool]:.2f}"
            )
        for size, peak in sorted(rss.items()):
            print(f"  ours peak RSS at {size / 1e9:.1f} GB: {peak / 2**20:.0f} MiB")
        print(f"  ours on {two.stat().st_size / 1e9:.1f} GB: wall {wall2:.2f} s, CPU {cpu2:.2f} s")
    finally:
        if not args.keep:
            for path in (one, two):
                path.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
