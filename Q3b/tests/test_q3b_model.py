"""UserUserKNN against the plain numpy reference (identical lists), the inverted route against the exact one, the
API's errors, cold start and the batch contract."""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import neighbours
import q3b_popularity
import user_knn
from q3b_reference import reference_features, reference_neighbours, reference_recommend
from user_knn import UserUserKNN


def _fit(data, **options):
    return UserUserKNN(**options).fit(data.plays, data.profiles)


@pytest.mark.parametrize(
    "options",
    [
        {"k": 10, "profile_weight": 0.0},
        {"k": 25, "profile_weight": 0.3},
        {"k": 5, "profile_weight": 1.0, "play_weighting": "log"},
    ],
)
def test_exact_route_lists_equal_the_numpy_reference(small_data, options):
    users = np.arange(0, len(small_data.users), 3)
    model = _fit(small_data, method="exact", **options)
    ids, scores = model.recommend(users, small_data.plays[users], N=10)
    expected = reference_recommend(
        small_data.plays,
        small_data.age,
        small_data.country,
        len(small_data.countries),
        k=options["k"],
        n=10,
        weight=options["profile_weight"],
        weighting=options.get("play_weighting", "share"),
        users=users,
    )
    got = [row[row >= 0].tolist() for row in ids]
    assert got == expected
    assert (np.diff(scores, axis=1)[ids[:, 1:] >= 0] <= 1e-6).all()  # best first within each source


def test_similar_users_equal_the_reference(small_data):
    model = _fit(small_data, k=10, profile_weight=0.3, method="exact")
    unit, _, has_plays = reference_features(
        small_data.plays.toarray(), small_data.age, small_data.country, len(small_data.countries), 0.3
    )
    for user in (0, 17, 311):
        ids, sims = model.similar_users(user, N=8)
        expected, expected_sims = reference_neighbours(unit, has_plays, user, 8)
        assert ids.tolist() == expected
        np.testing.assert_allclose(sims, expected_sims, atol=1e-5)


def test_one_user_gives_the_row_of_the_batch(small_data):
    model = _fit(small_data, k=20)
    ids, scores = model.recommend(np.arange(40), small_data.plays[:40], N=7)
    one_ids, one_scores = model.recommend(12, small_data.plays[12], N=7)
    assert one_ids.shape == (7,) and one_ids.tolist() == ids[12].tolist()
    np.testing.assert_array_equal(one_scores, scores[12])
    unfiltered, _ = model.recommend(12, small_data.plays[12], N=7, filter_already_liked_items=False)
    played = set(small_data.plays[12].indices.tolist())
    assert not played & set(one_ids.tolist()) and played & set(unfiltered.tolist())


def _random_plays(n=150, n_artists=60, seed=5):
    rng = np.random.default_rng(seed)
    plays = sp.random(n, n_artists, density=0.08, format="csr", random_state=seed, dtype=np.float32) * 50
    every_user = sp.csr_matrix((np.ones(n, np.float32), (np.arange(n), rng.integers(0, n_artists, n))), plays.shape)
    return (plays + every_user).tocsr()


def test_inverted_route_without_caps_finds_the_exact_neighbours_among_users_sharing_an_artist():
    plays = _random_plays()
    exact = UserUserKNN(k=10, profile_weight=0, method="exact").fit(plays)
    inverted = UserUserKNN(k=10, profile_weight=0, method="inverted", posting_cap=150, n_candidates=150).fit(plays)
    shares_an_artist = ((plays > 0).astype(float) @ (plays > 0).T.astype(float)).toarray() > 0
    for user in range(plays.shape[0]):
        ids, sims = inverted.similar_users(user, N=10)
        exact_ids, exact_sims = exact.similar_users(user, N=10)
        eligible = exact_sims > 0  # users sharing no artist have similarity 0 and are never candidates
        assert shares_an_artist[user, ids].all() and user not in ids.tolist()
        np.testing.assert_allclose(sims[: eligible.sum()], exact_sims[eligible], atol=1e-6)


def test_inverted_route_recall_and_quality_close_to_exact(small_data):
    exact = _fit(small_data, k=20, method="exact")
    inverted = _fit(small_data, k=20, method="inverted", posting_cap=30, n_candidates=40)
    users = np.arange(0, len(small_data.users), 5)
    recall = []
    for user in users:
        e, _ = exact.similar_users(user, N=20)
        a, a_sims = inverted.similar_users(user, N=20)
        if len(e):
            recall.append(len(set(a) & set(e)) / len(e))
    assert np.mean(recall) > 0.9
    again = _fit(small_data, k=20, method="inverted", posting_cap=30, n_candidates=40)
    np.testing.assert_array_equal(
        inverted.recommend(users, small_data.plays[users])[0], again.recommend(users, small_data.plays[users])[0]
    )


def test_votes_follow_the_rule_with_zero_negative_and_missing_neighbours():
    shares = sp.csr_matrix(np.array([[0.5, 0.5, 0, 0], [0, 0.25, 0.75, 0], [0, 0, 0, 1.0]], np.float32))
    idx = np.array([[0, 1, 2, -1], [2, 1, 0, 0]], np.int32)
    sim = np.array([[0.8, 0.4, -0.3, 0.9], [0.0, 0.5, 0.2, 0.2]], np.float32)
    banned = sp.csr_matrix((np.zeros(2, np.float32), ([0, 0], [1, 3])), shape=(2, 4))  # stored zeros ban too
    artists, scores = neighbours.score_artists(idx, sim, shares, banned, n=3)
    # user 0: neighbour 2 (negative) and the -1 place do not vote; artists 1 and 3 are banned
    assert artists[0].tolist() == [0, 2, -1]
    np.testing.assert_allclose(scores[0], [0.8 * 0.5, 0.4 * 0.75, 0], rtol=1e-6)
    # user 1: neighbour 2 has similarity 0, so artist 3 gets no vote; neighbour 0 listed twice votes twice
    assert artists[1].tolist() == [2, 1, 0]
    np.testing.assert_allclose(scores[1], [0.5 * 0.75, 0.5 * 0.25 + 0.4 * 0.5, 0.4 * 0.5], rtol=1e-6)


def test_cold_start_users_get_their_country_chart(small_data):
    plays = small_data.plays.tolil()
    plays[:15] = 0  # the first 15 users lose their plays: profile-only users
    plays = plays.tocsr()
    plays.eliminate_zeros()
    model = UserUserKNN(k=10).fit(plays, small_data.profiles)
    ids, scores, sources = model.recommend(np.arange(15), plays[:15], N=10, return_sources=True)
    listened = (plays > 0).toarray()
    for user in range(15):
        c = small_data.country[user]
        expected_source = "country" if c >= 0 else "global"
        assert q3b_popularity.SOURCES[sources[user, 0]] == expected_source
        rows = small_data.country == c if c >= 0 else np.ones(len(listened), bool)
        counts = listened[rows].sum(0)
        assert scores[user, 0] == counts.max() and counts[ids[user, 0]] == counts.max()
    assert len(model.similar_users(3, N=5)[0]) == 0  # no plays: no neighbours


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda d: UserUserKNN(k=0), "k must be"),
        (lambda d: UserUserKNN(profile_weight=-1), "profile_weight"),
        (lambda d: UserUserKNN(method="ann"), "method"),
        (lambda d: UserUserKNN(play_weighting="tfidf"), "play_weighting"),
        (lambda d: UserUserKNN(k=5000).fit(d.plays, d.profiles), "k=5000 neighbours needs at least 5001 users"),
        (lambda d: UserUserKNN().fit(d.plays, d.profiles.iloc[:10]), "profiles has 10 rows"),
        (lambda d: UserUserKNN().recommend(0, d.plays[0]), "not fitted"),
        (lambda d: _fit(d).recommend(10**6, d.plays[0]), "unknown user id 1000000"),
        (lambda d: _fit(d).recommend([-1, 2], d.plays[:2]), "unknown user id -1"),
        (lambda d: _fit(d).recommend([0, 1], d.plays[:1]), "expected shape"),
        (lambda d: _fit(d).recommend(0, d.plays[0], N=0), "N must be"),
        (lambda d: _fit(d).similar_users(0, N=10**6), "N must be between"),
        (lambda d: _fit(d).similar_users("x"), "userids must be"),
    ],
)
def test_bad_arguments_raise_a_clear_value_error(small_data, make, message):
    with pytest.raises(ValueError, match=message):
        make(small_data)


def test_popularity_charts_count_listeners():
    plays = sp.csr_matrix(np.array([[0, 3, 0, 0, 1], [0, 2, 0, 0, 0], [0, 0, 0, 0, 0], [0, 0, 4, 0, 0]], np.float32))
    charts = q3b_popularity.popularity_charts(plays, np.array([0, 1, -1, 0]), 2)
    assert charts.chart(-1)[0].tolist() == [1, 2, 4] and charts.chart(-1)[1].tolist() == [2, 1, 1]
    assert charts.chart(0)[0].tolist() == [1, 2, 4] and charts.chart(1)[0].tolist() == [1]


def test_build_batch_contract(small_lastfm):
    _, plays, profiles = small_lastfm
    recommendations, fallbacks = user_knn.build_batch(plays, profiles, n=5)
    assert list(recommendations.columns) == ["user", "rank", "artist_mbid", "artist_name", "score", "source"]
    everyone = set(profiles["user"]) | set(plays["user"].astype(str))
    assert set(recommendations["user"]) == everyone
    assert (recommendations.groupby("user")["rank"].apply(sorted).map(tuple) == (1, 2, 3, 4, 5)).all()
    assert set(recommendations["source"]) <= {"neighbours", "country", "global"}
    assert recommendations["artist_mbid"].map(type).eq(str).all() and recommendations["score"].dtype == float
    assert list(fallbacks.columns) == ["country", "rank", "artist_mbid", "artist_name", "score"]
    assert (fallbacks["country"] == "").sum() == 100
    assert set(fallbacks["country"]) - {""} == set(profiles["country"].dropna().astype(str))
    top_global = plays[plays["plays"] > 0].groupby("artist", observed=True)["user"].nunique().max()
    assert fallbacks.loc[(fallbacks["country"] == "") & (fallbacks["rank"] == 1), "score"].item() == top_global
    assert isinstance(recommendations, pd.DataFrame)


def test_a_plugged_in_neighbour_search_replaces_the_route(small_data):
    calls = []

    def search(unit, n_profile, k, query):
        calls.append((unit.shape, n_profile, k, len(query)))
        return neighbours.exact_neighbours(unit, query, k)

    users = np.arange(0, 300, 7)
    plugged = _fit(small_data, k=15, neighbour_search=search).recommend(users, small_data.plays[users])
    exact = _fit(small_data, k=15, method="exact").recommend(users, small_data.plays[users])
    np.testing.assert_array_equal(plugged[0], exact[0])
    n_pool = int((np.diff(small_data.plays.indptr) > 0).sum())
    assert calls == [
        (
            (n_pool, 1 + len(small_data.countries) + small_data.plays.shape[1]),
            1 + len(small_data.countries),
            15,
            len(users),
        )
    ]
