"""The command line: the walking-skeleton answer on the dummy log, JSON keys, exit codes, errors, plot."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

import dummy_log
import raw_data_analytics

SCRIPT = Path(raw_data_analytics.__file__)


def run_cli(*args, stdin=None):
    return subprocess.run([sys.executable, str(SCRIPT), *args], input=stdin, capture_output=True, timeout=120)


@pytest.fixture(scope="module")
def dummy_path(tmp_path_factory):
    return dummy_log.write_dummy_cdn_log(tmp_path_factory.mktemp("q2") / "dummy.log")


def test_dummy_total_equals_plain_python_sum(dummy_path, capsys):
    with open(dummy_path, newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    assert len(rows) == 100_000 and {r["url"].rsplit(".", 1)[1] for r in rows} == {"jpg", "js", "css"}
    expected = [int(r["size"]) for r in rows if "2017-08-24" <= r["date"] <= "2017-08-25" and r["url"].endswith(".jpg")]
    assert raw_data_analytics.main([str(dummy_path), "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert (got["total_bytes"], got["requests"], got["malformed_lines"]) == (sum(expected), len(expected), 0)
    assert sum(day["bytes"] for day in got["by_day"].values()) == sum(expected)
    files = got["files"][0]
    assert files["lines_read"] == 100_001 and files["comment_lines"] == 1


def test_dummy_generator_is_deterministic_and_never_overwrites(tmp_path, dummy_path):
    again = dummy_log.write_dummy_cdn_log(tmp_path / "again.log")
    assert again.read_bytes() == dummy_path.read_bytes()
    with pytest.raises(FileExistsError):
        dummy_log.write_dummy_cdn_log(again)


def cli(args, capsys):
    """Run main() in-process (a subprocess costs seconds of imports); returns (exit code, stdout, stderr)."""
    try:
        code = raw_data_analytics.main([str(a) for a in args])
    except SystemExit as exit_:  # argparse rejects bad arguments this way
        code = exit_.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_text_report_and_plot(dummy_path, tmp_path, capsys):
    png = tmp_path / "days.png"
    code, out, err = cli([dummy_path, "--ext", "jpg", "--ext", "css", "--plot", png], capsys)
    assert code == 0, err
    assert "total_bytes:" in out and "top 10 URL paths" in out and ".css" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    code, _out, err = cli([dummy_path, "--plot", png], capsys)  # never replaced without --overwrite
    assert code == 2 and "--overwrite" in err
    assert cli([dummy_path, "--plot", png, "--overwrite"], capsys)[0] == 0


def test_stdin_and_glob(dummy_path, capsys, monkeypatch):
    import io

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BufferedReader(io.BytesIO(dummy_path.read_bytes()))))
    from_stdin = json.loads(cli(["-", "--json"], capsys)[1])
    from_glob = json.loads(cli([dummy_path.parent / "dumm*.log", "--json"], capsys)[1])
    assert from_stdin["total_bytes"] == from_glob["total_bytes"] > 0


def test_strict_turns_malformed_lines_into_exit_1(tmp_path, capsys):
    log = tmp_path / "bad.log"
    log.write_text('1.2.3.4 - - [24/Aug/2017:10:00:00 +0000] "GET /a.jpg HTTP/1.1" 200 5\nnot a log line\n')
    assert cli([log], capsys)[0] == 0
    code, _out, err = cli([log, "--strict"], capsys)
    assert code == 1 and f"{log}:2: malformed" in err


@pytest.mark.parametrize(
    "args, message",
    [
        (["/no/such/file.log"], "no such file"),
        (["--start", "2017-08-32"], "YYYY-MM-DD"),
        (["--start", "2017-08-26", "--end", "2017-08-24"], "after"),
        (["--tz", "Mars/Olympus"], "time zone"),
    ],
)
def test_user_mistakes_give_one_line_and_exit_2(args, message, capsys):
    code, _out, err = cli(args, capsys)
    assert code == 2 and message in err and "Traceback" not in err


def test_unknown_format_is_one_line_without_traceback(tmp_path):
    log = tmp_path / "x.log"
    log.write_text("hello\n")
    result = run_cli(str(log))  # a real process, to see exactly what a user sees
    assert result.returncode == 1 and "--format" in result.stderr.decode()
    assert len(result.stderr.decode().strip().splitlines()) == 1


def test_script_and_main_give_the_same_answer_and_plot(dummy_path, tmp_path, capsys):
    png = tmp_path / "days.png"
    result = run_cli(str(dummy_path), "--json", "--plot", str(png))
    assert result.returncode == 0, result.stderr.decode()
    code, out, _err = cli([dummy_path, "--json"], capsys)
    assert code == 0 and json.loads(result.stdout) == json.loads(out)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
