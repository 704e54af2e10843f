"""Evaluation on articles the grid search never saw: nested cross-validation over the HK01 articles, plus real
Cantonese text about none of the tags (HKCanCor, shipped with pycantonese) for the off-topic flag.

    make bench-q3a ARGS="[--articles CSV] [--outer 5] [--jobs 2] [--quick]"
    (the same as: cd Q3a && ../.venv/bin/python -m benchmarks.evaluate_tagger ...)

Every outer fold holds out a stratified fifth of the articles; ``train_tagger`` (grid search, calibration and
off-topic threshold, all on the other four fifths) never sees them. Each held-out article is then tagged from its
first 30, 60 and 120 characters and in full, by the calibrated RandomForest (model of record) and by the linear
candidate refitted with its best parameters. HKCanCor passages (consecutive utterances of one recording, at least
300 characters) are tagged by every outer model; ``off_topic`` should be true for them. Prints the tables and
rewrites the ``evaluate_tagger`` section of Q3a/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pycantonese
from sklearn.model_selection import StratifiedKFold

from article_data import load_articles
from benchmarks.q3a_results_md import machine_header, write_section
from cantonese_tokenizer import CantoneseTokenizer
from tagger_model import (
    VERSIONS,
    article_rows,
    brier_score,
    build_linear_pipeline,
    predict_tags,
    train_tagger,
)

HERE = Path(__file__).resolve().parent
DEFAULT_ARTICLES = HERE.parents[2] / "shared" / "data" / "hk01" / "articles.csv"
TARGETS = {"30": 0.90, "60": 0.97, "full": 0.99}
OFF_TOPIC_TARGET, ON_TOPIC_KEPT_TARGET = 0.90, 0.99


def hkcancor_passages(min_chars: int = 300) -> list[str]:
    """Real spoken Cantonese about everyday subjects (HKCanCor, Luke and Wong 2015, as shipped by pycantonese):
    consecutive utterances of one recording joined until a passage has at least ``min_chars`` characters (the
    remainder of a recording shorter than that is dropped). About 600 passages."""
    passages = []
    for recording in pycantonese.hkcancor().utterances(by_file=True):
        text = ""
        for utterance in recording:
            text += "".join(token.word for token in utterance.tokens)
            if len(text) >= min_chars:
                passages.append(text)
                text = ""
    return passages


def snippet(text: str, version: str) -> str:
    return text if version == "full" else text[: int(version)]


def evaluate(articles, outer: int, jobs: int, quick: bool, log) -> dict:
    """Nested evaluation; returns per-version held-out accuracy (forest and linear), Brier score, share of
    on-topic articles flagged off-topic and share of HKCanCor passages flagged, plus per-fold best parameters."""
    texts, tags, ids = np.asarray(articles.texts, dtype=object), np.asarray(articles.tags, dtype=object), articles.ids
    passages = hkcancor_passages()
    folds = StratifiedKFold(outer, shuffle=True, random_state=7)
    tagged = {v: [] for v in VERSIONS}
    linear_right = {v: [] for v in VERSIONS}
    off = {v: [] for v in VERSIONS}
    probabilities = {v: [] for v in VERSIONS}
    truths, fold_params, thresholds = [], [], []
    for k, (train, test) in enumerate(folds.split(texts, tags), 1):
        log(f"outer fold {k}/{outer}: training on {len(train)} articles, holding out {len(test)} ...")
        result = train_tagger(
            list(texts[train]), list(tags[train]), [ids[i] for i in train], quick=quick, n_jobs=jobs, log=log
        )
        fold_params.append(result.report.scores["best_params"])
        thresholds.append(result.off_topic["thresholds"])
        X, y = article_rows(list(texts[train]), list(tags[train]), CantoneseTokenizer())
        linear = build_linear_pipeline().set_params(**result.report.linear_scores["best_params"]).fit(X, y)
        truths.append(tags[test])
        for v in VERSIONS:
            held_out = [snippet(t, v) for t in texts[test]]
            predicted = predict_tags(result.model, held_out, result.off_topic)
            tagged[v].append(predicted)
            probabilities[v].append(result.model.predict_proba(held_out))
            segmented = result.model[0].transform(held_out)
            linear_right[v].append(linear.predict(segmented) == tags[test])
            off[v].append(predict_tags(result.model, [snippet(p, v) for p in passages], result.off_topic))
    truth = np.concatenate(truths)
    tag_names = list(result.model.classes_)
    rows = {}
    for v in VERSIONS:
        predicted = pd.concat(tagged[v], ignore_index=True)
        rows[v] = {
            "forest_accuracy": float((predicted.predicted_tag.to_numpy() == truth).mean()),
            "forest_errors": int((predicted.predicted_tag.to_numpy() != truth).sum()),
            "linear_accuracy": float(np.concatenate(linear_right[v]).mean()),
            "brier": brier_score(truth, np.vstack(probabilities[v]), tag_names),
            "on_topic_flagged": float(predicted.off_topic.mean()),
            "hkcancor_flagged": float(np.mean([frame.off_topic.mean() for frame in off[v]])),
        }
    return {
        "n_articles": len(texts),
        "n_passages": len(passages),
        "by_version": rows,
        "fold_params": fold_params,
        "thresholds": thresholds,
    }


def format_tables(result: dict) -> str:
    rows = result["by_version"]
    label = {v: ("full text" if v == "full" else f"first {v} chars") for v in VERSIONS}
    lines = [
        f"{result['n_articles']} HK01 articles, each held out once (nested CV: grid, calibration and threshold "
        f"fitted without it); {result['n_passages']} HKCanCor passages (>= 300 characters) tagged by every outer "
        "model.",
        "",
        "| text given | RandomForest accuracy (errors) | target | linear accuracy | Brier (forest) "
        "| on-topic flagged off-topic | HKCanCor flagged off-topic |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for v in VERSIONS:
        r = rows[v]
        target = f">= {TARGETS[v]:.0%}" if v in TARGETS else ""
        lines.append(
            f"| {label[v]} | {r['forest_accuracy']:.4f} ({r['forest_errors']}) | {target} | "
            f"{r['linear_accuracy']:.4f} | {r['brier']:.4f} | {r['on_topic_flagged']:.1%} | "
            f"{r['hkcancor_flagged']:.1%} |"
        )
    full = rows["full"]
    lines += [
        "",
        f"Off-topic flag on full texts: {full['hkcancor_flagged']:.1%} of HKCanCor passages flagged "
        f"(target >= {OFF_TOPIC_TARGET:.0%}), {1 - full['on_topic_flagged']:.1%} of unseen on-topic articles not "
        f"flagged (target >= {ON_TOPIC_KEPT_TARGET:.0%}).",
        "Off-topic thresholds (topic evidence) of the outer models: "
        + "; ".join(", ".join(f"{v} {t:.4f}" for v, t in th.items()) for th in result["thresholds"]),
        "Best forest parameters per outer fold: " + "; ".join(str(p) for p in result["fold_params"]),
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=Path, default=DEFAULT_ARTICLES)
    parser.add_argument("--outer", type=int, default=5, help="outer folds (default 5)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="best-known parameters instead of the grid per fold")
    args = parser.parse_args()
    load_before = os.getloadavg()
    start = time.perf_counter()
    articles = load_articles(args.articles)
    result = evaluate(articles, args.outer, args.jobs, args.quick, log=lambda m: print(m, file=sys.stderr, flush=True))
    out = HERE.parent / "out" / "evaluate_tagger.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, ensure_ascii=False, indent=2, default=str))
    tables = format_tables(result)
    print(tables)
    header = machine_header(
        load_before,
        os.getloadavg(),
        "cd Q3a && ../.venv/bin/python -m benchmarks.evaluate_tagger " + " ".join(sys.argv[1:]),
    )
    body = (
        "## Held-out evaluation (nested CV) and off-topic detection\n\n"
        f"{header}\nwall time {time.perf_counter() - start:.0f} s"
        f"{' (--quick: best-known parameters, no grid per fold)' if args.quick else ' (full grid in every outer fold)'}"
        f"\n\n{tables}\n"
    )
    path = write_section(HERE.parent / "RESULTS.md", "evaluate_tagger", body)
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
