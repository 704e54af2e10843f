"""The compiled kernels of neighbours.py against plain references: heap top-k, truncated posting lists, the
inverted-index neighbours (vs dense cosine products) and the votes with padding, stored zeros, negative weights."""

import tempfile

import numpy as np
import pytest
import scipy.sparse as sp

import neighbours as nb


def _dense_cosine(features):
    dense = features.toarray().astype(np.float64)
    norms = np.linalg.norm(dense, axis=1)
    dense = dense / np.where(norms > 0, norms, 1)[:, None]
    return dense @ dense.T


def test_heap_keeps_the_best_pairs_in_order_with_ties_by_index():
    rng = np.random.default_rng(0)
    values = rng.integers(0, 6, 200).astype(np.float32)  # many ties
    heap_v, heap_i = np.empty(7, np.float32), np.empty(7, np.int32)
    size = 0
    for i in rng.permutation(200):
        size = nb._heap_offer(heap_v, heap_i, size, 7, values[i], np.int32(i))
    out_i, out_v = np.full(7, -1, np.int32), np.zeros(7, np.float32)
    nb._heap_write_sorted(heap_v, heap_i, size, out_i, out_v)
    expected = sorted(range(200), key=lambda i: (-values[i], i))[:7]
    assert out_i.tolist() == expected
    np.testing.assert_array_equal(out_v, values[expected])


@pytest.mark.parametrize("n_touched, layout", [(150, "random"), (2500, "random"), (2500, "sampled rows best")])
def test_candidate_selection_keeps_the_best_rows_with_ties_by_row(n_touched, layout):
    rng = np.random.default_rng(n_touched)
    cap = 100
    touched = rng.permutation(5000)[:n_touched].astype(np.int32)
    partial = np.zeros(5000, np.float32)
    partial[touched] = rng.integers(1, 40, n_touched)  # many ties
    if layout == "sampled rows best":  # the threshold from every 8th row then lets too few through: fallback
        partial[touched[::8]] += 1000
    q = int(touched[3])
    cand_v, cand_i = np.empty(cap, np.float32), np.empty(cap, np.int32)
    size = nb._best_candidates(
        partial,
        touched.copy(),
        n_touched,
        q,
        cand_v,
        cand_i,
        np.empty(5000, np.int32),
        np.empty(cap // 4, np.float32),
        np.empty(cap // 4, np.int32),
    )
    out_i, out_v = np.full(cap, -1, np.int32), np.zeros(cap, np.float32)
    nb._heap_write_sorted(cand_v, cand_i, size, out_i, out_v)
    expected = sorted((c for c in touched.tolist() if c != q), key=lambda c: (-partial[c], c))[:cap]
    assert out_i[:size].tolist() == expected


@pytest.mark.parametrize("n_blocks", [1, 2, 3])
def test_truncated_postings_keep_the_heaviest_rows_per_column(n_blocks):
    matrix = sp.random(60, 11, density=0.5, format="csr", random_state=4, dtype=np.float32)
    matrix.data = np.ceil(matrix.data * 4)  # ties
    ptr, rows, values = nb._truncated_postings(
        matrix.indptr.astype(np.int64), matrix.indices.astype(np.int32), matrix.data, 2, 9, 5, n_blocks
    )  # the columns from 2 on
    assert len(ptr) == 10
    for a in range(9):
        column = matrix[:, 2 + a].toarray().ravel()
        expected = sorted(sorted(np.flatnonzero(column), key=lambda r: (-column[r], r))[:5])  # listed by row
        assert rows[ptr[a] : ptr[a + 1]].tolist() == expected
        np.testing.assert_array_equal(values[ptr[a] : ptr[a + 1]], column[expected])


def _random_features(n=150, n_profile=4, n_artists=60, seed=5):
    rng = np.random.default_rng(seed)
    plays = sp.random(n, n_artists, density=0.08, format="csr", random_state=seed, dtype=np.float32)
    plays = plays + sp.csr_matrix(
        (np.ones(n, np.float32), (np.arange(n), rng.integers(0, n_artists, n))), shape=plays.shape
    )  # every user plays something
    profile = np.zeros((n, n_profile), np.float32)
    profile[:, 0] = 0.05 * rng.normal(size=n)
    profile[np.arange(n), 1 + rng.integers(0, n_profile - 1, n)] = 0.05
    return sp.hstack([sp.csr_matrix(profile), plays], format="csr"), n_profile, plays


def test_inverted_neighbours_without_truncation_are_the_exact_ones_among_users_sharing_an_artist():
    features, n_profile, plays = _random_features()
    n = features.shape[0]
    idx, sim = nb.nearest_neighbours(features, n_profile, 10, method="inverted", posting_cap=n, n_candidates=n)
    cosine = _dense_cosine(features)
    shares = ((plays > 0).astype(np.float32) @ (plays > 0).T.astype(np.float32)).toarray() > 0
    for q in range(n):
        eligible = [c for c in range(n) if c != q and shares[q, c]]
        expected = sorted(eligible, key=lambda c: -cosine[q, c])[:10]
        found = idx[q][idx[q] >= 0]
        np.testing.assert_allclose(sim[q, : len(found)], cosine[q, found], atol=1e-5)  # re-rank is exact
        np.testing.assert_allclose(np.sort(sim[q, : len(found)])[::-1], cosine[q, expected], atol=1e-5)
        assert q not in found.tolist()


def test_inverted_neighbours_recall_against_exact_on_generated_users(small_data):
    pool = np.flatnonzero(np.diff(small_data.plays.indptr) > 0)
    features = nb.build_features(small_data, nb.DEFAULT_PROFILE_WEIGHT)[pool]
    n_profile = 1 + len(small_data.countries)
    exact, exact_sim = nb.nearest_neighbours(features, n_profile, 20, method="exact")
    approx, approx_sim = nb.nearest_neighbours(
        features, n_profile, 20, method="inverted", posting_cap=30, n_candidates=40
    )
    recall = np.mean([len(set(a) & set(e)) / 20 for a, e in zip(approx, exact)])
    assert recall > 0.9
    assert (approx_sim[:, -1] <= exact_sim[:, -1] + 1e-5).all()
    again, _ = nb.nearest_neighbours(features, n_profile, 20, method="inverted", posting_cap=30, n_candidates=40)
    np.testing.assert_array_equal(approx, again)  # deterministic


@pytest.mark.parametrize("query", [None, [7, 3, 3, 120]])
def test_inverted_neighbours_answer_in_the_callers_row_order(query):
    features, n_profile, _ = _random_features()
    full_idx, full_sim = nb.nearest_neighbours(features, n_profile, 5, method="inverted")
    idx, sim = nb.nearest_neighbours(features, n_profile, 5, method="inverted", query=query)
    rows = np.arange(features.shape[0]) if query is None else np.asarray(query)
    np.testing.assert_array_equal(idx, full_idx[rows])
    np.testing.assert_array_equal(sim, full_sim[rows])


def test_votes_with_padding_stored_zeros_and_negative_similarities():
    pool = sp.csr_matrix(np.array([[0.5, 0.5, 0, 0], [0, 0.25, 0.75, 0], [0, 0, 0, 1.0]], np.float32))
    pool = sp.csr_matrix(
        (np.append(pool.data, 0).astype(np.float32), np.append(pool.indices, 3), [0, 2, 4, 6]), shape=(3, 4)
    )  # row 1 gets a stored 0 for artist 3
    idx = np.array([[0, 1, -1], [2, 1, 0]], np.int32)
    sim = np.array([[0.8, 0.4, 9.0], [-0.3, 0.5, 0.1]], np.float32)
    played = sp.csr_matrix(np.array([[1, 0, 0, 0], [0, 0, 0, 0]], np.float32))
    artist, score = nb.score_artists(idx, sim, pool, played, n=4)
    # user 0: artist 1: 0.8*0.5 + 0.4*0.25 = 0.5, artist 2: 0.4*0.75 = 0.3; artist 0 played; artist 3 no vote
    assert artist[0].tolist() == [1, 2, -1, -1]
    np.testing.assert_allclose(score[0], [0.5, 0.3, 0, 0], rtol=1e-6)
    # user 1: the negative similarity of row 2 counts as 0; artist 2 0.375, artist 1 0.125+0.05, artist 0 0.05
    assert artist[1].tolist() == [2, 1, 0, -1]
    np.testing.assert_allclose(score[1], [0.375, 0.175, 0.05, 0], rtol=1e-6)


@pytest.mark.filterwarnings("ignore::scipy.sparse.SparseEfficiencyWarning")
def test_inverted_neighbours_with_stored_zero_plays_list_each_neighbour_once():
    features, n_profile, _ = _random_features(n=40)
    features = features.tolil()
    features[0, n_profile:] = 0  # user 0: explicit zeros only (0-play rows), so only the profile block is left
    features = features.tocsr()
    features[0, n_profile + np.arange(5)] = 0.0
    idx, _ = nb.nearest_neighbours(features, n_profile, 10, method="inverted")
    for row in idx:
        found = row[row >= 0]
        assert len(found) == len(set(found.tolist()))


def test_numba_cache_falls_back_to_the_temp_folder_only_when_nothing_is_writable(tmp_path):
    blocked = tmp_path / "a-file"
    blocked.write_text("x")  # a folder below a file can never be created, even by root
    assert nb._unwritable_cache_fallback([str(blocked / "__pycache__"), str(tmp_path / "cache")]) is None
    assert nb._unwritable_cache_fallback([str(blocked / "__pycache__"), str(blocked / "numba")]).startswith(
        tempfile.gettempdir()
    )


def test_order_by_count_descending_is_a_stable_argsort():
    counts = np.random.default_rng(2).integers(0, 6, 500)  # many ties
    np.testing.assert_array_equal(nb._by_count_descending(counts), np.argsort(-counts, kind="stable"))
    assert nb._by_count_descending(np.zeros(0, np.int64)).tolist() == []


def test_prefetch_is_a_hint_that_changes_nothing_even_past_the_end():
    import numba

    @numba.njit
    def total_with_prefetches(values):
        total = 0.0
        for i in range(len(values)):
            nb._prefetch(values, i + 64)  # past the end for the last 64 indices: a hint never faults
            total += values[i]
        return total

    values = np.random.default_rng(3).random(1000)
    assert total_with_prefetches(values) == pytest.approx(values.sum())
