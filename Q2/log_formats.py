"""Access-log formats as data: a table of parsers keyed by name, with detection kept separate from parsing.

Every format turns one log line into a :class:`Record` (the fields bytes-by-file-type needs) or says why it cannot:
``COMMENT`` (``#`` lines, header lines), ``BLANK`` (empty or whitespace-only) or :class:`Malformed` with a reason.
That per-line parser (``parse_line``) is the definition; ``index_block`` then ``parse_indexed`` is
a fast path (a numba kernel over each line's needed cells for the tab formats, RE2 via pyarrow for CLF and S3) that
must agree with it and hands every line it is not sure about back to ``parse_line``, so accounting stays exact.

Formats (field references):
- ``tsv``: the take-home's dummy CDN log, tab-separated ``date time size url`` with a header line naming the columns.
- ``cloudfront``: AWS CloudFront standard logs (docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/
  standard-logs-reference.html): ``#Version``/``#Fields:`` headers, tab-separated, UTC, columns found by name.
- ``clf``: Apache/Nginx common and combined log formats (httpd.apache.org/docs/current/logs.html), with the
  variants seen in real files (vhost or forwarded-for prefixes, missing ident/user, extra trailing fields).
- ``s3``: Amazon S3 server access logs (docs.aws.amazon.com/AmazonS3/latest/userguide/LogFormat.html).
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

COMMENT = "comment"
BLANK = "blank"

#: Columns of the normalised record table every parser returns (one row per usable log line).
RECORD_SCHEMA = pa.schema(
    [
        ("day", pa.string()),  # 'YYYY-MM-DD', calendar day as written in the log (its own offset)
        ("time", pa.string()),  # 'HH:MM:SS'
        ("utc_offset", pa.string()),  # '+HHMM'/'-HHMM'; '+0000' for UTC formats and for the zone-less dummy log
        ("bytes", pa.int64()),  # response size in bytes, 0 where the log wrote '-'
        ("bytes_missing", pa.bool_()),  # True where the log wrote '-' for the size
        ("target", pa.binary()),  # URL or path as written (percent-encoded, may hold query/fragment, any bytes)
    ]
)


class Record(NamedTuple):
    """One usable log line: the fields of :data:`RECORD_SCHEMA`, as Python values."""

    day: str
    time: str
    utc_offset: str
    bytes: int
    bytes_missing: bool
    target: bytes


@dataclass(frozen=True)
class Malformed:
    """A line that is neither a record, a comment nor blank; ``reason`` names the bad field."""

    reason: str


LineResult = Record | Malformed | str


@dataclass
class BlockResult:
    """Output of a fast path over a block of whole lines.

    records: table with :data:`RECORD_SCHEMA` for the lines the fast path accepted.
    rejected: 0-based line indices (within the block) the fast path did not accept, for ``parse_line``.
    n_lines: number of lines in the block.
    dropped: number of valid lines left out of ``records`` because the :class:`Prefilter` says the query cannot
        match them (they are records that do not match, not rejected lines).
    """

    records: pa.Table
    rejected: np.ndarray
    n_lines: int
    dropped: int = 0


@dataclass(frozen=True)
class Prefilter:
    """Lines a query cannot match, which a fast path may drop (counting them in ``BlockResult.dropped``) before any
    string work; the exact selection (log_scan.select_requests) still runs on every line kept.

    day_low, day_high: the inclusive range of days kept, as ``yyyymmdd`` integers (the order of 'YYYY-MM-DD'
        strings); a zone conversion moves a day by at most one, so :meth:`for_query` widens the range for ``tz``.
    extensions: lower-case extensions with their dot (b'.jpg'), or () to keep every URL. A URL is kept when it
        holds a '%' anywhere (percent-decoding may make an extension) or, cut at its first '?' or '#', ends with
        one of them (ASCII case-insensitively): a superset of the exact extension rule.
    The tab formats (numba kernel) apply it; the CLF/S3 regex path ignores it.
    """

    day_low: int = 0
    day_high: int = 99991231
    extensions: tuple = ()

    @classmethod
    def for_query(cls, start: dt.date, end: dt.date, extensions, tz_given: bool) -> Prefilter:
        """Prefilter for days ``start``..``end`` and ``extensions`` (lower-case names without the dot); with
        ``tz_given`` one more day each side."""
        if tz_given:
            start = start - dt.timedelta(days=1) if start > dt.date.min else start
            end = end + dt.timedelta(days=1) if end < dt.date.max else end
        return cls(
            start.year * 10000 + start.month * 100 + start.day,
            end.year * 10000 + end.month * 100 + end.day,
            tuple(sorted(b"." + e.encode() for e in extensions)),
        )

    @functools.cached_property
    def extension_table(self) -> tuple:
        """(uint8 array of shape (k, width), int64 lengths of shape (k,)): the extensions, left-aligned."""
        width = max((len(e) for e in self.extensions), default=1)
        table = np.zeros((len(self.extensions), width), np.uint8)
        for row, ext in enumerate(self.extensions):
            table[row, : len(ext)] = np.frombuffer(ext, np.uint8)
        return table, np.array([len(e) for e in self.extensions], np.int64)


#: The prefilter that keeps every line.
KEEP_ALL = Prefilter()


@dataclass(frozen=True)
class TabLayout:
    """Where the needed columns are in a tab-separated format: 0-based indices and the declared column count."""

    names: tuple
    day: int
    time: int
    size: int
    target: int

    @property
    def needed(self) -> int:
        return max(self.day, self.time, self.size, self.target) + 1


@dataclass
class ParserState:
    """Per-file mutable state: the tab layout, which a ``#Fields:`` line may change mid-file."""

    layout: TabLayout | None = None


@dataclass
class BlockIndex:
    """Where the lines of a block of whole lines are, found once per block (numpy, or a numba kernel for the tab
    formats: both leave the GIL to the other worker threads).

    data: the block as a uint8 array of shape (n_bytes,) (a zero-copy view of the bytes-like block).
    line_ends: int64 array of shape (n_lines,): the position of each line's '\\n', or n_bytes for a last line
        without one.
    headers: [(line index, layout)] for the header lines of a tab-separated format, in order; the layout is None when
        the header lacks a needed column (the lines under it are then malformed).
    """

    data: np.ndarray
    line_ends: np.ndarray
    headers: list = field(default_factory=list)

    @property
    def n_lines(self) -> int:
        return len(self.line_ends)

    @functools.cached_property
    def line_offsets(self) -> np.ndarray:
        """int64 array of shape (n_lines + 1,): the start of each line, then n_bytes."""
        offsets = np.empty(self.n_lines + 1, np.int64)
        offsets[0] = 0
        np.minimum(self.line_ends + 1, len(self.data), out=offsets[1:])
        return offsets

    def line(self, i: int) -> bytes:
        """Line ``i`` (0-based) without its '\\n'."""
        return self.data[self.line_offsets[i] : self.line_ends[i]].tobytes()

    def state_after(self, state: ParserState) -> ParserState:
        """The parser state at the end of the block when it starts in ``state``: the last header line's layout."""
        return ParserState(self.headers[-1][1]) if self.headers else state


@dataclass(frozen=True)
class LogFormat:
    """One entry of :data:`FORMATS`.

    looks_like(line) -> bool: does this (non-comment, non-blank) line have this format's shape? Used by detection.
    parse_line(line, state) -> Record | Malformed | COMMENT | BLANK: the definition of the format; may update
        ``state`` (a ``#Fields:`` line changes the column layout).
    index_block(block) -> BlockIndex: the lines (and header lines) of a bytes-like block of whole lines.
    parse_indexed(index, state, prefilter=KEEP_ALL) -> BlockResult: fast path over an indexed block starting in
        ``state``; does not change ``state``. Rejected lines must then go through ``parse_line`` in order, from the
        same state. A fast path may drop lines ``prefilter`` rules out (``BlockResult.dropped``).
    Indexing needs no state, so blocks can be indexed in parallel and each block's starting state chained from the
    previous block's index (``BlockIndex.state_after``).
    """

    name: str
    description: str
    looks_like: Callable[[bytes], bool]
    parse_line: Callable[[bytes, ParserState], LineResult]
    index_block: Callable[[bytes], BlockIndex]
    parse_indexed: Callable[..., BlockResult]
    initial_state: Callable[[], ParserState] = field(default=ParserState)


# ---------------------------------------------------------------- shared field checks (Python side)

_DATE = re.compile(rb"\d{4}-\d{2}-\d{2}")
_TIME = re.compile(rb"\d{2}:\d{2}:\d{2}")
# 18 digits keep every size below 2**63 so the int64 column never overflows.
_SIZE = re.compile(rb"\d{1,18}|-")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _valid_day(day: bytes) -> bool:
    if not _DATE.fullmatch(day):
        return False
    try:
        dt.date.fromisoformat(day.decode())
    except ValueError:
        return False
    return True


def _valid_time(t: bytes) -> bool:
    return bool(_TIME.fullmatch(t)) and int(t[:2]) < 24 and int(t[3:5]) < 60 and int(t[6:8]) < 60


def _shown(field: bytes, width: int = 40) -> str:
    """A raw field for a malformed-line reason: quoted text (UTF-8, other bytes as \\xNN), at most ``width``
    characters, not a Python bytes literal."""
    text = field[: 4 * width].decode("utf-8", "backslashreplace")[:width]
    return "'" + "".join(c if c.isprintable() else repr(c)[1:-1] for c in text) + "'"


def _record(day: bytes, time: bytes, offset: bytes, size: bytes, target: bytes) -> LineResult:
    """Validate raw fields and build a Record, or say which field is bad."""
    if not _valid_day(day):
        return Malformed(f"bad date {_shown(day)}")
    if not _valid_time(time):
        return Malformed(f"bad time {_shown(time)}")
    if not _SIZE.fullmatch(size):
        return Malformed(f"bad size {_shown(size)}")
    missing = size == b"-"
    return Record(day.decode(), time.decode(), offset.decode(), 0 if missing else int(size), missing, target)


def _strip_eol(line: bytes) -> bytes:
    return line.rstrip(b"\r\n")


def _blank_or_comment(text: bytes) -> str | None:
    """BLANK for whitespace-only text, COMMENT for text starting with '#', else None."""
    if not text.strip():
        return BLANK
    return COMMENT if text.startswith(b"#") else None


# ---------------------------------------------------------------- shared vector checks (pyarrow side)


def _valid_day_vec(day: pa.Array) -> pa.Array:
    """True where ``day`` (binary) is a real 'YYYY-MM-DD' date, by the same rule as the per-line parser.

    A block holds few distinct days, so the Python check runs on the distinct values only.
    """
    good = [d for d in pc.unique(day).to_pylist() if d is not None and _valid_day(d)]
    return pc.is_in(day, value_set=pa.array(good, day.type))


#: Time of day as the fast-path regexes accept it (the same rule as _valid_time).
_TIME_RE2 = r"(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d"


def _records_table(day, time, offset, size, target, keep: pa.Array) -> pa.Table:
    """Build the RECORD_SCHEMA table from binary columns, keeping rows where ``keep`` is True (already validated)."""
    if not pc.all(keep).as_py():  # usually every line is kept: then no copies
        day, time, size, target = (pc.filter(c, keep) for c in (day, time, size, target))
        if not isinstance(offset, str):
            offset = pc.filter(offset, keep)
    if isinstance(offset, str):
        offset = pa.repeat(pa.scalar(offset, pa.string()), len(day))
    missing = pc.equal(size, b"-")
    numbers = pc.if_else(missing, b"0", size).cast(pa.string()).cast(pa.int64())
    return pa.Table.from_arrays(
        [
            day.cast(pa.string()),
            time.cast(pa.string()),
            offset.cast(pa.string()),
            numbers,
            missing,
            target.cast(pa.binary()),
        ],
        schema=RECORD_SCHEMA,
    )


def _index_lines(block) -> BlockIndex:
    """BlockIndex of a bytes-like block: its newlines only (formats without header lines)."""
    data = np.frombuffer(block, np.uint8)
    ends = np.flatnonzero(data == 10)
    if len(data) and data[-1] != 10:
        ends = np.append(ends, len(data))
    return BlockIndex(data, ends)


def _line_array(index: BlockIndex) -> pa.Array:
    """The lines of an indexed block as a binary array (zero-copy; each line keeps its '\\n')."""
    offsets = index.line_offsets.astype(np.int32)  # blocks are far below 2 GiB
    return pa.BinaryArray.from_buffers(
        pa.binary(), index.n_lines, [None, pa.py_buffer(offsets), pa.py_buffer(index.data)]
    )


# ---------------------------------------------------------------- tab-separated formats (tsv, cloudfront)

TSV_COLUMNS = ("date", "time", "size", "url")
CLOUDFRONT_COLUMNS = {"day": "date", "time": "time", "size": "sc-bytes", "target": "cs-uri-stem"}
#: Field list assumed when a CloudFront file has no ``#Fields:`` line (the first 26 standard fields, 2019-2024).
CLOUDFRONT_DEFAULT_FIELDS = tuple(
    [
        "date",
        "time",
        "x-edge-location",
        "sc-bytes",
        "c-ip",
        "cs-method",
        "cs(Host)",
        "cs-uri-stem",
        "sc-status",
        "cs(Referer)",
        "cs(User-Agent)",
        "cs-uri-query",
        "cs(Cookie)",
        "x-edge-result-type",
        "x-edge-request-id",
        "x-host-header",
        "cs-protocol",
        "cs-bytes",
        "time-taken",
        "x-forwarded-for",
        "ssl-protocol",
        "ssl-cipher",
        "x-edge-response-result-type",
        "cs-protocol-version",
        "fle-status",
        "fle-encrypted-fields",
    ]
)


def layout_from_names(names, mapping: dict) -> TabLayout:
    """TabLayout for a header naming ``names``; ``mapping`` maps day/time/size/target to column names.

    Raises ValueError naming the missing column when the header lacks one.
    """
    names = tuple(names)
    missing = [col for col in mapping.values() if col not in names]
    if missing:
        raise ValueError(f"header has no {', '.join(missing)} column (columns: {' '.join(names)})")
    return TabLayout(names, *(names.index(mapping[k]) for k in ("day", "time", "size", "target")))


def _tab_fields(line: bytes) -> list:
    return _strip_eol(line).split(b"\t")


_NO_HEADER = object()  # returned by header readers for lines that are not header lines


def _make_tab_parse_line(read_header: Callable, offset: bytes = b"+0000") -> Callable[[bytes, ParserState], LineResult]:
    def parse_line(line: bytes, state: ParserState) -> LineResult:
        text = _strip_eol(line)
        if not text.strip():  # before the header check: a blank line is never a header
            return BLANK
        header = read_header(text)
        if header is not _NO_HEADER:
            state.layout = header  # None when the header lacks a needed column: later lines become malformed
            return COMMENT
        kind = _blank_or_comment(text)
        if kind:
            return kind
        layout = state.layout
        if layout is None:
            return Malformed("the last header line lacks a needed column (see --help for the columns used)")
        fields = text.split(b"\t")
        if len(fields) < layout.needed:
            return Malformed(f"{len(fields)} tab-separated fields, needs at least {layout.needed}")
        return _record(fields[layout.day], fields[layout.time], offset, fields[layout.size], fields[layout.target])

    return parse_line


def _tab_kernel():
    """The numba kernels (module ``tab_kernel``), imported on first use: numba takes ~0.35 s to import, which the
    CLF/S3 formats and the command line's checks do not need to pay."""
    import tab_kernel

    return tab_kernel


def _make_tab_index_block(is_header_start: np.ndarray, read_header: Callable) -> Callable[[bytes], BlockIndex]:
    """index_block for a tab-separated format: line ends and header lines.

    is_header_start: bool array of shape (256,), True for the bytes a header line can start with ('#' for CloudFront,
    any but a digit for tsv); only those lines are passed to ``read_header``.
    """

    def index_block(block) -> BlockIndex:
        data = np.frombuffer(block, np.uint8)
        index = BlockIndex(data, _tab_kernel().find_line_ends(data))
        for i in np.flatnonzero(is_header_start[data[index.line_offsets[:-1]]]).tolist():
            header = read_header(_strip_eol(index.line(i)))
            if header is not _NO_HEADER:
                index.headers.append((i, header))
        return index

    return index_block


def _fixed_width_strings(cells: np.ndarray) -> pa.Array:
    """String array from an ASCII uint8 array of shape (n, width), one value per row (one copy)."""
    n, width = cells.shape
    offsets = np.arange(n + 1, dtype=np.int32) * width
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(cells)))


def _tab_fast_path(
    index: BlockIndex, first_line: int, end_line: int, layout: TabLayout | None, offset: str, prefilter: Prefilter
) -> tuple:
    """(records table, rejected line indices, number of lines dropped by ``prefilter``) for the lines
    first_line..end_line-1 of a header-free run, read by the numba kernel ``tab_kernel.parse_tab_lines`` (its
    docstring has the acceptance rule). Rejected lines are for ``parse_line``."""
    lines = np.arange(first_line, end_line)
    if layout is None or len(lines) == 0 or len({layout.day, layout.time, layout.size, layout.target}) < 4:
        return RECORD_SCHEMA.empty_table(), lines, 0
    kernel = _tab_kernel()
    ext_table, ext_lengths = prefilter.extension_table
    verdicts, days, times, sizes, missing, target_starts, target_ends = kernel.parse_tab_lines(
        index.data,
        index.line_offsets[first_line:end_line],
        index.line_ends[first_line:end_line],
        layout.day,
        layout.time,
        layout.size,
        layout.target,
        layout.needed,
        prefilter.day_low,
        prefilter.day_high,
        ext_table,
        ext_lengths,
        kernel.DAYS_IN_MONTH,
    )
    target_offsets, target_values = kernel.gather_cells(index.data, target_starts, target_ends)
    n = len(sizes)
    zone = np.frombuffer(offset.encode(), np.uint8)
    table = pa.Table.from_arrays(
        [
            _fixed_width_strings(days),
            _fixed_width_strings(times),
            _fixed_width_strings(np.broadcast_to(zone, (n, len(zone)))),
            pa.array(sizes),
            pa.array(missing),
            pa.BinaryArray.from_buffers(
                pa.binary(), n, [None, pa.py_buffer(target_offsets), pa.py_buffer(target_values)]
            ),
        ],
        schema=RECORD_SCHEMA,
    )
    return table, lines[verdicts == kernel.REJECTED], int(np.count_nonzero(verdicts == kernel.DROPPED))


def _make_tab_parse_indexed(offset: str = "+0000") -> Callable[..., BlockResult]:
    """parse_indexed for a tab-separated format: the fast path over each run of lines between header lines, with the
    layout in force there; header lines themselves are left to parse_line."""

    def parse_indexed(index: BlockIndex, state: ParserState, prefilter: Prefilter = KEEP_ALL) -> BlockResult:
        tables, rejected, dropped, layout, start = [], [], 0, state.layout, 0
        for header_line, header_layout in index.headers + [(index.n_lines, None)]:
            table, bad, n_dropped = _tab_fast_path(index, start, header_line, layout, offset, prefilter)
            tables.append(table)
            rejected.append(bad)
            dropped += n_dropped
            if header_line < index.n_lines:
                rejected.append(np.array([header_line]))
            layout, start = header_layout, header_line + 1
        return BlockResult(pa.concat_tables(tables), np.concatenate(rejected), index.n_lines, dropped)

    return parse_indexed


def _tsv_names(text: bytes) -> list:
    """Column names of a tsv header line: tab-separated, stripped, lower-cased."""
    return [n.strip().lower() for n in text.decode("utf-8", "replace").split("\t")]


def _tsv_header(text: bytes):
    names = _tsv_names(text)
    if _DATE.fullmatch(text[:10]) or not set(TSV_COLUMNS) <= set(names):
        return _NO_HEADER
    return layout_from_names(names, dict(zip(("day", "time", "size", "target"), TSV_COLUMNS)))


#: tsv data lines start with a digit, so only lines starting with another byte are read as possible header lines
#: (names are stripped: " date\ttime..." is a header to the per-line parser too).
_TSV_HEADER_START = np.ones(256, bool)
_TSV_HEADER_START[ord("0") : ord("9") + 1] = False


def _tsv_default_layout() -> TabLayout:
    return layout_from_names(TSV_COLUMNS, dict(zip(("day", "time", "size", "target"), TSV_COLUMNS)))


def _cloudfront_names(text: bytes) -> list:
    """Column names of a ``#Fields:`` line (whitespace-separated after the prefix)."""
    return text[len(b"#Fields:") :].decode("utf-8", "replace").split()


def _cloudfront_header(text: bytes):
    if not text.startswith(b"#Fields:"):
        return _NO_HEADER
    names = _cloudfront_names(text)
    return layout_from_names(names, CLOUDFRONT_COLUMNS) if set(CLOUDFRONT_COLUMNS.values()) <= set(names) else None


_CLOUDFRONT_HEADER_START = np.zeros(256, bool)
_CLOUDFRONT_HEADER_START[ord("#")] = True


def _cloudfront_default_layout() -> TabLayout:
    return layout_from_names(CLOUDFRONT_DEFAULT_FIELDS, CLOUDFRONT_COLUMNS)


def _looks_like_tab(min_fields: int, max_fields: int) -> Callable[[bytes], bool]:
    def looks_like(line: bytes) -> bool:
        fields = _tab_fields(line)
        return (
            min_fields <= len(fields) <= max_fields
            and bool(_DATE.fullmatch(fields[0]))
            and bool(_TIME.fullmatch(fields[1]))
        )

    return looks_like


# ---------------------------------------------------------------- space-separated formats with [time] (clf, s3)

_CLF_TIME = r"\[(\d{2})/([A-Za-z]{3})/(\d{4}):(" + _TIME_RE2 + r") ([+-]\d{4})\]"
_QUOTED = r'"((?:[^"\\]|\\.)*)"'
# The client part before the [time] varies (vhost, forwarded-for lists, bracketed IPv6, missing ident/user), and
# bytes-by-type needs none of it, so it is skipped up to the first '[' that opens a timestamp. Extra fields after
# the size (combined format, response times) are ignored.
CLF_PATTERN = r"^[^\n]*?" + _CLF_TIME + " " + _QUOTED + r" (\d{3}|-) (\d{1,18}|-)(?: [^\n]*)?[\r\n]*$"
# Fields are split on single spaces ([^ ]), not \S: RE2 and Python disagree on whether \v is whitespace.
S3_PATTERN = (
    r"^[^ ]+ [^ ]+ " + _CLF_TIME + r" [^ ]+ [^ ]+ [^ ]+ [^ ]+ ([^ ]+) (?:" + _QUOTED + r"|-) (\d{3}|-) [^ ]+ "
    r"(\d{1,18}|-)(?: [^\n]*)?[\r\n]*$"
)
_CLF_GROUPS = ("dd", "mon", "year", "time", "offset", "request", "status", "size")
_S3_GROUPS = ("dd", "mon", "year", "time", "offset", "key", "request", "status", "size")
_REQUEST_TARGET = re.compile(rb"^[^ ]+ ([^ ]+)")
_MONTH_NUMBER = {m.encode(): f"{i:02d}".encode() for i, m in enumerate(MONTHS, 1)}


def _target_of_request(request: bytes) -> bytes:
    """URL of a request line 'METHOD target [protocol]'; b'' for garbage such as '-' or '' (counted, no type)."""
    match = _REQUEST_TARGET.match(request)
    return match.group(1) if match else b""


def _bracket_record(
    day: bytes, mon: bytes, year: bytes, time: bytes, offset: bytes, size: bytes, target: bytes
) -> LineResult:
    month = _MONTH_NUMBER.get(mon)
    if month is None:
        return Malformed(f"bad month {_shown(mon)}")
    return _record(year + b"-" + month + b"-" + day, time, offset, size, target)


def _make_bracket_parse_line(regex: re.Pattern, what: str) -> Callable[[bytes, ParserState], LineResult]:
    """parse_line for a space-separated format with a [time] field; ``regex`` has the named groups of
    _CLF_GROUPS (_S3_GROUPS for S3, with ``key``)."""

    def parse_line(line: bytes, state: ParserState) -> LineResult:
        text = _strip_eol(line)
        kind = _blank_or_comment(text)
        if kind:
            return kind
        match = regex.match(text)
        if not match:
            return Malformed(f"not {what}")
        g = match.groupdict()
        target = _target_of_request(g["request"]) if g["request"] else b""
        # S3 operations without a request line (BATCH.DELETE.OBJECT, lifecycle) log '-': the key names the file.
        if not target and g.get("key", b"-") != b"-":
            target = g["key"]
        return _bracket_record(g["dd"], g["mon"], g["year"], g["time"], g["offset"], g["size"], target)

    return parse_line


def _bracket_columns(extracted: pa.StructArray, first: int):
    """day, time, offset as binary arrays from struct fields first..first+4 (dd, Mon, yyyy, time, offset)."""
    dd, mon, year, time, offset = (extracted.field(i) for i in range(first, first + 5))
    month = pc.index_in(mon, value_set=pa.array([m.encode() for m in MONTHS], pa.binary()))
    mm = pa.array([f"{i:02d}".encode() for i in range(1, 13)], pa.binary()).take(pc.fill_null(month, 0))
    day = pc.binary_join_element_wise(year, mm, dd, b"-")
    return day, time, offset, pc.is_valid(month)


def _make_regex_parse_indexed(pattern: str, s3: bool) -> Callable[..., BlockResult]:
    named = _name_groups(pattern, _S3_GROUPS if s3 else _CLF_GROUPS)  # pyarrow's extract_regex needs names

    def parse_indexed(index: BlockIndex, state: ParserState, prefilter: Prefilter = KEEP_ALL) -> BlockResult:
        lines = _line_array(index)  # no prefilter here: RE2 over the whole line is most of the cost anyway
        extracted = pc.extract_regex(lines, named)
        day, time, offset, month_ok = _bracket_columns(extracted, 0)
        request = pc.fill_null(extracted.field("request"), b"")
        target = pc.fill_null(pc.struct_field(pc.extract_regex(request, r"^[^ ]+ (?P<t>[^ ]+)"), [0]), b"")
        if s3:
            key = extracted.field("key")
            target = pc.if_else(pc.equal(target, b""), pc.if_else(pc.equal(key, b"-"), b"", key), target)
        keep = pc.and_kleene(pc.and_kleene(pc.is_valid(extracted), month_ok), _valid_day_vec(day))
        keep = pc.fill_null(keep, False)
        rejected = np.flatnonzero(~keep.to_numpy(zero_copy_only=False))
        return BlockResult(
            _records_table(day, time, offset, extracted.field("size"), target, keep), rejected, len(lines)
        )

    return parse_indexed


def _name_groups(pattern: str, names) -> str:
    """Give the capturing groups of ``pattern`` the given names, in order (pyarrow's extract_regex needs names)."""
    out, i, k = [], 0, 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if ch == "(" and not pattern.startswith("(?", i):
            out.append(f"(?P<{names[k]}>")
            k += 1
        else:
            out.append(ch)
        i += 1
    if k != len(names):
        raise ValueError(f"pattern has {k} groups, {len(names)} names given")
    return "".join(out)


# ---------------------------------------------------------------- the table

_CLF_RE = re.compile(_name_groups(CLF_PATTERN, _CLF_GROUPS).encode())
_S3_RE = re.compile(_name_groups(S3_PATTERN, _S3_GROUPS).encode())

FORMATS = {
    "tsv": LogFormat(
        "tsv",
        "tab-separated 'date time size url' with a header line (the take-home's dummy CDN log)",
        _looks_like_tab(4, 6),
        _make_tab_parse_line(_tsv_header),
        _make_tab_index_block(_TSV_HEADER_START, _tsv_header),
        _make_tab_parse_indexed(),
        initial_state=lambda: ParserState(_tsv_default_layout()),
    ),
    "cloudfront": LogFormat(
        "cloudfront",
        "AWS CloudFront standard log (#Fields: header, tab-separated, UTC)",
        _looks_like_tab(15, 1000),
        _make_tab_parse_line(_cloudfront_header),
        _make_tab_index_block(_CLOUDFRONT_HEADER_START, _cloudfront_header),
        _make_tab_parse_indexed(),
        initial_state=lambda: ParserState(_cloudfront_default_layout()),
    ),
    "clf": LogFormat(
        "clf",
        "Apache/Nginx common or combined log format",
        lambda line: bool(_CLF_RE.match(_strip_eol(line))),
        _make_bracket_parse_line(_CLF_RE, 'a common/combined log line ([time] "request" status size)'),
        _index_lines,
        _make_regex_parse_indexed(CLF_PATTERN, s3=False),
    ),
    "s3": LogFormat(
        "s3",
        "Amazon S3 server access log",
        lambda line: bool(_S3_RE.match(_strip_eol(line))),
        _make_bracket_parse_line(_S3_RE, "an S3 server access log line"),
        _index_lines,
        _make_regex_parse_indexed(S3_PATTERN, s3=True),
    ),
}

#: Order in which detection tries formats on a sample line: the most specific shapes first.
DETECTION_ORDER = ("cloudfront", "tsv", "s3", "clf")


def detect_format(sample_lines) -> str | None:
    """Name of the format of a file, judged from its first lines (bytes, BOM already removed); None if unknown.

    A ``#Version``/``#Fields:`` line means CloudFront and a 'date time size url' header means tsv; otherwise the
    format whose shape matches most of the first (up to 50) content lines wins, ties going to DETECTION_ORDER.
    """
    content = []
    for line in sample_lines:
        text = _strip_eol(line)
        if text.startswith((b"#Version", b"#Fields")):
            return "cloudfront"
        if _tsv_header(text) is not _NO_HEADER:
            return "tsv"
        if text.strip() and not text.startswith(b"#"):
            content.append(text)
        if len(content) >= 50:
            break
    scores = {name: sum(FORMATS[name].looks_like(t) for t in content) for name in DETECTION_ORDER}
    best = max(DETECTION_ORDER, key=lambda name: scores[name])
    return best if scores[best] > 0 else None


def header_missing_columns(sample_lines, name: str | None) -> tuple | None:
    """(line number from 1, missing column names, header names, needed names) when the first header line of a
    file lacks a column that format ``name`` needs (None: whichever of tsv/cloudfront the header is for); None
    when there is no such problem.

    A tsv header is a first content line starting with a letter, tab-separated, naming at least one of the tsv
    columns (all of them with ``name == 'tsv'``); a cloudfront header is the first ``#Fields:`` line.
    """
    for number, line in enumerate(sample_lines, 1):
        text = _strip_eol(line)
        if not text.strip():
            continue
        if text.startswith(b"#Fields:") and name in (None, "cloudfront"):
            names = _cloudfront_names(text)
            missing = [c for c in CLOUDFRONT_COLUMNS.values() if c not in names]
            return (number, missing, names, tuple(CLOUDFRONT_COLUMNS.values())) if missing else None
        if text.startswith(b"#"):
            continue
        if name in (None, "tsv") and b"\t" in text and text[:1].isalpha():
            names = _tsv_names(text)
            missing = [c for c in TSV_COLUMNS if c not in names]
            if missing and (name == "tsv" or len(missing) < len(TSV_COLUMNS)):
                return number, missing, names, TSV_COLUMNS
        return None
    return None
