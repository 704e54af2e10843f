"""Benchmark: a word-count forest grid search, segment-once (the tagger's arrangement) vs. the original
arrangement of the offsite test (tokenizer inside CountVectorizer, so every candidate and fold re-segments its
documents), same folds, same grid, one run.

    cd Q3a && ../.venv/bin/python -m benchmarks.bench_grid [--articles ../shared/data/hk01/articles.csv]
                                                           [--jobs 2] [--every K]

``--every K`` keeps every K-th candidate of the grid for both arrangements (documented subset when the original
cannot finish in time). Prints wall time, best parameters and best score side by side, the speed-up, the peak
resident memory of the process tree and the load average; also writes Q3a/out/bench_grid.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import threading
import time
from pathlib import Path

import psutil
from sklearn.ensemble import RandomForestClassifier
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.model_selection import GridSearchCV, ParameterGrid, StratifiedKFold
from sklearn.pipeline import Pipeline

from article_data import load_articles
from benchmarks.q3a_results_md import machine_header, write_section
from cantonese_tokenizer import CantoneseTokenizer, passthrough_tokens, segment_once

RANDOM_STATE = 42
SCORING = {"accuracy": "accuracy", "macro_f1": "f1_macro"}
# The original offsite test's grid (min_df/max_df are fractions of documents).
FOREST_PARAM_GRID = {
    "counts__min_df": [0.01, 0.05, 0.1],
    "counts__max_df": [0.8, 0.9],
    "forest__n_estimators": [50, 100, 200],
    "forest__max_depth": [8, 10, 12],
}


def build_forest_pipeline(random_state: int = RANDOM_STATE) -> Pipeline:
    """CountVectorizer on pre-segmented token tuples -> RandomForestClassifier (one worker per forest)."""
    return Pipeline(
        [
            ("counts", CountVectorizer(analyzer=passthrough_tokens)),
            ("forest", RandomForestClassifier(random_state=random_state, n_jobs=1)),
        ]
    )


def build_original_pipeline(tokenizer=None, random_state: int = RANDOM_STATE) -> Pipeline:
    """The original arrangement: the tokenizer runs inside CountVectorizer, so every grid candidate and fold
    segments its documents again. Takes raw text."""
    return Pipeline(
        [
            (
                "counts",
                CountVectorizer(tokenizer=tokenizer or CantoneseTokenizer(), token_pattern=None, lowercase=False),
            ),
            ("forest", RandomForestClassifier(random_state=random_state, n_jobs=1)),
        ]
    )


def best_scores(search: GridSearchCV) -> dict:
    i = search.best_index_
    return {
        "cv_accuracy_mean": float(search.cv_results_["mean_test_accuracy"][i]),
        "best_params": search.best_params_,
    }


HERE = Path(__file__).resolve().parent

DEFAULT_ARTICLES = HERE.parents[2] / "shared" / "data" / "hk01" / "articles.csv"


class PeakMemory:
    """Samples the resident memory of this process and its children (grid-search workers) every 0.2 s."""

    def __init__(self):
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for proc in [me, *me.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    total += proc.memory_info().rss
            self.peak = max(self.peak, total)
            time.sleep(0.2)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def tree_cpu_seconds() -> float:
    """User + system CPU seconds of this process and its live children (the reused grid-search workers)."""
    total = 0.0
    me = psutil.Process()
    for proc in [me, *me.children(recursive=True)]:
        try:
            times = proc.cpu_times()
            total += times.user + times.system
        except psutil.Error:
            pass
    return total


def candidate_grid(every: int) -> list[dict]:
    """The forest grid as a list of single-candidate grids, keeping every ``every``-th candidate."""
    return [{k: [v] for k, v in params.items()} for params in list(ParameterGrid(FOREST_PARAM_GRID))[::every]]


def timed_search(pipeline, X, y, grid, cv, jobs) -> tuple[GridSearchCV, float]:
    start = time.perf_counter()
    search = GridSearchCV(pipeline, grid, scoring=SCORING, refit="accuracy", cv=cv, n_jobs=jobs, verbose=1).fit(X, y)
    return search, time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=Path, default=DEFAULT_ARTICLES)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--every", type=int, default=1, help="keep every K-th grid candidate (default: all)")
    args = parser.parse_args()
    load_before = os.getloadavg()

    articles = load_articles(args.articles)
    cv = StratifiedKFold(5, shuffle=True, random_state=RANDOM_STATE)
    grid = candidate_grid(args.every)
    n_fits = len(grid) * cv.get_n_splits()
    print(
        f"{len(articles.ids)} articles, {len(grid)} of {len(ParameterGrid(FOREST_PARAM_GRID))} candidates x "
        f"{cv.get_n_splits()} folds = {n_fits} fits per arrangement, n_jobs={args.jobs}, "
        f"{os.cpu_count()} CPUs, load average at start {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    # Start the worker pool before timing so neither arrangement pays for it.
    timed_search(
        build_forest_pipeline(), [("a",), ("b",)] * 5, ["x", "y"] * 5, {"forest__n_estimators": [2]}, 2, args.jobs
    )

    rows = {}
    with PeakMemory() as memory:
        start, cpu = time.perf_counter(), tree_cpu_seconds()
        tokens = segment_once(articles.texts, CantoneseTokenizer())
        segmenting = time.perf_counter() - start
        search, tuning = timed_search(build_forest_pipeline(), tokens, articles.tags, grid, cv, args.jobs)
        rows["segment once (ours)"] = {
            "seconds": segmenting + tuning,
            "segment_seconds": segmenting,
            "cpu_seconds": tree_cpu_seconds() - cpu,
            **best_scores(search),
        }
        cpu = tree_cpu_seconds()
        print(f"ours done in {segmenting + tuning:.1f} s, load {os.getloadavg()[0]:.1f}", flush=True)
        search, tuning = timed_search(build_original_pipeline(), articles.texts, articles.tags, grid, cv, args.jobs)
        rows["tokenizer in CountVectorizer (original)"] = {
            "seconds": tuning,
            "cpu_seconds": tree_cpu_seconds() - cpu,
            **best_scores(search),
        }
    ours, original = rows.values()
    speedup = original["seconds"] / ours["seconds"]
    print(f"\n{'arrangement':<42}{'wall s':>9}{'CPU s':>9}  {'best accuracy':>13}  best parameters")
    for name, row in rows.items():
        print(
            f"{name:<42}{row['seconds']:>9.1f}{row['cpu_seconds']:>9.1f}  {row['cv_accuracy_mean']:>13.4f}  "
            f"{row['best_params']}"
        )
    print(
        f"\nspeed-up {speedup:.1f}x wall, {original['cpu_seconds'] / ours['cpu_seconds']:.1f}x CPU; "
        f"best-score difference "
        f"{100 * (ours['cv_accuracy_mean'] - original['cv_accuracy_mean']):+.2f} points; "
        f"peak RSS (process + workers) {memory.peak / 2**20:.0f} MiB; load average at end {os.getloadavg()[0]:.1f}"
    )
    table = [
        "| arrangement | wall s | CPU s | best CV accuracy | best parameters |",
        "| --- | --- | --- | --- | --- |",
        *[
            f"| {name} | {row['seconds']:.1f} | {row['cpu_seconds']:.1f} | {row['cv_accuracy_mean']:.4f} | "
            f"{row['best_params']} |"
            for name, row in rows.items()
        ],
    ]
    header = machine_header(
        load_before, os.getloadavg(), "cd Q3a && ../.venv/bin/python -m benchmarks.bench_grid " + " ".join(sys.argv[1:])
    )
    write_section(
        HERE.parent / "RESULTS.md",
        "bench_grid",
        "## Segment once vs. tokenizer inside CountVectorizer (word-count forest, original grid)\n\n"
        f"{header}\n{len(grid)} candidates x {cv.get_n_splits()} folds, n_jobs={args.jobs}\n\n"
        + "\n".join(table)
        + f"\n\nspeed-up {speedup:.1f}x wall, {original['cpu_seconds'] / ours['cpu_seconds']:.1f}x CPU; "
        f"peak RSS (process + workers) {memory.peak / 2**20:.0f} MiB\n",
    )
    out = HERE.parent / "out" / "bench_grid.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "candidates": len(grid),
                "folds": cv.get_n_splits(),
                "jobs": args.jobs,
                "speedup": speedup,
                "peak_rss_mib": memory.peak / 2**20,
                "arrangements": rows,
            },
            ensure_ascii=False,
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
