"""User mistakes on the recommender CLI: exactly one stderr line naming the field/file and the fix, exit 2,
no traceback, nothing overwritten, and output/store problems found before any loading or computing."""

import subprocess
import sys
from pathlib import Path

import pandas as pd
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


@pytest.mark.parametrize(
    "argv, field",
    [
        (["batch", "-n", "0"], "argument -n"),
        (["batch", "--neighbours", "0"], "argument --neighbours"),
        (["evaluate", "--neighbours", "-3"], "argument --neighbours"),
        (["evaluate", "--weights", "abc"], "argument --weights"),
        (["evaluate", "--max-users", "-1"], "argument --max-users"),
        (["batch", "-n", "x"], "argument -n"),
    ],
)
def test_bad_arguments_are_one_line(argv, field, capsys, no_work):
    with pytest.raises(SystemExit) as exit_info:
        recommender.main(argv)
    assert exit_info.value.code == 2
    err = _one_line(capsys)
    assert err.startswith(f"recommender.py {argv[0]}: error: {field}") and err.endswith("(see --help)")


def test_unreachable_postgres_store_is_one_line_before_loading(tmp_path, capsys, no_work):
    url = "postgresql://u:secret@127.0.0.1:1/x"
    assert (
        recommender.main(
            ["batch", "--store", url, "--data-dir", str(tmp_path / "nowhere"), "--out", str(tmp_path / "r.tsv")]
        )
        == 2
    )
    err = _one_line(capsys)
    assert "host 127.0.0.1 port 1 database x" in err and "start the server or fix the store URL" in err
    assert "secret" not in err
    assert not (tmp_path / "r.tsv").exists()


@pytest.mark.parametrize("store", ["dir", "not a database"])
def test_unusable_sqlite_store_is_one_line_before_loading(store, tmp_path, capsys, no_work):
    (tmp_path / "dir").mkdir()
    (tmp_path / "not a database").write_text("user\tartist\n" * 200, encoding="utf-8")
    original = (tmp_path / "not a database").read_bytes()
    url = f"sqlite:///{tmp_path / store}"  # a folder where the file should be; a file that is not SQLite
    assert (
        recommender.main(
            ["batch", "--store", url, "--data-dir", str(tmp_path / "nowhere"), "--out", str(tmp_path / "r.tsv")]
        )
        == 2
    )
    assert _one_line(capsys).startswith(f"recommender.py batch: --store {url}: ")
    assert (tmp_path / "not a database").read_bytes() == original


@pytest.mark.parametrize(
    "name, expected", [("recs.csv", "unknown output type"), ("folder", "is a folder"), ("", "is a folder")]
)
def test_batch_checks_output_before_work(name, expected, small_lastfm, tmp_path, capsys, no_work):
    (tmp_path / "folder").mkdir()
    out = str(tmp_path / name) if name else ""  # an empty --out is the current folder
    assert recommender.main(["batch", "--data-dir", str(small_lastfm[0]), "--out", out]) == 2
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
    result = subprocess.run(
        [
            sys.executable,
            str(Q3B / "recommender.py"),
            "batch",
            "--plays",
            str(plays),
            "--profiles",
            str(tmp_path / "profiles.tsv"),
            "--out",
            str(tmp_path / "r.tsv"),
        ],
        capture_output=True,
    )
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


# --- small and degenerate inputs ------------------------------------------------------------------------------


def _sha(i: int) -> str:
    return f"{i:040x}"


def _write_lastfm(folder: Path, plays_rows, profile_users) -> Path:
    """Last.fm-format files (tab-separated, no header, quoting off) from (user, mbid, name, plays) rows."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / lastfm_data.PLAYS_FILE).write_text(
        "".join(f"{u}\t{m}\t{a}\t{p}\n" for u, m, a, p in plays_rows), encoding="utf-8"
    )
    (folder / lastfm_data.PROFILES_FILE).write_text(
        "".join(f"{u}\tm\t25\tUnited States\tFeb 1, 2007\n" for u in profile_users), encoding="utf-8"
    )
    return folder


def _read_tsv(path: Path):
    """The way our loaders read: split each line on tabs, no quoting."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return lines[0].split("\t"), [line.split("\t") for line in lines[1:]]


def test_batch_summary_counts_every_user(tmp_path, capsys):
    # 2 artists with listeners: user 3 (cold) gets 2 of 2, users 1/2 the other one (nothing else is left)
    folder = _write_lastfm(
        tmp_path / "in", [(_sha(1), "m1", "A", 5), (_sha(2), "m2", "B", 3)], [_sha(i) for i in (1, 2, 3)]
    )
    argv = ["batch", "--data-dir", str(folder), "-n", "2", "--neighbours", "1", "--out", str(tmp_path / "r.tsv")]
    assert recommender.main(argv) == 0
    out = capsys.readouterr().out
    assert "3 users (of either file)" in out
    assert "1 users got 2 rows, 2 fewer, 0 none (2 with no artist left that they have not played" in out, out


@pytest.mark.parametrize(
    "plays_rows, users",
    [
        ([(_sha(1), "m1", "A", 10)], [_sha(1)]),  # one user with plays: nobody to be a neighbour
        ([(_sha(1), "m1", "A", 0), (_sha(2), "m2", "B", 0)], [_sha(1), _sha(2), _sha(3)]),  # only 0-play rows
    ],
)
def test_too_few_users_with_plays_for_the_neighbours_is_one_line(plays_rows, users, tmp_path, capsys):
    folder = _write_lastfm(tmp_path / "in", plays_rows, users)
    argv = ["batch", "--data-dir", str(folder), "--neighbours", "1", "--out", str(tmp_path / "r.tsv")]
    assert recommender.main(argv) == 2
    err = _one_line(capsys)
    assert "k=1 neighbours needs at least 2 users with plays" in err and "--neighbours" in err
    assert not (tmp_path / "r.tsv").exists()


def test_plays_file_with_no_usable_row_is_one_line_before_the_model(tmp_path, capsys):
    folder = _write_lastfm(tmp_path / "in", [(_sha(1), "m1", "A", "many")], [_sha(1), _sha(2)])
    argv = ["batch", "--data-dir", str(folder), "--neighbours", "1", "--out", str(tmp_path / "r.tsv")]
    assert recommender.main(argv) == 2
    err = _one_line(capsys)
    assert "no usable row" in err and "nothing written" in err
    assert not (tmp_path / "r.tsv").exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["batch", "--profile-weight", "-1"],
        ["batch", "--profile-weight", "nan"],
        ["batch", "--profile-weight", "inf"],
        ["evaluate", "--weights", "0,-1"],
        ["evaluate", "--weights", "nan"],
        ["evaluate", "--weights", "0.1,inf"],
    ],
)
def test_weights_must_be_finite_and_non_negative(argv, capsys, no_work):
    with pytest.raises(SystemExit) as exit_info:
        recommender.main(argv)
    assert exit_info.value.code == 2
    err = _one_line(capsys)
    assert f"argument {argv[1]}" in err and "finite number >= 0" in err


def test_evaluate_without_holdout_users_is_one_line_and_writes_nothing(tmp_path, capsys):
    folder = _write_lastfm(
        tmp_path / "in", [(_sha(1), "m1", "A", 3), (_sha(2), "m1", "A", 2), (_sha(2), "m2", "B", 1)], [_sha(1), _sha(2)]
    )
    (tmp_path / "ev").mkdir()
    assert recommender.main(["evaluate", "--data-dir", str(folder), "--out-dir", str(tmp_path / "ev")]) == 2
    err = _one_line(capsys)
    assert err.startswith("recommender.py evaluate: no user has at least 5 artists, so the 20% holdout is empty")
    assert not list((tmp_path / "ev").iterdir())


def test_batch_tsv_is_unquoted_and_names_round_trip(tmp_path):
    names = ['"Weird Al" Yankovic', '"unterminated', "  Björk  ", "Guns N' Roses"]
    rows = [(_sha(u), f"m{a}", names[a], 1 + u + a) for u in range(4) for a in range(4) if (u + a) % 4 != 3]
    folder = _write_lastfm(tmp_path / "in", rows, [_sha(u) for u in range(4)])
    argv = ["batch", "--data-dir", str(folder), "--neighbours", "2", "--out", str(tmp_path / "r.tsv")]
    assert recommender.main(argv) == 0
    for path in (tmp_path / "r.tsv", tmp_path / "r_fallbacks.tsv"):
        header, lines = _read_tsv(path)
        got = {line[header.index("artist_name")] for line in lines}
        assert got and got <= set(names), got
    assert '"Weird Al" Yankovic' in {line[3] for line in _read_tsv(tmp_path / "r_fallbacks.tsv")[1]}


def test_generate_with_missing_reference_is_an_error(tmp_path, capsys):
    assert (
        recommender.main(
            ["generate", "--users", "5", "--reference", str(tmp_path / "nope.tsv"), "--out-dir", str(tmp_path / "g")]
        )
        == 2
    )
    err = _one_line(capsys)
    assert "nope.tsv: no such file" in err
    assert not (tmp_path / "g").exists()


def test_out_equal_to_an_input_is_refused_even_with_force(tmp_path, capsys, no_work):
    folder = _write_lastfm(tmp_path / "in", [(_sha(1), "m1", "A", 3)], [_sha(1)])
    plays = folder / lastfm_data.PLAYS_FILE
    before = plays.read_bytes()
    assert recommender.main(["batch", "--data-dir", str(folder), "--out", str(plays), "--force"]) == 2
    assert "is an input file" in _one_line(capsys)
    assert plays.read_bytes() == before


def test_out_into_a_missing_folder_is_an_error(tmp_path, capsys, no_work):
    folder = _write_lastfm(tmp_path / "in", [(_sha(1), "m1", "A", 3)], [_sha(1)])
    assert recommender.main(["batch", "--data-dir", str(folder), "--out", str(tmp_path / "no" / "r.tsv")]) == 2
    assert "does not exist" in _one_line(capsys)
    assert not (tmp_path / "no").exists()


def test_cold_start_users_get_more_than_the_fallback_size(tmp_path):
    import q3b_popularity

    n = q3b_popularity.FALLBACK_SIZE + 50
    rows = [(_sha(1), f"m{a}", f"artist {a}", 1 + a) for a in range(n + 10)] + [(_sha(2), "m0", "artist 0", 4)]
    folder = _write_lastfm(tmp_path / "in", rows, [_sha(1), _sha(2), _sha(3)])
    argv = ["batch", "--data-dir", str(folder), "-n", str(n), "--neighbours", "1", "--out", str(tmp_path / "r.tsv")]
    assert recommender.main(argv) == 0
    header, lines = _read_tsv(tmp_path / "r.tsv")
    per_user = {}
    for line in lines:
        per_user[line[0]] = per_user.get(line[0], 0) + 1
    assert per_user[_sha(3)] == n  # cold start: country/global charts only
    assert per_user[_sha(2)] == n


@pytest.mark.parametrize("command, shown", [("batch", "(default: 20)"), ("evaluate", "(default: 5000)")])
def test_help_shows_defaults(command, shown, capsys):
    with pytest.raises(SystemExit):
        recommender.main([command, "--help"])
    assert shown in capsys.readouterr().out


def test_default_scratch_output_folder_may_be_missing_on_a_fresh_clone(tmp_path, monkeypatch):
    """Q3b/out does not exist in a fresh clone: the default --out must pass the check (the folder is made later),
    while any other missing folder is still refused."""
    monkeypatch.setattr(recommender, "OUT_DIR", tmp_path / "out")
    recommender.check_output(tmp_path / "out" / "recommendations.parquet", force=False)
    recommender.check_output(tmp_path / "out" / "demo" / "recommendations.parquet", force=False)
    assert not (tmp_path / "out").exists()
    with pytest.raises(recommender.UserError, match="does not exist"):
        recommender.check_output(tmp_path / "elsewhere" / "recommendations.parquet", force=False)


def test_spark_options_without_the_spark_engine_are_one_line(small_lastfm, tmp_path, capsys, no_work):
    for option in (["--master", "local[2]"], ["--partitions", "3"]):
        code = recommender.main(
            ["batch", "--data-dir", str(small_lastfm), "--out", str(tmp_path / "r.parquet"), *option]
        )
        assert code == 2
        assert _one_line(capsys).endswith(
            f"{option[0]} goes with --engine spark; add --engine spark or leave {option[0]} out"
        )


def test_batch_on_hetrec_plays_without_a_profiles_file(hetrec_plays, tmp_path, capsys):
    out = tmp_path / "recs.parquet"
    assert recommender.main(["batch", "--data-dir", str(hetrec_plays.parent), "--out", str(out), "-n", "5"]) == 0
    recs = pd.read_parquet(out)
    plays = pd.read_csv(hetrec_plays, sep="\t")
    assert recs["user"].nunique() == plays["userID"].nunique() and len(recs) == 5 * plays["userID"].nunique()
