"""Access-log formats as data: one :class:`FormatSpec` per format in :data:`FORMATS`, read by one engine.

A spec says where the three fields bytes-by-file-type needs are (the time, the response size, the URL or request
line), how fields are separated and quoted, and the layout of the time. Three kinds of spec cover the formats:

- ``pattern``: a line layout written as a short pattern in the spirit of GoAccess's log-format strings (see
  :func:`compile_pattern`), e.g. the combined log is ``%*[%t] "%r" %s %b%$``;
- ``header``: columns named by a header line (``#Fields: date time ... sc-bytes cs-uri-stem``) that may change
  mid-file; the spec names the separator and the column names of each field (W3C extended, IIS, CloudFront);
- ``json``: one JSON object per line; the spec maps each field to a key path (``request.uri``).

Detection (``log_engine.detect_format``) reads the same table: it tries every entry on the first lines of a file, in
table order. Adding a format is one entry here plus its tests. ``--log-format`` turns an nginx ``log_format`` or an
Apache ``LogFormat`` string into a pattern spec (:func:`spec_from_log_format`).

References: Apache mod_log_config (httpd.apache.org/docs/current/mod/mod_log_config.html), nginx
ngx_http_log_module, W3C Extended Log File Format (www.w3.org/TR/WD-logfile), AWS CloudFront standard and real-time
logs, AWS ELB/ALB access logs, Amazon S3 server access logs, HAProxy "HTTP log format", Squid native access.log,
Caddy/Traefik JSON access logs, GoAccess's format specifiers (goaccess.io/man#custom-log).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

#: Time layouts: a regex (RE2 and Python syntax) over one time field, with named groups y, mon (Jan..Dec) or m, d,
#: hms and optionally off (UTC offset: +hhmm, +hh:mm or Z). ``epoch`` is special: seconds since 1970 (with an
#: optional fraction), or milli-/micro-/nanoseconds judged by magnitude.
TIME_LAYOUTS = {
    "clf": r"(?P<d>\d{2})/(?P<mon>[A-Za-z]{3})/(?P<y>\d{4}):(?P<hms>\d{2}:\d{2}:\d{2})(?:[.,]\d+)? (?P<off>[+-]\d{4})",
    "clf-local": r"(?P<d>\d{2})/(?P<mon>[A-Za-z]{3})/(?P<y>\d{4}):(?P<hms>\d{2}:\d{2}:\d{2})(?:[.,]\d+)?",
    "iso8601": r"(?P<y>\d{4})-(?P<m>\d{2})-(?P<d>\d{2})[T ](?P<hms>\d{2}:\d{2}:\d{2})(?:[.,]\d+)?"
    r"(?P<off>Z|[+-]\d{2}:?\d{2})?",
    "date": r"(?P<y>\d{4})-(?P<m>\d{2})-(?P<d>\d{2})",
    "clock": r"(?P<hms>\d{2}:\d{2}:\d{2})(?:[.,]\d+)?",
    "epoch": r"(?P<epoch>\d{1,19})(?:\.\d*)?",
}

#: The fields a spec locates. ``time`` is one field holding date and time; ``date`` + ``clock`` are two fields
#: (W3C); ``request`` is a request line 'METHOD target PROTOCOL' whose target is the URL; ``key`` is a fallback URL
#: used when the request is '-' (S3 object keys).
ROLES = ("time", "date", "clock", "size", "url", "request", "key")


@dataclass(frozen=True)
class FormatSpec:
    """One log format.

    name, description: as shown by ``--help`` and in reports.
    kind: 'pattern', 'header' or 'json' (see the module docstring).
    pattern: for 'pattern', the line layout (see :func:`compile_pattern`).
    space_runs: for 'pattern', a space in the pattern matches one or more spaces (Squid pads its columns).
    time_layout: key of :data:`TIME_LAYOUTS` for the ``time`` field ('pattern' and 'json').
    default_offset: UTC offset of times whose layout has none (W3C and CloudFront are UTC by definition; HAProxy
        writes local time without an offset, taken as written).
    separator: for 'header', the column separator: '\\t', or ' ' (one or more spaces, double-quoted cells allowed).
    header_prefix: for 'header', the start of a header line ('#Fields:'), or '' for a first line of column names
        separated by ``separator`` (the take-home's tsv).
    columns: for 'header', role -> accepted column names (first found wins); for 'json', role -> key paths
        ('request.uri'), first present wins.
    default_fields: for 'header', the columns assumed before any header line.
    """

    name: str
    description: str
    kind: str
    pattern: str = ""
    space_runs: bool = False
    time_layout: str = ""
    default_offset: str = "+0000"
    separator: str = "\t"
    header_prefix: str = "#Fields:"
    columns: dict = field(default_factory=dict)
    default_fields: tuple = ()

    def __post_init__(self):
        if self.kind not in ("pattern", "header", "json"):
            raise ValueError(f"format {self.name}: kind must be pattern, header or json, not {self.kind!r}")
        if self.time_layout and self.time_layout not in TIME_LAYOUTS:
            raise ValueError(f"format {self.name}: unknown time layout {self.time_layout!r}")
        if self.kind == "pattern":
            compile_pattern(self.pattern, self.space_runs)  # raises ValueError on a bad pattern

    def __hash__(self):  # columns is a dict: hash by the fields that identify a spec
        return hash((self.name, self.kind, self.pattern, self.separator, tuple(sorted(self.columns))))

    @property
    def needed_columns(self) -> dict:
        """For 'header': role -> accepted names, for the roles a header must have (a time and a size and a URL)."""
        return self.columns


# ---------------------------------------------------------------- the pattern language

#: Pattern tokens. A capture (or skip) runs up to the next literal character of the pattern (like GoAccess); inside
#: double quotes it allows backslash-escaped quotes.
#:   %t  the time (layout: the spec's time_layout)      %d, %T  date and clock, separate fields
#:   %b  response size in bytes ('-' = 0)                %r  request line "METHOD URL PROTOCOL"
#:   %R  a quoted request line, or '-' unquoted (S3)     %U  URL or path
#:   %k  S3 object key (URL when the request is '-')     %s  HTTP status: 3 digits or '-'
#:   %^  skip one field                                  %*  skip anything, as little as possible
#:   %$  optional further fields up to the end of the line
TOKEN_ROLES = {"t": "time", "d": "date", "T": "clock", "b": "size", "r": "request", "U": "url", "k": "key"}
_TOKEN = re.compile(r"%([tdTbrRUks^*$])")
_QUOTED_CELL = r'(?:[^"\\\r\n]|\\.)*'


def compile_pattern(pattern: str, space_runs: bool = False) -> tuple:
    """(regex source, roles in group order) for a pattern: the regex matches a whole line (its '\\r'/'\\n' too;
    a pattern ending in %$ only its start)
    and has one named group per field token (named by its role, e.g. ``size``). Works with both Python's re and
    RE2 (pyarrow).

    Raises ValueError for a pattern without a size and a time/date and a URL/request, or with a field twice.
    """
    parts = _TOKEN.split(pattern)  # literal, token, literal, token, ..., literal
    out, roles = ["^"], []
    for i, part in enumerate(parts):
        if i % 2 == 0:
            for ch in part:
                out.append(" +" if ch == " " and space_runs else re.escape(ch))
            continue
        before, after = parts[i - 1][-1:], parts[i + 1][:1]
        if not after and i + 2 < len(parts):  # the next element is a token
            after = " "
        if part == "$":  # the rest of the line is not read: no end anchor (RE2 then stops early)
            out.append(r"(?:[ \t\r\n]|$)")
        elif part == "*":
            out.append(r"[^\r\n]*?")
        elif part == "s":
            out.append(r"(?:\d{3}|-)")
        elif part == "R":
            out.append(r'(?:"(?P<request>' + _QUOTED_CELL + r')"|-)')
            roles.append("request")
        else:
            if before == '"' and after == '"':
                cell = _QUOTED_CELL
            elif after:
                cell = "[^" + re.escape(after) + r"\r\n]*"
            else:
                cell = r"[^\r\n]*"
            if part == "^":
                out.append("(?:" + cell + ")")
            else:
                out.append(f"(?P<{TOKEN_ROLES[part]}>" + cell + ")")
                roles.append(TOKEN_ROLES[part])
    if not pattern.endswith("%$"):
        out.append(r"[\r\n]*$")
    if len(set(roles)) != len(roles):
        raise ValueError(f"pattern {pattern!r} names a field twice")
    missing = [
        what
        for what, options in (("a size (%b)", {"size"}), ("a time (%t or %d)", {"time", "date"}))
        if not options & set(roles)
    ]
    if not {"url", "request"} & set(roles):
        missing.append("a URL or request (%U or %r)")
    if missing:
        raise ValueError(f"pattern {pattern!r} has no {', '.join(missing)}")
    return "".join(out), tuple(roles)


# ---------------------------------------------------------------- the table

W3C_COLUMNS = {
    "date": ("date", "date-local"),
    "clock": ("time", "time-local"),
    "size": ("sc-bytes", "bytes"),
    "url": ("cs-uri-stem", "cs-uri"),
}
CLOUDFRONT_COLUMNS = {"date": ("date",), "clock": ("time",), "size": ("sc-bytes",), "url": ("cs-uri-stem",)}
#: Columns of an AWS CloudFront standard log (the 33 fields documented in 2024). Older logs have a prefix of these.
CLOUDFRONT_FIELDS = [
    "date",
    "time",
    "x-edge-location",
    "sc-bytes",
    "c-ip",
    "cs-method",
    "cs(Host)",
    "cs-uri-stem",
    "sc-status",
    "cs(Referer)",
    "cs(User-Agent)",
    "cs-uri-query",
    "cs(Cookie)",
    "x-edge-result-type",
    "x-edge-request-id",
    "x-host-header",
    "cs-protocol",
    "cs-bytes",
    "time-taken",
    "x-forwarded-for",
    "ssl-protocol",
    "ssl-cipher",
    "x-edge-response-result-type",
    "cs-protocol-version",
    "fle-status",
    "fle-encrypted-fields",
    "c-port",
    "time-to-first-byte",
    "x-edge-detailed-result-type",
    "sc-content-type",
    "sc-content-len",
    "sc-range-start",
    "sc-range-end",
]
#: Field list assumed when a CloudFront file has no ``#Fields:`` line (the first 26 standard fields, 2019-2024).
CLOUDFRONT_DEFAULT_FIELDS = CLOUDFRONT_FIELDS[:26]
#: CloudFront real-time log fields in AWS's documented order (a configuration picks a subset, in this order).
CLOUDFRONT_REALTIME_FIELDS = [
    "timestamp",
    "c-ip",
    "time-to-first-byte",
    "sc-status",
    "sc-bytes",
    "cs-method",
    "cs-protocol",
    "cs-host",
    "cs-uri-stem",
    "cs-bytes",
    "x-edge-location",
    "x-edge-request-id",
    "x-host-header",
    "time-taken",
    "cs-protocol-version",
    "c-ip-version",
    "cs-user-agent",
    "cs-referer",
    "cs-cookie",
    "cs-uri-query",
    "x-edge-response-result-type",
    "x-forwarded-for",
    "ssl-protocol",
    "ssl-cipher",
    "x-edge-result-type",
    "fle-encrypted-fields",
    "fle-status",
    "sc-content-type",
    "sc-content-len",
    "sc-range-start",
    "sc-range-end",
    "c-port",
    "x-edge-detailed-result-type",
    "c-country",
    "cs-accept-encoding",
    "cs-accept",
    "cache-behavior-path-pattern",
    "cs-headers",
    "cs-header-names",
    "cs-headers-count",
]

_ENTRIES = [
    FormatSpec(
        "tsv",
        "tab-separated 'date time size url' with a header line (the take-home's dummy CDN log)",
        "header",
        separator="\t",
        header_prefix="",
        columns={"date": ("date",), "clock": ("time",), "size": ("size",), "url": ("url",)},
        default_fields=("date", "time", "size", "url"),
    ),
    FormatSpec(
        "cloudfront",
        "AWS CloudFront standard log (also RTMP): #Fields: header, tab-separated, UTC",
        "header",
        separator="\t",
        columns=CLOUDFRONT_COLUMNS,
        default_fields=tuple(CLOUDFRONT_DEFAULT_FIELDS),
    ),
    FormatSpec(
        "cloudfront-realtime",
        "AWS CloudFront real-time log (Kinesis): tab-separated, epoch timestamp, fields in AWS's order",
        "header",
        separator="\t",
        columns={"time": ("timestamp",), "size": ("sc-bytes",), "url": ("cs-uri-stem",)},
        time_layout="epoch",
        default_fields=tuple(CLOUDFRONT_REALTIME_FIELDS),
    ),
    FormatSpec(
        "w3c",
        "W3C extended / IIS / NetScaler / SHOUTcast: #Fields: header, space-separated, UTC",
        "header",
        separator=" ",
        columns=W3C_COLUMNS,
    ),
    FormatSpec(
        "s3",
        "Amazon S3 server access log",
        "pattern",
        pattern="%^ %^ [%t] %^ %^ %^ %^ %k %R %s %^ %b%$",
        time_layout="clf",
    ),
    FormatSpec(
        "alb",
        "AWS Application Load Balancer access log",
        "pattern",
        pattern='%^ %t %^ %^ %^ %^ %^ %^ %^ %^ %^ %b "%r"%$',
        time_layout="iso8601",
    ),
    FormatSpec(
        "elb",
        "AWS Classic Load Balancer access log",
        "pattern",
        pattern='%t %^ %^ %^ %^ %^ %^ %^ %^ %^ %b "%r"%$',
        time_layout="iso8601",
    ),
    FormatSpec(
        "haproxy",
        "HAProxy HTTP log (syslog prefix; local time as written)",
        "pattern",
        pattern='%*]: %^ [%t] %^ %^ %^ %s %b %*"%r"%$',
        time_layout="clf-local",
    ),
    FormatSpec(
        "squid",
        "Squid native access.log (epoch time, UTC)",
        "pattern",
        pattern="%t %^ %^ %^ %b %^ %U%$",
        space_runs=True,
        time_layout="epoch",
    ),
    FormatSpec(
        "gandi",
        "Gandi hosting: vhost + CLF with '(N s)' before the request",
        "pattern",
        pattern='%*[%t] (%^) "%r" %s %b%$',
        time_layout="clf",
    ),
    FormatSpec(
        "clf",
        "Apache/Nginx common or combined log, with vhost, forwarded-for or other prefixes and extra trailing fields",
        "pattern",
        pattern='%*[%t] "%r" %s %b%$',
        time_layout="clf",
    ),
    FormatSpec(
        "caddy",
        "Caddy JSON access log",
        "json",
        columns={"time": ("ts",), "size": ("size",), "url": ("request.uri",)},
        time_layout="epoch",
    ),
    FormatSpec(
        "traefik-json",
        "Traefik JSON access log",
        "json",
        columns={"time": ("StartUTC", "StartLocal"), "size": ("DownstreamContentSize",), "url": ("RequestPath",)},
        time_layout="iso8601",
    ),
    FormatSpec(
        "cloudflare-json",
        "Cloudflare Logpush HTTP requests (JSON, timestamps RFC 3339 or Unix)",
        "json",
        columns={"time": ("EdgeStartTimestamp",), "size": ("EdgeResponseBytes",), "url": ("ClientRequestURI",)},
        time_layout="iso8601",
    ),
    FormatSpec(
        "gcp-json",
        "Google Cloud CDN / load balancer request log (JSON, httpRequest)",
        "json",
        columns={
            "time": ("timestamp",),
            "size": ("httpRequest.responseSize",),
            "url": ("httpRequest.requestUrl",),
        },
        time_layout="iso8601",
    ),
    FormatSpec(
        "nginx-json",
        "JSON lines with path/length/date keys (an nginx log_format escape=json, Matomo's layout)",
        "json",
        columns={
            "time": ("date", "time", "time_iso8601", "timestamp", "@timestamp"),
            "size": ("length", "body_bytes_sent", "bytes_sent", "size"),
            "url": ("path", "request_uri", "uri", "url"),
        },
        time_layout="iso8601",
    ),
]

#: Every known format by name, in detection order (on a tie the earlier entry wins).
FORMATS = {spec.name: spec for spec in _ENTRIES}


# ---------------------------------------------------------------- user-defined formats (--log-format)

_APACHE_DIRECTIVE = re.compile(r"%(?:\{([^}]*)\})?[<>]?([a-zA-Z%])")
#: Apache directives that carry a field we need; every other directive is a skipped field.
_APACHE_FIELDS = {"r": "%r", "s": "%s", "U": "%U", "b": "%b", "B": "%b", "O": "%b"}
_NGINX_VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")
_NGINX_FIELDS = {
    "time_local": ("%t", "clf"),
    "time_iso8601": ("%t", "iso8601"),
    "msec": ("%t", "epoch"),
    "request": ("%r", None),
    "status": ("%s", None),
    "body_bytes_sent": ("%b", None),
    "bytes_sent": ("%b", None),
    "request_uri": ("%U", None),
    "uri": ("%U", None),
}


def spec_from_log_format(text: str, name: str = "custom") -> FormatSpec:
    """A pattern spec from an nginx ``log_format`` string (``$remote_addr - [$time_local] "$request" $status
    $body_bytes_sent``) or an Apache ``LogFormat`` string (``%h %l %u %t "%r" %>s %b``); nginx when it holds a
    ``$variable``.

    Apache: %t is the bracketed CLF time, %{sec}t / %{msec}t epoch; %b, %B or %O the size (the first present);
    %r the request, %U the path. nginx: $time_local, $time_iso8601 or $msec; $body_bytes_sent (else $bytes_sent);
    $request or $request_uri/$uri. Every other directive or variable is a skipped field.
    Raises ValueError naming what is missing or unsupported.
    """
    text = text.replace('\\"', '"').replace("\\t", "\t").strip()
    if not text:
        raise ValueError("the log format is empty")
    out, layout, seen = [], "", set()

    def add(token: str, token_layout: str | None = None) -> None:
        nonlocal layout
        if token in ("%t", "%b", "%r", "%U") and token in seen:  # a second size/time/...: skipped
            token = "%^"
        seen.add(token)
        if token_layout:
            layout = token_layout
        out.append(token)

    if _NGINX_VARIABLE.search(text):
        position = 0
        for match in _NGINX_VARIABLE.finditer(text):
            out.append(text[position : match.start()])
            var = match.group(1) or match.group(2)
            token, token_layout = _NGINX_FIELDS.get(var, ("%^", None))
            if var == "bytes_sent" and "body_bytes_sent" in text:
                token = "%^"
            add(token, token_layout)
            position = match.end()
        out.append(text[position:])
    else:
        position = 0
        for match in _APACHE_DIRECTIVE.finditer(text):
            out.append(text[position : match.start()])
            argument, letter = match.group(1), match.group(2)
            if letter == "%":
                out.append("%")  # a literal percent sign: not a token of the pattern language
            elif letter == "t":
                if argument in (None, ""):
                    out.append("[")
                    add("%t", "clf")
                    out.append("]")
                elif argument in ("sec", "msec", "usec"):
                    add("%t", "epoch")
                else:
                    raise ValueError(
                        f"%{{{argument}}}t: custom time formats are not supported; log %t, %{{sec}}t or %{{msec}}t"
                    )
            else:
                add(_APACHE_FIELDS.get(letter, "%^") if argument is None else "%^")
            position = match.end()
        out.append(text[position:])
    pattern = "".join(out)
    if "%U" in seen and "%r" in seen:
        pattern = pattern.replace("%U", "%^")
    try:
        return FormatSpec(name, f"user-defined: {text}", "pattern", pattern=pattern, time_layout=layout or "clf")
    except ValueError as error:
        raise ValueError(f"log format {text!r}: {error}".replace(f"pattern {pattern!r} has", "it has")) from None


def spec_from_json_mapping(text: str, name: str = "custom-json") -> FormatSpec:
    """A json spec from 'json time=KEY size=KEY url=KEY [layout=iso8601|epoch|clf]' (key paths with dots).

    Raises ValueError naming a missing or unknown part.
    """
    words = text.split()
    if not words or words[0] != "json":
        raise ValueError("a JSON mapping starts with 'json', e.g. 'json time=timestamp size=bytes url=path'")
    pairs = dict(word.split("=", 1) for word in words[1:] if "=" in word)
    unknown = set(pairs) - {"time", "size", "url", "layout"}
    if unknown:
        raise ValueError(
            f"unknown key(s) {', '.join(sorted(unknown))} in the JSON mapping (use time, size, url, layout)"
        )
    missing = [k for k in ("time", "size", "url") if k not in pairs]
    if missing:
        raise ValueError(f"the JSON mapping has no {', '.join(missing)}=KEY")
    layout = pairs.get("layout", "iso8601")
    if layout not in TIME_LAYOUTS:
        raise ValueError(f"unknown time layout {layout!r} (one of {', '.join(TIME_LAYOUTS)})")
    columns = {role: (pairs[role],) for role in ("time", "size", "url")}
    return FormatSpec(name, f"user-defined: {text}", "json", columns=columns, time_layout=layout)


def spec_from_user_text(text: str) -> FormatSpec:
    """The spec for a ``--log-format`` argument: a JSON mapping ('json ...') or an nginx/Apache format string."""
    if text.strip().startswith("json"):
        return spec_from_json_mapping(text.strip())
    return spec_from_log_format(text)
