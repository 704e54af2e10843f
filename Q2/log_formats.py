"""Access-log formats as data: a table of parsers keyed by name, with detection kept separate from parsing.

Every format turns one log line into a :class:`Record` (the fields bytes-by-file-type needs) or says why it cannot:
``COMMENT`` (``#`` lines, header lines), ``BLANK`` (empty or whitespace-only) or :class:`Malformed` with a reason.
That per-line parser (``parse_line``) is the definition; ``index_block`` then ``parse_indexed`` is
a vectorised fast path (numpy over delimiter positions for the tab formats, RE2 via pyarrow for CLF and S3) that
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
from dataclasses import dataclass, field
from typing import Callable, NamedTuple, Optional, Union

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

COMMENT = "comment"
BLANK = "blank"

#: Columns of the normalised record table every parser returns (one row per usable log line).
RECORD_SCHEMA = pa.schema([
    ("day", pa.string()),         # 'YYYY-MM-DD', calendar day as written in the log (its own offset)
    ("time", pa.string()),        # 'HH:MM:SS'
    ("utc_offset", pa.string()),  # '+HHMM'/'-HHMM'; '+0000' for UTC formats and for the zone-less dummy log
    ("bytes", pa.int64()),        # response size in bytes, 0 where the log wrote '-'
    ("bytes_missing", pa.bool_()),  # True where the log wrote '-' for the size
    ("target", pa.binary()),      # URL or path as written (percent-encoded, may hold query/fragment, any bytes)
])


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


LineResult = Union[Record, Malformed, str]


@dataclass
class BlockResult:
    """Output of a fast path over a block of whole lines.

    records: table with :data:`RECORD_SCHEMA` for the lines the fast path accepted.
    rejected: 0-based line indices (within the block) the fast path did not accept, for ``parse_line``.
    n_lines: number of lines in the block.
    """
    records: pa.Table
    rejected: np.ndarray
    n_lines: int


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
    layout: Optional[TabLayout] = None


@dataclass
class BlockIndex:
    """Where the lines of a block of whole lines are, found once per block with numpy (whole-array operations that
    leave the GIL to the other worker threads).

    data: the block as a uint8 array of shape (n_bytes,) (a zero-copy view of the bytes-like block).
    line_ends: int64 array of shape (n_lines,): the position of each line's '\\n', or n_bytes for a last line
        without one.
    headers: [(line index, layout)] for the header lines of a tab-separated format, in order; the layout is None when
        the header lacks a needed column (the lines under it are then malformed).
    delimiters: tab-separated formats only: (positions, bytes, newline_at): int64 positions and uint8 values of every
        '\\t', '\\r' and '\\n' of the block in order (with a '\\n' at n_bytes appended when the block does not end
        with one), and the indices into those arrays of the '\\n's, one per line.
    """
    data: np.ndarray
    line_ends: np.ndarray
    headers: list = field(default_factory=list)
    delimiters: Optional[tuple] = None

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
        return self.data[self.line_offsets[i]:self.line_ends[i]].tobytes()

    def state_after(self, state: "ParserState") -> "ParserState":
        """The parser state at the end of the block when it starts in ``state``: the last header line's layout."""
        return ParserState(self.headers[-1][1]) if self.headers else state


@dataclass(frozen=True)
class LogFormat:
    """One entry of :data:`FORMATS`.

    looks_like(line) -> bool: does this (non-comment, non-blank) line have this format's shape? Used by detection.
    parse_line(line, state) -> Record | Malformed | COMMENT | BLANK: the definition of the format; may update
        ``state`` (a ``#Fields:`` line changes the column layout).
    index_block(block) -> BlockIndex: the lines (and header lines) of a bytes-like block of whole lines.
    parse_indexed(index, state) -> BlockResult: vectorised fast path over an indexed block starting in ``state``;
        does not change ``state``. Rejected lines must then go through ``parse_line`` in order, from the same state.
    Indexing needs no state, so blocks can be indexed in parallel and each block's starting state chained from the
    previous block's index (``BlockIndex.state_after``).
    """
    name: str
    description: str
    looks_like: Callable[[bytes], bool]
    parse_line: Callable[[bytes, ParserState], LineResult]
    index_block: Callable[[bytes], BlockIndex]
    parse_indexed: Callable[[BlockIndex, ParserState], BlockResult]
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
    text = field[:4 * width].decode("utf-8", "backslashreplace")[:width]
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


def _blank_or_comment(text: bytes) -> Optional[str]:
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
    if not pc.all(keep).as_py():   # usually every line is kept: then no copies
        day, time, size, target = (pc.filter(c, keep) for c in (day, time, size, target))
        if not isinstance(offset, str):
            offset = pc.filter(offset, keep)
    if isinstance(offset, str):
        offset = pa.repeat(pa.scalar(offset, pa.string()), len(day))
    missing = pc.equal(size, b"-")
    numbers = pc.if_else(missing, b"0", size).cast(pa.string()).cast(pa.int64())
    return pa.Table.from_arrays(
        [day.cast(pa.string()), time.cast(pa.string()), offset.cast(pa.string()), numbers, missing,
         target.cast(pa.binary())], schema=RECORD_SCHEMA)


def _index_lines(block) -> BlockIndex:
    """BlockIndex of a bytes-like block: its newlines only (formats without header lines)."""
    data = np.frombuffer(block, np.uint8)
    ends = np.flatnonzero(data == 10)
    if len(data) and data[-1] != 10:
        ends = np.append(ends, len(data))
    return BlockIndex(data, ends)


def _line_array(index: BlockIndex) -> pa.Array:
    """The lines of an indexed block as a binary array (zero-copy; each line keeps its '\\n')."""
    offsets = index.line_offsets.astype(np.int32)   # blocks are far below 2 GiB
    return pa.BinaryArray.from_buffers(pa.binary(), index.n_lines,
                                       [None, pa.py_buffer(offsets), pa.py_buffer(index.data)])


# ---------------------------------------------------------------- tab-separated formats (tsv, cloudfront)

TSV_COLUMNS = ("date", "time", "size", "url")
CLOUDFRONT_COLUMNS = {"day": "date", "time": "time", "size": "sc-bytes", "target": "cs-uri-stem"}
#: Field list assumed when a CloudFront file has no ``#Fields:`` line (the first 26 standard fields, 2019-2024).
CLOUDFRONT_DEFAULT_FIELDS = tuple((
    "date time x-edge-location sc-bytes c-ip cs-method cs(Host) cs-uri-stem sc-status cs(Referer) cs(User-Agent) "
    "cs-uri-query cs(Cookie) x-edge-result-type x-edge-request-id x-host-header cs-protocol cs-bytes time-taken "
    "x-forwarded-for ssl-protocol ssl-cipher x-edge-response-result-type cs-protocol-version fle-status "
    "fle-encrypted-fields").split())


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


_NO_HEADER = object()   # returned by header readers for lines that are not header lines


def _make_tab_parse_line(read_header: Callable, offset: bytes = b"+0000") -> Callable[[bytes, ParserState], LineResult]:
    def parse_line(line: bytes, state: ParserState) -> LineResult:
        text = _strip_eol(line)
        if not text.strip():   # before the header check: a blank line is never a header
            return BLANK
        header = read_header(text)
        if header is not _NO_HEADER:
            state.layout = header   # None when the header lacks a needed column: later lines become malformed
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


_TAB, _LF, _CR, _DASH = 9, 10, 13, ord("-")
#: 10**17 .. 10**0: the place values of a size right-aligned in 18 columns.
_PLACE_VALUES = 10 ** np.arange(17, -1, -1, dtype=np.int64)
_DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], np.int64)


def _make_tab_index_block(is_header_start: np.ndarray, read_header: Callable) -> Callable[[bytes], BlockIndex]:
    """index_block for a tab-separated format: newlines, field delimiters and header lines.

    is_header_start: bool array of shape (256,), True for the bytes a header line can start with ('#' for CloudFront,
    letters for tsv); only those lines are passed to ``read_header``.
    """
    def index_block(block) -> BlockIndex:
        data = np.frombuffer(block, np.uint8)
        # One pass over the block for all three delimiters; other control bytes (< 14) are dropped after.
        positions = np.flatnonzero(data < 14)
        chars = data[positions]
        wanted = (chars == _TAB) | (chars == _LF) | (chars == _CR)
        if not wanted.all():
            positions, chars = positions[wanted], chars[wanted]
        if len(data) and data[-1] != _LF:   # a last line without '\n' ends at the end of the block
            positions, chars = np.append(positions, len(data)), np.append(chars, np.uint8(_LF))
        newline_at = np.flatnonzero(chars == _LF)
        index = BlockIndex(data, positions[newline_at], delimiters=(positions, chars, newline_at))
        for i in np.flatnonzero(is_header_start[data[index.line_offsets[:-1]]]).tolist():
            header = read_header(_strip_eol(index.line(i)))
            if header is not _NO_HEADER:
                index.headers.append((i, header))
        return index
    return index_block


def _gather_cells(data: np.ndarray, start: np.ndarray, width: int) -> np.ndarray:
    """uint8 array of shape (len(start), width): the ``width`` bytes from each start, one copy per row (a strided view
    whose items are ``width``-byte windows). Windows are clipped to end inside ``data``: a row whose cell is shorter
    than ``width`` may then hold other bytes, so callers check cell lengths."""
    if len(data) < width:
        data = np.concatenate([data, np.zeros(width - len(data), np.uint8)])
    windows = np.ndarray((len(data) - width + 1,), f"V{width}", data, strides=(1,))
    return windows[np.minimum(start, len(data) - width)].view(np.uint8).reshape(len(start), width)


def _matches_digit_shape(words: np.ndarray, shape: bytes) -> np.ndarray:
    """True where the little-endian words (uint64 for 8 bytes, uint16 for 2) hold ``shape`` byte by byte: an ASCII
    digit where ``shape`` has '0', exactly ``shape``'s byte elsewhere.

    SWAR ("SIMD within a register") test, a few whole-array operations on n words instead of n x 8 bytes: a byte b is
    a digit iff b & 0xF0 == 0x30 and (b + 6) & 0xF0 == 0x30; adding 6 carries into the next byte only from bytes
    >= 0xFA, which fail the first test anyway.
    """
    mask = expected = add = 0
    for k, byte in enumerate(shape):
        digit = byte == ord("0")
        mask |= (0xF0 if digit else 0xFF) << 8 * k
        expected |= (0x30 if digit else byte) << 8 * k
        add |= (0x06 if digit else 0) << 8 * k
    mask, expected, add = (words.dtype.type(v) for v in (mask, expected, add))
    return ((words & mask) == expected) & (((words + add) & mask) == expected)


def _byte(words: np.ndarray, k: int, zero: int = ord("0")) -> np.ndarray:
    """Byte ``k`` of each little-endian word, minus ``zero``, as int32 (a digit's value for digit bytes)."""
    return ((words >> words.dtype.type(8 * k)) & words.dtype.type(0xFF)).astype(np.int32) - zero


#: A 10-byte 'YYYY-MM-DD' cell seen as an 8-byte word 'YYYY-MM-' and a 2-byte word 'DD'.
_DAY_WORDS = np.dtype([("head", "<u8"), ("tail", "<u2")])


def _day_cells(data: np.ndarray, start: np.ndarray, end: np.ndarray) -> tuple:
    """(uint8 array of shape (n, 10), valid bool array): cells that are real 'YYYY-MM-DD' dates, by the rule of
    ``_valid_day`` (years 1-9999, Gregorian leap years), checked with whole-array arithmetic."""
    cells = _gather_cells(data, start, 10)
    words = cells.view(_DAY_WORDS).reshape(-1)
    head, tail = words["head"], words["tail"]
    valid = (end - start == 10) & _matches_digit_shape(head, b"0000-00-") & _matches_digit_shape(tail, b"00")
    year = _byte(head, 0) * 1000 + _byte(head, 1) * 100 + _byte(head, 2) * 10 + _byte(head, 3)
    month, day = _byte(head, 5) * 10 + _byte(head, 6), _byte(tail, 0) * 10 + _byte(tail, 1)
    leap = ((year % 4 == 0) & (year % 100 != 0)) | (year % 400 == 0)
    valid &= (year >= 1) & (month >= 1) & (month <= 12)
    days_in_month = _DAYS_IN_MONTH[np.where(valid, month, 0)] + ((month == 2) & leap)
    return cells, valid & (day >= 1) & (day <= days_in_month)


def _time_cells(data: np.ndarray, start: np.ndarray, end: np.ndarray) -> tuple:
    """(uint8 array of shape (n, 8), valid bool array): cells that are 'HH:MM:SS' times (the _valid_time rule)."""
    cells = _gather_cells(data, start, 8)
    words = cells.view("<u8").reshape(-1)
    valid = (end - start == 8) & _matches_digit_shape(words, b"00:00:00")
    hour = _byte(words, 0) * 10 + _byte(words, 1)
    return cells, valid & (hour < 24) & (_byte(words, 3) < 6) & (_byte(words, 6) < 6)


_U64 = np.uint64


def _size_cells(data: np.ndarray, start: np.ndarray, end: np.ndarray) -> tuple:
    """(int64 sizes, missing bool array, valid bool array) of size cells: 1-18 digits, or '-' (0, missing).

    Cells of 1-8 bytes (every size below 100 MB) are read as one little-endian word each, right-aligned, and converted
    with SWAR arithmetic (pad with '0's, check the digits, then combine digit pairs, pairs of pairs, ...); longer
    cells, and cells ending in the first 8 bytes of the block, digit by digit (``_size_cells_by_digits``).
    """
    length = end - start
    by_word = (length >= 1) & (length <= 8) & (end >= 8)
    if not by_word.all():
        sizes, missing, valid = (np.zeros(len(start), t) for t in (np.int64, bool, bool))
        for rows, function in ((np.flatnonzero(by_word), _size_cells_by_words),
                               (np.flatnonzero(~by_word), _size_cells_by_digits)):
            if len(rows):
                sizes[rows], missing[rows], valid[rows] = function(data, start[rows], end[rows])
        return sizes, missing, valid
    return _size_cells_by_words(data, start, end)


def _size_cells_by_words(data: np.ndarray, start: np.ndarray, end: np.ndarray) -> tuple:
    """_size_cells for cells of 1-8 bytes that end at byte 8 or later."""
    length = (end - start).astype(np.uint64)
    words = np.ndarray((len(data) - 7,), "<u8", data, strides=(1,))[end - 8]   # the cell is the top bytes
    before = (_U64(1) << (_U64(8) * (_U64(8) - length))) - _U64(1)   # the bytes before the cell...
    zeros = _U64(0x3030303030303030)
    padded = (words & ~before) | (zeros & before)                      # ...become '0's
    numeric = _matches_digit_shape(padded, b"00000000")
    missing = (length == 1) & ((words >> _U64(56)) == ord("-"))
    v = padded - zeros   # digit values, most significant in the lowest byte
    v = (v * _U64(10) + (v >> _U64(8))) & _U64(0x00FF00FF00FF00FF)
    v = (v * _U64(100) + (v >> _U64(16))) & _U64(0x0000FFFF0000FFFF)
    v = (v * _U64(10000) + (v >> _U64(32))) & _U64(0xFFFFFFFF)
    return np.where(numeric, v.astype(np.int64), 0), missing, numeric | missing


def _size_cells_by_digits(data: np.ndarray, start: np.ndarray, end: np.ndarray) -> tuple:
    """_size_cells for any cells, one digit column at a time."""
    length = end - start
    width = int(min(max(length.max(initial=1), 1), 18))
    cells = _gather_cells(data, np.maximum(end - width, 0), width)   # right-aligned in ``width`` columns...
    for row in np.flatnonzero(end < width).tolist():   # ...except cells ending within ``width`` bytes of the start
        cells[row] = 0
        cells[row, width - end[row]:] = data[:end[row]]
    inside = np.arange(width) >= (width - length)[:, None]
    numeric = (length >= 1) & (length <= 18) & (((cells >= ord("0")) & (cells <= ord("9"))) | ~inside).all(axis=1)
    missing = (length == 1) & (cells[:, -1] == _DASH)
    digits = np.where(inside & numeric[:, None], cells - np.uint8(ord("0")), np.uint8(0)).astype(np.int64)
    return digits @ _PLACE_VALUES[18 - width:], missing, numeric | missing


def _fixed_width_strings(cells: np.ndarray) -> pa.Array:
    """String array from an ASCII uint8 array of shape (n, width), one value per row (one copy)."""
    n, width = cells.shape
    offsets = (np.arange(n + 1, dtype=np.int32) * width)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(cells)))


def _cells_as_binary(data: np.ndarray, start: np.ndarray, end: np.ndarray) -> pa.Array:
    """Binary array of the cells data[start:end] (in increasing, non-overlapping order), copied by pyarrow's take
    from a zero-copy array whose values alternate cell, gap, cell, gap."""
    bounds = np.empty(2 * len(start) + 1, np.int32)
    bounds[0:-1:2], bounds[1::2], bounds[-1] = start, end, end[-1] if len(end) else 0
    pieces = pa.BinaryArray.from_buffers(pa.binary(), 2 * len(start), [None, pa.py_buffer(bounds), pa.py_buffer(data)])
    return pieces.take(pa.array(np.arange(0, 2 * len(start), 2)))


def _tab_fast_path(index: BlockIndex, first_line: int, end_line: int, layout: Optional[TabLayout],
                   offset: str) -> tuple:
    r"""(records table, rejected line indices) for the lines first_line..end_line-1 of a header-free run.

    Works on the delimiter positions of the index instead of running a regex over every line: a line is taken when
    its first ``layout.needed`` fields are delimited by tabs, the last of them ending at a tab, the line end, or a
    '\r' right before the line end (what the old RE2 pattern ``^cell\tcell...(?:\t|\r?\n?$)`` accepted, cells free of
    tab, CR and LF), and its date, time and size cells are valid. Everything else goes back as rejected.
    """
    lines = np.arange(first_line, end_line)
    if layout is None or len(lines) == 0 or len({layout.day, layout.time, layout.size, layout.target}) < 4:
        return RECORD_SCHEMA.empty_table(), lines
    data, (positions, chars, newline_at) = index.data, index.delimiters
    # index into positions of each line's first delimiter
    first = np.empty(len(lines), np.int64)
    first[0] = newline_at[first_line - 1] + 1 if first_line else 0
    first[1:] = newline_at[first_line:end_line - 1] + 1
    last = len(positions) - 1
    ok = np.ones(len(lines), bool)
    for j in range(layout.needed - 1):   # a line with too few fields meets its own '\n' (never a tab) first
        ok &= chars[np.minimum(first + j, last)] == _TAB
    closing = np.minimum(first + layout.needed - 1, last)
    after = chars[closing]
    ok &= (after == _TAB) | (after == _LF) | ((after == _CR) & (positions[closing] + 1 == index.line_ends[lines]))
    rows = np.flatnonzero(ok)
    if len(rows) == 0:
        return RECORD_SCHEMA.empty_table(), lines
    first = first[rows]

    def cell(j: int) -> tuple:
        start = index.line_offsets[lines[rows]] if j == 0 else positions[first + j - 1] + 1
        return start, positions[first + j]

    day_cells, valid = _day_cells(data, *cell(layout.day))
    time_cells, time_ok = _time_cells(data, *cell(layout.time))
    sizes, missing, size_ok = _size_cells(data, *cell(layout.size))
    valid &= time_ok & size_ok
    target_start, target_end = cell(layout.target)
    if not valid.all():
        day_cells, time_cells, sizes, missing = day_cells[valid], time_cells[valid], sizes[valid], missing[valid]
        target_start, target_end = target_start[valid], target_end[valid]
        ok[:] = False
        ok[rows[valid]] = True
    n = len(sizes)
    zone = np.frombuffer(offset.encode(), np.uint8)
    table = pa.Table.from_arrays(
        [_fixed_width_strings(day_cells), _fixed_width_strings(time_cells),
         _fixed_width_strings(np.broadcast_to(zone, (n, len(zone)))), pa.array(sizes), pa.array(missing),
         _cells_as_binary(data, target_start, target_end)], schema=RECORD_SCHEMA)
    return table, lines[~ok]


def _make_tab_parse_indexed(offset: str = "+0000") -> Callable[[BlockIndex, ParserState], BlockResult]:
    """parse_indexed for a tab-separated format: the fast path over each run of lines between header lines, with the
    layout in force there; header lines themselves are left to parse_line."""
    def parse_indexed(index: BlockIndex, state: ParserState) -> BlockResult:
        tables, rejected, layout, start = [], [], state.layout, 0
        for header_line, header_layout in index.headers + [(index.n_lines, None)]:
            table, bad = _tab_fast_path(index, start, header_line, layout, offset)
            tables.append(table)
            rejected.append(bad)
            if header_line < index.n_lines:
                rejected.append(np.array([header_line]))
            layout, start = header_layout, header_line + 1
        return BlockResult(pa.concat_tables(tables), np.concatenate(rejected), index.n_lines)
    return parse_indexed


def _tsv_names(text: bytes) -> list:
    """Column names of a tsv header line: tab-separated, stripped, lower-cased."""
    return [n.strip().lower() for n in text.decode("utf-8", "replace").split("\t")]


def _tsv_header(text: bytes):
    names = _tsv_names(text)
    if _DATE.fullmatch(text[:10]) or not set(TSV_COLUMNS) <= set(names):
        return _NO_HEADER
    return layout_from_names(names, dict(zip(("day", "time", "size", "target"), TSV_COLUMNS)))


#: tsv data lines start with a digit, so only lines starting with a letter are read as possible header lines.
_TSV_HEADER_START = np.zeros(256, bool)
_TSV_HEADER_START[[*range(ord("A"), ord("Z") + 1), *range(ord("a"), ord("z") + 1)]] = True


def _tsv_default_layout() -> TabLayout:
    return layout_from_names(TSV_COLUMNS, dict(zip(("day", "time", "size", "target"), TSV_COLUMNS)))


def _cloudfront_names(text: bytes) -> list:
    """Column names of a ``#Fields:`` line (whitespace-separated after the prefix)."""
    return text[len(b"#Fields:"):].decode("utf-8", "replace").split()


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
        return min_fields <= len(fields) <= max_fields and bool(_DATE.fullmatch(fields[0])) and \
            bool(_TIME.fullmatch(fields[1]))
    return looks_like


# ---------------------------------------------------------------- space-separated formats with [time] (clf, s3)

_CLF_TIME = r"\[(\d{2})/([A-Za-z]{3})/(\d{4}):(" + _TIME_RE2 + r") ([+-]\d{4})\]"
_QUOTED = r'"((?:[^"\\]|\\.)*)"'
# The client part before the [time] varies (vhost, forwarded-for lists, bracketed IPv6, missing ident/user), and
# bytes-by-type needs none of it, so it is skipped up to the first '[' that opens a timestamp. Extra fields after
# the size (combined format, response times) are ignored.
CLF_PATTERN = r"^[^\n]*?" + _CLF_TIME + " " + _QUOTED + r" (\d{3}|-) (\d{1,18}|-)(?: [^\n]*)?[\r\n]*$"
# Fields are split on single spaces ([^ ]), not \S: RE2 and Python disagree on whether \v is whitespace.
S3_PATTERN = (r"^[^ ]+ [^ ]+ " + _CLF_TIME + r" [^ ]+ [^ ]+ [^ ]+ [^ ]+ ([^ ]+) (?:" + _QUOTED + r"|-) (\d{3}|-) [^ ]+ "
              r"(\d{1,18}|-)(?: [^\n]*)?[\r\n]*$")
_CLF_GROUPS = ("dd", "mon", "year", "time", "offset", "request", "status", "size")
_S3_GROUPS = ("dd", "mon", "year", "time", "offset", "key", "request", "status", "size")
_REQUEST_TARGET = re.compile(rb"^[^ ]+ ([^ ]+)")
_MONTH_NUMBER = {m.encode(): f"{i:02d}".encode() for i, m in enumerate(MONTHS, 1)}


def _target_of_request(request: bytes) -> bytes:
    """URL of a request line 'METHOD target [protocol]'; b'' for garbage such as '-' or '' (counted, no type)."""
    match = _REQUEST_TARGET.match(request)
    return match.group(1) if match else b""


def _bracket_record(day: bytes, mon: bytes, year: bytes, time: bytes, offset: bytes, size: bytes,
                    target: bytes) -> LineResult:
    month = _MONTH_NUMBER.get(mon)
    if month is None:
        return Malformed(f"bad month {_shown(mon)}")
    return _record(year + b"-" + month + b"-" + day, time, offset, size, target)


def _make_bracket_parse_line(regex: "re.Pattern", what: str) -> Callable[[bytes, ParserState], LineResult]:
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


def _make_regex_parse_indexed(pattern: str, s3: bool) -> Callable[[BlockIndex, ParserState], BlockResult]:
    named = _name_groups(pattern, _S3_GROUPS if s3 else _CLF_GROUPS)   # pyarrow's extract_regex needs names

    def parse_indexed(index: BlockIndex, state: ParserState) -> BlockResult:
        lines = _line_array(index)
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
        return BlockResult(_records_table(day, time, offset, extracted.field("size"), target, keep), rejected,
                           len(lines))
    return parse_indexed


def _name_groups(pattern: str, names) -> str:
    """Give the capturing groups of ``pattern`` the given names, in order (pyarrow's extract_regex needs names)."""
    out, i, k = [], 0, 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            out.append(pattern[i:i + 2])
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
        "tsv", "tab-separated 'date time size url' with a header line (the take-home's dummy CDN log)",
        _looks_like_tab(4, 6), _make_tab_parse_line(_tsv_header),
        _make_tab_index_block(_TSV_HEADER_START, _tsv_header), _make_tab_parse_indexed(),
        initial_state=lambda: ParserState(_tsv_default_layout())),
    "cloudfront": LogFormat(
        "cloudfront", "AWS CloudFront standard log (#Fields: header, tab-separated, UTC)",
        _looks_like_tab(15, 1000), _make_tab_parse_line(_cloudfront_header),
        _make_tab_index_block(_CLOUDFRONT_HEADER_START, _cloudfront_header), _make_tab_parse_indexed(),
        initial_state=lambda: ParserState(_cloudfront_default_layout())),
    "clf": LogFormat(
        "clf", "Apache/Nginx common or combined log format", lambda line: bool(_CLF_RE.match(_strip_eol(line))),
        _make_bracket_parse_line(_CLF_RE, "a common/combined log line ([time] \"request\" status size)"),
        _index_lines, _make_regex_parse_indexed(CLF_PATTERN, s3=False)),
    "s3": LogFormat(
        "s3", "Amazon S3 server access log", lambda line: bool(_S3_RE.match(_strip_eol(line))),
        _make_bracket_parse_line(_S3_RE, "an S3 server access log line"), _index_lines,
        _make_regex_parse_indexed(S3_PATTERN, s3=True)),
}

#: Order in which detection tries formats on a sample line: the most specific shapes first.
DETECTION_ORDER = ("cloudfront", "tsv", "s3", "clf")


def detect_format(sample_lines) -> Optional[str]:
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


def header_missing_columns(sample_lines, name: Optional[str]) -> Optional[tuple]:
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
