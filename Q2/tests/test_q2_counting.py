"""Every counting rule on a small hand-made input whose right answer is worked out by hand."""

import datetime as dt
import gzip

import pytest

import log_scan
from log_scan import BytesQuery

CF_HEADER = "#Version: 1.0\n#Fields: date time x-edge-location sc-bytes c-ip cs-method cs(Host) cs-uri-stem sc-status\n"


def cf(day, time, size, stem, status="200"):
    return f"{day}\t{time}\tHKG60\t{size}\t192.0.2.1\tGET\td1.cloudfront.net\t{stem}\t{status}\n"


def clf(stamp, request, size, status="200"):
    return f'192.0.2.1 - - [{stamp}] "{request}" {status} {size} "-" "agent"\n'


def scan(tmp_path, content, query=None, name="access.log", **kwargs):
    query = query or BytesQuery()
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return log_scan.scan_log(str(path), query, **kwargs)


def test_extension_from_url_path_ignores_query_fragment_and_case(tmp_path):
    text = CF_HEADER + "".join(
        [
            cf("2017-08-24", "10:00:00", 100, "/a.jpg"),  # counts
            cf("2017-08-24", "10:00:00", 200, "/B.JPG"),  # counts: case-insensitive
            cf("2017-08-24", "10:00:00", 400, "/c.jpeg"),  # counts: jpeg is jpg
            cf("2017-08-24", "10:00:00", 800, "/d%2Ejpg"),  # counts: percent-decoded before the extension
            cf("2017-08-24", "10:00:00", 1600, "/dir.jpg/e"),  # no: the extension is of the last segment
            cf("2017-08-24", "10:00:00", 3200, "/f.jpg%3Fx=1"),  # no: an encoded '?' is part of the name
            cf("2017-08-24", "10:00:00", 6400, "/g.png"),  # no
        ]
    )
    summary = scan(tmp_path, text)
    assert summary.total_bytes == 100 + 200 + 400 + 800
    assert summary.requests == 4
    assert dict(summary.by_extension) == {"jpg": [1100, 3], "jpeg": [400, 1]}


def test_query_string_and_fragment_are_stripped_in_clf(tmp_path):
    text = "".join(
        [
            clf("24/Aug/2017:10:00:00 +0000", "GET /a.jpg?w=100 HTTP/1.1", 10),  # counts
            clf("24/Aug/2017:10:00:00 +0000", "GET /b.jpg#top HTTP/1.1", 20),  # counts
            clf("24/Aug/2017:10:00:00 +0000", "GET /img.php?f=x.jpg HTTP/1.1", 40),  # no: path is /img.php
            clf("24/Aug/2017:10:00:00 +0000", "GET http://cdn.example.com/c.JPG HTTP/1.1", 80),  # counts
            clf("24/Aug/2017:10:00:00 +0000", "GET http://example.com HTTP/1.1", 160),  # no: host is not a path
        ]
    )
    summary = scan(tmp_path, text)
    assert (summary.total_bytes, summary.requests) == (110, 3)


def test_bracketed_ipv6_client_and_vhost_prefix(tmp_path):
    text = (
        '[2001:db8::1]:443 - - [24/Aug/2017:10:00:00 +0000] "GET /a.jpg HTTP/1.1" 200 3 "-" "ua"\n'
        'www.example.com 192.0.2.1 - - [24/Aug/2017:10:00:00 +0000] "GET /b.jpg HTTP/1.1" 200 4\n'
    )
    summary = scan(tmp_path, text)
    assert (summary.total_bytes, summary.malformed_lines) == (7, 0)


def test_exact_ext_and_repeated_ext(tmp_path):
    text = (
        CF_HEADER
        + cf("2017-08-24", "01:00:00", 1, "/a.jpg")
        + cf("2017-08-24", "01:00:00", 2, "/a.jpeg")
        + cf("2017-08-24", "01:00:00", 4, "/a.css")
        + cf("2017-08-24", "01:00:00", 8, "/a.js")
    )
    assert scan(tmp_path, text, BytesQuery(("jpg",), exact_ext=True)).total_bytes == 1
    assert scan(tmp_path, text, BytesQuery(("JPG", ".css"))).total_bytes == 1 + 2 + 4
    assert scan(tmp_path, text, BytesQuery(("jpeg",))).total_bytes == 1 + 2


def test_days_are_whole_and_inclusive(tmp_path):
    text = CF_HEADER + "".join(
        [
            cf("2017-08-23", "23:59:59", 1, "/a.jpg"),  # no
            cf("2017-08-24", "00:00:00", 2, "/a.jpg"),  # first second of start day
            cf("2017-08-25", "23:59:59", 4, "/a.jpg"),  # last second of end day
            cf("2017-08-26", "00:00:00", 8, "/a.jpg"),  # no
        ]
    )
    summary = scan(tmp_path, text)
    assert summary.total_bytes == 6
    assert dict(summary.by_day) == {"2017-08-24": [2, 1], "2017-08-25": [4, 1]}


def test_days_follow_the_logged_offset_unless_tz_converts(tmp_path):
    text = clf("25/Aug/2017:23:30:00 -0700", "GET /a.jpg HTTP/1.1", 5) + clf(
        "24/Aug/2017:01:00:00 +0800", "GET /b.jpg HTTP/1.1", 7
    )
    as_written = scan(tmp_path, text)
    assert dict(as_written.by_day) == {"2017-08-25": [5, 1], "2017-08-24": [7, 1]}
    in_utc = scan(tmp_path, text, BytesQuery(tz="UTC"))
    # 25th 23:30 -0700 is the 26th 06:30 UTC (out of range); 24th 01:00 +0800 is the 23rd 17:00 UTC (out).
    assert (in_utc.total_bytes, in_utc.requests) == (0, 0)
    in_hk = scan(tmp_path, text, BytesQuery(tz="Asia/Hong_Kong", start=dt.date(2017, 8, 24), end=dt.date(2017, 8, 26)))
    assert dict(in_hk.by_day) == {"2017-08-26": [5, 1], "2017-08-24": [7, 1]}


def test_dash_size_counts_as_zero_and_separately(tmp_path):
    text = clf("24/Aug/2017:10:00:00 +0000", "GET /a.jpg HTTP/1.1", "-", status="304") + clf(
        "24/Aug/2017:10:00:00 +0000", "GET /b.jpg HTTP/1.1", 9
    )
    summary = scan(tmp_path, text)
    assert (summary.total_bytes, summary.requests, summary.bytes_missing) == (9, 2, 1)


def test_block_of_only_dash_sizes_keeps_integer_sums(tmp_path):
    lines = [cf("2017-08-24", "01:00:00", "-", "/a.jpg")] * 50 + [cf("2017-08-24", "01:00:00", 7, "/a.jpg")]
    summary = scan(tmp_path, CF_HEADER + "".join(lines), block_size=256)
    assert summary.total_bytes == 7 and isinstance(summary.total_bytes, int)
    assert summary.bytes_missing == 50


def test_sums_beyond_int64_are_exact(tmp_path):
    big = 999_999_999_999_999_999  # the largest size accepted (18 digits)
    text = CF_HEADER + cf("2017-08-24", "01:00:00", big, "/a.jpg") * 20
    summary = scan(tmp_path, text)
    assert summary.total_bytes == 20 * big and summary.top_urls() == [("/a.jpg", 20 * big)]


def test_malformed_lines_are_counted_and_located_never_fatal(tmp_path):
    text = (
        CF_HEADER
        + cf("2017-08-24", "01:00:00", 3, "/a.jpg")
        + "garbage line\n"
        + cf("2017-02-30", "01:00:00", 3, "/a.jpg")
        + cf("2017-08-24", "01:00:00", "12x", "/a.jpg")
        + cf("2017-08-24", "25:00:00", 3, "/a.jpg")
        + "\n   \n# a comment\n"
    )
    summary = scan(tmp_path, text)
    accounting = summary.files[0]
    assert summary.total_bytes == 3
    assert (
        accounting.lines_read,
        accounting.lines_used,
        accounting.malformed_lines,
        accounting.comment_lines,
        accounting.blank_lines,
    ) == (10, 1, 4, 3, 2)
    assert [line for line, _reason, _text in accounting.malformed_examples] == [4, 5, 6, 7]
    assert accounting.is_balanced()


def test_hash_inside_a_line_does_not_cut_it(tmp_path):
    text = (
        clf("24/Aug/2017:10:00:00 +0000", "GET /a.jpg#frag HTTP/1.1", 11)
        + clf("24/Aug/2017:10:00:00 +0000", "GET /x#y/b.jpg HTTP/1.1", 13)
        + "# comment\n"
    )
    summary = scan(tmp_path, text)
    assert (summary.total_bytes, summary.files[0].comment_lines, summary.files[0].lines_not_matching) == (11, 1, 1)


def test_crlf_bom_and_non_utf8_bytes(tmp_path):
    text = ("\ufeff" + CF_HEADER + cf("2017-08-24", "01:00:00", 5, "/a.jpg")).replace("\n", "\r\n").encode()
    text += cf("2017-08-24", "01:00:00", 7, "/X").encode().replace(b"/X", b"/\xa4\xa4\xbbD.jpg")  # Big5 name
    summary = scan(tmp_path, text)
    assert (summary.total_bytes, summary.requests, summary.malformed_lines) == (12, 2, 0)
    assert ("/\\xa4\\xa4\\xbbD.jpg", 7) in summary.top_urls()


def test_short_cloudfront_lines_are_used_when_needed_fields_exist(tmp_path):
    header = (
        "#Version: 1.0\n#Fields: date time x-edge-location sc-bytes c-ip cs-method cs(Host) cs-uri-stem "
        "sc-status cs(Referer) cs(User-Agent)\n"
    )
    full = "2017-08-24\t01:00:00\tHKG\t10\tip\tGET\th\t/a.jpg\t200\t-\tagent\n"
    short = "2017-08-24\t01:00:00\tHKG\t20\tip\tGET\th\t/b.jpg\n"  # ends after cs-uri-stem: still usable
    too_short = "2017-08-24\t01:00:00\tHKG\t40\tip\n"  # no cs-uri-stem: malformed
    longer = full.rstrip("\n") + "\textra\tcolumns\n"  # added columns: used
    summary = scan(tmp_path, header + full + short + too_short + longer)
    assert (summary.total_bytes, summary.malformed_lines) == (40, 1)


def test_fields_header_change_mid_file_relocates_columns(tmp_path):
    first = CF_HEADER + cf("2017-08-24", "01:00:00", 1, "/a.jpg")
    second = "#Version: 1.0\n#Fields: cs-uri-stem date sc-bytes time\n/b.jpg\t2017-08-24\t2\t01:00:00\n"
    for block_size in (32, 1 << 20):
        assert scan(tmp_path, first + second, block_size=block_size).total_bytes == 3


def test_gzip_and_stdin(tmp_path, monkeypatch):
    import io
    import sys

    text = CF_HEADER + cf("2017-08-24", "01:00:00", 21, "/a.jpg")
    assert scan(tmp_path, gzip.compress(text.encode()), name="log.gz").total_bytes == 21
    fake_stdin = io.TextIOWrapper(io.BufferedReader(io.BytesIO(gzip.compress(text.encode()))))
    monkeypatch.setattr(sys, "stdin", fake_stdin)
    assert log_scan.scan_log("-", BytesQuery()).total_bytes == 21


def test_empty_file_is_zero_lines(tmp_path):
    summary = scan(tmp_path, b"")
    assert (summary.total_bytes, summary.files[0].lines_read) == (0, 0)


def test_unknown_format_is_a_clear_error(tmp_path):
    with pytest.raises(log_scan.LogInputError, match="--format"):
        scan(tmp_path, "hello world\nnot a log\n")


def test_human_bytes():
    assert [log_scan.human_bytes(n) for n in (0, 1023, 1024, 1536, 3 * 2**30)] == [
        "0 B",
        "1023 B",
        "1.00 KiB",
        "1.50 KiB",
        "3.00 GiB",
    ]
