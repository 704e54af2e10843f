"""User-user nearest-neighbour artist recommender with an implicit-style API, and the batch for all users.

    model = UserUserKNN(k=50, profile_weight=0.03).fit(data.plays, data.profiles)
    ids, scores = model.recommend(userid, data.plays[userid], N=20)
    ids, scores = model.recommend(np.arange(100), data.plays[:100], N=20)  # (100, 20) arrays
    neighbours, similarity = model.similar_users(userid, N=10)

The method: each user is a feature row (``q3b_features``: ``[w * age, w * country, plays shares]``); a user's
``k`` most similar users by cosine (``neighbours``) vote for the artists they play, weighted by similarity and by
the artist's share of the neighbour's plays (``neighbours.score_artists``); artists the user already played are
excluded. Users without plays, and lists the neighbours leave short, are filled from the user's country chart and
then the global chart (``q3b_popularity``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

import neighbours
import q3b_features
import q3b_popularity
from q3b_popularity import FALLBACK_SIZE, SOURCES

DEFAULT_NEIGHBOURS = 50
DEFAULT_PROFILE_WEIGHT = 0.03


class UserUserKNN:
    """User-user k-nearest-neighbour recommender (cosine similarity, similarity-weighted votes).

    Parameters: ``k`` (neighbours per user, >= 1), ``profile_weight`` (w >= 0, weight of the age/country columns
    against the plays block; 0 = plays only), ``play_weighting`` ('share' or 'log', see ``q3b_features``),
    ``method`` ('auto', 'exact', 'inverted'; see ``neighbours``), ``posting_cap`` and ``n_candidates`` (the
    inverted route's list length and re-rank size), ``progress`` (tqdm bars), ``neighbour_search`` (optional
    callable replacing the route, e.g. the Spark engine: ``neighbour_search(unit, n_profile, k, query) -> (idx, sim)``
    with ``unit`` the L2-normalised feature rows CSR (n_pool, n_features) of the users with plays, profile columns
    first (``n_profile`` of them), ``query`` int64 row indices into ``unit``; it returns what
    :func:`neighbours.inverted_neighbours` returns: (len(query), k) int32 rows of ``unit`` best first, -1 padded,
    and float32 cosine similarities, -inf padded; the user itself never among them).

    After :meth:`fit`: ``n_users_``, ``n_items_``, ``pool_`` (rows with plays: the only possible neighbours),
    ``method_`` (the route chosen). Raises ValueError for k < 1, a negative weight or an unknown option.
    """

    def __init__(
        self,
        k: int = DEFAULT_NEIGHBOURS,
        profile_weight: float = DEFAULT_PROFILE_WEIGHT,
        *,
        play_weighting: str = "share",
        method: str = "auto",
        posting_cap: int = neighbours.POSTING_CAP,
        n_candidates: int = neighbours.N_CANDIDATES,
        progress: bool = False,
        neighbour_search=None,
    ):
        if int(k) != k or k < 1:
            raise ValueError(f"k must be a whole number >= 1, got {k}")
        if not np.isfinite(profile_weight) or profile_weight < 0:
            raise ValueError(f"profile_weight must be a finite number >= 0, got {profile_weight}")
        if play_weighting not in q3b_features.PLAY_WEIGHTINGS:
            raise ValueError(f"play_weighting must be one of {q3b_features.PLAY_WEIGHTINGS}, got {play_weighting!r}")
        if method not in neighbours.METHODS:
            raise ValueError(f"method must be one of {neighbours.METHODS}, got {method!r}")
        if posting_cap < 1 or n_candidates < 1:
            raise ValueError(f"posting_cap and n_candidates must be >= 1, got {posting_cap} and {n_candidates}")
        self.k, self.profile_weight, self.play_weighting = int(k), float(profile_weight), play_weighting
        self.method, self.posting_cap, self.n_candidates, self.progress = method, posting_cap, n_candidates, progress
        self.neighbour_search = neighbour_search

    def __repr__(self) -> str:
        weighting = self.play_weighting
        return f"UserUserKNN(k={self.k}, profile_weight={self.profile_weight:g}, play_weighting={weighting!r})"

    # --- fit ------------------------------------------------------------------------------------------------------
    def fit(self, user_items: sp.spmatrix, profiles: pd.DataFrame | None = None) -> UserUserKNN:
        """Learn from ``user_items``: CSR (n_users, n_items) play counts (>= 0) and optional ``profiles`` (DataFrame,
        one row per user, columns ``age`` and ``country``; None: no profile). Builds the feature rows of the users
        with plays, the inverted index (inverted route) and the popularity charts. Returns self. Raises ValueError
        when fewer than k + 1 users have plays (k above the number of other users)."""
        user_items = sp.csr_matrix(user_items, dtype=np.float32)
        n_users, n_items = user_items.shape
        age, country, countries = q3b_features.encode_profiles(profiles, n_users)
        pool = np.flatnonzero(np.asarray((user_items > 0).sum(1)).ravel() > 0)
        if self.k > len(pool) - 1:
            raise ValueError(
                f"k={self.k} neighbours needs at least {self.k + 1} users with plays; user_items has {len(pool)}"
            )
        features = q3b_features.user_features(
            user_items[pool], age[pool], country[pool], len(countries), self.profile_weight, self.play_weighting
        )
        self.n_profile_ = 1 + len(countries)
        self.shares_ = features[:, self.n_profile_ :].tocsr()
        self.unit_ = q3b_features.unit_rows(features)
        self.n_users_, self.n_items_, self.pool_ = n_users, n_items, pool
        self.country_, self.countries_ = country, countries
        self.pool_position_ = np.full(n_users, -1, np.int64)
        self.pool_position_[pool] = np.arange(len(pool))
        self.method_ = neighbours.resolve_method(self.method, len(pool)) if self.neighbour_search is None else "custom"
        self.index_ = None
        if self.method_ == "inverted":
            self.index_ = neighbours.build_index(self.unit_, self.n_profile_, self.posting_cap)
        self.charts_ = q3b_popularity.popularity_charts(user_items, country, len(countries))
        return self

    # --- queries --------------------------------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "unit_"):
            raise ValueError("this UserUserKNN is not fitted yet; call fit(user_items, profiles) first")

    def _user_ids(self, userids) -> np.ndarray:
        ids = np.atleast_1d(np.asarray(userids))
        if ids.ndim != 1 or (ids.size and not np.issubdtype(ids.dtype, np.integer)):
            raise ValueError(f"userids must be an integer or a 1-D array of integers, got {userids!r}"[:200])
        bad = ids[(ids < 0) | (ids >= self.n_users_)]
        if len(bad):
            raise ValueError(f"unknown user id {bad[0]}: ids are rows 0..{self.n_users_ - 1} of the fitted user_items")
        return ids.astype(np.int64)

    def _neighbours_of(self, positions: np.ndarray, k: int):
        """Neighbours (pool positions) of pool positions ``positions``, by the fitted route."""
        if self.method_ == "custom":
            return self.neighbour_search(self.unit_, self.n_profile_, k, positions)
        if self.method_ == "exact":
            return neighbours.exact_neighbours(self.unit_, positions, k, progress=self.progress)
        return neighbours.inverted_neighbours(
            self.unit_, self.n_profile_, self.index_, positions, k, self.n_candidates, progress=self.progress
        )

    def similar_users(self, userid: int, N: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """The ``N`` most similar users to ``userid`` (itself excluded), best first: ``(user ids int64, cosine
        similarity float32)``. Empty arrays for a user without plays (no feature row to compare). Raises
        ValueError for an unknown id or N outside 1..(users with plays - 1)."""
        self._check_fitted()
        (user,) = self._user_ids(userid) if np.ndim(userid) == 0 else (None,)
        if user is None:
            raise ValueError(f"similar_users takes one user id, got {userid!r}"[:200])
        if not 1 <= N <= len(self.pool_) - 1:
            raise ValueError(f"N must be between 1 and {len(self.pool_) - 1} (users with plays - 1), got {N}")
        position = self.pool_position_[user]
        if position < 0:
            return np.empty(0, np.int64), np.empty(0, np.float32)
        idx, sim = self._neighbours_of(np.array([position]), N)
        found = idx[0] >= 0
        return self.pool_[idx[0][found]], sim[0][found]

    def explain(self, userid: int, itemid: int) -> pd.DataFrame:
        """The votes behind ``userid``'s neighbour score of ``itemid``: one row per neighbour (of the ``k``) with a
        positive similarity, columns ``neighbour`` (user id), ``similarity``, ``share`` (the neighbour's play share of
        the item, 0 if not played) and ``vote`` = similarity x share; ``vote`` sums to the item's score. Empty for a
        user without plays. Raises ValueError for an unknown user or item id."""
        self._check_fitted()
        if not 0 <= itemid < self.n_items_:
            raise ValueError(f"unknown item id {itemid}: ids are columns 0..{self.n_items_ - 1} of user_items")
        (user,) = self._user_ids(userid)
        columns = ["neighbour", "similarity", "share", "vote"]
        if self.pool_position_[user] < 0:
            return pd.DataFrame(columns=columns)
        idx, sim = self._neighbours_of(np.array([self.pool_position_[user]]), self.k)
        weights = neighbours.vote_weights(sim[0])
        voting = (idx[0] >= 0) & (weights > 0)
        share = self.shares_[idx[0][voting]][:, [itemid]].toarray().ravel()
        frame = pd.DataFrame(
            {"neighbour": self.pool_[idx[0][voting]], "similarity": weights[voting], "share": share}, columns=columns
        )
        frame["vote"] = frame["similarity"] * frame["share"]
        return frame

    def recommend(
        self,
        userids,
        user_items: sp.spmatrix,
        N: int = 20,
        filter_already_liked_items: bool = True,
        return_sources: bool = False,
    ):
        """Top-``N`` artists for one user id or an array of user ids (rows of the fitted ``user_items``).

        ``user_items``: CSR (len(userids), n_items), the rows of these users (as in implicit): with
        ``filter_already_liked_items`` every stored entry is excluded from that user's list. Returns ``(ids,
        scores)``: int32 item ids and float32 scores, shape (N,) for one user, (n_users, N) for an array; best
        first, -1 / 0 padded only when no artist with a listener is left. Scores are neighbour votes (source
        'neighbours') or listener counts for places filled from the country or global chart; with
        ``return_sources`` a third array gives the int8 source code (index into ``SOURCES``).
        Raises ValueError for N < 1, an unknown user id or a user_items of the wrong shape."""
        self._check_fitted()
        scalar = np.ndim(userids) == 0
        users = self._user_ids(userids)
        if int(N) != N or N < 1:
            raise ValueError(f"N must be a whole number >= 1, got {N}")
        user_items = sp.csr_matrix(user_items)
        if user_items.shape != (len(users), self.n_items_):
            raise ValueError(
                f"user_items must have one row per user id and {self.n_items_} columns: expected shape "
                f"({len(users)}, {self.n_items_}), got {user_items.shape}"
            )
        banned = user_items if filter_already_liked_items else sp.csr_matrix((len(users), self.n_items_))
        banned.sort_indices()
        artist = np.full((len(users), N), -1, np.int32)
        score = np.zeros((len(users), N), np.float32)
        source = np.zeros((len(users), N), np.int8)
        positions = self.pool_position_[users]
        warm = np.flatnonzero(positions >= 0)
        if len(warm):
            idx, sim = self._neighbours_of(positions[warm], self.k)
            artist[warm], score[warm] = neighbours.score_artists(idx, sim, self.shares_, banned[warm], N)
        q3b_popularity.fill_from_popular(artist, score, source, banned, self.country_[users], self.charts_)
        result = (artist, score, source) if return_sources else (artist, score)
        return tuple(x[0] for x in result) if scalar else result


# --- the batch: every user of the files, as tables -----------------------------------------------------------------
@dataclass
class Recommendations:
    """Top-n lists: ``users`` (n_query,) rows of the data; ``artist`` (n_query, n) int32 artist column (-1 where
    fewer than n were found); ``score`` float32; ``source`` int8 index into SOURCES."""

    users: np.ndarray
    artist: np.ndarray
    score: np.ndarray
    source: np.ndarray


def recommend_all(data: q3b_features.UserArtistData, n: int = 20, **options) -> Recommendations:
    """Fit :class:`UserUserKNN` (``options``: its parameters) on ``data`` and recommend ``n`` artists to every user,
    never one they played. Raises ValueError as the model does (e.g. fewer than k + 1 users with plays)."""
    model = UserUserKNN(**options).fit(data.plays, data.profiles)
    users = np.arange(len(data.users))
    artist, score, source = model.recommend(users, data.plays, N=n, return_sources=True)
    return Recommendations(users, artist, score, source)


def recommendations_frame(data: q3b_features.UserArtistData, recs: Recommendations) -> pd.DataFrame:
    """Long table: ``user``, ``rank`` (1..n), ``artist_mbid``, ``artist_name``, ``score``, ``source``."""
    rows, ranks = np.nonzero(recs.artist >= 0)
    artist = recs.artist[rows, ranks]
    # object arrays indexed by position share one str per user/artist: no fixed-width copy of 7M strings
    return pd.DataFrame(
        {
            "user": data.users.astype(object)[recs.users[rows]],
            "rank": (ranks + 1).astype(np.int32),
            "artist_mbid": data.artists["artist_mbid"].to_numpy(dtype=object)[artist],
            "artist_name": data.artists["artist_name"].to_numpy(dtype=object)[artist],
            "score": recs.score[rows, ranks].astype(np.float64),
            "source": np.asarray(SOURCES, dtype=object)[recs.source[rows, ranks]],
        }
    )


def fallbacks_frame(data: q3b_features.UserArtistData, n: int = FALLBACK_SIZE) -> pd.DataFrame:
    """Top-``n`` artists per country and globally (``country`` ''), for users the batch never saw: columns
    ``country``, ``rank``, ``artist_mbid``, ``artist_name``, ``score`` (listener count)."""
    charts = q3b_popularity.popularity_charts(data.plays, data.country, len(data.countries))
    parts = []
    for code, name in [(-1, "")] + list(enumerate(data.countries)):
        artists, listeners = (x[:n] for x in charts.chart(code))
        parts.append(
            pd.DataFrame(
                {
                    "country": name,
                    "rank": np.arange(1, len(artists) + 1, dtype=np.int32),
                    "artist_mbid": data.artists["artist_mbid"].to_numpy()[artists].astype(str),
                    "artist_name": data.artists["artist_name"].to_numpy()[artists].astype(str),
                    "score": listeners.astype(np.float64),
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


def build_batch(
    plays: pd.DataFrame, profiles: pd.DataFrame, n: int = 20, *, progress: bool = False, **options
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Recommendations for every user of both files plus the popularity fallbacks, as two DataFrames.

    ``plays``/``profiles``: frames from ``lastfm_data``'s loaders. ``options``: :class:`UserUserKNN` parameters.
    Returns ``(recommendations, fallbacks)`` (see :func:`recommendations_frame`, :func:`fallbacks_frame`).
    ``recommendations.attrs["coverage"]`` counts the users: ``users``, ``full`` (n rows), ``fewer``, ``none``, and
    of the short ones ``no_artist_left`` (every artist the user has not played was given) and
    ``no_popularity_data`` (artists remain but none has a listener), so no user is dropped silently.
    """
    data = q3b_features.build_user_artist_data(plays, profiles)
    recs = recommend_all(data, n, progress=progress, **options)
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
