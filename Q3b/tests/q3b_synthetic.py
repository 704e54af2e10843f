"""A contract-shaped recommendation batch with random content, for the serving tests and the load benchmark.

Not a recommender: it makes frames of the shape ``recommender.py batch`` hands to the store, at any size.
"""

import re

import numpy as np
import pandas as pd

import rec_store


def synthetic_batch(
    n_users: int,
    n_per_user: int = 20,
    *,
    n_artists: int = 10_007,
    countries: tuple[str, ...] = (
        "United States",
        "Germany",
        "United Kingdom",
        "Poland",
        "Brazil",
        "Korea, Republic of",
    ),
    random_state: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A contract-shaped batch with random content, for load benchmarks and tests of the serving layer only.

    Not a recommender: users are random 40-hex ids (the Last.fm 360K id shape), each gets ``n_per_user`` distinct
    artists out of ``n_artists`` (a prime, so a random start and stride never repeat an artist) with decreasing
    scores; ~5% of users are marked ``country`` and ~1% ``global`` as if they had no neighbours; about one artist
    in 50 has no mbid and names include quotes and non-ASCII letters.  Fallbacks: top 100 per country and global.
    Returns ``(recommendations, fallbacks)`` as described in :func:`rec_store.prepare_batch`; deterministic in
    ``random_state``.
    """
    rng = np.random.default_rng(random_state)
    users = np.array(re.findall("." * 40, rng.bytes(20 * n_users).hex()), dtype=object)
    artist_ids = np.array(
        [
            f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"
            for h in re.findall("." * 32, rng.bytes(16 * n_artists).hex())
        ],
        dtype=object,
    )
    artist_ids[rng.random(n_artists) < 0.02] = ""
    stems = np.array(
        ["Die Ärzte", 'The "Band"', "Sigur Rós", "AC/DC", "Mötley Crüe", "Björk", "Guns N' Roses"], dtype=object
    )
    names = np.array([f"{stems[i % len(stems)]} {i}" for i in range(n_artists)], dtype=object)
    start = rng.integers(0, n_artists, n_users)
    stride = rng.integers(1, n_artists, n_users)
    picks = (start[:, None] + np.arange(n_per_user)[None, :] * stride[:, None]) % n_artists
    scores = -np.sort(-rng.random((n_users, n_per_user)), axis=1)
    source = rng.choice(np.array(rec_store.SOURCES, dtype=object), size=n_users, p=[0.94, 0.05, 0.01])
    recommendations = pd.DataFrame(
        {
            "user": np.repeat(users, n_per_user),
            "rank": np.tile(np.arange(1, n_per_user + 1), n_users),
            "artist_mbid": artist_ids[picks.ravel()],
            "artist_name": names[picks.ravel()],
            "score": scores.ravel(),
            "source": np.repeat(source, n_per_user),
        }
    )
    top = min(100, n_artists)
    groups = []
    for country in ("",) + tuple(countries):
        chosen = rng.choice(n_artists, size=top, replace=False)
        groups.append(
            pd.DataFrame(
                {
                    "country": country,
                    "rank": np.arange(1, top + 1),
                    "artist_mbid": artist_ids[chosen],
                    "artist_name": names[chosen],
                    "score": -np.sort(-rng.random(top)),
                }
            )
        )
    return recommendations, pd.concat(groups, ignore_index=True)
