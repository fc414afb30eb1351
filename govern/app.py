"""The Flask application factory."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from flask import Flask, request
from flask.json.provider import DefaultJSONProvider
from flask_smorest import Api
from sqlalchemy.engine import Engine
from sqlalchemy.orm import sessionmaker

from govern import jsontext
from govern.api.bodies import check_json_text, takes_non_json
from govern.clock import SYSTEM, Clock
from govern.config import Config
from govern.db import make_engine, make_sessionmaker
from govern.domain.group import GroupCommit
from govern.errors import ApiError, register_error_handlers
from govern.hardening import (
    init_rate_limits,
    init_security_headers,
    init_trusted_proxies,
    release_heavy_slot,
)
from govern.observability import configure_logging, init_request_observability

API_VERSION = "1.0.0"

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
    group: GroupCommit | None = None  # GROUP_COMMIT: the process's batcher


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
                         json_serializer=jsontext.dumps)
    app.extensions["govern"] = GovernExtension(
        config, engine, make_sessionmaker(engine), clock or SYSTEM,
        GroupCommit() if config.group_commit else None)

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
    app.teardown_request(release_heavy_slot)

    @app.before_request
    def _require_json_bodies():
        if request.routing_exception is not None:
            return None  # let routing answer 404/405 first
        if (request.method in ("POST", "PUT", "PATCH")
                and not takes_non_json(app.view_functions.get(request.endpoint))):
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
