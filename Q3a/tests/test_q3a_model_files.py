"""Saved model files (skops, nothing executed on load) and the predict command: every bad --model file and bad
option is one stderr line and exit 2; --out - is stdout; rows with empty text stay in the output."""

import io
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import pandas as pd
import pytest
import skops.io

import tagger_store
from article_data import load_articles
from tagger_model import predict_tags, train_tagger
from tagger_store import load_model, save_model
from tagging_prediction import main
from test_q3a_cli_errors import assert_one_error_line

Q3A = Path(__file__).resolve().parents[1]
CLI = str(Q3A / "tagging_prediction.py")


@pytest.fixture(scope="module")
def demo_model(tmp_path_factory):
    articles = load_articles(Q3A / "demo" / "demo_train.csv")
    # A small forest keeps this fixture fast; the model file does not depend on its size.
    result = train_tagger(
        articles.texts, articles.tags, articles.ids, param_grid={"forest__n_estimators": [10]}, n_jobs=1
    )
    path = tmp_path_factory.mktemp("model") / "model.skops"
    save_model(path, result.model, result.off_topic, {"cv_accuracy_mean": 1.0}, demo=True)
    return path, result


class WritesAFile:
    """Unpickling this runs ``open(marker, "w")``: the file appears only if a loader executed the pickle."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_crafted_pickle_is_refused_without_running_its_code(tmp_path, capsys):
    marker = tmp_path / "code_ran.txt"
    for name in ("model.skops", "model.joblib", "model.pkl"):
        crafted = tmp_path / name
        crafted.write_bytes(pickle.dumps({"kind": "q3a-cantonese-tagger", "model": WritesAFile(marker)}))
        code = main(["predict", "--model", str(crafted), "--input", str(Q3A / "demo" / "demo_test.csv")])
        assert code == 2
        assert_one_error_line(capsys.readouterr().err, str(crafted), "pickle and joblib files are refused")
    assert not marker.exists()
    # The check itself: pickle.loads would have created it.
    pickle.loads(crafted.read_bytes())["model"].close()
    assert marker.exists()


def test_skops_file_with_foreign_types_is_refused_before_loading(tmp_path, capsys):
    path = tmp_path / "foreign.skops"
    skops.io.dump({"kind": "q3a-cantonese-tagger", "call": subprocess.run}, path)
    assert main(["predict", "--model", str(path), "--input", str(Q3A / "demo" / "demo_test.csv")]) == 2
    assert_one_error_line(capsys.readouterr().err, "would create types this tool does not write", "subprocess.run")


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p.mkdir(), "is a folder"),
        (lambda p: p.write_bytes(b""), "not a skops archive"),
        (lambda p: p.write_bytes(b"not a model \x00\x01"), "not a skops archive"),
        (lambda p: zipfile.ZipFile(p, "w").writestr("hello.txt", "hi"), "not a readable tagger model"),
        (lambda p: skops.io.dump({"something": "else"}, p), "not a tagger model saved by"),
        (lambda p: skops.io.dump([1, 2, 3], p), "not a tagger model saved by"),
    ],
)
def test_every_bad_model_file_is_one_line_and_exit_2(tmp_path, capsys, make, message):
    path = tmp_path / "bad.skops"
    make(path)
    assert main(["predict", "--model", str(path), "--input", str(Q3A / "demo" / "demo_test.csv")]) == 2
    assert_one_error_line(capsys.readouterr().err, f"--model {path}", message)


def test_model_from_other_library_versions_is_refused(demo_model, tmp_path, monkeypatch, capsys):
    path, _ = demo_model
    running = {**tagger_store.library_versions(), "scikit-learn": "9.9"}
    monkeypatch.setattr(tagger_store, "library_versions", lambda: running)
    assert main(["predict", "--model", str(path), "--input", str(Q3A / "demo" / "demo_test.csv")]) == 2
    err = capsys.readouterr().err
    assert_one_error_line(err, "incompatible library versions", "(running 9.9)", "retrain")


def test_saved_bundle_carries_tags_versions_threshold_and_scores(demo_model):
    path, result = demo_model
    bundle = load_model(path)
    assert bundle["tags"] == sorted(set(load_articles(Q3A / "demo" / "demo_train.csv").tags))
    assert bundle["versions"]["scikit-learn"] == __import__("sklearn").__version__
    assert bundle["versions"]["pycantonese"] == __import__("pycantonese").__version__
    assert bundle["off_topic"] == result.off_topic
    assert bundle["scores"] == {"cv_accuracy_mean": 1.0}


@pytest.mark.parametrize(
    "args, message",
    [
        (["--jobs", "0"], "--jobs 0: give a number of worker processes >= 1"),
        (["--jobs", "-3"], "--jobs -3:"),
        (["--folds", "1"], "--folds 1: at least 2 folds"),
        (["--json", "--out", "-"], "--json and --out - both write to stdout"),
    ],
)
def test_bad_training_options_are_one_line(tmp_path, capsys, args, message):
    assert main(["--demo", "--quick", "--model-out", str(tmp_path / "m.skops"), *args]) == 2
    assert_one_error_line(capsys.readouterr().err, message)
    assert not (tmp_path / "m.skops").exists()


@pytest.mark.parametrize("value", ["1.5", "-0.1"])
def test_bad_predict_threshold_is_one_line(demo_model, capsys, value):
    path, _ = demo_model
    assert main(["predict", "--model", str(path), "--threshold", value]) == 2
    assert_one_error_line(capsys.readouterr().err, f"--threshold {value}: must be between 0 and 1")


@pytest.mark.slow
def test_predict_keeps_empty_rows_in_order_and_writes_stdout_with_dash(demo_model, write_csv, tmp_path):
    path, result = demo_model
    table = write_csv(tmp_path / "in.csv", 'id,text\n007,今日天文台話會落大雨\n8,\n9,"  "\n10,球員入咗球\n')
    done = subprocess.run(
        [sys.executable, CLI, "predict", "--model", str(path), "--input", str(table), "--out", "-"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert not (Path.cwd() / "-").exists()
    out = pd.read_csv(io.StringIO(done.stdout), dtype={"id": str, "reason": str}, keep_default_na=False)
    assert out.columns.tolist() == ["id", "predicted_tag", "probability", "off_topic", "reason"]
    assert out.id.tolist() == ["007", "8", "9", "10"]
    assert out.reason.tolist() == ["", "empty text", "empty text", ""]
    assert out.predicted_tag.tolist()[1:3] == ["", ""]
    expected = predict_tags(result.model, ["今日天文台話會落大雨", "球員入咗球"], result.off_topic)
    assert out.predicted_tag.iloc[[0, 3]].tolist() == expected.predicted_tag.tolist()
    assert out.probability.iloc[[0, 3]].astype(float).tolist() == expected.probability.tolist()
    assert "2 row(s) with empty text kept in the output" in done.stderr


def test_predict_from_saved_model_equals_in_process(demo_model, demo_test_path, tmp_path):
    path, result = demo_model
    out = tmp_path / "pred.csv"
    assert main(["predict", "--model", str(path), "--input", str(demo_test_path), "--out", str(out)]) == 0
    from_file = pd.read_csv(out, dtype={"id": str})
    test = pd.read_csv(demo_test_path, dtype=str)
    in_process = predict_tags(result.model, test.text.tolist(), result.off_topic)
    assert from_file.id.tolist() == test.id.tolist()
    assert from_file.predicted_tag.tolist() == in_process.predicted_tag.tolist()
    assert from_file.probability.tolist() == in_process.probability.tolist()
    assert from_file.off_topic.tolist() == in_process.off_topic.tolist()
    # Probabilities are written with at most 4 decimals.
    assert all(len(f"{p}".split(".")[-1]) <= 4 for p in from_file.probability)
