"""Last.fm 360K files: loaders that account for every row (the generator of look-alike files is lastfm_generator).

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
