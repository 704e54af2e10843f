"""Tag Cantonese news articles: train (default) or predict with a saved model.

    python Q3a/tagging_prediction.py --train CSV [--test CSV] [--out prediction.csv|-] [--quick] [--json]
                                     [--model-out M] [--demo]
    python Q3a/tagging_prediction.py predict --model M [--input CSV] [--out CSV|-]

Without --test, prediction.csv holds the out-of-fold cross-validation predictions for the training articles (each
article predicted by the fold model that never saw it), with their true tag beside. ``--out -`` writes the
predictions to stdout (the training report then goes to stderr).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import pandas as pd

from article_data import ArticleDataError, load_articles, read_article_table, validate_articles
from cantonese_tokenizer import CantoneseTokenizer
from tagger_model import N_FOLDS, VERSIONS, TrainingDataError, predict_tags, train_tagger, uniform_rule
from tagger_plots import plot_accuracy_by_length, plot_confusion_matrix, plot_labels
from tagger_store import IncompatibleModelError, describe_model, load_model, save_model

HERE = Path(__file__).resolve().parent

OUT_DIR = HERE / "out"
DEMO_OUT_DIR = OUT_DIR / "demo"  # the demo never replaces the real model in OUT_DIR
OUTPUT_NAMES = {"--out": "prediction.csv", "--model-out": "model.skops", "--report-dir": "confusion_matrix.png"}
LENGTH_PNG = "accuracy_by_length.png"
STDOUT = Path("-")
DEMO_TRAIN = HERE / "demo" / "demo_train.csv"
DEMO_TEST = HERE / "demo" / "demo_test.csv"


class UsageError(Exception):
    """A user mistake reported as one line on stderr with exit code 2."""


class OneLineArgumentParser(argparse.ArgumentParser):
    """argparse errors as one line (`prog: error: ... (see --help)`) instead of the usage block; exit code 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _check_writable(path: Path, overwrite: bool, option: str) -> Path:
    # Files in our own output folder are regenerated on every run; anywhere else we never clobber silently.
    path = Path(path)
    if path == STDOUT and option == "--out":
        return path
    if path.is_dir():
        raise UsageError(f"{option} {path}: is a directory; give a file path, e.g. {path / OUTPUT_NAMES[option]}")
    if path.exists() and not overwrite and OUT_DIR.resolve() not in path.resolve().parents:
        raise UsageError(f"{option} {path}: already exists; pass --overwrite to replace it or choose another path")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(
            f"{option} {path}: cannot create folder {path.parent} ({error.strerror}); choose another path"
        ) from None
    return path


def _check_report_dir(folder: Path, overwrite: bool) -> Path:
    if Path(folder).exists() and not Path(folder).is_dir():
        raise UsageError(f"--report-dir {folder}: is a file, not a folder; give a folder for confusion_matrix.png")
    for name in (OUTPUT_NAMES["--report-dir"], LENGTH_PNG):
        png = Path(folder) / name
        if png.is_dir():
            raise UsageError(f"--report-dir {folder}: {png} is a directory; remove it or choose another --report-dir")
        _check_writable(png, overwrite, "--report-dir")
    return Path(folder)


def _check_jobs(jobs: int) -> None:
    if jobs == 0 or jobs < -1:
        raise UsageError(f"--jobs {jobs}: give a number of worker processes >= 1, or -1 for all cores")


def _check_threshold(threshold: float | None) -> None:
    if threshold is not None and not 0 <= threshold <= 1:
        raise UsageError(f"--threshold {threshold}: must be between 0 and 1")


def train_parser() -> argparse.ArgumentParser:
    p = OneLineArgumentParser(
        prog="tagging_prediction.py",
        description="Train the Cantonese article tagger (random forest, grid search, "
        "stratified 5-fold CV) and predict tags. "
        "Use `tagging_prediction.py predict -h` to reuse a saved model.",
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--train", type=Path, help="training CSV with columns id,text,tag (or tags)")
    source.add_argument(
        "--demo",
        action="store_true",
        help=f"train on the hand-written demo corpus in {DEMO_TRAIN.parent.name}/ (not real news)",
    )
    p.add_argument("--test", type=Path, help="CSV with id,text to tag (default: out-of-fold predictions of --train)")
    p.add_argument(
        "--out",
        type=Path,
        help=f"predictions CSV, - for stdout (default {OUT_DIR}/prediction.csv; with --demo {DEMO_OUT_DIR}/...)",
    )
    p.add_argument(
        "--model-out",
        type=Path,
        help=f"where to save the fitted model (default {OUT_DIR}/model.skops; with --demo {DEMO_OUT_DIR}/...)",
    )
    p.add_argument(
        "--report-dir",
        type=Path,
        help=f"folder for confusion_matrix.png and {LENGTH_PNG} (default {OUT_DIR}; with --demo {DEMO_OUT_DIR})",
    )
    p.add_argument("--quick", action="store_true", help="skip the grid; use the best-known parameters only")
    p.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    p.add_argument("--encoding", help="input encoding (default UTF-8 with or without BOM; e.g. big5)")
    p.add_argument("--folds", type=int, default=N_FOLDS, help="cross-validation folds (%(default)s)")
    p.add_argument("--jobs", type=int, default=-1, help="grid-search worker processes (%(default)s = all cores)")
    p.add_argument("--overwrite", action="store_true", help="allow replacing existing files outside Q3a/out/")
    return p


def predict_parser() -> argparse.ArgumentParser:
    p = OneLineArgumentParser(
        prog="tagging_prediction.py predict", description="Tag articles with a saved model, without retraining."
    )
    p.add_argument("--model", type=Path, required=True, help="model file written by --model-out")
    p.add_argument(
        "--input",
        type=Path,
        help="CSV with id,text; without it, stdin is read with one article per line (ids 1, 2, ...)",
    )
    p.add_argument("--out", type=Path, help="predictions CSV (default, or -: print CSV to stdout)")
    p.add_argument("--encoding", help="input encoding (default UTF-8 with or without BOM)")
    p.add_argument(
        "--threshold",
        type=float,
        help="off_topic when the topic evidence is below this, for every length (default: the model's own "
        "thresholds by text length)",
    )
    p.add_argument("--overwrite", action="store_true", help="allow replacing an existing --out file")
    return p


def _report_left_out(articles, source, what: str) -> None:
    if articles.left_out_ids:
        print(
            f"warning: {source}: {len(articles.left_out_ids)} row(s) with empty text{what}: "
            f"ids {', '.join(articles.left_out_ids)}",
            file=sys.stderr,
        )


def tag_articles(model, off_topic: dict, frame: pd.DataFrame, source: str) -> pd.DataFrame:
    """Tag every row of an ``id,text`` table in file order. Rows with empty text stay, with an empty tag, no
    probability and ``reason`` "empty text"; the other rows have an empty ``reason``."""
    articles = validate_articles(frame, source, require_tag=False)
    _report_left_out(articles, source, " kept in the output with an empty tag (reason: empty text)")
    tagged = predict_tags(model, articles.texts, off_topic)
    tagged.insert(0, "id", articles.ids)
    tagged["reason"] = ""
    empty = pd.DataFrame({"id": articles.left_out_ids, "predicted_tag": "", "reason": "empty text"})
    order = {article_id: i for i, article_id in enumerate(frame["id"].str.strip())}
    result = pd.concat([tagged, empty], ignore_index=True)
    result = result.iloc[result["id"].map(order).argsort(kind="stable")].reset_index(drop=True)
    if "tag" in articles.frame:
        result["true_tag"] = result["id"].map(dict(zip(frame["id"].str.strip(), frame["tag"].str.strip())))
    return result[[c for c in ["id", "predicted_tag", "probability", "off_topic", "reason", "true_tag"] if c in result]]


def _out_of_fold_predictions(report) -> pd.DataFrame:
    oof = report.out_of_fold
    return pd.DataFrame(
        {
            "id": oof.id,
            "predicted_tag": oof.predicted_tag,
            "probability": oof.probability,
            "off_topic": oof.off_topic,
            "reason": "",
            "true_tag": oof.true_tag,
        }
    )


def _write_predictions(predictions: pd.DataFrame, out_path: Path | None) -> None:
    if out_path is None or out_path == STDOUT:
        predictions.to_csv(sys.stdout, index=False)
        sys.stdout.flush()
    else:
        predictions.to_csv(out_path, index=False, encoding="utf-8")


def run_train(args) -> int:
    train_path = DEMO_TRAIN if args.demo else args.train
    test_path = DEMO_TEST if args.demo and args.test is None else args.test
    if args.folds < 2:
        raise UsageError(f"--folds {args.folds}: at least 2 folds are needed")
    _check_jobs(args.jobs)
    if args.json and args.out == STDOUT:
        raise UsageError("--json and --out - both write to stdout; give --out a file")
    default_dir = DEMO_OUT_DIR if args.demo else OUT_DIR
    out_path = _check_writable(args.out or default_dir / OUTPUT_NAMES["--out"], args.overwrite, "--out")
    model_path = _check_writable(
        args.model_out or default_dir / OUTPUT_NAMES["--model-out"], args.overwrite, "--model-out"
    )
    report_dir = _check_report_dir(args.report_dir or default_dir, args.overwrite)
    train = load_articles(train_path, args.encoding)
    _report_left_out(train, train_path, " or tag left out of training")
    test = None
    if test_path:
        test = read_article_table(test_path, args.encoding, require_tag=False)
        validate_articles(test, str(test_path), require_tag=False)  # fails early, before the long training

    print(f"segmenting {len(train.texts)} articles and their snippets with pycantonese ...", file=sys.stderr)
    try:
        result = train_tagger(
            train.texts,
            train.tags,
            train.ids,
            tokenizer=CantoneseTokenizer(),
            quick=args.quick,
            n_folds=args.folds,
            n_jobs=args.jobs,
            log=lambda m: print(m, file=sys.stderr),
        )
    except TrainingDataError as error:
        raise UsageError(f"{train_path}: {error}") from None
    report = result.report
    confusion_png = plot_confusion_matrix(report.confusion, report_dir / OUTPUT_NAMES["--report-dir"])
    length_png = plot_accuracy_by_length(
        {
            "RandomForest (model of record)": report.scores["accuracy_by_length"],
            "LogisticRegression (linear candidate)": report.linear_scores["accuracy_by_length"],
        },
        report_dir / LENGTH_PNG,
    )
    if test is None:
        predictions = _out_of_fold_predictions(report)
    else:
        predictions = tag_articles(result.model, result.off_topic, test, str(test_path))
    _write_predictions(predictions, out_path)
    saved_scores = {
        key: report.scores[key] for key in ("cv_accuracy_mean", "cv_accuracy_std", "macro_f1", "accuracy_by_length")
    } | {"best_params": report.scores["best_params"], "calibration": report.calibration}
    save_model(model_path, result.model, result.off_topic, saved_scores, training_file=train_path, demo=args.demo)

    prediction_kind = (
        f"{len(predictions)} rows of {test_path}"
        if test is not None
        else f"{len(predictions)} out-of-fold predictions of the training articles (no --test)"
    )
    summary = {
        "training_file": str(train_path),
        "n_articles": len(train.ids),
        "left_out_ids": train.left_out_ids,
        "predictions": prediction_kind,
        "off_topic": int(predictions.off_topic.eq(True).sum()),
        "prediction_file": "stdout" if out_path == STDOUT else str(out_path),
        "model_file": str(model_path),
        "confusion_png": str(confusion_png),
        "accuracy_by_length_png": str(length_png),
        "confusion_png_labels": plot_labels(report.tags),
    }
    if args.json:
        print(json.dumps({**report.as_dict(), **summary}, ensure_ascii=False, indent=2))
    else:
        print(format_report(report, summary, demo=args.demo), file=sys.stderr if out_path == STDOUT else sys.stdout)
    return 0


def _length_label(version: str) -> str:
    return "full text" if version == "full" else f"first {version} chars"


def format_report(report, summary: dict, demo: bool = False) -> str:
    """Human-readable training report (plain text)."""
    s, lin, cal = report.scores, report.linear_scores, report.calibration
    lines = []
    if demo:
        lines.append("DEMO RUN on the hand-written demo corpus (not real news): scores say nothing about real data.")
    lines += [
        f"training file: {summary['training_file']} ({summary['n_articles']} articles; tags {', '.join(report.tags)})",
        *[f"note: {m}" for m in report.fold_messages],
        f"cross-validation: {report.n_folds}-fold stratified over articles, shuffled, random_state 42; "
        f"{report.n_candidates} grid candidate(s); every article trained as full text and first 30/60/120 chars",
        f"best parameters: {s['best_params']}",
        "",
        "CV accuracy by text length (mean ± sd over folds; articles unseen by the fold model):",
        f"{'model':<40}" + "".join(f"{_length_label(v):>20}" for v in VERSIONS),
        f"{'RandomForest (model of record)':<40}"
        + "".join(
            f"{_pm(s['accuracy_by_length'][v]['mean'], s['accuracy_by_length'][v]['std']):>20}" for v in VERSIONS
        ),
        f"{'TF-IDF + LogisticRegression':<40}"
        + "".join(
            f"{_pm(lin['accuracy_by_length'][v]['mean'], lin['accuracy_by_length'][v]['std']):>20}" for v in VERSIONS
        ),
        f"macro-F1 (full text): forest {_pm(s['macro_f1'], s['macro_f1_std'])}, "
        f"linear {_pm(lin['macro_f1'], lin['macro_f1_std'])} ({lin['best_params']})",
        f"PNG: {summary['accuracy_by_length_png']}",
        "",
        f"calibrated probabilities ({cal['method']}), out of fold, Brier score (0 = perfect, lower is better):",
        "  " + "   ".join(f"{_length_label(v)} {cal['brier_by_length'][v]:.4f}" for v in VERSIONS),
        "  uncalibrated forest votes: "
        + "   ".join(f"{_length_label(v)} {cal['brier_uncalibrated_by_length'][v]:.4f}" for v in VERSIONS),
        "off-topic when topic evidence is below: "
        + ", ".join(f"{_length_label(v)} {t:.4f}" for v, t in cal["off_topic"]["thresholds"].items())
        + f" (full-text threshold from {cal['off_topic']['full_from_chars']} chars); "
        "on-topic texts flagged out of fold: "
        + ", ".join(f"{_length_label(v)} {cal['flagged_by_length'][v]:.1%}" for v in VERSIONS),
        "",
        "per-class (pooled out-of-fold predictions, full text):",
        report.per_class.round(4).to_string(),
        "",
        f"confusion matrix (rows true, columns predicted; PNG: {summary['confusion_png']}):",
        report.confusion.to_string(),
        "PNG labels: " + "; ".join(f"{label} = {tag}" for tag, label in plot_labels(report.tags).items()),
        "",
    ]
    wrong = report.misclassified
    lines.append(f"misclassified articles (out of fold, full text): {len(wrong)}")
    for row in wrong.itertuples():
        snippet = " ".join(row.text.split())[:60]
        lines.append(
            f"  {row.id}\ttrue {row.true_tag}\tpredicted {row.predicted_tag}\tp={row.probability:.4f}\t{snippet}"
        )
    lines += ["", f"top {len(report.top_words)} features by forest importance (chars: = character n-gram):"]
    words = [f"{w} {v:.4f}" for w, v in zip(report.top_words.feature, report.top_words.importance)]
    lines += ["  " + "   ".join(words[i : i + 5]) for i in range(0, len(words), 5)]
    lines += [
        "",
        f"predictions: {summary['prediction_file']} ({summary['predictions']}; {summary['off_topic']} off-topic)",
        f"model: {summary['model_file']}",
    ]
    return "\n".join(lines)


def _pm(mean: float, sd: float) -> str:
    return f"{mean:.4f} ± {sd:.4f}"


def _read_stdin_articles() -> pd.DataFrame:
    lines = [line.strip() for line in sys.stdin.read().splitlines()]
    if not any(lines):
        raise UsageError(
            "stdin: no article text (empty input or blank lines only); pipe one article per line or pass --input CSV"
        )
    return pd.DataFrame({"id": [str(i + 1) for i in range(len(lines))], "text": lines}, dtype=str)


def run_predict(args) -> int:
    _check_threshold(args.threshold)
    out_path = _check_writable(args.out, args.overwrite, "--out") if args.out else None
    if not args.model.exists():
        raise UsageError(
            f"--model {args.model}: no such model file; train one with --train CSV --model-out {args.model}"
        )
    if args.input:
        frame, source = read_article_table(args.input, args.encoding, require_tag=False), str(args.input)
    else:
        frame, source = _read_stdin_articles(), "stdin"
    validate_articles(frame, source, require_tag=False)  # input mistakes first, before the model is loaded
    try:
        bundle = load_model(args.model)
    except IncompatibleModelError as error:
        raise UsageError(f"--model {error}") from None
    print(f"model: {args.model}: {describe_model(bundle)}", file=sys.stderr)
    rule = bundle["off_topic"] if args.threshold is None else uniform_rule(args.threshold)
    predictions = tag_articles(bundle["model"], rule, frame, source)
    _write_predictions(predictions, out_path)
    if out_path is not None and out_path != STDOUT:
        print(
            f"predictions: {out_path} ({len(predictions)} rows, {int(predictions.off_topic.eq(True).sum())} "
            f"off-topic, {int((predictions.reason != '').sum())} with empty text)",
            file=sys.stderr,
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    predicting = bool(argv) and argv[0] == "predict"
    args = predict_parser().parse_args(argv[1:]) if predicting else train_parser().parse_args(argv)
    try:
        return run_predict(args) if predicting else run_train(args)
    except (UsageError, ArticleDataError, IncompatibleModelError, TrainingDataError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
