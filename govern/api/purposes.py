"""/v1/purposes: why location is processed, and the rules each purpose sets."""

from __future__ import annotations

from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from govern.api.auth import require_member
from govern.api.common import actor_kwargs, commit, db
from govern.api.schemas import SLUG, Roles, StrictBoolean, StrictInteger
from govern.domain import purposes

blp = Blueprint("purposes", __name__, url_prefix="/v1/purposes",
                description="Purposes: consent, precision, retention and readers.")

WRITERS = ("owner", "admin")


class PurposeSchema(Schema):
    purpose_id = fields.UUID(dump_only=True)
    key = fields.String(required=True, validate=SLUG)
    title = fields.String(required=True, validate=validate.Length(min=1, max=200))
    description = fields.String(load_default="", validate=validate.Length(max=2000))
    requires_consent = StrictBoolean(load_default=True)
    precision_m = StrictInteger(required=True, validate=validate.Range(min=1, max=1_000_000),
                                 metadata={"description": "finest precision allowed, metres"})
    retention_days = StrictInteger(required=True, validate=validate.Range(min=1, max=3650))
    individual_access = StrictBoolean(load_default=False)
    aggregate_use = StrictBoolean(load_default=False)
    reader_roles = Roles(load_default=list)
    created_at = fields.DateTime(dump_only=True)
    updated_at = fields.DateTime(dump_only=True)
    archived_at = fields.DateTime(dump_only=True, allow_none=True)


class PurposePatchSchema(PurposeSchema):
    class Meta:
        exclude = ("key",)

    def __init__(self, **kwargs):
        super().__init__(partial=True, **kwargs)


class PurposeListSchema(Schema):
    purposes = fields.List(fields.Nested(PurposeSchema))


class ListQuery(Schema):
    include_archived = fields.Boolean(load_default=False)


class RemovedSchema(Schema):
    outcome = fields.String(metadata={"description": "deleted, or archived when in use"})


@blp.route("")
@require_member()
@blp.arguments(ListQuery, location="query")
@blp.response(200, PurposeListSchema)
def list_purposes(query):
    """All purposes (any member may read them)."""
    return {"purposes": purposes.list_purposes(db(), query["include_archived"])}


@blp.route("", methods=["POST"])
@require_member(*WRITERS)
@blp.arguments(PurposeSchema)
@blp.response(201, PurposeSchema)
def create_purpose(body):
    """Declare a purpose."""
    ctx = actor_kwargs()
    purpose = purposes.create_purpose(db(), ctx["tenant_id"], ctx["actor"], body,
                                      ctx["request_id"])
    commit()
    return purpose


@blp.route("/<uuid:purpose_id>")
@require_member()
@blp.response(200, PurposeSchema)
def get_purpose(purpose_id):
    return purposes.get_purpose(db(), purpose_id)


@blp.route("/<uuid:purpose_id>", methods=["PATCH"])
@require_member(*WRITERS)
@blp.arguments(PurposePatchSchema, required=False)
@blp.response(200, PurposeSchema)
def update_purpose(body, purpose_id):
    """Change a purpose; precision and retention changes apply to stored data too."""
    ctx = actor_kwargs()
    purpose = purposes.update_purpose(db(), ctx["actor"], purpose_id, body, ctx["request_id"])
    commit()
    return purpose


@blp.route("/<uuid:purpose_id>", methods=["DELETE"])
@require_member(*WRITERS)
@blp.response(200, RemovedSchema)
def remove_purpose(purpose_id):
    """Delete an unused purpose, or archive one that consents or pings refer to."""
    ctx = actor_kwargs()
    outcome = purposes.remove_purpose(db(), ctx["actor"], purpose_id, ctx["request_id"])
    commit()
    return {"outcome": outcome}
