"""Offline evaluation of artist recommenders: holdout splits, ranking metrics, tuning on a validation split, and
the comparison with popularity and implicit's baselines.

Protocol (:func:`evaluate`): for every user with at least ``min_artists`` artists, a fixed-seed random 20% of their
artists (at least one) is the **test** set; of the remaining artists, another 20% is the **validation** set. The
user-user model's ``k``, profile weight and play weighting, and the baselines' main parameter, are chosen by NDCG@k
on the validation set (models fitted on what remains); the chosen settings are then refitted on everything but
the test set and scored on it. Every model sees the same splits and the same evaluated users.

Metrics, for one user with recommended list ``r_1..r_k`` (ids, -1 for an empty place) and held-out set ``H``
(``hit_i = 1`` if ``r_i`` is in ``H``); each is averaged over the evaluated users:

* precision@k = sum_i hit_i / k  (implicit's ``precision_at_k`` divides by min(k, |H|) instead)
* recall@k = sum_i hit_i / |H|
* NDCG@k = DCG / IDCG with DCG = sum_i hit_i / log2(i + 1) and IDCG = sum_{i=1..min(k, |H|)} 1 / log2(i + 1)
  (binary gains, as implicit's ``ndcg_at_k``)
* MAP@k = sum_i hit_i * precision@i / min(k, |H|)
* catalogue coverage = distinct recommended artists / artists in the catalogue (a property of all lists).

The paired standard error of a difference of two models' means over the same users is
``std(d, ddof=1) / sqrt(n)`` with ``d`` the per-user differences.

Baselines: global and country popularity (``q3b_popularity``), implicit's AlternatingLeastSquares (Hu, Koren,
Volinsky 2008) on BM25-weighted plays and implicit's item-item BM25Recommender.
"""

from __future__ import annotations

import itertools
import time
import warnings

import numpy as np
import pandas as pd
import scipy.sparse as sp

import q3b_popularity
from q3b_features import UserArtistData
from user_knn import UserUserKNN

METRICS = ("precision", "recall", "ndcg", "map")
K_GRID = (10, 20, 50, 100)
PROFILE_WEIGHT_GRID = (0.0, 0.03, 0.3)
PLAY_WEIGHTING_GRID = ("share", "log")
BM25_K_GRID = (50, 100, 200)
ALS_FACTORS_GRID = (32, 64, 128)


class EmptyHoldoutError(ValueError):
    """No user has enough artists for the holdout split, so there is nothing to evaluate."""


def holdout_split(plays: sp.csr_matrix, fraction: float = 0.2, min_artists: int = 5, random_state: int = 0):
    """Hide ``round(fraction * n)`` (at least 1) random artists of each user with ``n >= min_artists`` artists.

    ``plays``: CSR (n_users, n_artists). Returns ``(train, test)`` CSR matrices of the same shape whose stored
    entries partition the non-zero entries of ``plays``. Raises ValueError unless 0 < fraction < 1.
    """
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be between 0 and 1, got {fraction}")
    plays = plays.tocsr().copy()
    plays.eliminate_zeros()
    counts = np.diff(plays.indptr)
    rows = np.repeat(np.arange(plays.shape[0]), counts)
    rng = np.random.default_rng(random_state)
    order = np.lexsort((rng.random(len(rows)), rows))  # random order within each row
    rank = np.empty(len(rows), np.int64)
    rank[order] = np.arange(len(rows)) - plays.indptr[rows[order]]
    n_hidden = np.where(counts >= min_artists, np.maximum(1, np.round(fraction * counts)), 0).astype(np.int64)
    hidden = rank < n_hidden[rows]
    # own copies of indices/indptr: eliminate_zeros compacts them in place
    test = sp.csr_matrix((plays.data * hidden, plays.indices.copy(), plays.indptr.copy()), shape=plays.shape)
    train = sp.csr_matrix((plays.data * ~hidden, plays.indices.copy(), plays.indptr.copy()), shape=plays.shape)
    test.eliminate_zeros()
    train.eliminate_zeros()
    return train, test


# --- metrics --------------------------------------------------------------------------------------------------------
def _hits(ids: np.ndarray, held_out: sp.csr_matrix, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(hits bool (n_users, k), |H| per user) for lists ``ids`` (n_users, >= k) against the rows of ``held_out``."""
    ids = np.atleast_2d(np.asarray(ids))
    held_out = sp.csr_matrix(held_out)
    if k < 1 or ids.shape[1] < k:
        raise ValueError(f"k must be between 1 and the list length {ids.shape[1]}, got {k}")
    if held_out.shape[0] != ids.shape[0]:
        raise ValueError(f"held_out has {held_out.shape[0]} rows for {ids.shape[0]} lists; give one row per list")
    n_held = np.diff(held_out.indptr)
    if (n_held == 0).any():
        raise ValueError("every evaluated user needs at least one held-out item")
    top = ids[:, :k].astype(np.int64)
    coo = held_out.tocoo()
    held_keys = np.sort(coo.row.astype(np.int64) * held_out.shape[1] + coo.col)
    keys = np.arange(len(top), dtype=np.int64)[:, None] * held_out.shape[1] + top
    return np.isin(keys, held_keys) & (top >= 0), n_held.astype(np.float64)


def per_user_metrics(ids: np.ndarray, held_out: sp.csr_matrix, k: int = 10) -> pd.DataFrame:
    """precision@k, recall@k, NDCG@k and MAP@k (module docstring) of each user: one row per list.

    ``ids``: (n_users, >= k) recommended item ids, -1 for empty places (a model's ``recommend`` output);
    ``held_out``: CSR (n_users, n_items), row ``u`` the held-out items of list ``u``, at least one each. Raises
    ValueError for mismatched shapes, k outside 1..list length or a user without held-out items."""
    hits, n_held = _hits(ids, held_out, k)
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    ideal = np.cumsum(discounts)[np.minimum(n_held, k).astype(int) - 1]
    precision_at_i = np.cumsum(hits, axis=1) / np.arange(1, k + 1)
    return pd.DataFrame(
        {
            "precision": hits.sum(1) / k,
            "recall": hits.sum(1) / n_held,
            "ndcg": (hits * discounts).sum(1) / ideal,
            "map": (precision_at_i * hits).sum(1) / np.minimum(n_held, k),
        }
    )


def precision_at_k(ids, held_out, k: int = 10) -> float:
    """Mean precision@k = hits / k (see :func:`per_user_metrics` for the arguments)."""
    return float(per_user_metrics(ids, held_out, k)["precision"].mean())


def recall_at_k(ids, held_out, k: int = 10) -> float:
    """Mean recall@k = hits / |held out|."""
    return float(per_user_metrics(ids, held_out, k)["recall"].mean())


def ndcg_at_k(ids, held_out, k: int = 10) -> float:
    """Mean NDCG@k with binary gains and log2(rank + 1) discounts, ideal list of min(k, |held out|) hits."""
    return float(per_user_metrics(ids, held_out, k)["ndcg"].mean())


def map_at_k(ids, held_out, k: int = 10) -> float:
    """Mean MAP@k = sum over hit ranks i of precision@i, divided by min(k, |held out|)."""
    return float(per_user_metrics(ids, held_out, k)["map"].mean())


def coverage(ids: np.ndarray, n_items: int) -> float:
    """Share of the catalogue that appears in at least one list."""
    return float(len(np.unique(ids[ids >= 0])) / n_items)


def paired_standard_error(a: np.ndarray, b: np.ndarray) -> float:
    """Standard error of mean(a - b) for per-user values of two models on the same users: std(a - b) / sqrt(n)."""
    d = np.asarray(a, np.float64) - np.asarray(b, np.float64)
    return float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else float("nan")


# --- models under evaluation -------------------------------------------------------------------------------------
def recommend_popular(train: sp.csr_matrix, country: np.ndarray, n_countries: int, users, k: int, by_country: bool):
    """Most-listened artists not in the user's ``train`` row: the country chart then the global one
    (``by_country``), or the global chart only. Returns (len(users), k) artist ids."""
    charts = q3b_popularity.popularity_charts(train, country, n_countries)
    artist = np.full((len(users), k), -1, np.int32)
    score, source = np.zeros(artist.shape, np.float32), np.zeros(artist.shape, np.int8)
    codes = country[users] if by_country else np.full(len(users), -1)
    q3b_popularity.fill_from_popular(artist, score, source, train[users], codes, charts)
    return artist


def recommend_implicit(train: sp.csr_matrix, users, k: int, model: str, size: int, random_state: int = 0):
    """Top-k from implicit's CPU models fitted on ``train`` (users x artists): 'als' on BM25-weighted plays
    (``size`` factors, 15 iterations) or 'bm25' item-item (``size`` = K neighbours per item)."""
    from implicit.cpu.als import AlternatingLeastSquares
    from implicit.nearest_neighbours import BM25Recommender, bm25_weight
    from threadpoolctl import threadpool_limits

    train = train.tocsr().astype(np.float32)
    with threadpool_limits(1, "blas"), warnings.catch_warnings():  # implicit: threaded BLAS slows ALS down
        # BM25Recommender converts its own BM25-weighted COO copy and warns about it; nothing to fix on our side
        warnings.filterwarnings("ignore", message="Method expects CSR input")
        if model == "als":
            recommender = AlternatingLeastSquares(
                factors=size, iterations=15, regularization=0.05, random_state=random_state
            )
            recommender.fit(bm25_weight(train, K1=100, B=0.8).tocsr().astype(np.float32), show_progress=False)
        elif model == "bm25":
            recommender = BM25Recommender(K=size)
            recommender.fit(train, show_progress=False)
        else:
            raise ValueError(f"model must be 'als' or 'bm25', got {model!r}")
        ids, _ = recommender.recommend(users, train[users], N=k, filter_already_liked_items=True)
    return np.asarray(ids, dtype=np.int32)


def _sample_users(held_out: sp.csr_matrix, max_users: int | None, random_state: int) -> np.ndarray:
    users = np.flatnonzero(np.diff(held_out.indptr) > 0)
    if max_users is not None and len(users) > max_users:
        users = np.sort(np.random.default_rng(random_state).choice(users, max_users, replace=False))
    return users


def _user_knn_ids(train, profiles, users, k, params, method):
    model = UserUserKNN(**params, method=method).fit(train, profiles)
    return model.recommend(users, train[users], N=k)[0]


def tune(
    data: UserArtistData,
    train: sp.csr_matrix,
    *,
    k: int = 10,
    max_users: int | None = 5000,
    baselines: bool = True,
    random_state: int = 0,
    method: str = "auto",
) -> pd.DataFrame:
    """Validation NDCG@k of every setting on the grids (K_GRID x PROFILE_WEIGHT_GRID x PLAY_WEIGHTING_GRID for the
    user-user model; the profile weight only when there are profiles; BM25_K_GRID, ALS_FACTORS_GRID): ``train`` is
    split once more (another seed), models are fitted on the rest and scored on the validation part. Returns one
    row per (model, setting): ``model``, ``params`` (dict), ``ndcg@k``."""
    fit_part, validation = holdout_split(train, random_state=random_state + 1)
    users = _sample_users(validation, max_users, random_state)
    if not len(users):
        raise EmptyHoldoutError("no user has enough artists left for a validation split")
    profiles = data.profiles
    weights = PROFILE_WEIGHT_GRID if len(data.countries) or np.isfinite(data.age).any() else (0.0,)
    n_pool = int((np.diff(fit_part.indptr) > 0).sum())
    rows = []
    for neighbours_k, weight, weighting in itertools.product(K_GRID, weights, PLAY_WEIGHTING_GRID):
        if neighbours_k > n_pool - 1:
            continue
        params = {"k": neighbours_k, "profile_weight": weight, "play_weighting": weighting}
        ids = _user_knn_ids(fit_part, profiles, users, k, params, method)
        rows.append({"model": "user-user", "params": params, f"ndcg@{k}": ndcg_at_k(ids, validation[users], k)})
    if baselines:
        for model, grid in (("bm25", BM25_K_GRID), ("als", ALS_FACTORS_GRID)):
            for size in grid:
                ids = recommend_implicit(fit_part, users, k, model, size, random_state)
                score = ndcg_at_k(ids, validation[users], k)
                rows.append({"model": model, "params": {"size": size}, f"ndcg@{k}": score})
    return pd.DataFrame(rows)


def _best(tuning: pd.DataFrame, model: str, k: int) -> dict:
    part = tuning[tuning["model"] == model]
    return part.loc[part[f"ndcg@{k}"].idxmax(), "params"]


def evaluate(
    data: UserArtistData,
    *,
    k: int = 10,
    max_users: int | None = 5000,
    baselines: bool = True,
    random_state: int = 0,
    method: str = "auto",
    extra_models: dict | None = None,
) -> pd.DataFrame:
    """Evaluation table on the test split (module docstring): one row per model with its chosen ``params``,
    precision/recall/ndcg/map@k, coverage, ``ndcg_diff`` (the user-user model's NDCG@k minus this model's, per
    user, averaged) with its paired standard error ``ndcg_diff_se``, and fit+recommend ``seconds``.

    ``extra_models``: name -> UserUserKNN parameters for further user-user rows (e.g. the prototype's profile
    weight 1) next to the tuned one. ``table.attrs``: ``users_evaluated``, ``k``, ``tuning`` (the validation
    table of :func:`tune`). Raises :class:`EmptyHoldoutError` when no user has 5 artists.
    """
    train, test = holdout_split(data.plays, random_state=random_state)
    users = _sample_users(test, max_users, random_state)
    if not len(users):
        raise EmptyHoldoutError(
            "no user has at least 5 artists, so the 20% holdout is empty; evaluation needs users with at least 5 "
            "artists with plays > 0 (e.g. generate --users 1000)"
        )
    tuning = tune(data, train, k=k, max_users=max_users, baselines=baselines, random_state=random_state, method=method)
    best = _best(tuning, "user-user", k)
    profiles = data.profiles
    models = [("user-user (tuned)", best, lambda: _user_knn_ids(train, profiles, users, k, best, method))]
    for name, params in (extra_models or {}).items():
        models.append((name, params, lambda p=params: _user_knn_ids(train, profiles, users, k, p, method)))
    if baselines:
        n_countries = len(data.countries)
        bm25, als = _best(tuning, "bm25", k), _best(tuning, "als", k)
        models += [
            ("global popularity", {}, lambda: recommend_popular(train, data.country, n_countries, users, k, False)),
            ("country popularity", {}, lambda: recommend_popular(train, data.country, n_countries, users, k, True)),
            ("implicit ALS", als, lambda: recommend_implicit(train, users, k, "als", als["size"], random_state)),
            ("implicit item-item BM25", bm25, lambda: recommend_implicit(train, users, k, "bm25", bm25["size"])),
        ]
    rows, per_user = [], {}
    for name, params, run in models:
        start = time.perf_counter()
        ids = run()
        seconds = time.perf_counter() - start
        per_user[name] = per_user_metrics(ids, test[users], k)
        rows.append(
            {
                "model": name,
                "params": params,
                **{f"{m}@{k}": per_user[name][m].mean() for m in METRICS},
                "coverage": coverage(ids, data.plays.shape[1]),
                "seconds": round(seconds, 2),
            }
        )
    table = pd.DataFrame(rows)
    reference = per_user["user-user (tuned)"]["ndcg"]
    table["ndcg_diff"] = [(reference - per_user[name]["ndcg"]).mean() for name in table["model"]]
    table["ndcg_diff_se"] = [paired_standard_error(reference, per_user[name]["ndcg"]) for name in table["model"]]
    table.attrs.update(users_evaluated=len(users), k=k, tuning=tuning.to_dict("records"))
    return table


def plot_evaluation(table: pd.DataFrame, path=None, k: int = 10, source: str | None = None, ax=None):
    """Bar chart of NDCG@k and precision@k per model; written as PNG to ``path`` (Agg backend) when given, else
    drawn on ``ax`` (e.g. in a notebook). ``source`` names the data in the title. Returns the figure."""
    import matplotlib

    if path is not None:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=(9, 0.45 * len(table) + 1.5))
    else:
        fig = ax.figure
    y = np.arange(len(table))
    ax.barh(y - 0.2, table[f"ndcg@{k}"], 0.4, label=f"NDCG@{k}")
    ax.barh(y + 0.2, table[f"precision@{k}"], 0.4, label=f"precision@{k}")
    if "ndcg_diff_se" in table:  # the paired standard error of the difference to the user-user model
        ax.errorbar(table[f"ndcg@{k}"], y - 0.2, xerr=table["ndcg_diff_se"].fillna(0), fmt="none", ecolor="black")
    ax.set_yticks(y, table["model"])
    ax.invert_yaxis()
    ax.set_xlabel("score on the 20% per-user test split")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))  # outside the axes: never covers a bar
    title = f"Artist recommenders, {table.attrs.get('users_evaluated', '?')} users evaluated"
    ax.set_title(f"{title}\n{source}" if source else title, fontsize=10)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
        plt.close(fig)
    return fig
