"""The Spark engine gives exactly the local engine's JSON: on the real samples and on awkward generated logs.

Spark runs in local mode (local[2]) in one session for the whole test run; the tests are marked slow and skip, saying
what to install, when pyspark or Java is missing.
"""

from __future__ import annotations

import bz2
import dataclasses
import datetime as dt
import gzip
import json
import lzma
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import dummy_log
import log_scan
from log_scan import BytesQuery

pytestmark = pytest.mark.slow

HERE = Path(__file__).resolve().parent
CLI = HERE.parent / "raw_data_analytics.py"
#: The JVM flags and settings that make a test session start and run faster (no JIT tiers beyond C1, serial GC,
#: few shuffle partitions); the session is shared with any other part's Spark tests (getOrCreate).
TEST_CONF = {
    "spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC",
    "spark.sql.shuffle.partitions": "4",
    "spark.default.parallelism": "2",
    "spark.ui.enabled": "false",
}
WIDE = BytesQuery(
    ("html", "png", "ico", "jpg", "css", "js", "gz", "war", "xml"), dt.date(2000, 1, 1), dt.date(2030, 12, 31)
)


@pytest.fixture(scope="session")
def spark():
    q2_spark = pytest.importorskip("q2_spark", reason="pyspark not installed: pip install -r requirements-spark.txt")
    try:
        q2_spark.check_spark_available()
    except q2_spark.SparkUnavailableError as error:
        pytest.skip(str(error))
    return q2_spark.spark_session("local[2]", conf=TEST_CONF)


def local_summary(paths, query, format_name=None) -> log_scan.BytesSummary:
    summary = log_scan.BytesSummary()
    for path in paths:
        summary.add(log_scan.scan_log(str(path), query, format_name))
    return summary


def spark_summary(spark, paths, query, format_name=None) -> log_scan.BytesSummary:
    import q2_spark

    return q2_spark.scan_logs(spark, [str(p) for p in paths], query, format_name)


def accepted_by_local_engine(paths, query) -> list:
    """The files the local engine scans without a user error (the others are tested for the same error)."""
    kept = []
    for path in paths:
        try:
            log_scan.scan_log(str(path), query)
        except log_scan.LogInputError:
            continue
        kept.append(path)
    return kept


def test_real_samples_same_json_as_local(spark, shared_logs):
    paths = accepted_by_local_engine(sorted(shared_logs.glob("*.log*")) + sorted(shared_logs.glob("formats/*")), WIDE)
    assert len(paths) >= 15  # clf, combined, S3, CloudFront, W3C, ... (the samples of every known format)
    expected = local_summary(paths, WIDE)
    got = spark_summary(spark, paths, WIDE)
    assert got.as_dict() == expected.as_dict()
    assert [f.malformed_examples for f in got.files] == [f.malformed_examples for f in expected.files]
    # days in another zone: the day boundary moves line by line
    query = BytesQuery(WIDE.extensions, dt.date(2014, 5, 23), dt.date(2016, 12, 26), tz="America/Los_Angeles")
    assert spark_summary(spark, paths, query).as_dict() == local_summary(paths, query).as_dict()


def _cloudfront_with_header_change_and_garbage(path: Path) -> Path:
    """A CloudFront log whose #Fields header changes column order mid-file, with garbage and awkward lines."""
    rng = np.random.default_rng(7)
    fields = dummy_log.CLOUDFRONT_FIELDS
    first = dummy_log.cloudfront_log_chunk(3000, rng).splitlines()
    second = dummy_log.cloudfront_log_chunk(3000, rng).splitlines()
    order = list(reversed(range(len(fields))))  # the second part's columns in reverse order
    second = [b"\t".join(line.split(b"\t")[i] for i in order) for line in second]
    garbage = [b"garbage without tabs", b"\xff\xfe not utf-8 \x00", b"2017-08-24\tnot-a-time\tHKG60\t12", b"", b"   "]
    lines = [b"#Version: 1.0", b"#Fields: " + " ".join(fields).encode()]
    for i, line in enumerate(first):
        lines.append(line)
        if i % 500 == 0:
            lines.append(garbage[(i // 500) % len(garbage)])
    lines += [b"#Version: 1.0", b"#Fields: " + " ".join(fields[i] for i in order).encode()]
    for i, line in enumerate(second):
        lines.append(line + (b"\r" if i % 7 == 0 else b""))  # some CRLF line ends
        if i % 700 == 0:
            lines.append(garbage[(i // 700) % len(garbage)])
    path.write_bytes(b"\xef\xbb\xbf" + b"\n".join(lines))  # a byte-order mark, and no final newline
    return path


def _combined_with_garbage(path: Path) -> Path:
    text = (
        '1.2.3.4 - - [24/Aug/2017:23:59:59 +0800] "GET /a/b%20c.JPG?x=1 HTTP/1.1" 200 1000 "-" "curl"\n'
        '1.2.3.4 - - [25/Aug/2017:00:00:01 -0700] "GET http://h.example/d.jpeg HTTP/1.1" 200 - "-" "curl"\n'
        "this is not a log line\n"
        '5.6.7.8 - - [26/Aug/2017:10:00:00 +0000] "GET /e.jpg HTTP/1.1" 200 77 "-" "curl"\n'
    ) * 50
    with gzip.open(path, "wb") as out:
        out.write(text.encode())
    return path


def test_generated_logs_same_json_as_local(spark, tmp_path):
    paths = [
        _cloudfront_with_header_change_and_garbage(tmp_path / "cf with space.log"),
        _combined_with_garbage(tmp_path / "access.log.gz"),
        tmp_path / "empty.log",
    ]
    paths[2].write_bytes(b"")
    for query in (
        BytesQuery(("jpg",), dt.date(2017, 8, 24), dt.date(2017, 8, 25)),
        BytesQuery(("jpg", "png"), dt.date(2017, 8, 23), dt.date(2017, 8, 26), exact_ext=True, tz="Asia/Hong_Kong"),
    ):
        expected = local_summary(paths, query)
        got = spark_summary(spark, paths, query)
        assert got.as_dict() == expected.as_dict()
        assert got.files[0].malformed_lines > 0 and got.files[0].comment_lines == 4  # garbage counted, not dropped
        assert [f.malformed_examples for f in got.files] == [f.malformed_examples for f in expected.files]


def test_refused_file_is_skipped_with_the_local_reason(spark, tmp_path):
    good = tmp_path / "good.log"
    good.write_text('1.2.3.4 - - [24/Aug/2017:10:00:00 +0000] "GET /a.jpg HTTP/1.1" 200 5 "-" "-"\n')
    bad = tmp_path / "bad.log"
    bad.write_text("no format has lines like this one\n")
    with pytest.raises(log_scan.LogInputError) as local_error:
        log_scan.scan_log(str(bad), WIDE)
    got = spark_summary(spark, [good, bad], WIDE)
    assert got.as_dict()["total_bytes"] == local_summary([good], WIDE).total_bytes == 5
    assert (got.files[1].format, got.files[1].error) == ("skipped", str(local_error.value))


def test_compressed_by_name_is_read_and_otherwise_skipped_with_the_reason(spark, tmp_path):
    text = b'1.2.3.4 - - [24/Aug/2017:10:00:00 +0000] "GET /a.jpg HTTP/1.1" 200 5 "-" "-"\n' * 30
    bzipped = tmp_path / "a.log.bz2"  # Spark's codec by name: read as the local engine reads it
    bzipped.write_bytes(bz2.compress(text))
    xz = tmp_path / "b.log.xz"  # no codec in Spark for .xz
    xz.write_bytes(lzma.compress(text))
    misnamed = tmp_path / "c.log"  # gzip under a plain name: Spark passes the compressed bytes on
    misnamed.write_bytes(gzip.compress(text))
    got = spark_summary(spark, [bzipped, xz, misnamed], WIDE)
    assert local_summary([bzipped], WIDE).total_bytes == got.total_bytes == 150
    assert [f.format for f in got.files[1:]] == ["skipped", "skipped"]
    assert "xz-compressed" in got.files[1].error and "gzip-compressed" in got.files[2].error
    assert local_summary([xz, misnamed], WIDE).total_bytes == 300  # the local engine reads both by content


def test_cli_engine_spark_prints_the_local_json(spark, shared_logs, tmp_path):
    bad = tmp_path / "bad.log"
    bad.write_text("no format has lines like this one\n")
    logs = [str(shared_logs / "matomo-amazon_cloudfront_web.log"), str(shared_logs / "matomo-common.log.gz"), str(bad)]
    args = ["--json", "--ext", "html", "--start", "2000-01-01", "--end", "2030-01-01"]

    def run(*extra):
        done = subprocess.run([sys.executable, str(CLI), *logs, *args, *extra], capture_output=True, text=True)
        assert done.returncode == 1, done.stderr  # the refused file
        return json.loads(done.stdout), [line for line in done.stderr.splitlines() if line.startswith("error:")]

    assert run("--engine", "spark", "--master", "local[2]") == run()


def test_missing_path_is_one_line(spark, tmp_path):
    with pytest.raises(log_scan.LogInputError, match="Spark could not read the logs"):
        spark_summary(spark, [tmp_path / "nothing-here.log"], WIDE)


def test_cli_without_java_says_what_to_install(tmp_path):
    pytest.importorskip("pyspark", reason="pyspark not installed: pip install -r requirements-spark.txt")
    log = tmp_path / "a.log"
    log.write_text('1.2.3.4 - - [24/Aug/2017:10:00:00 +0000] "GET /a.jpg HTTP/1.1" 200 5 "-" "-"\n')
    env = {"PATH": str(tmp_path), "HOME": str(tmp_path)}  # no java on PATH, no JAVA_HOME
    done = subprocess.run(
        [sys.executable, str(CLI), str(log), "--engine", "spark"], capture_output=True, text=True, env=env
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "Java" in done.stderr and "apt-get install" in done.stderr


def test_awkward_local_names_read_as_the_local_engine_or_skipped_with_the_reason(spark, tmp_path):
    line = b'1.2.3.4 - - [24/Aug/2017:10:00:00 +0000] "GET /a.jpg HTTP/1.1" 200 7 "-" "-"\n'
    readable = [tmp_path / "pct%20x.log", tmp_path / "br[1]{a,b}*?.log"]  # % and glob characters in the names
    refused = [tmp_path / "_underscore.log", tmp_path / ".hidden.log", tmp_path / "colon:x.log"]
    for i, path in enumerate(readable + refused):
        path.write_bytes(line * (i + 1))
    got = spark_summary(spark, readable + refused, WIDE)
    expected = local_summary(readable, WIDE)
    assert [f.source for f in got.files] == [str(p) for p in readable + refused]  # the caller's order and spelling
    assert got.total_bytes == expected.total_bytes == 7 * (1 + 2)
    assert [dataclasses.asdict(f) for f in got.files[:2]] == [dataclasses.asdict(f) for f in expected.files]
    assert [f.format for f in got.files[2:]] == ["skipped"] * 3
    assert all("rename it or use --engine local" in f.error for f in got.files[2:])


def test_corrupt_gz_is_one_line(spark, tmp_path):
    broken = tmp_path / "cut.log.gz"
    broken.write_bytes(
        gzip.compress(b'1.2.3.4 - - [24/Aug/2017:10:00:00 +0000] "GET /a.jpg HTTP/1.1" 200 7 "-" "-"\n' * 999)[:-40]
    )
    with pytest.raises(log_scan.LogInputError) as error:
        spark_summary(spark, [broken], WIDE)
    assert "\n" not in str(error.value) and "Unexpected end of input stream" in str(error.value)


def test_cli_bad_master_is_one_line(tmp_path):
    pytest.importorskip("pyspark", reason="pyspark not installed: pip install -r requirements-spark.txt")
    log = tmp_path / "a.log"
    log.write_text('1.2.3.4 - - [24/Aug/2017:10:00:00 +0000] "GET /a.jpg HTTP/1.1" 200 5 "-" "-"\n')
    done = subprocess.run(
        [sys.executable, str(CLI), str(log), "--engine", "spark", "--master", "foo"], capture_output=True, text=True
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "--master foo" in errors[0]
    done = subprocess.run([sys.executable, str(CLI), str(log), "--master", "local[2]"], capture_output=True, text=True)
    assert done.returncode == 2 and "goes with --engine spark" in done.stderr
