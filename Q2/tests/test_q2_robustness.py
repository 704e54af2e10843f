"""Nothing thrown away: a bad file is reported and skipped while the other counts stand; compressed input of every
kind; control characters never reach the terminal; user-defined formats read like the built-in ones."""

import bz2
import datetime as dt
import gzip
import json
import lzma
import os

import pytest

import log_formats
import log_scan
from log_scan import BytesQuery
from test_q2_user_errors import CLF_LINE, cli

ALL_DAYS = ["--start", "2000-01-01", "--end", "2030-12-31"]


def test_truncated_gzip_keeps_the_lines_before_the_cut(tmp_path, capsys):
    lines = [b'1.2.3.4 - - [24/Aug/2017:10:00:00 +0000] "GET /%d.jpg HTTP/1.1" 200 %d\n' % (i, i) for i in range(5000)]
    whole = gzip.compress(b"".join(lines))
    path = tmp_path / "cut.log.gz"
    path.write_bytes(whole[: len(whole) * 3 // 4])
    code, out, err = cli([path, "--json", "--block-size", "4096"], capsys)
    summary = json.loads(out)
    counted = summary["files"][0]["lines_read"]
    assert code == 1 and "compressed data is truncated or corrupt" in err and "the lines before it are counted" in err
    assert 0 < counted < 5000
    assert summary["total_bytes"] == sum(range(counted))  # exactly the whole lines before the cut


def test_one_unreadable_file_is_skipped_and_the_others_stand(tmp_path, capsys):
    good = tmp_path / "a.log"
    good.write_bytes(CLF_LINE)
    bad = tmp_path / "b.log"
    bad.write_bytes(b"\x1f\x8b" + b"junk" * 10)
    mystery = tmp_path / "c.log"
    mystery.write_bytes(b"hello\n")
    code, out, err = cli([tmp_path / "*.log", "--json"], capsys)
    summary = json.loads(out)
    assert code == 1 and summary["total_bytes"] == 5
    assert [f["format"] for f in summary["files"]] == ["clf", "skipped", "skipped"]
    assert err.count("file skipped") == 2


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_a_file_without_read_permission_is_skipped(tmp_path, capsys):
    good, locked = tmp_path / "a.log", tmp_path / "b.log"
    good.write_bytes(CLF_LINE)
    locked.write_bytes(CLF_LINE)
    locked.chmod(0)
    code, out, err = cli([good, locked, "--json"], capsys)
    assert code == 1 and json.loads(out)["total_bytes"] == 5 and "Permission denied" in err


@pytest.mark.parametrize("compress", [gzip.compress, bz2.compress, lzma.compress])
def test_compressed_logs_are_read_by_content(tmp_path, compress):
    path = tmp_path / "log.any"
    path.write_bytes(compress(CLF_LINE * 3))
    assert log_scan.scan_log(str(path), BytesQuery()).total_bytes == 15


def test_control_characters_are_escaped_in_every_output(tmp_path, capsys):
    line = b'1.2.3.4 - - [24/Aug/2017:10:00:00 +0000] "GET /a\x1b[31m\x07.jpg HTTP/1.1" 200 5\n'
    bad = b'1.2.3.4 - - [24/Aug/2017:10:00:00 +0000] "GET /\x1b]0;x\x07.jpg HTTP/1.1" 200 5\x1bz\n'
    path = tmp_path / "esc\x1b.log"
    path.write_bytes(line + bad)
    for args in ([path], [path, "--json"]):
        code, out, err = cli(args, capsys)
        assert code == 0
        assert "\x1b" not in out + err and "\x07" not in out + err
        assert "\\x1b" in out and "\\x1b" in err


def test_a_bad_utc_offset_is_a_malformed_line_even_with_tz(tmp_path, capsys):
    path = tmp_path / "offset.log"
    path.write_bytes(CLF_LINE + CLF_LINE.replace(b"+0000", b"+0099"))
    code, out, err = cli([path, "--tz", "Asia/Hong_Kong", "--json"], capsys)
    summary = json.loads(out)
    assert code == 0 and summary["total_bytes"] == 5 and summary["malformed_lines"] == 1
    assert "bad UTC offset '+0099'" in err and "Traceback" not in err


NGINX_COMBINED = (
    '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"'
)
APACHE_COMBINED = '%h %l %u %t \\"%r\\" %>s %b \\"%{Referer}i\\" \\"%{User-agent}i\\"'


@pytest.mark.parametrize("log_format", [NGINX_COMBINED, APACHE_COMBINED])
def test_user_defined_combined_format_reads_like_the_builtin(shared_logs, log_format):
    path = shared_logs / "formats" / "elastic-examples-apache-10k.log"
    query = BytesQuery(("jpg", "png"), dt.date(2015, 1, 1), dt.date(2015, 12, 31))
    custom = log_scan.scan_log(str(path), query, spec=log_formats.spec_from_user_text(log_format))
    builtin = log_scan.scan_log(str(path), query, "clf")
    # an exact format refuses line 8899, whose user agent lacks its closing quote (a .py request, not counted)
    assert [line for line, _reason, _text in custom.files[0].malformed_examples] == [8899]
    assert (custom.total_bytes, custom.requests) == (builtin.total_bytes, builtin.requests) != (0, 0)


def test_json_mapping_reads_a_json_log(shared_logs):
    path = shared_logs / "formats" / "matomo-caddy_json.log"
    spec = log_formats.spec_from_user_text("json time=ts size=size url=request.uri layout=epoch")
    query = BytesQuery(("html", "php", "jpg"), dt.date(2000, 1, 1), dt.date(2030, 1, 1))
    custom, builtin = log_scan.scan_log(str(path), query, spec=spec), log_scan.scan_log(str(path), query, "caddy")
    assert custom.files[0].lines_used + custom.files[0].lines_not_matching == 3
    assert custom.as_dict()["by_day"] == builtin.as_dict()["by_day"]


@pytest.mark.parametrize(
    "text, needle",
    [
        ("%h %l %u %t %>s", "has no a size (%b)"),
        ('%h %{%d/%m/%Y}t "%r" %b', "custom time formats are not supported"),
        ("json time=ts size=size", "the JSON mapping has no url=KEY"),
        ("", "the log format is empty"),
    ],
)
def test_bad_log_format_is_one_line(capsys, text, needle):
    code, _out, err = cli(["--log-format", text], capsys)
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1


def test_adding_a_format_is_one_table_entry(tmp_path):
    spec = log_formats.FormatSpec("pipe", "pipe-separated", "pattern", pattern="%t|%U|%b", time_layout="iso8601")
    path = tmp_path / "pipe.log"
    path.write_bytes(b"2017-08-24T10:00:00Z|/a.jpg|7\n2017-08-24T10:00:00Z|/b.png|9\nnot a line\n")
    summary = log_scan.scan_log(str(path), BytesQuery(), spec=spec)
    assert (summary.total_bytes, summary.files[0].malformed_lines, summary.files[0].lines_not_matching) == (7, 1, 1)


@pytest.mark.parametrize(
    "fmt, line, total",
    [
        (
            "cloudflare-json",
            b'{"ClientIP":"192.0.2.1","ClientRequestURI":"/a.jpg?w=1","EdgeResponseBytes":1234,'
            b'"EdgeStartTimestamp":"2017-08-24T23:59:59Z","EdgeResponseStatus":200}',
            1234,
        ),
        (
            "gcp-json",
            b'{"httpRequest":{"requestMethod":"GET","requestUrl":"https://cdn.example.com/b.JPG","responseSize":"99",'
            b'"status":200},"timestamp":"2017-08-25T00:00:01.123456Z","severity":"INFO"}',
            99,
        ),
    ],
)
def test_documented_json_layouts_are_detected_and_read(tmp_path, fmt, line, total):
    path = tmp_path / "cdn.json"
    path.write_bytes(line + b"\n" + line.replace(b"2017-08-2", b"2017-09-2") + b"\n")
    summary = log_scan.scan_log(str(path), BytesQuery())
    assert (summary.files[0].format, summary.total_bytes, summary.files[0].lines_not_matching) == (fmt, total, 1)
