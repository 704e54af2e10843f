"""GoAccess (a peer tool, Debian package ``goaccess``) reads the same real samples: its bandwidth total (the sum of the
response sizes of the requests it accepts) equals the sum of the sizes of the records our engine reads."""

import gzip
import json
import shutil
import subprocess

import pyarrow.compute as pc
import pytest

import log_engine
import log_formats

pytestmark = pytest.mark.skipif(
    shutil.which("goaccess") is None, reason="goaccess not installed (apt-get install goaccess)"
)

#: GoAccess's format strings for each sample: its predefined formats where they fit, else a custom string
#: (goaccess.io/man#custom-log). ELB lines with status '-' (TCP listeners) are refused by GoAccess, so only an ELB
#: sample without them is compared.
CASES = {
    "formats/elastic-examples-apache-10k.log": ("clf", ["--log-format=COMBINED"]),
    "elastic-examples-apache-combined.log": ("clf", ["--log-format=COMBINED"]),
    "formats/lnav-shop-access.log": ("clf", ["--log-format=COMBINED"]),
    "matomo-amazon_cloudfront_web.log": ("cloudfront", ["--log-format=CLOUDFRONT"]),
    "beats-s3-server-access.log": ("s3", ["--log-format=AWSS3"]),
    "formats/matomo-alb.log": ("alb", ["--log-format=AWSALB"]),
    "formats/lnav-alb-samples.log": ("alb", ["--log-format=AWSALB"]),
    "formats/matomo-caddy_json.log": ("caddy", ["--log-format=CADDY"]),
    "formats/beats-aws-elb-http.log": (
        "elb",
        [
            '--log-format=%dT%t.%^ %^ %h:%^ %^ %^ %^ %^ %s %^ %^ %b "%r" %^',
            "--date-format=%Y-%m-%d",
            "--time-format=%T",
        ],
    ),
    "formats/squid-native-excerpt.log": (
        "squid",
        ["--log-format=%x.%^ %~%L %h %^/%s %b %m %U", "--date-format=%s", "--time-format=%s"],
    ),
    "formats/matomo-netscaler.log": ("w3c", None),
    "formats/lnav-w3c.6.log": ("w3c", None),
}
#: W3C field names -> GoAccess specifiers, to build a custom format from a #Fields line.
W3C_SPECIFIERS = {
    "date": "%d",
    "time": "%t",
    "c-ip": "%h",
    "cs-method": "%m",
    "cs-uri-stem": "%U",
    "cs-uri-query": "%q",
    "sc-status": "%s",
    "sc-bytes": "%b",
}


def _w3c_options(data: bytes) -> list:
    fields = next(line for line in data.split(b"\n") if line.startswith(b"#Fields:")).decode()[8:].split()
    log_format = " ".join(W3C_SPECIFIERS.get(name, "%^") for name in fields)
    return [f"--log-format={log_format}", "--date-format=%Y-%m-%d", "--time-format=%T"]


@pytest.mark.parametrize("name", sorted(CASES))
def test_goaccess_bandwidth_equals_our_record_bytes(shared_logs, name):
    fmt, options = CASES[name]
    path = shared_logs / name
    data = path.read_bytes()
    data = gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data
    options = options or _w3c_options(data)
    result = subprocess.run(
        ["goaccess", str(path), *options, "-o", "json", "--no-progress", "--no-global-config"],
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr.decode()[-500:]
    bandwidth = json.loads(result.stdout)["general"]["bandwidth"]
    records = log_engine.parse_block(data, log_formats.FORMATS[fmt]).records
    assert bandwidth > 0
    assert pc.sum(records.column("bytes")).as_py() == bandwidth
