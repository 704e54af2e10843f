"""Property tests: generated logs with injected garbage agree with the line-by-line reference, for every format,
block size and line ending."""

import datetime as dt
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import log_engine
import log_scan
from log_scan import BytesQuery
from q2_reference import reference_scan

DAYS = [dt.date(2017, 8, 22) + dt.timedelta(days=i) for i in range(6)]
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

names = st.text(alphabet="abcXYZ09-_.%2E", min_size=0, max_size=8)
targets = st.builds(
    lambda prefix, folder, name, ext, suffix: f"{prefix}{folder}{name}{ext}{suffix}",
    st.sampled_from(["", "http://cdn.example.com", "https://h:8080"]),
    st.sampled_from(["/", "/img/", "/a.b/", "/%E6%96%B0/"]),
    names,
    st.sampled_from([".jpg", ".JPG", ".jpeg", ".png", ".css", "", ".jpg.gz", "%2Ejpg"]),
    st.sampled_from(["", "?w=1", "#top", "?f=x.jpg", "?a#b"]),
)
records = st.tuples(
    st.sampled_from(DAYS),
    st.integers(0, 86399),
    st.sampled_from(["+0000", "-0700", "+0800"]),
    st.one_of(st.integers(0, 10**12), st.just("-")),
    targets,
)
garbage = st.one_of(
    # no '\x1f' first byte: a file starting with the gzip magic is read as gzip (a corrupt one is exit code 2)
    st.binary(max_size=60).filter(lambda b: b"\n" not in b and not b.startswith(b"\x1f")),
    st.sampled_from(
        [
            b"",
            b"   ",
            b"# comment",
            b"#Version: 1.0",
            b"\t\t\t",
            b"-",
            b"2017-08-24\t10:00:00",
            b'1.2.3.4 - - [24/Aug/2017:10:00:00 +0000] "GET /a.jpg HTTP/1.1" 200 12x',
            b'1.2.3.4 - - [31/Feb/2017:10:00:00 +0000] "GET /a.jpg HTTP/1.1" 200 1',
            b"2017-13-01\t10:00:00\t5\t/a.jpg",
            b"2017-08-24\t10:00:00\t-5\t/a.jpg",
        ]
    ),
)
lines = st.lists(st.one_of(st.tuples(st.just("record"), records), st.tuples(st.just("garbage"), garbage)), max_size=40)


def render(fmt: str, kind_and_value) -> bytes:
    kind, value = kind_and_value
    if kind == "garbage":
        return value
    day, seconds, offset, size, target = value
    time = f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
    epoch = int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc).timestamp()) + seconds
    iso = f"{day}T{time}.123456"
    stamp = f"{day.day:02d}/{MONTHS[day.month - 1]}/{day.year}:{time}"
    if fmt == "tsv":
        return f"{day}\t{time}\t{size}\t{target}".encode()
    if fmt == "cloudfront":
        return f"{day}\t{time}\tHKG60\t{size}\t192.0.2.1\tGET\th.net\t{target}\t200\t-\tMozilla".encode()
    if fmt == "cloudfront-realtime":
        return f"{epoch}.541\t192.0.2.1\t0.042\t200\t{size}\tGET\thttps\th.net\t{target}\t745".encode()
    if fmt == "w3c":
        return f"{day} {time} 10.0.0.1 GET {target} 200 {size} Mozilla/5.0+(X11)".encode()
    if fmt == "clf":
        return f'2001:db8::1 - - [{stamp} {offset}] "GET {target} HTTP/1.1" 200 {size} "-" "agent \\"x\\""'.encode()
    if fmt == "gandi":
        return (
            f'www.example.com 1.2.3.4 - - [{stamp} {offset}] (0 s) "GET {target} HTTP/1.1" 200 {size} "-" "a"'.encode()
        )
    if fmt == "alb":
        return (
            f"h2 {iso}Z app/lb/50dc 10.0.1.252:48160 10.0.0.66:9000 0.000 0.002 0.000 200 200 5 {size} "
            f'"GET {target} HTTP/2.0" "curl/7.46.0" - - arn:aws:x "Root=1-5" - -'
        ).encode()
    if fmt == "elb":
        return (
            f"{iso}Z my-lb 192.168.131.39:2817 10.0.0.1:80 0.000073 0.001048 0.000057 200 200 0 {size} "
            f'"GET {target} HTTP/1.1" "curl/7.38.0" - -'
        ).encode()
    if fmt == "haproxy":
        return (
            f"Feb 25 16:19:49 192.168.4.2 haproxy[7]: 141.35.244.171:53332 [{stamp}.143] fe~ be/srv "
            f'0/0/7/1457/1487 200 {size} - - ---- 2/1/0/0/0 0/0 {{Mozilla/5.0}} {{}} "GET {target} HTTP/1.1"'
        ).encode()
    if fmt == "squid":
        return f"{epoch}.756    261 192.168.1.45 TCP_HIT/200 {size} GET {target} - NONE/- image/jpeg".encode()
    if fmt == "s3":
        return (
            f'owner bucket [{stamp} {offset}] 192.0.2.1 arn:x REQ REST.GET.OBJECT key.bin "GET {target} HTTP/1.1" '
            f'200 - {size} 10 5 4 "-" "agent" - id SigV4'
        ).encode()
    number = size if size == "-" else int(size)
    if fmt == "caddy":
        document = {"level": "info", "ts": epoch + 0.8155608, "request": {"uri": target}, "size": number}
    elif fmt == "traefik-json":
        document = {"StartUTC": iso + "Z", "DownstreamContentSize": number, "RequestPath": target}
    else:
        zone = f"{offset[:3]}:{offset[3:]}"
        document = {"ip": "1.2.3.4", "path": target, "length": number, "date": f"{day}T{time}{zone}"}
    return json.dumps(document).encode()


W3C_FIELDS = "#Fields: date time s-ip cs-method cs-uri-stem sc-status sc-bytes cs(User-Agent)\n"
HEADERS = {
    "tsv": b"date\ttime\tsize\turl\n",
    "cloudfront": b"#Version: 1.0\n#Fields: date time x-edge-location sc-bytes c-ip cs-method cs(Host) "
    b"cs-uri-stem sc-status cs(Referer) cs(User-Agent)\n",
    "cloudfront-realtime": b"",
    "w3c": b"#Software: Microsoft Internet Information Services 10.0\n#Version: 1.0\n" + W3C_FIELDS.encode(),
    "clf": b"",
    "gandi": b"",
    "s3": b"",
    "alb": b"",
    "elb": b"",
    "haproxy": b"",
    "squid": b"",
    "caddy": b"",
    "traefik-json": b"",
    "nginx-json": b"",
}


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(
    fmt=st.sampled_from(sorted(HEADERS)),
    body=lines,
    eol=st.sampled_from([b"\n", b"\r\n"]),
    block_size=st.sampled_from([300, 1 << 20]),
    exts=st.sets(st.sampled_from(["jpg", "png", "css"]), min_size=1),
    exact=st.booleans(),
    first=st.sampled_from(DAYS),
    span=st.integers(0, 3),
    bom=st.booleans(),
)
def test_scan_agrees_with_reference(tmp_path, fmt, body, eol, block_size, exts, exact, first, span, bom):
    data = (b"\xef\xbb\xbf" if bom else b"") + HEADERS[fmt] + eol.join(render(fmt, line) for line in body) + eol
    path = tmp_path / f"generated-{fmt}.log"
    path.write_bytes(data)
    query = BytesQuery(tuple(sorted(exts)), first, first + dt.timedelta(days=span), exact_ext=exact)
    summary = log_scan.scan_log(str(path), query, format_name=fmt, block_size=block_size)
    expected = reference_scan(data, fmt, query.wanted_extensions(), query.start.isoformat(), query.end.isoformat())
    got = {
        **summary.files[0].as_dict(),
        "total_bytes": summary.total_bytes,
        "bytes_missing": summary.bytes_missing,
        "by_day": {day: b for day, (b, _n) in summary.by_day.items()},
    }
    got["records"] = got["lines_used"] + got["lines_not_matching"]
    expected.pop("record_bytes")
    assert {k: got[k] for k in expected} == expected
    assert summary.files[0].is_balanced()


@pytest.mark.slow  # compiles the numba kernel on a machine without its cache
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(
    fmt=st.sampled_from(["tsv", "cloudfront"]),
    body=lines,
    eol=st.sampled_from([b"\n", b"\r\n"]),
    exts=st.sets(st.sampled_from(["jpg", "png", "css"]), min_size=1),
    first=st.sampled_from(DAYS),
    span=st.integers(0, 3),
    tz=st.sampled_from([None, "Asia/Hong_Kong"]),
)
def test_tab_kernel_path_agrees_with_reference(tmp_path, fmt, body, eol, exts, first, span, tz):
    """The numba speed path of the tab formats (used for large blocks) gives the reference's counts."""
    data = HEADERS[fmt] + eol.join(render(fmt, line) for line in body) + eol
    path = tmp_path / f"kernel-{fmt}.log"
    path.write_bytes(data)
    query = BytesQuery(tuple(sorted(exts)), first, first + dt.timedelta(days=span), tz=tz)
    saved, log_engine.KERNEL_MIN_BYTES = log_engine.KERNEL_MIN_BYTES, 0
    try:
        summary = log_scan.scan_log(str(path), query, format_name=fmt)
    finally:
        log_engine.KERNEL_MIN_BYTES = saved
    got = {**summary.files[0].as_dict(), "total_bytes": summary.total_bytes, "bytes_missing": summary.bytes_missing}
    if tz is None:
        expected = reference_scan(data, fmt, query.wanted_extensions(), query.start.isoformat(), query.end.isoformat())
        expected["records"] = expected["lines_used"] + expected["lines_not_matching"]
        got["records"] = got["lines_used"] + got["lines_not_matching"]
        expected.pop("record_bytes"), expected.pop("by_day")
        assert {k: got[k] for k in expected} == expected
    else:  # the reference has no zones: compare with the generic path instead
        generic = log_scan.scan_log(str(path), query, format_name=fmt)
        assert summary.as_dict() == generic.as_dict()
