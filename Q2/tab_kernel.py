"""numba kernel for the tab-separated header formats (tsv, CloudFront): one pass over each line's needed cells.

:func:`parse_tab_lines` reads each line's first ``needed`` tab-separated cells only (CloudFront lines have 30+
fields, the query needs the first 8), checks them, converts the size and drops the lines whose day or URL cannot
match the query. It is a speed path of ``log_engine``: every line it is not sure about goes through the engine's
generic path, so the results are the engine's (the benchmark in benchmarks/bench_bytes.py shows what it saves).

The kernels are compiled by numba on first use and cached (``cache=True``: ``Q2/__pycache__``, or the folder in
NUMBA_CACHE_DIR); ``nogil=True`` lets the scan's worker threads run them in parallel.
"""

from __future__ import annotations

import numba
import numpy as np

#: Line verdicts written by parse_tab_lines.
REJECTED, KEPT, DROPPED = 0, 1, 2

#: Days of each month (index 1-12) in a common year, for parse_tab_lines.
DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], np.int64)


@numba.njit(nogil=True, cache=True, inline="always")
def _digit(b):
    return b - 48 if 48 <= b <= 57 else -1


@numba.njit(nogil=True, cache=True)
def _day_number(data, start, end, days_in_month):
    """yyyymmdd of a valid 'YYYY-MM-DD' cell data[start:end] (years 1-9999, Gregorian leap years), else -1."""
    if end - start != 10 or data[start + 4] != 45 or data[start + 7] != 45:
        return -1
    value = 0
    for k in (0, 1, 2, 3, 5, 6, 8, 9):
        d = _digit(data[start + k])
        if d < 0:
            return -1
        value = value * 10 + d
    year, month, day = value // 10000, value // 100 % 100, value % 100
    if year < 1 or month < 1 or month > 12 or day < 1:
        return -1
    leap = (year % 4 == 0 and year % 100 != 0) or year % 400 == 0
    if day > days_in_month[month] + (1 if month == 2 and leap else 0):
        return -1
    return value


@numba.njit(nogil=True, cache=True)
def _valid_time(data, start, end):
    """True for an 'HH:MM:SS' cell data[start:end] with HH < 24, MM < 60, SS < 60."""
    if end - start != 8 or data[start + 2] != 58 or data[start + 5] != 58:
        return False
    for k in (0, 1, 3, 4, 6, 7):
        if _digit(data[start + k]) < 0:
            return False
    hour = _digit(data[start]) * 10 + _digit(data[start + 1])
    return hour < 24 and data[start + 3] < 54 and data[start + 6] < 54  # minute/second tens '0'..'5'


@numba.njit(nogil=True, cache=True)
def _size_value(data, start, end):
    """Size of a cell data[start:end]: its value for 1-18 digits, -1 for '-' (missing), -2 when invalid."""
    length = end - start
    if length == 1 and data[start] == 45:
        return -1
    if length < 1 or length > 18:
        return -2
    value = 0
    for i in range(start, end):
        d = _digit(data[i])
        if d < 0:
            return -2
        value = value * 10 + d
    return value


@numba.njit(nogil=True, cache=True)
def _may_match(data, start, end, ext_table, ext_lengths):
    """Can the URL data[start:end] have a wanted extension? '%' anywhere, or the part before the first '?'/'#' ends
    with one of the extensions of ``ext_table`` (lower-case), compared ASCII case-insensitively."""
    path_end = end
    for i in range(start, end):
        b = data[i]
        if b == 37:  # '%'
            return True
        if (b == 63 or b == 35) and path_end == end:  # '?' or '#'
            path_end = i
    for row in range(len(ext_lengths)):
        length = ext_lengths[row]
        if path_end - start < length:
            continue
        same = True
        for k in range(length):
            b = data[path_end - length + k]
            if 65 <= b <= 90:
                b += 32
            if b != ext_table[row, k]:
                same = False
                break
        if same:
            return True
    return False


@numba.njit(nogil=True, cache=True, inline="always")
def _cell_end(data, pos, end, sentinel):
    """The position of the first tab or CR in data[pos:end], or ``end``. With ``sentinel`` (data[end] is the line's
    '\\n') one comparison per byte finds the next control byte without a bounds check."""
    if sentinel:
        while True:
            while data[pos] > 13:
                pos += 1
            if pos >= end or data[pos] == 9 or data[pos] == 13:
                return min(pos, end)
            pos += 1  # another control byte inside the cell (NUL, VT, ...)
    while pos < end and data[pos] != 9 and data[pos] != 13:
        pos += 1
    return pos


@numba.njit(nogil=True, cache=True)
def parse_tab_lines(
    data,
    starts,
    ends,
    day_col,
    time_col,
    size_col,
    target_col,
    needed,
    day_low,
    day_high,
    ext_table,
    ext_lengths,
    days_in_month,
):
    """Check and convert the needed cells of a run of lines in one pass.

    data: uint8 (n_bytes,), the block. starts, ends: int64 (n_lines,), each line's first byte and the position of
    its '\\n' (n_bytes for a last line without one). *_col: 0-based column indices, all different; needed: 1 + the
    largest. day_low/day_high (yyyymmdd), ext_table/ext_lengths: the query's days and extensions (uint8 rows,
    lower-case, with their dot; no rows: no URL filter).

    A line is taken when it does not start with '#', its first ``needed`` cells are free of tab, CR and LF and
    delimited by tabs, the last of them ending at a tab, the line end, or a '\\r' right before the line end, and its
    date, time and size cells are valid (the rules of the engine's date, clock and size checks). Anything else is
    REJECTED, for the engine's generic path.

    Returns (verdicts int8 (n_lines,): REJECTED/KEPT/DROPPED; for the m KEPT lines in order: day cells uint8
    (m, 10), time cells uint8 (m, 8), sizes int64 (m,), missing bool (m,) for size '-' (size 0), target cell
    starts and ends int64 (m,)).
    """
    n = len(starts)
    verdicts = np.zeros(n, np.int8)
    days = np.empty((n, 10), np.uint8)
    times = np.empty((n, 8), np.uint8)
    sizes = np.empty(n, np.int64)
    missing = np.empty(n, np.bool_)
    target_starts = np.empty(n, np.int64)
    target_ends = np.empty(n, np.int64)
    m = 0
    for line in range(n):
        pos, end = starts[line], ends[line]
        if pos < end and data[pos] == 35:  # '#': a comment line, whatever its cells
            continue
        day_start = day_end = time_start = time_end = size_start = size_end = t_start = t_end = 0
        ok = True
        sentinel = end < len(data)  # the line's '\n' stops _cell_end's fast loop
        for col in range(needed):
            cell = pos
            pos = _cell_end(data, pos, end, sentinel)
            if pos < end and data[pos] == 13 and not (col == needed - 1 and pos + 1 == end):
                ok = False  # a CR inside a needed cell
                break
            if col < needed - 1 and (pos == end or data[pos] != 9):
                ok = False  # too few fields
                break
            if col == day_col:
                day_start, day_end = cell, pos
            elif col == time_col:
                time_start, time_end = cell, pos
            elif col == size_col:
                size_start, size_end = cell, pos
            elif col == target_col:
                t_start, t_end = cell, pos
            pos += 1
        if not ok:
            continue
        day = _day_number(data, day_start, day_end, days_in_month)
        if day < 0 or not _valid_time(data, time_start, time_end):
            continue
        size = _size_value(data, size_start, size_end)
        if size == -2:
            continue
        if (
            day < day_low
            or day > day_high
            or (len(ext_lengths) and not _may_match(data, t_start, t_end, ext_table, ext_lengths))
        ):
            verdicts[line] = DROPPED
            continue
        verdicts[line] = KEPT
        for k in range(10):
            days[m, k] = data[day_start + k]
        for k in range(8):
            times[m, k] = data[time_start + k]
        sizes[m] = max(size, 0)
        missing[m] = size == -1
        target_starts[m], target_ends[m] = t_start, t_end
        m += 1
    return verdicts, days[:m], times[:m], sizes[:m], missing[:m], target_starts[:m], target_ends[:m]


@numba.njit(nogil=True, cache=True)
def gather_cells(data, starts, ends):
    """The cells data[starts[i]:ends[i]] one after another: (int32 offsets of shape (m + 1,), uint8 values)."""
    m = len(starts)
    offsets = np.empty(m + 1, np.int32)
    offsets[0] = 0
    for i in range(m):
        offsets[i + 1] = offsets[i] + (ends[i] - starts[i])
    values = np.empty(offsets[m], np.uint8)
    for i in range(m):
        values[offsets[i] : offsets[i + 1]] = data[starts[i] : ends[i]]
    return offsets, values
