"""User-user kNN: neighbours against sklearn, votes against a plain-Python reference, the batch contract."""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.neighbors import NearestNeighbors

import neighbours as nb


def _features(small_data, weight=0.3):
    pool = np.flatnonzero(np.diff(small_data.plays.indptr) > 0)
    return nb.build_features(small_data, weight)[pool], 1 + len(small_data.countries)


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_exact_neighbours_match_sklearn_brute_force(small_data, metric):
    features, n_profile = _features(small_data)
    idx, sim = nb.nearest_neighbours(features, n_profile, 10, metric=metric, method="exact", batch_size=128)
    reference = NearestNeighbors(n_neighbors=11, metric=metric, algorithm="brute").fit(features.toarray())
    dist, ref_idx = reference.kneighbors(features.toarray())
    ref_sim = 1 - dist[:, 1:] if metric == "cosine" else 1 / (1 + dist[:, 1:])
    np.testing.assert_allclose(sim, ref_sim, atol=2e-4)  # ties may swap indices, never similarities
    assert (idx[:, 0] == ref_idx[:, 1]).mean() > 0.97
    assert not (idx == np.arange(len(idx))[:, None]).any()


def test_ann_neighbours_recover_most_exact_neighbours(small_data):
    features, n_profile = _features(small_data)
    exact, exact_sim = nb.nearest_neighbours(features, n_profile, 20, method="exact")
    approx, approx_sim = nb.nearest_neighbours(features, n_profile, 20, method="ann", n_candidates=80)
    recall = np.mean([len(set(a) & set(e)) / 20 for a, e in zip(approx, exact)])
    assert recall > 0.8
    # re-ranking is exact: whatever was found carries its true similarity, so it can only be <= the exact k-th
    assert (approx_sim[:, -1] <= exact_sim[:, -1] + 1e-5).all()


def test_votes_match_a_plain_python_reference():
    rng = np.random.default_rng(0)
    pool = sp.random(40, 30, density=0.2, format="csr", random_state=1, dtype=np.float32)
    idx = rng.integers(0, 40, (8, 5)).astype(np.int32)
    sim = rng.random((8, 5)).astype(np.float32)
    played = sp.random(8, 30, density=0.2, format="csr", random_state=2, dtype=np.float32)
    artist, score = nb.score_artists(idx, sim, pool, played, n=6)
    dense_pool, dense_played = pool.toarray(), played.toarray()
    for q in range(8):
        votes = {}
        for j, s in zip(idx[q], sim[q]):
            for a in range(30):
                if dense_pool[j, a] > 0 and dense_played[q, a] == 0:
                    votes[a] = votes.get(a, 0.0) + s * dense_pool[j, a]
        best = sorted(votes.items(), key=lambda kv: (-kv[1], kv[0]))[:6]
        np.testing.assert_allclose(score[q, : len(best)], [v for _, v in best], rtol=1e-5)
        assert set(artist[q, : len(best)]) == {a for a, _ in best}


def test_top_n_per_row_matches_sorting():
    matrix = sp.random(50, 70, density=0.15, format="csr", random_state=3, dtype=np.float32)
    matrix.data = np.round(matrix.data * 4) / 4  # ties at the cut-off, resolved by the lower column
    indices, values = nb.top_n_per_row(matrix, 4)
    for r in range(50):
        row = matrix.getrow(r)
        expected = sorted(zip(-row.data, row.indices))[:4]
        np.testing.assert_allclose(values[r, : len(expected)], [-v for v, _ in expected])
        assert indices[r, : len(expected)].tolist() == [c for _, c in expected]
        assert (indices[r, len(expected) :] == -1).all()


def test_recommendations_never_include_played_artists_and_cover_everyone(small_data):
    recs = nb.recommend_users(small_data, 20)
    assert (recs.artist >= 0).all()
    for row, user in enumerate(recs.users):
        played = set(small_data.plays.indices[small_data.plays.indptr[user] : small_data.plays.indptr[user + 1]])
        assert not played & set(recs.artist[row].tolist())
        assert len(set(recs.artist[row].tolist())) == 20
    for scores, sources in zip(recs.score, recs.source):
        assert (np.diff(scores[sources == 0]) <= 1e-7).all()  # neighbour votes come best first


def test_cold_start_users_get_their_country_chart(small_data):
    keep = np.ones(len(small_data.users))
    keep[:15] = 0  # the first 15 users lose their plays: profile-only users
    small_data = small_data.with_plays(sp.diags(keep) @ small_data.plays)
    small_data.plays.eliminate_zeros()
    cold = np.flatnonzero(np.diff(small_data.plays.indptr) == 0)
    assert set(range(15)) <= set(cold)
    recs = nb.recommend_users(small_data, 10, users=cold)
    assert set(np.unique(recs.source)) <= {1, 2}
    listened = (small_data.plays > 0).astype(np.float32)
    for row, user in enumerate(cold):
        c = small_data.country[user]
        if c < 0:
            assert (recs.source[row] == 2).all()
            continue
        counts = np.asarray(listened[small_data.country == c].sum(0)).ravel()
        assert recs.score[row, 0] == counts.max()  # the country's most-listened artist comes first
        assert counts[recs.artist[row, 0]] == counts.max()


def test_popular_artists_match_counting_listeners(small_data):
    listened = (small_data.plays > 0).toarray()
    wanted = np.unique(small_data.country[small_data.country >= 0])[:3]
    global_artist, global_score, country_artist, country_score = nb.popular_artists(small_data, 15, countries=wanted)
    expected = sorted(zip(-listened.sum(0), range(listened.shape[1])))[:15]
    assert global_artist.tolist() == [a for _, a in expected]
    assert global_score.tolist() == [-v for v, _ in expected]
    for c in range(len(small_data.countries)):
        if c not in wanted:  # only the charts asked for are computed
            assert (country_artist[c] == -1).all()
            continue
        counts = listened[small_data.country == c].sum(0)
        chart = [a for v, a in sorted(zip(-counts, range(len(counts)))) if v < 0][:15]
        assert country_artist[c, : len(chart)].tolist() == chart
        assert country_score[c, : len(chart)].tolist() == counts[chart].tolist()


def test_popular_charts_are_padded_when_few_artists_have_listeners():
    plays = sp.csr_matrix(np.array([[0, 3, 0, 0, 1], [0, 2, 0, 0, 0], [0, 0, 0, 0, 0]], np.float32))
    data = nb.UserArtistData(
        np.array(["a", "b", "c"]),
        None,
        plays,
        np.full(3, np.nan, np.float32),
        np.array([0, 1, -1], np.int32),
        np.array(["X", "Y"]),
    )
    global_artist, global_score, country_artist, country_score = nb.popular_artists(data, 4)
    assert global_artist.tolist() == [1, 4, -1, -1] and global_score.tolist() == [2, 1, 0, 0]
    assert country_artist.tolist() == [[1, 4, -1, -1], [1, -1, -1, -1]]
    assert country_score.tolist() == [[1, 1, 0, 0], [1, 0, 0, 0]]


def test_build_batch_contract(small_lastfm):
    _, plays, profiles = small_lastfm
    recommendations, fallbacks = nb.build_batch(plays, profiles, n=5)
    assert list(recommendations.columns) == ["user", "rank", "artist_mbid", "artist_name", "score", "source"]
    everyone = set(profiles["user"]) | set(plays["user"].astype(str))
    assert set(recommendations["user"]) == everyone
    assert (recommendations.groupby("user")["rank"].apply(sorted).map(tuple) == (1, 2, 3, 4, 5)).all()
    assert set(recommendations["source"]) <= {"neighbours", "country", "global"}
    assert recommendations["artist_mbid"].map(type).eq(str).all() and recommendations["score"].dtype == float
    assert list(fallbacks.columns) == ["country", "rank", "artist_mbid", "artist_name", "score"]
    assert (fallbacks["country"] == "").sum() == 100
    countries = set(profiles["country"].dropna().astype(str))
    assert set(fallbacks["country"]) - {""} == countries
    top_global = plays.groupby("artist_name", observed=True)["user"].nunique().max()
    assert fallbacks.loc[(fallbacks["country"] == "") & (fallbacks["rank"] == 1), "score"].item() == top_global
    assert isinstance(recommendations, pd.DataFrame)
