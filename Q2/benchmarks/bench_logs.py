"""Generated logs for the benchmark: combined (Apache/nginx) and W3C (IIS) logs with the same traffic shape as the
CloudFront generator of dummy_log, written in vector operations so 1 GB takes seconds."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
W3C_FIELDS = (
    "date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip cs(User-Agent) cs(Referer) "
    "sc-status sc-substatus sc-win32-status sc-bytes cs-bytes time-taken"
)
UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/60.0.3112.101"


def _pick(rng: np.random.Generator, pool, n: int) -> pa.Array:
    return pa.array(pool).take(pa.array(rng.integers(0, len(pool), size=n)))


def _requests(rng: np.random.Generator, n: int, first_day: dt.date, n_days: int) -> dict:
    """Days (datetime.date as numpy datetime64), seconds of day, sizes (strings, ~1 % '-') and URL paths."""
    days = np.datetime64(first_day) + rng.integers(0, n_days, size=n).astype("timedelta64[D]")
    seconds = rng.integers(0, 86400, size=n)
    sizes = pa.array(np.round(rng.lognormal(10.0, 1.2, size=n)).astype(np.int64)).cast(pa.string())
    sizes = pc.if_else(pa.array(rng.random(n) < 0.01), "-", sizes)
    stems = pc.binary_join_element_wise(
        _pick(rng, ("/img/", "/static/", "/news/2017/08/", "/assets/%E6%96%B0%E8%81%9E/"), n),
        pa.array(rng.integers(0, 20000, size=n)).cast(pa.string()),
        _pick(rng, (".jpg", ".jpg", ".jpeg", ".JPG", ".js", ".css", ".png", ".html"), n),
        "",
    )
    return {"days": days, "seconds": seconds, "sizes": sizes, "stems": stems}


def _clock(seconds: np.ndarray) -> pa.Array:
    hh, mm, ss = seconds // 3600, seconds // 60 % 60, seconds % 60
    parts = [pa.array(np.char.zfill(v.astype(str), 2)) for v in (hh, mm, ss)]
    return pc.binary_join_element_wise(*parts, ":")


def combined_chunk(n: int, rng: np.random.Generator, first_day=dt.date(2017, 8, 23), n_days: int = 4) -> bytes:
    """``n`` combined-log lines ('\\n' endings), offset +0000."""
    r = _requests(rng, n, first_day, n_days)
    ymd = r["days"].astype(str)
    month = np.array([MONTHS[int(s[5:7]) - 1] for s in ymd])
    day = pc.binary_join_element_wise(
        pa.array([s[8:10] for s in ymd]), pa.array(month), pa.array([s[:4] for s in ymd]), "/"
    )
    lines = pc.binary_join_element_wise(
        _pick(rng, ("192.0.2.10", "198.51.100.7", "2001:db8::1", "203.0.113.99"), n),
        " - - [",
        day,
        ":",
        _clock(r["seconds"]),
        ' +0000] "GET ',
        r["stems"],
        ' HTTP/1.1" ',
        _pick(rng, ("200", "200", "200", "304", "404"), n),
        " ",
        r["sizes"],
        ' "https://www.example.com/" "' + UA + '"',
        "",
    )
    return ("\n".join(lines.to_pylist()) + "\n").encode()


def w3c_chunk(n: int, rng: np.random.Generator, first_day=dt.date(2017, 8, 23), n_days: int = 4) -> bytes:
    """``n`` IIS W3C lines with the fields of :data:`W3C_FIELDS` (no header)."""
    r = _requests(rng, n, first_day, n_days)
    lines = pc.binary_join_element_wise(
        pa.array(r["days"].astype(str)),
        " ",
        _clock(r["seconds"]),
        " 10.0.0.1 GET ",
        r["stems"],
        " - 443 - ",
        _pick(rng, ("192.0.2.10", "198.51.100.7", "2001:db8::1", "203.0.113.99"), n),
        " " + UA.replace(" ", "+") + " https://www.example.com/ ",
        _pick(rng, ("200", "200", "200", "304", "404"), n),
        " 0 0 ",
        r["sizes"],
        " 421 15",
        "",
    )
    return ("\n".join(lines.to_pylist()) + "\n").encode()


def write_log(path: Path, kind: str, target_bytes: int, random_state: int = 2017) -> Path:
    """Write a ``kind`` ('combined' or 'w3c') log of about ``target_bytes`` bytes in chunks of 50,000 lines."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(random_state)
    chunk = combined_chunk if kind == "combined" else w3c_chunk
    partial = path.with_suffix(".partial")  # renamed when complete: an interrupted run never leaves a short log
    with open(partial, "wb") as out:
        written = 0
        if kind == "w3c":
            header = f"#Software: Microsoft Internet Information Services 10.0\n#Version: 1.0\n#Fields: {W3C_FIELDS}\n"
            written += out.write(header.encode())
        while written < target_bytes:
            written += out.write(chunk(50_000, rng))
    partial.rename(path)
    return path
