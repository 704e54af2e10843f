"""Synthetic CDN access logs: the take-home's dummy log and a large CloudFront log for the benchmark.

Both generators are deterministic for a given ``random_state`` and write with numpy/pyarrow vector operations so a
1 GB file takes seconds, not minutes.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from log_formats import CLOUDFRONT_FIELDS

#: Header of the take-home's dummy log (tab-separated, one header line).
DUMMY_HEADER = "date\ttime\tsize\turl"
DUMMY_EXTENSIONS = ("jpg", "js", "css")


def _random_days_and_times(rng: np.random.Generator, n: int, first_day: dt.date, n_days: int):
    """Return ``(dates, times)``: two pyarrow string arrays of length n ('YYYY-MM-DD', 'HH:MM:SS'), sorted in time."""
    seconds = np.sort(rng.integers(0, n_days * 86400, size=n))
    base = np.datetime64(first_day, "s")
    stamps = pa.array(base + seconds.astype("timedelta64[s]"))
    return pc.strftime(stamps, format="%Y-%m-%d"), pc.strftime(stamps, format="%H:%M:%S")


def _pick(rng: np.random.Generator, pool, n: int) -> pa.Array:
    """n values drawn uniformly (with replacement) from ``pool``, as a pyarrow string array."""
    return pa.array(list(pool), pa.string()).take(pa.array(rng.integers(0, len(pool), size=n)))


def dummy_cdn_log_lines(n_records: int = 100_000, random_state: int = 2017) -> pa.Array:
    """Records of the take-home's dummy CDN log, as a string array of tab-separated lines ``date time size url``.

    Dates run from 2017-08-23 to 2017-08-26 inclusive (uniform times, sorted), sizes are log-normal bytes
    (median about 20 KiB), and urls are ``http://cdn.example.com/<dir>/<name>.<ext>`` with ext in jpg/js/css.
    """
    if n_records < 0:
        raise ValueError(f"n_records must be >= 0, got {n_records}")
    rng = np.random.default_rng(random_state)
    dates, times = _random_days_and_times(rng, n_records, dt.date(2017, 8, 23), 4)
    sizes = pa.array(np.round(rng.lognormal(mean=10.0, sigma=1.2, size=n_records)).astype(np.int64)).cast(pa.string())
    dirs = _pick(rng, ("img", "static", "assets", "news/2017/08"), n_records)
    names = pa.array(rng.integers(0, 5000, size=n_records)).cast(pa.string())
    exts = _pick(rng, DUMMY_EXTENSIONS, n_records)
    paths = pc.binary_join_element_wise("http://cdn.example.com/", dirs, "/file", names, ".", exts, "")
    return pc.binary_join_element_wise(dates, times, sizes, paths, "\t")


def write_dummy_cdn_log(
    path: Path, n_records: int = 100_000, random_state: int = 2017, overwrite: bool = False
) -> Path:
    """Write the dummy CDN log (header line + ``n_records`` lines, '\\n' endings) to ``path`` and return it.

    Raises FileExistsError if ``path`` exists and ``overwrite`` is False: a user's file is never replaced silently.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = dummy_cdn_log_lines(n_records, random_state).to_pylist()
    path.write_text("\n".join([DUMMY_HEADER, *lines]) + "\n", encoding="utf-8")
    return path


def cloudfront_log_chunk(
    n_lines: int, rng: np.random.Generator, first_day: dt.date = dt.date(2017, 8, 23), n_days: int = 4
) -> bytes:
    """``n_lines`` CloudFront standard-log lines (33 tab-separated fields, '\\n' endings, no header) as bytes.

    Field values are realistic in shape (edge locations, ids, user agents, sizes); uri stems end in
    .jpg/.jpeg/.JPG/.js/.css/.png/.html, about 1 % of sizes are '-' and about 1 % of stems are percent-encoded.
    """
    n = n_lines
    dates, times = _random_days_and_times(rng, n, first_day, n_days)
    sizes = pa.array(np.round(rng.lognormal(10.0, 1.2, size=n)).astype(np.int64)).cast(pa.string())
    sizes = pc.if_else(pa.array(rng.random(n) < 0.01), "-", sizes)
    stems = pc.binary_join_element_wise(
        _pick(rng, ("/img/", "/static/", "/news/2017/08/", "/assets/%E6%96%B0%E8%81%9E/"), n),
        pa.array(rng.integers(0, 20000, size=n)).cast(pa.string()),
        _pick(rng, (".jpg", ".jpg", ".jpeg", ".JPG", ".js", ".css", ".png", ".html"), n),
        "",
    )
    ua = (
        "Mozilla/5.0%20(Windows%20NT%2010.0;%20Win64;%20x64)%20AppleWebKit/537.36%20(KHTML,%20like%20Gecko)"
        "%20Chrome/60.0.3112.101%20Safari/537.36"
    )
    request_ids = pc.binary_join_element_wise(
        pa.array(rng.integers(10**15, 10**16, size=n)).cast(pa.string()), "EXAMPLEc2VyaWFsaXNlZA==", ""
    )
    columns = {
        "date": dates,
        "time": times,
        "x-edge-location": _pick(rng, ("HKG60", "HKG62-C1", "NRT20", "SIN2"), n),
        "sc-bytes": sizes,
        "c-ip": _pick(rng, ("192.0.2.10", "198.51.100.7", "2001:db8::1", "203.0.113.99"), n),
        "cs-method": "GET",
        "cs(Host)": "d111111abcdef8.cloudfront.net",
        "cs-uri-stem": stems,
        "sc-status": _pick(rng, ("200", "200", "200", "304", "404"), n),
        "cs(Referer)": "https://www.example.com/",
        "cs(User-Agent)": ua,
        "cs-uri-query": _pick(rng, ("-", "-", "w=640&q=80"), n),
        "cs(Cookie)": "-",
        "x-edge-result-type": _pick(rng, ("Hit", "Miss", "RefreshHit"), n),
        "x-edge-request-id": request_ids,
        "x-host-header": "cdn.example.com",
        "cs-protocol": "https",
        "cs-bytes": "421",
        "time-taken": "0.003",
        "x-forwarded-for": "-",
        "ssl-protocol": "TLSv1.3",
        "ssl-cipher": "TLS_AES_128_GCM_SHA256",
        "x-edge-response-result-type": "Hit",
        "cs-protocol-version": "HTTP/2.0",
        "fle-status": "-",
        "fle-encrypted-fields": "-",
        "c-port": "51234",
        "time-to-first-byte": "0.002",
        "x-edge-detailed-result-type": "Hit",
        "sc-content-type": "image/jpeg",
        "sc-content-len": "-",
        "sc-range-start": "-",
        "sc-range-end": "-",
    }
    lines = pc.binary_join_element_wise(*[columns[name] for name in CLOUDFRONT_FIELDS], "\t")
    return ("\n".join(lines.to_pylist()) + "\n").encode()


def write_cloudfront_log(path: Path, target_bytes: int, random_state: int = 2017, overwrite: bool = False) -> Path:
    """Write a CloudFront standard log of about ``target_bytes`` bytes (headers + whole lines) and return its path.

    Written in chunks of 50,000 lines so memory stays small. Raises FileExistsError unless ``overwrite``.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(random_state)
    written = 0
    with open(path, "wb") as out:
        header = "#Version: 1.0\n#Fields: " + " ".join(CLOUDFRONT_FIELDS) + "\n"
        written += out.write(header.encode())
        while written < target_bytes:
            written += out.write(cloudfront_log_chunk(50_000, rng))
    return path
