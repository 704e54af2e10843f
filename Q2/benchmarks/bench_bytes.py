"""Benchmark: our scanner vs an awk one-liner vs DuckDB on generated CloudFront, combined and W3C logs.

    make bench-q2 ARGS="--size-gb 1 --repeat 1 --formats cloudfront,combined,w3c"

For each format it writes Q2/data/bench_<format>_<size>g.log, runs the three tools side by side as separate
processes (interleaved, ``--repeat`` times), checks that they agree on the total bytes of .jpg/.jpeg on 2017-08-24..25,
and records the best wall and CPU time of each, the ratios and our peak RSS; then our tool alone on a file twice
as large (the same file twice) for the peak RSS at 2x. Also times the default run (the 7 MB dummy log). Writes the
figures, with commit, date, machine and load average, to Q2/RESULTS.md (section bench_bytes). Generated files are
deleted at the end unless --keep.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

import dummy_log
from benchmarks import bench_logs

Q2 = Path(__file__).resolve().parents[1]
START, END = "2017-08-24", "2017-08-25"
AWK = {  # the same total in one awk line per format ('-' sizes count as 0 in awk arithmetic)
    "cloudfront": f'!/^#/ && $1 >= "{START}" && $1 <= "{END}" && tolower($8) ~ /\\.(jpg|jpeg)$/ {{ s += $4 }} '
    'END { printf "%.0f\\n", s }',
    "combined": "$4 ~ /^\\[2[45]\\/Aug\\/2017:/ && tolower($7) ~ /\\.(jpg|jpeg)$/ { s += $10 } "
    'END { printf "%.0f\\n", s }',
    "w3c": f'!/^#/ && $1 >= "{START}" && $1 <= "{END}" && tolower($5) ~ /\\.(jpg|jpeg)$/ {{ s += $15 }} '
    'END { printf "%.0f\\n", s }',
}
AWK_SEPARATOR = {"cloudfront": "\t", "combined": " ", "w3c": " "}
_DUCKDB_RUN = """
import duckdb, sys
con = duckdb.connect()
con.execute('SET enable_progress_bar = false')
print(con.sql(sys.argv[1].replace('PATH', sys.argv[2])).fetchone()[0])
"""
_SIZE = """SUM(CASE WHEN {col} = '-' THEN 0 ELSE CAST({col} AS BIGINT) END)"""
DUCKDB = {
    "cloudfront": f"""SELECT {_SIZE.format(col='"sc-bytes"')} FROM read_csv('PATH', delim='\\t', header=false,
        comment='#', quote='', escape='', all_varchar=true, null_padding=true,
        names={dummy_log.CLOUDFRONT_FIELDS!r})
        WHERE "date" BETWEEN '{START}' AND '{END}' AND regexp_matches("cs-uri-stem", '\\.(jpg|jpeg)$', 'i')""",
    "combined": f"""SELECT {_SIZE.format(col="size")} FROM read_csv('PATH', delim=' ', header=false, quote='"',
        escape='"', all_varchar=true, null_padding=true,
        names=['ip', 'ident', 'user', 'stamp', 'zone', 'request', 'status', 'size', 'referer', 'agent'])
        WHERE strptime(substr(stamp, 2, 11), '%d/%b/%Y') BETWEEN DATE '{START}' AND DATE '{END}'
        AND regexp_matches(split_part(request, ' ', 2), '\\.(jpg|jpeg)$', 'i')""",
    "w3c": f"""SELECT {_SIZE.format(col='"sc-bytes"')} FROM read_csv('PATH', delim=' ', header=false,
        comment='#', quote='', escape='', all_varchar=true, null_padding=true,
        names={bench_logs.W3C_FIELDS.split()!r})
        WHERE "date" BETWEEN '{START}' AND '{END}' AND regexp_matches("cs-uri-stem", '\\.(jpg|jpeg)$', 'i')""",
}
OUR_FORMAT = {"cloudfront": "cloudfront", "combined": "clf", "w3c": "w3c"}


def run_measured(command: list) -> tuple:
    """Run ``command``; return (wall s, CPU s (user+sys), peak RSS bytes of the process sampled every 10 ms, stdout).

    CPU seconds are reported because the machine may be shared: wall time then depends on other processes.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=Q2)
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


#: Formats read by the numba kernel (tab_kernel) for large blocks; "plain" is our command line without it.
KERNEL_FORMATS = ("cloudfront",)
_PLAIN = (
    "import runpy, sys, log_engine; log_engine.KERNEL_MIN_BYTES = 1 << 62; sys.argv = sys.argv[1:]; "
    "runpy.run_path(sys.argv[0], run_name='__main__')"
)
#: --baseline: another build of this command line (e.g. an older commit's raw_data_analytics.py) run side by side
#: on the formats it reads, to judge a speed trick by the 15% rule.
BASELINE: dict = {}


def tools(fmt: str, path: Path) -> dict:
    python = sys.executable
    ours = [python, str(Q2 / "raw_data_analytics.py"), str(path), "--format", OUR_FORMAT[fmt], "--json"]
    found = {
        "ours": ours,
        "awk": [shutil.which("awk") or "awk", "-F", AWK_SEPARATOR[fmt], AWK[fmt], str(path)],
        "duckdb": [python, "-c", _DUCKDB_RUN, DUCKDB[fmt], str(path)],
    }
    if fmt in KERNEL_FORMATS:  # the same command line with the numba speed path switched off: the 15% rule
        found["plain"] = [python, "-c", _PLAIN, *ours[1:]]
    if fmt in BASELINE.get("formats", ()):
        found["baseline"] = [python, BASELINE["cli"], str(path), "--format", OUR_FORMAT[fmt], "--json"]
    return found


def total_of(tool: str, out: str) -> int:
    return json.loads(out)["total_bytes"] if tool in ("ours", "plain", "baseline") else int(out.strip())


def generate(fmt: str, path: Path, size: float) -> None:
    if path.exists():
        return
    started = time.perf_counter()
    if fmt == "cloudfront":
        dummy_log.write_cloudfront_log(path, int(size))
    else:
        bench_logs.write_log(path, fmt, int(size))
    print(f"generated {path.name} ({path.stat().st_size / 1e9:.2f} GB) in {time.perf_counter() - started:.1f} s")


def bench_format(fmt: str, size_gb: float, repeat: int, keep: bool, double: bool) -> list:
    """Table rows (markdown) for one format."""
    data = Q2 / "data"
    one, two = data / f"bench_{fmt}_{size_gb:g}g.log", data / f"bench_{fmt}_{2 * size_gb:g}g.log"
    generate(fmt, one, size_gb * 1e9)
    try:
        best, cpu_best, totals, peak_one = {}, {}, {}, 0
        for _ in range(repeat):  # interleaved, so load from other processes hits all tools alike
            for tool, command in tools(fmt, one).items():
                wall, cpu, peak, out = run_measured(command)
                best[tool] = min(best.get(tool, wall), wall)
                cpu_best[tool] = min(cpu_best.get(tool, cpu), cpu)
                totals[tool] = total_of(tool, out)
                if tool == "ours":
                    peak_one = max(peak_one, peak)
        if len(set(totals.values())) != 1:
            raise RuntimeError(f"{fmt}: tools disagree on the total: {totals}")
        size_mb = one.stat().st_size / 1e6
        rows = []
        for tool in best:
            rows.append(
                f"| {fmt} | {size_mb:.0f} MB | {tool} | {best[tool]:.2f} | {best['ours'] / best[tool]:.2f} | "
                f"{cpu_best[tool]:.2f} | {cpu_best['ours'] / cpu_best[tool]:.2f} | "
                + (f"{peak_one / 2**20:.0f} MiB" if tool == "ours" else "")
                + " |"
            )
        print("\n".join(rows), flush=True)
        if double:
            if not two.exists():  # written under another name first: an interrupted copy is never reused
                partial = two.with_suffix(".partial")
                with open(partial, "wb") as out:
                    for _ in range(2):
                        with open(one, "rb") as part:
                            shutil.copyfileobj(part, out, 1 << 24)
                partial.rename(two)
            wall2, cpu2, peak2, out2 = run_measured(tools(fmt, two)["ours"])
            assert json.loads(out2)["total_bytes"] == 2 * totals["ours"]
            rows.append(
                f"| {fmt} | {two.stat().st_size / 1e6:.0f} MB | ours | {wall2:.2f} | | {cpu2:.2f} | | "
                f"{peak2 / 2**20:.0f} MiB |"
            )
            print(rows[-1], flush=True)
        rows.append(f"| {fmt} | | total_bytes (all tools agree) | {totals['ours']} | | | | |")
        return rows
    finally:
        if not keep:
            one.unlink(missing_ok=True)
            two.unlink(missing_ok=True)


def default_run() -> str:
    """Wall and CPU time of the default command (no LOG: the dummy log), best of 3."""
    command = [sys.executable, str(Q2 / "raw_data_analytics.py")]
    run_measured(command)  # writes the dummy log if absent
    runs = [run_measured(command) for _ in range(3)]
    return f"{min(r[0] for r in runs):.2f} s wall, {min(r[1] for r in runs):.2f} s CPU"


def machine() -> str:
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    cpu = next(
        (line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")),
        platform.processor(),
    )
    return f"{os.cpu_count()} CPUs ({cpu}), {psutil.virtual_memory().total / 2**30:.0f} GiB RAM"


def write_results(section: str, name: str = "bench_bytes") -> None:
    path = Q2 / "RESULTS.md"
    text = path.read_text() if path.exists() else "# Q2 benchmark results\n\nWritten by the scripts in benchmarks/.\n"
    begin, end = f"<!-- BEGIN {name} -->", f"<!-- END {name} -->"
    block = f"{begin}\n{section.rstrip()}\n{end}"
    if begin in text:
        text = text[: text.index(begin)] + block + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)


def commit() -> str:
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=Q2).stdout
    dirty = subprocess.run(["git", "status", "--porcelain", "."], capture_output=True, text=True, cwd=Q2).stdout
    return head.strip() + ("-dirty" if dirty.strip() else "")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-gb", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--formats", default="cloudfront,combined,w3c")
    parser.add_argument("--no-double", action="store_true", help="skip the run on the file twice as large")
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    parser.add_argument("--baseline", metavar="CLI", help="another raw_data_analytics.py to time side by side")
    parser.add_argument("--baseline-formats", default="cloudfront,combined", help="the formats --baseline reads")
    args = parser.parse_args()
    if args.baseline:
        BASELINE.update(cli=args.baseline, formats=args.baseline_formats.split(","))
    load_before = os.getloadavg()
    started, revision = dt.datetime.now(dt.timezone.utc), commit()
    rows = []
    for fmt in args.formats.split(","):
        rows += bench_format(fmt, args.size_gb, args.repeat, args.keep, not args.no_double)
    default = default_run()
    load_after = os.getloadavg()
    section = "\n".join(
        [
            "## Speed and memory: ours vs awk vs DuckDB (bench_bytes)",
            "",
            f"- commit {revision}, {started:%Y-%m-%d %H:%M} UTC; machine: {machine()}",
            f"- load average (1, 5, 15 min) before {', '.join(f'{x:.1f}' for x in load_before)}, after "
            f"{', '.join(f'{x:.1f}' for x in load_after)} (the machine is shared: CPU seconds are less noisy "
            "than wall seconds)",
            f"- command: `{' '.join(['python -m benchmarks.bench_bytes', *sys.argv[1:]])}`; best of {args.repeat}, "
            "tools interleaved; query: .jpg/.jpeg on 2017-08-24..25; plain = ours with the numba tab kernel off "
            "(it stays only if ours saves at least 15% against plain)",
            f"- default run (no LOG, the 7 MB dummy log): {default}",
            *(
                [f"- baseline: `{args.baseline}` (another build of the command line, run side by side)"]
                if args.baseline
                else []
            ),
            "",
            "| format | size | tool | wall s | ours/tool wall | CPU s | ours/tool CPU | ours peak RSS |",
            "|---|---|---|---|---|---|---|---|",
            *rows,
        ]
    )
    print(section)
    write_results(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
