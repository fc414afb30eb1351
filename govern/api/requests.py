"""/v1/requests: subjects' access and erasure requests, with due dates and evidence."""

from __future__ import annotations

from flask import Response, current_app, stream_with_context
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from govern.api.auth import require_member
from govern.api.common import actor_kwargs, commit, db, request_now
from govern.api.schemas import Instant, refuse_future
from govern.domain import rights

blp = Blueprint("requests", __name__, url_prefix="/v1/requests",
                description="Data subject requests: access (export) and erasure.")

WRITERS = ("owner", "admin")
READERS = ("owner", "admin", "auditor")


class RequestSchema(Schema):
    request_id = fields.UUID(dump_only=True)
    subject_id = fields.UUID(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(("access", "erasure")))
    note = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=2000))
    status = fields.String(dump_only=True)
    source = fields.String(dump_only=True)
    received_at = Instant(load_default=None, validate=refuse_future,
                          metadata={"description": "default now; never in the future"})
    due_at = fields.DateTime(dump_only=True)
    completed_at = fields.DateTime(dump_only=True, allow_none=True)
    overdue = fields.Boolean(dump_only=True)
    evidence = fields.Dict(dump_only=True)
    created_by = fields.String(dump_only=True)


class RequestQuery(Schema):
    overdue = fields.Boolean(load_default=None)
    status = fields.String(load_default=None,
                           validate=validate.OneOf(("open", "completed", "refused")))
    subject_id = fields.UUID(load_default=None)


class RequestListSchema(Schema):
    requests = fields.List(fields.Nested(RequestSchema))


class ErasureSchema(Schema):
    subject_id = fields.String()
    erased_at = fields.DateTime()
    counts = fields.Dict()
    consent_ledger_kept = fields.Boolean()


@blp.route("")
@require_member(*READERS)
@blp.arguments(RequestQuery, location="query")
@blp.response(200, RequestListSchema)
def list_requests(query):
    """Requests by due date; ?overdue=true lists the open ones past it."""
    return {"requests": rights.list_requests(db(), request_now(), overdue=query["overdue"],
                                             status=query["status"],
                                             subject_id=query["subject_id"])}


@blp.route("", methods=["POST"])
@require_member(*WRITERS)
@blp.arguments(RequestSchema)
@blp.response(201, RequestSchema)
def create_request(body):
    """Record a request received from a subject; it is due in 30 days (configurable)."""
    ctx = actor_kwargs()
    req = rights.create_request(
        db(), ctx["tenant_id"], ctx["actor"], subject_id=body["subject_id"], kind=body["kind"],
        source="admin", note=body["note"], received_at=body["received_at"], now=request_now(),
        due_days=current_app.config["GOVERN"].request_due_days, request_id=ctx["request_id"])
    commit()
    return req


@blp.route("/<uuid:request_id>")
@require_member(*READERS)
@blp.response(200, RequestSchema)
def get_request(request_id):
    return rights.get_request(db(), request_id, request_now())


@blp.route("/<uuid:request_id>/bundle")
@require_member(*WRITERS)
@blp.response(200, content_type="application/zip")
def access_bundle(request_id):
    """Fulfil an access request: a zip of everything held about the subject, streamed."""
    ctx = actor_kwargs()
    now = request_now()
    req = rights.open_request(db(), request_id, "access", now)
    counts = rights.export_counts(db(), req["subject_id"])
    rights.complete_request(db(), ctx["tenant_id"], ctx["actor"], request_id,
                            {"exported": counts}, now)
    commit()
    sessions = current_app.extensions["govern"].sessions
    stream = rights.export_bundle(sessions, ctx["tenant_id"], req["subject_id"], now)
    resp = Response(stream_with_context(stream), mimetype="application/zip")
    resp.headers["Content-Disposition"] = (
        f"attachment; filename=subject-{req['subject_id']}.zip")
    return resp


@blp.route("/<uuid:request_id>/erase", methods=["POST"])
@require_member(*WRITERS)
@blp.response(200, ErasureSchema)
def erase(request_id):
    """Fulfil an erasure request. Refused with 409 while a legal hold applies."""
    ctx = actor_kwargs()
    now = request_now()
    req = rights.open_request(db(), request_id, "erasure", now)
    db().rollback()  # erasure runs in its own bounded transactions
    sessions = current_app.extensions["govern"].sessions
    return rights.erase_subject(sessions, ctx["tenant_id"], req["subject_id"], ctx["actor"],
                                request_id=request_id, now=now)
