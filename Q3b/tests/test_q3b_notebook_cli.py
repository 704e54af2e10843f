"""The notebook executes end to end; the CLI writes outputs and turns user mistakes into one line + exit 2."""

from pathlib import Path

import nbformat
import pandas as pd
import pytest
from nbclient import NotebookClient

import lastfm_data
import recommender

Q3B = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_notebook_runs_end_to_end(tmp_path, monkeypatch, hetrec_plays):
    monkeypatch.setenv("Q3B_NOTEBOOK_DATA", str(tmp_path))
    monkeypatch.setenv("Q3B_NOTEBOOK_USERS", "800")
    notebook = nbformat.read(Q3B / "User-user Nearest Neighbours Prototype.ipynb", as_version=4)
    NotebookClient(notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(Q3B)}}).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 4  # data plots and evaluation charts
    text = "".join(o.get("text", "") for o in outputs)
    assert "sum of votes" in text and "Traceback" not in text
    assert (tmp_path / lastfm_data.PLAYS_FILE).exists()


def test_cli_generate_then_batch_writes_every_user(tmp_path, capsys):
    assert recommender.main(["generate", "--users", "300", "--out-dir", str(tmp_path)]) == 0
    out = tmp_path / "recs.tsv"
    assert recommender.main(["batch", "--data-dir", str(tmp_path), "--out", str(out), "-n", "5"]) == 0
    recs = pd.read_csv(out, sep="\t", keep_default_na=False)
    profiles, _ = lastfm_data.load_profiles(tmp_path / lastfm_data.PROFILES_FILE)
    assert set(profiles["user"]) <= set(recs["user"])
    assert (recs.groupby("user").size() == 5).all()
    assert (tmp_path / "recs_fallbacks.tsv").exists()
    # a second run must not overwrite without --force
    assert recommender.main(["batch", "--data-dir", str(tmp_path), "--out", str(out)]) == 2
    assert "--force" in capsys.readouterr().err


def test_cli_missing_and_unreadable_input_are_one_line_errors(tmp_path, capsys):
    assert recommender.main(["batch", "--data-dir", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no such file" in err and "generate" in err
    (tmp_path / lastfm_data.PLAYS_FILE).write_bytes(b"\xff\xfe bad bytes\tx\ty\t1\n")
    (tmp_path / lastfm_data.PROFILES_FILE).write_text("")
    assert recommender.main(["batch", "--data-dir", str(tmp_path), "--out", str(tmp_path / "r.tsv")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and lastfm_data.PLAYS_FILE in err


def test_cli_batch_writes_a_store_version(tmp_path, capsys):
    assert recommender.main(["generate", "--users", "200", "--out-dir", str(tmp_path)]) == 0
    url = f"sqlite:///{tmp_path / 'recs.db'}"
    out = tmp_path / "recs.parquet"
    assert recommender.main(["batch", "--data-dir", str(tmp_path), "--out", str(out), "--store", url, "-n", "3"]) == 0
    assert "stored as version 1" in capsys.readouterr().out
    assert (
        recommender.main(
            ["batch", "--data-dir", str(tmp_path), "--out", str(tmp_path / "b.parquet"), "--store", "nosuchscheme://x"]
        )
        == 2
    )
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_cli_evaluate_detects_hetrec_and_refuses_a_profile_file(hetrec_plays, tmp_path, capsys, monkeypatch):
    import rec_evaluation

    seen = {}

    def fake_evaluate(data, **options):  # the loading and routing are under test here, not the evaluation
        seen.update(users=len(data.users), countries=len(data.countries), extra=options["extra_models"])
        table = pd.DataFrame({"model": ["m"], "ndcg@10": [0.1], "precision@10": [0.1]})
        table.attrs["users_evaluated"] = 1
        return table

    monkeypatch.setattr(rec_evaluation, "evaluate", fake_evaluate)
    argv = ["evaluate", "--plays", str(hetrec_plays), "--out-dir", str(tmp_path)]
    assert recommender.main(argv) == 0
    assert seen["users"] == 1892 and seen["countries"] == 0
    assert list(seen["extra"]) == ["user-user (k=50, profile weight 0)"]  # no profiles: one plays-only row
    assert "no profile file" in capsys.readouterr().out
    assert recommender.main(argv + ["--profiles", str(hetrec_plays), "--force"]) == 2
    assert "HetRec data has no profile file" in capsys.readouterr().err
