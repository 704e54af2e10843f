"""The real samples in ../shared/data/logs: detected, parsed, and totals equal to the independent reference."""

import datetime as dt

import pytest

import log_scan
from log_scan import BytesQuery
from q2_reference import reference_scan

SAMPLES = {  # file -> format a human reads off the file
    "beats-apache-access.log": "clf",
    "beats-nginx-access.log": "clf",
    "beats-s3-server-access.log": "s3",
    "elastic-examples-apache-combined.log": "clf",
    "lnav-access.log": "clf",
    "matomo-amazon_cloudfront_web.log": "cloudfront",
    "matomo-common.log.gz": "clf",
}
WIDE = BytesQuery(
    ("html", "png", "ico", "jpg", "css", "js", "gz", "war", "xml", "jspa"), dt.date(2000, 1, 1), dt.date(2030, 12, 31)
)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_real_sample_matches_reference(shared_logs, name):
    path = shared_logs / name
    summary = log_scan.scan_log(str(path), WIDE)
    accounting = summary.files[0]
    assert accounting.format == SAMPLES[name]
    expected = reference_scan(path.read_bytes(), SAMPLES[name], WIDE.wanted_extensions(), "2000-01-01", "2030-12-31")
    got = {
        **accounting.as_dict(),
        "total_bytes": summary.total_bytes,
        "bytes_missing": summary.bytes_missing,
        "by_day": {day: b for day, (b, _n) in summary.by_day.items()},
    }
    assert {k: got[k] for k in expected} == expected
    assert accounting.malformed_lines == 0  # every real sample parses
    assert accounting.is_balanced()


def test_all_samples_in_one_run_with_a_glob(shared_logs):
    summary = log_scan.BytesSummary()
    for path in sorted(shared_logs.glob("*.log*")):
        summary.add(log_scan.scan_log(str(path), WIDE))
    assert len(summary.files) == len(SAMPLES)
    assert summary.total_bytes == sum(
        reference_scan(p.read_bytes(), SAMPLES[p.name], WIDE.wanted_extensions(), "2000-01-01", "2030-12-31")[
            "total_bytes"
        ]
        for p in sorted(shared_logs.glob("*.log*"))
    )


def test_hand_checked_awkward_lines(shared_logs):
    # S3: the BATCH.DELETE.OBJECT line has request '-' and bytes sent '-': its key names a .war file, 0 bytes.
    s3 = log_scan.scan_log(str(shared_logs / "beats-s3-server-access.log"), BytesQuery(("war",), WIDE.start, WIDE.end))
    assert (s3.requests, s3.total_bytes, s3.bytes_missing) == (1, 0, 1)
    # CloudFront: the one data line is /view/my/file.html, 182 bytes on 2014-05-23; two header lines.
    cf = log_scan.scan_log(
        str(shared_logs / "matomo-amazon_cloudfront_web.log"),
        BytesQuery(("html",), dt.date(2014, 5, 23), dt.date(2014, 5, 23)),
    )
    assert (cf.total_bytes, cf.files[0].comment_lines) == (182, 2)
    # Apache mixed: '::1 ... "GET /favicon.ico" 404 209' at +0200 counts on 2016-12-26 as written.
    apache = log_scan.scan_log(
        str(shared_logs / "beats-apache-access.log"), BytesQuery(("ico",), dt.date(2016, 12, 26), dt.date(2016, 12, 26))
    )
    assert apache.total_bytes == 209
    # lnav: the vmkboot.gz line without ident/user fields still counts (46210 bytes twice, 2009-07-20).
    lnav = log_scan.scan_log(
        str(shared_logs / "lnav-access.log"), BytesQuery(("gz",), dt.date(2009, 7, 20), dt.date(2009, 7, 20))
    )
    assert (lnav.total_bytes, lnav.requests) == (46210 * 2 + 78929 * 2, 4)


def test_elastic_sample_crosses_midnight(shared_logs):
    path = shared_logs / "elastic-examples-apache-combined.log"
    one_day = log_scan.scan_log(str(path), BytesQuery(("png",), dt.date(2015, 5, 17), dt.date(2015, 5, 17)))
    both = log_scan.scan_log(str(path), BytesQuery(("png",), dt.date(2015, 5, 17), dt.date(2015, 5, 18)))
    assert set(both.by_day) == {"2015-05-17", "2015-05-18"}
    assert one_day.total_bytes == both.by_day["2015-05-17"][0] < both.total_bytes
