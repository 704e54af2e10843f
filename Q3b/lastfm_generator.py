"""Generator of look-alike Last.fm 360K files (both files, exactly the real format, any scale, fixed seed).

The formats are described in :mod:`lastfm_data`; the real profile sample in ``../shared/data/lastfm/`` is the
reference for the profile columns' distributions (:func:`profile_reference`). Plays follow a taste model of
genres tied to country and age, niches that own their artists (their number grows with the catalogue) and users
who mix several niches (:func:`generate_lastfm`; the README's Generator section explains it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from lastfm_data import PLAYS_FILE, PROFILE_COLUMNS, PROFILES_FILE, load_profiles

_MONTHS = np.array(["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"])


@dataclass
class ProfileReference:
    """Empirical profile distributions used by :func:`generate_lastfm` (from the real sample when available)."""

    gender: pd.Series  # probabilities of 'm', 'f', '' (missing)
    ages: np.ndarray  # observed valid ages
    age_missing: float
    country: pd.Series  # probabilities per country name
    signup_range: tuple  # (first, last) Timestamp


DEFAULT_REFERENCE = ProfileReference(
    gender=pd.Series({"m": 0.68, "f": 0.22, "": 0.10}),
    ages=np.array([17, 19, 20, 21, 22, 22, 23, 24, 25, 26, 28, 30, 33, 38, 45]),
    age_missing=0.22,
    country=pd.Series(
        {
            "United States": 0.2,
            "Germany": 0.12,
            "United Kingdom": 0.1,
            "Poland": 0.08,
            "Sweden": 0.08,
            "Brazil": 0.08,
            "Russian Federation": 0.08,
            "Finland": 0.06,
            "Spain": 0.06,
            "Japan": 0.05,
            "Korea, Republic of": 0.04,
            "Mexico": 0.05,
        }
    ),
    signup_range=(pd.Timestamp("2003-01-01"), pd.Timestamp("2009-11-01")),
)


def profile_reference(path=None) -> ProfileReference:
    """Distributions of gender, age, country and signup from a real profile file, or built-in defaults.

    ``path``: a ``usersha1-profile.tsv``-format file (e.g. the real sample) or None for :data:`DEFAULT_REFERENCE`.
    Raises FileNotFoundError when ``path`` is given but is not a file (no silent switch to the defaults).
    """
    if path is None:
        return DEFAULT_REFERENCE
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: no such reference profile file")
    profiles, _ = load_profiles(path)
    gender = profiles["gender"].astype(object).fillna("").value_counts(normalize=True)
    return ProfileReference(
        gender=gender,
        ages=profiles["age"].dropna().to_numpy(),
        age_missing=float(profiles["age"].isna().mean()),
        country=profiles["country"].value_counts(normalize=True).loc[lambda s: s > 0],
        signup_range=(profiles["signup"].min(), profiles["signup"].max()),
    )


def _hex_ids(rng, n: int, n_bytes: int) -> np.ndarray:
    raw = rng.bytes(n * n_bytes).hex()
    width = 2 * n_bytes
    return np.array([raw[i * width : (i + 1) * width] for i in range(n)], dtype=object)


def _artist_catalogue(rng, n_artists: int) -> pd.DataFrame:
    """Artist mbids (UUID-shaped) and names with the real quirks: ~1% without mbid, quotes, non-ASCII."""
    first = np.array(["the", "los", "die", "les", "dj", "lil", "mc", "sir", "dead", "black", "silver", "royal"])
    words = np.array(
        [
            "wolves",
            "echo",
            "machine",
            "ärzte",
            "sigur",
            "kings",
            "rain",
            "velvet",
            "orchestra",
            "ghost",
            "smiths",
            "strokes",
            "björk",
            "noir",
            "takeshi",
            "cowboy",
            "disco",
            "radio",
            "mountain",
            "jazz",
            "crew",
            "sound",
            "mötley",
            "club",
            "river",
            "stars",
            "fire",
            "paris",
            "tokyo",
            "ocean",
        ]
    )
    ids = np.arange(n_artists)
    names = (
        pd.Series(first[rng.integers(0, len(first), n_artists)])
        + " "
        + words[rng.integers(0, len(words), n_artists)]
        + " "
        + pd.Series(ids).astype(str)
    )
    quoted = rng.random(n_artists) < 0.003
    names[quoted] = '"' + names[quoted] + '" band'
    apostrophe = rng.random(n_artists) < 0.01
    names[apostrophe] = names[apostrophe] + "'s"
    hexes = pd.Series(_hex_ids(rng, n_artists, 16))
    mbid = (
        hexes.str[:8] + "-" + hexes.str[8:12] + "-" + hexes.str[12:16] + "-" + hexes.str[16:20] + "-" + hexes.str[20:]
    )
    mbid[rng.random(n_artists) < 0.01] = ""
    return pd.DataFrame({"artist_mbid": mbid, "artist_name": names})


def _generate_profiles(rng, n_users: int, reference: ProfileReference) -> pd.DataFrame:
    users = _hex_ids(rng, n_users, 20)
    gender = rng.choice(reference.gender.index.to_numpy(), n_users, p=reference.gender.to_numpy())
    age = rng.choice(reference.ages, n_users) + rng.integers(-2, 3, n_users)
    age_text = pd.Series(np.clip(age, 12, 90).astype(int).astype(str))
    age_text[rng.random(n_users) < reference.age_missing] = ""
    # absurd ages at about the real rate (a few per thousand): -1337, 0, 2000, 101-115
    absurd = rng.random(n_users) < 0.003
    age_text[absurd] = rng.choice(["-1337", "0", "2000", "109", "115", "101"], int(absurd.sum()))
    country = rng.choice(reference.country.index.to_numpy(), n_users, p=reference.country.to_numpy())
    first, last = reference.signup_range
    days = rng.integers(0, max((last - first).days, 1) + 1, n_users)
    signup = pd.DatetimeIndex(first + pd.to_timedelta(days, unit="D"))
    signup_text = (
        pd.Series(_MONTHS[signup.month - 1])
        + " "
        + pd.Series(signup.day.astype(str))
        + ", "
        + pd.Series(signup.year.astype(str))
    )
    return pd.DataFrame({"user": users, "gender": gender, "age": age_text, "country": country, "signup": signup_text})


def _taste_logits(rng, profiles: pd.DataFrame, n_genres: int) -> np.ndarray:
    """(n_users, n_genres) genre preference logits tied to country and 5-year age band (a random effect each)."""
    countries, country_code = np.unique(profiles["country"].to_numpy(), return_inverse=True)
    age = pd.to_numeric(profiles["age"], errors="coerce").to_numpy()
    band = np.where((age >= 10) & (age <= 80), (np.nan_to_num(age, nan=0) // 5).astype(int), 0)
    country_logits = rng.normal(0, 2.0, (len(countries), n_genres))
    band_logits = rng.normal(0, 1.5, (20, n_genres))
    return (country_logits[country_code] + band_logits[np.clip(band, 0, 19)]).astype(np.float32)


def _zipf_cdf(n: int, offset: float, exponent: float = 1.1) -> np.ndarray:
    """Cumulative Zipf-Mandelbrot weights 1 / (rank + offset) ** exponent: a flat head, then a heavy tail."""
    return np.cumsum(1.0 / (np.arange(1, n + 1) + offset) ** exponent)


def _sample_zipf(rng, weights_cdf: np.ndarray, n: int) -> np.ndarray:
    return np.minimum(np.searchsorted(weights_cdf, rng.random(n) * weights_cdf[-1]), len(weights_cdf) - 1)


NICHE_ARTISTS = 40  # artists per niche on average: the number of niches grows with the catalogue
MAX_NICHES_PER_USER = 5


@dataclass
class TasteModel:
    """Latent structure behind the generated plays (not written to the files; for tests and diagnostics).

    ``artist_genre`` (n_artists,); ``niche_genre`` (n_niches,); ``artist_niche`` (n_artists,) the niche that
    owns the artist; ``user_niches`` (n_users, MAX_NICHES_PER_USER) niche ids, -1 padded; ``user_weights`` the
    same shape, each row's share of niche-driven draws (sums to 1); ``primary_niche``/``primary_genre``
    (n_users,) the niche with the largest weight and its genre.
    """

    artist_genre: np.ndarray
    niche_genre: np.ndarray
    artist_niche: np.ndarray
    user_niches: np.ndarray
    user_weights: np.ndarray

    @property
    def primary_niche(self) -> np.ndarray:
        return self.user_niches[np.arange(len(self.user_niches)), self.user_weights.argmax(1)]

    @property
    def primary_genre(self) -> np.ndarray:
        return self.niche_genre[self.primary_niche]


def _taste_model(rng, profiles: pd.DataFrame, n_artists: int, n_genres: int) -> TasteModel:
    """Genres (fixed number, tied to country and age) split into niches that own disjoint sets of artists; each
    user follows 1-5 niches (1 + Poisson(1.2), capped), each niche's genre drawn from the user's own genre
    preferences, the niche within the genre by a power law (some niches are big), weights Dirichlet(1)."""
    n_users = len(profiles)
    artist_genre = rng.integers(0, n_genres, n_artists)
    n_niches = max(2 * n_genres, n_artists // NICHE_ARTISTS)
    niche_genre = np.arange(n_niches) % n_genres
    # a niche owns a random share of its genre's artists (genre members dealt out round-robin in random order)
    artist_niche = np.empty(n_artists, np.int64)
    for g in range(n_genres):
        members = rng.permutation(np.flatnonzero(artist_genre == g))
        niches = np.flatnonzero(niche_genre == g)
        artist_niche[members] = niches[np.arange(len(members)) % len(niches)]
    logits = _taste_logits(rng, profiles, n_genres)
    n_follow = 1 + np.minimum(rng.poisson(1.2, n_users), MAX_NICHES_PER_USER - 1)
    user_niches = np.full((n_users, MAX_NICHES_PER_USER), -1, np.int64)
    per_genre = np.bincount(niche_genre, minlength=n_genres)
    for slot in range(MAX_NICHES_PER_USER):
        active = np.flatnonzero(n_follow > slot)
        genre = np.argmax(logits[active] + rng.gumbel(size=(len(active), n_genres)), axis=1)
        # niche rank within its genre: density ~ rank ** -0.5 (a few big niches); niche id = genre + n_genres * rank
        rank = np.minimum((per_genre[genre] * rng.random(len(active)) ** 2).astype(np.int64), per_genre[genre] - 1)
        user_niches[active, slot] = genre + n_genres * rank
    weights = (rng.gamma(1.0, size=user_niches.shape) * (user_niches >= 0)).astype(np.float32)
    return TasteModel(artist_genre, niche_genre, artist_niche, user_niches, weights / weights.sum(1, keepdims=True))


def _generate_plays(rng, profiles: pd.DataFrame, n_artists: int, artists_per_user: int, n_genres: int):
    """(user index, artist index, plays, taste model): ~artists_per_user distinct artists per user, sorted by plays."""
    n_users = len(profiles)
    taste = _taste_model(rng, profiles, n_artists, n_genres)
    # most users have a full top-50; the rest fewer (the real file lists each user's top artists)
    n_items = np.where(rng.random(n_users) < 0.9, artists_per_user, rng.integers(1, artists_per_user, n_users))
    n_draw = (n_items * 1.35).astype(np.int64) + 2  # oversample, duplicates are removed below
    user = np.repeat(np.arange(n_users), n_draw)
    # every draw first picks one of the user's niches by weight, then a source: 30% the global chart (offset 10:
    # the top artist reaches ~21% of users at full size, as Radiohead reaches about a fifth in the real file; the
    # earlier offset 50 gave ~8%), 30% the niche's genre (its own Zipf-popular ordering of the genre's artists:
    # the genre's hits), 40% the niche's own artists (a power law over ~40 artists that nobody outside the niche
    # draws except through the genre or global charts).
    slot_cdf = np.cumsum(taste.user_weights, axis=1)
    slot = (rng.random(len(user))[:, None] > slot_cdf[user]).sum(1)
    niche = taste.user_niches[user, np.minimum(slot, MAX_NICHES_PER_USER - 1)]
    genre = taste.niche_genre[niche]
    artist = _sample_zipf(rng, _zipf_cdf(n_artists, 10.0), len(user))
    source = rng.choice(3, len(user), p=[0.3, 0.3, 0.4])
    for g in range(n_genres):
        members = rng.permutation(np.flatnonzero(taste.artist_genre == g))
        take = np.flatnonzero((source == 1) & (genre == g))
        if len(members):
            artist[take] = members[_sample_zipf(rng, _zipf_cdf(len(members), 2.0, 1.1), len(take))]
    # niche artists: a random order inside each niche, popularity falling as a power of the rank
    order = np.lexsort((rng.random(n_artists), taste.artist_niche))
    start = np.searchsorted(taste.artist_niche[order], np.arange(len(taste.niche_genre) + 1))
    take = np.flatnonzero((source == 2) & (start[niche + 1] > start[niche]))
    size = start[niche[take] + 1] - start[niche[take]]
    artist[take] = order[
        start[niche[take]] + np.minimum((size * rng.random(len(take)) ** 2).astype(np.int64), size - 1)
    ]
    key = np.unique(user.astype(np.int64) * n_artists + artist)
    key = key[np.lexsort((rng.random(len(key)), key // n_artists))]  # random order within each user, so the
    user, artist = key // n_artists, key % n_artists  # cut below keeps a random subset
    rank = np.arange(len(key)) - np.searchsorted(user, user)
    keep = rank < n_items[user]
    user, artist = user[keep], artist[keep]
    # favourites are mostly in-taste: artists of the user's niches get ~3x the plays
    in_taste = (taste.user_niches[user] == taste.artist_niche[artist][:, None]).any(1)
    plays = np.ceil(rng.lognormal(3.4, 1.2, len(user)) * np.where(in_taste, 3.0, 1.0)).astype(np.int64)
    order = np.lexsort((-plays, user))
    return user[order], artist[order], plays[order], taste


def _write_tsv(path, columns) -> None:
    """Write string columns tab-joined, one line each, no quoting, via Arrow (fast at 17.5M rows)."""
    arrays = [pa.array(c, pa.large_string()) for c in columns]  # large: the full file passes 2 GB
    newline, tab, empty = (pa.scalar(x, pa.large_string()) for x in ("\n", "\t", ""))
    arrays[-1] = pc.binary_join_element_wise(arrays[-1], newline, empty)
    lines = pc.binary_join_element_wise(*arrays, tab)
    with open(path, "wb") as out:
        for chunk in lines.chunks if isinstance(lines, pa.ChunkedArray) else [lines]:
            offsets = np.frombuffer(chunk.buffers()[1], dtype=np.int64)[chunk.offset : chunk.offset + len(chunk) + 1]
            start, end = int(offsets[0]), int(offsets[-1])
            out.write(memoryview(chunk.buffers()[2])[start:end])


@dataclass
class GeneratedTables:
    """In-memory output of :func:`generate_tables`: ``profiles`` (DataFrame of the five profile columns as text),
    ``catalogue`` (DataFrame ``artist_mbid``, ``artist_name``), play rows as arrays ``user`` (row of profiles),
    ``artist`` (row of catalogue), ``plays`` (int64) before the file quirks, and the latent :class:`TasteModel`."""

    profiles: pd.DataFrame
    catalogue: pd.DataFrame
    user: np.ndarray
    artist: np.ndarray
    plays: np.ndarray
    taste: TasteModel


def default_artists(n_users: int) -> int:
    """Catalogue size for ``n_users``: 160,000 * (n_users / 359,347) ** 0.7, at least 2,000."""
    return max(2000, int(160_000 * (n_users / 359_347) ** 0.7))


def generate_tables(
    n_users: int,
    *,
    random_state: int = 0,
    reference: ProfileReference | None = None,
    n_artists: int | None = None,
    artists_per_user: int = 50,
    n_genres: int = 40,
) -> GeneratedTables:
    """Profiles, catalogue and play rows of :func:`generate_lastfm` in memory, with the latent taste model.

    Raises ValueError for n_users < 1."""
    if n_users < 1:
        raise ValueError(f"n_users must be at least 1, got {n_users}")
    rng = np.random.default_rng(random_state)
    reference = reference or DEFAULT_REFERENCE
    n_artists = n_artists or default_artists(n_users)
    profiles = _generate_profiles(rng, n_users, reference)
    catalogue = _artist_catalogue(rng, n_artists)
    user, artist, plays, taste = _generate_plays(rng, profiles, n_artists, artists_per_user, n_genres)
    return GeneratedTables(profiles, catalogue, user, artist, plays, taste)


def generate_lastfm(
    out_dir,
    n_users: int,
    *,
    random_state: int = 0,
    reference: ProfileReference | None = None,
    n_artists: int | None = None,
    artists_per_user: int = 50,
    n_genres: int = 40,
) -> dict:
    """Write ``usersha1-profile.tsv`` and ``usersha1-artmbid-artname-plays.tsv`` for ``n_users`` into ``out_dir``.

    Exactly the real format (see module docstring). The taste model (see the README's Generator section):
    ``n_genres`` genres whose preference is tied to country and 5-year age band; each genre is split into niches
    that own ~40 artists each, so the number of niches grows with the catalogue; every user follows 1-5 niches
    (mean 2.2) with random weights. A user's ~``artists_per_user`` artists (90% have the full number) come 30%
    from the global chart (Zipf-Mandelbrot 1 / (rank + 10) ** 1.1 over the catalogue), 30% from the genre of one
    of their niches (Zipf over the genre's artists) and 40% from the niche's own artists. Play counts are
    log-normal (heavy tail), 3x for the user's niche artists. The real quirks: ~1% of artists without mbid,
    quotes and non-ASCII in names, ~0.3% absurd ages, missing ages/genders at the reference rates, ~0.2%
    profile-only users (no plays: cold start), ~0.05% plays-only users, a few duplicate (user, artist) rows and
    rows with 0 plays. ``n_artists`` defaults to :func:`default_artists`. Returns counts ``{"users",
    "plays_rows", "artists"}``. Raises ValueError for n_users < 1.
    """
    tables = generate_tables(
        n_users,
        random_state=random_state,
        reference=reference,
        n_artists=n_artists,
        artists_per_user=artists_per_user,
        n_genres=n_genres,
    )
    rng = np.random.default_rng([random_state, 1])  # the quirks: their own stream
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    profiles, catalogue, user, artist, plays = (
        tables.profiles,
        tables.catalogue,
        tables.user,
        tables.artist,
        tables.plays,
    )
    has_plays = rng.random(n_users) >= 0.002
    keep = has_plays[user]
    user, artist, plays = user[keep], artist[keep], plays[keep]
    plays[rng.random(len(plays)) < 0.0001] = 0
    # a few duplicate (user, artist) rows, as in the real file
    dup = np.flatnonzero(rng.random(len(user)) < 0.0001)
    user, artist, plays = np.insert(user, dup, user[dup]), np.insert(artist, dup, artist[dup]), np.insert(plays, dup, 1)
    user_ids = profiles["user"].to_numpy()
    _write_tsv(
        out_dir / PLAYS_FILE,
        [
            user_ids[user],
            catalogue["artist_mbid"].to_numpy()[artist],
            catalogue["artist_name"].to_numpy()[artist],
            plays.astype(str),
        ],
    )
    profile_only_ok = rng.random(n_users) >= 0.0005  # plays-only users: left out of the profile file
    written = profiles[profile_only_ok | ~has_plays]
    _write_tsv(out_dir / PROFILES_FILE, [written[c].to_numpy() for c in PROFILE_COLUMNS])
    return {"users": n_users, "plays_rows": int(len(user)), "artists": len(catalogue)}
