"""/v1/subjects: tracked people, their consent ledger and derived consent state."""

from __future__ import annotations

from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from govern.api.auth import require_member
from govern.api.common import actor_kwargs, commit, db, request_now
from govern.api.schemas import (
    CollectionWindows,
    Instant,
    JsonObject,
    PageQuery,
    StrictBoolean,
    Timezone,
)
from govern.domain import consents, subjects
from govern.domain.policy import current_policy

blp = Blueprint("subjects", __name__, url_prefix="/v1/subjects",
                description="Subjects (tracked people) and their consent.")

WRITERS = ("owner", "admin")
READERS = ("owner", "admin", "auditor", "dispatcher")
CONSENT_READERS = ("owner", "admin", "auditor")


class SubjectSchema(Schema):
    subject_id = fields.UUID(dump_only=True)
    external_ref = fields.String(required=True, validate=validate.Length(min=1, max=200))
    display_name = fields.String(allow_none=True, validate=validate.Length(max=200))
    timezone = Timezone(metadata={"description": "IANA zone; default: the tenant policy's"})
    collection_windows = CollectionWindows(
        allow_none=True, metadata={"description": "override of the tenant's windows; null: "
                                                  "use the tenant's"})
    collection_blocked = StrictBoolean(load_default=False,
                                        metadata={"description": "never collect (e.g. a minor)"})
    blocked_reason = fields.String(allow_none=True, validate=validate.Length(max=500))
    on_duty = fields.Boolean(dump_only=True)
    duty_changed_at = fields.DateTime(dump_only=True, allow_none=True)
    created_at = fields.DateTime(dump_only=True)


class SubjectPatchSchema(SubjectSchema):
    class Meta:
        exclude = ("external_ref",)

    def __init__(self, **kwargs):
        super().__init__(partial=True, **kwargs)


class SubjectQuery(PageQuery):
    external_ref = fields.String(load_default=None)


class SubjectListSchema(Schema):
    subjects = fields.List(fields.Nested(SubjectSchema))
    next_after = fields.UUID(allow_none=True)


class ConsentInSchema(Schema):
    purpose = fields.String(required=True, validate=validate.Length(min=1, max=64))
    status = fields.String(required=True, validate=validate.OneOf(("granted", "withdrawn")))
    at = Instant(load_default=None,
                              metadata={"description": "default now; never in the future"})
    policy_version = fields.String(required=True, validate=validate.Length(min=1, max=100))


class AdminConsentInSchema(ConsentInSchema):
    evidence = JsonObject(required=True, validate=validate.Length(min=1),
                          metadata={"description": "what proves it: form id, signature, ..."})


class ConsentEventSchema(Schema):
    event_id = fields.UUID()
    purpose = fields.String()
    status = fields.String()
    at = fields.DateTime()
    recorded_at = fields.DateTime()
    policy_version = fields.String()
    source = fields.String()
    actor_id = fields.String()
    evidence = fields.Dict()


class ConsentHistorySchema(Schema):
    events = fields.List(fields.Nested(ConsentEventSchema))


class StateQuery(Schema):
    at = Instant(load_default=None)


class PurposeStateSchema(Schema):
    purpose = fields.String()
    requires_consent = fields.Boolean()
    status = fields.String(metadata={"description": "granted, withdrawn or none"})
    since = fields.DateTime(allow_none=True)
    active = fields.Boolean(metadata={"description": "may this purpose use location now"})


class ConsentStateSchema(Schema):
    subject_id = fields.UUID()
    at = fields.DateTime()
    purposes = fields.List(fields.Nested(PurposeStateSchema))


def event_view(event, key: str) -> dict:
    return {"event_id": event.event_id, "purpose": key, "status": event.status, "at": event.at,
            "recorded_at": event.recorded_at, "policy_version": event.policy_version,
            "source": event.source, "actor_id": event.actor_id, "evidence": event.evidence}


def state_view(subject_id, at, states) -> dict:
    return {"subject_id": subject_id, "at": at, "purposes": [
        {"purpose": s.purpose.key, "requires_consent": s.purpose.requires_consent,
         "status": s.status, "since": s.since, "active": s.active} for s in states]}


@blp.route("")
@require_member(*READERS)
@blp.arguments(SubjectQuery, location="query")
@blp.response(200, SubjectListSchema)
def list_subjects(query):
    """Subjects, by id, a page at a time (?after= the previous page's next_after)."""
    rows = subjects.list_subjects(db(), query["limit"], query["after"], query["external_ref"])
    return {"subjects": rows,
            "next_after": rows[-1].subject_id if len(rows) == query["limit"] else None}


@blp.route("", methods=["POST"])
@require_member(*WRITERS)
@blp.arguments(SubjectSchema)
@blp.response(201, SubjectSchema)
def create_subject(body):
    """Add a subject. Without a timezone, the tenant policy's applies."""
    ctx = actor_kwargs()
    body.setdefault("timezone", current_policy(db())["timezone"])
    subject = subjects.create_subject(db(), ctx["tenant_id"], ctx["actor"], body,
                                      ctx["request_id"])
    commit()
    return subject


@blp.route("/<uuid:subject_id>")
@require_member(*READERS)
@blp.response(200, SubjectSchema)
def get_subject(subject_id):
    return subjects.get_subject(db(), subject_id)


@blp.route("/<uuid:subject_id>", methods=["PATCH"])
@require_member(*WRITERS)
@blp.arguments(SubjectPatchSchema, required=False)
@blp.response(200, SubjectSchema)
def update_subject(body, subject_id):
    """Change a subject: time zone, window override, block (a reason is required)."""
    ctx = actor_kwargs()
    subject = subjects.update_subject(db(), ctx["actor"], subject_id, body, ctx["request_id"])
    commit()
    return subject


@blp.route("/<uuid:subject_id>/consents", methods=["POST"])
@require_member(*WRITERS)
@blp.arguments(AdminConsentInSchema)
@blp.response(201, ConsentEventSchema)
def record_consent(body, subject_id):
    """Record a grant or withdrawal on the subject's behalf; evidence is required."""
    ctx = actor_kwargs()
    event = consents.record_consent(
        db(), ctx["tenant_id"], subject_id, purpose_key=body["purpose"], status=body["status"],
        at=body["at"], policy_version=body["policy_version"], evidence=body["evidence"],
        source="admin", actor=ctx["actor"], request_id=ctx["request_id"],
        now=request_now())
    commit()
    return event_view(event, body["purpose"])


@blp.route("/<uuid:subject_id>/consents")
@require_member(*CONSENT_READERS)
@blp.response(200, ConsentHistorySchema)
def consent_history(subject_id):
    """The subject's consent ledger, oldest first."""
    subjects.get_subject(db(), subject_id)
    return {"events": [event_view(e, k) for e, k in consents.consent_history(db(), subject_id)]}


@blp.route("/<uuid:subject_id>/consent-state")
@require_member(*CONSENT_READERS)
@blp.arguments(StateQuery, location="query")
@blp.response(200, ConsentStateSchema)
def consent_state(query, subject_id):
    """Each purpose's consent state at ?at= (default now), derived from the ledger."""
    subjects.get_subject(db(), subject_id)
    at = query["at"] or request_now()
    return state_view(subject_id, at, consents.consent_state(db(), subject_id, at))
