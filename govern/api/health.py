"""Operator endpoints: liveness, readiness, metrics."""

from __future__ import annotations

from flask import current_app, jsonify, redirect, request
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from govern.errors import ApiError
from govern.hardening import metrics_allowed
from govern.migrate import current_revision, head_revision
from govern.observability import metrics_response
from govern.sql import health as sql

blp = Blueprint("health", __name__, description="Liveness, readiness and metrics for operators.")


class HealthSchema(Schema):
    status = fields.String()


class ReadySchema(Schema):
    status = fields.String(metadata={"description": "ok, migrations_pending or unavailable"})
    database = fields.String()
    schema_revision = fields.String(allow_none=True)
    head_revision = fields.String(allow_none=True)
    detail = fields.String()


class RootSchema(Schema):
    console = fields.String()
    api = fields.String()
    openapi = fields.String()
    docs = fields.String()
    health = fields.String()


@blp.route("/")
@blp.doc(security=[])
@blp.response(200, RootSchema)
@blp.alt_response(302, description="a browser (Accept: text/html): to /console")
def root():
    """Where things are: a browser goes to the console, a client gets the pointers."""
    if request.accept_mimetypes.best_match(["application/json", "text/html"]) == "text/html":
        return redirect("/console", code=302)
    return jsonify({"console": "/console", "api": "/v1", "openapi": "/openapi.json",
                    "docs": "/docs", "health": "/healthz"})


@blp.route("/healthz")
@blp.doc(security=[])
@blp.response(200, HealthSchema)
def healthz():
    """The process is up (no database call)."""
    return jsonify({"status": "ok"})


@blp.route("/readyz")
@blp.doc(security=[])
@blp.response(200, ReadySchema)
@blp.alt_response(503, schema=ReadySchema, description="not ready")
def readyz():
    """The database answers and its schema is at the migrations' head."""
    ext = current_app.extensions["govern"]
    head = head_revision()
    try:
        with ext.engine.connect() as conn:
            conn.execute(sql.PING_DATABASE)
            current = current_revision(conn)
    except Exception as exc:  # any failure here means "not ready", not a 500
        body = {"status": "unavailable", "database": "unreachable",
                "detail": str(exc).splitlines()[0][:200]}
        resp = jsonify(body)
        resp.status_code = 503
        resp.headers["Retry-After"] = str(ext.config.retry_after_seconds)
        return resp
    ready = current == head
    resp = jsonify({"status": "ok" if ready else "migrations_pending",
                    "database": "ok", "schema_revision": current, "head_revision": head})
    resp.status_code = 200 if ready else 503
    return resp


@blp.route("/metrics")
@blp.doc(security=[], responses={"200": {
    "description": "Prometheus text format",
    "content": {"text/plain": {"schema": {"type": "string"}}}}})
def metrics():
    """Prometheus text exposition, with open and overdue subject requests across tenants.
    Only with METRICS_TOKEN as bearer token, or (unset) from this machine, not via a proxy."""
    config = current_app.config["GOVERN"]
    if not metrics_allowed(config):
        if config.metrics_token:
            raise ApiError(401, "/metrics needs the METRICS_TOKEN as bearer token.",
                           headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
        raise ApiError(403, "/metrics answers only loopback clients that do not come through "
                            "a proxy; set METRICS_TOKEN to scrape it from elsewhere.")
    resp = metrics_response()
    try:
        with current_app.extensions["govern"].engine.connect() as conn:
            open_, overdue = conn.execute(sql.REQUEST_COUNTS).one()
    except Exception:  # metrics must answer even when the database does not
        return resp
    extra = (
        "# HELP govern_subject_requests_open Open data subject requests.\n"
        "# TYPE govern_subject_requests_open gauge\n"
        f"govern_subject_requests_open {open_}\n"
        "# HELP govern_subject_requests_overdue Open data subject requests past their due date.\n"
        "# TYPE govern_subject_requests_overdue gauge\n"
        f"govern_subject_requests_overdue {overdue}\n")
    resp.set_data(resp.get_data() + extra.encode())
    return resp
