"""A deliberately simple, line-by-line reference for Q2, written apart from the pyarrow implementation.

It shares the definitions (Q2/README.md) but none of the code: str methods and datetime instead of regex tables and
vector kernels. Lines are decoded as Latin-1 so every byte maps to one character and back.
"""

from __future__ import annotations

import datetime as dt
import gzip
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


def parse_clf(text: str):
    start = text.find("[")
    while start >= 0 and _bracket_time(text[start:]) is None:  # skip '[' of a bracketed IPv6 client
        start = text.find("[", start + 1)
    if start < 0:
        return None
    stamp = _bracket_time(text[start:])
    if text[start + 28 : start + 30] != ' "':
        return None
    day, time, offset, _ = stamp
    request, after = _quoted(text, start + 29)
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


def reference_scan(raw: bytes, fmt: str, extensions, start: str, end: str) -> dict:
    """Accounting and totals for one file's bytes (gzip allowed); extensions already include aliases."""
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
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
    }
    columns = None
    if fmt == "tsv":
        columns = ["date", "time", "size", "url"]
    if fmt == "cloudfront":
        columns = ["date", "time", "x-edge-location", "sc-bytes", "c-ip", "cs-method", "cs(Host)", "cs-uri-stem"]
    for line in lines:
        text = line.rstrip("\r\n")
        if not text.strip(" \t\r\n\x0b\x0c"):  # ASCII whitespace only (str.strip also strips \x1c-\x1f)
            out["blank_lines"] += 1
            continue
        if fmt == "cloudfront" and text.startswith("#Fields:"):
            columns = text[8:].split()
            out["comment_lines"] += 1
            continue
        if (
            fmt == "tsv"
            and not text[:1].isdigit()
            and {"date", "time", "size", "url"} <= set(c.strip().lower() for c in text.split("\t"))
        ):
            columns = [c.strip().lower() for c in text.split("\t")]
            out["comment_lines"] += 1
            continue
        if text.startswith("#"):
            out["comment_lines"] += 1
            continue
        if fmt in ("tsv", "cloudfront"):
            names = ("date", "time", "size", "url") if fmt == "tsv" else ("date", "time", "sc-bytes", "cs-uri-stem")
            fields = text.split("\t")
            parsed = None
            # a header line lacking a needed column leaves data lines malformed until the next header
            if all(n in columns for n in names):
                idx = [columns.index(n) for n in names]
                if len(fields) > max(idx):
                    parsed = (fields[idx[0]], fields[idx[1]], "+0000", fields[idx[2]], fields[idx[3]])
        elif fmt == "clf":
            parsed = parse_clf(text)
        else:
            parsed = parse_s3(text)
        if parsed is None:
            out["malformed_lines"] += 1
            continue
        day, time, _offset, size_text, target = parsed
        size = _size(size_text)
        if size is None or not _date_ok(day, time):
            out["malformed_lines"] += 1
            continue
        _path, ext = url_extension(target)
        if start <= day <= end and ext in extensions:
            out["lines_used"] += 1
            out["total_bytes"] += size
            out["bytes_missing"] += size_text == "-"
            out["by_day"][day] = out["by_day"].get(day, 0) + size
        else:
            out["lines_not_matching"] += 1
    return out
