"""User mistakes on the recommender CLI: exactly one stderr line naming the field/file and the fix, exit 2,
no traceback, nothing overwritten, and output/store problems found before any loading or computing."""
import subprocess
import sys
from pathlib import Path

import pytest

import lastfm_data
import recommender

Q3B = Path(__file__).resolve().parents[1]


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err and "usage:" not in err
    return err


@pytest.fixture
def no_work(monkeypatch):
    """Fail the test if the CLI starts loading inputs (the long work)."""
    def boom(*args, **kwargs):
        raise AssertionError("inputs were loaded before the command line was checked")
    monkeypatch.setattr(recommender, "load_inputs", boom)


@pytest.mark.parametrize("argv, field", [
    (["batch", "-n", "0"], "argument -n"),
    (["batch", "--neighbours", "0"], "argument --neighbours"),
    (["evaluate", "--neighbours", "-3"], "argument --neighbours"),
    (["evaluate", "--weights", "abc"], "argument --weights"),
    (["evaluate", "--max-users", "-1"], "argument --max-users"),
    (["batch", "-n", "x"], "argument -n"),
])
def test_bad_arguments_are_one_line(argv, field, capsys, no_work):
    with pytest.raises(SystemExit) as exit_info:
        recommender.main(argv)
    assert exit_info.value.code == 2
    err = _one_line(capsys)
    assert err.startswith(f"recommender.py {argv[0]}: error: {field}") and err.endswith("(see --help)")


def test_unreachable_postgres_store_is_one_line_before_loading(tmp_path, capsys, no_work):
    url = "postgresql://u:secret@127.0.0.1:1/x"
    assert recommender.main(["batch", "--store", url, "--data-dir", str(tmp_path / "nowhere"),
                             "--out", str(tmp_path / "r.tsv")]) == 2
    err = _one_line(capsys)
    assert "host 127.0.0.1 port 1 database x" in err and "start the server or fix the store URL" in err
    assert "secret" not in err
    assert not (tmp_path / "r.tsv").exists()


@pytest.mark.parametrize("name, expected", [("recs.csv", "unknown output type"), ("folder", "is a folder")])
def test_batch_checks_output_before_work(name, expected, small_lastfm, tmp_path, capsys, no_work):
    (tmp_path / "folder").mkdir()
    assert recommender.main(["batch", "--data-dir", str(small_lastfm[0]), "--out", str(tmp_path / name)]) == 2
    err = _one_line(capsys)
    assert name in err and expected in err and ".parquet" in err


def test_evaluate_refuses_existing_outputs_without_force(small_lastfm, tmp_path, capsys, no_work):
    (tmp_path / "evaluation.csv").write_text("keep me\n")
    assert recommender.main(["evaluate", "--data-dir", str(small_lastfm[0]), "--out-dir", str(tmp_path)]) == 2
    err = _one_line(capsys)
    assert "evaluation.csv" in err and "--force" in err
    assert (tmp_path / "evaluation.csv").read_text() == "keep me\n"


def test_binary_plays_file_is_one_clean_line(tmp_path):
    plays = tmp_path / "plays.tsv"
    plays.write_bytes(b"a" * 40 + b"\tm\tname\t3\n" + bytes(range(128, 256)) * 20 + b"\n")
    (tmp_path / "profiles.tsv").write_text("")
    result = subprocess.run([sys.executable, str(Q3B / "recommender.py"), "batch", "--plays", str(plays),
                             "--profiles", str(tmp_path / "profiles.tsv"), "--out", str(tmp_path / "r.tsv")],
                            capture_output=True)
    assert result.returncode == 2
    err = result.stderr.decode("utf-8").strip()  # also proves no raw garbage bytes are echoed
    assert err == f"recommender.py batch: {plays}: not UTF-8 text at line 2; the Last.fm files are UTF-8"
    assert not (tmp_path / "r.tsv").exists()


def test_first_non_utf8_line_across_chunks(tmp_path):
    path = tmp_path / "x.tsv"
    path.write_bytes("ä\n".encode() * 10 + "é".encode()[:1] + b"\n")
    assert lastfm_data.first_non_utf8_line(path, chunk_size=3) == 11
    path.write_bytes("ä\n".encode() * 10)
    assert lastfm_data.first_non_utf8_line(path, chunk_size=3) is None
