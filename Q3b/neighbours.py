"""User-user nearest-neighbour artist recommendations: the prototype's method, made to scale.

Method (as in the original notebook): each user is a feature row ``[w * scaled age, w * one-hot country,
L1-normalised plays]``; a user's ``k`` most similar users (cosine similarity by default) vote for the artists
they play, weighted by similarity and by each artist's share of the neighbour's plays; artists the user already
played are removed and the top ``n`` remain. ``w`` (``profile_weight``) balances the profile block against the
plays block: the prototype used ``w = 1``, so the profile block dominated (see ``rec_evaluation``).

Scaling: for up to :data:`EXACT_MAX_USERS` users (and for the Euclidean variant) the similarities are computed
exactly in user batches (a dense BLAS product for the profile block plus a sparse product for the plays block,
then top-k selection): the reference. Above that an exact all-pairs product is out of reach (the plays block alone
costs the sum over artists of listeners squared, 6.1e10 on the full-size generated data), so the default is an
inverted index: each artist keeps its :data:`INVERTED_POSTING_CAP` listeners with the largest weights, a user's
candidates are the users reached through their artists' lists, and the :data:`INVERTED_CANDIDATES` best partial
matches are re-ranked by the exact cosine of the full feature rows (recall of the exact 50 neighbours 0.87-0.96
on 20K-user sets, measured by ``benchmarks/bench_recommender.py``). The per-user loops of that search and of the
votes are numba kernels run on all cores, which prefetch the next user's rows while computing the current one. A
faiss IVF route (``method='ann'``) is kept for comparison. Cold start: users without plays get their country's most
popular artists, else global ones.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass

import numba
import numpy as np
import pandas as pd
import scipy.sparse as sp
from llvmlite import ir
from numba.core import cgutils
from numba.extending import intrinsic
from numba.misc.appdirs import AppDirs
from sklearn.preprocessing import normalize
from tqdm import tqdm

from lastfm_data import align_users


def _unwritable_cache_fallback(folders) -> str | None:
    """A folder for numba's cache when none of ``folders`` (the ones numba tries: ``__pycache__`` beside this file,
    then its user-wide cache folder) can be written, else None. numba refuses to compile a cached kernel at all
    when it has nowhere to write (a read-only checkout and HOME), so the caller then points numba.config.CACHE_DIR
    at the returned folder in the temp directory (the kernels are recompiled once per machine there)."""
    for folder in folders:
        try:
            os.makedirs(folder, exist_ok=True)
            tempfile.TemporaryFile(dir=folder).close()
            return None
        except OSError:
            continue
    return os.path.join(tempfile.gettempdir(), "offsite-test-numba-cache")


if not numba.config.CACHE_DIR:
    _fallback = _unwritable_cache_fallback(
        [
            os.path.join(os.path.dirname(os.path.abspath(__file__)), "__pycache__"),
            AppDirs(appname="numba", appauthor=False).user_cache_dir,
        ]
    )
    if _fallback:
        numba.config.CACHE_DIR = _fallback

SOURCES = ("neighbours", "country", "global")
DEFAULT_PROFILE_WEIGHT = 0.03
DEFAULT_NEIGHBOURS = 50
EXACT_MAX_USERS = 5_000
FALLBACK_SIZE = 100
ANN_COMPONENTS = 32  # SVD dimensions of the plays block in the faiss embedding
ANN_PROBE_SHARE = 1 / 64  # share of the IVF lists searched per query
INVERTED_POSTING_CAP = 100  # listeners kept per artist in the inverted index (the heaviest weights)
INVERTED_CANDIDATES = 100  # candidates per user re-ranked by the exact cosine


@dataclass
class UserArtistData:
    """Users, artists and plays as arrays, in the order used by every function here.

    ``users``: (n_users,) sha1 strings; ``artists``: DataFrame of n_artists rows (index: artist key; columns
    ``artist_mbid``, ``artist_name``); ``plays``: CSR (n_users, n_artists) float32 play counts; ``age``:
    (n_users,) float32, NaN when missing; ``country``: (n_users,) int32 code into ``countries``, -1 when missing.
    """

    users: np.ndarray
    artists: pd.DataFrame
    plays: sp.csr_matrix
    age: np.ndarray
    country: np.ndarray
    countries: np.ndarray

    def with_plays(self, plays: sp.csr_matrix) -> UserArtistData:
        """Same users and profiles with another plays matrix (e.g. the training part of a holdout split)."""
        return UserArtistData(self.users, self.artists, plays.tocsr(), self.age, self.country, self.countries)


@dataclass
class Recommendations:
    """Top-n lists for some users: ``users`` (n_query,) row indices into the data; ``artist`` (n_query, n) int32
    artist column (-1 where fewer than n were found); ``score`` float32; ``source`` int8 index into SOURCES."""

    users: np.ndarray
    artist: np.ndarray
    score: np.ndarray
    source: np.ndarray


def build_user_artist_data(plays: pd.DataFrame, profiles: pd.DataFrame) -> UserArtistData:
    """Arrays from the frames of ``lastfm_data.load_plays``/``load_profiles``, users of both files included.

    Users keep the profile file's order; plays-only users are appended (``lastfm_data.align_users``).
    """
    profiles, _ = align_users(plays, profiles)
    users = profiles["user"].to_numpy().astype(str)
    user_row = pd.Index(users).get_indexer(plays["user"].cat.categories)
    rows = user_row[plays["user"].cat.codes.to_numpy()]
    cols = plays["artist"].cat.codes.to_numpy()
    n_artists = len(plays["artist"].cat.categories)
    matrix = sp.csr_matrix((plays["plays"].to_numpy(np.float32), (rows, cols)), shape=(len(users), n_artists))
    first = np.unique(cols, return_index=True)[1]
    artists = pd.DataFrame({"artist_mbid": "", "artist_name": ""}, index=plays["artist"].cat.categories)
    artists.iloc[cols[first], 0] = plays["artist_mbid"].to_numpy()[first].astype(str)
    artists.iloc[cols[first], 1] = plays["artist_name"].to_numpy()[first].astype(str)
    country = profiles["country"].astype("category")
    return UserArtistData(
        users,
        artists,
        matrix,
        profiles["age"].to_numpy(np.float32),
        country.cat.codes.to_numpy().astype(np.int32),
        np.asarray(country.cat.categories, dtype=str),
    )


def build_features(data: UserArtistData, profile_weight: float = DEFAULT_PROFILE_WEIGHT) -> sp.csr_matrix:
    """Feature rows (n_users, 1 + n_countries + n_artists): ``w * z-scored age`` (0 when missing),
    ``w * one-hot country`` (all 0 when missing), then plays divided by the user's total (L1 norm; all 0 without
    plays). Raises ValueError for a negative weight."""
    return sp.hstack(
        [_profile_block(data, profile_weight), normalize(data.plays, norm="l1").astype(np.float32)],
        format="csr",
        dtype=np.float32,
    )


def _profile_block(data: UserArtistData, profile_weight: float) -> sp.csr_matrix:
    """The first 1 + n_countries columns of build_features, for all users (age z-scored over all of them)."""
    if profile_weight < 0:
        raise ValueError(f"profile_weight must be >= 0, got {profile_weight}")
    age = data.age.astype(np.float64)
    known = ~np.isnan(age)
    scaled = np.zeros(len(age), np.float32)
    if known.sum() > 1 and age[known].std() > 0:
        scaled[known] = (age[known] - age[known].mean()) / age[known].std()
    n = len(data.users)
    has_country = data.country >= 0
    one_hot = sp.csr_matrix(
        (np.ones(has_country.sum(), np.float32), (np.flatnonzero(has_country), data.country[has_country])),
        shape=(n, len(data.countries)),
    )
    return sp.hstack(
        [sp.csr_matrix(scaled[:, None] * profile_weight), one_hot * profile_weight], format="csr", dtype=np.float32
    )


def top_n_per_row(matrix: sp.csr_matrix, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Column indices and values of the ``n`` largest stored entries of each row of a CSR matrix.

    Returns ``(indices, values)`` of shape (n_rows, n): int32 columns and float32 values, sorted by value, ties by
    lower column, -1 / 0 padded where a row has fewer entries. One pass over the entries with a bounded heap per
    row (numba): O(nnz log n) time, no dense copy.
    """
    matrix = matrix.tocsr()
    return _top_n_rows(
        matrix.indptr.astype(np.int64), matrix.indices.astype(np.int32), matrix.data.astype(np.float32), n
    )


@intrinsic
def _prefetch(typingctx, array, index):
    """Inside a kernel: ask the CPU to start loading the cache line of ``array[index]`` (LLVM's ``llvm.prefetch``
    intrinsic, read, keep in all cache levels; ``prefetcht0`` on x86) and go on without waiting. A hint only: it
    never faults, even past the end of the array, and changes no result. Used to fetch the rows the next user will
    read while the current one is computed, since both kernels spend most of their time waiting on random rows."""

    def codegen(context, builder, signature, args):
        array_type = signature.args[0]
        pointer = cgutils.get_item_pointer(
            context,
            builder,
            array_type,
            context.make_array(array_type)(context, builder, args[0]),
            [args[1]],
            wraparound=False,
        )
        byte_pointer = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        function = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [byte_pointer, i32, i32, i32]), "llvm.prefetch.p0i8"
        )
        builder.call(
            function,
            [builder.bitcast(pointer, byte_pointer), ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)],
        )
        return context.get_dummy_value()

    return numba.types.void(array, index), codegen


# --- compiled kernels (numba): the per-user loops of the inverted-index neighbours and of the votes ----------------
# Each kernel walks a contiguous block of query users per thread with its own dense scratch rows, so the work is
# O(touched entries) per user instead of O(n_users) and the two cores share it (numba prange releases the GIL).


@numba.njit(inline="always")
def _worse(v1, i1, v2, i2):
    """(v1, i1) ranks below (v2, i2): a lower value, or the same value and a higher index."""
    return v1 < v2 or (v1 == v2 and i1 > i2)


@numba.njit(inline="always")
def _scatter_add(acc, touched, n_touched, cols, values, start, stop, weight):
    """Sparse accumulator step: acc[cols[r]] += weight * values[r] for r in start..stop-1, appending each column seen
    for the first time (acc still 0) to ``touched``; returns the new number of touched columns."""
    for r in range(start, stop):  # branch-free: whether a column is new is unpredictable (~1.3x faster)
        c = cols[r]
        touched[n_touched] = c
        n_touched += acc[c] == 0
        acc[c] += weight * values[r]
    return n_touched


@numba.njit(inline="always")
def _heap_offer(hv, hi, size, cap, v, i):
    """Keep the ``cap`` best (value, index) pairs in a min-heap (worst at the root); returns the new size."""
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


@numba.njit(cache=True)
def _heap_write_sorted(hv, hi, size, out_i, out_v):
    """Write the heap's pairs best first (value descending, index ascending on ties) into out_i/out_v."""
    for t in range(size):  # insertion sort: size is k or n (<= a few hundred)
        v, i = hv[t], hi[t]
        pos = t
        while pos > 0 and _worse(out_v[pos - 1], out_i[pos - 1], v, i):
            out_v[pos], out_i[pos] = out_v[pos - 1], out_i[pos - 1]
            pos -= 1
        out_v[pos], out_i[pos] = v, i


@numba.njit(cache=True)
def _top_n_rows(indptr, indices, data, n):
    """Per CSR row, the ``n`` best (value, column) entries, best first; -1 / 0 padded."""
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


@numba.njit(cache=True)
def _heaviest_column(indptr, indices, data, first_column):
    """Per CSR row, the column >= first_column with the largest value (lowest column on ties), -1 if none."""
    n_rows = len(indptr) - 1
    out = np.full(n_rows, -1, np.int64)
    for row in range(n_rows):
        best = -np.inf
        for p in range(indptr[row], indptr[row + 1]):
            if indices[p] >= first_column and (data[p] > best or (data[p] == best and indices[p] < out[row])):
                best, out[row] = data[p], indices[p]
    return out


@numba.njit(cache=True)
def _by_count_descending(counts):
    """``np.argsort(-counts, kind="stable")`` for non-negative integer counts, as a counting sort: O(len + max)."""
    top = 0
    for c in counts:
        top = max(top, c)
    start = np.zeros(top + 2, np.int64)
    for c in counts:
        start[top - c + 1] += 1
    start = np.cumsum(start)
    order = np.empty(len(counts), np.int64)
    for i in range(len(counts)):
        order[start[top - counts[i]]] = i
        start[top - counts[i]] += 1
    return order


@numba.njit(parallel=True, cache=True)
def _truncated_postings(indptr, indices, data, first_column, n_columns, cap, n_blocks):
    """Inverted lists of the ``n_columns`` CSR columns from ``first_column`` on, each cut to the ``cap`` rows with
    the largest values (ties: lower row first), rows ascending within a list.

    Returns ``(ptr, rows, values)``: list ``a`` (column ``first_column + a``) is ``rows[ptr[a]:ptr[a + 1]]``
    (int32) with ``values`` (float32). A parallel counting sort over ``n_blocks`` ranges of rows builds the full
    lists; a list longer than ``cap`` keeps the values above its cap-th largest plus the first rows equal to it.
    """
    n_rows = len(indptr) - 1
    row_bounds = np.linspace(0, n_rows, n_blocks + 1).astype(np.int64)
    block_counts = np.zeros((n_blocks, n_columns), np.int64)
    for block in numba.prange(n_blocks):
        for p in range(indptr[row_bounds[block]], indptr[row_bounds[block + 1]]):
            if indices[p] >= first_column:
                block_counts[block, indices[p] - first_column] += 1
    counts = block_counts.sum(0)
    full_ptr = np.zeros(n_columns + 1, np.int64)
    full_ptr[1:] = np.cumsum(counts)
    fill = np.empty_like(block_counts)  # where each block files its next entry of each column
    fill[0] = full_ptr[:-1]
    for block in range(1, n_blocks):
        fill[block] = fill[block - 1] + block_counts[block - 1]
    all_rows, all_values = np.empty(full_ptr[-1], np.int32), np.empty(full_ptr[-1], np.float32)
    for block in numba.prange(n_blocks):
        for row in range(row_bounds[block], row_bounds[block + 1]):
            for p in range(indptr[row], indptr[row + 1]):
                a = indices[p] - first_column
                if a >= 0:
                    all_rows[fill[block, a]], all_values[fill[block, a]] = row, data[p]
                    fill[block, a] += 1
    ptr = np.zeros(n_columns + 1, np.int64)
    ptr[1:] = np.cumsum(np.minimum(counts, cap))
    rows, values = np.empty(ptr[-1], np.int32), np.empty(ptr[-1], np.float32)
    for block in numba.prange(n_blocks):
        for a in range(block, n_columns, n_blocks):  # interleaved: the long lists are not all in one block
            lo, hi, out = full_ptr[a], full_ptr[a + 1], ptr[a]
            threshold, ties = -np.inf, 0
            if hi - lo > cap:
                threshold = np.partition(all_values[lo:hi], hi - lo - cap)[hi - lo - cap]  # the cap-th largest
                ties = cap
                for p in range(lo, hi):
                    ties -= all_values[p] > threshold
            for p in range(lo, hi):
                v = all_values[p]
                if v > threshold or (v == threshold and ties > 0):
                    ties -= v == threshold
                    rows[out], values[out] = all_rows[p], v
                    out += 1
    return ptr, rows, values


@numba.njit(inline="always")
def _best_candidates(partial, touched, n_touched, q, cand_v, cand_i, kept, sample_v, sample_i):
    """Heap ``cand_v``/``cand_i`` of the len(cand_v) touched rows other than ``q`` with the largest ``partial``
    (ties: lower row); returns its size. Offering every touched row costs a mispredicted sift-down for about a
    quarter of them, so a threshold comes first: the len(sample_v)-th largest of every 8th row's value, which about
    2 x len(cand_v) rows reach; only those are offered (all rows again in the rare case fewer than needed reach
    it). ``kept`` is scratch of len(partial)."""
    cap = len(cand_v)
    threshold = -np.inf
    if n_touched > 4 * cap:
        size = 0
        for s in range(0, n_touched, 8):
            size = _heap_offer(sample_v, sample_i, size, len(sample_v), partial[touched[s]], s)
        threshold = sample_v[0]
    n_kept = 0
    for s in range(n_touched):  # branch-free
        c = touched[s]
        kept[n_kept] = c
        n_kept += (partial[c] >= threshold) & (c != q)
    if n_kept < cap and threshold > -np.inf:
        n_kept = 0
        for s in range(n_touched):
            c = touched[s]
            kept[n_kept] = c
            n_kept += c != q
    n_cand = 0
    for s in range(n_kept):
        n_cand = _heap_offer(cand_v, cand_i, n_cand, cap, partial[kept[s]], kept[s])
    return n_cand


@numba.njit(parallel=True, cache=True)
def _inverted_index_neighbours(
    indptr,
    indices,
    data,
    head_end,
    first_plays_column,
    post_ptr,
    post_rows,
    post_values,
    head_ptr,
    head_pairs,
    query,
    k,
    n_candidates,
    n_blocks,
):
    """Candidates = users reached through the query's artists in the posting lists, ranked by that partial dot
    product; the best ``n_candidates`` are re-ranked by the exact dot product of the full feature rows.

    Columns from ``head_end`` on are artists whose posting lists are complete, so their part of the dot product is
    summed exactly while scattering (``tail``); the re-rank adds the head (profile columns and the artists whose
    lists were truncated) from ``head_pairs``: per row (``head_ptr``), interleaved (column, float32 bits) pairs.
    """
    n_rows = len(indptr) - 1
    n_query = len(query)
    out_i = np.full((n_query, k), -1, np.int32)
    out_v = np.full((n_query, k), -np.inf, np.float32)
    head_values = head_pairs.view(np.float32)
    bounds = np.linspace(0, n_query, n_blocks + 1).astype(np.int64)
    for block in numba.prange(n_blocks):
        partial = np.zeros(n_rows, np.float32)  # 0 = not reached yet: postings hold positive weights only
        tail = np.zeros(n_rows, np.float32)
        touched = np.empty(n_rows, np.int32)
        query_head = np.zeros(head_end, np.float32)
        cand_v = np.empty(n_candidates, np.float32)
        cand_i = np.empty(n_candidates, np.int32)
        kept = np.empty(n_rows, np.int32)
        sample_v = np.empty(max(1, n_candidates // 4), np.float32)
        sample_i = np.empty(max(1, n_candidates // 4), np.int32)
        top_v = np.empty(k, np.float32)
        top_i = np.empty(k, np.int32)
        for t in range(bounds[block], bounds[block + 1]):
            q = query[t]
            if t + 1 < bounds[block + 1]:  # the next query's posting lists, while this one is scattered
                following = query[t + 1]
                for p in range(indptr[following], indptr[following + 1]):
                    if indices[p] >= first_plays_column:
                        a = indices[p] - first_plays_column
                        for r in range(post_ptr[a], post_ptr[a + 1], 16):  # 16 entries of 4 bytes: a cache line
                            _prefetch(post_rows, r)
                            _prefetch(post_values, r)
            n_touched = 0
            for p in range(indptr[q], indptr[q + 1]):
                col, x = indices[p], data[p]
                if col < head_end:
                    query_head[col] = x
                if col < first_plays_column or x == 0:  # a 0 would leave ``partial`` at 0: touched twice
                    continue
                a = col - first_plays_column
                if col < head_end:
                    n_touched = _scatter_add(
                        partial, touched, n_touched, post_rows, post_values, post_ptr[a], post_ptr[a + 1], x
                    )
                    continue
                for r in range(post_ptr[a], post_ptr[a + 1]):  # _scatter_add, summing into ``tail`` as well
                    c = post_rows[r]
                    touched[n_touched] = c
                    n_touched += partial[c] == 0
                    contribution = x * post_values[r]
                    partial[c] += contribution
                    tail[c] += contribution
            n_cand = _best_candidates(partial, touched, n_touched, q, cand_v, cand_i, kept, sample_v, sample_i)
            for s in range(n_cand):  # the candidates' head rows requested at once, so their cache misses overlap
                _prefetch(head_pairs, 2 * head_ptr[cand_i[s]])
            n_top = 0
            for s in range(n_cand):
                c = cand_i[s]
                dot = np.float64(tail[c])  # the head is summed in float64
                for r in range(head_ptr[c], head_ptr[c + 1]):
                    dot += query_head[head_pairs[2 * r]] * head_values[2 * r + 1]
                n_top = _heap_offer(top_v, top_i, n_top, k, np.float32(dot), c)
            for s in range(n_touched):
                partial[touched[s]] = 0
                tail[touched[s]] = 0
            for p in range(indptr[q], indptr[q + 1]):
                if indices[p] < head_end:
                    query_head[indices[p]] = 0
            _heap_write_sorted(top_v, top_i, n_top, out_i[t], out_v[t])
    return out_i, out_v


@numba.njit(parallel=True, cache=True)
def _vote_kernel(
    order,
    neighbour_idx,
    neighbour_sim,
    pool_ptr,
    pool_cols,
    pool_values,
    played_ptr,
    played_cols,
    renumber,
    artist_of,
    out_a,
    out_s,
    n_blocks,
):
    """For the query rows ``order``, in that sequence: votes[a] = sum_j max(sim_j, 0) * share_j[a]; played artists
    and zero votes dropped; the top n (out_a.shape[1]) written to that row of out_a/out_s (padded by the caller).
    Pool columns are renumbered: ``renumber`` maps an artist to its column, ``artist_of`` back; ties rank by
    artist."""
    n_artists = len(artist_of)
    k, n = neighbour_idx.shape[1], out_a.shape[1]
    bounds = np.linspace(0, len(order), n_blocks + 1).astype(np.int64)
    for block in numba.prange(n_blocks):
        votes = np.zeros(n_artists, np.float32)  # 0 = not voted yet: pool values and similarities are > 0
        touched = np.empty(n_artists, np.int32)
        heap_v = np.empty(n, np.float32)
        heap_i = np.empty(n, np.int32)
        for t in range(bounds[block], bounds[block + 1]):
            row = order[t]
            if t + 1 < bounds[block + 1]:  # the next query's neighbour rows, while this one is summed
                following = order[t + 1]
                for j in range(k):
                    c = neighbour_idx[following, j]
                    if c >= 0:
                        for r in range(pool_ptr[c], pool_ptr[c + 1], 16):  # a cache line of 4-byte entries
                            _prefetch(pool_cols, r)
                            _prefetch(pool_values, r)
            n_touched = 0
            for j in range(k):
                c = neighbour_idx[row, j]
                s = neighbour_sim[row, j]
                if c < 0 or not s > 0:
                    continue
                n_touched = _scatter_add(
                    votes, touched, n_touched, pool_cols, pool_values, pool_ptr[c], pool_ptr[c + 1], s
                )
            for r in range(played_ptr[row], played_ptr[row + 1]):
                votes[renumber[played_cols[r]]] = -1  # played: never recommended, still marked as touched
            size = 0
            for u in range(n_touched):
                a = touched[u]
                if votes[a] > 0 and (size < n or votes[a] >= heap_v[0]):
                    size = _heap_offer(heap_v, heap_i, size, n, votes[a], artist_of[a])
                votes[a] = 0
            for r in range(played_ptr[row], played_ptr[row + 1]):
                votes[renumber[played_cols[r]]] = 0
            _heap_write_sorted(heap_v, heap_i, size, out_a[row], out_s[row])


def _top_k_dense(similarity: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    k = min(k, similarity.shape[1])
    part = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
    part_sim = np.take_along_axis(similarity, part, axis=1)
    order = np.argsort(-part_sim, axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1).astype(np.int32), np.take_along_axis(part_sim, order, axis=1)


def _split_blocks(features: sp.csr_matrix, n_profile: int):
    return np.ascontiguousarray(features[:, :n_profile].toarray()), features[:, n_profile:].tocsr()


def _exact_neighbours(dense, plays, query, k, metric, batch_size, progress):
    squared = (dense**2).sum(1) + np.asarray(plays.multiply(plays).sum(1)).ravel()
    idx = np.empty((len(query), k), np.int32)
    sim = np.empty((len(query), k), np.float32)
    for start in tqdm(range(0, len(query), batch_size), desc="neighbours (exact)", disable=not progress):
        q = query[start : start + batch_size]
        dot = dense[q] @ dense.T + (plays[q] @ plays.T).toarray()
        if metric == "euclidean":
            dist = np.sqrt(np.maximum(squared[q, None] + squared[None, :] - 2 * dot, 0))
            dot = 1.0 / (1.0 + dist)
        dot[np.arange(len(q)), q] = -np.inf  # a user is not its own neighbour
        idx[start : start + len(q)], sim[start : start + len(q)] = _top_k_dense(dot, k)
    return idx, sim


def _pair_similarity(dense, plays, left, right, chunk=400_000):
    out = np.empty(len(left), np.float32)
    for s in range(0, len(left), chunk):
        a, b = left[s : s + chunk], right[s : s + chunk]
        out[s : s + chunk] = (
            np.einsum("ij,ij->i", dense[a], dense[b]) + np.asarray(plays[a].multiply(plays[b]).sum(1)).ravel()
        )
    return out


def _ann_neighbours(dense, plays, query, k, n_candidates, random_state, progress):
    """faiss IVF candidates on [profile block, SVD(plays block)], re-ranked by the exact cosine similarity."""
    import faiss
    from sklearn.decomposition import TruncatedSVD

    n_components = min(ANN_COMPONENTS, plays.shape[1] - 1)
    svd = TruncatedSVD(n_components, n_iter=2, random_state=random_state)
    embedding = np.hstack([dense, svd.fit_transform(plays).astype(np.float32)]).astype(np.float32)
    n, dim = embedding.shape
    n_lists = int(min(4 * np.sqrt(n), n // 40) or 1)
    quantizer = faiss.IndexFlatIP(dim)
    index = faiss.IndexIVFFlat(quantizer, dim, n_lists, faiss.METRIC_INNER_PRODUCT)
    rng = np.random.default_rng(random_state)
    index.train(embedding[rng.choice(n, min(n, 50 * n_lists), replace=False)])
    index.add(embedding)
    index.nprobe = max(8, int(n_lists * ANN_PROBE_SHARE))  # recall is measured by the benchmark, not assumed
    idx = np.empty((len(query), k), np.int32)
    sim = np.empty((len(query), k), np.float32)
    batch = 20_000
    for start in tqdm(range(0, len(query), batch), desc="neighbours (faiss + re-rank)", disable=not progress):
        q = query[start : start + batch]
        _, cand = index.search(embedding[q], n_candidates + 1)
        left = np.repeat(q, cand.shape[1])
        right = cand.ravel()
        valid = (right >= 0) & (right != left)
        exact = np.full(len(right), -np.inf, np.float32)
        exact[valid] = _pair_similarity(dense, plays, left[valid], right[valid])
        exact = exact.reshape(cand.shape)
        top, top_sim = _top_k_dense(exact, k)
        idx[start : start + len(q)] = np.take_along_axis(cand, top, axis=1)
        sim[start : start + len(q)] = top_sim
    idx[~np.isfinite(sim)] = -1
    return idx, sim


def _blocks(n_query: int) -> int:
    """Thread work units: ~1,000 queries each, at least one per core so both cores get work."""
    return int(max(1, min(n_query, max(numba.get_num_threads(), n_query // 1000))))


def _inverted_neighbours(features, n_profile, query, k, posting_cap, n_candidates, progress, timings, chunk=50_000):
    """Cosine neighbours from an inverted index (artist -> its ``posting_cap`` heaviest listeners) with an exact
    re-rank of the ``n_candidates`` best partial matches over the full feature rows (profile block included)."""
    start = time.perf_counter()
    # Rows ordered by each user's heaviest artist: users that share their favourites sit next to each other, so
    # the scratch rows, posting lists and candidate rows a block of queries touches stay in cache (~1.5x faster).
    # Results are mapped back to the caller's rows; ties rank by the reordered row (deterministic).
    features = features.tocsr()
    order = np.argsort(_heaviest_column(features.indptr, features.indices, features.data, n_profile), kind="stable")
    position = np.empty_like(order)
    position[order] = np.arange(len(order))
    features = features[order].tocsr()
    features.eliminate_zeros()  # the index relies on positive weights (0-play rows are stored zeros)
    # Artist columns renumbered by listeners, most first: the truncated posting lists are then the first columns
    # (the head, with the profile block), which the re-rank reads from compact copies of the candidate rows; the
    # other artists' lists are complete and summed exactly while scattering. Only row indices leave this function.
    listeners = np.bincount(features.indices, minlength=features.shape[1])[n_profile:]
    renumber = np.arange(features.shape[1])
    renumber[n_profile + _by_count_descending(listeners)] = np.arange(n_profile, features.shape[1])
    head_end = n_profile + int((listeners > posting_cap).sum())
    features = sp.csr_matrix((features.data, renumber[features.indices], features.indptr), shape=features.shape)
    indptr, indices = features.indptr.astype(np.int64), features.indices.astype(np.int32)
    data = features.data.astype(np.float32)
    head = features[:, :head_end].tocsr()
    head_pairs = np.empty(2 * head.nnz, np.int32)  # one array: one cache miss per candidate instead of two
    head_pairs[0::2], head_pairs[1::2] = head.indices, head.data.astype(np.float32).view(np.int32)
    head_ptr = head.indptr.astype(np.int64)
    post_ptr, post_rows, post_values = _truncated_postings(
        indptr, indices, data, n_profile, features.shape[1] - n_profile, posting_cap, numba.get_num_threads()
    )
    del head
    timings["index"] = time.perf_counter() - start
    start = time.perf_counter()
    idx = np.empty((len(query), k), np.int32)
    sim = np.empty((len(query), k), np.float32)
    query_order = np.argsort(position[query], kind="stable")  # queries in the reordered row order too
    query = np.ascontiguousarray(position[query][query_order], dtype=np.int64)
    for first in tqdm(range(0, len(query), chunk), desc="neighbours (inverted index)", disable=not progress):
        q = query[first : first + chunk]
        idx[first : first + len(q)], sim[first : first + len(q)] = _inverted_index_neighbours(
            indptr,
            indices,
            data,
            head_end,
            n_profile,
            post_ptr,
            post_rows,
            post_values,
            head_ptr,
            head_pairs,
            q,
            k,
            max(n_candidates, k),
            _blocks(len(q)),
        )
    result_idx = np.empty_like(idx)
    result_sim = np.empty_like(sim)
    result_idx[query_order] = np.where(idx >= 0, order[np.maximum(idx, 0)], -1)
    result_sim[query_order] = sim
    timings["search + re-rank"] = time.perf_counter() - start
    return result_idx, result_sim


def nearest_neighbours(
    features: sp.csr_matrix,
    n_profile_columns: int,
    k: int = DEFAULT_NEIGHBOURS,
    *,
    query=None,
    metric: str = "cosine",
    method: str = "auto",
    batch_size: int = 1000,
    n_candidates: int | None = None,
    posting_cap: int = INVERTED_POSTING_CAP,
    random_state: int = 0,
    progress: bool = False,
    timings: dict | None = None,
):
    """The ``k`` most similar rows of ``features`` for each query row (itself excluded).

    ``features``: CSR (n_users, n_features) whose first ``n_profile_columns`` columns are the profile block.
    ``metric``: 'cosine' (similarity = cosine) or 'euclidean' (similarity = 1 / (1 + distance), as a
    distance-based NearestNeighbors would rank). ``method``:

    * 'exact': all pairs in batches of ``batch_size`` queries (BLAS + sparse product, top-k); the reference.
    * 'inverted' (cosine only): an inverted index artist -> its ``posting_cap`` listeners with the largest
      weights; every user reached through the query's artists is a candidate, ranked by that partial dot
      product, and the best ``n_candidates`` (default INVERTED_CANDIDATES) are re-ranked by the exact cosine
      of the full feature rows. Users sharing no artist with the query are never candidates.
    * 'ann' (cosine only): faiss IVF on [profile block, SVD of the plays block], exact re-ranking of
      ``n_candidates`` (default 100).
    * 'auto': 'exact' for Euclidean or up to EXACT_MAX_USERS rows, else 'inverted'.

    Returns ``(indices, similarity)`` of shape (n_query, k); index -1 / similarity -inf where fewer than k were
    found. ``timings``, when given, receives wall seconds per phase. Raises ValueError for an unknown metric or
    method, or a method that does not support the metric.
    """
    timings = {} if timings is None else timings
    if metric not in ("cosine", "euclidean"):
        raise ValueError(f"metric must be 'cosine' or 'euclidean', got {metric!r}")
    if method not in ("auto", "exact", "inverted", "ann"):
        raise ValueError(f"method must be 'auto', 'exact', 'inverted' or 'ann', got {method!r}")
    n = features.shape[0]
    query = np.arange(n) if query is None else np.asarray(query)
    k = min(k, n - 1)
    if k < 1:
        return np.full((len(query), 0), -1, np.int32), np.zeros((len(query), 0), np.float32)
    if method == "auto":
        method = "exact" if n <= EXACT_MAX_USERS or metric == "euclidean" else "inverted"
    if method in ("ann", "inverted") and metric != "cosine":
        raise ValueError(f"method={method!r} supports metric='cosine' only")
    if metric == "cosine":
        features = normalize(features, norm="l2")
    if method == "inverted":
        return _inverted_neighbours(
            features, n_profile_columns, query, k, posting_cap, n_candidates or INVERTED_CANDIDATES, progress, timings
        )
    start = time.perf_counter()
    dense, plays = _split_blocks(features, n_profile_columns)
    if method == "exact":
        result = _exact_neighbours(dense, plays, query, k, metric, batch_size, progress)
    else:
        result = _ann_neighbours(dense, plays, query, k, max(n_candidates or 100, k), random_state, progress)
    timings[f"neighbours ({method})"] = time.perf_counter() - start
    return result


def score_artists(
    neighbour_idx, neighbour_sim, pool_plays_l1: sp.csr_matrix, played: sp.csr_matrix, n: int, chunk: int = 50_000
) -> tuple[np.ndarray, np.ndarray]:
    """Neighbour votes: score(artist) = sum over neighbours of similarity * neighbour's share of plays.

    ``neighbour_idx``/``neighbour_sim``: (n_query, k) rows of ``pool_plays_l1`` (n_pool, n_artists), -1 where
    missing (negative similarities count as 0); ``played``: (n_query, n_artists); every stored entry (even a
    stored 0) marks an artist to exclude. Returns ``(artist, score)`` of shape (n_query, n), best first (ties:
    lower artist column first), -1 / 0 padded; artists with a zero score are left out. The votes of one user are
    summed in a dense scratch row by a compiled kernel (numba), in blocks of users spread over the cores.
    """
    pool = pool_plays_l1.tocsr()
    if (pool.data <= 0).any():  # the kernel needs positive values (0-play rows are stored zeros)
        pool = pool.copy()
        pool.data[pool.data < 0] = 0
        pool.eliminate_zeros()
    # Artist columns renumbered by listeners, most first: the votes of a user then mostly land in the first few
    # thousand slots of the scratch row, which stay in cache (the kernel maps the columns back).
    artist_of = _by_count_descending(np.bincount(pool.indices, minlength=pool.shape[1])).astype(np.int32)
    renumber = np.empty(pool.shape[1], np.int32)
    renumber[artist_of] = np.arange(pool.shape[1], dtype=np.int32)
    pool_arrays = pool.indptr.astype(np.int64), renumber[pool.indices], pool.data.astype(np.float32)
    played = played.tocsr()
    played_arrays = played.indptr.astype(np.int64), played.indices.astype(np.int32)
    neighbour_idx = np.ascontiguousarray(neighbour_idx, dtype=np.int32)
    neighbour_sim = np.ascontiguousarray(neighbour_sim, dtype=np.float32)
    # queries with the same first neighbour next to each other: their neighbours' rows are then still in cache
    order = np.argsort(neighbour_idx[:, 0], kind="stable") if neighbour_idx.size else np.arange(len(neighbour_idx))
    artist = np.full((len(neighbour_idx), n), -1, np.int32)
    score = np.zeros((len(neighbour_idx), n), np.float32)
    for start in range(0, len(order), chunk):
        rows = order[start : start + chunk]
        _vote_kernel(
            rows,
            neighbour_idx,
            neighbour_sim,
            *pool_arrays,
            *played_arrays,
            renumber,
            artist_of,
            artist,
            score,
            _blocks(len(rows)),
        )
    return artist, score


def popular_artists(data: UserArtistData, n: int = FALLBACK_SIZE, countries=None):
    """Most popular artists by listener count (users who played the artist): global and per country.

    ``n``: chart length (callers filling top-n lists pass at least their n). ``countries``: the country codes whose
    charts are needed (default all; the others are left empty). Returns ``(global_artist, global_listeners,
    country_artist, country_listeners)``: (n,) arrays and (n_countries, n) arrays, best first (ties: lower artist
    column), -1 / 0 padded. Listeners rather than summed plays so a few heavy users cannot dominate.
    """
    plays = data.plays.tocsr()
    listeners = np.bincount(plays.indices[plays.data > 0], minlength=plays.shape[1])
    global_artist = _by_count_descending(listeners)[:n]
    global_artist = np.concatenate(
        [
            global_artist[listeners[global_artist] > 0],  # artists with listeners only
            np.full(n, -1, np.int64),
        ]
    )[:n].astype(np.int32)
    global_score = np.zeros(n, np.float32)
    global_score[global_artist >= 0] = listeners[global_artist[global_artist >= 0]]
    known = data.country >= 0
    if countries is not None:
        known &= np.isin(data.country, countries)
    users = np.flatnonzero(known)
    membership = sp.csr_matrix(
        (np.ones(len(users), np.float32), (data.country[users], np.arange(len(users)))),
        shape=(len(data.countries), len(users)),
    )
    country_artist, country_score = top_n_per_row(membership @ (plays[users] > 0).astype(np.float32), n)
    return global_artist, global_score, country_artist, country_score


def _fill_from_popular(recs: Recommendations, data: UserArtistData, popular) -> None:
    """Complete rows with fewer than n artists: country favourites first, then global ones, never played ones."""
    global_artist, global_score, country_artist, country_score = popular
    n = recs.artist.shape[1]
    for row in np.flatnonzero((recs.artist < 0).any(1)):
        user = recs.users[row]
        taken = set(data.plays.indices[data.plays.indptr[user] : data.plays.indptr[user + 1]].tolist())
        filled = int((recs.artist[row] >= 0).sum())
        taken.update(recs.artist[row, :filled].tolist())
        lists = [(global_artist, global_score, 2)]
        if data.country[user] >= 0:
            lists.insert(0, (country_artist[data.country[user]], country_score[data.country[user]], 1))
        for artists, scores, source in lists:
            for a, s in zip(artists.tolist(), scores.tolist()):
                if filled == n:
                    break
                if a >= 0 and a not in taken:
                    recs.artist[row, filled], recs.score[row, filled], recs.source[row, filled] = a, s, source
                    taken.add(a)
                    filled += 1


def recommend_users(
    data: UserArtistData,
    n: int = 20,
    *,
    users=None,
    profile_weight: float = DEFAULT_PROFILE_WEIGHT,
    k: int = DEFAULT_NEIGHBOURS,
    metric: str = "cosine",
    method: str = "auto",
    random_state: int = 0,
    progress: bool = False,
    timings: dict | None = None,
) -> Recommendations:
    """Top-``n`` artists for ``users`` (row indices into ``data``; default all users), never already played.

    Users with plays get neighbour votes (source 'neighbours'); missing places and users without plays are
    filled with their country's most popular artists ('country'), then global ones ('global'). Neighbours are
    drawn from the users with plays only. ``timings``, when given, receives wall seconds per phase (features,
    neighbour phases, votes, fill). Returns :class:`Recommendations`. Raises ValueError for n < 1.
    """
    timings = {} if timings is None else timings
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    users = np.arange(len(data.users)) if users is None else np.asarray(users)
    recs = Recommendations(
        users,
        np.full((len(users), n), -1, np.int32),
        np.zeros((len(users), n), np.float32),
        np.zeros((len(users), n), np.int8),
    )
    pool = np.flatnonzero(np.diff(data.plays.indptr) > 0)
    position_in_pool = np.full(len(data.users), -1)
    position_in_pool[pool] = np.arange(len(pool))
    warm = np.flatnonzero(position_in_pool[users] >= 0)
    if len(warm) and len(pool) > 1:
        start = time.perf_counter()
        # build_features(data, profile_weight)[pool], sharing the L1-normalised plays with the votes below
        plays_l1 = normalize(data.plays[pool], norm="l1").astype(np.float32)
        features = sp.hstack([_profile_block(data, profile_weight)[pool], plays_l1], format="csr", dtype=np.float32)
        timings["features"] = time.perf_counter() - start
        idx, sim = nearest_neighbours(
            features,
            1 + len(data.countries),
            k,
            query=position_in_pool[users[warm]],
            metric=metric,
            method=method,
            random_state=random_state,
            progress=progress,
            timings=timings,
        )
        del features
        start = time.perf_counter()
        recs.artist[warm], recs.score[warm] = score_artists(idx, sim, plays_l1, data.plays[users[warm]], n)
        timings["votes + top n"] = time.perf_counter() - start
    start = time.perf_counter()
    short = (recs.artist < 0).any(1)  # usually only cold-start users and the few whose neighbours ran dry
    if short.any():
        _fill_from_popular(
            recs,
            data,
            popular_artists(data, max(n, FALLBACK_SIZE), countries=np.unique(data.country[recs.users[short]])),
        )
    timings["popular + fill"] = time.perf_counter() - start
    return recs


def recommendations_frame(data: UserArtistData, recs: Recommendations) -> pd.DataFrame:
    """Long table: ``user`` (sha1), ``rank`` (1..n), ``artist_mbid``, ``artist_name``, ``score``, ``source``."""
    n = recs.artist.shape[1]
    filled = recs.artist >= 0
    rows, ranks = np.nonzero(filled)
    artist = recs.artist[rows, ranks]
    # object arrays indexed by position share one str per user/artist: no fixed-width copy of 7M strings
    return (
        pd.DataFrame(
            {
                "user": data.users.astype(object)[recs.users[rows]],
                "rank": (ranks + 1).astype(np.int32),
                "artist_mbid": data.artists["artist_mbid"].to_numpy(dtype=object)[artist],
                "artist_name": data.artists["artist_name"].to_numpy(dtype=object)[artist],
                "score": recs.score[rows, ranks].astype(np.float64),
                "source": np.asarray(SOURCES, dtype=object)[recs.source[rows, ranks]],
            }
        )
        if n
        else pd.DataFrame(columns=["user", "rank", "artist_mbid", "artist_name", "score", "source"])
    )


def fallbacks_frame(data: UserArtistData, n: int = FALLBACK_SIZE) -> pd.DataFrame:
    """Top-``n`` popular artists per country and globally (``country`` '' ), for users the batch never saw:
    columns ``country``, ``rank``, ``artist_mbid``, ``artist_name``, ``score`` (listener count)."""
    global_artist, global_score, country_artist, country_score = popular_artists(data, n)
    countries = np.concatenate([[""], data.countries])
    artist = np.vstack([global_artist[None, :], country_artist])
    score = np.vstack([global_score[None, :], country_score])
    rows, ranks = np.nonzero(artist >= 0)
    a = artist[rows, ranks]
    return pd.DataFrame(
        {
            "country": countries[rows].astype(str),
            "rank": (ranks + 1).astype(np.int32),
            "artist_mbid": data.artists["artist_mbid"].to_numpy()[a].astype(str),
            "artist_name": data.artists["artist_name"].to_numpy()[a].astype(str),
            "score": score[rows, ranks].astype(np.float64),
        }
    )


def build_batch(
    plays: pd.DataFrame, profiles: pd.DataFrame, n: int = 20, *, progress: bool = False, **options
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Recommendations for every user of both files plus the popularity fallbacks, as two DataFrames.

    ``plays``/``profiles``: frames from ``lastfm_data.load_plays``/``load_profiles``. ``options`` go to
    :func:`recommend_users` (profile_weight, k, metric, method, random_state). Returns ``(recommendations,
    fallbacks)`` as described in :func:`recommendations_frame` and :func:`fallbacks_frame`; every user gets n rows
    unless fewer than n unplayed artists have a listener. ``recommendations.attrs["coverage"]`` counts the users:
    ``users`` (of either file), ``full`` (n rows), ``fewer``, ``none``, and of the short ones (fewer or none)
    ``no_artist_left`` (every artist the user has not played was given) and ``no_popularity_data`` (artists remain
    but none has a listener with plays > 0, e.g. only 0-play rows), so no user is dropped silently.
    """
    data = build_user_artist_data(plays, profiles)
    recs = recommend_users(data, n, progress=progress, **options)
    frame = recommendations_frame(data, recs)
    got = (recs.artist >= 0).sum(1)
    left = data.plays.shape[1] - np.diff(data.plays.indptr)[recs.users]  # unplayed (0-play rows count as played)
    short = got < n
    no_artist_left = short & (got >= left)
    frame.attrs["coverage"] = {
        "users": int(len(recs.users)),
        "full": int((~short).sum()),
        "fewer": int((short & (got > 0)).sum()),
        "none": int((got == 0).sum()),
        "no_artist_left": int(no_artist_left.sum()),
        "no_popularity_data": int((short & ~no_artist_left).sum()),
    }
    return frame, fallbacks_frame(data)
