"""HTTP API serving the daily Last.fm artist recommendations from the store written by the batch.

Run (from the repository root)::

    RECS_STORE=sqlite:///$PWD/Q3b/data/recs.db \\
        gunicorn --chdir Q3b --bind 127.0.0.1:8000 --workers 2 'rec_api:create_app()'

Endpoints (all answers are JSON, errors included):

* ``GET /users/<user_id>/recommendations?n=10&country=Germany`` -- the user's top ``n`` (1-100, default 10)
  artists of the current batch version.  A user the batch does not know gets the cold-start list of
  ``country`` (case-insensitive) or, without or with an unknown country, the global list; ``source`` says which.
* ``GET /healthz`` -- current batch version, its creation time and age in seconds, number of users; 503 when
  there is no version yet or the store cannot be read.

User ids: Last.fm 360K ids are 40 lowercase hex characters (sha1); any id of 1-128 characters from letters,
digits and ``_ . @ -`` starting with a letter or digit is accepted (:data:`USER_ID_PATTERN`), anything else is a
400.  Bad input never causes a 500: it is answered 400 with ``{"error": "..."}``.
"""

from __future__ import annotations

import logging
import os
import re
from datetime import datetime, timezone
from pathlib import Path

from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException

import rec_store

USER_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}")
COUNTRY_PATTERN = re.compile(r"[^\x00-\x1f\x7f]{1,100}")
DEFAULT_N, MAX_N = 10, 100
DEFAULT_STORE = f"sqlite:///{Path(__file__).resolve().parent / 'data' / 'recs.db'}"
STORE_ENV = "RECS_STORE"
STORE_ERROR_EXIT = 4  # gunicorn's APP_LOAD_ERROR: the master stops with "App failed to load" instead of respawning


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
    if not USER_ID_PATTERN.fullmatch(raw):
        raise BadRequest(
            f"malformed user id {raw[:40]!r}: expected 1-128 letters, digits or _ . @ -"
            " (Last.fm ids are 40 hex characters)"
        )
    return raw


def parse_country(raw: str | None) -> str | None:
    """The optional ``country`` parameter (1-100 printable characters), else BadRequest."""
    if raw is None or raw.strip() == "":
        return None
    if not COUNTRY_PATTERN.fullmatch(raw):
        raise BadRequest("country must be 1-100 printable characters, e.g. country=Germany")
    return raw.strip()


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


def recommendations_body(store: rec_store.RecStore, user_id: str, n: int, country: str | None) -> dict:
    """Response body for one user: from the user's own list if the current version knows them, else cold start.

    Keys: ``user``, ``version`` (batch version id), ``known_user``, ``source`` ('neighbours', 'country' or
    'global'; for a known user the source of their rank-1 artist), ``country`` (the fallback country used, or
    None), ``artists`` (list of ``rank``, ``mbid``, ``name``, ``score`` and, for known users, ``source``).
    Raises rec_store.NoVersionError before the first batch.
    """
    found = store.get_user(user_id, n)
    if found is not None:
        version, rows = found
        return {
            "user": user_id,
            "version": version,
            "known_user": True,
            "source": rows[0]["source"] if rows else "neighbours",
            "country": None,
            "artists": _artists(rows),
        }
    version, used, rows = store.get_fallback(country, n)
    return {
        "user": user_id,
        "version": version,
        "known_user": False,
        "source": "country" if used else "global",
        "country": used or None,
        "artists": _artists(rows),
    }


def health_body(store: rec_store.RecStore, now: datetime | None = None) -> tuple[dict, int]:
    """(/healthz body, HTTP status): 200 with version, created_at, age_seconds, n_users; 503 before the first batch."""
    info = store.info()
    if info is None:
        return {"status": "no_version", "error": "no batch has been written to the store yet"}, 503
    now = now or datetime.now(timezone.utc)
    age = (now - datetime.fromisoformat(info["created_at"])).total_seconds()
    return {"status": "ok", **info, "age_seconds": round(age, 1)}, 200


def create_app(store_url: str | None = None) -> Flask:
    """Flask app serving the store at ``store_url``, else $RECS_STORE, else ``sqlite:///<Q3b>/data/recs.db``.

    The store must exist and be reachable: otherwise one line ``rec_api: cannot serve <url>: <reason>`` is logged
    and SystemExit(STORE_ERROR_EXIT) raised (no traceback; gunicorn then stops). Connections are opened per
    worker process and thread on first use, so the app may be created before gunicorn forks.
    """
    url = store_url or os.environ.get(STORE_ENV) or DEFAULT_STORE
    try:
        store = rec_store.open_store(url, create=False)
    except (FileNotFoundError, ValueError, ConnectionError) as err:  # a deployment mistake, not a bug
        shown = re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", url)  # never log a password
        logging.getLogger("rec_api").error(
            "rec_api: cannot serve %s: %s (set %s to the store the batch writes)", shown, err, STORE_ENV
        )
        raise SystemExit(STORE_ERROR_EXIT) from None
    app = Flask(__name__)
    app.json.sort_keys = False
    app.config["RECS_STORE"] = url
    app.extensions["rec_store"] = store

    @app.get("/users/<path:user_id>/recommendations")
    def recommendations(user_id: str):
        body = recommendations_body(
            store, parse_user_id(user_id), parse_n(request.args.get("n")), parse_country(request.args.get("country"))
        )
        return jsonify(body)

    @app.get("/healthz")
    def healthz():
        try:
            body, status = health_body(store)
        except Exception:  # noqa: BLE001 -- an unreachable store makes the instance unhealthy, not a 500
            app.logger.exception("health check failed")
            body, status = {"status": "error", "error": "the store cannot be read"}, 503
        return jsonify(body), status

    @app.errorhandler(BadRequest)
    def bad_request(err):
        return jsonify(error=str(err)), 400

    @app.errorhandler(rec_store.NoVersionError)
    def no_version(err):
        return jsonify(error=str(err)), 503

    @app.errorhandler(HTTPException)
    def http_error(err):
        return jsonify(error=err.description), err.code

    @app.errorhandler(Exception)
    def internal_error(err):  # a bug or an unreachable store, never user input: log the traceback, answer JSON
        app.logger.exception("unhandled error on %s", request.path)
        return jsonify(error="internal error"), 500

    return app
