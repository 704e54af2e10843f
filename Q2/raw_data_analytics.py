"""Q2 command line: total bytes served for given file types and days, from CDN / web-server access logs.

    python Q2/raw_data_analytics.py [LOG ...] [--ext jpg] [--start 2017-08-24] [--end 2017-08-25] [--json]

With no LOG it analyses the take-home's dummy CDN log (Q2/data/dummy_cdn.log, written once if absent).
Exit codes: 0 ok; 1 a file was skipped or cut short (unreadable, truncated, unknown format; the other counts
stand), or malformed lines with --strict; 2 bad arguments.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import glob
import json
import os
import re
import sys
import zoneinfo
from pathlib import Path

import dummy_log
import log_formats
import log_scan
from log_formats import FORMATS

DUMMY_LOG = Path(__file__).resolve().parent / "data" / "dummy_cdn.log"


def shown(text: str) -> str:
    """``text`` with control characters escaped (file names and log bytes never reach the terminal raw)."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _day(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date in YYYY-MM-DD form") from None


def _zone(text: str) -> str:
    try:
        zoneinfo.ZoneInfo(text)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise argparse.ArgumentTypeError(f"{text!r} is not an IANA time zone name (e.g. Asia/Hong_Kong, UTC)") from None
    return text


def _extension(text: str) -> str:
    name = text.strip().lstrip(".")
    if not re.fullmatch(r"[A-Za-z0-9_+\-]{1,32}", name):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a file extension (letters, digits, _+- after an optional dot, e.g. jpg or .png)"
        )
    return name


def _log_format(text: str) -> log_formats.FormatSpec:
    try:
        return log_formats.spec_from_user_text(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


class _OneLineParser(argparse.ArgumentParser):
    """Argument errors as one line ('PROG: error: argument --start: ... (see --help)') instead of the usage block."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(
        description="Total bytes served for files of given types on given days, from access logs "
        "(formats: " + "; ".join(f"{n}: {f.description}" for n, f in FORMATS.items()) + ")."
    )
    parser.add_argument(
        "logs",
        nargs="*",
        metavar="LOG",
        help="log files, globs, .gz files or '-' for stdin (default: the dummy CDN log)",
    )
    parser.add_argument(
        "--ext",
        action="append",
        metavar="EXT",
        type=_extension,
        help="file extension to count, repeatable (default: jpg; jpg also matches jpeg)",
    )
    parser.add_argument("--exact-ext", action="store_true", help="do not treat jpg/jpeg (tif/tiff, ...) as one type")
    parser.add_argument("--start", type=_day, default=dt.date(2017, 8, 24), help="first day, inclusive")
    parser.add_argument("--end", type=_day, default=dt.date(2017, 8, 25), help="last day, inclusive")
    parser.add_argument("--tz", type=_zone, help="take days in this zone instead of the offset written in the log")
    parser.add_argument("--format", choices=list(FORMATS), help="skip detection and parse every file as this")
    parser.add_argument(
        "--log-format",
        metavar="STRING",
        type=_log_format,
        help='describe the format yourself: an nginx log_format string (\'$remote_addr [$time_local] "$request" '
        "$status $body_bytes_sent'), an Apache LogFormat string ('%%h %%l %%u %%t \"%%r\" %%>s %%b') or a JSON "
        "mapping ('json time=KEY size=KEY url=KEY [layout=iso8601|epoch]')",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the report")
    parser.add_argument(
        "--plot",
        metavar="FILE.png",
        help="also write a bar chart of bytes per day to this .png file (its folder must exist)",
    )
    parser.add_argument("--strict", action="store_true", help="exit with code 1 if any line is malformed")
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help=f"replace an existing --plot file; with no LOG, rewrite {DUMMY_LOG.name} even if it exists",
    )
    parser.add_argument(
        "--engine",
        choices=("local", "spark"),
        default="local",
        help="local: this process (default); spark: Apache Spark, one task per file (needs Java and "
        "requirements-spark.txt; LOG may then also be a Hadoop path such as s3a://bucket/2026/12/06/*.gz)",
    )
    parser.add_argument(
        "--master",
        help="Spark master URL with --engine spark (default: spark-submit's --master, else local[*])",
    )
    parser.add_argument("--block-size", type=int, default=log_scan.BLOCK_SIZE, help=argparse.SUPPRESS)
    return parser


def check_plot_path(path: str, overwrite: bool) -> str:
    """``path`` if a PNG can be written there: .png suffix, existing writable folder, not a folder itself, and not
    an existing file unless ``overwrite``. Raises ValueError with the one-line reason and fix otherwise."""
    if not path.lower().endswith(".png"):
        raise ValueError(f"--plot {path}: the plot is a PNG image; give a file name ending in .png")
    if os.path.isdir(path):
        raise ValueError(f"--plot {path}: is a directory; give a file name ending in .png")
    folder = os.path.dirname(path) or "."
    if not os.path.isdir(folder):
        raise ValueError(f"--plot {path}: folder {folder} does not exist; create it first (mkdir -p {folder})")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ValueError(f"--plot {path}: folder {folder} is not writable; choose another folder")
    if os.path.exists(path) and not overwrite:
        raise ValueError(f"--plot {path}: exists; pass --overwrite to replace it")
    return path


def expand_sources(patterns: list) -> list:
    """Paths for the LOG arguments: '-' as is, existing files as is, globs expanded (sorted); a file named more than
    once (twice, or also through a glob) is kept once, at its first place, so that no log is counted twice.

    Raises FileNotFoundError naming the first argument that matches nothing, IsADirectoryError naming the first
    directory (given, or matched by a glob), and log_scan.LogInputError when '-' (stdin, readable once) is given more
    than once.
    """
    if patterns.count("-") > 1:
        raise log_scan.LogInputError("stdin ('-') can be read only once; give '-' a single time")
    sources = []
    for pattern in patterns:
        if pattern == "-" or os.path.exists(pattern):
            sources.append(pattern)
        elif glob.has_magic(pattern) and glob.glob(pattern):
            sources.extend(sorted(glob.glob(pattern)))
        else:
            raise FileNotFoundError(f"{pattern}: no such file (or the glob matches nothing)")
    for source in sources:
        if source != "-" and os.path.isdir(source):
            raise IsADirectoryError(
                f"{source}: is a directory; give log files or a glob such as '{os.path.join(source, '*.log')}'"
            )
    seen: set = set()
    unique = []
    for source in sources:
        key = source if source == "-" else os.path.realpath(source)
        if key not in seen:
            seen.add(key)
            unique.append(source)
    return unique


def _spark_sources(patterns: list) -> list:
    """--engine spark: Hadoop paths (scheme://...) as given, for Spark to expand; local ones as expand_sources."""
    if "-" in patterns:
        raise log_scan.LogInputError("--engine spark reads files, not stdin ('-'); give log files or a glob")
    local = expand_sources([p for p in patterns if "://" not in p])
    return local + [p for p in patterns if "://" in p]


def _scan_on_spark(sources: list, query: log_scan.BytesQuery, format_name: str | None, spec, master: str):
    """The Spark engine (q2_spark) over ``sources``; a missing Java or pyspark is a LogInputError (one line)."""
    try:
        import q2_spark
    except ImportError as error:  # pyspark not installed
        raise log_scan.LogInputError(
            f"--engine spark needs pyspark ({error.name} not found): pip install -r requirements-spark.txt"
        ) from None
    try:
        spark = q2_spark.spark_session(master)
    except q2_spark.SparkUnavailableError as error:
        raise log_scan.LogInputError(str(error)) from None
    return q2_spark.scan_logs(spark, sources, query, format_name, spec)


def _progress_bar(source: str):
    if not sys.stderr.isatty():  # no bar to draw: skip importing tqdm (~35 ms of start-up)
        return contextlib.nullcontext(_NoProgress())
    from tqdm import tqdm

    size = os.path.getsize(source) if source != "-" and os.path.isfile(source) else None
    return tqdm(total=size, unit="B", unit_scale=True, desc=os.path.basename(source), leave=False)


class _NoProgress:
    def update(self, n: int) -> None:
        pass


def print_report(summary: log_scan.BytesSummary, query: log_scan.BytesQuery) -> None:
    exts = "/".join("." + e for e in sorted(query.wanted_extensions()))
    zone = f"days in {query.tz}" if query.tz else "days as written in each log"
    print(f"bytes served for {exts} files, {query.start} to {query.end} inclusive ({zone})")
    print(
        f"total_bytes: {summary.total_bytes} ({log_scan.human_bytes(summary.total_bytes)}) "
        f"in {summary.requests} requests ({summary.bytes_missing} with size '-', counted as 0)"
    )
    print("by day:")
    for day, (nbytes, count) in sorted(summary.by_day.items()):
        print(f"  {day}  {nbytes:>16}  {log_scan.human_bytes(nbytes):>11}  {count:>9} requests")
    print("by extension:")
    for ext, (nbytes, count) in sorted(summary.by_extension.items()):
        print(f"  .{ext:<8} {nbytes:>16}  {log_scan.human_bytes(nbytes):>11}  {count:>9} requests")
    print("top 10 URL paths by bytes:")
    for url, nbytes in summary.top_urls(10):
        print(f"  {nbytes:>14}  {url}")
    print("lines: read = used + not matching + malformed + comment + blank")
    for f in summary.files:
        print(
            f"  {shown(f.source)} [{f.format}]: {f.lines_read} = {f.lines_used} + {f.lines_not_matching} + "
            f"{f.malformed_lines} + {f.comment_lines} + {f.blank_lines}"
            + (f"  (stopped: {f.error})" if f.error else "")
        )


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.start > args.end:
        parser.error(f"argument --start: {args.start} is after --end {args.end}; give a start on or before the end")
    if args.master and args.engine != "spark":
        parser.error("argument --master: goes with --engine spark; add --engine spark or leave --master out")
    query = log_scan.BytesQuery(tuple(args.ext or ["jpg"]), args.start, args.end, args.exact_ext, args.tz)
    if args.plot:
        try:
            check_plot_path(args.plot, args.overwrite)
        except ValueError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    try:
        if args.logs and args.engine == "spark":
            sources = _spark_sources(args.logs)
        elif args.logs:
            sources = expand_sources(args.logs)
        else:
            if args.overwrite or not DUMMY_LOG.exists():
                try:
                    dummy_log.write_dummy_cdn_log(DUMMY_LOG, overwrite=args.overwrite)
                except OSError as error:
                    print(
                        f"error: cannot write the dummy CDN log to {os.path.relpath(DUMMY_LOG)} "
                        f"({error.strerror or error}); pass a LOG file to analyse instead",
                        file=sys.stderr,
                    )
                    return 2
                print(f"wrote the dummy CDN log to {os.path.relpath(DUMMY_LOG)}", file=sys.stderr)
            sources = [os.path.relpath(DUMMY_LOG)]  # shown in the report: relative, like the paths users type
    except (OSError, log_scan.LogInputError) as error:
        print(f"error: {shown(str(error))}", file=sys.stderr)
        return 2
    summary, skipped = log_scan.BytesSummary(), 0
    if args.engine == "spark":
        try:
            summary = _scan_on_spark(sources, query, args.format, args.log_format, args.master)
        except log_scan.LogInputError as error:  # no Java or pyspark, or Spark could not read an input
            print(f"error: {shown(str(error))}", file=sys.stderr)
            return 2
        for f in summary.files:
            if f.format == "skipped":
                f.error = shown(f.error)
                print(f"error: {f.error}; file skipped", file=sys.stderr)
                skipped += 1
    for source in sources if args.engine == "local" else ():
        try:
            with _progress_bar(source) as bar:
                found = log_scan.scan_log(
                    source, query, args.format, args.block_size, progress=bar.update, spec=args.log_format
                )
        except (OSError, log_scan.LogInputError) as error:  # reported and skipped: the other files' counts stand
            reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
            text = reason if isinstance(error, log_scan.LogInputError) else f"{source}: {reason}"
            print(f"error: {shown(text)}; file skipped", file=sys.stderr)
            summary.files.append(log_scan.FileAccounting(source, "skipped", error=shown(text)))
            skipped += 1
            continue
        summary.add(found)
    for f in summary.files:
        if f.error and f.format != "skipped":
            print(f"error: {shown(f.error)}; the lines before it are counted", file=sys.stderr)
            skipped += 1
        for line_no, reason, text in f.malformed_examples:
            print(f"{shown(f.source)}:{line_no}: malformed ({reason}): {text}", file=sys.stderr)
        if f.malformed_lines > len(f.malformed_examples):
            print(
                f"{shown(f.source)}: {f.malformed_lines - len(f.malformed_examples)} more malformed lines",
                file=sys.stderr,
            )
    if args.plot:
        try:
            log_scan.plot_bytes_per_day(summary, args.plot, query)
        except OSError as error:  # checked before the scan; this is the rare case the folder refuses the write
            print(
                f"error: --plot {args.plot}: cannot write it ({error.strerror or error}); choose another path",
                file=sys.stderr,
            )
            return 2
    if args.json:
        print(json.dumps(summary.as_dict(), indent=2))
    else:
        print_report(summary, query)
    if args.plot:  # after the report; on stderr with --json so that stdout stays one JSON object
        print(f"plot of bytes per day written to {args.plot}", file=sys.stderr if args.json else sys.stdout)
    return 1 if skipped or (args.strict and summary.malformed_lines) else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # output piped into head & co.: stop quietly, as cat does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
