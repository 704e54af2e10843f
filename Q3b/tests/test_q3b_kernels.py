"""The numba kernels against plain references: top-n per row and the capped posting lists, ties included."""

import numpy as np
import scipy.sparse as sp

import neighbours
import q3b_kernels


def test_top_n_per_row_matches_sorting_with_ties_by_lower_column():
    matrix = sp.random(50, 70, density=0.15, format="csr", random_state=3, dtype=np.float32)
    matrix.data = np.round(matrix.data * 4) / 4  # ties at the cut-off
    indices, values = q3b_kernels.top_n_per_row(
        matrix.indptr.astype(np.int64), matrix.indices.astype(np.int32), matrix.data, 4
    )
    for r in range(50):
        row = matrix.getrow(r)
        expected = sorted(zip(-row.data, row.indices))[:4]
        np.testing.assert_allclose(values[r, : len(expected)], [-v for v, _ in expected])
        assert indices[r, : len(expected)].tolist() == [c for _, c in expected]
        assert (indices[r, len(expected) :] == -1).all()


def test_capped_postings_keep_the_heaviest_users_per_artist_listed_by_row():
    unit = sp.random(60, 13, density=0.5, format="csr", random_state=4, dtype=np.float32)
    unit.data = np.ceil(unit.data * 4)  # ties
    index = neighbours.build_index(unit, 2, cap=5)  # the columns from 2 on are artists
    assert len(index.ptr) == 12
    for a in range(11):
        column = unit[:, 2 + a].toarray().ravel()
        expected = sorted(sorted(np.flatnonzero(column), key=lambda r: (-column[r], r))[:5])
        assert index.rows[index.ptr[a] : index.ptr[a + 1]].tolist() == expected
        np.testing.assert_array_equal(index.values[index.ptr[a] : index.ptr[a + 1]], column[expected])
