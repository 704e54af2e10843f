"""Users, artists and plays as arrays, and the feature rows the user-user neighbours are computed on.

A user's feature row is ``[w * z-scored age, w * one-hot country, plays shares]``:

* ``w`` is the profile weight (``profile_weight``, >= 0): it balances what a user tells us (age, country) against
  what they play. ``w = 0`` uses plays only.
* age is z-scored over the users with a known age (0 when missing); the country is one-hot (all 0 when missing).
* the plays block is ``weighting(plays)`` divided by the user's total, so each row of the block sums to 1 (all 0
  for a user without plays): ``'share'`` (the prototype's choice) uses raw play counts, ``'log'`` uses
  ``log(1 + plays)`` so one artist played 10,000 times does not drown the 49 others.

Cosine similarity of two users is the dot product of their rows after L2 normalisation (``unit_rows``).
These are the only features: the neighbour search (``neighbours``), the Spark batch and the tests all build them here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.preprocessing import normalize

from lastfm_data import align_users

PLAY_WEIGHTINGS = ("share", "log")


@dataclass
class UserArtistData:
    """Users, artists, plays and profiles, one row per user in the same order everywhere.

    ``users``: (n_users,) str user ids; ``artists``: DataFrame of n_artists rows (index: artist key; columns
    ``artist_mbid``, ``artist_name``); ``plays``: CSR (n_users, n_artists) float32 play counts; ``age``: (n_users,)
    float32, NaN when missing; ``country``: (n_users,) int32 code into ``countries``, -1 when missing.
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

    @property
    def profiles(self) -> pd.DataFrame:
        """Profile table for ``UserUserKNN.fit``: columns ``age`` (float, NaN missing) and ``country`` (categorical,
        NaN missing), one row per user row."""
        country = pd.Categorical.from_codes(self.country, categories=self.countries)
        return pd.DataFrame({"age": self.age, "country": country})


def build_user_artist_data(plays: pd.DataFrame, profiles: pd.DataFrame) -> UserArtistData:
    """Arrays from the frames of ``lastfm_data.load_plays``/``load_profiles`` (or ``load_hetrec``), users of both
    files included: users keep the profile file's order; plays-only users are appended (``align_users``)."""
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


def encode_profiles(profiles: pd.DataFrame | None, n_users: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(age, country, countries)`` arrays from a profile table with columns ``age`` and ``country`` (one row per
    user; None means no profiles: every age and country missing). Raises ValueError for a wrong row count or a
    missing column."""
    if profiles is None:
        return np.full(n_users, np.nan, np.float32), np.full(n_users, -1, np.int32), np.empty(0, dtype=str)
    missing = {"age", "country"} - set(profiles.columns)
    if missing:
        raise ValueError(f"profiles needs columns 'age' and 'country'; missing {sorted(missing)}")
    if len(profiles) != n_users:
        raise ValueError(f"profiles has {len(profiles)} rows but user_items has {n_users} users; give one row per user")
    country = pd.Categorical(profiles["country"])
    age = pd.to_numeric(profiles["age"], errors="coerce").to_numpy(np.float32)
    return age, country.codes.astype(np.int32), np.asarray(country.categories, dtype=str)


def profile_block(age: np.ndarray, country: np.ndarray, n_countries: int, profile_weight: float) -> sp.csr_matrix:
    """The profile columns of the feature rows: CSR (n_users, 1 + n_countries) float32, ``w * z-scored age`` then
    ``w * one-hot country`` (see the module docstring). Raises ValueError for a negative or non-finite weight."""
    if not np.isfinite(profile_weight) or profile_weight < 0:
        raise ValueError(f"profile_weight must be a finite number >= 0, got {profile_weight}")
    age = age.astype(np.float64)
    known = ~np.isnan(age)
    scaled = np.zeros(len(age), np.float32)
    if known.sum() > 1 and age[known].std() > 0:
        scaled[known] = (age[known] - age[known].mean()) / age[known].std()
    has_country = country >= 0
    one_hot = sp.csr_matrix(
        (np.ones(has_country.sum(), np.float32), (np.flatnonzero(has_country), country[has_country])),
        shape=(len(age), n_countries),
    )
    block = sp.hstack([sp.csr_matrix(scaled[:, None]), one_hot], format="csr", dtype=np.float32) * profile_weight
    block.eliminate_zeros()
    return block.astype(np.float32)


def play_shares(plays: sp.csr_matrix, weighting: str = "share") -> sp.csr_matrix:
    """The plays block: CSR (n_users, n_artists) float32, each user's weighted plays divided by their total.

    ``weighting``: 'share' (raw counts) or 'log' (``log1p`` of the counts). Stored zeros (0-play rows) are
    removed, so every stored value is > 0. Raises ValueError for another weighting or negative plays."""
    if weighting not in PLAY_WEIGHTINGS:
        raise ValueError(f"play weighting must be one of {PLAY_WEIGHTINGS}, got {weighting!r}")
    plays = plays.tocsr().astype(np.float32, copy=True)
    if (plays.data < 0).any():
        raise ValueError("plays must be >= 0")
    if weighting == "log":
        np.log1p(plays.data, out=plays.data)
    plays.eliminate_zeros()
    plays.sort_indices()
    return normalize(plays, norm="l1").astype(np.float32)


def user_features(
    plays: sp.csr_matrix,
    age: np.ndarray,
    country: np.ndarray,
    n_countries: int,
    profile_weight: float,
    weighting: str = "share",
) -> sp.csr_matrix:
    """Feature rows CSR (n_users, 1 + n_countries + n_artists) float32: ``[profile_block, play_shares]``.
    The first ``1 + n_countries`` columns are the profile block (see :func:`profile_block`)."""
    return sp.hstack(
        [profile_block(age, country, n_countries, profile_weight), play_shares(plays, weighting)],
        format="csr",
        dtype=np.float32,
    )


def unit_rows(features: sp.csr_matrix) -> sp.csr_matrix:
    """Rows scaled to L2 norm 1 (rows of zeros stay zero), float32 CSR with sorted indices: cosine = dot product."""
    out = normalize(features.tocsr(), norm="l2").astype(np.float32)
    out.sort_indices()
    return out
