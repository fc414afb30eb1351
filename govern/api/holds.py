"""/v1/legal-holds: pause ageing and erasure for a subject or the whole tenant."""

from __future__ import annotations

from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from govern.api.auth import require_member
from govern.api.common import actor_kwargs, commit, db, request_now
from govern.api.schemas import Instant
from govern.domain import holds

blp = Blueprint("legal_holds", __name__, url_prefix="/v1/legal-holds",
                description="Legal holds: a held subject's data neither ages nor is erased.")

WRITERS = ("owner", "admin")
READERS = ("owner", "admin", "auditor")


class HoldSchema(Schema):
    hold_id = fields.UUID(dump_only=True)
    subject_id = fields.UUID(load_default=None, allow_none=True,
                             metadata={"description": "null: the whole tenant"})
    reason = fields.String(required=True, validate=validate.Length(min=3, max=2000))
    starts_at = Instant(load_default=None)
    ends_at = Instant(load_default=None, allow_none=True)
    active = fields.Boolean(dump_only=True)
    created_at = fields.DateTime(dump_only=True)
    created_by = fields.String(dump_only=True)


class EndSchema(Schema):
    ends_at = Instant(load_default=None, metadata={"description": "default now"})


class HoldQuery(Schema):
    subject_id = fields.UUID(load_default=None)


class HoldListSchema(Schema):
    legal_holds = fields.List(fields.Nested(HoldSchema))


@blp.route("")
@require_member(*READERS)
@blp.arguments(HoldQuery, location="query")
@blp.response(200, HoldListSchema)
def list_holds(query):
    return {"legal_holds": holds.list_holds(db(), query["subject_id"], request_now())}


@blp.route("", methods=["POST"])
@require_member(*WRITERS)
@blp.arguments(HoldSchema)
@blp.response(201, HoldSchema)
def create_hold(body):
    """Place a hold, with its reason; optionally with an end."""
    ctx = actor_kwargs()
    hold = holds.create_hold(db(), ctx["tenant_id"], ctx["actor"], reason=body["reason"],
                             subject_id=body["subject_id"], starts_at=body["starts_at"],
                             ends_at=body["ends_at"], now=request_now(),
                             request_id=ctx["request_id"])
    commit()
    return hold


@blp.route("/<uuid:hold_id>")
@require_member(*READERS)
@blp.response(200, HoldSchema)
def get_hold(hold_id):
    return holds.get_hold(db(), hold_id, request_now())


@blp.route("/<uuid:hold_id>/end", methods=["POST"])
@require_member(*WRITERS)
@blp.arguments(EndSchema, required=False)
@blp.response(200, HoldSchema)
def end_hold(body, hold_id):
    """End a hold (now, or at ends_at); what it paused is applied at the next retention run."""
    ctx = actor_kwargs()
    hold = holds.end_hold(db(), ctx["tenant_id"], ctx["actor"], hold_id, body["ends_at"],
                          request_now(), ctx["request_id"])
    commit()
    return hold
