"""Last.fm 360K files: loaders that account for every row (the generator of look-alike files is lastfm_generator).

Dataset: Last.fm Dataset - 360K users (Celma, "Music Recommendation and Discovery in the Long Tail", 2010;
Zenodo 10.5281/zenodo.6090214). Two tab-separated UTF-8 files without header lines:

- ``usersha1-artmbid-artname-plays.tsv``: user sha1, artist MusicBrainz id (may be empty), artist name, plays.
- ``usersha1-profile.tsv``: user sha1, gender (m/f/empty), age (may be empty or absurd), country, signup date
  such as ``Feb 1, 2007``.

The loaders read with quoting off (artist names contain ``"``), so one line is always one row; a line with the
wrong number of fields, a user field that is not a 40-hex sha1, or a plays field that is not an integer is counted
in the returned :class:`LoadReport` by reason and left out, never dropped silently.

The real HetRec 2011 Last.fm 2K play counts (``user_artists.dat``, no profiles) load through :func:`load_hetrec`
into the same layout.
"""

from __future__ import annotations

import codecs
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
INT32_MAX = int(np.iinfo(np.int32).max)
READ_BLOCK_BYTES = 16 << 20  # per read block; measured: smaller blocks keep the per-block hash tables in cache


@dataclass
class LoadReport:
    """What a loader did with each line of one file.

    ``malformed`` maps a reason to the number of rows left out for it; ``examples`` keeps the first line
    file line numbers (1-based; an empty line is a row too, left out as its user is no sha1) per reason;
    ``notes`` counts rows that were kept but changed
    (missing mbid keyed by name, ages set missing, duplicates summed, ...).
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


def _read_tsv(
    path, columns, report: LoadReport, dictionary: bool = False, block_size: int = READ_BLOCK_BYTES
) -> pa.Table:
    """Read a headerless TSV with quoting off; count rows with the wrong field count.

    Columns are strings, or with ``dictionary`` dictionary-encoded strings (each read block has its own
    dictionary; the caller unifies them), so repeated values are stored once. Stray ``\\r`` at the end of the
    last field are trimmed only on string columns (the dictionary caller trims the dictionary values).
    """
    bad_lines = []

    def on_invalid(row):
        bad_lines.append(row.number)
        return "skip"

    # pyarrow decodes a skipped row's text for the handler; undecodable bytes there would only surface as an
    # "Exception ignored" message, so the file's UTF-8 is checked first (one C-speed pass).
    line = first_non_utf8_line(path)
    if line is not None:
        raise ValueError(f"{path}: not UTF-8 text at line {line}; the Last.fm files are UTF-8")
    parse_options = pacsv.ParseOptions(
        delimiter="\t", quote_char=False, ignore_empty_lines=False, invalid_row_handler=on_invalid
    )
    column_type = pa.dictionary(pa.int32(), pa.string()) if dictionary else pa.string()
    convert_options = pacsv.ConvertOptions(
        column_types={c: column_type for c in columns}, strings_can_be_null=False, quoted_strings_can_be_null=False
    )
    try:
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(column_names=list(columns), block_size=block_size),
            parse_options=parse_options,
            convert_options=convert_options,
        )
        if None in bad_lines:  # the multi-threaded reader does not number lines: one streaming pass to number them
            bad_lines.clear()
            for _ in pacsv.open_csv(
                path,
                read_options=pacsv.ReadOptions(column_names=list(columns), use_threads=False, block_size=block_size),
                parse_options=parse_options,
                convert_options=convert_options,
            ):
                pass
    except pa.ArrowInvalid as exc:  # a user mistake about the file, reported in one line
        detail = str(exc).splitlines()[0].encode("ascii", "backslashreplace").decode("ascii")[:200]
        raise ValueError(f"{path}: cannot be read as tab-separated UTF-8 ({detail})") from None
    report.add_malformed(
        f"not {len(columns)} tab-separated fields", len(bad_lines), sorted(x for x in bad_lines if x is not None)[:5]
    )
    if None not in bad_lines:  # 0-based file lines the reader skipped: maps table rows back to lines
        report.skipped_lines = np.sort(np.array(bad_lines, np.int64)) - 1
    report.rows_read = table.num_rows + len(bad_lines)
    if dictionary:
        return table
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


def _dictionary_columns(table: pa.Table) -> dict:
    """``{column: (codes, values)}`` of an all-dictionary table: int32 row codes into one string array per column.

    The reader gives every block its own dictionary; unifying them maps all blocks onto one.
    """
    table = table.unify_dictionaries()
    columns = {}
    for name in table.column_names:
        chunks = table[name].chunks
        if chunks:
            codes = np.concatenate([chunk.indices.to_numpy() for chunk in chunks]).astype(np.int32, copy=False)
            columns[name] = (codes, chunks[0].dictionary)
        else:
            columns[name] = (np.empty(0, np.int32), pa.array([], pa.string()))
    return columns


def _flag(values, kernel, *args) -> np.ndarray:
    """Boolean numpy mask over dictionary ``values`` from a pyarrow compute kernel."""
    return kernel(values, *args).to_numpy(zero_copy_only=False).astype(bool, copy=False)


def _rows_flagged(flags: np.ndarray, codes: np.ndarray) -> np.ndarray | None:
    """Rows whose dictionary value is flagged (bool per row), or None when no value is (the usual case)."""
    return flags[codes] if flags.any() else None


def _leave_out(report: LoadReport, dropped: np.ndarray, bad_rows: np.ndarray | None, reason: str) -> None:
    """Count ``bad_rows`` not yet ``dropped`` as left out for ``reason``; ``dropped`` is updated in place.

    Both are one bool per row of the table as read (``report.dropped_rows`` is still empty, so
    ``report.line_numbers`` maps these rows straight to file lines).
    """
    if bad_rows is None:
        return
    new = bad_rows & ~dropped
    count = int(new.sum())
    if count:
        report.add_malformed(reason, count, report.line_numbers(np.flatnonzero(new)[:5]))
        dropped |= new


def _relabel_by_first_row(codes: np.ndarray, n_values: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Renumber ``codes`` (ints < ``n_values``) 0.. in order of first appearance, unused values removed.

    Returns ``(new_codes int32, old_value of each new code, first row of each new code)``: the same numbering
    ``pyarrow.compute.dictionary_encode`` gives to the rows' strings, in O(rows).
    """
    rows = len(codes)
    first = np.full(n_values, rows, np.int64)
    np.minimum.at(first, codes, np.arange(rows))
    order = np.argsort(first, kind="stable")[: int((first < rows).sum())]
    new_of_old = np.full(n_values, -1, np.int32)
    new_of_old[order] = np.arange(len(order), dtype=np.int32)
    return new_of_old[codes], order, first[order]


def _sum_duplicates(user: np.ndarray, artist: np.ndarray, plays: np.ndarray, n_artists: int):
    """Sum the plays of repeated (user, artist) pairs into the pair's first row; drop the repeats.

    Returns ``(user, artist, plays, n_repeats)``; pairs keep the order of their first rows (what a pandas
    ``groupby(sort=False)`` gives), found with one stable sort of an int64 pair key.
    """
    if len(user) == 0:
        return user, artist, plays, 0
    key = user.astype(np.int64) * n_artists + artist
    order = np.argsort(key, kind="stable")  # stable: order[start] is the pair's first row
    key = key[order]
    repeat = np.empty(len(key), bool)
    repeat[0] = False
    np.equal(key[1:], key[:-1], out=repeat[1:])
    del key
    if not repeat.any():
        return user, artist, plays, 0
    starts = np.flatnonzero(~repeat)
    first_rows = order[starts]
    sums = np.add.reduceat(plays[order], starts, dtype=np.int64)
    del order
    keep = np.zeros(len(user), bool)
    keep[first_rows] = True
    summed = np.zeros(len(user), np.int64)
    summed[first_rows] = sums  # rows in file order: the kept rows take their pair's sum
    return user[keep], artist[keep], summed[keep], int(repeat.sum())


def _categories(values: pa.Array, codes: np.ndarray) -> pd.Categorical:
    """Categorical of ``values[codes]`` with only the values used, in order of first appearance."""
    codes, used, _ = _relabel_by_first_row(codes, len(values))
    return pd.Categorical.from_codes(codes, values.take(pa.array(used)).to_pylist())


def load_plays(path, *, block_size: int = READ_BLOCK_BYTES) -> tuple[pd.DataFrame, LoadReport]:
    """Load ``usersha1-artmbid-artname-plays.tsv`` into one row per (user, artist).

    Returns ``(plays, report)``. ``plays`` has columns ``user`` (categorical sha1), ``artist`` (categorical artist
    key: the mbid, or ``name:<normalised name>`` when the mbid is empty), ``artist_mbid`` and ``artist_name``
    (categorical; the first spelling seen for that key), ``plays`` (int32); categories are in order of first
    appearance and rows in order of each (user, artist) pair's first line. Duplicate (user, artist) rows are
    summed. Rows left out (counted in ``report.malformed``): wrong field count, user not a 40-hex sha1, plays
    not a non-negative integer, mbid and name both empty. ``block_size``: bytes per read block (tests use small
    blocks to cross block boundaries). Raises FileNotFoundError, ValueError (unreadable file).

    Every column is read dictionary-encoded, so the 17M-row real file never exists as Python or Arrow strings:
    checks, name normalisation and artist keys run on the distinct values (~360K users, ~300K artist spellings)
    and reach rows through int32 codes.
    """
    report = LoadReport(str(path))
    columns = _dictionary_columns(_read_tsv(path, PLAYS_COLUMNS, report, dictionary=True, block_size=block_size))
    pa.default_memory_pool().release_unused()  # the read's block buffers: give them back before the int arrays
    (user, users), (mbid, mbids), (name, names), (plays_code, plays_text) = (columns[c] for c in PLAYS_COLUMNS)
    del columns
    plays_text = pc.utf8_trim(plays_text, "\r")  # the last field may keep a stray \r (CRLF mixes)
    plays_ok = _flag(plays_text, pc.match_substring_regex, r"^[0-9]{1,9}$")
    no_mbid = _flag(mbids, pc.equal, "")
    keep = _kept_play_rows(report, user, users, plays_code, plays_ok, mbid, no_mbid, name, names)
    if keep is not None:
        user, mbid, name, plays_code = user[keep], mbid[keep], name[keep], plays_code[keep]
    del keep
    report.rows_kept = len(user)  # before duplicates are summed

    def rows_with(value_flags, codes):
        return int(np.bincount(codes, minlength=len(value_flags))[value_flags].sum())

    report.add_note("rows without artist mbid keyed by normalised artist name", rows_with(no_mbid, mbid))
    report.add_note("rows with an mbid but no artist name", rows_with(_flag(names, pc.equal, ""), name))
    report.add_note(
        "rows with 0 plays (kept; they carry no weight)", rows_with(_flag(plays_text, pc.equal, "0"), plays_code)
    )
    artist, keys, first_row = _artist_keys(mbid, mbids, no_mbid, name, names)
    first_mbid = _categories(mbids, mbid[first_row])  # first spelling of mbid/name per artist key
    first_name = _categories(names, name[first_row])
    del mbid, name, first_row
    user, user_values, _ = _relabel_by_first_row(user, len(users))
    counts = pc.cast(pc.if_else(plays_ok, plays_text, "0"), pa.int32()).to_numpy()[plays_code]  # <= 9 digits
    del plays_code
    user, artist, counts, repeats = _sum_duplicates(user, artist, counts, len(keys))
    report.add_note("duplicate (user, artist) rows summed", repeats)
    report.add_note(f"(user, artist) play sums above {INT32_MAX:,} set to it", int((counts > INT32_MAX).sum()))
    plays = pd.DataFrame(
        {
            "user": pd.Categorical.from_codes(user, users.take(pa.array(user_values)).to_pylist()),
            "artist": pd.Categorical.from_codes(artist, keys.to_pylist()),
            "artist_mbid": pd.Categorical.from_codes(first_mbid.codes[artist], first_mbid.categories),
            "artist_name": pd.Categorical.from_codes(first_name.codes[artist], first_name.categories),
            "plays": np.minimum(counts, INT32_MAX).astype(np.int32),
        }
    )
    return plays, report


def _kept_play_rows(report, user, users, plays_code, plays_ok, mbid, no_mbid, name, names) -> np.ndarray | None:
    """Count the malformed plays rows by reason (first reason wins, as listed in ``load_plays``).

    Arguments are row codes and per-value flags of the dictionary columns. Returns the bool mask of rows to
    keep, or None when all are kept; ``report.dropped_rows`` gets the rows left out.
    """
    dropped = np.zeros(len(user), bool)
    _leave_out(
        report,
        dropped,
        _rows_flagged(~_flag(users, pc.match_substring_regex, _SHA1_PATTERN), user),
        "user is not a 40-hex sha1",
    )
    _leave_out(report, dropped, _rows_flagged(~plays_ok, plays_code), "plays is not a non-negative integer")
    blank = _flag(pc.utf8_trim_whitespace(names), pc.equal, "")
    if no_mbid.any() and blank.any():
        _leave_out(report, dropped, no_mbid[mbid] & blank[name], "artist mbid and name both empty")
    report.dropped_rows = np.flatnonzero(dropped)
    return ~dropped if len(report.dropped_rows) else None


def _artist_keys(mbid, mbids, no_mbid, name, names) -> tuple[np.ndarray, pa.Array, np.ndarray]:
    """Artist key of every row: its mbid, or ``name:<normalised name>`` when the mbid is empty.

    ``mbid``/``name``: row codes into the distinct ``mbids``/``names``; ``no_mbid``: per distinct mbid.
    Keys are built once per distinct mbid and name; one encoding of both gives each key one number.
    Returns ``(key code per row, key strings in order of first appearance, first row of each key)``.
    """
    name_keys = pc.binary_join_element_wise(NAME_KEY_PREFIX, normalise_artist_name(names), "")
    keys = pc.dictionary_encode(pa.concat_arrays([mbids, name_keys]))
    key_of = keys.indices.to_numpy()
    artist = np.where(no_mbid[mbid], key_of[len(mbids) :][name], key_of[: len(mbids)][mbid])
    artist, used, first_row = _relabel_by_first_row(artist, len(keys.dictionary))
    return artist, keys.dictionary.take(pa.array(used)), first_row


def _per_distinct(column: pd.Series, parse) -> pd.Series:
    """``parse`` (a vectorised parser taking and returning an Index) applied once per distinct value of ``column``.

    Signup dates and ages repeat a few thousand values over 359K users; parsing those is ~10x cheaper.
    Missing values stay missing.
    """
    codes, distinct = pd.factorize(column, use_na_sentinel=False)  # a missing value is a distinct value too
    return pd.Series(parse(pd.Index(distinct, dtype=object)).take(codes), index=column.index)


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
    table = _drop_rows(
        table, pc.invert(pc.match_substring_regex(table["user"], _SHA1_PATTERN)), "user is not a 40-hex sha1", report
    )
    frame = table.to_pandas()
    repeated = frame["user"].duplicated()
    if repeated.any():
        _record_dropped(report, "repeated user (first row kept)", int(repeated.sum()), np.flatnonzero(repeated))
    frame = frame[~repeated].reset_index(drop=True)
    gender = frame["gender"].where(frame["gender"].isin(["m", "f"]))
    report.add_note("genders missing", int((frame["gender"] == "").sum()))
    report.add_note("genders other than m/f set missing", int((~frame["gender"].isin(["m", "f", ""])).sum()))
    age = _per_distinct(frame["age"].where(frame["age"] != ""), lambda ages: pd.to_numeric(ages, errors="coerce"))
    report.add_note("ages missing", int((frame["age"] == "").sum()))
    out_of_range = age.notna() & ~age.between(*AGE_RANGE)
    report.add_note(
        f"ages outside {AGE_RANGE[0]}-{AGE_RANGE[1]} or not numbers set missing",
        int(out_of_range.sum() + (age.isna() & (frame["age"] != "")).sum()),
    )
    signup = _per_distinct(frame["signup"], lambda dates: pd.to_datetime(dates, format=SIGNUP_FORMAT, errors="coerce"))
    report.add_note("signup dates not like 'Feb 1, 2007' set missing", int(signup.isna().sum()))
    country = frame["country"].where(frame["country"] != "")
    report.add_note("countries missing", int(country.isna().sum()))
    profiles = pd.DataFrame(
        {
            "user": frame["user"].astype(str),
            "gender": pd.Categorical(gender, categories=["m", "f"]),
            "age": age.where(~out_of_range).astype(np.float32),
            "country": pd.Categorical(country),
            "signup": signup,
        }
    )
    report.rows_kept = len(profiles)
    return profiles, report


def align_users(plays: pd.DataFrame, profiles: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """Profiles for every user in either file: plays-only users get a row with missing profile fields.

    Returns ``(profiles_all, counts)``; ``counts`` has ``users_without_plays`` (profile-only users: the cold
    start) and ``users_without_profile`` (plays-only users, appended at the end in sorted order).
    """
    played = pd.Index(plays["user"].cat.categories[np.unique(plays["user"].cat.codes)])
    missing = played.difference(pd.Index(profiles["user"]))
    counts = {"users_without_plays": int((~profiles["user"].isin(played)).sum()), "users_without_profile": len(missing)}
    if len(missing):
        extra = pd.DataFrame({"user": missing.astype(str)})
        profiles = pd.concat([profiles, extra], ignore_index=True)
        profiles["gender"] = pd.Categorical(profiles["gender"], categories=["m", "f"])
        profiles["country"] = profiles["country"].astype("category")
        profiles["age"] = profiles["age"].astype(np.float32)
    return profiles, counts


# --- HetRec 2011 Last.fm 2K (real play counts of 1,892 users) ---------------------------------------------------------
HETREC_PLAYS_FILE = "user_artists.dat"
HETREC_ARTISTS_FILE = "artists.dat"
HETREC_HEADER = ("userID", "artistID", "weight")


def is_hetrec(path) -> bool:
    """True when ``path`` starts with the HetRec header line ``userID<TAB>artistID<TAB>weight``."""
    with open(path, "rb") as f:
        return f.readline().rstrip(b"\r\n").split(b"\t") == [x.encode() for x in HETREC_HEADER]


def empty_profiles() -> pd.DataFrame:
    """A profile table with no rows (for data without profiles): every user is then a plays-only user."""
    return pd.DataFrame(
        {
            "user": pd.Series([], dtype=str),
            "gender": pd.Categorical([], categories=["m", "f"]),
            "age": pd.Series([], dtype=np.float32),
            "country": pd.Categorical([]),
            "signup": pd.Series([], dtype="datetime64[ns]"),
        }
    )


def load_hetrec(path) -> tuple[pd.DataFrame, LoadReport]:
    """Load HetRec 2011 Last.fm 2K ``user_artists.dat`` (Cantador, Brusilovsky, Kuflik, RecSys 2011 workshop;
    GroupLens): header ``userID artistID weight``, tab-separated, weight = the user's listening count of the artist.

    Returns ``(plays, report)`` in the layout of :func:`load_plays`: ``user`` and ``artist`` are the numeric ids as
    strings, ``artist_mbid`` is empty, ``artist_name`` comes from ``artists.dat`` beside the file when present
    (else ``artist <id>``). Rows with the wrong field count or a field that is not a non-negative integer are
    counted and left out; duplicate (user, artist) rows are summed. HetRec has no profiles: pair it with
    :func:`empty_profiles`. Raises FileNotFoundError, ValueError (no HetRec header, not UTF-8)."""
    if not is_hetrec(path):
        raise ValueError(f"{path}: first line is not '{chr(9).join(HETREC_HEADER)}'; not a HetRec user_artists.dat")
    report = LoadReport(str(path))
    table = _read_tsv(path, HETREC_HEADER, report)
    table = table.slice(1)  # the header line, read as a row so line numbers stay exact
    report.rows_read -= 1
    if report.skipped_lines is not None:
        report.skipped_lines = report.skipped_lines - 1
    frame = table.to_pandas()
    ok = frame.apply(lambda column: column.str.fullmatch(r"[0-9]{1,9}")).all(axis=1).to_numpy()
    if not ok.all():
        _record_dropped(report, "a field is not a non-negative integer", int((~ok).sum()), np.flatnonzero(~ok))
    frame = frame[ok]
    report.rows_kept = len(frame)
    names = {}
    artists_file = Path(path).with_name(HETREC_ARTISTS_FILE)
    if artists_file.is_file():
        artists = pd.read_csv(artists_file, sep="\t", quoting=3, dtype=str, usecols=["id", "name"], encoding="utf-8")
        names = dict(zip(artists["id"], artists["name"].fillna("")))
    user_codes, users = pd.factorize(frame["userID"])
    artist_codes, artist_ids = pd.factorize(frame["artistID"])
    user, artist, counts, repeats = _sum_duplicates(
        user_codes, artist_codes, frame["weight"].astype(np.int64).to_numpy(), len(artist_ids)
    )
    report.add_note("duplicate (user, artist) rows summed", repeats)
    report.add_note("rows with 0 plays (kept; they carry no weight)", int((frame["weight"].astype(int) == 0).sum()))
    artist_ids = list(artist_ids)
    plays = pd.DataFrame(
        {
            "user": pd.Categorical.from_codes(user, list(users)),
            "artist": pd.Categorical.from_codes(artist, artist_ids),
            "artist_mbid": pd.Categorical.from_codes(np.zeros(len(artist), np.int64), [""]),
            "artist_name": pd.Categorical([names.get(a, f"artist {a}") for a in np.asarray(artist_ids)[artist]]),
            "plays": np.minimum(counts, INT32_MAX).astype(np.int32),
        }
    )
    return plays, report
