"""Article tagger: bag-of-words random forest tuned by grid search, its cross-validated report, a linear
baseline, prediction and saving/loading of the fitted model.

Method (from the original offsite test): ``Pipeline(CountVectorizer, RandomForestClassifier)`` tuned by
``GridSearchCV`` over ``StratifiedKFold(5, shuffle=True, random_state=42)``. Documents are segmented once
beforehand (see ``cantonese_tokenizer.segment_once``) and the vectorizer reads the tokens, so the grid's
candidates and folds never re-segment text. The saved model puts the segmenter back in front, so it takes raw text.
"""

from __future__ import annotations

import platform
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pycantonese
import scipy
import sklearn
from sklearn.base import clone
from sklearn.ensemble import RandomForestClassifier
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_predict
from sklearn.pipeline import Pipeline

from cantonese_tokenizer import CantoneseSegmenter, CantoneseTokenizer, passthrough_tokens

RANDOM_STATE = 42
N_FOLDS = 5
SCORING = {"accuracy": "accuracy", "macro_f1": "f1_macro"}

# The grid asked for by issue 4 (min_df/max_df are fractions of documents).
FOREST_PARAM_GRID = {
    "counts__min_df": [0.01, 0.05, 0.1],
    "counts__max_df": [0.8, 0.9],
    "forest__n_estimators": [50, 100, 200],
    "forest__max_depth": [8, 10, 12],
}
# Best candidate of FOREST_PARAM_GRID on the 377 HK01 articles (benchmarks/bench_grid.py); used by --quick.
BEST_KNOWN_FOREST_PARAMS = {
    "counts__min_df": 0.1,
    "counts__max_df": 0.9,
    "forest__n_estimators": 50,
    "forest__max_depth": 10,
}
CJK_FONTS = [
    "Noto Sans CJK TC",
    "Noto Sans CJK HK",
    "Noto Sans CJK SC",
    "WenQuanYi Zen Hei",
    "AR PL UMing TW",
    "PingFang HK",
    "Microsoft JhengHei",
]
BASELINE_PARAM_GRID = {"linear__C": [1.0, 10.0, 100.0]}
BEST_KNOWN_BASELINE_PARAMS = {"linear__C": 10.0}

# Saved models are refused when any of these differ in major.minor version from the running ones.
VERSIONED_LIBRARIES = {
    "scikit-learn": sklearn,
    "numpy": np,
    "scipy": scipy,
    "pycantonese": pycantonese,
    "joblib": joblib,
}


class TrainingDataError(ValueError):
    """The articles cannot be cross-validated as given (too few tags, or a tag with a single article)."""


class IncompatibleModelError(ValueError):
    """A saved model cannot be used here (library versions differ or the file is not a tagger model)."""


def build_forest_pipeline(random_state: int = RANDOM_STATE) -> Pipeline:
    """CountVectorizer on pre-segmented token tuples -> RandomForestClassifier (one worker; grid search owns
    the cores)."""
    return Pipeline(
        [
            ("counts", CountVectorizer(analyzer=passthrough_tokens)),
            ("forest", RandomForestClassifier(random_state=random_state, n_jobs=1)),
        ]
    )


def build_original_pipeline(tokenizer=None, random_state: int = RANDOM_STATE) -> Pipeline:
    """The original arrangement, kept for the benchmark: the tokenizer runs inside CountVectorizer, so every
    grid candidate and fold segments its documents again. Takes raw text."""
    return Pipeline(
        [
            (
                "counts",
                CountVectorizer(tokenizer=tokenizer or CantoneseTokenizer(), token_pattern=None, lowercase=False),
            ),
            ("forest", RandomForestClassifier(random_state=random_state, n_jobs=1)),
        ]
    )


def build_baseline_pipeline(random_state: int = RANDOM_STATE) -> Pipeline:
    """TF-IDF (sublinear tf) on pre-segmented tokens -> multinomial LogisticRegression."""
    return Pipeline(
        [
            ("tfidf", TfidfVectorizer(analyzer=passthrough_tokens, sublinear_tf=True)),
            ("linear", LogisticRegression(max_iter=5000, random_state=random_state)),
        ]
    )


def make_folds(y, n_folds: int = N_FOLDS, random_state: int = RANDOM_STATE) -> tuple[StratifiedKFold, list[str]]:
    """Stratified, shuffled folds; fewer folds when the smallest class is smaller than ``n_folds``.

    Parameters
    ----------
    y : sequence of str, length n_articles
    Returns
    -------
    (StratifiedKFold, warnings) : warnings is a list of human-readable messages (empty when nothing changed).

    Raises
    ------
    TrainingDataError
        When fewer than two tags are present, or some tag has a single article (no fold split can test it).
    """
    counts = pd.Series(y).value_counts()
    if len(counts) < 2:
        raise TrainingDataError(f"training data has {len(counts)} distinct tag(s); at least 2 are needed")
    smallest_tag, smallest = counts.index[-1], int(counts.iloc[-1])
    messages = []
    if smallest < 2:
        raise TrainingDataError(
            f"tag {smallest_tag!r} has only {smallest} article; every tag needs at least 2 "
            f"(better {n_folds}) articles for cross-validation"
        )
    if smallest < n_folds:
        messages.append(
            f"tag {smallest_tag!r} has only {smallest} articles, fewer than {n_folds} folds: "
            f"using {smallest}-fold cross-validation instead"
        )
        n_folds = smallest
    return StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=random_state), messages


def tune(pipeline: Pipeline, X, y, param_grid: dict, cv, n_jobs: int = -1) -> GridSearchCV:
    """Grid search scored by accuracy and macro-F1, refit on all data with the best accuracy.

    X : list of token tuples (or raw texts for the original pipeline), length n_articles; y : tags.
    """
    search = GridSearchCV(
        pipeline, param_grid, scoring=SCORING, refit="accuracy", cv=cv, n_jobs=n_jobs, error_score="raise"
    )
    return search.fit(X, y)


def best_scores(search: GridSearchCV) -> dict:
    """Mean and standard deviation over folds of accuracy and macro-F1 for the best candidate."""
    i = search.best_index_
    res = search.cv_results_
    return {
        "cv_accuracy_mean": float(res["mean_test_accuracy"][i]),
        "cv_accuracy_std": float(res["std_test_accuracy"][i]),
        "macro_f1": float(res["mean_test_macro_f1"][i]),
        "macro_f1_std": float(res["std_test_macro_f1"][i]),
        "best_params": {k: _plain(v) for k, v in search.best_params_.items()},
    }


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value


@dataclass
class CrossValidatedReport:
    """Out-of-fold view of the best forest: every article predicted by the fold model that did not see it."""

    tags: list[str]
    scores: dict
    baseline_scores: dict
    per_class: pd.DataFrame  # index tag; columns precision, recall, f1, support
    confusion: pd.DataFrame  # rows true tag, columns predicted tag, article counts
    out_of_fold: pd.DataFrame  # id, true_tag, predicted_tag, probability, text
    top_words: pd.DataFrame  # word, importance (mean decrease in impurity of the refitted forest)
    n_folds: int = N_FOLDS
    n_candidates: int = 1
    fold_messages: list[str] = field(default_factory=list)

    @property
    def misclassified(self) -> pd.DataFrame:
        return self.out_of_fold[self.out_of_fold.true_tag != self.out_of_fold.predicted_tag]

    def as_dict(self) -> dict:
        """JSON-ready summary: the best forest's scores, the baseline's, per-class metrics, errors, top words."""
        wrong = self.misclassified
        return {
            **self.scores,
            "misclassified_ids": wrong.id.tolist(),
            "misclassified": [
                {
                    "id": r.id,
                    "true_tag": r.true_tag,
                    "predicted_tag": r.predicted_tag,
                    "probability": round(float(r.probability), 4),
                    "text_start": r.text[:60],
                }
                for r in wrong.itertuples()
            ],
            "baseline": {"model": "TF-IDF + LogisticRegression", **self.baseline_scores},
            "tags": self.tags,
            "n_folds": self.n_folds,
            "n_candidates": self.n_candidates,
            "fold_messages": self.fold_messages,
            "per_class": {
                tag: {k: _plain(v) for k, v in row.items()}
                for tag, row in self.per_class.to_dict(orient="index").items()
            },
            "confusion_matrix": self.confusion.values.tolist(),
            "top_words": [[w, round(float(v), 6)] for w, v in zip(self.top_words.word, self.top_words.importance)],
        }


def cross_validated_report(
    search: GridSearchCV, baseline: GridSearchCV, tokens, y, ids, texts, cv, n_jobs: int = -1, n_top_words: int = 50
) -> CrossValidatedReport:
    """Build the report of the best forest candidate.

    Out-of-fold predictions come from ``cross_val_predict`` with the same folds and the best parameters; with a
    fixed ``random_state`` they are the predictions that produced the grid-search scores. Per-class precision,
    recall and F1 and the confusion matrix are computed on the pooled out-of-fold predictions.
    """
    tags = [str(t) for t in search.classes_]
    proba = cross_val_predict(clone(search.best_estimator_), tokens, y, cv=cv, method="predict_proba", n_jobs=n_jobs)
    predicted = np.asarray(tags, dtype=object)[proba.argmax(axis=1)]
    y = np.asarray(y, dtype=object)
    precision, recall, f1, support = precision_recall_fscore_support(y, predicted, labels=tags, zero_division=0)
    per_class = pd.DataFrame(
        {"precision": precision, "recall": recall, "f1": f1, "support": support}, index=pd.Index(tags, name="tag")
    )
    confusion = pd.DataFrame(
        confusion_matrix(y, predicted, labels=tags),
        index=pd.Index(tags, name="true"),
        columns=pd.Index(tags, name="predicted"),
    )
    out_of_fold = pd.DataFrame(
        {
            "id": list(ids),
            "true_tag": y,
            "predicted_tag": predicted,
            "probability": proba.max(axis=1),
            "text": list(texts),
        }
    )
    return CrossValidatedReport(
        tags=tags,
        scores=best_scores(search),
        baseline_scores=best_scores(baseline),
        per_class=per_class,
        confusion=confusion,
        out_of_fold=out_of_fold,
        top_words=top_words(search.best_estimator_, n_top_words),
        n_folds=cv.get_n_splits(),
        n_candidates=len(search.cv_results_["params"]),
    )


@dataclass
class TrainingResult:
    model: Pipeline  # raw text -> tag, refitted on all training articles with the best parameters
    search: GridSearchCV
    baseline: GridSearchCV
    report: CrossValidatedReport


def train_tagger(
    tokens,
    tags,
    ids,
    texts,
    quick: bool = False,
    n_folds: int = N_FOLDS,
    n_jobs: int = -1,
    tokenizer=None,
    param_grid: dict | None = None,
    log=lambda message: None,
) -> TrainingResult:
    """Tune the forest and the baseline on the same folds and build the cross-validated report.

    Parameters
    ----------
    tokens : list of token tuples, length n_articles (from ``segment_once``; never re-segmented here)
    tags, ids, texts : sequences of str, length n_articles
    quick : use BEST_KNOWN_*_PARAMS instead of the grids (one candidate each)
    param_grid : forest grid overriding FOREST_PARAM_GRID (tests use a small one)
    tokenizer : the tokenizer that produced ``tokens``; put in front of the saved model
    log : callable receiving progress messages

    Raises
    ------
    TrainingDataError
        See :func:`make_folds`.
    """
    cv, messages = make_folds(tags, n_folds)
    for message in messages:
        log(f"warning: {message}")
    if quick:
        forest_grid = {k: [v] for k, v in BEST_KNOWN_FOREST_PARAMS.items()}
        baseline_grid = {k: [v] for k, v in BEST_KNOWN_BASELINE_PARAMS.items()}
    else:
        forest_grid, baseline_grid = param_grid or FOREST_PARAM_GRID, BASELINE_PARAM_GRID
    n_candidates = int(np.prod([len(v) for v in forest_grid.values()]))
    log(f"tuning the forest: {n_candidates} candidate(s) x {cv.get_n_splits()} folds ...")
    search = tune(build_forest_pipeline(), tokens, tags, forest_grid, cv, n_jobs)
    log("scoring the TF-IDF + LogisticRegression baseline on the same folds ...")
    baseline = tune(build_baseline_pipeline(), tokens, tags, baseline_grid, cv, n_jobs)
    log("out-of-fold predictions of the best forest ...")
    report = cross_validated_report(search, baseline, tokens, tags, ids, texts, cv, n_jobs)
    report.fold_messages = messages
    return TrainingResult(
        model=with_segmenter(search.best_estimator_, tokenizer), search=search, baseline=baseline, report=report
    )


def _installed_cjk_font() -> str | None:
    from matplotlib import font_manager

    for family in CJK_FONTS:
        try:
            font_manager.findfont(font_manager.FontProperties(family=family), fallback_to_default=False)
            return family
        except ValueError:
            continue
    return None


def romanise_tag(tag: str) -> str:
    """Jyutping of a tag for plots without a CJK font ("拜登" -> "baai3 dang1"); Latin tags unchanged."""
    return " ".join(jyutping or word for word, jyutping in pycantonese.characters_to_jyutping(tag))


def plot_labels(tags) -> dict:
    """{tag: label drawn in the confusion-matrix PNG}: the tag itself with a CJK font, else its Jyutping."""
    font = _installed_cjk_font()
    return {str(t): str(t) if font else romanise_tag(str(t)) for t in tags}


def plot_confusion_matrix(confusion: pd.DataFrame, path: Path) -> Path:
    """Write the confusion matrix (rows true tag, columns predicted tag, article counts) as a PNG.

    Tags are drawn as written when a CJK font is installed, else in Jyutping (matplotlib's bundled DejaVu Sans
    has no Chinese glyphs). Returns ``path``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay

    font = _installed_cjk_font()
    labels = list(plot_labels(confusion.index).values())
    with plt.rc_context({"font.family": [font, "DejaVu Sans"] if font else ["DejaVu Sans"]}):
        fig, ax = plt.subplots(figsize=(6.5, 6), dpi=120)
        ConfusionMatrixDisplay(confusion.values, display_labels=labels).plot(
            ax=ax, cmap="Blues", colorbar=False, xticks_rotation=30
        )
        plt.setp(ax.get_xticklabels(), ha="right", rotation_mode="anchor")
        ax.set_title("Out-of-fold confusion matrix (articles)")
        if not font:
            fig.text(
                0.01,
                0.01,
                "Tags in Jyutping (no CJK font installed); the text report lists Jyutping -> tag.",
                fontsize=8,
            )
        fig.tight_layout(rect=(0, 0.04, 1, 1))
        fig.savefig(path, bbox_inches="tight")
        plt.close(fig)
    return Path(path)


def top_words(pipeline: Pipeline, n: int = 50) -> pd.DataFrame:
    """The ``n`` vocabulary words with the largest impurity-based importance in the fitted forest."""
    vocabulary = pipeline[0].get_feature_names_out()
    importance = pipeline[-1].feature_importances_
    order = np.argsort(-importance, kind="stable")[:n]
    return pd.DataFrame({"word": vocabulary[order], "importance": importance[order]})


def with_segmenter(fitted: Pipeline, tokenizer=None) -> Pipeline:
    """Put the segmenter in front of a pipeline fitted on tokens, giving a model that takes raw text."""
    return Pipeline([("segment", CantoneseSegmenter(tokenizer or CantoneseTokenizer()))] + list(fitted.steps))


def predict_tags(model: Pipeline, texts, threshold: float = 0.6) -> pd.DataFrame:
    """Predict one tag per article.

    Parameters
    ----------
    model : fitted pipeline taking raw text (see :func:`with_segmenter`)
    texts : sequence of str, length n_articles
    threshold : probability below which ``low_confidence`` is True

    Returns
    -------
    DataFrame with columns predicted_tag, probability (of that tag, in [0, 1]), low_confidence; one row per text.
    """
    proba = model.predict_proba(list(texts))
    best = proba.argmax(axis=1)
    probability = proba[np.arange(len(best)), best]
    return pd.DataFrame(
        {"predicted_tag": model.classes_[best], "probability": probability, "low_confidence": probability < threshold}
    )


def library_versions() -> dict:
    """Versions of the libraries a pickled model depends on, plus Python's: {name: version string}."""
    versions = {name: module.__version__ for name, module in VERSIONED_LIBRARIES.items()}
    versions["python"] = platform.python_version()
    return versions


def save_model(
    path: Path, model: Pipeline, best_params: dict, training_file: Path | str | None = None, demo: bool = False
) -> None:
    """Write the fitted raw-text pipeline with its tag set, parameters, library versions and where it came from
    (training file, whether it is the demo corpus, UTC time of saving) with joblib."""
    bundle = {
        "kind": "q3a-cantonese-tagger",
        "model": model,
        "tags": [str(t) for t in model.classes_],
        "best_params": best_params,
        "versions": library_versions(),
        "training_file": str(Path(training_file).resolve()) if training_file else None,
        "demo": bool(demo),
        "trained_at": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(bundle, path)


def describe_model(bundle: dict) -> str:
    """One line saying which tag set, training file and date a loaded bundle comes from (older bundles lack the
    last two)."""
    source = bundle.get("training_file") or "training file not recorded"
    when = bundle.get("trained_at") or "date not recorded"
    demo = "DEMO corpus (not real news), " if bundle.get("demo") else ""
    return f"tags {', '.join(bundle['tags'])}; trained on {demo}{source}, {when}"


def _major_minor(version: str) -> tuple[str, ...]:
    return tuple(version.split(".")[:2])


def load_model(path: Path) -> dict:
    """Load a bundle written by :func:`save_model`.

    Raises
    ------
    FileNotFoundError
    IncompatibleModelError
        The file is not a tagger bundle, or it was saved with a different major.minor version of scikit-learn,
        numpy, scipy, pycantonese or joblib (a pickled forest is only guaranteed to load on the same versions).
    """
    with warnings.catch_warnings():
        # sklearn warns on version mismatch; we report it ourselves with the versions side by side.
        warnings.simplefilter("ignore")
        try:
            bundle = joblib.load(path)
        except (EOFError, ValueError, KeyError, ImportError, AttributeError, TypeError) as error:
            raise IncompatibleModelError(
                f"{path}: not a readable tagger model ({error}); "
                "retrain with `tagging_prediction.py --train CSV --model-out M`"
            ) from None
    if not isinstance(bundle, dict) or bundle.get("kind") != "q3a-cantonese-tagger":
        raise IncompatibleModelError(f"{path}: not a tagger model saved by tagging_prediction.py")
    current = library_versions()
    mismatched = [
        f"{name} {bundle['versions'].get(name)} (running {current[name]})"
        for name in VERSIONED_LIBRARIES
        if _major_minor(str(bundle["versions"].get(name))) != _major_minor(current[name])
    ]
    if mismatched:
        raise IncompatibleModelError(
            f"{path}: saved with incompatible library versions: {', '.join(mismatched)}; "
            "retrain the model with the installed requirements"
        )
    return bundle
