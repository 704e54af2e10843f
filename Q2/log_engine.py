"""The one engine that reads every format of ``log_formats.FORMATS``: blocks of log lines in, records out, with every
line accounted for (record, malformed with its reason, comment or header, blank).

The lines of a block become a pyarrow binary array (no copy). Pattern and header formats are matched by one regex per
layout with RE2 (``pyarrow.compute.extract_regex``); JSON lines are decoded with the json module. Then the same
vectorised checks validate every format's time, size and URL fields, so a format entry is data only.

Definitions:
- a blank line is empty or ASCII whitespace only; a comment line starts with '#' (header lines are comments);
- a record's day and time are as written in the log, with its UTC offset ('+0000' where the format has none);
- a malformed line names the first field that is wrong: layout, time, date, UTC offset or size.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from log_formats import FORMATS, TIME_LAYOUTS, FormatSpec, compile_pattern

#: Columns of the record table the engine returns (one row per usable log line).
RECORD_SCHEMA = pa.schema(
    [
        ("day", pa.string()),  # 'YYYY-MM-DD', calendar day as written in the log (its own offset)
        ("time", pa.string()),  # 'HH:MM:SS'
        ("utc_offset", pa.string()),  # '+HHMM'/'-HHMM'
        ("bytes", pa.int64()),  # response size in bytes, 0 where the log wrote '-'
        ("bytes_missing", pa.bool_()),  # True where the log wrote '-' for the size
        ("target", pa.binary()),  # URL or path as written (percent-encoded, may hold query/fragment, any bytes)
    ]
)
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_OK, _LAYOUT, _TIME, _DATE, _OFFSET, _SIZE, _HEADER = range(7)
_MAX_EPOCH = 253402300799  # 9999-12-31T23:59:59Z


@dataclass(frozen=True)
class ParserState:
    """What a file's earlier lines tell the engine about the next ones.

    columns: header formats: the column names in force (from the last header line, or the spec's default fields),
        None when there is none yet.
    header_line: file line number (from 1) of that header line, 0 for the default fields.
    lines_seen: lines of the file before the next block (makes malformed-line numbers file line numbers).
    """

    columns: tuple | None = None
    header_line: int = 0
    lines_seen: int = 0


@dataclass(frozen=True)
class Prefilter:
    """What a query can use, so that a speed path may count other valid lines as not matching without building
    their records: days ``day_low``..``day_high`` (yyyymmdd integers, already widened by a day each side when days
    are converted to a zone) and URLs ending in one of ``extensions`` (lower-case bytes with their dot, e.g. b'.jpg';
    () keeps every URL). Only the tab-separated speed path (:data:`KERNEL_MIN_BYTES`) uses it."""

    day_low: int = 0
    day_high: int = 99991231
    extensions: tuple = ()

    @functools.cached_property
    def extension_table(self) -> tuple:
        """(uint8 array of shape (k, width), int64 lengths of shape (k,)): the extensions, left-aligned."""
        width = max((len(e) for e in self.extensions), default=1)
        table = np.zeros((len(self.extensions), width), np.uint8)
        for row, ext in enumerate(self.extensions):
            table[row, : len(ext)] = np.frombuffer(ext, np.uint8)
        return table, np.array([len(e) for e in self.extensions], np.int64)


#: Runs of tab-separated lines (tsv, CloudFront) of at least this many bytes go through the numba kernel
#: ``tab_kernel.parse_tab_lines`` first when a Prefilter is given (it reads only the needed cells and skips lines
#: the query cannot use); smaller runs, such as the 7 MB dummy log, skip numba's import and compilation.
KERNEL_MIN_BYTES = 8 << 20


def initial_state(spec: FormatSpec) -> ParserState:
    """The state at the start of a file of format ``spec``."""
    return ParserState(tuple(spec.default_fields) or None)


@dataclass
class BlockParse:
    """What the engine made of one block of whole lines.

    records: table with :data:`RECORD_SCHEMA`, one row per usable line.
    n_lines, blank_lines, comment_lines (header lines included), malformed_lines: counts;
        n_lines == records.num_rows + blank_lines + comment_lines + malformed_lines.
    unusable_header_lines: the malformed lines under a header that lacks a needed column.
    dropped_records: valid lines left out of ``records`` because the Prefilter says the query cannot use them.
    malformed_examples: up to ``max_examples`` (file line number from 1, reason, line text with control characters
        escaped).
    state: the state after the block, for the next block of the same file.
    """

    records: pa.Table
    n_lines: int
    blank_lines: int = 0
    comment_lines: int = 0
    malformed_lines: int = 0
    unusable_header_lines: int = 0
    malformed_examples: list = field(default_factory=list)
    state: ParserState = field(default_factory=ParserState)
    dropped_records: int = 0


_WHITESPACE = np.zeros(256, bool)
_WHITESPACE[[9, 10, 11, 12, 13, 32]] = True


def index_block(block) -> _Lines:
    """The line index of a block of whole lines (bytes-like), for :func:`state_after` and :func:`parse_block`,
    so that a caller doing both finds the lines once."""
    return _Lines(block)


class _Lines:
    """A block of whole lines: line offsets, and (computed when first asked for) the lines as a binary array (each
    line keeps its '\\n') and the blank/comment masks."""

    def __init__(self, block):
        self.data = np.frombuffer(block, np.uint8)
        ends = np.flatnonzero(self.data == 10)
        if len(self.data) and self.data[-1] != 10:
            ends = np.append(ends, len(self.data))
        self.n = len(ends)
        offsets = np.zeros(self.n + 1, np.int64)
        np.minimum(ends + 1, len(self.data), out=offsets[1:])
        self.offsets = offsets
        self.first_byte = self.data[offsets[:-1]] if self.n else np.empty(0, np.uint8)

    @functools.cached_property
    def array(self) -> pa.Array:
        return pa.BinaryArray.from_buffers(
            pa.binary(), self.n, [None, pa.py_buffer(self.offsets.astype(np.int32)), pa.py_buffer(self.data)]
        )

    @functools.cached_property
    def blank(self) -> np.ndarray:
        """Empty or ASCII-whitespace-only lines: only lines starting with whitespace are looked at."""
        mask = np.zeros(self.n, bool)
        for i in np.flatnonzero(_WHITESPACE[self.first_byte]).tolist():
            mask[i] = not self.data[self.offsets[i] : self.offsets[i + 1]].tobytes().strip()
        return mask

    @functools.cached_property
    def comment(self) -> np.ndarray:
        return (self.first_byte == ord("#")) & ~self.blank

    def take(self, segment: np.ndarray) -> pa.Array:
        """The lines at the sorted indices ``segment`` (a zero-copy slice when they are consecutive)."""
        if len(segment) and segment[-1] - segment[0] + 1 == len(segment):
            return self.array.slice(int(segment[0]), len(segment))
        return self.array.take(pa.array(segment))

    def line(self, i: int) -> bytes:
        return self.data[self.offsets[i] : self.offsets[i + 1]].tobytes().rstrip(b"\r\n")


def _to_numpy(mask: pa.Array) -> np.ndarray:
    return pc.fill_null(mask, False).to_numpy(zero_copy_only=False)


def shown(text: bytes, width: int = 200) -> str:
    """Bytes from a log as safe text: UTF-8 (other bytes as \\xNN), control characters escaped, at most ``width``
    characters."""
    decoded = text[: 4 * width].decode("utf-8", "backslashreplace")[:width]
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in decoded)


# ---------------------------------------------------------------- header lines


def _header_names(spec: FormatSpec, text: bytes) -> tuple:
    if spec.header_prefix:
        return tuple(text[len(spec.header_prefix) :].decode("utf-8", "replace").split())
    return tuple(n.strip().lower() for n in text.decode("utf-8", "replace").split(spec.separator))


def is_header(spec: FormatSpec, text: bytes) -> bool:
    """Is ``text`` (one line, no '\\n') a header line of header format ``spec``?"""
    if spec.kind != "header":
        return False
    if spec.header_prefix:
        return text.startswith(spec.header_prefix.encode())
    names = set(_header_names(spec, text))  # a line of column names: not a date, names at least one needed column
    return not text[:1].isdigit() and any(set(options) & names for options in spec.columns.values())


def _find_headers(lines: _Lines, spec: FormatSpec) -> list:
    """[(line index, column names)] of the header lines of a block, in order."""
    if spec.kind != "header":
        return []
    if spec.header_prefix:  # a line starting with '#' is never blank
        candidates = np.flatnonzero(lines.first_byte == ord("#"))
    else:  # a tsv header: a line starting with a letter or space, not a digit or '#'
        first = lines.first_byte
        candidates = np.flatnonzero(((first < 48) | (first > 57)) & (first != ord("#")))
    found = []
    for i in candidates.tolist():
        text = lines.line(i)
        if is_header(spec, text):
            found.append((i, _header_names(spec, text)))
    return found


def state_after(block, spec: FormatSpec, state: ParserState, index: _Lines | None = None) -> ParserState:
    """The state after ``block`` (bytes-like, whole lines) when it starts in ``state``, without parsing it
    (``index``: its :func:`index_block`, when already made)."""
    lines = _Lines(block) if index is None else index
    return _state_after(lines, _find_headers(lines, spec), state)


def _state_after(lines: _Lines, headers: list, state: ParserState) -> ParserState:
    if headers:
        index, names = headers[-1]
        return ParserState(names, state.lines_seen + index + 1, state.lines_seen + lines.n)
    return ParserState(state.columns, state.header_line, state.lines_seen + lines.n)


def _layout(spec: FormatSpec, columns: tuple | None) -> tuple:
    """(role -> column index, None) for the columns in force, or (None, what is missing)."""
    if columns is None:
        return None, f"no {spec.header_prefix or 'header'} line before this line"
    found, missing = {}, []
    for role, options in spec.columns.items():
        index = next((columns.index(name) for name in options if name in columns), None)
        if index is None:
            missing.append("/".join(options))
        else:
            found[role] = index
    if missing:
        return None, f"has no {' or '.join(missing)} column"
    return found, ""


@functools.lru_cache(maxsize=64)
def _header_regex(separator: str, positions: tuple) -> str:
    """Regex over a delimited line capturing the columns at ``positions`` ((index, role) pairs) by role name."""
    if separator == "\t":
        cell, sep = r"[^\t\r\n]*", r"\t"
    else:  # runs of spaces; a double-quoted cell may hold spaces
        cell, sep = r'(?:"[^"\r\n]*"|[^ \r\n]+)', " +"
    role_at = dict(positions)
    cells = [f"(?P<{role_at[i]}>{cell})" if i in role_at else cell for i in range(max(role_at) + 1)]
    # the rest of the line is not read: no end anchor, so RE2 stops after the last needed cell
    return "^" + sep.join(cells) + r"(?:[\t \r\n]|$)"


@functools.lru_cache(maxsize=64)
def _pattern_regex(spec: FormatSpec) -> str:
    return compile_pattern(spec.pattern, spec.space_runs)[0]


# ---------------------------------------------------------------- parsing a block


def parse_block(
    block,
    spec: FormatSpec,
    state: ParserState | None = None,
    max_examples: int = 5,
    prefilter: Prefilter | None = None,
    index: _Lines | None = None,
) -> BlockParse:
    """Records and line accounting of one block of whole lines (bytes-like; the last line may lack its '\\n').

    spec: the format (an entry of log_formats.FORMATS or a user-defined spec).
    state: the state after the file's previous block (:func:`initial_state` for the first block).
    prefilter: what the query can use; valid lines it rules out may be left out of the records and counted in
        ``dropped_records`` instead (None: every valid line is a record).
    index: the block's :func:`index_block`, when already made.
    Returns a :class:`BlockParse`; its ``state`` is the state for the next block.
    n_lines == records + dropped_records + blank + comment + malformed.
    """
    state = initial_state(spec) if state is None else state
    lines = _Lines(block) if index is None else index
    headers = _find_headers(lines, spec)
    content = np.flatnonzero(~lines.blank & ~lines.comment)
    if headers and not spec.header_prefix:  # tsv header lines are content-like: count them as comments
        header_index = np.array([i for i, _ in headers])
        content = np.setdiff1d(content, header_index)
    result = BlockParse(
        RECORD_SCHEMA.empty_table(),
        lines.n,
        blank_lines=int(lines.blank.sum()),
        comment_lines=lines.n - int(lines.blank.sum()) - len(content),
        state=_state_after(lines, headers, state),
    )
    tables, examples = [], []
    for segment, columns, header_line in _segments(content, headers, state):
        if len(segment) == 0:
            continue
        table, codes, reasons, dropped = _parse_segment(
            lines, segment, spec, columns, header_line, max_examples, prefilter
        )
        tables.append(table)
        result.dropped_records += dropped
        bad = np.flatnonzero(codes != _OK)
        result.malformed_lines += len(bad)
        result.unusable_header_lines += int(np.count_nonzero(codes == _HEADER))
        for k in bad[: max(0, max_examples - len(examples))].tolist():
            examples.append((int(segment[k]), reasons.get(k, "malformed")))
    if tables:
        result.records = pa.concat_tables(tables)
    examples.sort()
    result.malformed_examples = [(state.lines_seen + i + 1, reason, shown(lines.line(i))) for i, reason in examples]
    return result


def _segments(content: np.ndarray, headers: list, state: ParserState):
    """(content line indices, columns in force, header file line number) for each run between header lines."""
    columns, header_line, start = state.columns, state.header_line, 0
    for index, names in headers + [(None, None)]:
        stop = len(content) if index is None else int(np.searchsorted(content, index))
        yield content[start:stop], columns, header_line
        if index is not None:
            columns, header_line, start = names, state.lines_seen + index + 1, stop


def _parse_segment(lines, segment, spec, columns, header_line, max_examples, prefilter=None) -> tuple:
    """(records, codes per line (int8), {position: reason} for the first malformed lines, number of valid lines
    dropped by ``prefilter``) of content lines ``segment`` (indices into the block), all under one layout."""
    n = len(segment)
    if spec.kind == "json":
        texts = lines.take(segment)
        raw, json_reasons = _json_fields(texts.to_pylist(), spec)
        table, codes, reasons = _assemble(raw, n, spec, max_examples)
        for k in reasons:
            reasons[k] = json_reasons.get(k, reasons[k])
        return table, codes, reasons, 0
    if spec.kind == "header":
        found, problem = _layout(spec, columns)
        if found is None:
            where = f"the header at line {header_line} " if header_line else "the default columns "
            reason = problem if columns is None else where + problem
            codes = np.full(n, _HEADER, np.int8)
            return RECORD_SCHEMA.empty_table(), codes, {k: reason for k in range(max_examples)}, 0
        if (
            prefilter is not None
            and spec.separator == "\t"
            and set(found) == {"date", "clock", "size", "url"}
            and len(set(found.values())) == 4
            and lines.offsets[segment[-1] + 1] - lines.offsets[segment[0]] >= KERNEL_MIN_BYTES
        ):
            return _tab_kernel_segment(lines, segment, spec, found, columns, header_line, max_examples, prefilter)
        regex = _header_regex(spec.separator, tuple(sorted((i, r) for r, i in found.items())))
    else:
        regex = _pattern_regex(spec)
    extracted = pc.extract_regex(lines.take(segment), regex)
    raw = {name: extracted.field(name) for name in (extracted.type[i].name for i in range(extracted.type.num_fields))}
    if spec.kind == "header" and spec.separator == " ":
        raw = {role: _unquote(values) for role, values in raw.items()}
    raw["_matched"] = pc.is_valid(extracted)
    return (*_assemble(raw, n, spec, max_examples), 0)


def _tab_kernel_segment(lines, segment, spec, found, columns, header_line, max_examples, prefilter) -> tuple:
    """_parse_segment through the numba kernel: the lines it keeps become records, the lines it drops are counted,
    the lines it rejects go through the generic path (so every verdict and reason is the generic one)."""
    import tab_kernel  # numba takes a good part of a second to import: only for large tab-separated runs

    starts = lines.offsets[segment]
    following = lines.offsets[segment + 1]
    ends = following - (lines.data[following - 1] == 10)
    ext_table, ext_lengths = prefilter.extension_table
    verdicts, days, times, sizes, missing, target_starts, target_ends = tab_kernel.parse_tab_lines(
        lines.data,
        starts,
        ends,
        found["date"],
        found["clock"],
        found["size"],
        found["url"],
        max(found.values()) + 1,
        prefilter.day_low,
        prefilter.day_high,
        ext_table,
        ext_lengths,
        tab_kernel.DAYS_IN_MONTH,
    )
    target_offsets, target_values = tab_kernel.gather_cells(lines.data, target_starts, target_ends)
    m = len(sizes)
    zone = np.frombuffer(spec.default_offset.encode(), np.uint8)
    kept = pa.Table.from_arrays(
        [
            _fixed_width_strings(days),
            _fixed_width_strings(times),
            _fixed_width_strings(np.broadcast_to(zone, (m, len(zone)))),
            pa.array(sizes),
            pa.array(missing),
            pa.BinaryArray.from_buffers(
                pa.binary(), m, [None, pa.py_buffer(target_offsets), pa.py_buffer(target_values)]
            ),
        ],
        schema=RECORD_SCHEMA,
    )
    codes = np.zeros(len(segment), np.int8)
    rejected = np.flatnonzero(verdicts == tab_kernel.REJECTED)
    tables, reasons = [kept], {}
    if len(rejected):
        table, rejected_codes, rejected_reasons, _ = _parse_segment(
            lines, segment[rejected], spec, columns, header_line, max_examples
        )
        tables.append(table)
        codes[rejected] = rejected_codes
        reasons = {int(rejected[k]): reason for k, reason in rejected_reasons.items()}
    dropped = int(np.count_nonzero(verdicts == tab_kernel.DROPPED))
    return pa.concat_tables(tables), codes, reasons, dropped


def _fixed_width_strings(cells: np.ndarray) -> pa.Array:
    """String array from an ASCII uint8 array of shape (n, width), one value per row (one copy)."""
    n, width = cells.shape
    offsets = np.arange(n + 1, dtype=np.int32) * width
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(cells)))


def _unquote(values: pa.Array) -> pa.Array:
    if not pc.any(pc.starts_with(values, '"')).as_py():
        return values
    return pc.replace_substring_regex(values, r'^"([\x00-\xff]*)"$', r"\1")


def _json_fields(texts: list, spec: FormatSpec) -> tuple:
    """Raw role columns (binary arrays, null where absent) of JSON lines, and {position: reason} of bad lines."""
    values = {role: [None] * len(texts) for role in spec.columns}
    matched = [False] * len(texts)
    reasons = {}
    for k, text in enumerate(texts):
        try:
            obj = json.loads(text) if text.lstrip()[:1] == b"{" else None
        except ValueError:
            reasons[k] = "not a JSON object"
            continue
        if not isinstance(obj, dict):
            reasons[k] = "not a JSON object"
            continue
        missing = []
        for role, paths in spec.columns.items():
            value = next((v for v in (_lookup(obj, p) for p in paths) if v is not None), None)
            if value is None or isinstance(value, (dict, list, bool)):
                missing.append("/".join(paths))
            else:
                values[role][k] = (value if isinstance(value, str) else json.dumps(value)).encode("utf-8", "replace")
        if missing:
            reasons[k] = f"no {' or '.join(missing)} key"
        else:
            matched[k] = True
    raw = {role: pa.array(v, pa.binary()) for role, v in values.items()}
    raw["_matched"] = pa.array(matched, pa.bool_())
    return raw, reasons


def _lookup(obj: dict, path: str):
    for part in path.split("."):
        if not isinstance(obj, dict) or part not in obj:
            return None
        obj = obj[part]
    return obj


# ---------------------------------------------------------------- validating fields (every format)

_REQUEST_TARGET = r"^[^ ]+ (?P<t>[^ ]+)"
_MONTH_NUMBERS = pa.array([f"{i:02d}".encode() for i in range(1, 13)], pa.binary())
_MONTH_NAMES = pa.array([m.encode() for m in MONTHS], pa.binary())


def _assemble(raw: dict, n: int, spec: FormatSpec, max_examples: int) -> tuple:
    """(records table, codes int8 array of shape (n,), {position: reason} for the first malformed rows) from raw
    role columns (binary, null where the line did not match; ``_matched`` the match mask)."""
    matched = _to_numpy(raw["_matched"])
    if "time" in raw:
        day, clock, offset, time_ok = _parse_time(raw["time"], spec.time_layout, spec.default_offset)
        time_source = raw["time"]
    else:
        date_parts = pc.extract_regex(raw["date"], "^" + TIME_LAYOUTS["date"] + "$")
        clock_parts = pc.extract_regex(raw["clock"], "^" + TIME_LAYOUTS["clock"] + "$")
        day = pc.binary_join_element_wise(*(date_parts.field(g) for g in ("y", "m", "d")), b"-")
        clock = clock_parts.field("hms")
        offset = pa.repeat(pa.scalar(spec.default_offset.encode(), pa.binary()), n)
        time_ok = pc.and_(pc.is_valid(date_parts), pc.is_valid(clock_parts))
        time_source = pc.if_else(pc.is_valid(date_parts), raw["clock"], raw["date"])
    time_ok = _to_numpy(time_ok) & _to_numpy(pc.match_substring_regex(clock, r"^(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d$"))
    day_ok = _valid_days(day)
    offset_ok = _to_numpy(pc.match_substring_regex(offset, r"^[+-](?:0\d|1[0-4])[0-5]\d$"))
    size = raw["size"]
    size_ok = _to_numpy(pc.match_substring_regex(size, r"^(?:\d{1,18}|-)$"))
    codes = np.select(
        [~matched, ~time_ok, ~day_ok, ~offset_ok, ~size_ok],
        [_LAYOUT, _TIME, _DATE, _OFFSET, _SIZE],
        _OK,
    ).astype(np.int8)
    reasons = {}
    for k in np.flatnonzero(codes != _OK)[:max_examples].tolist():
        reasons[k] = _reason(int(codes[k]), spec, time_source, day, offset, size, k)
    keep = pa.array(codes == _OK)
    target = _target(raw)
    missing = pc.equal(size, b"-")
    table = pa.Table.from_arrays(
        [
            pc.filter(day, keep).cast(pa.string()),
            pc.filter(clock, keep).cast(pa.string()),
            pc.filter(offset, keep).cast(pa.string()),
            pc.filter(pc.if_else(missing, b"0", size), keep).cast(pa.string()).cast(pa.int64()),
            pc.fill_null(pc.filter(missing, keep), False),
            pc.filter(target, keep),
        ],
        schema=RECORD_SCHEMA,
    )
    return table, codes, reasons


def _reason(code: int, spec: FormatSpec, time_source, day, offset, size, k: int) -> str:
    def value(array) -> str:
        item = array[k].as_py()
        return "'" + shown(item or b"", 40) + "'"

    if code == _LAYOUT:
        return f"does not match the {spec.name} layout"
    if code == _TIME:
        return f"bad time {value(time_source)}" + (f" (layout {spec.time_layout})" if spec.time_layout else "")
    if code == _DATE:
        return f"bad date {value(day)}"
    if code == _OFFSET:
        return f"bad UTC offset {value(offset)}"
    return f"bad size {value(size)}"


def _parse_time(values: pa.Array, layout: str, default_offset: str) -> tuple:
    """(day 'YYYY-MM-DD', clock 'HH:MM:SS', offset '+HHMM', parsed mask) as binary arrays from raw time fields."""
    n = len(values)
    if layout == "epoch":
        parts = pc.extract_regex(values, "^" + TIME_LAYOUTS["epoch"] + "$")
        ok = _to_numpy(pc.is_valid(parts))
        digits = pc.if_else(pa.array(ok), parts.field("epoch"), b"0").cast(pa.string())
        number = digits.cast(pa.uint64()).to_numpy(zero_copy_only=False).astype(np.float64)
        scale = np.select([number >= 1e17, number >= 1e14, number >= 1e11], [1e9, 1e6, 1e3], 1.0)
        seconds = np.floor(number / scale)
        ok &= seconds <= _MAX_EPOCH
        stamps = pa.array(np.where(ok, seconds, 0).astype(np.int64), pa.timestamp("s"))
        day = pc.strftime(stamps, format="%Y-%m-%d").cast(pa.binary())
        clock = pc.strftime(stamps, format="%H:%M:%S").cast(pa.binary())
        return day, clock, pa.repeat(pa.scalar(b"+0000", pa.binary()), n), pa.array(ok)
    regex = TIME_LAYOUTS[layout]
    parts = pc.extract_regex(values, "^" + regex + "$")
    if "(?P<mon>" in regex:
        month = pc.index_in(parts.field("mon"), value_set=_MONTH_NAMES)
        mm = _MONTH_NUMBERS.take(pc.fill_null(month, 0))
        ok = pc.and_kleene(pc.is_valid(parts), pc.is_valid(month))
    else:
        mm, ok = parts.field("m"), pc.is_valid(parts)
    day = pc.binary_join_element_wise(parts.field("y"), mm, parts.field("d"), b"-")
    if "(?P<off>" in regex:
        off = pc.fill_null(parts.field("off"), b"")
        off = pc.replace_substring(off, b":", b"")
        off = pc.if_else(pc.equal(off, b"Z"), b"+0000", off)
        off = pc.if_else(pc.equal(off, b""), default_offset.encode(), off)
    else:
        off = pa.repeat(pa.scalar(default_offset.encode(), pa.binary()), n)
    return day, parts.field("hms"), off, ok


def _valid_days(day: pa.Array) -> np.ndarray:
    """True where ``day`` is a real 'YYYY-MM-DD' date; a block holds few distinct days, so Python checks those."""
    good = []
    for d in pc.unique(day).to_pylist():
        if d is None or len(d) != 10:
            continue
        try:
            dt.date.fromisoformat(d.decode("ascii"))
        except (ValueError, UnicodeDecodeError):
            continue
        good.append(d)
    return _to_numpy(pc.is_in(day, value_set=pa.array(good, pa.binary())))


def _target(raw: dict) -> pa.Array:
    """The URL of each row: the url field, else the target of the request line, else the S3 key (when not '-')."""
    if "url" in raw:
        return pc.fill_null(raw["url"], b"")
    request = pc.fill_null(raw["request"], b"")
    target = pc.fill_null(pc.struct_field(pc.extract_regex(request, _REQUEST_TARGET), [0]), b"")
    if "key" in raw:
        key = pc.fill_null(raw["key"], b"-")
        target = pc.if_else(pc.and_(pc.equal(target, b""), pc.not_equal(key, b"-")), key, target)
    return target


# ---------------------------------------------------------------- detection (reads the same table)


def detect_format(sample: bytes, formats: dict = FORMATS) -> str | None:
    """Name of the format of a file judged from its first lines (``sample``: bytes of whole lines, BOM removed),
    or None when no entry reads any of them.

    Every entry of ``formats`` parses the sample; a file with ``#Fields:`` lines goes to a format that reads them;
    then the entry with the most records wins, then (header formats) the one whose header and separator fit the
    most lines (so a W3C file whose header lacks sc-bytes is still recognised as W3C, to be refused with that
    reason), then the one that recognises the most header lines; ties go to the earlier entry.
    """
    lines = sample.split(b"\n")
    fields_lines = any(line.startswith(b"#Fields:") for line in lines)
    best, best_score = None, (0, 0, 0, 0)
    for name, spec in formats.items():
        parsed = parse_block(sample, spec, initial_state(spec), max_examples=0)
        headers = sum(is_header(spec, line.rstrip(b"\r")) for line in lines) if spec.kind == "header" else 0
        # a file with '#Fields:' lines goes to a format that reads them
        reads_fields = spec.kind == "header" and spec.header_prefix == "#Fields:"
        score = (int(reads_fields or not fields_lines), parsed.records.num_rows, _header_fit(sample, spec), headers)
        if score[1:] > (0, 0, 0) and score > best_score:
            best, best_score = name, score
    return best


def _header_fit(sample: bytes, spec: FormatSpec) -> int:
    """Content lines after a header line of ``spec`` whose separator is the spec's (tab, or no tab for W3C)."""
    if spec.kind != "header" or not spec.header_prefix:
        return 0
    fit, under_header = 0, False
    for text in sample.split(b"\n"):
        if text.startswith(spec.header_prefix.encode()):
            under_header = True
        elif under_header and text.strip() and not text.startswith(b"#"):
            fit += (b"\t" in text) == (spec.separator == "\t")
    return fit
