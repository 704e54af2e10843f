"""The real samples in ../shared/data/logs: detected, parsed, and totals equal to the independent reference."""

import datetime as dt
import gzip
import re

import pyarrow.compute as pc
import pytest

import log_engine
import log_formats
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
    "formats/beats-aws-elb-http.log": "elb",
    "formats/beats-iis.log": "w3c",
    "formats/beats-nginx-with-host.log": "clf",
    "formats/beats-traefik.log": "clf",
    "formats/cloudfront-realtime-kinesis.log": "cloudfront-realtime",
    "formats/cloudfront-rtmp.log": "cloudfront",
    "formats/elastic-examples-apache-10k.log": "clf",
    "formats/lnav-alb-samples.log": "alb",
    "formats/lnav-elb-samples.log": "elb",
    "formats/lnav-haproxy.log": "haproxy",
    "formats/lnav-shop-access.log": "clf",
    "formats/lnav-w3c.1.log": "w3c",
    "formats/lnav-w3c.6.log": "w3c",
    "formats/matomo-alb.log": "alb",
    "formats/matomo-amazon_cloudfront_rtmp.log": "w3c",  # space-separated despite the CloudFront fields
    "formats/matomo-caddy_json.log": "caddy",
    "formats/matomo-common_vhost.log": "clf",
    "formats/matomo-elb.log": "elb",
    "formats/matomo-gandi.log": "gandi",
    "formats/matomo-haproxy.log": "haproxy",
    "formats/matomo-icecast2.log": "clf",
    "formats/matomo-iis.log": "w3c",
    "formats/matomo-ncsa_extended.log": "clf",
    "formats/matomo-netscaler.log": "w3c",
    "formats/matomo-nginx_json.log": "nginx-json",
    "formats/matomo-ovh.log": "clf",
    "formats/matomo-shoutcast.log": "w3c",
    "formats/matomo-splitted_date_and_time.log": "w3c",
    "formats/matomo-traefik_json.log": "traefik-json",
    "formats/squid-native-excerpt.log": "squid",
}
#: Files that must be refused, with the reason a user reads (their headers carry no response size, or the date is
#: not in any time layout).
REFUSED = {
    "formats/lnav-w3c.0.log": "the header at line 4 has no sc-bytes/bytes column",
    "formats/lnav-w3c.2.log": "the header at line 4 has no date/date-local or sc-bytes/bytes column",
    "formats/lnav-w3c.3.log": "the header at line 7 has no sc-bytes/bytes column",
    "formats/lnav-w3c.4.log": "the header at line 4 has no sc-bytes/bytes column",
    "formats/lnav-w3c.5.log": "the header at line 1 has no sc-bytes/bytes column",
    "formats/matomo-iis_custom.log": "the header at line 7 has no sc-bytes/bytes column",
    "formats/matomo-incapsula_w3c.log": "the header at line 4 has no sc-bytes/bytes column",
    "formats/matomo-custom_regex_custom_date.log": "cannot detect the log format from line 1",
}
#: Lines of real samples that are not requests, so malformed by design (HAProxy start-up messages, a TCP request in
#: IIS's middle header block, a Struts exploit attempt whose URL holds spaces).
EXPECTED_MALFORMED = {"formats/lnav-haproxy.log": 4, "formats/beats-iis.log": 3}
WIDE = BytesQuery(
    ("html", "png", "ico", "jpg", "css", "js", "gz", "war", "xml", "jspa", "gif", "php", "txt", "jsp", "json"),
    dt.date(2000, 1, 1),
    dt.date(2030, 12, 31),
)


def _decompressed(path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data


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
    records = log_engine.parse_block(_decompressed(path), log_formats.FORMATS[SAMPLES[name]]).records
    got["records"], got["record_bytes"] = records.num_rows, pc.sum(records.column("bytes")).as_py() or 0
    assert {k: got[k] for k in expected} == expected
    assert expected["records"] > 0
    assert accounting.malformed_lines == EXPECTED_MALFORMED.get(name, 0)
    assert accounting.is_balanced()


def test_every_sample_is_listed(shared_logs):
    found = {str(p.relative_to(shared_logs)) for p in shared_logs.rglob("*") if p.is_file() and p.name != "README.md"}
    assert found == set(SAMPLES) | set(REFUSED)


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_sample_without_sizes_is_refused_with_the_reason(shared_logs, name):
    with pytest.raises(log_scan.LogInputError, match=re.escape(REFUSED[name])):
        log_scan.scan_log(str(shared_logs / name), WIDE)


def test_all_samples_in_one_run_with_a_glob(shared_logs):
    summary = log_scan.BytesSummary()
    for path in sorted(shared_logs.glob("*.log*")):
        summary.add(log_scan.scan_log(str(path), WIDE))
    top_level = [name for name in SAMPLES if "/" not in name]
    assert len(summary.files) == len(top_level)
    assert summary.total_bytes == sum(
        reference_scan(
            (shared_logs / name).read_bytes(), SAMPLES[name], WIDE.wanted_extensions(), "2000-01-01", "2030-12-31"
        )["total_bytes"]
        for name in top_level
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
