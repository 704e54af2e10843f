"""Tag Cantonese news articles: train (default) or predict with a saved model.

    python Q3a/tagging_prediction.py --train CSV [--test CSV] [--out prediction.csv] [--quick] [--json]
                                     [--model-out M] [--demo]
    python Q3a/tagging_prediction.py predict --model M [--input CSV] [--out CSV]

Without --test, prediction.csv holds the out-of-fold cross-validation predictions for the training articles (each
article predicted by the fold model that never saw it), with their true tag beside.
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
from cantonese_tokenizer import CantoneseTokenizer, segment_once
from tagger_model import (
    N_FOLDS,
    IncompatibleModelError,
    TrainingDataError,
    describe_model,
    load_model,
    plot_confusion_matrix,
    plot_labels,
    predict_tags,
    save_model,
    train_tagger,
)

HERE = Path(__file__).resolve().parent

OUT_DIR = HERE / "out"
DEMO_OUT_DIR = OUT_DIR / "demo"  # the demo never replaces the real model in OUT_DIR
OUTPUT_NAMES = {"--out": "prediction.csv", "--model-out": "model.joblib", "--report-dir": "confusion_matrix.png"}
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
    png = Path(folder) / OUTPUT_NAMES["--report-dir"]
    if png.is_dir():
        raise UsageError(f"--report-dir {folder}: {png} is a directory; remove it or choose another --report-dir")
    return _check_writable(png, overwrite, "--report-dir")


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
        "--out", type=Path, help=f"predictions CSV (default {OUT_DIR}/prediction.csv; with --demo {DEMO_OUT_DIR}/...)"
    )
    p.add_argument(
        "--model-out",
        type=Path,
        help=f"where to save the fitted model (default {OUT_DIR}/model.joblib; with --demo {DEMO_OUT_DIR}/...)",
    )
    p.add_argument(
        "--report-dir",
        type=Path,
        help=f"folder for confusion_matrix.png (default {OUT_DIR}; with --demo {DEMO_OUT_DIR})",
    )
    p.add_argument("--quick", action="store_true", help="skip the grid; use the best-known parameters only")
    p.add_argument("--json", action="store_true", help="print the report as JSON on stdout")
    p.add_argument("--encoding", help="input encoding (default UTF-8 with or without BOM; e.g. big5)")
    p.add_argument("--threshold", type=float, default=0.6, help="low_confidence below this probability (%(default)s)")
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
    p.add_argument("--out", type=Path, help="predictions CSV (default: print CSV to stdout)")
    p.add_argument("--encoding", help="input encoding (default UTF-8 with or without BOM)")
    p.add_argument("--threshold", type=float, default=0.6, help="low_confidence below this probability (%(default)s)")
    p.add_argument("--overwrite", action="store_true", help="allow replacing an existing --out file")
    return p


def _report_left_out(articles, source) -> None:
    if articles.left_out_ids:
        print(
            f"warning: {source}: {len(articles.left_out_ids)} row(s) with empty text or tag left out: "
            f"ids {', '.join(articles.left_out_ids)}",
            file=sys.stderr,
        )


def _predictions(result, test, threshold: float) -> pd.DataFrame:
    """Tags for the --test articles, or (without --test) the out-of-fold predictions of the training articles."""
    if test is None:
        oof = result.report.out_of_fold
        return pd.DataFrame(
            {
                "id": oof.id,
                "predicted_tag": oof.predicted_tag,
                "probability": oof.probability,
                "low_confidence": oof.probability < threshold,
                "true_tag": oof.true_tag,
            }
        )
    predictions = predict_tags(result.model, test.texts, threshold)
    predictions.insert(0, "id", test.ids)
    if "tag" in test.frame:
        predictions["true_tag"] = test.frame["tag"].tolist()
    return predictions


def run_train(args) -> int:
    train_path = DEMO_TRAIN if args.demo else args.train
    test_path = DEMO_TEST if args.demo and args.test is None else args.test
    if not 0 <= args.threshold <= 1:
        raise UsageError(f"--threshold {args.threshold}: must be between 0 and 1")
    if args.folds < 2:
        raise UsageError(f"--folds {args.folds}: at least 2 folds are needed")
    default_dir = DEMO_OUT_DIR if args.demo else OUT_DIR
    out_path = _check_writable(args.out or default_dir / OUTPUT_NAMES["--out"], args.overwrite, "--out")
    model_path = _check_writable(
        args.model_out or default_dir / OUTPUT_NAMES["--model-out"], args.overwrite, "--model-out"
    )
    png_path = _check_report_dir(args.report_dir or default_dir, args.overwrite)
    train = load_articles(train_path, args.encoding)
    _report_left_out(train, train_path)
    test = load_articles(test_path, args.encoding, require_tag=False) if test_path else None
    if test is not None:
        _report_left_out(test, test_path)

    tokenizer = CantoneseTokenizer()
    print(f"segmenting {len(train.texts)} articles with pycantonese ...", file=sys.stderr)
    tokens = segment_once(train.texts, tokenizer)
    try:
        result = train_tagger(
            tokens,
            train.tags,
            train.ids,
            train.texts,
            quick=args.quick,
            n_folds=args.folds,
            n_jobs=args.jobs,
            tokenizer=tokenizer,
            log=lambda m: print(m, file=sys.stderr),
        )
    except TrainingDataError as error:
        raise UsageError(f"{train_path}: {error}") from None
    report = result.report
    plot_confusion_matrix(report.confusion, png_path)
    predictions = _predictions(result, test, args.threshold)
    predictions.to_csv(out_path, index=False, encoding="utf-8")
    save_model(model_path, result.model, report.scores["best_params"], training_file=train_path, demo=args.demo)

    files = {
        "prediction_file": str(out_path),
        "model_file": str(model_path),
        "confusion_png": str(png_path),
        "confusion_png_labels": plot_labels(report.tags),
    }
    prediction_kind = (
        f"{len(predictions)} test articles from {test_path}"
        if test is not None
        else f"{len(predictions)} out-of-fold predictions of the training articles (no --test)"
    )
    summary = {
        "training_file": str(train_path),
        "n_articles": len(train.ids),
        "left_out_ids": train.left_out_ids,
        "predictions": prediction_kind,
        "low_confidence": int(predictions.low_confidence.sum()),
        **files,
    }
    if args.json:
        print(json.dumps({**report.as_dict(), **summary}, ensure_ascii=False, indent=2))
    else:
        print(format_report(report, summary, demo=args.demo))
    return 0


def format_report(report, summary: dict, demo: bool = False) -> str:
    """Human-readable training report (plain text)."""
    s = report.scores
    b = report.baseline_scores
    lines = []
    if demo:
        lines.append("DEMO RUN on the hand-written demo corpus (not real news): scores say nothing about real data.")
    lines += [
        f"training file: {summary['training_file']} ({summary['n_articles']} articles; tags {', '.join(report.tags)})",
        *[f"note: {m}" for m in report.fold_messages],
        f"cross-validation: {report.n_folds}-fold stratified, shuffled, random_state 42; "
        f"{report.n_candidates} grid candidate(s)",
        f"best parameters: {s['best_params']}",
        "",
        f"{'model':<42}{'accuracy (mean ± sd)':>24}{'macro-F1 (mean ± sd)':>24}",
        f"{'CountVectorizer + RandomForest (best)':<42}{_pm(s['cv_accuracy_mean'], s['cv_accuracy_std']):>24}"
        f"{_pm(s['macro_f1'], s['macro_f1_std']):>24}",
        f"{'baseline TF-IDF + LogisticRegression':<42}{_pm(b['cv_accuracy_mean'], b['cv_accuracy_std']):>24}"
        f"{_pm(b['macro_f1'], b['macro_f1_std']):>24}   {b['best_params']}",
        "",
        "per-class (pooled out-of-fold predictions of the best forest):",
        report.per_class.round(4).to_string(),
        "",
        f"confusion matrix (rows true, columns predicted; PNG: {summary['confusion_png']}):",
        report.confusion.to_string(),
        "PNG labels: " + "; ".join(f"{label} = {tag}" for tag, label in plot_labels(report.tags).items()),
        "",
    ]
    wrong = report.misclassified
    lines.append(f"misclassified articles (out of fold): {len(wrong)}")
    for row in wrong.itertuples():
        snippet = " ".join(row.text.split())[:60]
        lines.append(
            f"  {row.id}\ttrue {row.true_tag}\tpredicted {row.predicted_tag}\tp={row.probability:.2f}\t{snippet}"
        )
    lines += ["", f"top {len(report.top_words)} words by forest importance:"]
    words = [f"{w} {v:.4f}" for w, v in zip(report.top_words.word, report.top_words.importance)]
    lines += ["  " + "   ".join(words[i : i + 5]) for i in range(0, len(words), 5)]
    lines += [
        "",
        f"predictions: {summary['prediction_file']} ({summary['predictions']}; "
        f"{summary['low_confidence']} low-confidence)",
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
    if not 0 <= args.threshold <= 1:
        raise UsageError(f"--threshold {args.threshold}: must be between 0 and 1")
    out_path = _check_writable(args.out, args.overwrite, "--out") if args.out else None
    if not args.model.is_file():
        raise UsageError(
            f"--model {args.model}: no such model file; train one with --train CSV --model-out {args.model}"
        )
    if args.input:
        frame, source = read_article_table(args.input, args.encoding, require_tag=False), str(args.input)
    else:
        frame, source = _read_stdin_articles(), "stdin"
    articles = validate_articles(frame, source, require_tag=False)
    _report_left_out(articles, source)
    bundle = load_model(args.model)
    print(f"model: {args.model}: {describe_model(bundle)}", file=sys.stderr)
    predictions = predict_tags(bundle["model"], articles.texts, args.threshold)
    predictions.insert(0, "id", articles.ids)
    if out_path:
        predictions.to_csv(out_path, index=False, encoding="utf-8")
        print(
            f"predictions: {out_path} ({len(predictions)} articles, "
            f"{int(predictions.low_confidence.sum())} low-confidence)",
            file=sys.stderr,
        )
    else:
        predictions.to_csv(sys.stdout, index=False)
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
