"""User mistakes: exactly one line on stderr naming the file/option and the fix, no traceback; exit code 2 for a bad
argument, 1 for a file that is skipped (the other files' counts stand)."""

import gzip
import json
import os

import pytest

import raw_data_analytics

CLF_LINE = b'1.2.3.4 - - [24/Aug/2017:10:00:00 +0000] "GET /a.jpg HTTP/1.1" 200 5\n'


def cli(args, capsys):
    try:
        code = raw_data_analytics.main([str(a) for a in args])
    except SystemExit as exit_:
        code = exit_.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_line_error(args, capsys, *needles, code=2):
    got, out, err = cli(args, capsys)
    assert got == code, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    for needle in needles:
        assert needle in err, err
    return err.strip()


def _gzip_cases(tmp_path):
    good = gzip.compress(CLF_LINE * 200)
    cases = {
        "junk.gz": b"\x1f\x8b" + b"junk" * 10,  # magic, then junk
        "badblock.gz": good[:10] + b"garbage garbage garbage garbage",  # valid header, corrupt deflate data
        "truncated.gz": good[: len(good) // 2],  # cut in the middle
        "no_gz_suffix.log": b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03" + os.urandom(64),
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
    return [tmp_path / name for name in cases]


def test_corrupt_or_truncated_gzip_names_the_file(tmp_path, capsys):
    for path in _gzip_cases(tmp_path):
        one_line_error([path], capsys, f"{path}: compressed data is truncated or corrupt (", code=1)


@pytest.mark.parametrize(
    "content, shown",
    [
        (b"# offsite-test\n\nSome README text\n", "line 1 (first 80 chars: # offsite-test)"),
        (b"\n\n" + bytes(range(1, 256)) * 4 + b"\n", "line 3 (first 80 chars: \\x01\\x02"),
    ],
)
def test_undetectable_format_names_file_line_and_short_sample(tmp_path, capsys, content, shown):
    path = tmp_path / "mystery.log"
    path.write_bytes(content)
    err = one_line_error(
        [path], capsys, f"{path}: cannot detect the log format from ", shown, "; pass --format {tsv,cloudfront,", code=1
    )
    sample = err.split("first 80 chars: ", 1)[1].split("); pass --format", 1)[0]
    assert len(sample) <= 80


@pytest.mark.parametrize("fmt", [[], ["--format", "tsv"]])
def test_tsv_header_without_a_needed_column(tmp_path, capsys, fmt):
    path = tmp_path / "nourl.tsv"
    path.write_bytes(b"date\ttime\tsize\tpath\n2017-08-24\t10:00:00\t5\t/a.jpg\n")
    one_line_error([path, *fmt], capsys, f"{path}: line 2: the header at line 1 has no url column", code=1)


def test_cloudfront_fields_line_without_a_needed_column(tmp_path, capsys):
    path = tmp_path / "cf.log"
    path.write_bytes(b"#Version: 1.0\n#Fields: date time sc-bytes x-edge-location\n2017-08-24\t10:00:00\t5\tHKG\n")
    one_line_error([path], capsys, f"{path}: line 3: the header at line 2 has no cs-uri-stem column", code=1)


@pytest.mark.parametrize(
    "args, needles",
    [
        (
            ["--start", "2017-13-01"],
            ["error: argument --start: '2017-13-01' is not a date in YYYY-MM-DD form (see --help)"],
        ),
        (
            ["--start", "2017-08-26", "--end", "2017-08-24"],
            ["error: argument --start: 2017-08-26 is after --end 2017-08-24"],
        ),
        (["--tz", "Mars/Olympus"], ["error: argument --tz: 'Mars/Olympus' is not an IANA time zone"]),
        (["--format", "apache"], ["error: argument --format: invalid choice: 'apache'", "(see --help)"]),
        (["--ext", ""], ["error: argument --ext: '' is not a file extension"]),
        (["--ext", "."], ["error: argument --ext: '.' is not a file extension"]),
        (["--ext", "jpg", "--ext", " "], ["error: argument --ext: ' ' is not a file extension"]),
    ],
)
def test_argument_errors_are_one_line(args, needles, capsys):
    err = one_line_error(args, capsys, *needles)
    assert "usage:" not in err


@pytest.fixture
def tiny_log(tmp_path):
    path = tmp_path / "tiny.log"
    path.write_bytes(CLF_LINE)
    return path


def _no_scan(monkeypatch):
    """Fail the test if the scan starts: path checks must come before the long work."""

    def refuse(*args, **kwargs):
        raise AssertionError("scan started before the --plot path was checked")

    monkeypatch.setattr(raw_data_analytics.log_scan, "scan_log", refuse)


@pytest.mark.parametrize(
    "plot, needle",
    [
        ("missing_dir/x.png", "folder {tmp}/missing_dir does not exist; create it first"),
        ("x.txt", "the plot is a PNG image; give a file name ending in .png"),
        ("noext", "the plot is a PNG image; give a file name ending in .png"),
        ("adir.png", "is a directory"),
    ],
)
def test_bad_plot_path_refused_before_scanning(tmp_path, tiny_log, capsys, monkeypatch, plot, needle):
    (tmp_path / "adir.png").mkdir()
    _no_scan(monkeypatch)
    one_line_error(
        [tiny_log, "--plot", tmp_path / plot], capsys, f"--plot {tmp_path / plot}: ", needle.format(tmp=tmp_path)
    )
    assert not (tmp_path / "missing_dir").exists() and not (tmp_path / "noext.png").exists()
    assert not (tmp_path / "x.txt").exists() and not (tmp_path / "noext").exists()


def test_existing_plot_is_not_overwritten_and_report_names_it(tmp_path, tiny_log, capsys, monkeypatch):
    png = tmp_path / "days.png"
    code, out, err = cli([tiny_log, "--plot", png], capsys)
    assert code == 0, err
    assert f"plot of bytes per day written to {png}" in out
    written = png.read_bytes()
    assert written[:8] == b"\x89PNG\r\n\x1a\n"
    png.write_bytes(b"keep me")
    _no_scan(monkeypatch)
    one_line_error([tiny_log, "--plot", png], capsys, f"--plot {png}: exists; pass --overwrite to replace it")
    assert png.read_bytes() == b"keep me"
    monkeypatch.undo()
    code, out, err = cli([tiny_log, "--plot", png, "--overwrite", "--json"], capsys)
    assert code == 0 and json.loads(out)["total_bytes"] == 5 and png.read_bytes()[:4] == b"\x89PNG"
    assert err == f"plot of bytes per day written to {png}\n"


def _drawn_figure(monkeypatch, tmp_path, summary, query):
    """Run plot_bytes_per_day and return its figure (captured at savefig) and the written file."""
    import matplotlib.figure

    captured = {}
    real_savefig = matplotlib.figure.Figure.savefig

    def savefig(fig, *args, **kwargs):
        captured["fig"] = fig
        return real_savefig(fig, *args, **kwargs)

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", savefig)
    png = tmp_path / "days.png"
    raw_data_analytics.log_scan.plot_bytes_per_day(summary, str(png), query)
    return captured["fig"], png


def test_plot_has_every_day_of_the_range_on_a_date_axis(tmp_path, monkeypatch):
    import datetime as dt

    import matplotlib.dates as mdates

    log_scan = raw_data_analytics.log_scan
    summary = log_scan.BytesSummary(total_bytes=3 * 2**20, requests=2)
    summary.by_day["2017-08-24"] = [2**20, 1]
    summary.by_day["2017-08-26"] = [2 * 2**20, 1]
    query = log_scan.BytesQuery(("jpg",), dt.date(2017, 8, 23), dt.date(2017, 8, 27), tz="Asia/Hong_Kong")
    fig, png = _drawn_figure(monkeypatch, tmp_path, summary, query)
    ax = fig.axes[0]
    bars = sorted((mdates.num2date(p.get_x() + p.get_width() / 2).date(), p.get_height()) for p in ax.patches)
    assert bars == [(dt.date(2017, 8, 23 + i), mib) for i, mib in enumerate([0, 1, 0, 2, 0])]
    assert "2017-08-23 to 2017-08-27" in ax.get_title() and ".jpg" in ax.get_title()
    assert "Asia/Hong_Kong" in ax.get_title() and ax.get_ylim()[0] == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_without_matching_requests_says_so(tmp_path, monkeypatch):
    log_scan = raw_data_analytics.log_scan
    fig, _png = _drawn_figure(monkeypatch, tmp_path, log_scan.BytesSummary(), log_scan.BytesQuery(("gif",)))
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.texts] == ["no matching requests"]
    assert ax.get_ylim()[0] == 0 and all(p.get_height() == 0 for p in ax.patches)


def test_default_dummy_log_is_reported_with_a_relative_path(capsys, monkeypatch, tmp_path):
    # A stand-in checkout in tmp_path, so the test neither depends on nor writes the real Q2/data/.
    monkeypatch.setattr(raw_data_analytics, "DUMMY_LOG", tmp_path / "Q2" / "data" / "dummy_cdn.log")
    monkeypatch.chdir(tmp_path)
    code, out, err = cli(["--json"], capsys)
    assert code == 0, err
    assert "wrote the dummy CDN log to Q2/data/dummy_cdn.log" in err
    assert json.loads(out)["files"][0]["source"] == "Q2/data/dummy_cdn.log"


def test_default_run_that_cannot_write_the_dummy_log_says_to_pass_a_log(capsys, monkeypatch, tmp_path):
    # A file where the data folder should be stands in for a read-only checkout (root may write anywhere else).
    (tmp_path / "Q2").mkdir()
    (tmp_path / "Q2" / "data").write_text("not a folder")
    monkeypatch.setattr(raw_data_analytics, "DUMMY_LOG", tmp_path / "Q2" / "data" / "dummy_cdn.log")
    monkeypatch.chdir(tmp_path)
    code, out, err = cli([], capsys)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "cannot write the dummy CDN log to Q2/data/dummy_cdn.log" in err
    assert "pass a LOG file" in err
