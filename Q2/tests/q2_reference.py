"""A deliberately simple, line-by-line reference for Q2, written apart from the pyarrow implementation.

It shares the definitions (Q2/README.md) but none of the code: str methods and datetime instead of regex tables and
vector kernels. Lines are decoded as Latin-1 so every byte maps to one character and back.
"""

from __future__ import annotations

import bz2
import datetime as dt
import gzip
import json
from urllib.parse import unquote_to_bytes

MONTHS = {
    m: i for i, m in enumerate(["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"], 1)
}
EXT_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+-")


def url_extension(target: str) -> tuple:
    """(path, extension) of a logged target, per the README's definition."""
    path = target
    scheme, sep, rest = path.partition("://")
    if sep and scheme and scheme[0].isalpha() and all(c.isalnum() or c in "+.-" for c in scheme) and scheme.isascii():
        slash = [i for i in (rest.find("/"), rest.find("?"), rest.find("#")) if i >= 0]
        path = rest[min(slash) :] if slash else ""
    for mark in "?#":
        path = path.split(mark, 1)[0]
    if "%" in path:
        path = unquote_to_bytes(path.encode("latin-1")).decode("latin-1")
    last = path.rsplit("/", 1)[-1]
    if "." not in last:
        return path, ""
    ext = last.rsplit(".", 1)[1]
    if not ext or len(ext) > 32 or not set(ext) <= EXT_CHARS:
        return path, ""
    return path, ext.lower()


def _size(text: str):
    if text == "-":
        return 0
    if text.isdigit() and text.isascii() and len(text) <= 18:
        return int(text)
    return None


def _date_ok(day: str, time: str) -> bool:
    try:
        dt.datetime.strptime(day + " " + time, "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return False
    return len(day) == 10 and len(time) == 8


def _quoted(text: str, i: int):
    """Text of the double-quoted field starting at text[i] == '"' (backslash escapes kept) and the index after it."""
    j = i + 1
    while j < len(text):
        if text[j] == "\\":
            j += 2
            continue
        if text[j] == '"':
            return text[i + 1 : j], j + 1
        j += 1
    return None, None


def _bracket_time(text: str):
    """(day 'YYYY-MM-DD', time, offset, index after ']') of '[dd/Mon/yyyy:HH:MM:SS +zzzz]' or None."""
    inside = text[1:28]
    if len(text) < 28 or text[0] != "[" or text[27] != "]" or inside[2] != "/" or inside[6] != "/" or inside[11] != ":":
        return None
    month = MONTHS.get(inside[3:6])
    if month is None or inside[20] != " " or inside[21] not in "+-" or not inside[22:26].isdigit():
        return None
    day = f"{inside[7:11]}-{month:02d}-{inside[0:2]}"
    return day, inside[12:20], inside[21:26], 28


def _request_target(request: str) -> str:
    parts = request.split(" ")
    return parts[1] if len(parts) >= 2 and parts[0] and parts[1] else ""


def parse_clf(text: str, gandi: bool = False):
    """Common/combined (any prefix before the [time]); ``gandi``: a '(N s)' field between the time and request."""
    start = text.find("[")
    while start >= 0 and _bracket_time(text[start:]) is None:  # skip '[' of a bracketed IPv6 client
        start = text.find("[", start + 1)
    if start < 0:
        return None
    stamp = _bracket_time(text[start:])
    quote = start + 29
    if gandi:
        close = text.find(")", start + 30)
        if text[start + 28 : start + 30] != " (" or close < 0:
            return None
        quote = close + 2
        if text[close : close + 3] != ') "':
            return None
    elif text[start + 28 : start + 30] != ' "':
        return None
    day, time, offset, _ = stamp
    request, after = _quoted(text, quote)
    if request is None:
        return None
    tail = text[after:].split(" ")
    if len(tail) < 3 or tail[0] != "":
        return None
    status, size = tail[1], tail[2]
    if not ((len(status) == 3 and status.isdigit()) or status == "-"):
        return None
    return day, time, offset, size, _request_target(request)


def parse_s3(text: str):
    tokens, i = [], 0
    while i < len(text) and len(tokens) < 13:
        if text[i] == "[":
            end = text.find("]", i)
            if end < 0:
                return None
            tokens.append(text[i : end + 1])
            i = end + 2
        elif text[i] == '"':
            value, after = _quoted(text, i)
            if value is None:
                return None
            tokens.append(("quoted", value))
            i = after + 1
        else:
            end = text.find(" ", i)
            end = len(text) if end < 0 else end
            tokens.append(text[i:end])
            i = end + 1
    if len(tokens) < 12 or not isinstance(tokens[2], str):
        return None
    stamp = _bracket_time(tokens[2])
    if stamp is None:
        return None
    day, time, offset, _ = stamp
    key, request, status, size = tokens[7], tokens[8], tokens[9], tokens[11]
    if isinstance(key, tuple) or isinstance(status, tuple) or isinstance(size, tuple):
        return None
    if not ((len(status) == 3 and status.isdigit()) or status == "-"):
        return None
    target = _request_target(request[1]) if isinstance(request, tuple) else ""
    if not isinstance(request, tuple) and request != "-":
        return None
    if not target and key != "-":
        target = key
    return day, time, offset, size, target


def _iso(text: str):
    """(day, time, offset) of '2019-10-14T12:00:20.694172Z' / '...+02:00' / '... ' or None."""
    if len(text) < 19 or text[10] not in "T " or text[4] != "-" or text[7] != "-":
        return None
    day, time, rest = text[:10], text[11:19], text[19:]
    if rest.startswith((".", ",")):
        digits = len(rest) - len(rest[1:].lstrip("0123456789"))
        if digits == 1:
            return None
        rest = rest[digits:]
    if rest in ("", "Z"):
        offset = "+0000"
    elif len(rest) in (5, 6) and rest[0] in "+-" and rest[1:].replace(":", "", 1).isdigit():
        offset = rest[0] + rest[1:].replace(":", "")
        if len(offset) != 5:
            return None
    else:
        return None
    return day, time, offset


def _epoch(text: str):
    whole, _dot, fraction = text.partition(".")
    if not whole.isdigit() or not whole.isascii() or len(whole) > 19 or (fraction and not fraction.isdigit()):
        return None
    value = int(whole)
    for limit, scale in ((10**17, 10**9), (10**14, 10**6), (10**11, 10**3)):
        if value >= limit:
            value //= scale
            break
    if value > 253402300799:
        return None
    stamp = dt.datetime(1970, 1, 1) + dt.timedelta(seconds=value)
    return stamp.strftime("%Y-%m-%d"), stamp.strftime("%H:%M:%S"), "+0000"


def _tokens(text: str, runs: bool = True) -> list:
    """Space-separated fields, a double-quoted field kept whole (quotes removed)."""
    out, i = [], 0
    while i < len(text):
        if text[i] == " ":
            i += 1
            continue
        if text[i] == '"':
            end = text.find('"', i + 1)
            if end < 0:
                return out + [None]
            out.append(text[i + 1 : end])
            i = end + 1
        else:
            end = text.find(" ", i)
            end = len(text) if end < 0 else end
            out.append(text[i:end])
            i = end
    return out


def _load_balancer(text: str, first: int):
    """ELB (first=0) and ALB (first=1): time, ..., sent bytes, "request"."""
    parts = text.split(" ")
    if len(parts) < first + 12 or not parts[first + 11].startswith('"'):
        return None
    stamp = _iso(parts[first])
    request, _after = _quoted(text, len(" ".join(parts[: first + 11])) + 1)
    if stamp is None or request is None:
        return None
    return (*stamp, parts[first + 10], _request_target(request))


def parse_haproxy(text: str):
    at = text.find("]: ")
    if at < 0:
        return None
    parts = text[at + 3 :].split(" ")
    if len(parts) < 7 or not parts[1].startswith("[") or not parts[1].endswith("]"):
        return None
    inside = parts[1][1:-1]
    if len(inside) < 20 or inside[2] != "/" or inside[6] != "/" or inside[11] != ":" or inside[3:6] not in MONTHS:
        return None
    if len(inside) > 20 and (inside[20] not in ".," or not inside[21:].isdigit()):
        return None
    status, size = parts[5], parts[6]
    if not ((len(status) == 3 and status.isdigit()) or status == "-"):
        return None
    quote = text.find('"', at + 3 + len(" ".join(parts[:7])))
    if quote < 0:
        return None
    request, _after = _quoted(text, quote)
    if request is None:
        return None
    day = f"{inside[7:11]}-{MONTHS[inside[3:6]]:02d}-{inside[0:2]}"
    return day, inside[12:20], "+0000", size, _request_target(request)


def parse_squid(text: str):
    parts = [p for p in text.split(" ") if p]
    if len(parts) < 7:
        return None
    stamp = _epoch(parts[0])
    return None if stamp is None else (*stamp, parts[4], parts[6])


JSON_KEYS = {  # format -> (time keys, layout, size keys, url keys): from the vendors' documentation
    "caddy": (["ts"], "epoch", ["size"], ["request.uri"]),
    "traefik-json": (["StartUTC", "StartLocal"], "iso", ["DownstreamContentSize"], ["RequestPath"]),
    "nginx-json": (
        ["date", "time", "time_iso8601", "timestamp", "@timestamp"],
        "iso",
        ["length", "body_bytes_sent", "bytes_sent", "size"],
        ["path", "request_uri", "uri", "url"],
    ),
}


def parse_json(text: str, fmt: str):
    try:
        obj = json.loads(text.encode("latin-1"))  # JSON is UTF-8: the line's bytes as they are
    except ValueError:
        return None
    if not isinstance(obj, dict):
        return None
    time_keys, layout, size_keys, url_keys = JSON_KEYS[fmt]

    def first(keys):
        for key in keys:
            value = obj
            for part in key.split("."):
                value = value.get(part) if isinstance(value, dict) else None
            if value is not None and not isinstance(value, (dict, list, bool)):
                return value if isinstance(value, str) else json.dumps(value)
        return None

    stamp_text, size, url = first(time_keys), first(size_keys), first(url_keys)
    if stamp_text is None or size is None or url is None:
        return None
    stamp = _epoch(stamp_text) if layout == "epoch" else _iso(stamp_text)
    return None if stamp is None else (*stamp, size, url)


def _time_ok(time: str) -> bool:
    """HH:MM:SS with an optional fraction ('.363'): the clock part, or None."""
    return not (len(time) > 8 and (time[8] not in ".," or not time[9:].isdigit()))


HEADER_COLUMNS = {  # format -> (separator, date, time, size, url); alternatives in order
    "tsv": ("\t", ["date"], ["time"], ["size"], ["url"]),
    "cloudfront": ("\t", ["date"], ["time"], ["sc-bytes"], ["cs-uri-stem"]),
    "cloudfront-realtime": ("\t", ["timestamp"], None, ["sc-bytes"], ["cs-uri-stem"]),
    "w3c": (" ", ["date", "date-local"], ["time", "time-local"], ["sc-bytes", "bytes"], ["cs-uri-stem", "cs-uri"]),
}


def _header_record(text: str, fmt: str, columns):
    separator, date_names, time_names, size_names, url_names = HEADER_COLUMNS[fmt]
    if columns is None:
        return None
    fields = text.split("\t") if separator == "\t" else _tokens(text)
    if None in fields:
        return None

    def cell(names):
        for name in names:
            if name in columns:
                index = columns.index(name)
                return fields[index] if index < len(fields) else None
        return None

    if any(not [n for n in names if n in columns] for names in (date_names, size_names, url_names)):
        return "no column"
    if time_names is None:
        if cell(size_names) is None or cell(url_names) is None:
            return None
        stamp = _epoch(cell(date_names))
        return None if stamp is None else (*stamp, cell(size_names), cell(url_names))
    if not [n for n in time_names if n in columns]:
        return "no column"
    day, time, size, url = cell(date_names), cell(time_names), cell(size_names), cell(url_names)
    if None in (day, time, size, url) or not _time_ok(time):
        return None
    return day, time[:8], "+0000", size, url


def reference_scan(raw: bytes, fmt: str, extensions, start: str, end: str) -> dict:
    """Accounting and totals for one file's bytes (gzip, bzip2 allowed); extensions already include aliases.

    fmt: tsv, cloudfront, cloudfront-realtime, w3c, clf, gandi, s3, alb, elb, haproxy, squid, caddy, traefik-json,
    nginx-json.
    """
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if raw[:3] == b"BZh":
        raw = bz2.decompress(raw)
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    text_all = raw.decode("latin-1")
    lines = text_all.split("\n")
    if text_all.endswith("\n"):
        lines.pop()
    out = {
        "lines_read": len(lines),
        "lines_used": 0,
        "lines_not_matching": 0,
        "malformed_lines": 0,
        "comment_lines": 0,
        "blank_lines": 0,
        "total_bytes": 0,
        "bytes_missing": 0,
        "by_day": {},
        "records": 0,  # usable lines, whatever their day and extension
        "record_bytes": 0,
    }
    columns = None
    if fmt == "tsv":
        columns = ["date", "time", "size", "url"]
    if fmt == "cloudfront":
        columns = ["date", "time", "x-edge-location", "sc-bytes", "c-ip", "cs-method", "cs(Host)", "cs-uri-stem"]
    if fmt == "cloudfront-realtime":
        columns = [
            "timestamp",
            "c-ip",
            "time-to-first-byte",
            "sc-status",
            "sc-bytes",
            "cs-method",
            "cs-protocol",
            "cs-host",
            "cs-uri-stem",
        ]
    for line in lines:
        text = line.rstrip("\r\n")
        if not text.strip(" \t\r\n\x0b\x0c"):  # ASCII whitespace only (str.strip also strips \x1c-\x1f)
            out["blank_lines"] += 1
            continue
        if fmt in HEADER_COLUMNS and fmt != "tsv" and text.startswith("#Fields:"):
            columns = text[8:].split()
            out["comment_lines"] += 1
            continue
        if (
            fmt == "tsv"
            and not text[:1].isdigit()
            and {"date", "time", "size", "url"} & {c.strip().lower() for c in text.split("\t")}
        ):
            columns = [c.strip().lower() for c in text.split("\t")]
            out["comment_lines"] += 1
            continue
        if text.startswith("#"):
            out["comment_lines"] += 1
            continue
        if fmt in HEADER_COLUMNS:
            parsed = _header_record(text, fmt, columns)
            parsed = None if parsed == "no column" else parsed
        elif fmt == "clf":
            parsed = parse_clf(text)
        elif fmt == "gandi":
            parsed = parse_clf(text, gandi=True)
        elif fmt == "s3":
            parsed = parse_s3(text)
        elif fmt in ("alb", "elb"):
            parsed = _load_balancer(text, 1 if fmt == "alb" else 0)
        elif fmt == "haproxy":
            parsed = parse_haproxy(text)
        elif fmt == "squid":
            parsed = parse_squid(text)
        else:
            parsed = parse_json(text, fmt)
        if parsed is None:
            out["malformed_lines"] += 1
            continue
        day, time, offset, size_text, target = parsed
        size = _size(size_text)
        if size is None or not _date_ok(day, time) or not _offset_ok(offset):
            out["malformed_lines"] += 1
            continue
        out["records"] += 1
        out["record_bytes"] += size
        _path, ext = url_extension(target)
        if start <= day <= end and ext in extensions:
            out["lines_used"] += 1
            out["total_bytes"] += size
            out["bytes_missing"] += size_text == "-"
            out["by_day"][day] = out["by_day"].get(day, 0) + size
        else:
            out["lines_not_matching"] += 1
    return out


def _offset_ok(offset: str) -> bool:
    return (
        len(offset) == 5
        and offset[0] in "+-"
        and offset[1:].isdigit()
        and int(offset[1:3]) <= 14
        and int(offset[3:]) < 60
    )
