"""The numba kernels of the tab formats (tab_kernel) against independent references: the per-line parser for each
line's verdict and values, numpy for the line ends, log_scan.select_requests for the prefilter (a line it drops must
be one the exact selection would not count), and the line accounting with the prefilter on."""

import datetime as dt

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

import log_formats
import log_scan
import tab_kernel
from log_formats import RECORD_SCHEMA, Prefilter, Record
from log_scan import BytesQuery

# A few byte values that matter to the kernel (delimiters, '#', '%', '?', digits, date and time separators) and a
# few that do not, so that random lines hit every branch.
CELL_BYTES = b"\t\t\t\r#%?.-:0123456789jpgJPG/x \x0b\x00\xa4"
COLUMNS = ("date", "time", "x", "sc-bytes", "y", "cs-uri-stem")
LAYOUT = log_formats.layout_from_names(COLUMNS, log_formats.CLOUDFRONT_COLUMNS)
#: The URL first, so that a line starting with '#' can have valid cells (it is a comment all the same).
URL_FIRST = ("cs-uri-stem", "date", "time", "sc-bytes")
ROLES = {"date": "day", "time": "time", "sc-bytes": "size", "cs-uri-stem": "target"}


def good_cells(draw) -> dict:
    """Cells by role: valid, or just outside the accepted values."""
    day = draw(
        st.one_of(
            st.dates(dt.date(1, 1, 1), dt.date(9999, 12, 31)).map(dt.date.isoformat),
            st.sampled_from(
                ["2017-02-29", "1900-02-29", "2017-13-01", "2017-00-01", "0000-01-01", "2017-04-31", "2017-08-00"]
            ),
        )
    )
    time = draw(
        st.one_of(
            st.times().map(lambda t: t.strftime("%H:%M:%S")), st.sampled_from(["24:00:00", "23:60:00", "23:59:60"])
        )
    )
    size = draw(st.sampled_from(["-", "0", "007", "9" * 18, "1" * 19, "--", "", str(draw(st.integers(0, 10**9)))]))
    target = draw(
        st.sampled_from(
            ["/a.jpg", "/b.JPEG?x=1", "/c.png#f", "/%2Ejpg", "http://h/d.jpg", "/e.jpg.gz", "", "/f.gif", "#g.jpg"]
        )
    )
    return {"day": day.encode(), "time": time.encode(), "size": size.encode(), "target": target.encode()}


@st.composite
def kernel_lines(draw, columns=COLUMNS):
    """One line (without '\\n') for ``columns``: cells with random edits, or random bytes."""
    if draw(st.integers(0, 3)) == 0:
        return draw(st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")))
    cells = good_cells(draw)
    line = bytearray(
        b"\t".join(cells[ROLES[c]] if c in ROLES else c.encode() for c in columns)
        + draw(st.sampled_from([b"", b"\textra", b"\r", b"\r\r", b"\t\r"]))
    )
    for _ in range(draw(st.integers(0, 2))):  # random edits: insert, replace or delete a byte
        at = draw(st.integers(0, len(line)))
        what = draw(st.integers(0, 2))
        if what == 0:
            line.insert(at, draw(st.sampled_from(CELL_BYTES)))
        elif what == 1 and at < len(line):
            line[at] = draw(st.sampled_from(CELL_BYTES))
        elif at < len(line):
            del line[at]
    return bytes(line)


def run_kernel(lines, prefilter=log_formats.KEEP_ALL, final_newline=True, layout=LAYOUT):
    """parse_tab_lines over the lines joined by '\\n' (a writable buffer, as the block reader gives)."""
    block = bytearray(b"\n".join(lines) + (b"\n" if final_newline else b""))
    data = np.frombuffer(block, np.uint8)
    ends = tab_kernel.find_line_ends(data)
    starts = np.concatenate([[0], ends[:-1] + 1]).astype(np.int64)
    ext_table, ext_lengths = prefilter.extension_table
    return tab_kernel.parse_tab_lines(
        data,
        starts,
        ends,
        layout.day,
        layout.time,
        layout.size,
        layout.target,
        layout.needed,
        prefilter.day_low,
        prefilter.day_high,
        ext_table,
        ext_lengths,
        tab_kernel.DAYS_IN_MONTH,
    )


@st.composite
def lines_and_layout(draw):
    columns = draw(st.sampled_from([COLUMNS, URL_FIRST]))
    return draw(st.lists(kernel_lines(columns), min_size=1, max_size=12)), log_formats.layout_from_names(
        columns, log_formats.CLOUDFRONT_COLUMNS
    )


@settings(max_examples=400, deadline=None)
@given(case=lines_and_layout(), final_newline=st.booleans())
def test_kernel_verdicts_and_values_agree_with_the_per_line_parser(case, final_newline):
    lines, layout = case
    final_newline = final_newline or lines[-1] == b""  # an empty last line exists only before a '\n'
    verdicts, days, times, sizes, missing, target_starts, target_ends = run_kernel(
        lines, final_newline=final_newline, layout=layout
    )
    assert len(verdicts) == len(lines)
    assert set(verdicts.tolist()) <= {tab_kernel.KEPT, tab_kernel.REJECTED}  # no prefilter: nothing dropped
    block = b"\n".join(lines) + (b"\n" if final_newline else b"")
    kept = 0
    for line, verdict in zip(lines, verdicts.tolist()):
        expected = log_formats.FORMATS["cloudfront"].parse_line(line, log_formats.ParserState(layout))
        if verdict == tab_kernel.KEPT:
            assert isinstance(expected, Record), (line, expected)
            got = Record(
                days[kept].tobytes().decode(),
                times[kept].tobytes().decode(),
                "+0000",
                int(sizes[kept]),
                bool(missing[kept]),
                block[target_starts[kept] : target_ends[kept]],
            )
            assert got == expected
            kept += 1
        else:  # the kernel may leave a record to the parser only for a CR inside the line or a '#' first
            assert (
                not isinstance(expected, Record)
                or b"\r" in line.rstrip(b"\r")[:-1]
                or b"\r\r" in line
                or line.startswith(b"#")
            ), (line, expected)
    assert kept == len(sizes)


@settings(max_examples=100, deadline=None)
@given(data=st.binary(max_size=200))
def test_find_line_ends_equals_numpy(data):
    array = np.frombuffer(bytearray(data), np.uint8)
    expected = np.flatnonzero(array == 10)
    if len(array) and array[-1] != 10:
        expected = np.append(expected, len(array))
    assert tab_kernel.find_line_ends(array).tolist() == expected.tolist()


queries = st.builds(
    BytesQuery,
    extensions=st.lists(st.sampled_from(["jpg", "JPEG", "png", "gz", "gif"]), min_size=1, max_size=3).map(tuple),
    start=st.dates(dt.date(2017, 8, 20), dt.date(2017, 8, 26)),
    end=st.just(dt.date(2017, 8, 26)),
    exact_ext=st.booleans(),
    tz=st.sampled_from([None, "Asia/Hong_Kong", "America/Los_Angeles", "Pacific/Kiritimati"]),
)


@settings(max_examples=150, deadline=None)
@given(lines=st.lists(kernel_lines(), min_size=1, max_size=12), query=queries)
def test_prefilter_drops_only_lines_the_exact_selection_would_not_count(lines, query):
    prefilter = log_scan.prefilter_for(query)
    all_verdicts = run_kernel(lines)[0]
    verdicts = run_kernel(lines, prefilter)[0]
    # the prefilter only turns records into dropped ones; rejected lines stay rejected
    assert ((all_verdicts == tab_kernel.REJECTED) == (verdicts == tab_kernel.REJECTED)).all()
    dropped = [line for line, v in zip(lines, verdicts.tolist()) if v == tab_kernel.DROPPED]
    records = [log_formats.FORMATS["cloudfront"].parse_line(line, log_formats.ParserState(LAYOUT)) for line in dropped]
    if records:
        table = pa.Table.from_pylist([r._asdict() for r in records], schema=RECORD_SCHEMA)
        assert log_scan.select_requests(table, query).num_rows == 0


def test_prefilter_day_range_is_widened_by_a_day_for_a_zone_and_clamped():
    assert Prefilter.for_query(dt.date(2017, 8, 24), dt.date(2017, 8, 25), {"jpg"}, False) == Prefilter(
        20170824, 20170825, (b".jpg",)
    )
    assert Prefilter.for_query(dt.date(2017, 3, 1), dt.date(2017, 12, 31), {"png", "jpg"}, True) == Prefilter(
        20170228, 20180101, (b".jpg", b".png")
    )
    assert Prefilter.for_query(dt.date.min, dt.date.max, {"jpg"}, True) == Prefilter(10101, 99991231, (b".jpg",))


def test_prefilter_accounting_on_a_hand_made_block(tmp_path):
    # jpg on 2017-08-24..25: 2 used (one with a query string, one through '%'); the two days out of range, the png
    # and the '.jpg.html' are dropped by the prefilter; '%2Epng' passes it (a '%') but not the exact rule: 5 not
    # matching. The header and the bad line are left to the per-line parser.
    body = b"".join(
        b"\t".join([day, b"10:00:00", b"x", size, b"y", target]) + b"\n"
        for day, size, target in [
            (b"2017-08-24", b"100", b"/a.JPG?x=1"),
            (b"2017-08-25", b"20", b"/%61.jpg"),
            (b"2017-08-23", b"1", b"/early.jpg"),
            (b"2017-08-26", b"1", b"/late.jpg"),
            (b"2017-08-24", b"1", b"/b.png"),
            (b"2017-08-24", b"1", b"/c%2Epng"),
            (b"2017-08-24", b"1", b"/d.jpg.html"),
        ]
    )
    block = b"#Fields: " + " ".join(COLUMNS).encode() + b"\n" + body + b"2017-08-24\tbad\n"
    query = BytesQuery(("jpg",), dt.date(2017, 8, 24), dt.date(2017, 8, 25))
    fmt = log_formats.FORMATS["cloudfront"]
    result = fmt.parse_indexed(fmt.index_block(bytearray(block)), fmt.initial_state(), log_scan.prefilter_for(query))
    assert result.dropped == 4 and result.records.num_rows == 3 and result.rejected.tolist() == [0, 8]
    path = tmp_path / "cloudfront.log"
    path.write_bytes(block)
    summary = log_scan.scan_log(str(path), query, "cloudfront")
    accounting = summary.files[0]
    assert (
        accounting.lines_read,
        accounting.lines_used,
        accounting.lines_not_matching,
        accounting.malformed_lines,
        accounting.comment_lines,
    ) == (9, 2, 5, 1, 1)
    assert summary.total_bytes == 120


def test_kernel_leaves_a_line_starting_with_hash_to_the_parser_even_with_valid_cells():
    layout = log_formats.layout_from_names(URL_FIRST, log_formats.CLOUDFRONT_COLUMNS)
    line = b"#g.jpg\t2017-08-24\t10:00:00\t5"
    assert log_formats.FORMATS["cloudfront"].parse_line(line, log_formats.ParserState(layout)) == log_formats.COMMENT
    assert run_kernel([line, line[1:]], layout=layout)[0].tolist() == [tab_kernel.REJECTED, tab_kernel.KEPT]
