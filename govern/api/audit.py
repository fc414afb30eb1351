"""/v1/audit: the tenant's hash-chained audit log, and its verification."""

from __future__ import annotations

from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from govern.api.auth import require_member
from govern.api.common import db
from govern.api.schemas import Instant
from govern.domain import audit

blp = Blueprint("audit", __name__, url_prefix="/v1/audit",
                description="Append-only, hash-chained audit log (owner, auditor).")

READERS = ("owner", "auditor")


class AuditQuery(Schema):
    from_ = Instant(data_key="from", load_default=None)
    to = Instant(load_default=None)
    actor = fields.String(load_default=None, metadata={"description": "e.g. member:<id>"})
    action = fields.String(load_default=None,
                           metadata={"description": "exact, or a prefix such as 'read'"})
    subject_id = fields.UUID(load_default=None)
    member = fields.String(load_default=None, validate=validate.Length(min=1, max=320),
                           metadata={"description": "part of an acting member's email or "
                                                    "name (case-insensitive)"})
    subject_ref = fields.String(load_default=None, validate=validate.Length(min=1, max=200),
                                metadata={"description": "part of the subject's external "
                                                         "reference (case-insensitive)"})
    order = fields.String(load_default="asc", validate=validate.OneOf(["asc", "desc"]),
                          metadata={"description": "asc: oldest first; desc: newest first"})
    after = fields.Integer(load_default=None, validate=validate.Range(min=0, max=2**63 - 1),
                           metadata={"description": "cursor: the previous page's next_after"})
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=1000))


class EntrySchema(Schema):
    seq = fields.Integer()
    at = fields.DateTime()
    actor_kind = fields.String()
    actor_id = fields.String(allow_none=True)
    action = fields.String()
    target_type = fields.String(allow_none=True)
    target_id = fields.String(allow_none=True)
    subject_id = fields.UUID(allow_none=True)
    request_id = fields.String(allow_none=True)
    details = fields.Dict()
    hash = fields.String()
    # resolved when read, from the rows as they are now; never part of the chain
    actor_email = fields.String(allow_none=True)
    actor_name = fields.String(allow_none=True,
                               metadata={"description": "member's name, device's identifier"})
    subject_ref = fields.String(allow_none=True)
    target_label = fields.String(allow_none=True,
                                 metadata={"description": "member email, subject reference "
                                                          "or device identifier"})


class EntryListSchema(Schema):
    entries = fields.List(fields.Nested(EntrySchema))
    next_after = fields.Integer(allow_none=True)


class VerifySchema(Schema):
    ok = fields.Boolean()
    entries = fields.Integer()
    head = fields.String(allow_none=True, metadata={"description": "hash of the last entry"})
    first_broken_seq = fields.Integer()
    reasons = fields.List(fields.String())


@blp.route("")
@require_member(*READERS)
@blp.arguments(AuditQuery, location="query")
@blp.response(200, EntryListSchema)
def list_entries(query):
    """Entries in chain order (`order=desc`: newest first), filtered, with the names of
    members, devices and subjects as they are now; page with ?after=<next_after>."""
    rows = audit.list_entries(db(), t_from=query["from_"], t_to=query["to"],
                              actor=query["actor"], action=query["action"],
                              subject_id=query["subject_id"], member=query["member"],
                              subject_ref=query["subject_ref"], after_seq=query["after"],
                              limit=query["limit"], newest_first=query["order"] == "desc")
    entries = [dict(r._mapping) for r in rows]
    return {"entries": entries,
            "next_after": entries[-1]["seq"] if len(entries) == query["limit"] else None}


@blp.route("/verify")
@require_member(*READERS)
@blp.response(200, VerifySchema)
def verify():
    """Recompute the chain: ok, or the first entry where it breaks (edit, deletion, reorder)."""
    return audit.verify_chain(db())
