"""Streaming scan of access logs: bytes served by file type per day, with every line accounted for.

A file is read in blocks of whole lines (16 MiB by default), so memory stays flat however large the input is. Each
block goes through the engine (``log_engine.parse_block``, by the file's format spec) and its records through
:func:`select_requests`; two worker threads parse blocks while the main thread reads the next one. Totals are Python
integers, so sums are exact. :func:`count_lines` and :func:`merge` are the same work for callers that bring their
own batches of lines (Spark).

Definitions (see Q2/README.md):
- extension: of the URL path: scheme and host, query string and fragment stripped, then percent-decoded once,
  last path segment's text after its last '.', ASCII letters/digits/_+- only, compared case-insensitively;
- day: the calendar day written in the log (its own UTC offset), or the day in ``tz`` when one is given; the range
  is whole days, inclusive at both ends;
- bytes: the response size field; '-' counts as 0 and is counted in ``bytes_missing``.
"""

from __future__ import annotations

import bz2
import collections
import dataclasses
import datetime as dt
import functools
import gzip
import io
import lzma
import re
import sys
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

import log_engine
from log_engine import ParserState
from log_formats import FORMATS, FormatSpec

BLOCK_SIZE = 16 * 1024 * 1024
#: Extensions that name the same file type; ``exact_ext`` turns the aliasing off.
EXTENSION_ALIASES = {
    "jpg": {"jpeg"},
    "jpeg": {"jpg"},
    "tif": {"tiff"},
    "tiff": {"tif"},
    "htm": {"html"},
    "html": {"htm"},
    "mpg": {"mpeg"},
    "mpeg": {"mpg"},
}
_INT64_MAX = 2**63 - 1


class LogInputError(ValueError):
    """A user-side problem with an input file (unknown format, not gzip, ...); the message names the file."""


@dataclass(frozen=True)
class BytesQuery:
    """What to count: requests for files with one of ``extensions`` on days ``start``..``end`` (inclusive).

    extensions: names without the dot, any case ('jpg', '.PNG'); jpg also matches jpeg unless ``exact_ext``.
    tz: IANA zone name; when given, each request's day is taken in that zone instead of the log's own offset.
    Raises ValueError if no extension is given or ``start`` is after ``end``.
    """

    extensions: tuple = ("jpg",)
    start: dt.date = dt.date(2017, 8, 24)
    end: dt.date = dt.date(2017, 8, 25)
    exact_ext: bool = False
    tz: str | None = None

    def __post_init__(self):
        if not self.extensions:
            raise ValueError("at least one extension is needed")
        if self.start > self.end:
            raise ValueError(f"start {self.start} is after end {self.end}")

    def wanted_extensions(self) -> frozenset:
        """Lower-case extensions (no dot) that count, aliases included unless ``exact_ext``."""
        wanted = {e.lower().lstrip(".") for e in self.extensions}
        if not self.exact_ext:
            wanted |= {alias for e in wanted for alias in EXTENSION_ALIASES.get(e, ())}
        return frozenset(wanted)


@dataclass
class FileAccounting:
    """What happened to every line of one input: lines_read == used + not_matching + malformed + comment + blank.

    unusable_header_lines: the malformed lines under a header that lacks a needed column (e.g. no sc-bytes).
    error: set when reading stopped early (a truncated or corrupt compressed file, an I/O error) or the file was
        skipped; the counts are those of the lines read before.
    """

    source: str
    format: str
    lines_read: int = 0
    lines_used: int = 0
    lines_not_matching: int = 0
    malformed_lines: int = 0
    comment_lines: int = 0
    blank_lines: int = 0
    unusable_header_lines: int = 0
    error: str | None = None
    malformed_examples: list = field(default_factory=list)  # (line number from 1, reason, line text escaped)

    COUNTS = (
        "lines_read",
        "lines_used",
        "lines_not_matching",
        "malformed_lines",
        "comment_lines",
        "blank_lines",
        "unusable_header_lines",
    )

    def is_balanced(self) -> bool:
        return self.lines_read == (
            self.lines_used + self.lines_not_matching + self.malformed_lines + self.comment_lines + self.blank_lines
        )

    def as_dict(self) -> dict:
        out = {k: v for k, v in self.__dict__.items() if k not in ("malformed_examples", "source", "error")}
        out["source"] = printable(self.source.encode(), 500)
        if self.error is not None:
            out["error"] = self.error
        return out

    def add(self, other: FileAccounting, max_examples: int = 5) -> None:
        """Fold in the counts of another part of the same file; the examples kept are the first by line number."""
        for key in self.COUNTS:
            setattr(self, key, getattr(self, key) + getattr(other, key))
        self.malformed_examples = sorted(self.malformed_examples + other.malformed_examples)[:max_examples]
        self.error = self.error or other.error


def _zero_pair() -> list:
    return [0, 0]


def _pairs() -> collections.defaultdict:
    return collections.defaultdict(_zero_pair)


@dataclass
class BytesSummary:
    """Totals over the matching requests of all inputs. Byte counts are exact Python ints.

    by_day / by_extension: key -> [bytes, requests]. Bytes per URL path are kept as pyarrow tables of
    (path, bytes) and re-aggregated as they grow, so memory grows with distinct URL paths, not with lines.
    """

    total_bytes: int = 0
    requests: int = 0
    bytes_missing: int = 0
    by_day: dict = field(default_factory=_pairs)
    by_extension: dict = field(default_factory=_pairs)
    url_tables: list = field(default_factory=list)
    files: list = field(default_factory=list)

    @property
    def malformed_lines(self) -> int:
        return sum(f.malformed_lines for f in self.files)

    def add(self, other: BytesSummary) -> None:
        """Fold ``other`` (a block's or a file's summary) into this one."""
        self.total_bytes += other.total_bytes
        self.requests += other.requests
        self.bytes_missing += other.bytes_missing
        for mine, theirs in ((self.by_day, other.by_day), (self.by_extension, other.by_extension)):
            for key, (nbytes, count) in theirs.items():
                mine[key][0] += nbytes
                mine[key][1] += count
        self.url_tables.extend(other.url_tables)
        # Re-aggregate once the pending rows outnumber the distinct paths seen so far: memory stays within about
        # twice the distinct-path table.
        pending = sum(t.num_rows for t in self.url_tables[1:])
        if self.url_tables and pending > max(500_000, self.url_tables[0].num_rows):
            self.url_tables = [self._bytes_by_url()]
        for theirs in other.files:  # parts of one file (Spark batches, blocks) become one accounting
            mine = next((f for f in self.files if f.source == theirs.source and f.format == theirs.format), None)
            if mine is None:
                self.files.append(dataclasses.replace(theirs, malformed_examples=list(theirs.malformed_examples)))
            else:
                mine.add(theirs)

    def _bytes_by_url(self) -> pa.Table:
        # No per-URL sum can exceed the grand total; past 2**63 - 1 use decimal128(38, 0), which cannot wrap.
        exact = pa.schema(
            [("path", pa.binary()), ("bytes", pa.int64() if self.total_bytes <= _INT64_MAX else pa.decimal128(38, 0))]
        )
        tables = [t.cast(exact) for t in self.url_tables]
        if not tables:
            return exact.empty_table()
        return pa.concat_tables(tables).group_by("path").aggregate([("bytes", "sum")]).rename_columns(exact.names)

    def top_urls(self, n: int = 10) -> list:
        """The ``n`` URL paths with the most bytes, as (path text, bytes), ties broken by path.

        Paths are shown as UTF-8 with other bytes and control characters escaped (\\xNN).
        """
        table = self._bytes_by_url()  # paths are already decoded (per block, in summarise_selection)
        if table.num_rows and n > 0:  # select_k: top n without sorting every path; ties broken by path
            table = table.take(
                pc.select_k_unstable(
                    table, k=min(n, table.num_rows), sort_keys=[("bytes", "descending"), ("path", "ascending")]
                )
            )
        else:
            table = table.slice(0, 0)
        return [
            (printable(p, 2000), int(b))
            for p, b in zip(table.column("path").to_pylist(), table.column("bytes").to_pylist())
        ]

    def as_dict(self) -> dict:
        """JSON-ready view (days in order, URL paths as text)."""
        return {
            "total_bytes": self.total_bytes,
            "total_human": human_bytes(self.total_bytes),
            "requests": self.requests,
            "malformed_lines": self.malformed_lines,
            "bytes_missing": self.bytes_missing,
            "by_day": {d: {"bytes": b, "requests": r} for d, (b, r) in sorted(self.by_day.items())},
            "by_extension": {e: {"bytes": b, "requests": r} for e, (b, r) in sorted(self.by_extension.items())},
            "top_urls": [{"url": u, "bytes": b} for u, b in self.top_urls()],
            "files": [f.as_dict() for f in self.files],
        }


def human_bytes(n: int) -> str:
    """``n`` bytes in binary units, e.g. 1536 -> '1.50 KiB'."""
    value, unit = float(n), "B"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(value) < 1024 or unit == "PiB":
            break
        value /= 1024
    return f"{n} B" if unit == "B" else f"{value:.2f} {unit}"


# ---------------------------------------------------------------- selecting matching requests (vectorised)


def url_paths(targets: pa.Array) -> pa.Array:
    """URL paths of logged targets (binary): scheme and host, query string and fragment removed; not decoded.

    Regexes on pyarrow binary arrays work byte by byte, so non-UTF-8 bytes (Big5 paths) pass through unchanged.
    """
    # The regex replacements copy every value; CDN logs usually hold bare paths without query, so a plain
    # substring search first skips them when nothing would be replaced.
    paths = targets
    if pc.any(pc.match_substring(targets, "://")).as_py():
        paths = pc.replace_substring_regex(paths, r"^[A-Za-z][A-Za-z0-9+.\-]*://[^/?#]*", b"")
    if pc.any(pc.match_substring_regex(paths, "[?#]")).as_py():
        paths = pc.replace_substring_regex(paths, r"[?#][\x00-\xff]*$", b"")
    return paths


def percent_decode(paths: pa.Array) -> pa.Array:
    """``paths`` with %XX sequences decoded once (values without '%' are returned unchanged).

    Same result as urllib's unquote_to_bytes on each value: each '%' followed by two hex digits inside the same
    value becomes that byte, anything else is kept. Done with numpy over the array's data buffer (no Python loop
    per value: the benchmark log has ~50,000 distinct encoded paths, and worker threads keep the GIL free).
    """
    return _percent_decode_all(paths) if pc.any(pc.match_substring(paths, "%")).as_py() else paths


_HEX_VALUE = np.full(256, -1, np.int16)  # byte -> its hex digit value, -1 for non-hex bytes
for _i, _c in enumerate(b"0123456789abcdef"):
    _HEX_VALUE[_c] = _i
for _i, _c in enumerate(b"ABCDEF"):
    _HEX_VALUE[_c] = 10 + _i


def _percent_decode_all(paths: pa.Array) -> pa.Array:
    """Every value of ``paths`` (binary) percent-decoded once; nulls stay null."""
    paths = paths.cast(pa.binary())
    if paths.null_count:
        filled = _percent_decode_all(pc.fill_null(paths, b""))
        return pc.if_else(pc.is_null(paths), pa.scalar(None, pa.binary()), filled)
    if paths.offset:
        paths = pa.concat_arrays([paths])  # buffers re-based at offset 0
    n = len(paths)
    offsets = np.frombuffer(paths.buffers()[1], np.int32, n + 1)
    data_buffer = paths.buffers()[2]
    data = np.frombuffer(data_buffer, np.uint8) if data_buffer is not None else np.empty(0, np.uint8)
    data = data[offsets[0] : offsets[-1]]
    offsets = offsets - offsets[0]
    pct = np.flatnonzero(data[: max(0, len(data) - 2)] == ord("%"))
    hi, lo = _HEX_VALUE[data[pct + 1]], _HEX_VALUE[data[pct + 2]]
    ends = offsets[np.searchsorted(offsets, pct, side="right")]  # end of the value holding each '%'
    good = (hi >= 0) & (lo >= 0) & (pct + 2 < ends)
    pct, hi, lo = pct[good], hi[good], lo[good]
    if len(pct) == 0:
        return paths
    out = data.copy()
    out[pct] = (hi * 16 + lo).astype(np.uint8)
    keep = np.ones(len(data), bool)
    keep[pct + 1] = False
    keep[pct + 2] = False
    new_offsets = (offsets - 2 * np.searchsorted(pct, offsets, side="left")).astype(np.int32)
    return pa.BinaryArray.from_buffers(pa.binary(), n, [None, pa.py_buffer(new_offsets), pa.py_buffer(out[keep])])


def url_extensions(paths: pa.Array) -> pa.Array:
    """Lower-case extension of each URL path (binary, already percent-decoded); '' when there is none."""
    found = pc.struct_field(pc.extract_regex(paths, r"\.(?P<ext>[A-Za-z0-9_+\-]{1,32})$"), [0])
    return pc.utf8_lower(pc.fill_null(found, b"").cast(pa.string()))


def local_days(records: pa.Table, tz: str | None) -> pa.Array:
    """Calendar day of each record: as written in the log, or converted to zone ``tz`` using its UTC offset."""
    if tz is None:
        return records.column("day")
    stamps = pc.binary_join_element_wise(
        records.column("day"), "T", records.column("time"), records.column("utc_offset"), ""
    )
    utc = pc.strptime(stamps, format="%Y-%m-%dT%H:%M:%S%z", unit="s")
    return pc.strftime(pc.local_timestamp(utc.cast(pa.timestamp("s", tz=tz))), format="%Y-%m-%d")


def _may_match(targets: pa.Array, wanted: frozenset) -> pa.Array:
    """Cheap superset of the targets whose extension is wanted: ends in '.ext' before any ?/#, or has a '%'
    (one regex pass). Lets the exact (slower) path/extension work run on candidate rows only.
    """
    alternatives = "|".join(sorted(re.escape(e) for e in wanted))
    return pc.match_substring_regex(targets, rf"\.(?:{alternatives})(?:[?#][\x00-\xff]*)?$|%", ignore_case=True)


def select_requests(records: pa.Table, query: BytesQuery) -> pa.Table:
    """The records that match ``query``, as a table of (day, ext, path, bytes, bytes_missing); the path is decoded
    ('/a%20b.jpg' and '/a b.jpg' are one URL).

    records: table with log_formats.RECORD_SCHEMA. Day filtering comes first so URL work is done on fewer rows.
    """
    wanted = query.wanted_extensions()
    days = local_days(records, query.tz)
    in_range = pc.and_(pc.greater_equal(days, query.start.isoformat()), pc.less_equal(days, query.end.isoformat()))
    kept = records.select(["target", "bytes", "bytes_missing"]).append_column("local_day", days).filter(in_range)
    kept = kept.filter(_may_match(kept.column("target").combine_chunks(), wanted))
    paths = percent_decode(url_paths(kept.column("target").combine_chunks()))
    exts = url_extensions(paths)
    match = pc.is_in(exts, value_set=pa.array(sorted(wanted), pa.string()))
    return pa.table(
        {
            "day": pc.filter(kept.column("local_day"), match),
            "ext": pc.filter(exts, match),
            "path": pc.filter(paths, match),
            "bytes": pc.filter(kept.column("bytes"), match),
            "bytes_missing": pc.filter(kept.column("bytes_missing"), match),
        }
    )


def summarise_selection(selected: pa.Table) -> BytesSummary:
    """Totals and breakdowns of a :func:`select_requests` table."""
    summary = BytesSummary()
    if selected.num_rows == 0:
        return summary
    largest = pc.max(selected.column("bytes")).as_py()
    # int64 sums could wrap on absurd sizes; slices small enough that no partial sum can exceed 2**63 - 1.
    step = max(1, _INT64_MAX // max(largest, 1))
    for start in range(0, selected.num_rows, step):
        part = selected.slice(start, step)
        summary.total_bytes += pc.sum(part.column("bytes")).as_py()
        summary.requests += part.num_rows
        summary.bytes_missing += pc.sum(part.column("bytes_missing").cast(pa.int64())).as_py()
        # Single-threaded group-bys: this runs in a worker thread already; Arrow's pool would only add hand-offs.
        grouped = part.group_by(["day", "ext"], use_threads=False).aggregate([("bytes", "sum"), ("bytes", "count")])
        for day, ext, nbytes, count in zip(
            *(grouped.column(n).to_pylist() for n in ("day", "ext", "bytes_sum", "bytes_count"))
        ):
            for key, target in ((day, summary.by_day), (ext, summary.by_extension)):
                target[key][0] += nbytes
                target[key][1] += count
        by_url = part.select(["path", "bytes"]).group_by("path", use_threads=False).aggregate([("bytes", "sum")])
        summary.url_tables.append(by_url.rename_columns(["path", "bytes"]))
    return summary


# ---------------------------------------------------------------- reading


#: The compressed formats read, by the magic bytes their files start with (not by the file name)
COMPRESSION_MAGIC = {"gzip": b"\x1f\x8b", "bzip2": b"BZh", "xz": b"\xfd7zXZ\x00"}


def compression_of(head: bytes) -> str | None:
    """The name in COMPRESSION_MAGIC of the format whose magic bytes ``head`` (a file's first 6 or more bytes)
    starts with, or None for plain text."""
    return next((name for name, magic in COMPRESSION_MAGIC.items() if head.startswith(magic)), None)


def open_log(source: str) -> tuple:
    """Open ``source`` ('-' for stdin) for binary reading, decompressing gzip, bzip2 and xz (judged by their magic
    bytes, not the file name).

    Returns (stream, raw) where ``raw.tell()`` gives the compressed position for progress. OSError propagates.
    """
    raw = sys.stdin.buffer if source == "-" else open(source, "rb")  # noqa: SIM115 (closed by the caller with the stream)
    peekable = raw if hasattr(raw, "peek") else io.BufferedReader(raw)
    compression = compression_of(peekable.peek(6)[:6])
    if compression == "gzip":
        return gzip.GzipFile(fileobj=peekable, mode="rb"), peekable
    if compression == "bzip2":
        return bz2.BZ2File(peekable, mode="rb"), peekable
    if compression == "xz":
        return lzma.LZMAFile(peekable, mode="rb"), peekable
    return peekable, peekable


class BlockReader:
    """Blocks of whole lines from a binary stream, read into a few reused buffers.

    Each block is a memoryview of a buffer (the last block may lack its final '\\n'); a UTF-8 byte-order mark at the
    very start is dropped. The bytes of a block are read once, straight into the buffer (no second copy to finish
    the last line, no fresh 16 MiB allocation per block); the buffer is reused only after ``release(block)``, so a
    caller keeps as many buffers as it has blocks in flight. A line longer than a buffer gets a bigger buffer.
    Raises LogInputError naming ``source`` when a compressed stream is corrupt or truncated, or a read fails, after
    yielding the whole lines read before.
    """

    def __init__(self, stream: BinaryIO, block_size: int = BLOCK_SIZE, source: str = "input"):
        self.stream, self.block_size, self.source = stream, max(1, block_size), source
        self._free: list = []  # buffers no block refers to any more
        self._owner: dict = {}  # id(block view) -> its buffer
        self.error: LogInputError | None = None

    def release(self, block: memoryview) -> None:
        """Give the buffer of ``block`` back for reuse; nothing may use ``block`` afterwards."""
        self._free.append(self._owner.pop(id(block)))

    def _buffer(self, at_least: int) -> bytearray:
        while self._free:
            buffer = self._free.pop()
            if len(buffer) >= at_least:
                return buffer
        return bytearray(max(self.block_size, at_least))

    def _fill(self, buffer: bytearray, start: int) -> int:
        """Read into buffer[start:] until it is full or the stream ends; return the end of the data. A read error
        ends the data there and is kept in ``self.error`` (raised after the lines read before it)."""
        view, end = memoryview(buffer), start
        source = printable(self.source.encode(), 200)
        try:
            while end < len(buffer):
                got = self.stream.readinto(view[end:])
                if not got:
                    break
                end += got
        except (EOFError, zlib.error, lzma.LZMAError, gzip.BadGzipFile) as error:
            self.error = LogInputError(f"{source}: compressed data is truncated or corrupt ({error})")
        except OSError as error:  # bz2's 'Invalid data stream', a failing disk
            self.error = LogInputError(f"{source}: read error ({error.strerror or error})")
        finally:
            view.release()
        return end

    def __iter__(self) -> Iterator[memoryview]:
        carry, first = b"", True  # carry: the partial last line of the previous buffer
        while True:
            buffer = self._buffer(2 * len(carry))
            buffer[: len(carry)] = carry
            end = self._fill(buffer, len(carry))
            while end == len(buffer) and buffer.rfind(b"\n", 0, end) < 0:  # a line longer than the buffer
                bigger = bytearray(2 * len(buffer))
                bigger[:end] = buffer
                buffer, end = bigger, self._fill(bigger, end)
            at_eof = end < len(buffer) or self.error is not None
            start = 3 if first and end >= 3 and buffer[:3] == b"\xef\xbb\xbf" else 0
            first = False
            # the block is buffer[start:cut]; after a read error the partial last line is left out
            cut = end if at_eof and self.error is None else buffer.rfind(b"\n", start, end) + 1
            if cut <= start:  # nothing left (the stream ended, or held only a byte-order mark)
                if self.error is not None:
                    raise self.error
                return
            carry = bytes(buffer[cut:end])
            block = memoryview(buffer)[start:cut]
            self._owner[id(block)] = buffer
            yield block
            if self.error is not None:
                raise self.error
            if at_eof:
                return


# ---------------------------------------------------------------- counting lines (the engine's pure entry point)


def count_lines(
    lines, spec: FormatSpec, query: BytesQuery, state: ParserState | None = None, source: str = "input", max_examples=5
) -> tuple:
    """Count one batch of a file's lines: ``(partial summary, state after the batch)``.

    lines: the raw lines of one file, in file order: a list of bytes (with or without their line end) or one
        bytes-like block of whole lines.
    spec: the file's format (``log_formats.FORMATS[name]`` or a user-defined spec).
    state: what the file's earlier batches set (``None`` for the first batch): the header in force for header
        formats (``#Fields:``) and the number of lines already seen (so reported line numbers are the file's).
    Returns a :class:`BytesSummary` holding one :class:`FileAccounting` for ``source``; partial summaries combine
    with :func:`merge` (associative and commutative, so batches and files may be merged in any grouping).
    """
    if isinstance(lines, (list, tuple)):
        block = b"".join(line if line.endswith(b"\n") else line + b"\n" for line in lines)
    else:
        block = lines
    state = log_engine.initial_state(spec) if state is None else state
    parsed = log_engine.parse_block(block, spec, state, max_examples, prefilter_for(query))
    return _summarise_block(parsed, spec.name, query, source), parsed.state


@functools.lru_cache(maxsize=16)
def prefilter_for(query: BytesQuery) -> log_engine.Prefilter:
    """The engine's Prefilter for ``query``: its days (one more each side when ``tz`` converts days) and its wanted
    extensions; select_requests then decides exactly."""
    start, end = query.start, query.end
    if query.tz is not None:
        start = start - dt.timedelta(days=1) if start > dt.date.min else start
        end = end + dt.timedelta(days=1) if end < dt.date.max else end
    return log_engine.Prefilter(
        start.year * 10000 + start.month * 100 + start.day,
        end.year * 10000 + end.month * 100 + end.day,
        tuple(sorted(b"." + e.encode() for e in query.wanted_extensions())),
    )


def merge(a: BytesSummary, b: BytesSummary) -> BytesSummary:
    """A new summary with the totals of ``a`` and ``b``; accountings of the same source are added together."""
    out = BytesSummary()
    out.add(a)
    out.add(b)
    return out


def summary_json(summary: BytesSummary) -> dict:
    """The JSON document the command line prints with --json (the same for a merged Spark result)."""
    return summary.as_dict()


def _summarise_block(parsed: log_engine.BlockParse, format_name: str, query: BytesQuery, source: str) -> BytesSummary:
    selected = select_requests(parsed.records, query)
    accounting = FileAccounting(
        source,
        format_name,
        lines_read=parsed.n_lines,
        lines_used=selected.num_rows,
        lines_not_matching=parsed.records.num_rows - selected.num_rows + parsed.dropped_records,
        malformed_lines=parsed.malformed_lines,
        comment_lines=parsed.comment_lines,
        blank_lines=parsed.blank_lines,
        unusable_header_lines=parsed.unusable_header_lines,
        malformed_examples=list(parsed.malformed_examples),
    )
    summary = summarise_selection(selected)
    summary.files.append(accounting)
    return summary


# ---------------------------------------------------------------- scanning files


def _scan_block(block, spec, state_before: Future, state_after: Future, query: BytesQuery, source: str, examples):
    """Count one block. Its starting state comes from the previous block's job (``state_before``); the state at its
    end is handed on (``state_after``) as soon as its lines are indexed, before the slower parsing."""
    try:
        state = state_before.result()
        index = log_engine.index_block(block)
        state_after.set_result(log_engine.state_after(block, spec, state, index))
    except BaseException as error:  # the next block's job waits on this: never leave it waiting
        state_after.set_exception(error)
        raise
    parsed = log_engine.parse_block(block, spec, state, examples, prefilter_for(query), index)
    del index  # nothing of the block's buffer outlives the job: the reader reuses it
    return _summarise_block(parsed, spec.name, query, source)


def scan_log(
    source: str,
    query: BytesQuery,
    format_name: str | None = None,
    block_size: int = BLOCK_SIZE,
    progress: Callable[[int], None] | None = None,
    max_examples: int = 5,
    workers: int = 2,
    spec: FormatSpec | None = None,
) -> BytesSummary:
    """Scan one log (path, or '-' for stdin; gzip, bzip2 and xz detected by content) and return its BytesSummary:
    :func:`open_log` then :func:`scan_stream` (see there for the arguments, the result and the errors).

    Raises OSError (missing or unreadable file) besides scan_stream's errors.
    """
    stream, raw = open_log(source)
    try:
        return scan_stream(stream, source, query, format_name, block_size, progress, max_examples, workers, spec, raw)
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()
        if raw is not stream and raw is not sys.stdin.buffer:
            raw.close()


def scan_stream(
    stream: BinaryIO,
    source: str,
    query: BytesQuery,
    format_name: str | None = None,
    block_size: int = BLOCK_SIZE,
    progress: Callable[[int], None] | None = None,
    max_examples: int = 5,
    workers: int = 2,
    spec: FormatSpec | None = None,
    raw: BinaryIO | None = None,
) -> BytesSummary:
    """Scan one log from an open binary ``stream`` (anything with ``readinto``, already decompressed; the caller
    closes it) and return its BytesSummary.

    source: the name shown in the accounting and in errors.
    The summary's ``files`` holds this file's FileAccounting (malformed examples with 1-based line numbers). A read
    error part-way (a truncated or corrupt compressed file, an I/O error) ends the file there: the lines read so far
    stand and ``FileAccounting.error`` says what happened.
    format_name: one of log_formats.FORMATS, or None to detect from the first lines; ``spec`` (a user-defined format)
        overrides both.
    progress: called after each block with the number of input bytes it consumed (``raw.tell()`` when ``raw``, the
        compressed stream under ``stream``, is given and seekable).
    workers: threads that parse and count blocks while this thread reads the next ones; at most ``workers + 1``
        blocks are in flight, so memory stays flat.
    Raises LogInputError (format unknown, a header without the needed columns and no usable line, or a read error
    before the first line).
    """
    raw = stream if raw is None else raw
    reader = BlockReader(stream, block_size, source)
    blocks = _read_blocks(reader)
    head = _head_blocks(blocks)  # the first blocks, enough for detection (small --block-size in tests)
    if head and isinstance(head[-1], LogInputError) and len(head) == 1:
        raise head[0]
    if not head:  # an empty file (or stdin) is zero lines, not an error
        return BytesSummary(files=[FileAccounting(source, format_name or "empty")])
    sample = _first_lines(b"".join(bytes(b) for b in head if not isinstance(b, LogInputError)), 200)
    if spec is None:
        name = format_name or log_engine.detect_format(sample)
        if name is None and not _CONTENT_LINE.search(sample):  # only blank/comment lines so far
            return _count_lines_without_content(source, head, blocks, reader)
        if name is None:
            raise _undetectable(source, sample)
        spec = FORMATS[name]
    accounting = FileAccounting(source, spec.name)
    total = BytesSummary()
    state = Future()
    state.set_result(log_engine.initial_state(spec))
    pending: collections.deque = collections.deque()
    consumed = 0

    def collect():  # blocks are collected in file order, so line numbers add up
        future, block = pending.popleft()
        outcome = future.result()
        reader.release(block)
        accounting.add(outcome.files[0], max_examples)
        outcome.files = []
        total.add(outcome)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        for block in _chain(head, blocks):
            if isinstance(block, LogInputError):
                accounting.error = str(block)
                break
            state_after = Future()
            job = pool.submit(_scan_block, block, spec, state, state_after, query, source, max_examples)
            pending.append((job, block))
            state = state_after
            if progress is not None:
                now = raw.tell() if raw.seekable() else consumed + len(block)
                progress(now - consumed)
                consumed = now
            while len(pending) > workers:  # bounded read-ahead keeps memory flat
                collect()
        while pending:
            collect()
    if accounting.unusable_header_lines and accounting.lines_used + accounting.lines_not_matching == 0:
        line, reason, _text = accounting.malformed_examples[0]
        raise LogInputError(
            f"{printable(source.encode(), 200)}: line {line}: {reason}, so no line has a size to add up; "
            "log the response size (W3C/IIS: enable the sc-bytes field) or pass --format/--log-format"
        )
    total.files.append(accounting)
    return total


def _read_blocks(reader: BlockReader) -> Iterator:
    """The reader's blocks; a read error ends the sequence with a LogInputError item instead of raising."""
    try:
        yield from reader
    except LogInputError as error:
        yield error
    except OSError as error:
        yield LogInputError(f"{printable(reader.source.encode(), 200)}: read error ({error.strerror or error})")


def _first_lines(block, n: int) -> bytes:
    """The first ``n`` lines of a block (all of it when it has fewer), for detection."""
    head = bytes(block[: 1 << 20])
    cut = -1
    for _ in range(n):
        cut = head.find(b"\n", cut + 1)
        if cut < 0:
            return head if len(block) <= 1 << 20 else head[: head.rfind(b"\n") + 1] or head
    return head[: cut + 1]


def _undetectable(source: str, sample: bytes, first_number: int = 1) -> LogInputError:
    number, text = next(
        ((i, line) for i, line in enumerate(sample.split(b"\n"), first_number) if line.strip()), (first_number, b"")
    )
    return LogInputError(
        f"{printable(source.encode(), 200)}: cannot detect the log format from line {number} "
        f"(first 80 chars: {printable(text, 80)}); pass --format {{{','.join(FORMATS)}}} "
        "or describe it with --log-format (an nginx log_format or Apache LogFormat string)"
    )


#: A content line: neither blank (whitespace only) nor a comment ('#' first), by the engine's rule; bytes ``\s`` is
#: [ \t\n\r\f\v].
_CONTENT_LINE = re.compile(rb"(?m)^(?!#)[ \t\r\f\v]*[^\s]")
_COMMENT_LINE = re.compile(rb"(?m)^#")


def _count_lines_without_content(source: str, head: list, blocks: Iterator, reader: BlockReader) -> BytesSummary:
    """Accounting of a file whose first lines are all blank or comments, so that no format can be detected: like
    the empty file, zero records under the format name 'empty', with its blank and comment lines counted.

    Raises the undetectable-format LogInputError naming the first content line should one come later.
    """
    accounting = FileAccounting(source, "empty")
    for block in _chain(head, blocks):
        if isinstance(block, LogInputError):
            accounting.error = str(block)
            break
        data = bytes(block)
        reader.release(block)
        content = _CONTENT_LINE.search(data)
        if content:
            number = accounting.lines_read + data.count(b"\n", 0, content.start()) + 1
            raise _undetectable(source, data[content.start() :], number)
        lines = data.count(b"\n") + (not data.endswith(b"\n"))
        comments = len(_COMMENT_LINE.findall(data))
        accounting.lines_read += lines
        accounting.comment_lines += comments
        accounting.blank_lines += lines - comments
    return BytesSummary(files=[accounting])


def printable(line: bytes, width: int) -> str:
    """``line`` as text: UTF-8, other bytes and control characters escaped, cut to ``width`` characters."""
    text = "".join(
        c if c.isprintable() else repr(c)[1:-1] for c in line.rstrip(b"\r\n").decode("utf-8", "backslashreplace")
    )
    return text if len(text) <= width else text[: width - 3] + "..."


def _chain(head: list, rest: Iterator) -> Iterator:
    yield from head
    yield from rest


def _head_blocks(blocks: Iterator, lines: int = 200, size: int = 1 << 20) -> list:
    """Blocks from the start of ``blocks`` until they hold ``lines`` lines or ``size`` bytes (or a read error)."""
    head, seen_lines, seen_bytes = [], 0, 0
    for block in blocks:
        head.append(block)
        if isinstance(block, LogInputError):
            break
        seen_lines += bytes(block[:size]).count(b"\n")
        seen_bytes += len(block)
        if seen_lines >= lines or seen_bytes >= size:
            break
    return head


def plot_bytes_per_day(summary: BytesSummary, path: str, query: BytesQuery) -> None:
    """Bytes per day (MiB) for every day of the query's range, zero days included, on a date axis, written as a PNG
    to ``path`` (matplotlib, Agg backend). The title gives the range, extensions and zone; with no matching
    request the plot says so instead of drawing empty axes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    days = [query.start + dt.timedelta(days=i) for i in range((query.end - query.start).days + 1)]
    mib = [summary.by_day[d.isoformat()][0] / 2**20 if d.isoformat() in summary.by_day else 0.0 for d in days]
    fig, ax = plt.subplots(figsize=(min(14, max(5, len(days) * 0.6)), 3.8))
    if len(days) <= 400:
        ax.bar(days, mib, width=0.8)
    else:  # thousands of bars draw slowly and merge anyway
        ax.plot(days, mib, drawstyle="steps-mid", linewidth=0.8)
    if len(days) <= 31:  # one labelled tick per day
        ax.set_xticks(days)
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m-%d"))
        ax.tick_params(axis="x", rotation=45, labelsize=8)
    else:
        locator = mdates.AutoDateLocator()
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    margin = dt.timedelta(hours=14)  # bars are centred on midnight and 0.8 day wide
    ax.set_xlim(dt.datetime.combine(days[0], dt.time()) - margin, dt.datetime.combine(days[-1], dt.time()) + margin)
    ax.set_ylim(bottom=0)
    ax.set_ylabel("MiB")
    if summary.requests == 0:
        ax.set_ylim(0, 1)
        ax.set_yticks([])
        ax.text(0.5, 0.5, "no matching requests", transform=ax.transAxes, ha="center", va="center")
    exts = "/".join("." + e for e in sorted(query.wanted_extensions()))
    zone = f"days in {query.tz}" if query.tz else "days as written in the log"
    ax.set_title(f"bytes per day for {exts}\n{query.start} to {query.end} ({zone})", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100, format="png")
    plt.close(fig)
