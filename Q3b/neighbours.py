"""Nearest users and their votes: the neighbour search (exact, or inverted index + exact re-rank) and the one
scoring rule every route uses.

Similarity of users ``u`` and ``v`` is the cosine of their feature rows (``q3b_features``): with rows already
scaled to unit length (``unit_rows``), ``sim(u, v) = x_u . x_v``. A user's neighbours ``N_k(u)`` are the ``k`` other
users with the highest similarity (ties: the lower row).

Two routes give the neighbours:

* ``'exact'``: every pair, in batches of query users (a sparse matrix product, then a sort). The reference; used
  up to :data:`EXACT_MAX_USERS` users.
* ``'inverted'``: an inverted index keeps, for every artist, the :data:`POSTING_CAP` users with the largest
  weight on it (:func:`build_index`, the "capped posting lists"). A query user's candidates are the users found
  in the lists of the query's artists, ranked by the part of the dot product those lists hold; the best
  :data:`N_CANDIDATES` are re-ranked by the exact cosine of the full rows (profile included). Users sharing no
  artist with the query are never candidates. Work per user is bounded by ``50 artists x POSTING_CAP``, so the
  full 360K users take about a minute on two cores; the benchmark measures its recall against the exact route.

The scoring (vote) rule, :func:`score_artists`, is the same for every route::

    score(u, a) = sum over v in N_k(u) with sim(u, v) > 0 of  sim(u, v) * share_v(a)

where ``share_v(a)`` is ``v``'s weighted plays of ``a`` over ``v``'s total (the plays block of the features).
Artists the user already played are excluded and the ``n`` best scores are kept (ties: lower artist column).
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
import scipy.sparse as sp
from tqdm import tqdm

import q3b_kernels

METHODS = ("auto", "exact", "inverted")
EXACT_MAX_USERS = 5_000  # above this 'auto' uses the inverted index
POSTING_CAP = 100  # users kept per artist in the inverted index (the largest weights)
N_CANDIDATES = 100  # candidates per user re-ranked by the exact cosine
QUERY_CHUNK = 50_000  # query users per kernel call (bounds the result arrays between progress updates)


@dataclass
class PostingIndex:
    """Capped posting lists of the artist columns: the users of artist ``a`` are ``rows[ptr[a]:ptr[a + 1]]``
    (ascending) with their weights ``values`` (the unit feature row's value on that artist)."""

    ptr: np.ndarray
    rows: np.ndarray
    values: np.ndarray
    cap: int


def resolve_method(method: str, n_users: int) -> str:
    """'exact' or 'inverted' for ``method`` ('auto': exact up to EXACT_MAX_USERS users). Raises ValueError."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if method == "auto":
        return "exact" if n_users <= EXACT_MAX_USERS else "inverted"
    return method


def _blocks(n_query: int) -> int:
    """Work units for a parallel kernel: four per thread (so a slow block does not leave a core idle), at least 1."""
    return max(1, min(n_query, 4 * numba.get_num_threads()))


def _csr_arrays(matrix: sp.csr_matrix):
    return matrix.indptr.astype(np.int64), matrix.indices.astype(np.int32), matrix.data.astype(np.float32)


def build_index(unit: sp.csr_matrix, n_profile: int, cap: int = POSTING_CAP) -> PostingIndex:
    """Capped posting lists of the artist columns (``n_profile`` on) of unit feature rows: per artist the ``cap``
    users with the largest value (ties: lower row). Raises ValueError for cap < 1."""
    if cap < 1:
        raise ValueError(f"posting cap must be at least 1, got {cap}")
    plays = unit[:, n_profile:].tocsc()
    plays.sort_indices()
    ptr, rows, values = q3b_kernels.capped_postings(*_csr_arrays(plays), cap)
    return PostingIndex(ptr, rows, values, cap)


def exact_neighbours(unit: sp.csr_matrix, query: np.ndarray, k: int, batch_size: int = 1000, progress=False):
    """The reference route: for each query row, the ``k`` rows of ``unit`` with the largest dot product (itself
    excluded; ties: lower row). Returns ``(rows int32, similarity float32)`` of shape (len(query), k)."""
    idx = np.empty((len(query), k), np.int32)
    sim = np.empty((len(query), k), np.float32)
    transposed = unit.T.tocsr()
    for start in tqdm(range(0, len(query), batch_size), desc="neighbours (exact)", disable=not progress):
        q = query[start : start + batch_size]
        dot = (unit[q] @ transposed).toarray()
        dot[np.arange(len(q)), q] = -np.inf  # a user is not their own neighbour
        order = np.argsort(-dot, axis=1, kind="stable")[:, :k]  # stable: the lower row wins a tie
        idx[start : start + len(q)] = order
        sim[start : start + len(q)] = np.take_along_axis(dot, order, axis=1)
    return idx, sim


def inverted_neighbours(
    unit: sp.csr_matrix,
    n_profile: int,
    index: PostingIndex,
    query: np.ndarray,
    k: int,
    n_candidates: int = N_CANDIDATES,
    progress: bool = False,
):
    """Candidates from the capped posting lists, exact re-rank of the best ``max(n_candidates, k)`` (see the module
    docstring). Returns ``(rows int32, similarity float32)`` of shape (len(query), k), -1 / -inf padded where
    fewer than ``k`` users share an artist with the query."""
    arrays = _csr_arrays(unit)
    idx = np.empty((len(query), k), np.int32)
    sim = np.empty((len(query), k), np.float32)
    for start in tqdm(range(0, len(query), QUERY_CHUNK), desc="neighbours (inverted index)", disable=not progress):
        q = np.ascontiguousarray(query[start : start + QUERY_CHUNK], dtype=np.int64)
        idx[start : start + len(q)], sim[start : start + len(q)] = q3b_kernels.candidate_search(
            *arrays, n_profile, index.ptr, index.rows, index.values, q, k, max(n_candidates, k), _blocks(len(q))
        )
    return idx, sim


def vote_weights(similarity: np.ndarray) -> np.ndarray:
    """The weight of a neighbour's vote: its similarity where positive, else 0 (a dissimilar user does not vote)."""
    return np.maximum(similarity, 0).astype(np.float32)


def score_artists(
    neighbour_idx: np.ndarray, neighbour_sim: np.ndarray, shares: sp.csr_matrix, banned: sp.csr_matrix, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """The scoring rule (module docstring): top-``n`` artists by neighbour votes.

    ``neighbour_idx``/``neighbour_sim``: (n_query, k) rows of ``shares`` and their similarity, -1 where missing;
    ``shares``: CSR (n_pool, n_artists) play shares; ``banned``: CSR (n_query, n_artists), every stored entry an
    artist never to return for that query (the already played ones). Returns ``(artists int32, scores float32)``
    of shape (n_query, n), best first (ties: lower artist), -1 / 0 padded; artists no neighbour with a positive
    similarity voted for are left out."""
    weights = vote_weights(neighbour_sim)
    voters = np.where((neighbour_idx >= 0) & (weights > 0), neighbour_idx, -1).astype(np.int32)
    shares = shares.tocsr()
    banned = banned.tocsr()
    return q3b_kernels.vote_top_n(
        np.ascontiguousarray(voters),
        np.ascontiguousarray(weights),
        *_csr_arrays(shares),
        banned.indptr.astype(np.int64),
        banned.indices.astype(np.int32),
        shares.shape[1],
        n,
        _blocks(len(neighbour_idx)),
    )
