"""The compiled (numba) loops of the user-user recommender: capped posting lists, candidate search with exact
re-rank, neighbour votes, top-n per row. Plain loops; the orchestration and the meaning live in ``neighbours``.

Invariants every kernel relies on (the callers in ``neighbours`` establish them; the kernels do not check):

* Matrices arrive as CSR triplets ``(indptr int64, indices int32, data float32)`` with sorted column indices and
  no duplicate entries. Feature rows are L2-normalised (so a dot product is the cosine); play-share rows and
  posting values are > 0 (stored zeros removed).
* Scratch rows are reset after each query user, touching only the entries that user set: every "was this slot
  reached" question is answered by a separate boolean marker, never by a value being 0, so any vote weight or
  feature value (zero or negative) is handled.
* Ranking order everywhere: higher value first, ties broken by the lower index (row or artist column). Results
  are written best first and padded with index -1 (value -inf for similarities, 0 for scores).
* Parallel kernels split the query users into ``n_blocks`` contiguous blocks (``numba.prange``; 1 <= n_blocks
  <= number of queries, a few per thread), one set of scratch rows per block; each query user's result depends
  only on its own inputs, so the output does not depend on the number of threads.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(inline="always")
def _worse(v1, i1, v2, i2):
    """(v1, i1) ranks below (v2, i2): a lower value, or the same value and a higher index."""
    return v1 < v2 or (v1 == v2 and i1 > i2)


@numba.njit(inline="always")
def _heap_offer(hv, hi, size, cap, v, i):
    """Offer (v, i) to a min-heap (worst at the root) that keeps the ``cap`` best pairs; returns the new size."""
    if size < cap:
        pos = size
        while pos > 0:
            parent = (pos - 1) // 2
            if not _worse(v, i, hv[parent], hi[parent]):
                break
            hv[pos], hi[pos] = hv[parent], hi[parent]
            pos = parent
        hv[pos], hi[pos] = v, i
        return size + 1
    if not _worse(hv[0], hi[0], v, i):
        return size
    pos = 0
    while True:
        child = 2 * pos + 1
        if child >= size:
            break
        if child + 1 < size and _worse(hv[child + 1], hi[child + 1], hv[child], hi[child]):
            child += 1
        if not _worse(hv[child], hi[child], v, i):
            break
        hv[pos], hi[pos] = hv[child], hi[child]
        pos = child
    hv[pos], hi[pos] = v, i
    return size


@numba.njit(inline="always")
def _heap_write_sorted(hv, hi, size, out_i, out_v):
    """Write the heap's pairs best first into out_i[:size]/out_v[:size] (insertion sort: size is at most a few
    hundred)."""
    for t in range(size):
        v, i = hv[t], hi[t]
        pos = t
        while pos > 0 and _worse(out_v[pos - 1], out_i[pos - 1], v, i):
            out_v[pos], out_i[pos] = out_v[pos - 1], out_i[pos - 1]
            pos -= 1
        out_v[pos], out_i[pos] = v, i


@numba.njit(cache=True)
def top_n_per_row(indptr, indices, data, n):
    """Per CSR row, the ``n`` best (value, column) stored entries, best first. Returns ``(columns int32, values
    float32)`` of shape (n_rows, n), padded with -1 / 0."""
    n_rows = len(indptr) - 1
    out_i = np.full((n_rows, n), -1, np.int32)
    out_v = np.zeros((n_rows, n), np.float32)
    heap_v = np.empty(n, np.float32)
    heap_i = np.empty(n, np.int32)
    for row in range(n_rows):
        size = 0
        for p in range(indptr[row], indptr[row + 1]):
            size = _heap_offer(heap_v, heap_i, size, n, data[p], indices[p])
        _heap_write_sorted(heap_v, heap_i, size, out_i[row], out_v[row])
    return out_i, out_v


@numba.njit(parallel=True, cache=True)
def capped_postings(col_ptr, col_rows, col_values, cap):
    """Cut each column of a CSC matrix (rows ascending within a column) to its ``cap`` largest values (ties: the
    lower rows), rows kept ascending. Returns ``(ptr int64, rows int32, values float32)``: list ``a`` is
    ``rows[ptr[a]:ptr[a + 1]]``."""
    n_columns = len(col_ptr) - 1
    ptr = np.zeros(n_columns + 1, np.int64)
    for a in range(n_columns):
        ptr[a + 1] = ptr[a] + min(col_ptr[a + 1] - col_ptr[a], cap)
    rows = np.empty(ptr[-1], np.int32)
    values = np.empty(ptr[-1], np.float32)
    for a in numba.prange(n_columns):
        lo, hi, out = col_ptr[a], col_ptr[a + 1], ptr[a]
        if hi - lo <= cap:
            rows[out : out + hi - lo] = col_rows[lo:hi]
            values[out : out + hi - lo] = col_values[lo:hi]
        else:
            keep = np.sort(np.argsort(-col_values[lo:hi], kind="mergesort")[:cap])  # stable: lower rows win ties
            for t in range(cap):
                rows[out + t] = col_rows[lo + keep[t]]
                values[out + t] = col_values[lo + keep[t]]
    return ptr, rows, values


@numba.njit(parallel=True, cache=True)
def candidate_search(
    indptr, indices, data, n_profile, post_ptr, post_rows, post_values, query, k, n_candidates, n_blocks
):
    """For each query row ``q``: candidates are the rows found in the posting lists of ``q``'s artist columns
    (columns >= ``n_profile``; list of column ``n_profile + a`` is ``post_rows[post_ptr[a]:post_ptr[a + 1]]``),
    ranked by the partial dot product sum over those lists of ``x_q * posting value``; the best ``n_candidates``
    (``q`` itself excluded) are re-ranked by the exact dot product of the full rows (summed in float64).

    Returns ``(rows int32, dots float32)`` of shape (len(query), k), best first, padded with -1 / -inf."""
    n_rows = len(indptr) - 1
    n_columns = n_profile + len(post_ptr) - 1
    n_query = len(query)
    out_i = np.full((n_query, k), -1, np.int32)
    out_v = np.full((n_query, k), -np.inf, np.float32)
    bounds = np.linspace(0, n_query, n_blocks + 1).astype(np.int64)
    for block in numba.prange(n_blocks):
        partial = np.zeros(n_rows, np.float32)
        reached = np.zeros(n_rows, np.bool_)
        touched = np.empty(n_rows, np.int32)
        query_row = np.zeros(n_columns, np.float64)
        cand_v = np.empty(n_candidates, np.float32)
        cand_i = np.empty(n_candidates, np.int32)
        top_v = np.empty(k, np.float32)
        top_i = np.empty(k, np.int32)
        for t in range(bounds[block], bounds[block + 1]):
            q = query[t]
            n_touched = 0
            for p in range(indptr[q], indptr[q + 1]):
                col, x = indices[p], data[p]
                query_row[col] = x
                if col < n_profile:
                    continue
                a = col - n_profile
                for r in range(post_ptr[a], post_ptr[a + 1]):
                    c = post_rows[r]
                    if not reached[c]:
                        reached[c] = True
                        touched[n_touched] = c
                        n_touched += 1
                    partial[c] += x * post_values[r]
            n_cand = 0
            for s in range(n_touched):
                c = touched[s]
                if c != q:
                    n_cand = _heap_offer(cand_v, cand_i, n_cand, n_candidates, partial[c], c)
            n_top = 0
            for s in range(n_cand):
                c = cand_i[s]
                dot = 0.0
                for p in range(indptr[c], indptr[c + 1]):
                    dot += query_row[indices[p]] * data[p]
                n_top = _heap_offer(top_v, top_i, n_top, k, np.float32(dot), c)
            _heap_write_sorted(top_v, top_i, n_top, out_i[t], out_v[t])
            for s in range(n_touched):
                partial[touched[s]] = 0
                reached[touched[s]] = False
            for p in range(indptr[q], indptr[q + 1]):
                query_row[indices[p]] = 0
    return out_i, out_v


@numba.njit(parallel=True, cache=True)
def vote_top_n(
    neighbour_idx, weights, share_ptr, share_cols, share_values, banned_ptr, banned_cols, n_artists, n, n_blocks
):
    """For each query row ``t``: ``score[a] = sum_j weights[t, j] * share[neighbour_idx[t, j], a]`` over the
    neighbours with index >= 0; artists in row ``t`` of the banned CSR (``banned_ptr``/``banned_cols``) and artists
    no neighbour voted for are left out; the ``n`` best are written. Returns ``(artists int32, scores float32)`` of
    shape (n_query, n), padded with -1 / 0."""
    n_query, k = neighbour_idx.shape
    out_a = np.full((n_query, n), -1, np.int32)
    out_s = np.zeros((n_query, n), np.float32)
    bounds = np.linspace(0, n_query, n_blocks + 1).astype(np.int64)
    for block in numba.prange(n_blocks):
        votes = np.zeros(n_artists, np.float64)
        voted = np.zeros(n_artists, np.bool_)
        banned = np.zeros(n_artists, np.bool_)
        touched = np.empty(n_artists, np.int32)
        heap_v = np.empty(n, np.float32)
        heap_i = np.empty(n, np.int32)
        for t in range(bounds[block], bounds[block + 1]):
            for r in range(banned_ptr[t], banned_ptr[t + 1]):
                banned[banned_cols[r]] = True
            n_touched = 0
            for j in range(k):
                c = neighbour_idx[t, j]
                if c < 0:
                    continue
                w = weights[t, j]
                for r in range(share_ptr[c], share_ptr[c + 1]):
                    a = share_cols[r]
                    if not voted[a]:
                        voted[a] = True
                        touched[n_touched] = a
                        n_touched += 1
                    votes[a] += w * share_values[r]
            size = 0
            for s in range(n_touched):
                a = touched[s]
                if not banned[a]:
                    size = _heap_offer(heap_v, heap_i, size, n, np.float32(votes[a]), a)
                votes[a] = 0
                voted[a] = False
            _heap_write_sorted(heap_v, heap_i, size, out_a[t], out_s[t])
            for r in range(banned_ptr[t], banned_ptr[t + 1]):
                banned[banned_cols[r]] = False
    return out_a, out_s
