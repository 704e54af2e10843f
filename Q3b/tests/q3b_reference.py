"""A plain numpy implementation of the user-user recommender, written from the definitions in the README (dense
float64, Python sorting), for the tests to compare the model against. Slow: small data only."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


def reference_features(plays: np.ndarray, age, country, n_countries: int, weight: float, weighting: str = "share"):
    """Unit feature rows of all users (zero rows for users without plays), dense float64."""
    plays = np.asarray(plays, np.float64)
    block = np.log1p(plays) if weighting == "log" else plays.copy()
    totals = block.sum(1, keepdims=True)
    block = np.divide(block, totals, out=np.zeros_like(block), where=totals > 0)
    has_plays = (plays > 0).any(1)
    age = np.asarray(age, np.float64)
    known = ~np.isnan(age) & has_plays  # z-scored over the users with plays and an age
    z = np.zeros(len(age))
    if known.sum() > 1 and age[known].std() > 0:
        z[known] = (age[known] - age[known].mean()) / age[known].std()
    z[~has_plays] = 0
    one_hot = np.zeros((len(age), n_countries))
    for u, c in enumerate(country):
        if c >= 0:
            one_hot[u, c] = 1
    features = np.hstack([weight * z[:, None], weight * one_hot, block])
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    return np.divide(features, norms, out=np.zeros_like(features), where=norms > 0), block, has_plays


def reference_neighbours(unit: np.ndarray, has_plays: np.ndarray, user: int, k: int):
    """(users, similarities) of the k most similar other users with plays, ties by the lower user id."""
    sims = unit @ unit[user]
    others = [v for v in range(len(unit)) if v != user and has_plays[v]]
    best = sorted(others, key=lambda v: (-sims[v], v))[:k]
    return best, sims[best]


def reference_charts(plays: np.ndarray, country: np.ndarray):
    """(global chart, {country: chart}): artists with listeners, most listeners first, ties by lower artist."""
    listened = plays > 0

    def chart(rows):
        counts = listened[rows].sum(0)
        return [a for a in sorted(range(plays.shape[1]), key=lambda a: (-counts[a], a)) if counts[a] > 0]

    countries = {c: chart(country == c) for c in set(country.tolist()) if c >= 0}
    return chart(np.ones(len(plays), bool)), countries


def reference_recommend(
    plays_csr: sp.csr_matrix, age, country, n_countries, *, k, n, weight, weighting="share", users=None
) -> list[list[int]]:
    """Top-n artist lists: neighbour votes score(a) = sum of positive similarities x the neighbour's share of a,
    played (stored) artists excluded, ties by lower artist; short lists filled from the country chart then the
    global chart."""
    plays = plays_csr.toarray()
    country = np.asarray(country)
    unit, shares, has_plays = reference_features(plays, age, country, n_countries, weight, weighting)
    global_chart, country_charts = reference_charts(plays, country)
    lists = []
    for u in range(len(plays)) if users is None else users:
        played = set(plays_csr.indices[plays_csr.indptr[u] : plays_csr.indptr[u + 1]].tolist())
        picks = []
        if has_plays[u]:
            votes = {}
            for v, s in zip(*reference_neighbours(unit, has_plays, u, k)):
                if s > 0:
                    for a in np.flatnonzero(shares[v]):
                        votes[a] = votes.get(a, 0.0) + s * shares[v, a]
            picks = [a for a in sorted(votes, key=lambda a: (-votes[a], a)) if a not in played][:n]
        charts = ([country_charts.get(country[u], [])] if country[u] >= 0 else []) + [global_chart]
        for chart in charts:
            for a in chart:
                if len(picks) == n:
                    break
                if a not in played and a not in picks:
                    picks.append(a)
        lists.append([int(a) for a in picks])
    return lists
