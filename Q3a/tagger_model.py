"""Article tagger: word + character n-gram counts into a random forest tuned by grid search, trained on whole
articles and on their first 30, 60 and 120 characters, with calibrated probabilities and an off-topic flag.

Method: ``Pipeline(features, RandomForestClassifier)`` tuned by ``GridSearchCV`` over stratified 5-fold CV
(``StratifiedKFold(5, shuffle=True, random_state=42)`` over articles). ``features`` is a ``ColumnTransformer`` that
unions binary word counts (PyCantonese segmentation, see ``cantonese_tokenizer``) and binary character 1-2-gram
counts of the same text. Every article enters training four times, as its full text and as its first 30, 60 and
120 characters (snippet rows); the folds keep all rows of one article on the same side, so every CV score is on
articles the fold model never saw. The grid picks the best full-text accuracy; ties go to the candidate with the
best mean snippet accuracy. The chosen forest is wrapped in ``CalibratedClassifierCV(method="sigmoid")`` (Platt
scaling on out-of-fold predictions, one forest refitted on all rows); ``off_topic`` means the text's topic
evidence is below the model's off-topic threshold for its length (see :func:`topic_evidence`). A linear
candidate (TF-IDF on the same features + LogisticRegression) is tuned on the same folds and reported beside the
forest.

Documents are segmented once beforehand (``cantonese_tokenizer.segment_once``) and the feature step reads the
tokens, so the grid's candidates and folds never re-segment text. The saved model puts the segmenter back in front,
so it takes raw text.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.feature_extraction.text import CountVectorizer, TfidfTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (
    accuracy_score,
    brier_score_loss,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
)
from sklearn.model_selection import GridSearchCV, ParameterGrid, StratifiedKFold, cross_val_predict
from sklearn.pipeline import Pipeline

from cantonese_tokenizer import CantoneseSegmenter, CantoneseTokenizer, join_tokens, passthrough_tokens, segment_once

RANDOM_STATE = 42
N_FOLDS = 5
# Snippet rows: the first N characters of every article; "full" is the whole text.
SNIPPET_LENGTHS = (30, 60, 120)
VERSIONS = tuple(str(n) for n in SNIPPET_LENGTHS) + ("full",)
# Folds of the inner cross-validation that estimates the calibrated model's out-of-fold probabilities.
CALIBRATION_FOLDS = 3
# Share of the training articles (out of fold, full text) allowed below the off-topic threshold.
OFF_TOPIC_QUANTILE = 0.005

# Character n-grams seen in fewer training rows are dropped: they are mostly noise and, left in, they make each
# forest several times slower to fit.
CHAR_MIN_DF = 3
# min_df counts training rows: an article and its three snippets are four rows.
FOREST_PARAM_GRID = {
    "features__words__min_df": [1, 3],
    "features__chars__ngram_range": [(1, 1), (1, 2)],
    "forest__n_estimators": [100, 200],
}
# One candidate of each grid, used by --quick (and by the nested evaluation with --quick) instead of the search.
QUICK_FOREST_PARAMS = {
    "features__words__min_df": 3,
    "features__chars__ngram_range": (1, 2),
    "forest__n_estimators": 100,
}
LINEAR_PARAM_GRID = {"linear__C": [1.0, 10.0, 100.0]}
QUICK_LINEAR_PARAMS = {"linear__C": 10.0}


class TrainingDataError(ValueError):
    """The articles cannot be cross-validated as given (too few tags, or a tag with a single article)."""


def build_features() -> ColumnTransformer:
    """Union of binary word counts and binary character n-gram counts, both read from the ``tokens`` column
    (token tuples) of a DataFrame. Binary counts make a 30-character headline and a 3,000-character article
    comparable: a word's presence matters, not how often a long text repeats it."""
    return ColumnTransformer(
        [
            ("words", CountVectorizer(analyzer=passthrough_tokens, binary=True), "tokens"),
            (
                "chars",
                CountVectorizer(
                    analyzer="char",
                    preprocessor=join_tokens,
                    lowercase=False,
                    binary=True,
                    ngram_range=(1, 2),
                    min_df=CHAR_MIN_DF,
                ),
                "tokens",
            ),
        ]
    )


def build_forest_pipeline(random_state: int = RANDOM_STATE) -> Pipeline:
    """Features -> RandomForestClassifier (one worker per forest; grid search owns the cores)."""
    return Pipeline(
        [("features", build_features()), ("forest", RandomForestClassifier(random_state=random_state, n_jobs=1))]
    )


def build_linear_pipeline(random_state: int = RANDOM_STATE) -> Pipeline:
    """Features -> TF-IDF weighting (l2-normalised rows) -> multinomial LogisticRegression."""
    return Pipeline(
        [
            ("features", build_features()),
            ("tfidf", TfidfTransformer()),
            ("linear", LogisticRegression(max_iter=5000, random_state=random_state)),
        ]
    )


def article_rows(texts, tags, tokenizer, progress: bool | None = None) -> tuple[pd.DataFrame, np.ndarray]:
    """Training rows: every article as its full text and as its first 30, 60 and 120 characters.

    Parameters
    ----------
    texts, tags : sequences of str, length n_articles
    tokenizer : callable str -> list of str (each distinct text or snippet is segmented once)

    Returns
    -------
    (X, y) : X is a DataFrame of 4 * n_articles rows with columns ``article`` (position in ``texts``),
        ``version`` (one of VERSIONS) and ``tokens`` (token tuple); y the article's tag per row.
    """
    texts = list(texts)
    versions = [(version, n) for version, n in zip(VERSIONS, [*SNIPPET_LENGTHS, None])]
    documents = [text[:n] if n else text for _, n in versions for text in texts]
    tokens = segment_once(documents, tokenizer, progress=progress)
    X = pd.DataFrame(
        {
            "article": np.tile(np.arange(len(texts)), len(versions)),
            "version": np.repeat([v for v, _ in versions], len(texts)),
            "tokens": tokens,
        }
    )
    return X, np.tile(np.asarray(tags, dtype=object), len(versions))


class ArticleFolds:
    """Stratified k-fold over articles for rows made by :func:`article_rows`: all rows of an article (full text
    and snippets) fall on the same side, so a fold model is always scored on articles it never saw.

    The article folds are ``StratifiedKFold(n_splits, shuffle=True, random_state)`` on one row per article.
    """

    def __init__(self, n_splits: int = N_FOLDS, random_state: int = RANDOM_STATE):
        self.n_splits = n_splits
        self.random_state = random_state

    def split(self, X, y, groups=None):
        """Yield (train_rows, test_rows) integer index arrays into ``X`` (which has an ``article`` column)."""
        articles = np.asarray(X["article"])
        ids, first = np.unique(articles, return_index=True)
        folds = StratifiedKFold(self.n_splits, shuffle=True, random_state=self.random_state)
        for train, test in folds.split(ids, np.asarray(y).astype(str)[first]):
            yield np.flatnonzero(np.isin(articles, ids[train])), np.flatnonzero(np.isin(articles, ids[test]))

    def get_n_splits(self, X=None, y=None, groups=None) -> int:
        return self.n_splits


def make_folds(y, n_folds: int = N_FOLDS, random_state: int = RANDOM_STATE) -> tuple[ArticleFolds, list[str]]:
    """Article folds; fewer folds when the smallest tag has fewer articles than ``n_folds``.

    Parameters
    ----------
    y : sequence of str, one tag per article
    Returns
    -------
    (ArticleFolds, warnings) : warnings is a list of human-readable messages (empty when nothing changed).

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
    return ArticleFolds(n_folds, random_state), messages


class VersionScore:
    """Scorer (``scorer(estimator, X, y)``) for GridSearchCV: accuracy or macro-F1 on the rows of one version
    (``"30"``, ``"60"``, ``"120"`` or ``"full"``) of the test fold."""

    def __init__(self, version: str, metric: str = "accuracy"):
        self.version = version
        self.metric = metric

    def __call__(self, estimator, X, y) -> float:
        keep = np.asarray(X["version"] == self.version)
        truth, predicted = np.asarray(y, dtype=object)[keep], estimator.predict(X[keep])
        if self.metric == "macro_f1":
            return float(f1_score(truth, predicted, average="macro"))
        return float(accuracy_score(truth, predicted))


SCORING = {f"accuracy_{v}": VersionScore(v) for v in VERSIONS} | {"macro_f1_full": VersionScore("full", "macro_f1")}


def select_best(cv_results: dict) -> int:
    """Index of the grid candidate with the best mean full-text accuracy; among candidates tied on it, the best
    mean accuracy over the 30-, 60- and 120-character snippets (then the first in grid order)."""
    full = np.asarray(cv_results["mean_test_accuracy_full"])
    snippets = np.mean([cv_results[f"mean_test_accuracy_{n}"] for n in SNIPPET_LENGTHS], axis=0)
    tied = np.flatnonzero(np.isclose(full, full.max(), rtol=0, atol=1e-12))
    return int(tied[np.argmax(snippets[tied])])


def tune(pipeline: Pipeline, X, y, param_grid: dict, cv, n_jobs: int = -1) -> GridSearchCV:
    """Grid search scored on every version (accuracy) and full text (macro-F1); no refit (the caller builds the
    calibrated model from the parameters chosen by :func:`select_best`).

    X : DataFrame from :func:`article_rows`; y : tag per row.
    """
    search = GridSearchCV(pipeline, param_grid, scoring=SCORING, refit=False, cv=cv, n_jobs=n_jobs, error_score="raise")
    return search.fit(X, y)


def best_scores(search: GridSearchCV) -> dict:
    """Scores of the candidate chosen by :func:`select_best`: mean and standard deviation over folds of the
    full-text accuracy and macro-F1, and accuracy by text length ({version: {mean, std}})."""
    i = select_best(search.cv_results_)
    res = search.cv_results_
    return {
        "cv_accuracy_mean": float(res["mean_test_accuracy_full"][i]),
        "cv_accuracy_std": float(res["std_test_accuracy_full"][i]),
        "macro_f1": float(res["mean_test_macro_f1_full"][i]),
        "macro_f1_std": float(res["std_test_macro_f1_full"][i]),
        "accuracy_by_length": {
            v: {"mean": float(res[f"mean_test_accuracy_{v}"][i]), "std": float(res[f"std_test_accuracy_{v}"][i])}
            for v in VERSIONS
        },
        "best_params": {k: _plain(v) for k, v in res["params"][i].items()},
    }


def _plain(value):
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value.item() if isinstance(value, np.generic) else value


def _tuple_params(params: dict) -> dict:
    # JSON turns the ngram_range tuple into a list; scikit-learn wants the tuple back.
    return {k: tuple(v) if isinstance(v, list) else v for k, v in params.items()}


def calibrated(pipeline: Pipeline, cv) -> CalibratedClassifierCV:
    """Platt scaling (one sigmoid per tag, then normalised) fitted on out-of-fold predictions over ``cv``; the
    pipeline itself is refitted once on all rows (``ensemble=False``)."""
    return CalibratedClassifierCV(pipeline, method="sigmoid", cv=cv, ensemble=False)


def topic_evidence(forest: Pipeline, X) -> np.ndarray:
    """Topic evidence of each text: the sum of the forest's impurity-based feature importances over the features
    (words, characters, character pairs) present in it; in [0, 1], shape (n_texts,).

    Text about one of the tags contains that tag's telling words and characters; text about none of them contains
    few, whatever the forest then votes. ``forest`` is a fitted (features, forest) pipeline; X a token DataFrame.
    """
    present = (forest[0].transform(X) > 0).astype(float)
    return np.asarray(present @ forest[-1].feature_importances_).ravel()


def off_topic_rule(evidence, versions, article_lengths) -> dict:
    """Thresholds of topic evidence below which a text is called off-topic, one per text length.

    Parameters
    ----------
    evidence : out-of-fold topic evidence of the training rows (on-topic by definition), shape (n_rows,)
    versions : the rows' versions ("30", "60", "120", "full"), shape (n_rows,)
    article_lengths : lengths in characters of the training articles

    Returns
    -------
    {"thresholds": {version: the OFF_TOPIC_QUANTILE (0.5%) quantile of that version's evidence},
     "full_from_chars": texts at least this long use the full-text threshold (5% quantile of article lengths,
     at least 121)}. About 99.5% of on-topic texts of each length stay at or above their threshold.
    """
    evidence, versions = np.asarray(evidence, dtype=float), np.asarray(versions)
    thresholds = {
        v: round(float(np.quantile(evidence[versions == v], OFF_TOPIC_QUANTILE, method="lower")), 6) for v in VERSIONS
    }
    full_from = max(SNIPPET_LENGTHS[-1] + 1, int(np.quantile(np.asarray(article_lengths), 0.05)))
    return {"thresholds": thresholds, "full_from_chars": full_from}


def threshold_for(rule: dict, n_chars: int) -> float:
    """The off-topic threshold of ``rule`` for a text of ``n_chars`` characters: the longest snippet length it
    reaches (under 60 characters the 30-character threshold, under 120 the 60-character one, ...), and the
    full-text threshold from ``rule["full_from_chars"]`` on."""
    if n_chars >= rule["full_from_chars"]:
        return rule["thresholds"]["full"]
    reached = [n for n in SNIPPET_LENGTHS if n_chars >= n] or [SNIPPET_LENGTHS[0]]
    return rule["thresholds"][str(reached[-1])]


def uniform_rule(threshold: float) -> dict:
    """An off-topic rule with one threshold for every length (``predict --threshold``)."""
    return {"thresholds": dict.fromkeys(VERSIONS, float(threshold)), "full_from_chars": 0}


def brier_score(y, proba, tags) -> float:
    """Multiclass Brier score: mean over texts of the sum over tags of (probability - indicator)^2, in [0, 2]."""
    return float(brier_score_loss(np.asarray(y, dtype=object), proba, labels=list(tags)))


@dataclass
class CrossValidatedReport:
    """Out-of-fold view of the tagger: every article (and snippet) predicted by a fold model that did not see it."""

    tags: list[str]
    scores: dict  # forest: see best_scores
    linear_scores: dict  # linear candidate: see best_scores
    calibration: dict  # brier_by_length {version: score}, off_topic rule, flagged_by_length {version: share}
    per_class: pd.DataFrame  # index tag; columns precision, recall, f1, support (full text)
    confusion: pd.DataFrame  # rows true tag, columns predicted tag, article counts (full text)
    out_of_fold: pd.DataFrame  # id, true_tag, predicted_tag, probability, off_topic, text (full text)
    top_words: pd.DataFrame  # feature, importance (mean decrease in impurity of the refitted forest)
    n_folds: int = N_FOLDS
    n_candidates: int = 1
    fold_messages: list[str] = field(default_factory=list)

    @property
    def misclassified(self) -> pd.DataFrame:
        return self.out_of_fold[self.out_of_fold.true_tag != self.out_of_fold.predicted_tag]

    def as_dict(self) -> dict:
        """JSON-ready summary: forest and linear scores (overall and by length), calibration, per-class metrics,
        errors, top features."""
        wrong = self.misclassified
        return {
            **self.scores,
            "calibration": self.calibration,
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
            "linear": {"model": "TF-IDF + LogisticRegression (same features)", **self.linear_scores},
            "tags": self.tags,
            "n_folds": self.n_folds,
            "n_candidates": self.n_candidates,
            "fold_messages": self.fold_messages,
            "per_class": {
                tag: {k: _plain(v) for k, v in row.items()}
                for tag, row in self.per_class.to_dict(orient="index").items()
            },
            "confusion_matrix": self.confusion.values.tolist(),
            "top_features": [
                [w, round(float(v), 6)] for w, v in zip(self.top_words.feature, self.top_words.importance)
            ],
        }


@dataclass
class TrainingResult:
    model: Pipeline  # raw text -> calibrated tag probabilities, refitted on all rows with the best parameters
    off_topic: dict  # see off_topic_rule
    forest_search: GridSearchCV
    linear_search: GridSearchCV
    report: CrossValidatedReport


def _grid(param_grid: dict, quick: bool, best_known: dict) -> dict:
    return {k: [v] for k, v in best_known.items()} if quick else param_grid


def train_tagger(
    texts,
    tags,
    ids,
    tokenizer=None,
    quick: bool = False,
    n_folds: int = N_FOLDS,
    n_jobs: int = -1,
    param_grid: dict | None = None,
    log=lambda message: None,
) -> TrainingResult:
    """Tune the forest and the linear candidate on the same article folds, calibrate the forest and build the
    cross-validated report.

    Parameters
    ----------
    texts, tags, ids : sequences of str, length n_articles
    tokenizer : callable str -> list of str; default ``CantoneseTokenizer()``; put in front of the saved model
    quick : use QUICK_*_PARAMS instead of the grids (one candidate each)
    param_grid : forest grid overriding FOREST_PARAM_GRID (tests use a small one)
    n_jobs : worker processes for grid search and cross-validation (-1 = all cores)
    log : callable receiving progress messages

    Raises
    ------
    TrainingDataError
        See :func:`make_folds`.
    """
    tokenizer = tokenizer or CantoneseTokenizer()
    cv, messages = make_folds(tags, n_folds)
    for message in messages:
        log(f"warning: {message}")
    X, y = article_rows(texts, tags, tokenizer)
    forest_grid = _grid(param_grid or FOREST_PARAM_GRID, quick, QUICK_FOREST_PARAMS)
    n_candidates = len(ParameterGrid(forest_grid))
    log(f"tuning the forest: {n_candidates} candidate(s) x {cv.get_n_splits()} folds on {len(X)} rows ...")
    forest_search = tune(build_forest_pipeline(), X, y, forest_grid, cv, n_jobs)
    log("tuning the linear candidate on the same folds ...")
    linear_search = tune(
        build_linear_pipeline(), X, y, _grid(LINEAR_PARAM_GRID, quick, QUICK_LINEAR_PARAMS), cv, n_jobs
    )
    scores = best_scores(forest_search)
    best = build_forest_pipeline().set_params(**_tuple_params(scores["best_params"]))

    log("out-of-fold forest votes, topic evidence and calibrated probabilities ...")
    votes, evidence = np.zeros((len(X), len(np.unique(y)))), np.zeros(len(X))
    for train, test in cv.split(X, y):
        fold = clone(best).fit(X.iloc[train], y[train])
        votes[test], evidence[test] = fold.predict_proba(X.iloc[test]), topic_evidence(fold, X.iloc[test])
    inner = ArticleFolds(min(CALIBRATION_FOLDS, cv.get_n_splits()), RANDOM_STATE)
    proba = cross_val_predict(calibrated(best, inner), X, y, cv=cv, method="predict_proba", n_jobs=n_jobs)
    log("fitting the calibrated forest on all rows ...")
    model = calibrated(clone(best), cv).fit(X, y)
    tag_names = [str(t) for t in model.classes_]

    version = np.asarray(X["version"])
    full = version == "full"
    rule = off_topic_rule(evidence, version, [len(t) for t in texts])
    flagged = evidence < np.array([rule["thresholds"][v] for v in version])
    calibration = {
        "method": "sigmoid (Platt), CalibratedClassifierCV",
        "brier_by_length": {v: brier_score(y[version == v], proba[version == v], tag_names) for v in VERSIONS},
        "brier_uncalibrated_by_length": {
            v: brier_score(y[version == v], votes[version == v], tag_names) for v in VERSIONS
        },
        "off_topic": rule,
        "flagged_by_length": {v: float(flagged[version == v].mean()) for v in VERSIONS},
    }
    report = _report(
        tag_names, scores, best_scores(linear_search), calibration, proba[full], flagged[full], y[full], ids, texts
    )
    report.top_words = top_features(model)
    report.n_folds, report.n_candidates, report.fold_messages = cv.get_n_splits(), n_candidates, messages
    return TrainingResult(
        model=with_segmenter(model, tokenizer),
        off_topic=rule,
        forest_search=forest_search,
        linear_search=linear_search,
        report=report,
    )


def _report(tags, scores, linear_scores, calibration, proba, flagged, y, ids, texts) -> CrossValidatedReport:
    """Per-class metrics, confusion matrix and out-of-fold table from full-text out-of-fold probabilities."""
    predicted = np.asarray(tags, dtype=object)[proba.argmax(axis=1)]
    precision, recall, f1, support = precision_recall_fscore_support(y, predicted, labels=tags, zero_division=0)
    per_class = pd.DataFrame(
        {"precision": precision, "recall": recall, "f1": f1, "support": support}, index=pd.Index(tags, name="tag")
    )
    confusion = pd.DataFrame(
        confusion_matrix(y, predicted, labels=tags),
        index=pd.Index(tags, name="true"),
        columns=pd.Index(tags, name="predicted"),
    )
    probability = proba.max(axis=1)
    out_of_fold = pd.DataFrame(
        {
            "id": list(ids),
            "true_tag": y,
            "predicted_tag": predicted,
            "probability": probability.round(4),
            "off_topic": flagged,
            "text": list(texts),
        }
    )
    return CrossValidatedReport(
        tags=tags,
        scores=scores,
        linear_scores=linear_scores,
        calibration=calibration,
        per_class=per_class,
        confusion=confusion,
        out_of_fold=out_of_fold,
        top_words=pd.DataFrame(columns=["feature", "importance"]),
    )


def fitted_forest(model) -> Pipeline:
    """The (features, forest) pipeline inside a calibrated model (or a raw-text model from :func:`with_segmenter`)."""
    if isinstance(model, Pipeline) and isinstance(model.steps[0][1], CantoneseSegmenter):
        model = model[-1]
    return model.calibrated_classifiers_[0].estimator


def top_features(model, n: int = 50) -> pd.DataFrame:
    """The ``n`` features (words, and characters or character pairs marked ``chars:``) with the largest
    impurity-based importance in the fitted forest. Returns a DataFrame with columns feature, importance."""
    forest = fitted_forest(model)
    names = [
        name.replace("words__", "", 1) if name.startswith("words__") else name.replace("__", ":", 1)
        for name in forest[0].get_feature_names_out()
    ]
    importance = forest[-1].feature_importances_
    order = np.argsort(-importance, kind="stable")[:n]
    return pd.DataFrame({"feature": np.asarray(names, dtype=object)[order], "importance": importance[order]})


def with_segmenter(fitted, tokenizer=None) -> Pipeline:
    """Put the segmenter in front of a model fitted on token rows, giving a model that takes raw text."""
    return Pipeline([("segment", CantoneseSegmenter(tokenizer or CantoneseTokenizer())), ("tagger", fitted)])


def predict_tags(model: Pipeline, texts, off_topic: dict) -> pd.DataFrame:
    """Predict one tag per article.

    Parameters
    ----------
    model : fitted raw-text model (see :func:`with_segmenter`)
    texts : sequence of non-empty str, length n_articles
    off_topic : the model's off-topic rule (see :func:`off_topic_rule`; :func:`uniform_rule` for one threshold)

    Returns
    -------
    DataFrame with columns predicted_tag, probability (calibrated probability of that tag, in [0, 1], rounded to
    4 places), off_topic (bool); one row per text.
    """
    texts = list(texts)
    proba = model.predict_proba(texts)
    evidence = topic_evidence(fitted_forest(model), model[0].transform(texts))
    thresholds = np.array([threshold_for(off_topic, len(text)) for text in texts])
    best = proba.argmax(axis=1)
    probability = proba[np.arange(len(best)), best]
    return pd.DataFrame(
        {
            "predicted_tag": model.classes_[best],
            "probability": probability.round(4),
            "off_topic": evidence < thresholds,
        }
    )
