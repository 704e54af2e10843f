"""Nothing to tag, directories as output paths, demo outputs kept apart from the real model, messages naming the
file. Every user mistake: exit code 2, exactly one stderr line, no traceback, nothing
overwritten."""

import io
import subprocess
import sys
from pathlib import Path

import pytest

import tagging_prediction
from tagging_prediction import main

Q3A = Path(__file__).resolve().parents[1]
CLI = str(Q3A / "tagging_prediction.py")


def assert_one_error_line(err: str, *parts: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: ") and "Traceback" not in err
    for part in parts:
        assert part in lines[0], (part, lines[0])


@pytest.fixture
def junk_model(tmp_path) -> Path:
    # Input is checked before the model is loaded, so an unreadable model file proves the order too.
    return (tmp_path / "m.skops").write_bytes(b"not a model") and tmp_path / "m.skops"


@pytest.mark.slow
@pytest.mark.parametrize("stdin", ["", "\n\n  \n"])
def test_predict_with_empty_stdin(junk_model, stdin):
    done = subprocess.run(
        [sys.executable, CLI, "predict", "--model", str(junk_model)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2 and done.stdout == ""
    assert_one_error_line(done.stderr, "stdin: no article text", "one article per line")


@pytest.mark.parametrize(
    "content, message",
    [
        ("id,text\n", "no articles (header only"),
        ("id,text\n1,\n2,  \n3,NaN\n", "all 3 row(s) have an empty text"),
        ("", "expected a header line id,text and"),  # predict needs no tag column
    ],
)
def test_predict_with_nothing_to_tag_in_csv(junk_model, write_csv, tmp_path, capsys, content, message):
    path = write_csv(tmp_path / "in.csv", content)
    out = tmp_path / "tags.csv"
    assert main(["predict", "--model", str(junk_model), "--input", str(path), "--out", str(out)]) == 2
    assert_one_error_line(capsys.readouterr().err, str(path), message)
    assert not out.exists()


@pytest.mark.parametrize(
    "which, content, message",
    [
        ("--test", "id,text\n", "no articles (header only"),
        ("--train", "id,text,tag\n", "no articles (header only"),
        ("--train", "id,text,tag\n1,甲,a\n2,乙,a\n", "training data has 1 distinct tag(s)"),
    ],
)
def test_train_with_header_only_files(write_csv, demo_train_path, tmp_path, capsys, which, content, message):
    path = write_csv(tmp_path / "in.csv", content)
    train = path if which == "--train" else demo_train_path
    test = ["--test", str(path)] if which == "--test" else []
    code = main(
        [
            "--train",
            str(train),
            *test,
            "--quick",
            "--out",
            str(tmp_path / "p.csv"),
            "--model-out",
            str(tmp_path / "m.skops"),
            "--report-dir",
            str(tmp_path),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    # The segmenting progress line may precede a training-data error; the error itself is one line.
    errors = [line for line in err.strip().splitlines() if not line.startswith(("segmenting", "tuning"))]
    assert_one_error_line("\n".join(errors), f"{path}: ", message)
    assert not (tmp_path / "m.skops").exists() and not (tmp_path / "p.csv").exists()


@pytest.mark.parametrize("option, example", [("--out", "prediction.csv"), ("--model-out", "model.skops")])
def test_directory_as_output_file_is_refused_with_the_right_advice(demo_train_path, tmp_path, capsys, option, example):
    args = {"--out": str(tmp_path / "p.csv"), "--model-out": str(tmp_path / "m.skops"), "--report-dir": str(tmp_path)}
    folder = tmp_path / "a_folder"
    folder.mkdir()
    args[option] = str(folder)
    code = main(["--train", str(demo_train_path), "--quick", "--overwrite", *[x for kv in args.items() for x in kv]])
    assert code == 2
    err = capsys.readouterr().err
    assert_one_error_line(err, f"{option} {folder}: is a directory", str(folder / example))
    assert "--overwrite" not in err


def test_predict_out_directory_and_report_dir_file_refused(junk_model, demo_train_path, tmp_path, capsys):
    assert main(["predict", "--model", str(junk_model), "--out", str(tmp_path)]) == 2
    assert_one_error_line(capsys.readouterr().err, f"--out {tmp_path}: is a directory")
    a_file = tmp_path / "x.txt"
    a_file.write_text("keep me")
    assert main(["--train", str(demo_train_path), "--quick", "--report-dir", str(a_file)]) == 2
    assert_one_error_line(capsys.readouterr().err, f"--report-dir {a_file}: is a file, not a folder")
    assert a_file.read_text() == "keep me"
    (tmp_path / "r" / "confusion_matrix.png").mkdir(parents=True)
    assert main(["--train", str(demo_train_path), "--quick", "--report-dir", str(tmp_path / "r")]) == 2
    assert_one_error_line(capsys.readouterr().err, "confusion_matrix.png is a directory")


@pytest.mark.slow
def test_argparse_error_is_one_line():
    done = subprocess.run([sys.executable, CLI, "--demo", "--folds", "x"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "tagging_prediction.py: error: argument --folds: invalid int value: 'x' (see --help)"
    ]


@pytest.mark.slow
def test_demo_writes_apart_from_real_model_and_predict_names_its_source(tmp_path, monkeypatch, capsys):
    real_out, demo_out = tmp_path / "out", tmp_path / "out" / "demo"
    real_out.mkdir()
    (real_out / "model.skops").write_text("the real model")
    monkeypatch.setattr(tagging_prediction, "OUT_DIR", real_out)
    monkeypatch.setattr(tagging_prediction, "DEMO_OUT_DIR", demo_out)
    assert main(["--quick", "--demo", "--jobs", "2"]) == 0
    assert (real_out / "model.skops").read_text() == "the real model"
    assert sorted(p.name for p in demo_out.iterdir()) == [
        "accuracy_by_length.png",
        "confusion_matrix.png",
        "model.skops",
        "prediction.csv",
    ]
    capsys.readouterr()
    monkeypatch.setattr(sys, "stdin", io.StringIO("湖人今晚主場迎戰勇士\n"))
    assert main(["predict", "--model", str(demo_out / "model.skops")]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"model: {demo_out / 'model.skops'}: tags ")
    assert "DEMO corpus (not real news)" in err[0] and str(Q3A / "demo" / "demo_train.csv") in err[0]
    assert " UTC" in err[0]


def test_confusion_png_labels_mapping_and_plot(tmp_path):
    import pandas as pd

    from tagger_plots import _installed_cjk_font, plot_confusion_matrix, plot_labels

    tags = ["NBA", "拜登", "新盤市況"]
    labels = plot_labels(tags)
    if _installed_cjk_font() is None:
        assert labels == {"NBA": "NBA", "拜登": "baai3 dang1", "新盤市況": "san1 pun4 si5 fong3"}
    else:
        assert labels == {t: t for t in tags}
    confusion = pd.DataFrame([[82, 0, 0], [0, 221, 0], [0, 0, 74]], index=tags, columns=tags)
    path = plot_confusion_matrix(confusion, tmp_path / "cm.png")
    assert path.stat().st_size > 1000
