"""Q2 on Apache Spark: the local engine run once per log file inside Spark tasks, the per-file results merged by Spark.

Spark reads the files (local paths, HDFS, ``s3a://`` on a cluster that has hadoop-aws; ``.gz`` decompressed by
file name) as lines, each file whole in one task and in order. The task hands each file's lines to the local engine
(:func:`log_scan.scan_stream`), so format detection, the format table, mid-file ``#Fields:`` changes, malformed-line
accounting and the per-line rules (extension, day, ``-`` sizes) are the local engine's code, not a second copy. Each
task emits its files' totals per day, per extension and per URL path; Spark sums them (exactly, as decimal(38,0)) and
picks the top URL paths; the driver builds the same :class:`log_scan.BytesSummary` the local engine returns, so the
report and the JSON are the local ones.

Files are never split: a format with header state (W3C/CloudFront ``#Fields:``) must see its lines in order from the
first, and detection reads each file's first lines. Parallelism therefore comes from the number of files (CDNs write
many: CloudFront one per edge location every few minutes); a single huge plain file runs as one task.
"""

from __future__ import annotations

import dataclasses
import io
import itertools
import json
import os
import re
import shutil
import sys
import tempfile
import urllib.parse
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

import log_scan

HERE = Path(__file__).resolve().parent
#: Lines per Arrow batch handed to a task's Python worker (~10-20 MB of log text): fewer, larger calls.
LINES_PER_BATCH = 100_000
_OUTPUT_SCHEMA = (
    "kind string, file int, key binary, bytes long, requests long, accounting string"  # one row per file/day/ext/URL
)


class SparkUnavailableError(RuntimeError):
    """Spark cannot start here (no Java, no pyspark, a master it cannot use): the message says what to do."""


def spark_error_reason(error: Exception) -> str:
    """The innermost cause of a Spark/Py4J error as one line (a Java error's text holds its whole stack)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    causes = [line.removeprefix("Caused by:") for line in lines if line.startswith("Caused by:")]
    reason = causes[-1] if causes else next((line for line in lines if "Exception" in line), "")
    reason = (reason or (lines[0] if lines else type(error).__name__)).lstrip(": ").strip()
    if "S3AFileSystem" in reason:
        reason += " (s3a:// needs the hadoop-aws jar: see SPARK.md)"
    return reason[:300]


def check_spark_available() -> None:
    """Raise SparkUnavailableError with the install hint when pyspark or a Java runtime is missing."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        raise SparkUnavailableError(
            "--engine spark needs pyspark: pip install -r requirements-spark.txt (or run make test once)"
        ) from None
    java_home = os.environ.get("JAVA_HOME")
    if not (java_home and os.access(os.path.join(java_home, "bin", "java"), os.X_OK)) and not shutil.which("java"):
        raise SparkUnavailableError(
            "--engine spark needs Java 17 or later: apt-get install openjdk-17-jre-headless (or set JAVA_HOME)"
        )


def spark_session(master: str | None = None, app_name: str = "q2-log-bytes", conf: dict | None = None):
    """A SparkSession for the Q2 job (an existing one is reused), with this folder's modules shipped to the workers.

    master: a Spark master URL ('local[*]', 'local[2]', 'spark://host:7077', 'yarn', 'k8s://...'); None: the one
    spark-submit was given, or local[*] when run as a plain script; ignored when
    the session already exists (e.g. under spark-submit, which sets it). conf: extra Spark settings.
    Raises SparkUnavailableError when Java or pyspark is missing.
    """
    check_spark_available()
    from pyspark.sql import SparkSession

    submitted = "PYSPARK_GATEWAY_PORT" in os.environ  # started by spark-submit, which set the master and Python
    if (master or ("cluster" if submitted else "local")).startswith("local") and "PYSPARK_PYTHON" not in os.environ:
        os.environ["PYSPARK_PYTHON"] = sys.executable  # local workers: this interpreter, with its packages
    builder = SparkSession.builder if master is None else SparkSession.builder.master(master)
    builder = (
        builder.appName(app_name).config("spark.ui.showConsoleProgress", "false").config("spark.log.level", "ERROR")
    )
    for key, value in (conf or {}).items():
        builder = builder.config(key, value)
    from py4j.protocol import Py4JError
    from pyspark.errors import PySparkException

    try:
        spark = builder.getOrCreate()
    except (PySparkException, Py4JError) as error:  # e.g. a master URL Spark does not know, a cluster not answering
        raise SparkUnavailableError(f"Spark could not start (--master {master}): {spark_error_reason(error)}") from None
    if spark.sparkContext.master.startswith("local") and "spark.sql.shuffle.partitions" not in (conf or {}):
        spark.conf.set("spark.sql.shuffle.partitions", "8")  # a few cores: 200 shuffle partitions = 200 tiny tasks
    ship_modules(spark)
    return spark


def ship_modules(spark) -> None:
    """Make this folder's modules importable in Spark's Python workers: with a local master, this folder on the
    workers' PYTHONPATH (numba then reuses the kernels' on-disk cache); elsewhere one zip added to the session
    (spark-submit users may pass the same files with --py-files instead)."""
    context = spark.sparkContext
    if context.master.startswith("local"):
        path = context.environment.get("PYTHONPATH", "")
        if str(HERE) not in path.split(os.pathsep):
            context.environment["PYTHONPATH"] = os.pathsep.join(filter(None, [path, str(HERE)]))
        return
    if getattr(context, "_q2_modules_shipped", False):
        return
    archive = os.path.join(tempfile.mkdtemp(prefix="q2-spark-"), "q2_modules.zip")
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(HERE.glob("*.py")):
            zf.write(path, path.name)
    context.addPyFile(archive)
    context._q2_modules_shipped = True


def scan_logs(
    spark,
    paths: list,
    query: log_scan.BytesQuery,
    format_name: str | None = None,
    spec=None,
    max_examples: int = 5,
) -> log_scan.BytesSummary:
    """Scan the log files ``paths`` on Spark; same result as folding ``log_scan.scan_log`` over them in order.

    paths: local file paths (as the user typed them: they name the files in the accounting) or Hadoop URIs
    (``hdfs://``, ``s3a://``); directories and globs are expanded by the caller (local) or by Spark (URIs).
    format_name, spec: as in log_scan.scan_log (a format name; a user-defined FormatSpec).
    Returns a :class:`log_scan.BytesSummary` whose ``url_tables`` holds only the top URL paths (enough for
    ``top_urls(10)`` and ``as_dict()``). A file the local engine refuses (unknown format, a header without the needed
    columns) is in ``files`` with format 'skipped' and the reason in ``error``, as the command line records it; so is
    a local file Spark cannot read by its name (starting with '_' or '.', a ':' in the path) or a compressed file it
    has no codec for by its name. Raises log_scan.LogInputError (one line: the innermost Spark/Java cause) when the
    Spark job fails, e.g. a missing path or a corrupt .gz.
    """
    from py4j.protocol import Py4JError
    from pyspark.errors import PySparkException, PythonException

    refused = {p: reason for p in paths if (reason := _unreadable_by_spark(p))}
    readable = [p for p in paths if p not in refused]
    try:
        summary = _scan_logs(spark, readable, query, format_name, spec, max_examples) if readable else None
    except PythonException:  # a bug in our code: keep its traceback
        raise
    except (PySparkException, Py4JError) as error:  # a path that does not exist, a corrupt .gz: one line
        raise log_scan.LogInputError(f"Spark could not read the logs: {spark_error_reason(error)}") from None
    summary = summary or log_scan.BytesSummary()
    summary.files += [log_scan.FileAccounting(p, "skipped", error=f"{p}: {why}") for p, why in refused.items()]
    order = {p: i for i, p in enumerate(paths)}
    summary.files.sort(key=lambda f: order.get(f.source, len(paths)))  # stable: files found by Spark stay last
    return summary


def _unreadable_by_spark(path: str) -> str | None:
    """Why Spark cannot read the local file ``path`` as named, or None (Hadoop URIs are Spark's to judge)."""
    if "://" in path:
        return None
    if os.path.basename(path).startswith(("_", ".")):
        return "Spark skips names starting with '_' or '.' (hidden files to it); rename it or use --engine local"
    if ":" in os.path.abspath(path):
        return "a ':' in a local path is not a valid Hadoop path; rename it or use --engine local"
    return None


def _scan_logs(spark, paths, query, format_name, spec, max_examples) -> log_scan.BytesSummary:
    names = {_local_key(p): p for p in paths}
    lines = _read_whole_files(spark, [_spark_path(p) for p in paths])
    position = {name: i for i, name in enumerate(names)}
    # in the caller's order; files Spark found under a directory or URI glob after them, by path
    files = sorted({_canonical(p) for p in lines.inputFiles()}, key=lambda p: (position.get(p, len(paths)), p))
    index = {path: i for i, path in enumerate(files)}

    def scan_partition(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        return _scan_partition(batches, index, names, query, format_name, spec, max_examples)

    parts = lines.mapInArrow(scan_partition, _OUTPUT_SCHEMA).cache()
    try:
        return _merge(parts, files, names, format_name)
    finally:
        parts.unpersist()


def _read_whole_files(spark, paths: list):
    """Lines (path, value as bytes, undecoded) of ``paths``, one task per file: no file split, none packed with
    another (the split size and each file's open cost both exceed any file)."""
    from pyspark.sql import functions as F

    for key in ("spark.sql.files.maxPartitionBytes", "spark.sql.files.openCostInBytes"):
        spark.conf.set(key, str(1 << 62))
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(LINES_PER_BATCH))
    return (
        spark.read.option("lineSep", "\n")
        .text(paths)
        .select(F.col("_metadata.file_path").alias("path"), F.col("value").cast("binary").alias("line"))
    )


def _spark_path(path: str) -> str:
    """A local path as a file: URI for Spark, its glob characters escaped (the command line expanded the globs)."""
    if "://" in path:
        return path
    return "file://" + re.sub(r"([\\*?\[\]{}])", r"\\\1", os.path.abspath(path))


def _local_key(path: str) -> str:
    """The spelling :func:`_canonical` gives the file ``path`` (as typed by the user) once Spark has read it."""
    return _canonical(path) if "://" in path else "file:" + os.path.normpath(os.path.abspath(path))


def _canonical(spark_path: str) -> str:
    """One spelling per file: Spark writes local files as file:/a%20b, file:///a b, ... depending on the API."""
    if spark_path.startswith("file:"):
        return "file:" + os.path.normpath("/" + urllib.parse.unquote(spark_path[5:]).lstrip("/"))
    return spark_path


def _file_blocks(batches: Iterator[pa.RecordBatch]) -> Iterator[tuple[str, bytes]]:
    """(file path, block of whole lines with their '\\n') from Spark's line batches, in order."""
    for batch in batches:
        paths, lines = batch.column(0), batch.column(1)
        if not len(paths):
            continue
        changes = pc.indices_nonzero(pc.not_equal(paths[1:], paths[:-1])).to_numpy() + 1
        bounds = [0, *changes.tolist(), len(paths)]
        for lo, hi in itertools.pairwise(bounds):
            run = lines.slice(lo, hi - lo)
            joined = pc.binary_join(pa.ListArray.from_arrays([0, len(run)], run), b"\n")[0].as_py()
            yield paths[lo].as_py(), joined + b"\n"


class _BlocksStream(io.RawIOBase):
    """A read-only binary stream over an iterator of byte blocks (one file's lines, in order)."""

    def __init__(self, blocks: Iterator[bytes]):
        self._blocks, self._pending = blocks, memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self._pending:
            block = next(self._blocks, None)
            if block is None:
                return 0
            self._pending = memoryview(block)
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n


def _scan_partition(
    batches, index: dict, names: dict, query, format_name, spec, max_examples
) -> Iterator[pa.RecordBatch]:
    """Runs in a Spark task: the local engine over each file of the partition, one output batch per file. A file
    the local engine refuses (unknown format, a header without the needed columns) is reported as skipped."""
    for path, blocks in itertools.groupby(_file_blocks(batches), key=lambda item: item[0]):
        path = _canonical(path)
        name = names.get(path, path)
        blocks = (block for _, block in blocks)
        first = next(blocks)
        try:
            compression = log_scan.compression_of(first[:6])
            if compression is not None:  # Spark found no codec for the name and passed the compressed bytes on
                raise log_scan.LogInputError(
                    f"{name}: {compression}-compressed, but Spark picks the codec by the file name and has none "
                    "for it; name gzip files .gz and bzip2 files .bz2, decompress xz first, or use --engine local"
                )
            stream = _BlocksStream(itertools.chain([first], blocks))
            summary = log_scan.scan_stream(
                stream, name, query, format_name, max_examples=max_examples, workers=1, spec=spec
            )
        except log_scan.LogInputError as error:
            for _ in blocks:  # the rest of this file's lines: the next file follows them
                pass
            summary = log_scan.BytesSummary(files=[log_scan.FileAccounting(name, "skipped", error=str(error))])
        yield _summary_rows(index[path], summary)


def _summary_rows(file_index: int, summary: log_scan.BytesSummary) -> pa.RecordBatch:
    accounting = summary.files[0]
    rows = [
        (
            "file",
            b"",
            0,
            0,
            json.dumps(
                {
                    **dataclasses.asdict(accounting),
                    "total_bytes": summary.total_bytes,
                    "requests": summary.requests,
                    "bytes_missing": summary.bytes_missing,
                }
            ),
        )
    ]
    rows += [("day", day.encode(), b, n, None) for day, (b, n) in summary.by_day.items()]
    rows += [("ext", ext.encode(), b, n, None) for ext, (b, n) in summary.by_extension.items()]
    if summary.url_tables:
        urls = pa.concat_tables(summary.url_tables).group_by("path").aggregate([("bytes", "sum")])
        rows += [("url", p, b, 0, None) for p, b in zip(urls["path"].to_pylist(), urls["bytes_sum"].to_pylist())]
    return _rows(file_index, rows)


def _rows(file_index: int, rows: list) -> pa.RecordBatch:
    kind, key, nbytes, requests, accounting = (list(col) for col in zip(*rows))
    return pa.RecordBatch.from_arrays(
        [
            pa.array(kind, pa.string()),
            pa.array([file_index] * len(kind), pa.int32()),
            pa.array(key, pa.binary()),
            pa.array(nbytes, pa.int64()),
            pa.array(requests, pa.int64()),
            pa.array(accounting, pa.string()),
        ],
        names=["kind", "file", "key", "bytes", "requests", "accounting"],
    )


def _merge(parts, files: list, names: dict, format_name: str | None) -> log_scan.BytesSummary:
    """The driver's side: per-file accounting, sums per day and extension, and the top URL paths, from Spark."""
    from pyspark.sql import functions as F

    exact = F.sum(F.col("bytes").cast("decimal(38,0)")).alias("bytes")
    per_file = {
        row["file"]: json.loads(row["accounting"]) for row in parts.where("kind in ('file', 'error')").collect()
    }
    summary = log_scan.BytesSummary()
    for i, path in enumerate(files):
        name = names.get(path, path)
        got = per_file.get(i)
        if got is None:  # no line at all: Spark gives an empty file no task output
            summary.files.append(log_scan.FileAccounting(name, format_name or "empty"))
            continue
        examples = [tuple(example) for example in got.pop("malformed_examples")]
        summary.total_bytes += got.pop("total_bytes")
        summary.requests += got.pop("requests")
        summary.bytes_missing += got.pop("bytes_missing")
        summary.files.append(log_scan.FileAccounting(**{**got, "source": name, "malformed_examples": examples}))
    for kind, target in (("day", summary.by_day), ("ext", summary.by_extension)):
        for row in parts.where(F.col("kind") == kind).groupBy("key").agg(exact, F.sum("requests").alias("n")).collect():
            target[row["key"].decode()] = [int(row["bytes"]), int(row["n"])]
    top = (
        parts.where(F.col("kind") == "url")
        .groupBy("key")
        .agg(exact)
        .orderBy(F.col("bytes").desc(), F.col("key").asc())
        .limit(10)
        .collect()
    )
    if top:
        summary.url_tables.append(
            pa.table(
                {
                    "path": pa.array([row["key"] for row in top], pa.binary()),
                    "bytes": pa.array([int(row["bytes"]) for row in top], pa.int64()),
                }
            )
        )
    return summary
