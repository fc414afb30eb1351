"""/v1/disclosures: disclosures to authorities, and whether the client was notified."""

from __future__ import annotations

from flask_smorest import Blueprint
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from govern.api.auth import require_member
from govern.api.common import actor_kwargs, commit, db
from govern.api.schemas import Instant
from govern.domain import rights

blp = Blueprint("disclosures", __name__, url_prefix="/v1/disclosures",
                description="Records of compelled disclosure (owner writes).")

READERS = ("owner", "admin", "auditor")


class DisclosureSchema(Schema):
    disclosure_id = fields.UUID(dump_only=True)
    authority = fields.String(required=True, validate=validate.Length(min=2, max=500))
    legal_basis = fields.String(required=True, validate=validate.Length(min=2, max=2000))
    subject_ids = fields.List(fields.UUID(), required=True,
                              validate=validate.Length(min=1, max=10_000))
    range_from = Instant(load_default=None, allow_none=True)
    range_to = Instant(load_default=None, allow_none=True)
    description = fields.String(required=True, validate=validate.Length(min=2, max=5000))
    disclosed_at = Instant(required=True)
    notified_at = Instant(load_default=None, allow_none=True)
    not_notified_reason = fields.String(load_default=None, allow_none=True,
                                        validate=validate.Length(max=2000))
    created_at = fields.DateTime(dump_only=True)
    created_by = fields.String(dump_only=True)

    @validates_schema
    def _range(self, data, **kwargs):
        if data.get("range_from") and data.get("range_to") and \
                data["range_to"] <= data["range_from"]:
            raise ValidationError("must be after range_from", "range_to")


class NotifySchema(Schema):
    notified_at = Instant(load_default=None)
    not_notified_reason = fields.String(load_default=None, validate=validate.Length(max=2000))


class DisclosureQuery(Schema):
    subject_id = fields.UUID(load_default=None)


class DisclosureListSchema(Schema):
    disclosures = fields.List(fields.Nested(DisclosureSchema))


@blp.route("")
@require_member(*READERS)
@blp.arguments(DisclosureQuery, location="query")
@blp.response(200, DisclosureListSchema)
def list_disclosures(query):
    return {"disclosures": rights.list_disclosures(db(), query["subject_id"])}


@blp.route("", methods=["POST"])
@require_member("owner")
@blp.arguments(DisclosureSchema)
@blp.response(201, DisclosureSchema)
def create_disclosure(body):
    """Record a disclosure: who asked, on what basis, what, when, and the client notice."""
    ctx = actor_kwargs()
    row = rights.create_disclosure(db(), ctx["tenant_id"], ctx["actor"], body,
                                   ctx["request_id"])
    commit()
    return row


@blp.route("/<uuid:disclosure_id>")
@require_member(*READERS)
@blp.response(200, DisclosureSchema)
def get_disclosure(disclosure_id):
    return rights.get_disclosure(db(), disclosure_id)


@blp.route("/<uuid:disclosure_id>", methods=["PATCH"])
@require_member("owner")
@blp.arguments(NotifySchema, required=False)
@blp.response(200, DisclosureSchema)
def notify(body, disclosure_id):
    """Record the notice given later (or why it may not be given)."""
    ctx = actor_kwargs()
    row = rights.update_disclosure(db(), ctx["tenant_id"], ctx["actor"], disclosure_id, body,
                                   ctx["request_id"])
    commit()
    return row
