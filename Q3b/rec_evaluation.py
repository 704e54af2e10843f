"""Offline evaluation of artist recommenders on a per-user holdout, against popularity, ALS and item-item baselines.

Protocol: for every user with at least ``min_artists`` artists, a fixed-seed random 20% of their artists (at
least one) is hidden; models see the rest and recommend 10 artists not in it. Metrics follow the usual top-k
definitions (as in ``implicit.evaluation``): precision@k = hits / k; recall@k = hits / |hidden|; NDCG@k with
binary gains and log2 discounts, normalised by the ideal ordering of min(k, |hidden|) hits; MAP@k = mean over
users of sum_{r: hit} precision@r / min(k, |hidden|); catalogue coverage = distinct recommended artists /
artists in the catalogue.
Baselines: global popularity, country popularity, implicit's AlternatingLeastSquares (Hu, Koren, Volinsky 2008)
on BM25-weighted plays, and implicit's item-item BM25Recommender.
"""

from __future__ import annotations

import os
import time
import warnings

import numpy as np
import pandas as pd
import scipy.sparse as sp

from neighbours import DEFAULT_NEIGHBOURS, UserArtistData, popular_artists, recommend_users

METRICS = ("precision", "recall", "ndcg", "map")


class EmptyHoldoutError(ValueError):
    """No user has enough artists for the holdout split, so there is nothing to evaluate."""


def holdout_split(plays: sp.csr_matrix, fraction: float = 0.2, min_artists: int = 5, random_state: int = 0):
    """Hide ``round(fraction * n)`` (at least 1) random artists of each user with ``n >= min_artists`` artists.

    ``plays``: CSR (n_users, n_artists). Returns ``(train, test)`` CSR matrices of the same shape whose stored
    entries partition those of ``plays``. Raises ValueError unless 0 < fraction < 1.
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


def ranking_metrics(recommended: np.ndarray, test: sp.csr_matrix, users: np.ndarray, k: int = 10) -> dict:
    """Mean precision@k, recall@k, NDCG@k and MAP@k over ``users``.

    ``recommended``: (n_users_evaluated, >= k) artist columns, -1 for empty places; ``test``: CSR of hidden
    artists; ``users``: (n_users_evaluated,) rows of ``test``, each with at least one hidden artist.
    """
    top = recommended[:, :k]
    n_hidden = np.diff(test.indptr)[users].astype(np.float64)
    hidden_keys = np.sort(test[users].tocoo().row.astype(np.int64) * test.shape[1] + test[users].tocoo().col)
    keys = np.arange(len(users), dtype=np.int64)[:, None] * test.shape[1] + top
    hits = np.isin(keys, hidden_keys) & (top >= 0)
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    ideal = np.cumsum(discounts)[np.minimum(n_hidden, k).astype(int) - 1]
    precision_at_r = np.cumsum(hits, axis=1) / np.arange(1, k + 1)
    return {
        "precision": float((hits.sum(1) / k).mean()),
        "recall": float((hits.sum(1) / n_hidden).mean()),
        "ndcg": float(((hits * discounts).sum(1) / ideal).mean()),
        "map": float(((precision_at_r * hits).sum(1) / np.minimum(n_hidden, k)).mean()),
    }


def _exclude_and_top(scores: np.ndarray, train_rows: sp.csr_matrix, k: int) -> np.ndarray:
    scores = scores.astype(np.float32, copy=True)
    coo = train_rows.tocoo()
    scores[coo.row, coo.col] = -np.inf
    part = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.where(np.isfinite(np.take_along_axis(scores, part, 1)), part, -1)


def recommend_popular(train_data: UserArtistData, users: np.ndarray, k: int, by_country: bool) -> np.ndarray:
    """Most-listened artists not yet played (per the user's country if ``by_country``, else global)."""
    global_artist, _, country_artist, _ = popular_artists(train_data, n=k + 60)
    out = np.full((len(users), k), -1, np.int32)
    played = train_data.plays
    for row, user in enumerate(users):
        seen = set(played.indices[played.indptr[user] : played.indptr[user + 1]].tolist())
        country = train_data.country[user]
        candidates = list(country_artist[country]) if by_country and country >= 0 else []
        picks = [a for a in candidates + list(global_artist) if a >= 0 and a not in seen]
        picks = list(dict.fromkeys(picks))[:k]
        out[row, : len(picks)] = picks
    return out


def recommend_implicit(train: sp.csr_matrix, users: np.ndarray, k: int, model: str, random_state: int = 0):
    """Top-k from implicit's CPU models fitted on ``train`` (users x artists): 'als' on BM25-weighted plays
    (64 factors, 15 iterations) or 'bm25' item-item (K=100 neighbours)."""
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # implicit warns that threaded BLAS slows ALS down
    from implicit.cpu.als import AlternatingLeastSquares
    from implicit.nearest_neighbours import BM25Recommender, bm25_weight
    from threadpoolctl import threadpool_limits

    train = train.tocsr().astype(np.float32)
    with threadpool_limits(1, "blas"), warnings.catch_warnings():
        # BM25Recommender converts its own BM25-weighted COO copy and warns about it; nothing to fix on our side
        warnings.filterwarnings("ignore", message="Method expects CSR input")
        if model == "als":
            recommender = AlternatingLeastSquares(
                factors=64, iterations=15, regularization=0.05, random_state=random_state
            )
            recommender.fit(bm25_weight(train, K1=100, B=0.8).tocsr().astype(np.float32), show_progress=False)
        elif model == "bm25":
            recommender = BM25Recommender(K=100)
            recommender.fit(train, show_progress=False)
        else:
            raise ValueError(f"model must be 'als' or 'bm25', got {model!r}")
        ids, _ = recommender.recommend(users, train[users], N=k, filter_already_liked_items=True)
    return np.asarray(ids, dtype=np.int32)


def coverage(recommended: np.ndarray, n_artists: int) -> float:
    """Share of the catalogue that appears in at least one list."""
    return float(len(np.unique(recommended[recommended >= 0])) / n_artists)


def evaluate(
    data: UserArtistData,
    *,
    k: int = 10,
    profile_weights=(0.0, 0.03, 0.1, 0.3, 1.0),
    n_neighbours: int = DEFAULT_NEIGHBOURS,
    max_users: int | None = 5000,
    baselines: bool = True,
    random_state: int = 0,
    progress: bool = False,
    method: str = "auto",
) -> pd.DataFrame:
    """Evaluation table: one row per model with precision/recall/ndcg/map@k, coverage, seconds.

    The user-user recommender appears once per profile weight (the prototype is weight 1.0); ``method`` is passed
    to ``neighbours.recommend_users`` ('auto': exact up to its size limit, the inverted index above; 'exact';
    'inverted'; 'ann'; see ``neighbours.nearest_neighbours``). Evaluated users: those with hidden artists, a
    fixed-seed sample of ``max_users`` (None: all); every model sees the same split.
    Raises :class:`EmptyHoldoutError` when no user
    has 5 artists (the holdout is empty).
    """
    train, test = holdout_split(data.plays, random_state=random_state)
    train_data = data.with_plays(train)
    users = np.flatnonzero(np.diff(test.indptr) > 0)
    if not len(users):
        raise EmptyHoldoutError(
            "no user has at least 5 artists, so the 20% holdout is empty; evaluation needs users with at least 5 "
            "artists with plays > 0 (e.g. generate --users 1000)"
        )
    if max_users is not None and len(users) > max_users:
        users = np.sort(np.random.default_rng(random_state).choice(users, max_users, replace=False))
    models = [
        (
            f"user-user (profile weight {w:g})",
            w,
            lambda w=w: (
                recommend_users(
                    train_data,
                    k,
                    users=users,
                    profile_weight=w,
                    k=n_neighbours,
                    method=method,
                    random_state=random_state,
                    progress=progress,
                ).artist
            ),
        )
        for w in profile_weights
    ]
    if baselines:
        models += [
            ("global popularity", np.nan, lambda: recommend_popular(train_data, users, k, by_country=False)),
            ("country popularity", np.nan, lambda: recommend_popular(train_data, users, k, by_country=True)),
            ("implicit ALS", np.nan, lambda: recommend_implicit(train, users, k, "als", random_state)),
            ("implicit item-item BM25", np.nan, lambda: recommend_implicit(train, users, k, "bm25", random_state)),
        ]
    rows = []
    for name, weight, run in models:
        start = time.perf_counter()
        recommended = run()
        seconds = time.perf_counter() - start
        rows.append(
            {
                "model": name,
                "profile_weight": weight,
                **{f"{m}@{k}": v for m, v in ranking_metrics(recommended, test, users, k).items()},
                "coverage": coverage(recommended, data.plays.shape[1]),
                "seconds": round(seconds, 2),
            }
        )
    table = pd.DataFrame(rows)
    table.attrs.update(users_evaluated=len(users), k=k)
    return table


def plot_evaluation(table: pd.DataFrame, path, k: int = 10, source: str | None = None) -> None:
    """Bar chart of NDCG@k and precision@k per model, written as PNG (Agg backend).

    ``source`` names the data (e.g. "generated look-alike data" or a file path); it goes into the title."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 0.45 * len(table) + 1.5))
    y = np.arange(len(table))
    ax.barh(y - 0.2, table[f"ndcg@{k}"], 0.4, label=f"NDCG@{k}")
    ax.barh(y + 0.2, table[f"precision@{k}"], 0.4, label=f"precision@{k}")
    ax.set_yticks(y, table["model"])
    ax.invert_yaxis()
    ax.set_xlabel("score on the 20% per-user holdout")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))  # outside the axes: never covers a bar
    title = f"Artist recommenders, {table.attrs.get('users_evaluated', '?')} users evaluated"
    ax.set_title(f"{title}\n{source}" if source else title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
