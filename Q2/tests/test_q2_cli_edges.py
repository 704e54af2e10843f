"""Rough edges of the command line: directories and a repeated '-' as LOG, files with no content lines, and how
malformed-line reasons show the bad field."""

import io
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import log_engine
import log_formats
import log_scan
import raw_data_analytics
from log_scan import BytesQuery
from test_q2_user_errors import CLF_LINE, cli, one_line_error


def test_a_directory_as_log_is_one_line_naming_it_and_the_fix(tmp_path, capsys, monkeypatch):
    (tmp_path / "a.log").write_bytes(CLF_LINE)
    monkeypatch.setattr(raw_data_analytics.log_scan, "scan_log", _refuse_scan)
    one_line_error(
        [tmp_path], capsys, f"{tmp_path}: is a directory; give log files or a glob such as '{tmp_path}/*.log'"
    )


def test_a_glob_matching_a_directory_is_the_same_error(tmp_path, capsys, monkeypatch):
    (tmp_path / "a.log").write_bytes(CLF_LINE)
    (tmp_path / "old.log").mkdir()
    monkeypatch.setattr(raw_data_analytics.log_scan, "scan_log", _refuse_scan)
    one_line_error([tmp_path / "*.log"], capsys, f"{tmp_path / 'old.log'}: is a directory; give log files")


def _refuse_scan(*args, **kwargs):
    raise AssertionError("the scan started before the LOG arguments were checked")


@pytest.mark.parametrize("args", [["-", "-"], ["-", "{log}", "-"]])
def test_stdin_given_twice_is_refused_before_scanning(tmp_path, capsys, monkeypatch, args):
    log = tmp_path / "a.log"
    log.write_bytes(CLF_LINE)
    monkeypatch.setattr(raw_data_analytics.log_scan, "scan_log", _refuse_scan)
    one_line_error([a.format(log=log) for a in args], capsys, "error: stdin ('-') can be read only once")


def test_stdin_once_still_works(capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BufferedReader(io.BytesIO(CLF_LINE * 3))))
    code, out, err = cli(["-", "--json"], capsys)
    assert code == 0, err
    assert '"total_bytes": 15' in out


# content, blank lines, comment lines (counted by hand)
NO_CONTENT = [
    (b"", 0, 0),
    (b"\n", 1, 0),
    (b"\n\n", 2, 0),
    (b"\r\n \t\r\n   ", 3, 0),  # CRLF, whitespace, a last line without '\n'
    (b"\xef\xbb\xbf\n\n", 2, 0),  # byte-order mark, then blank lines
    (b"# exported by tool\n\n# nothing today\n", 1, 2),
    (b"\n" * 5000, 5000, 0),  # more lines than detection samples, several blocks
]


@pytest.mark.parametrize("content, blank, comment", NO_CONTENT, ids=[f"case{i}" for i in range(len(NO_CONTENT))])
@pytest.mark.parametrize("fmt", [None, "clf", "tsv"])
def test_a_file_without_content_lines_is_zero_records_like_the_empty_file(tmp_path, content, blank, comment, fmt):
    path = tmp_path / "quiet.log"
    path.write_bytes(content)
    summary = log_scan.scan_log(str(path), BytesQuery(), fmt, block_size=1000)
    (acc,) = summary.files
    assert (summary.total_bytes, summary.requests) == (0, 0)
    assert (acc.lines_read, acc.blank_lines, acc.comment_lines) == (blank + comment, blank, comment)
    assert acc.is_balanced() and acc.malformed_lines == 0
    assert acc.format == (fmt or "empty")


def test_a_file_without_content_lines_on_the_command_line(tmp_path, capsys):
    path = tmp_path / "blank.log"
    path.write_bytes(b"\n\n")
    code, out, err = cli([path], capsys)
    assert code == 0 and err == "", err
    assert f"{path} [empty]: 2 = 0 + 0 + 0 + 0 + 2" in out


def test_content_after_many_blank_lines_is_still_an_undetectable_format_error(tmp_path):
    path = tmp_path / "late.log"
    path.write_bytes(b"\n" * 3000 + b"hello world\n")
    with pytest.raises(
        log_scan.LogInputError,
        match=r"cannot detect the log format from line 3001 "
        r"\(first 80 chars: hello world\); pass --format",
    ):
        log_scan.scan_log(str(path), BytesQuery(), block_size=1000)


@pytest.mark.parametrize(
    "fmt, line, reason",
    [
        ("tsv", b"2017-08-24\t10:00:00\t1234567890123456789\t/a.jpg", "bad size '1234567890123456789'"),
        ("tsv", b"2017-02-30\t10:00:00\t5\t/a.jpg", "bad date '2017-02-30'"),
        ("tsv", b"2017-08-24\t25:00:00\t5\t/a.jpg", "bad time '25:00:00'"),
        ("tsv", b"2017-08-24\t10:00:00\t\xa4\xa4\t/a.jpg", "bad size '\\xa4\\xa4'"),
        ("tsv", "2017-08-24\t10:00:00\t五\t/a.jpg".encode(), "bad size '五'"),
        (
            "clf",
            b'1.2.3.4 - - [24/Bug/2017:10:00:00 +0000] "GET /a.jpg HTTP/1.1" 200 5',
            "bad time '24/Bug/2017:10:00:00 +0000' (layout clf)",
        ),
        ("clf", b'1.2.3.4 - - [24/Aug/2017:10:00:00 +0099] "GET /a.jpg HTTP/1.1" 200 5', "bad UTC offset '+0099'"),
    ],
)
def test_malformed_reasons_show_the_field_as_text_not_a_bytes_literal(fmt, line, reason):
    header = b"date\ttime\tsize\turl\n" if fmt == "tsv" else b""
    parsed = log_engine.parse_block(header + line + b"\n", log_formats.FORMATS[fmt])
    assert (parsed.malformed_lines, parsed.comment_lines, parsed.records.num_rows) == (1, len(header) > 0, 0)
    assert parsed.malformed_examples[0][1] == reason


def test_malformed_reason_on_the_command_line(tmp_path, capsys):
    path = tmp_path / "odd.tsv"
    path.write_bytes(b"date\ttime\tsize\turl\n2017-08-24\t10:00:00\t1234567890123456789\t/a.jpg\n")
    code, out, err = cli([path], capsys)
    assert f"{path}:2: malformed (bad size '1234567890123456789'): " in err, err
    assert "b'" not in err


quiet_lines = st.lists(st.text(alphabet=" \t\r\x0b\x0c#x", max_size=6).map(str.encode), max_size=40)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=quiet_lines, last_newline=st.booleans(), block_size=st.sampled_from([5, 1 << 20]))
def test_blank_and_comment_counting_without_a_format(tmp_path_factory, lines, last_newline, block_size):
    """Without a format: 0 records and the blank/comment counts of --format clf, or the undetectable error naming
    the first content line (not blank by ASCII whitespace, not starting with '#')."""
    path = tmp_path_factory.mktemp("quiet") / "q.log"
    content = b"\n".join(lines) + (b"\n" if last_newline and lines else b"")
    if content.startswith(b"\xef\xbb\xbf"):
        return
    path.write_bytes(content)
    clf = log_scan.scan_log(str(path), BytesQuery(), "clf", block_size=block_size).files[0]
    first_content = next(
        (
            i
            for i, line in enumerate(content.split(b"\n"), 1)
            if line.strip(b" \t\r\x0b\x0c") and not line.startswith(b"#")
        ),
        None,
    )
    if first_content is None:
        acc = log_scan.scan_log(str(path), BytesQuery(), block_size=block_size).files[0]
        assert (acc.format, acc.lines_read, acc.blank_lines, acc.comment_lines) == (
            "empty",
            clf.lines_read,
            clf.blank_lines,
            clf.comment_lines,
        )
    else:  # within the detection sample the message names the first non-blank line (a comment, possibly)
        first_non_blank = next(i for i, line in enumerate(content.split(b"\n"), 1) if line.strip())
        with pytest.raises(
            log_scan.LogInputError, match=f"cannot detect the log format from line ({first_non_blank}|{first_content}) "
        ):
            log_scan.scan_log(str(path), BytesQuery(), block_size=block_size)


def test_a_file_named_twice_or_also_by_a_glob_is_counted_once(tmp_path, capsys):
    (tmp_path / "a.log").write_bytes(CLF_LINE * 3)
    (tmp_path / "b.log").write_bytes(CLF_LINE)
    once = cli([tmp_path / "a.log", tmp_path / "b.log", "--json"], capsys)
    assert once[0] == 0 and '"total_bytes": 20' in once[1]
    twice = cli([tmp_path / "a.log", tmp_path / "*.log", tmp_path / "a.log", "--json"], capsys)
    assert twice == once
