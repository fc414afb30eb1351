"""The Flask application factory."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import orjson
from flask import Flask, request
from flask.json.provider import DefaultJSONProvider
from flask_smorest import Api
from sqlalchemy.engine import Engine
from sqlalchemy.orm import sessionmaker

from govern.clock import SYSTEM, Clock
from govern.config import Config
from govern.db import make_engine, make_sessionmaker
from govern.errors import ApiError, register_error_handlers
from govern.hardening import init_rate_limits, init_security_headers, init_trusted_proxies
from govern.observability import configure_logging, init_request_observability

API_VERSION = "1.0.0"

# Endpoints that take their clients' native non-JSON bodies (form posts, query strings).
NON_JSON_ENDPOINTS: set[str] = set()


MAX_JSON_DEPTH = 64


class StrictJSONProvider(DefaultJSONProvider):
    """JSON as RFC 8259 means it: no NaN or Infinity, no duplicate keys (two parsers could
    read them differently), bounded nesting. Violations are 400s, never 500s."""

    def loads(self, s, **kwargs):
        def no_constants(name):
            raise ValueError(f"{name} is not valid JSON")

        def no_duplicates(pairs):
            obj = dict(pairs)
            if len(obj) != len(pairs):
                seen = set()
                for key, _ in pairs:
                    if key in seen:
                        raise ValueError(f"duplicate key {key!r}")
                    seen.add(key)
            return obj

        if isinstance(s, bytes):
            s = s.decode("utf-8")
        try:
            return json.loads(s, parse_constant=no_constants, object_pairs_hook=no_duplicates)
        except RecursionError as exc:
            raise ValueError("JSON nested too deeply") from exc


class GovernApi(Api):
    """flask-smorest's Api, documenting govern's own error body on every operation."""

    def __init__(self, app=None, **kwargs):
        from govern.api.schemas import ErrorSchema

        self.ERROR_SCHEMA = ErrorSchema
        super().__init__(app, **kwargs)


@dataclass
class GovernExtension:
    config: Config
    engine: Engine
    sessions: sessionmaker
    clock: Clock = SYSTEM


_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_NUL_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")
_EMPTY_PAIR = re.compile(rb"\{\}|\[\]")
_ALL_BUT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def _nul_error() -> ApiError:
    return ApiError(422, "Text may not contain NUL (\\u0000) characters.",
                    details={"body": ["contains a NUL character"]})


def _depth_error() -> ApiError:
    return ApiError(422, f"JSON may be nested at most {MAX_JSON_DEPTH} levels deep.",
                    details={"body": [f"nested deeper than {MAX_JSON_DEPTH}"]})


def check_json_text(data: bytes) -> None:
    """check_json_body on the text of a body that parsed as JSON, without walking the parsed
    values in Python: the same two refusals, found with a few passes in C.

    In valid JSON a NUL can only be the escape \\u0000 inside a string (raw control
    characters are not allowed there), so the escape, not preceded by an escaped backslash,
    is the only form to look for. Nesting is measured on the brackets left once the strings,
    which may contain brackets, are cut out: each pass deletes the innermost empty pairs, so
    after MAX_JSON_DEPTH passes only a container nested deeper is left."""
    if b"\\u0000" in data and _NUL_ESCAPE.search(data):
        raise _nul_error()
    brackets = data.translate(None, _ALL_BUT_BRACKETS)
    if brackets.count(b"[") + brackets.count(b"{") <= MAX_JSON_DEPTH:
        return  # not enough containers to nest too deep
    if b'"' in data:
        if b'\\"' in data:  # an escaped quote: find the strings' ends the slow way
            outside = _JSON_STRING.sub(b"", data)
        else:  # no escaped quotes: every other piece between quotes is a string
            outside = b"".join(data.split(b'"')[::2])
        brackets = outside.translate(None, _ALL_BUT_BRACKETS)
    for _ in range(MAX_JSON_DEPTH):
        if not brackets:
            return
        brackets = _EMPTY_PAIR.sub(b"", brackets)  # one level: sub does not rescan its output
    if brackets:
        raise _depth_error()


def check_json_body(value) -> None:
    """PostgreSQL text cannot hold NUL, and nothing we store needs deep nesting: refuse both
    at the door with a 422 rather than fail later."""
    stack = [(value, 1)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, str):
            if "\x00" in v:
                raise _nul_error()
        elif isinstance(v, dict | list):
            if depth > MAX_JSON_DEPTH:
                raise _depth_error()
            items = [*v.keys(), *v.values()] if isinstance(v, dict) else v
            stack.extend((item, depth + 1) for item in items)


def _json_serializer(value) -> str:
    return orjson.dumps(value, default=str).decode()


def create_app(config: Config | None = None, clock: Clock | None = None) -> Flask:
    """The app; ``clock`` is where every request's "now" comes from (the wall clock unless a
    test or a replay hands in another)."""
    config = config or Config.from_env()
    configure_logging(config.log_level)
    Flask.json_provider_class = StrictJSONProvider
    # explicit paths: Flask cannot find them for an editable install outside the source tree
    here = Path(__file__).resolve().parent
    app = Flask("govern", root_path=str(here), instance_path=str(here.parent / "var"))
    app.config.update(
        GOVERN=config,
        MAX_CONTENT_LENGTH=config.max_body_bytes,
        API_TITLE="govern",
        API_VERSION=API_VERSION,
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        API_SPEC_OPTIONS={
            "info": {"description": "A location data governor: consent, precision and "
                                    "retention enforced in PostGIS."},
            "components": {"securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer"},
                "basicAuth": {"type": "http", "scheme": "basic"}}},
            "security": [{"bearerAuth": []}],
        },
    )
    engine = make_engine(config.app_database_url, pool_size=config.db_pool_size,
                         statement_timeout_ms=config.db_statement_timeout_ms,
                         json_serializer=_json_serializer)
    app.extensions["govern"] = GovernExtension(config, engine, make_sessionmaker(engine),
                                                clock or SYSTEM)

    init_request_observability(app)
    init_security_headers(app, config)
    init_rate_limits(app, config)
    init_trusted_proxies(app, config)
    api = GovernApi(app)
    register_error_handlers(app)

    from govern.api import register

    register(app, api)

    from govern.api.common import close_request_session

    app.teardown_request(close_request_session)

    @app.before_request
    def _require_json_bodies():
        if request.routing_exception is not None:
            return None  # let routing answer 404/405 first
        if (request.method in ("POST", "PUT", "PATCH")
                and request.endpoint not in NON_JSON_ENDPOINTS):
            if not request.content_length and not request.mimetype:
                return None
            if request.mimetype != "application/json" and not request.mimetype.endswith("+json"):
                raise ApiError(415, "Send the body as application/json.",
                               details={"content_type": request.mimetype or None})
            if request.content_length or request.headers.get("Transfer-Encoding"):
                # parse once, strictly, here: a body that is not JSON is a 400 for every
                # endpoint, even those whose arguments are all optional
                body = request.get_json(silent=False)
                if body is not None:
                    check_json_text(request.get_data(cache=True))
        return None

    return app
