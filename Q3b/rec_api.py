"""HTTP API serving the daily Last.fm artist recommendations from the store written by the batch.

Production start (nginx in front of gunicorn, see SERVING.md)::

    python Q3b/recommender.py serve --store sqlite:///Q3b/data/recs.db --bind 127.0.0.1:8000

Endpoints (every answer is JSON, errors included; the full contract is served at ``/openapi.json``):

* ``GET /users/<user_id>/recommendations?n=10&country=Germany`` -- the user's top ``n`` (1-100, default 10)
  artists of the current batch version.  A user the batch does not know gets the cold-start list of
  ``country`` (case-insensitive) or, without or with an unknown country, the global list; ``source`` says which.
* ``POST /recommendations`` with ``{"users": [...], "n": 10, "country": "Germany"}`` -- the same for 1-100 users
  in one call, all from one version.
* ``GET /healthz`` -- the process is alive (never touches the store).
* ``GET /readyz`` -- a version is loaded: its id, creation time, age in seconds, number of users; 503 before the
  first batch or when the store cannot be read.
* ``GET /metrics`` -- Prometheus metrics (requests and latency by route and status, served version and its age,
  store errors).

User ids: Last.fm 360K ids are 40 lowercase hex characters (sha1) and ids of hex digits only are matched
case-insensitively; any id of 1-128 characters from letters, digits and ``_ . @ -`` starting with a letter or digit
is accepted (:data:`USER_ID_PATTERN`), anything else is a 400.  Bad input never causes a 500.
"""

from __future__ import annotations

import logging
import os
import re
import time
from datetime import datetime, timezone
from pathlib import Path

from flask import Flask, Response, g, jsonify, request
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily
from werkzeug.exceptions import HTTPException

import rec_store

USER_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}")
COUNTRY_PATTERN = re.compile(r"[^\x00-\x1f\x7f]{1,100}")
DEFAULT_N, MAX_N = 10, 100
MAX_BULK_USERS = 100
MAX_BODY_BYTES = 64 * 1024
DEFAULT_STORE = f"sqlite:///{Path(__file__).resolve().parent / 'data' / 'recs.db'}"
STORE_ENV = "RECS_STORE"
STORE_ERROR_EXIT = 4  # gunicorn's APP_LOAD_ERROR: the master stops with "App failed to load" instead of respawning
VERSION_HEADER = "X-Recs-Version"  # the version an answer came from; nginx writes it into the access log
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
# the method label of the request counter; any other method a client makes up is counted as "other", so clients
# cannot create new time series
METRIC_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"})


class BadRequest(ValueError):
    """A request parameter a client can fix; answered 400."""


def parse_n(raw: str | None) -> int:
    """The ``n`` query parameter: None gives DEFAULT_N; otherwise a decimal integer 1..MAX_N, else BadRequest."""
    if raw is None:
        return DEFAULT_N
    if not re.fullmatch(r"[0-9]{1,3}", raw.strip()) or not 1 <= int(raw) <= MAX_N:
        raise BadRequest(f"n must be an integer from 1 to {MAX_N}, got {raw[:20]!r}")
    return int(raw)


def parse_user_id(raw: str) -> str:
    """A user id matching USER_ID_PATTERN, else BadRequest."""
    if not isinstance(raw, str) or not USER_ID_PATTERN.fullmatch(raw):
        raise BadRequest(
            f"malformed user id {str(raw)[:40]!r}: expected 1-128 letters, digits or _ . @ -"
            " (Last.fm ids are 40 hex characters)"
        )
    return raw


def parse_country(raw: str | None) -> str | None:
    """The optional ``country`` parameter (1-100 printable characters), else BadRequest."""
    if raw is None or (isinstance(raw, str) and raw.strip() == ""):
        return None
    if not isinstance(raw, str) or not COUNTRY_PATTERN.fullmatch(raw):
        raise BadRequest("country must be 1-100 printable characters, e.g. country=Germany")
    return raw.strip()


def parse_bulk(body) -> tuple[list[str], int, str | None]:
    """The JSON body of ``POST /recommendations``: ``users`` (1..MAX_BULK_USERS ids), optional ``n`` (JSON integer
    1..MAX_N) and ``country``.  Returns (users in request order, duplicates removed; n; country); else BadRequest."""
    if not isinstance(body, dict):
        raise BadRequest('the body must be a JSON object like {"users": ["<user id>", ...], "n": 10}')
    unknown = set(body) - {"users", "n", "country"}
    if unknown:
        raise BadRequest(f"unknown field(s) {sorted(unknown)[:5]}; expected users, n, country")
    users = body.get("users")
    if not isinstance(users, list) or not 1 <= len(users) <= MAX_BULK_USERS:
        raise BadRequest(f"users must be a list of 1 to {MAX_BULK_USERS} user ids")
    n = body.get("n", DEFAULT_N)
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_N:
        raise BadRequest(f"n must be an integer from 1 to {MAX_N}, got {str(n)[:20]!r}")
    return list(dict.fromkeys(parse_user_id(u) for u in users)), n, parse_country(body.get("country"))


def _artists(rows: list[dict]) -> list[dict]:
    return [
        {
            "rank": r["rank"],
            "mbid": r["artist_mbid"],
            "name": r["artist_name"],
            "score": r["score"],
            **({"source": r["source"]} if "source" in r else {}),
        }
        for r in rows
    ]


def _user_body(answer: rec_store.Lookup, user: str) -> dict:
    rows = answer.users[user]
    if rows is not None:
        source = rows[0]["source"] if rows else "neighbours"
        return {"user": user, "known_user": True, "source": source, "country": None, "artists": _artists(rows)}
    used, fallback = answer.fallback
    return {
        "user": user,
        "known_user": False,
        "source": "country" if used else "global",
        "country": used or None,
        "artists": _artists(fallback),
    }


def recommendations_body(store: rec_store.RecStore, user_id: str, n: int, country: str | None) -> dict:
    """Response body for one user: from the user's own list if the current version knows them, else cold start.

    Keys: ``user``, ``version`` (batch version id), ``known_user``, ``source`` ('neighbours', 'country' or
    'global'; for a known user the source of their rank-1 artist), ``country`` (the fallback country used, or
    None), ``artists`` (list of ``rank``, ``mbid``, ``name``, ``score`` and, for known users, ``source``).
    Raises rec_store.NoVersionError before the first batch.
    """
    answer = store.lookup([user_id], n, country)
    body = _user_body(answer, user_id)
    return {"user": user_id, "version": answer.version, **body}


def bulk_body(store: rec_store.RecStore, users: list[str], n: int, country: str | None) -> dict:
    """Response body for several users, all read from one version: ``version`` and ``results``, one entry per
    user in request order with the keys of :func:`recommendations_body` except ``version``."""
    answer = store.lookup(users, n, country)
    return {"version": answer.version, "results": [_user_body(answer, user) for user in users]}


def ready_body(store: rec_store.RecStore, now: datetime | None = None) -> tuple[dict, int]:
    """(/readyz body, HTTP status): 200 with the served version's ``version``, ``created_at``, ``age_seconds``
    (seconds since that version was written), ``n_users``, and ``newest_version`` / ``newest_age_seconds`` of the
    newest complete version (differs after an operator promoted an older one); 503 before the first batch."""
    info = store.info()
    if info is None:
        return {"status": "no_version", "error": "no batch has been written to the store yet"}, 503
    now = now or datetime.now(timezone.utc)
    return {
        "status": "ok",
        "version": info["version"],
        "created_at": info["created_at"],
        "age_seconds": _age(info["created_at"], now),
        "n_users": info["n_users"],
        "newest_version": info["newest_version"],
        "newest_age_seconds": _age(info["newest_created_at"], now),
    }, 200


def _age(created_at: str, now: datetime) -> float:
    return round((now - datetime.fromisoformat(created_at)).total_seconds(), 1)


class StoreCollector:
    """Prometheus collector reading the served version and its age from the store at scrape time (so every
    worker process reports the same value and nothing goes stale between scrapes)."""

    def __init__(self, store: rec_store.RecStore, errors: Counter):
        self.store, self.errors = store, errors

    def collect(self):
        version = GaugeMetricFamily("rec_served_version", "Batch version the API answers from (0: none yet)")
        age = GaugeMetricFamily("rec_served_version_age_seconds", "Seconds since the served version was written")
        newest = GaugeMetricFamily(
            "rec_newest_version_age_seconds", "Seconds since the newest complete version was written (last batch)"
        )
        try:
            body, status = ready_body(self.store)
        except Exception:  # noqa: BLE001 -- an unreadable store is reported by rec_store_errors_total
            self.errors.inc()
            body, status = {}, 503
        version.add_metric([], body.get("version", 0) if status == 200 else 0)
        yield version
        if status == 200:
            age.add_metric([], body["age_seconds"])
            newest.add_metric([], body["newest_age_seconds"])
            yield age
            yield newest


def openapi_document() -> dict:
    """The API's OpenAPI 3.1 description (schemas are JSON Schema 2020-12); served at /openapi.json."""
    error = {"$ref": "#/components/schemas/Error"}
    artist = {
        "type": "object",
        "required": ["rank", "mbid", "name", "score"],
        "properties": {
            "rank": {"type": "integer", "minimum": 1},
            "mbid": {"type": "string", "description": "MusicBrainz artist id; '' when Last.fm has none"},
            "name": {"type": "string"},
            "score": {"type": "number"},
            "source": {"enum": ["neighbours", "country", "global"]},
        },
        "additionalProperties": False,
    }
    user_result = {
        "type": "object",
        "required": ["user", "known_user", "source", "country", "artists"],
        "properties": {
            "user": {"type": "string"},
            "known_user": {"type": "boolean"},
            "source": {"enum": ["neighbours", "country", "global"]},
            "country": {"type": ["string", "null"]},
            "artists": {"type": "array", "items": {"$ref": "#/components/schemas/Artist"}, "maxItems": MAX_N},
        },
    }
    single = {
        "allOf": [{"$ref": "#/components/schemas/UserResult"}],
        "required": ["version"],
        "properties": {"version": {"type": "integer", "minimum": 1}},
    }
    n_param = {"name": "n", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": MAX_N}}
    country = {"name": "country", "in": "query", "schema": {"type": "string", "maxLength": 100}}

    def answers(ok_ref: str | None, *codes: int) -> dict:
        reasons = {400: "bad input", 413: "body too large", 503: "no version yet or store unreachable"}
        out = {"200": {"description": "OK", "content": {"application/json": {"schema": {"$ref": ok_ref}}}}}
        out.update(
            {str(c): {"description": reasons[c], "content": {"application/json": {"schema": error}}} for c in codes}
        )
        return out

    return {
        "openapi": "3.1.0",
        "info": {"title": "Q3b artist recommendations", "version": "1"},
        "paths": {
            "/users/{user_id}/recommendations": {
                "get": {
                    "summary": "top-n artists of one user (cold-start list for an unknown user)",
                    "parameters": [
                        {
                            "name": "user_id",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string", "pattern": f"^{USER_ID_PATTERN.pattern}$"},
                        },
                        n_param,
                        country,
                    ],
                    "responses": answers("#/components/schemas/Recommendations", 400, 503),
                }
            },
            "/recommendations": {
                "post": {
                    "summary": f"top-n artists of 1-{MAX_BULK_USERS} users, all from one version",
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/BulkRequest"}}},
                    },
                    "responses": answers("#/components/schemas/BulkRecommendations", 400, 413, 503),
                }
            },
            "/healthz": {
                "get": {"summary": "the process is alive", "responses": answers("#/components/schemas/Alive")}
            },
            "/readyz": {
                "get": {"summary": "a version is loaded", "responses": answers("#/components/schemas/Ready", 503)}
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics",
                    "responses": {
                        "200": {"description": "OK", "content": {"text/plain": {"schema": {"type": "string"}}}}
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "summary": "this document",
                    "responses": {"200": {"description": "OK", "content": {"application/json": {"schema": {}}}}},
                }
            },
        },
        "components": {
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {"error": {"type": "string"}, "status": {"type": "string"}},
                },
                "Artist": artist,
                "UserResult": user_result,
                "Recommendations": single,
                "BulkRequest": {
                    "type": "object",
                    "required": ["users"],
                    "properties": {
                        "users": {
                            "type": "array",
                            "minItems": 1,
                            "maxItems": MAX_BULK_USERS,
                            "items": {"type": "string", "pattern": f"^{USER_ID_PATTERN.pattern}$"},
                        },
                        "n": {"type": "integer", "minimum": 1, "maximum": MAX_N},
                        "country": {"type": "string", "maxLength": 100},
                    },
                    "additionalProperties": False,
                },
                "BulkRecommendations": {
                    "type": "object",
                    "required": ["version", "results"],
                    "properties": {
                        "version": {"type": "integer", "minimum": 1},
                        "results": {"type": "array", "items": {"$ref": "#/components/schemas/UserResult"}},
                    },
                },
                "Alive": {"type": "object", "required": ["status"], "properties": {"status": {"const": "alive"}}},
                "Ready": {
                    "type": "object",
                    "required": ["status", "version", "created_at", "age_seconds", "n_users"],
                    "properties": {
                        "status": {"const": "ok"},
                        "version": {"type": "integer"},
                        "created_at": {"type": "string"},
                        "age_seconds": {"type": "number"},
                        "n_users": {"type": "integer"},
                        "newest_version": {"type": "integer"},
                        "newest_age_seconds": {"type": "number"},
                    },
                },
            }
        },
    }


def _open_store_or_exit(url: str) -> rec_store.RecStore:
    try:
        return rec_store.open_store(url, create=False)
    except (FileNotFoundError, ValueError, ConnectionError) as err:  # a deployment mistake, not a bug
        shown = re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", url)  # never log a password
        logging.getLogger("rec_api").error(
            "rec_api: cannot serve %s: %s (set %s to the store the batch writes)", shown, err, STORE_ENV
        )
        raise SystemExit(STORE_ERROR_EXIT) from None


def create_app(store_url: str | None = None) -> Flask:
    """Flask app serving the store at ``store_url``, else $RECS_STORE, else ``sqlite:///<Q3b>/data/recs.db``.

    The store must exist and be reachable: otherwise one line ``rec_api: cannot serve <url>: <reason>`` is logged
    and SystemExit(STORE_ERROR_EXIT) raised (no traceback; gunicorn then stops). Connections are opened per
    worker process and thread on first use, so the app may be created before gunicorn forks.  With
    $PROMETHEUS_MULTIPROC_DIR set (``serve`` sets it for gunicorn's workers) /metrics sums all worker processes.
    """
    url = store_url or os.environ.get(STORE_ENV) or DEFAULT_STORE
    store = _open_store_or_exit(url)
    app = Flask(__name__)
    app.json.sort_keys = False
    app.config["RECS_STORE"] = url
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.url_map.merge_slashes = False  # '//' (e.g. a decoded %2F) is a 400 of ours, not an HTML redirect
    app.extensions["rec_store"] = store

    registry = CollectorRegistry()
    requests = Counter(
        "rec_http_requests", "HTTP requests answered by the app", ["route", "method", "status"], registry=registry
    )
    latency = Histogram(
        "rec_http_request_duration_seconds",
        "Time from request to response inside the app",
        ["route", "status"],
        buckets=LATENCY_BUCKETS,
        registry=registry,
    )
    store_errors = Counter("rec_store_errors", "Store reads that failed (unreachable, I/O error)", registry=registry)
    collector = StoreCollector(store, store_errors)
    registry.register(collector)

    @app.before_request
    def start_timer():
        g.started = time.perf_counter()

    @app.after_request
    def count(response):
        route = request.url_rule.rule if request.url_rule is not None else "unmatched"
        status = str(response.status_code)
        method = request.method if request.method in METRIC_METHODS else "other"
        requests.labels(route, method, status).inc()
        latency.labels(route, status).observe(time.perf_counter() - g.get("started", time.perf_counter()))
        return response

    def answer(body: dict) -> Response:
        response = jsonify(body)
        response.headers[VERSION_HEADER] = str(body["version"])
        return response

    @app.get("/users/<path:user_id>/recommendations")
    def recommendations(user_id: str):
        user = parse_user_id(user_id)
        return answer(
            recommendations_body(
                store, user, parse_n(request.args.get("n")), parse_country(request.args.get("country"))
            )
        )

    @app.post("/recommendations")
    def bulk():
        if not request.is_json:
            raise BadRequest("send the body as JSON with Content-Type: application/json")
        return answer(bulk_body(store, *parse_bulk(request.get_json(silent=True))))

    @app.get("/healthz")
    def healthz():
        return jsonify(status="alive")

    @app.get("/readyz")
    def readyz():
        try:
            body, status = ready_body(store)
        except Exception:  # noqa: BLE001 -- an unreadable store makes the instance not ready, not a 500
            store_errors.inc()
            app.logger.exception("readiness check failed")
            body, status = {"status": "error", "error": "the store cannot be read"}, 503
        return jsonify(body), status

    @app.get("/metrics")
    def metrics():
        if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
            scrape = CollectorRegistry()
            multiprocess.MultiProcessCollector(scrape)
            scrape.register(collector)
        else:
            scrape = registry
        return Response(generate_latest(scrape), mimetype="text/plain; version=0.0.4")

    @app.get("/openapi.json")
    def openapi():
        return jsonify(openapi_document())

    @app.errorhandler(BadRequest)
    def bad_request(err):
        return jsonify(error=str(err)), 400

    @app.errorhandler(rec_store.NoVersionError)
    def no_version(err):
        return jsonify(error=str(err)), 503

    @app.errorhandler(rec_store.StoreUnreachableError)
    def store_unreachable(err):  # the PostgreSQL server is down or restarting: retryable, one log line per request
        store_errors.inc()
        app.logger.error("%s: %s", request.path, err)
        return jsonify(error="the store cannot be reached; retry shortly"), 503

    @app.errorhandler(HTTPException)
    def http_error(err):
        return jsonify(error=err.description), err.code

    @app.errorhandler(Exception)
    def internal_error(err):  # a bug or an unreachable store, never user input: log the traceback, answer JSON
        if isinstance(err, OSError) or type(err).__module__.split(".")[0] in ("sqlite3", "psycopg2"):
            store_errors.inc()
        app.logger.exception("unhandled error on %s", request.path)
        return jsonify(error="internal error"), 500

    return app
