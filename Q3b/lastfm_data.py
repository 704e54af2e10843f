"""Last.fm 360K files: loaders that account for every row, and a generator writing look-alike files.

Dataset: Last.fm Dataset - 360K users (Celma, "Music Recommendation and Discovery in the Long Tail", 2010;
Zenodo 10.5281/zenodo.6090214). Two tab-separated UTF-8 files without header lines:

- ``usersha1-artmbid-artname-plays.tsv``: user sha1, artist MusicBrainz id (may be empty), artist name, plays.
- ``usersha1-profile.tsv``: user sha1, gender (m/f/empty), age (may be empty or absurd), country, signup date
  such as ``Feb 1, 2007``.

The loaders read with quoting off (artist names contain ``"``), so one line is always one row; a line with the
wrong number of fields, a user field that is not a 40-hex sha1, or a plays field that is not an integer is counted
in the returned :class:`LoadReport` by reason and left out, never dropped silently.
"""
from __future__ import annotations

import codecs
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

PLAYS_FILE = "usersha1-artmbid-artname-plays.tsv"
PROFILES_FILE = "usersha1-profile.tsv"
PLAYS_COLUMNS = ("user", "artist_mbid", "artist_name", "plays")
PROFILE_COLUMNS = ("user", "gender", "age", "country", "signup")
SIGNUP_FORMAT = "%b %d, %Y"
AGE_RANGE = (1, 100)
NAME_KEY_PREFIX = "name:"
_SHA1_PATTERN = r"^[0-9a-f]{40}$"
_MONTHS = np.array(["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"])


@dataclass
class LoadReport:
    """What a loader did with each line of one file.

    ``malformed`` maps a reason to the number of rows left out for it; ``examples`` keeps the first line
    file line numbers (1-based; an empty line is a row too, left out as its user is no sha1) per reason; ``notes`` counts rows that were kept but
    changed (missing mbid keyed by name, ages set missing, duplicates summed, ...).
    """

    path: str
    rows_read: int = 0
    rows_kept: int = 0
    malformed: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list] = field(default_factory=dict)
    notes: dict[str, int] = field(default_factory=dict)
    # bookkeeping to turn a row of the filtered table back into its file line (see line_numbers)
    skipped_lines: np.ndarray | None = field(default=None, repr=False, compare=False)
    dropped_rows: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64), repr=False, compare=False)

    def line_numbers(self, rows) -> list[int]:
        """1-based file lines of ``rows`` (0-based rows of the table after the drops so far); [] if unknown."""
        if self.skipped_lines is None:
            return []
        table_rows = _unskip(np.asarray(rows, np.int64), self.dropped_rows)
        return (_unskip(table_rows, self.skipped_lines) + 1).tolist()

    def add_malformed(self, reason: str, count: int, examples=()) -> None:
        if count:
            self.malformed[reason] = self.malformed.get(reason, 0) + int(count)
            self.examples.setdefault(reason, []).extend(list(examples)[: 5 - len(self.examples.get(reason, []))])

    def add_note(self, note: str, count: int) -> None:
        if count:
            self.notes[note] = self.notes.get(note, 0) + int(count)

    @property
    def n_malformed(self) -> int:
        return sum(self.malformed.values())

    def summary(self) -> str:
        """One human-readable paragraph: rows read, kept, left out by reason, and notes."""
        parts = [f"{self.path}: {self.rows_read:,} rows read, {self.rows_kept:,} kept"]
        for reason, count in self.malformed.items():
            lines = self.examples.get(reason) or []
            where = f" (e.g. line {', '.join(str(x) for x in lines[:3])})" if lines else ""
            parts.append(f"{count:,} left out: {reason}{where}")
        parts += [f"{count:,} {note}" for note, count in self.notes.items()]
        return "; ".join(parts)


def _read_tsv(path, columns, report: LoadReport) -> pa.Table:
    """Read a headerless TSV as all-string columns with quoting off; count rows with the wrong field count."""
    bad_lines = []

    def on_invalid(row):
        bad_lines.append(row.number)
        return "skip"

    decode_errors = []
    hook = sys.unraisablehook  # pyarrow decodes a bad row for the handler; undecodable bytes surface only here
    sys.unraisablehook = lambda unraisable: (decode_errors.append(unraisable.exc_value)
                                             if isinstance(unraisable.exc_value, UnicodeDecodeError) else hook(unraisable))
    parse_options = pacsv.ParseOptions(delimiter="\t", quote_char=False, ignore_empty_lines=False,
                                       invalid_row_handler=on_invalid)
    convert_options = pacsv.ConvertOptions(column_types={c: pa.string() for c in columns}, strings_can_be_null=False,
                                           quoted_strings_can_be_null=False)
    try:
        table = pacsv.read_csv(path, read_options=pacsv.ReadOptions(column_names=list(columns), block_size=64 << 20),
                               parse_options=parse_options, convert_options=convert_options)
        if None in bad_lines:  # the multi-threaded reader does not number lines: one streaming pass to number them
            bad_lines.clear()
            for _ in pacsv.open_csv(path, read_options=pacsv.ReadOptions(column_names=list(columns), use_threads=False,
                                                                         block_size=16 << 20),
                                    parse_options=parse_options, convert_options=convert_options):
                pass
    except pa.ArrowInvalid as exc:  # e.g. invalid UTF-8: a user mistake about the file, reported in one line
        line = first_non_utf8_line(path)
        if line is not None:
            raise ValueError(f"{path}: not UTF-8 text at line {line}; the Last.fm files are UTF-8") from None
        detail = str(exc).splitlines()[0].encode("ascii", "backslashreplace").decode("ascii")[:200]
        raise ValueError(f"{path}: cannot be read as tab-separated UTF-8 ({detail})") from None
    finally:
        sys.unraisablehook = hook
    if decode_errors:  # a skipped row was undecodable: the file is not UTF-8 text
        raise ValueError(f"{path}: not UTF-8 text at line {first_non_utf8_line(path)}; the Last.fm files are UTF-8")
    report.add_malformed(f"not {len(columns)} tab-separated fields", len(bad_lines),
                         sorted(x for x in bad_lines if x is not None)[:5])
    if None not in bad_lines:  # 0-based file lines the reader skipped: maps table rows back to lines
        report.skipped_lines = np.sort(np.array(bad_lines, np.int64)) - 1
    report.rows_read = table.num_rows + len(bad_lines)
    # The reader already splits lines at \r; a stray one can only survive at the end of the last field (CRLF
    # mixes). Trimming only that column avoids a second copy of the whole table (GBs at full size).
    last = columns[-1]
    return table.set_column(len(columns) - 1, last, pc.utf8_trim(table[last], "\r"))


def first_non_utf8_line(path, chunk_size: int = 16 << 20) -> int | None:
    """1-based number of the first line of ``path`` that is not valid UTF-8, or None if the whole file is."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    newlines = 0
    with open(path, "rb") as handle:
        while True:
            chunk = handle.read(chunk_size)
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as err:
                # err.start indexes the pending bytes (at most 3 carried over) plus this chunk
                offset = max(0, err.start - (len(err.object) - len(chunk)))
                return newlines + chunk[:offset].count(b"\n") + 1
            if not chunk:
                return None
            newlines += chunk.count(b"\n")


def _unskip(index: np.ndarray, removed: np.ndarray) -> np.ndarray:
    """Positions in the full sequence of the ``index``-th kept elements, ``removed`` (sorted) having been removed."""
    position = index.copy()
    while True:
        moved = index + np.searchsorted(removed, position, side="right")
        if np.array_equal(moved, position):
            return position
        position = moved


def _drop_rows(table: pa.Table, bad, reason: str, report: LoadReport) -> pa.Table:
    bad = pc.fill_null(bad, True)
    count = pc.sum(bad).as_py() or 0
    if count:
        _record_dropped(report, reason, count, pc.indices_nonzero(bad).to_numpy())
    return table.filter(pc.invert(bad)) if count else table


def _record_dropped(report: LoadReport, reason: str, count: int, rows: np.ndarray) -> None:
    """Count ``rows`` (0-based rows of the current table) as left out for ``reason``, with their first lines."""
    report.add_malformed(reason, count, report.line_numbers(rows[:5]))
    report.dropped_rows = np.union1d(report.dropped_rows, _unskip(rows.astype(np.int64), report.dropped_rows))


def normalise_artist_name(names):
    """Key for rows without an mbid: lower-cased name with surrounding and repeated whitespace removed.

    ``names``: pyarrow string array or sequence of str. Returns a pyarrow string array.
    """
    names = pa.array(names, pa.string()) if not isinstance(names, (pa.Array, pa.ChunkedArray)) else names
    return pc.replace_substring_regex(pc.utf8_trim_whitespace(pc.utf8_lower(names)), r"\s+", " ")


def _categorical(array) -> pd.Categorical:
    encoded = pc.dictionary_encode(array).combine_chunks() if isinstance(array, pa.ChunkedArray) else pc.dictionary_encode(array)
    return pd.Categorical.from_codes(encoded.indices.to_numpy().astype(np.int32), encoded.dictionary.to_pylist())


def load_plays(path) -> tuple[pd.DataFrame, LoadReport]:
    """Load ``usersha1-artmbid-artname-plays.tsv`` into one row per (user, artist).

    Returns ``(plays, report)``. ``plays`` has columns ``user`` (categorical sha1), ``artist`` (categorical artist
    key: the mbid, or ``name:<normalised name>`` when the mbid is empty), ``artist_mbid`` and ``artist_name``
    (categorical; the first spelling seen for that key), ``plays`` (int32). Duplicate (user, artist) rows are
    summed. Rows left out (counted in ``report.malformed``): wrong field count, user not a 40-hex sha1, plays
    not a non-negative integer, mbid and name both empty. Raises FileNotFoundError, ValueError (unreadable file).
    """
    report = LoadReport(str(path))
    table = _read_tsv(path, PLAYS_COLUMNS, report)
    table = _drop_rows(table, pc.invert(pc.match_substring_regex(table["user"], _SHA1_PATTERN)),
                       "user is not a 40-hex sha1", report)
    table = _drop_rows(table, pc.invert(pc.match_substring_regex(table["plays"], r"^[0-9]{1,9}$")),
                       "plays is not a non-negative integer", report)
    no_mbid = pc.equal(table["artist_mbid"], "")
    table = _drop_rows(table, pc.and_(no_mbid, pc.equal(pc.utf8_trim_whitespace(table["artist_name"]), "")),
                       "artist mbid and name both empty", report)
    no_mbid = pc.equal(table["artist_mbid"], "")
    report.add_note("rows without artist mbid keyed by normalised artist name", pc.sum(no_mbid).as_py() or 0)
    report.add_note("rows with an mbid but no artist name", pc.sum(pc.equal(table["artist_name"], "")).as_py() or 0)
    report.add_note("rows with 0 plays (kept; they carry no weight)", pc.sum(pc.equal(table["plays"], "0")).as_py() or 0)
    key = pc.if_else(no_mbid, pc.binary_join_element_wise(NAME_KEY_PREFIX, normalise_artist_name(table["artist_name"]), ""),
                     table["artist_mbid"])
    user = _categorical(table["user"])
    artist = _categorical(key)
    frame = pd.DataFrame({"u": user.codes, "a": artist.codes,
                          "plays": pc.cast(table["plays"], pa.int64()).to_numpy()})
    # first spelling of mbid/name per artist key
    _, first_row = np.unique(artist.codes, return_index=True)
    mbid = _categorical(table["artist_mbid"].take(pa.array(first_row)))
    name = _categorical(table["artist_name"].take(pa.array(first_row)))
    del table, key, no_mbid  # the string table is GBs at full size: free it before the group-by
    summed = frame.groupby(["u", "a"], sort=False, observed=True)["plays"].sum()
    report.add_note("duplicate (user, artist) rows summed", len(frame) - len(summed))
    u_codes = summed.index.get_level_values(0).to_numpy(np.int32)
    a_codes = summed.index.get_level_values(1).to_numpy(np.int32)
    plays = pd.DataFrame({
        "user": pd.Categorical.from_codes(u_codes, user.categories),
        "artist": pd.Categorical.from_codes(a_codes, artist.categories),
        "artist_mbid": pd.Categorical.from_codes(mbid.codes[a_codes], mbid.categories),
        "artist_name": pd.Categorical.from_codes(name.codes[a_codes], name.categories),
        "plays": np.minimum(summed.to_numpy(np.int64), np.iinfo(np.int32).max).astype(np.int32),
    })
    report.rows_kept = len(frame)
    return plays, report


def load_profiles(path) -> tuple[pd.DataFrame, LoadReport]:
    """Load ``usersha1-profile.tsv``: one row per user.

    Returns ``(profiles, report)`` with columns ``user`` (str sha1), ``gender`` (categorical m/f, NaN when
    missing or another value), ``age`` (float32; NaN when missing, not an integer or outside 1-100),
    ``country`` (categorical, NaN when empty), ``signup`` (datetime64; NaT when not like ``Feb 1, 2007``).
    Rows left out (counted): wrong field count, user not a 40-hex sha1, a repeated user (first row kept).
    Raises FileNotFoundError, ValueError (unreadable file).
    """
    report = LoadReport(str(path))
    table = _read_tsv(path, PROFILE_COLUMNS, report)
    table = _drop_rows(table, pc.invert(pc.match_substring_regex(table["user"], _SHA1_PATTERN)),
                       "user is not a 40-hex sha1", report)
    frame = table.to_pandas()
    repeated = frame["user"].duplicated()
    if repeated.any():
        _record_dropped(report, "repeated user (first row kept)", int(repeated.sum()), np.flatnonzero(repeated))
    frame = frame[~repeated].reset_index(drop=True)
    gender = frame["gender"].where(frame["gender"].isin(["m", "f"]))
    report.add_note("genders missing", int((frame["gender"] == "").sum()))
    report.add_note("genders other than m/f set missing", int((~frame["gender"].isin(["m", "f", ""])).sum()))
    age = pd.to_numeric(frame["age"].where(frame["age"] != ""), errors="coerce")
    report.add_note("ages missing", int((frame["age"] == "").sum()))
    out_of_range = age.notna() & ~age.between(*AGE_RANGE)
    report.add_note(f"ages outside {AGE_RANGE[0]}-{AGE_RANGE[1]} or not numbers set missing",
                    int(out_of_range.sum() + (age.isna() & (frame["age"] != "")).sum()))
    signup = pd.to_datetime(frame["signup"], format=SIGNUP_FORMAT, errors="coerce")
    report.add_note("signup dates not like 'Feb 1, 2007' set missing", int(signup.isna().sum()))
    country = frame["country"].where(frame["country"] != "")
    report.add_note("countries missing", int(country.isna().sum()))
    profiles = pd.DataFrame({
        "user": frame["user"].astype(str),
        "gender": pd.Categorical(gender, categories=["m", "f"]),
        "age": age.where(~out_of_range).astype(np.float32),
        "country": pd.Categorical(country),
        "signup": signup,
    })
    report.rows_kept = len(profiles)
    return profiles, report


def align_users(plays: pd.DataFrame, profiles: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """Profiles for every user in either file: plays-only users get a row with missing profile fields.

    Returns ``(profiles_all, counts)``; ``counts`` has ``users_without_plays`` (profile-only users: the cold
    start) and ``users_without_profile`` (plays-only users, appended at the end in sorted order).
    """
    played = pd.Index(plays["user"].cat.categories[np.unique(plays["user"].cat.codes)])
    missing = played.difference(pd.Index(profiles["user"]))
    counts = {"users_without_plays": int((~profiles["user"].isin(played)).sum()),
              "users_without_profile": len(missing)}
    if len(missing):
        extra = pd.DataFrame({"user": missing.astype(str)})
        profiles = pd.concat([profiles, extra], ignore_index=True)
        profiles["gender"] = pd.Categorical(profiles["gender"], categories=["m", "f"])
        profiles["country"] = profiles["country"].astype("category")
        profiles["age"] = profiles["age"].astype(np.float32)
    return profiles, counts


# ----------------------------------------------------------------------------------------------- generator

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
    country=pd.Series({"United States": 0.2, "Germany": 0.12, "United Kingdom": 0.1, "Poland": 0.08, "Sweden": 0.08,
                       "Brazil": 0.08, "Russian Federation": 0.08, "Finland": 0.06, "Spain": 0.06, "Japan": 0.05,
                       "Korea, Republic of": 0.04, "Mexico": 0.05}),
    signup_range=(pd.Timestamp("2003-01-01"), pd.Timestamp("2009-11-01")),
)


def profile_reference(path=None) -> ProfileReference:
    """Distributions of gender, age, country and signup from a real profile file, or built-in defaults.

    ``path``: a ``usersha1-profile.tsv``-format file (e.g. the real sample) or None for :data:`DEFAULT_REFERENCE`.
    """
    if path is None or not Path(path).exists():
        return DEFAULT_REFERENCE
    profiles, _ = load_profiles(path)
    gender = profiles["gender"].astype(object).fillna("").value_counts(normalize=True)
    return ProfileReference(
        gender=gender, ages=profiles["age"].dropna().to_numpy(), age_missing=float(profiles["age"].isna().mean()),
        country=profiles["country"].value_counts(normalize=True).loc[lambda s: s > 0],
        signup_range=(profiles["signup"].min(), profiles["signup"].max()),
    )


def _hex_ids(rng, n: int, n_bytes: int) -> np.ndarray:
    raw = rng.bytes(n * n_bytes).hex()
    width = 2 * n_bytes
    return np.array([raw[i * width:(i + 1) * width] for i in range(n)], dtype=object)


def _artist_catalogue(rng, n_artists: int) -> pd.DataFrame:
    """Artist mbids (UUID-shaped) and names with the real quirks: ~1% without mbid, quotes, non-ASCII."""
    first = np.array(["the", "los", "die", "les", "dj", "lil", "mc", "sir", "dead", "black", "silver", "royal"])
    words = np.array(["wolves", "echo", "machine", "ärzte", "sigur", "kings", "rain", "velvet", "orchestra", "ghost",
                      "smiths", "strokes", "björk", "noir", "takeshi", "cowboy", "disco", "radio", "mountain", "jazz",
                      "crew", "sound", "mötley", "club", "river", "stars", "fire", "paris", "tokyo", "ocean"])
    ids = np.arange(n_artists)
    names = pd.Series(first[rng.integers(0, len(first), n_artists)]) + " " + words[rng.integers(0, len(words), n_artists)] \
        + " " + pd.Series(ids).astype(str)
    quoted = rng.random(n_artists) < 0.003
    names[quoted] = '"' + names[quoted] + '" band'
    apostrophe = rng.random(n_artists) < 0.01
    names[apostrophe] = names[apostrophe] + "'s"
    hexes = pd.Series(_hex_ids(rng, n_artists, 16))
    mbid = hexes.str[:8] + "-" + hexes.str[8:12] + "-" + hexes.str[12:16] + "-" + hexes.str[16:20] + "-" + hexes.str[20:]
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
    signup_text = pd.Series(_MONTHS[signup.month - 1]) + " " + pd.Series(signup.day.astype(str)) + ", " \
        + pd.Series(signup.year.astype(str))
    return pd.DataFrame({"user": users, "gender": gender, "age": age_text, "country": country, "signup": signup_text})


def _taste_clusters(rng, profiles: pd.DataFrame, n_clusters: int) -> np.ndarray:
    """Cluster per user drawn from logits tied to country and 5-year age band (Gumbel-max sampling)."""
    countries, country_code = np.unique(profiles["country"].to_numpy(), return_inverse=True)
    age = pd.to_numeric(profiles["age"], errors="coerce").to_numpy()
    band = np.where((age >= 10) & (age <= 80), (np.nan_to_num(age, nan=0) // 5).astype(int), 0)
    country_logits = rng.normal(0, 2.0, (len(countries), n_clusters))
    band_logits = rng.normal(0, 1.5, (20, n_clusters))
    logits = country_logits[country_code] + band_logits[np.clip(band, 0, 19)]
    return np.argmax(logits + rng.gumbel(size=logits.shape), axis=1)


def _zipf_cdf(n: int, offset: float, exponent: float = 1.1) -> np.ndarray:
    """Cumulative Zipf-Mandelbrot weights 1 / (rank + offset) ** exponent: a flat head, then a heavy tail."""
    return np.cumsum(1.0 / (np.arange(1, n + 1) + offset) ** exponent)


def _sample_zipf(rng, weights_cdf: np.ndarray, n: int) -> np.ndarray:
    return np.minimum(np.searchsorted(weights_cdf, rng.random(n) * weights_cdf[-1]), len(weights_cdf) - 1)


def _generate_plays(rng, profiles: pd.DataFrame, n_artists: int, artists_per_user: int, n_clusters: int):
    """(user index, artist index, plays) arrays: ~artists_per_user distinct artists per user, sorted by plays."""
    n_users = len(profiles)
    cluster = _taste_clusters(rng, profiles, n_clusters)
    # most users have a full top-50; the rest fewer (the real file lists each user's top artists)
    n_items = np.where(rng.random(n_users) < 0.9, artists_per_user, rng.integers(1, artists_per_user, n_users))
    n_draw = (n_items * 1.35).astype(np.int64) + 2  # oversample, duplicates are removed below
    user = np.repeat(np.arange(n_users), n_draw)
    # three sources of draws: 30% the global chart (offset 50: the top artist reaches ~20% of users, as
    # Radiohead does in the real file), 30% the user's taste cluster (a genre: its own Zipf-popular slice of the
    # catalogue), 40% the user's scene (~150 users of the same cluster sharing 80 artists of its genre). Scenes
    # are what neighbours can find and charts cannot.
    artist = _sample_zipf(rng, _zipf_cdf(n_artists, 50.0), len(user))
    source = rng.choice(3, len(user), p=[0.3, 0.3, 0.4])
    genre_of = rng.integers(0, n_clusters, n_artists)
    n_scenes = max(n_clusters, n_users // 150)
    per_cluster = (n_scenes - np.arange(n_clusters) + n_clusters - 1) // n_clusters
    scene = cluster + n_clusters * rng.integers(0, per_cluster[cluster])  # scene s belongs to cluster s % K
    scene_artists = np.zeros((n_scenes, 80), np.int64)
    user_cluster = cluster[user]
    for c in range(n_clusters):
        members = rng.permutation(np.flatnonzero(genre_of == c))
        if not len(members):
            members = np.arange(n_artists)
        genre_cdf = _zipf_cdf(len(members), 2.0, 1.1)
        take = (source == 1) & (user_cluster == c)
        artist[take] = members[_sample_zipf(rng, genre_cdf, int(take.sum()))]
        scenes = np.arange(c, n_scenes, n_clusters)
        scene_artists[scenes] = members[_sample_zipf(rng, genre_cdf, len(scenes) * 80)].reshape(len(scenes), 80)
    take = source == 2
    artist[take] = scene_artists[scene[user[take]], _sample_zipf(rng, _zipf_cdf(80, 2.0, 0.8), int(take.sum()))]
    key = np.unique(user.astype(np.int64) * n_artists + artist)
    key = key[np.lexsort((rng.random(len(key)), key // n_artists))]  # random order within each user, so the
    user, artist = key // n_artists, key % n_artists                 # cut below keeps a random subset
    rank = np.arange(len(key)) - np.searchsorted(user, user)
    keep = rank < n_items[user]
    user, artist = user[keep], artist[keep]
    # favourites are mostly in-taste: artists of the user's own cluster get ~3x the plays
    in_taste = genre_of[artist] == cluster[user]
    plays = np.ceil(rng.lognormal(3.4, 1.2, len(user)) * np.where(in_taste, 3.0, 1.0)).astype(np.int64)
    order = np.lexsort((-plays, user))
    return user[order], artist[order], plays[order]


def _write_tsv(path, columns) -> None:
    """Write string columns tab-joined, one line each, no quoting, via Arrow (fast at 17.5M rows)."""
    arrays = [pa.array(c, pa.large_string()) for c in columns]  # large: the full file passes 2 GB
    newline, tab, empty = (pa.scalar(x, pa.large_string()) for x in ("\n", "\t", ""))
    arrays[-1] = pc.binary_join_element_wise(arrays[-1], newline, empty)
    lines = pc.binary_join_element_wise(*arrays, tab)
    with open(path, "wb") as out:
        for chunk in (lines.chunks if isinstance(lines, pa.ChunkedArray) else [lines]):
            offsets = np.frombuffer(chunk.buffers()[1], dtype=np.int64)[chunk.offset:chunk.offset + len(chunk) + 1]
            start, end = int(offsets[0]), int(offsets[-1])
            out.write(memoryview(chunk.buffers()[2])[start:end])


def generate_lastfm(out_dir, n_users: int, *, random_state: int = 0, reference: ProfileReference | None = None,
                    n_artists: int | None = None, artists_per_user: int = 50, n_clusters: int = 40) -> dict:
    """Write ``usersha1-profile.tsv`` and ``usersha1-artmbid-artname-plays.tsv`` for ``n_users`` into ``out_dir``.

    Exactly the real format (see module docstring). Artist popularity is Zipf-Mandelbrot (1 / (rank + 50) ** 1.1
    over the catalogue), play counts log-normal (heavy tail), ~``artists_per_user`` artists per user (90% have the full
    number), taste clusters drawn from country and age band so neighbours carry signal, and the real quirks:
    ~1% of artists without mbid, quotes and non-ASCII in names, ~0.3% absurd ages, missing ages/genders at the
    reference rates, ~0.2% profile-only users (no plays: cold start), ~0.05% plays-only users, a few duplicate
    (user, artist) rows and rows with 0 plays. ``n_artists`` defaults to 160,000 * (n_users / 359,347) ** 0.7, at least 2,000.
    Returns counts ``{"users", "plays_rows", "artists"}``. Raises ValueError for n_users < 1.
    """
    if n_users < 1:
        raise ValueError(f"n_users must be at least 1, got {n_users}")
    rng = np.random.default_rng(random_state)
    reference = reference or DEFAULT_REFERENCE
    n_artists = n_artists or max(2000, int(160_000 * (n_users / 359_347) ** 0.7))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    profiles = _generate_profiles(rng, n_users, reference)
    catalogue = _artist_catalogue(rng, n_artists)
    user, artist, plays = _generate_plays(rng, profiles, n_artists, artists_per_user, n_clusters)
    has_plays = rng.random(n_users) >= 0.002
    keep = has_plays[user]
    user, artist, plays = user[keep], artist[keep], plays[keep]
    plays[rng.random(len(plays)) < 0.0001] = 0
    # a few duplicate (user, artist) rows, as in the real file
    dup = np.flatnonzero(rng.random(len(user)) < 0.0001)
    user, artist, plays = np.insert(user, dup, user[dup]), np.insert(artist, dup, artist[dup]), np.insert(plays, dup, 1)
    user_ids = profiles["user"].to_numpy()
    _write_tsv(out_dir / PLAYS_FILE, [user_ids[user], catalogue["artist_mbid"].to_numpy()[artist],
                                     catalogue["artist_name"].to_numpy()[artist], plays.astype(str)])
    profile_only_ok = rng.random(n_users) >= 0.0005  # plays-only users: left out of the profile file
    written = profiles[profile_only_ok | ~has_plays]
    _write_tsv(out_dir / PROFILES_FILE, [written[c].to_numpy() for c in PROFILE_COLUMNS])
    return {"users": n_users, "plays_rows": int(len(user)), "artists": n_artists}

