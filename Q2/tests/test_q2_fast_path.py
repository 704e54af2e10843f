"""The numpy fast path for tab-separated lines and the block reader: cell-level garbage agrees with the per-line parser
line for line, block boundaries anywhere (inside a header run too) change nothing, and the reader hands the stream
back in whole lines without overwriting a block still in use."""

import collections
import io

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import log_formats
import log_scan
from log_scan import BytesQuery

BOM = b"\xef\xbb\xbf"


# Cells for each column the fast path reads: valid three times in four (so that whole lines get through to the
# record-building code), otherwise nearly valid or garbage.
def mostly(valid, invalid):
    valid = st.sampled_from(valid)
    return st.one_of(valid, valid, valid, invalid)


days = mostly(
    ["2017-08-24", "2017-08-25", "2016-02-29", "2000-02-29", "0001-01-01", "9999-12-31"],
    st.one_of(
        st.sampled_from(
            [
                "2017-02-29",
                "1900-02-29",
                "0000-01-01",
                "2017-13-01",
                "2017-00-10",
                "2017-08-00",
                "2017-08-32",
                "2017-04-31",
                "2017-8-24",
                "2017/08/24",
                " 2017-08-24",
                "2017-08-24 ",
                "",
            ]
        ),
        st.text(alphabet="0123456789-", max_size=11),
    ),
)
times = mostly(
    ["00:00:00", "23:59:59", "19:09:41", "20:00:00"],
    st.one_of(
        st.sampled_from(
            [
                "24:00:00",
                "19:60:00",
                "09:59:60",
                "9:00:00",
                " 9:00:00",
                "10:00",
                "10:00:00.5",
                "2a:00:00",
                "30:00:00",
                "",
            ]
        ),
        st.text(alphabet="0123456789:", max_size=9),
    ),
)
sizes = mostly(
    ["0", "-", "007", "1" * 18, "9" * 18, "5", "123456789", "12345678901"],
    st.one_of(
        st.sampled_from(["--", "", "1" * 19, "12x", "+5", " 5", "5 ", "1e3", "-5"]),
        st.integers(0, 10**18).map(str),
        st.text(alphabet="0123456789-", max_size=20),
    ),
)
targets = st.one_of(
    st.sampled_from(
        [b"/a.jpg", b"/a.JPG?x#y", b"", b"/%2Ejpg", b"/a\rb.jpg", b"/a\x0bb.jpg", b"/\xa4\xa4.jpg", b"#top", b"-"]
    ),
    st.binary(max_size=12).filter(lambda b: b"\n" not in b and b"\t" not in b),
)
fillers = st.sampled_from([b"HKG60", b"HKG60", b"", b"-", b"x\ry", b"\x00"])
endings = st.sampled_from([b"\n", b"\n", b"\r\n", b"\r\r\n", b"\n\n", b"\r\n\r\n", b"\rx\n"])

#: The default CloudFront columns, and a reordered header with the size first and the date last.
LAYOUTS = {
    "cloudfront": (
        "#Fields: date time x-edge-location sc-bytes c-ip cs-method cs(Host) cs-uri-stem sc-status",
        ("date", "time", "x-edge-location", "sc-bytes", "c-ip", "cs-method", "cs(Host)", "cs-uri-stem", "sc-status"),
    ),
    "cloudfront-reordered": (
        "#Fields: sc-bytes cs-uri-stem x-edge-location time date",
        ("sc-bytes", "cs-uri-stem", "x-edge-location", "time", "date"),
    ),
    "tsv": ("date\ttime\tsize\turl", ("date", "time", "size", "url")),
}
ROLE = {"date": "day", "time": "time", "sc-bytes": "size", "size": "size", "cs-uri-stem": "target", "url": "target"}


@st.composite
def tab_lines(draw, columns):
    """One data line for ``columns`` with garbage-prone cells, sometimes with fields missing or added."""
    values = {
        "day": draw(days).encode(),
        "time": draw(times).encode(),
        "size": draw(sizes).encode(),
        "target": draw(targets),
    }
    cells = [values[ROLE[c]] if c in ROLE else draw(fillers) for c in columns]
    cells = cells[: draw(st.integers(0, len(cells)))] if draw(st.integers(0, 5)) == 0 else cells
    if draw(st.integers(0, 3)) == 0:
        cells += [b"extra", draw(fillers)]
    return b"\t".join(cells) + draw(endings)


@st.composite
def tab_blocks(draw):
    name = draw(st.sampled_from(sorted(LAYOUTS)))
    header, columns = LAYOUTS[name]
    lines = draw(st.lists(tab_lines(columns), max_size=25))
    odd = draw(
        st.lists(
            st.sampled_from([b"#Version: 1.0\n", b"\n", b"  \n", b"# note\n", b"garbage\n", header.encode() + b"\n"]),
            max_size=3,
        )
    )
    for line in odd:
        lines.insert(draw(st.integers(0, len(lines))), line)
    body = header.encode() + b"\n" + b"".join(lines)
    if draw(st.booleans()):  # no '\n' after the last line
        body = body.rstrip(b"\n")
    return ("tsv" if name == "tsv" else "cloudfront"), body


def assert_fast_path_agrees(spec, block: bytes, state) -> None:
    """parse_block_fully over ``block`` gives the records and verdicts of parse_line applied line by line."""
    line_state = log_formats.ParserState(state.layout)
    lines = block.split(b"\n")
    lines = lines[:-1] if block.endswith(b"\n") else lines
    per_line = [spec.parse_line(line, line_state) for line in lines]
    records, n_lines, verdicts = log_scan.parse_block_fully(block, spec, state)
    assert n_lines == len(per_line)
    assert sorted(records.to_pylist(), key=repr) == sorted(
        (r._asdict() for r in per_line if isinstance(r, log_formats.Record)), key=repr
    )
    assert [(i, v) for i, v, _line in verdicts] == [
        (i, v) for i, v in enumerate(per_line) if not isinstance(v, log_formats.Record)
    ]


@settings(max_examples=100, deadline=None)
@given(case=tab_blocks())
def test_tab_fast_path_agrees_with_per_line_parser_on_cell_garbage(case):
    fmt_name, block = case
    spec = log_formats.FORMATS[fmt_name]
    assert_fast_path_agrees(spec, block, spec.initial_state())


SPECIAL_CELLS = {
    "day": [
        "2017-08-24",
        "2016-02-29",
        "2000-02-29",
        "0001-01-01",
        "9999-12-31",
        "2017-02-29",
        "1900-02-29",
        "0000-01-01",
        "2017-13-01",
        "2017-00-10",
        "2017-08-00",
        "2017-08-32",
        "2017-04-31",
        "2017-8-24",
        "2017/08/24",
        " 2017-08-24",
        "2017-08-24 ",
        "",
        "2017-08-2a",
        "20170-8-24",
        "201:-08-24",
        "2017-0:-01",
        "2017-08-1:",
        "2017-08-/5",
    ],  # ':' and '/' sit next to the digits
    "time": [
        "00:00:00",
        "23:59:59",
        "24:00:00",
        "29:00:00",
        "19:60:00",
        "09:59:60",
        "9:00:00",
        " 9:00:00",
        "10:00",
        "10:00:00.5",
        "2a:00:00",
        "30:00:00",
        "",
        "10-00-00",
        "1::00:00",
        "10:00:0:",
        "10:/0:00",
    ],
    "size": [
        "0",
        "-",
        "007",
        "1" * 18,
        "9" * 18,
        "1" * 19,
        "--",
        "-5",
        "5-",
        "",
        "12x",
        "x12",
        "+5",
        " 5",
        "5 ",
        "1e3",
        "123456789012",
        "1:",
        "/1",
    ],
}
SPECIAL_TARGETS = [b"/a.jpg", b"", b"-", b"/a\rb.jpg", b"/a\x0bb.jpg", b"/\xa4.jpg", b"#x", b"/a%2Ejpg?q#f"]
SPECIAL_FILLERS = [b"x\ry", b"", b"\x00", b"a\x0bb", b"\r"]
SPECIAL_ENDINGS = [b"\n", b"\r\n", b"\r\r\n", b"\rx\n", b"\t\n", b"\t\r\n"]


def special_lines(columns) -> list:
    """Lines with one special cell each (the others valid), every line ending, short and long lines."""
    base = {"day": b"2017-08-24", "time": b"01:00:00", "size": b"5", "target": b"/a.jpg"}

    def line(cells, filler=b"f", ending=b"\n"):
        return b"\t".join(cells[ROLE[c]] if c in ROLE else filler for c in columns) + ending

    lines = []
    for role, values in [
        *((r, [v.encode() for v in vs]) for r, vs in SPECIAL_CELLS.items()),
        ("target", SPECIAL_TARGETS),
    ]:
        for value in values:
            lines += [line({**base, role: value}, ending=ending) for ending in SPECIAL_ENDINGS]
    fillers = [c for c in columns if c not in ROLE]
    for filler in SPECIAL_FILLERS:  # in every other column at once, and in each one alone
        lines += [line(base, filler=filler)] + [
            b"\t".join(base[ROLE[c]] if c in ROLE else filler if c == alone else b"f" for c in columns) + b"\n"
            for alone in fillers
        ]
    full = line(base, ending=b"")
    lines += [b"\t".join(full.split(b"\t")[:k]) + b"\n" for k in range(len(columns) + 1)]  # too few fields
    lines += [full + b"\textra\n", full + b"\t\r\tx\n"]
    return lines


def test_tab_fast_path_agrees_with_per_line_parser_on_every_special_cell():
    for name, (header, columns) in LAYOUTS.items():
        spec = log_formats.FORMATS["tsv" if name == "tsv" else "cloudfront"]
        declared = log_formats.ParserState()
        spec.parse_line(header.encode(), declared)  # the layout this header declares
        lines = special_lines(columns)
        assert_fast_path_agrees(spec, header.encode() + b"\n" + b"".join(lines), spec.initial_state())
        # without the header, so that the first special line starts the block (offset 0)
        for block in (b"".join(lines), b"".join(lines[::-1]), b"".join(lines).rstrip(b"\n"), *lines):
            assert_fast_path_agrees(spec, block, declared)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=tab_blocks(), block_size=st.integers(1, 400))
def test_block_boundaries_change_nothing(tmp_path, case, block_size):
    fmt_name, body = case
    path = tmp_path / "fuzz.log"
    path.write_bytes(body)
    query = BytesQuery(("jpg",), log_scan.dt.date(2000, 1, 1), log_scan.dt.date(2017, 12, 31))
    whole = log_scan.scan_log(str(path), query, fmt_name, block_size=1 << 20)
    split = log_scan.scan_log(str(path), query, fmt_name, block_size=block_size)
    assert split.files[0].as_dict() == whole.files[0].as_dict()
    assert split.files[0].malformed_examples == whole.files[0].malformed_examples
    assert (split.total_bytes, split.bytes_missing, dict(split.by_day)) == (
        whole.total_bytes,
        whole.bytes_missing,
        dict(whole.by_day),
    )


def test_header_run_split_anywhere_keeps_layout_and_line_numbers(tmp_path):
    first = (
        "#Version: 1.0\n#Fields: date time x-edge-location sc-bytes c-ip cs-method cs(Host) cs-uri-stem\n"
        + "2017-08-24\t01:00:00\tHKG\t1\tip\tGET\th\t/a.jpg\n" * 3
    )
    second = (
        "#Version: 1.0\n#Fields: sc-bytes cs-uri-stem time date\n"
        + "5\t/b.jpg\t01:00:00\t2017-08-24\n" * 2
        + "not a log line\n"
        + "7\t/c.JPG\t01:00:00\t2017-08-25\n"
    )
    path = tmp_path / "concatenated.log"
    path.write_text(first + second)
    # one boundary at each line end around the second header run, and many boundaries with tiny blocks
    for block_size in [*range(len(first) - 10, len(first) + 70), 1, 2, 5, 17, 40]:
        summary = log_scan.scan_log(str(path), BytesQuery(), "cloudfront", block_size=block_size)
        accounting = summary.files[0]
        assert (summary.total_bytes, dict(summary.by_day)) == (
            3 + 10 + 7,
            {"2017-08-24": [13, 5], "2017-08-25": [7, 1]},
        ), block_size
        assert (accounting.lines_read, accounting.comment_lines, accounting.malformed_lines) == (11, 4, 1)
        assert [line for line, _reason, _text in accounting.malformed_examples] == [10], block_size


def test_tsv_header_lines_not_starting_with_a_letter_relocate_columns_too():
    # The per-line parser reads " date\turl..." (stripped names) as a header: the block index must see it as well.
    spec = log_formats.FORMATS["tsv"]
    for header in (b" date\ttime\tother\tsize\turl", b"\tdate\ttime\tother\tsize\turl", b"(date)\ttime\tsize\turl"):
        # the data line is valid under both layouts, with other values under the old one
        block = (
            b"date\ttime\tsize\turl\n2017-08-24\t01:00:00\t5\t/a.jpg\n"
            + header
            + b"\n2017-08-24\t01:00:00\t5\t6\t/b.jpg\n"
        )
        assert_fast_path_agrees(spec, block, spec.initial_state())


def test_tiny_blocks_without_records():
    for fmt_name in ("cloudfront", "tsv"):
        spec = log_formats.FORMATS[fmt_name]
        for block in (b"x\n", b"\n", b"x", b"1\t2\n", b"#Fields: date time sc-bytes cs-uri-stem\n"):
            assert_fast_path_agrees(spec, block, spec.initial_state())


def test_size_first_in_the_block_is_read_right_aligned(tmp_path):
    # The size cell sits at the very start of blocks here: its right-aligned window must not slide past the start.
    text = "#Fields: sc-bytes date time cs-uri-stem\n" + "".join(
        f"{n}\t2017-08-24\t01:00:00\t/a.jpg\n" for n in (7, 12345678901, 3, 999999999999999999, 40)
    )
    path = tmp_path / "size-first.log"
    path.write_text(text)
    for block_size in (1, 8, 30, 1 << 20):
        summary = log_scan.scan_log(str(path), BytesQuery(), "cloudfront", block_size=block_size)
        assert summary.total_bytes == 7 + 12345678901 + 3 + 999999999999999999 + 40


class _ShortReads(io.RawIOBase):
    """A stream that returns at most ``step`` bytes per read, as pipes and gzip streams may."""

    def __init__(self, data: bytes, step: int):
        self.data, self.pos, self.step = data, 0, step

    def readable(self):
        return True

    def readinto(self, buffer):
        n = min(self.step, len(buffer), len(self.data) - self.pos)
        buffer[:n] = self.data[self.pos : self.pos + n]
        self.pos += n
        return n


@settings(max_examples=100, deadline=None)
@given(
    lines=st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")), max_size=30),
    block_size=st.integers(1, 64),
    bom=st.booleans(),
    final_newline=st.booleans(),
    step=st.integers(1, 100),
    in_flight=st.integers(1, 4),
)
def test_block_reader_hands_back_whole_lines_and_never_overwrites_a_held_block(
    lines, block_size, bom, final_newline, step, in_flight
):
    data = b"\n".join(lines) + (b"\n" if final_newline and lines else b"")
    assume(not data.startswith(BOM))
    reader = log_scan.BlockReader(_ShortReads((BOM if bom else b"") + data, step), block_size)
    held, out = collections.deque(), []
    for block in reader:
        copy = block.tobytes()
        assert copy  # never an empty block
        held.append((block, copy))
        out.append(copy)
        while len(held) > in_flight:  # blocks still held are untouched by the reads since
            old, old_copy = held.popleft()
            assert old.tobytes() == old_copy
            reader.release(old)
    assert all(b.endswith(b"\n") for b in out[:-1])
    assert b"".join(out) == data
    assert all(block.tobytes() == copy for block, copy in held)
