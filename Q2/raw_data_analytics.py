"""Q2 command line: total bytes served for given file types and days, from CDN / web-server access logs.

    python Q2/raw_data_analytics.py [LOG ...] [--ext jpg] [--start 2017-08-24] [--end 2017-08-25] [--json]

With no LOG it analyses the take-home's dummy CDN log (Q2/data/dummy_cdn.log, written once if absent).
Exit codes: 0 ok, 1 malformed lines with --strict, 2 bad arguments or unreadable input.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import gc
import glob
import importlib.abc
import json
import os
import re
import sys
import zoneinfo
from pathlib import Path

import dummy_log
import log_scan
from log_formats import FORMATS

DUMMY_LOG = Path(__file__).resolve().parent / "data" / "dummy_cdn.log"


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
    parser.add_argument("--format", choices=sorted(FORMATS), help="skip detection and parse every file as this")
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
    parser.add_argument("--master", default="local[*]", help="Spark master URL with --engine spark (default: local[*])")
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
    """Paths for the LOG arguments: '-' as is, existing files as is, globs expanded (sorted).

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
    return sources


def _spark_sources(patterns: list) -> list:
    """--engine spark: Hadoop paths (scheme://...) as given, for Spark to expand; local ones as expand_sources."""
    if "-" in patterns:
        raise log_scan.LogInputError("--engine spark reads files, not stdin ('-'); give log files or a glob")
    local = expand_sources([p for p in patterns if "://" not in p])
    return local + [p for p in patterns if "://" in p]


def _scan_on_spark(sources: list, query: log_scan.BytesQuery, format_name: str | None, master: str):
    """The Spark engine (q2_spark) over ``sources``; a missing Java or pyspark is a LogInputError (one line)."""
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _SkipImports)]  # pyspark needs them all
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
    return q2_spark.scan_logs(spark, sources, query, format_name)


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
            f"  {f.source} [{f.format}]: {f.lines_read} = {f.lines_used} + {f.lines_not_matching} + "
            f"{f.malformed_lines} + {f.comment_lines} + {f.blank_lines}"
        )


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.start > args.end:
        parser.error(f"argument --start: {args.start} is after --end {args.end}; give a start on or before the end")
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
        if args.engine == "spark":
            summary = _scan_on_spark(sources, query, args.format, args.master)
        else:
            summary = log_scan.BytesSummary()
            for source in sources:
                with _progress_bar(source) as bar:
                    summary.add(log_scan.scan_log(source, query, args.format, args.block_size, progress=bar.update))
    except (OSError, log_scan.LogInputError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for f in summary.files:
        for line_no, reason, text in f.malformed_examples:
            print(f"{f.source}:{line_no}: malformed ({reason}): {text}", file=sys.stderr)
        if f.malformed_lines > len(f.malformed_examples):
            print(f"{f.source}: {f.malformed_lines - len(f.malformed_examples)} more malformed lines", file=sys.stderr)
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
    return 1 if args.strict and summary.malformed_lines else 0


class _SkipImports(importlib.abc.MetaPathFinder):
    """Import hook making ``import NAME`` (and its submodules) fail with ImportError in this process, for the
    top-level package names given."""

    def __init__(self, names):
        self.names = tuple(names)

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in self.names:
            raise ModuleNotFoundError(f"{name} is not used by this command", name=name)
        return None


#: Libraries other code imports only to ask whether they are there: pyarrow imports pandas, when installed, the first
#: time it converts any Python value (pa.array, pa.scalar, the scalar arguments of pyarrow.compute) just to ask
#: whether the value is a pandas object (0.5-0.8 s of CPU per run); numba imports scipy.linalg (0.3 s) on the first
#: use of a kernel just to know whether np.dot can use BLAS, which the scan kernels never call. Both treat an
#: ImportError as "not installed".
UNUSED_IMPORTS = ("pandas", "scipy")


def _skip_unused_imports() -> None:
    """For the command line only: make the :data:`UNUSED_IMPORTS` fail (those not imported yet). Not done when
    imported as a module: other code in the process may want them."""
    names = [name for name in UNUSED_IMPORTS if name not in sys.modules]
    if names:
        sys.meta_path.insert(0, _SkipImports(names))


if __name__ == "__main__":
    _skip_unused_imports()
    try:
        code = main()
        # The final garbage collection of interpreter shutdown walks every object numba's and pyarrow's modules
        # made (0.3-0.4 s with numba loaded); nothing here needs it, so the objects are left out of it.
        gc.freeze()
        sys.exit(code)
    except BrokenPipeError:  # output piped into head & co.: stop quietly, as cat does
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
