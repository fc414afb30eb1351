"""/v1/device/...: what a device token may do: post its subject's consent, read its
collection policy, switch duty. (Pings have their own blueprint.)"""

from __future__ import annotations

from flask import current_app
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from govern.api.auth import principal, require_device
from govern.api.common import actor_kwargs, commit, db, request_now
from govern.api.requests import RequestSchema
from govern.api.schemas import CollectionWindows, JsonObject, StrictBoolean
from govern.api.subjects import ConsentEventSchema, ConsentInSchema, event_view
from govern.domain import consents, rights, subjects
from govern.domain.collection import collection_status

blp = Blueprint("device", __name__, url_prefix="/v1/device",
                description="Device-facing endpoints (device token).")


class DeviceConsentInSchema(ConsentInSchema):
    evidence = JsonObject(load_default=dict,
                          metadata={"description": "e.g. the consent screen version shown"})


class PolicyPurposeSchema(Schema):
    key = fields.String()
    precision_m = fields.Integer()
    requires_consent = fields.Boolean()


class DevicePolicySchema(Schema):
    collecting = fields.Boolean(metadata={"description": "false: nothing sent now would be kept"})
    reasons = fields.List(fields.String())
    purposes = fields.List(fields.Nested(PolicyPurposeSchema))
    precision_m = fields.Integer(allow_none=True)
    min_accuracy_m = fields.Float(allow_none=True)
    timezone = fields.String()
    collection_windows = CollectionWindows()
    in_window = fields.Boolean()
    next_window_change_at = fields.DateTime(allow_none=True)
    on_duty = fields.Boolean()
    checked_at = fields.DateTime()


class DutySchema(Schema):
    on_duty = StrictBoolean(required=True)


@blp.route("/consents", methods=["POST"])
@require_device
@blp.arguments(DeviceConsentInSchema)
@blp.response(201, ConsentEventSchema)
def record_consent(body):
    """The subject grants or withdraws consent from the app; effective at once."""
    p = principal()
    ctx = actor_kwargs()
    event = consents.record_consent(
        db(), p.tenant_id, p.subject_id, purpose_key=body["purpose"], status=body["status"],
        at=body["at"], policy_version=body["policy_version"], evidence=body["evidence"],
        source="device", actor=ctx["actor"], request_id=ctx["request_id"],
        now=request_now())
    commit()
    return event_view(event, body["purpose"])


@blp.route("/policy")
@require_device
@blp.response(200, DevicePolicySchema)
def device_policy():
    """What to collect now, at what precision, and when that next changes."""
    subject = subjects.get_subject(db(), principal().subject_id)
    return collection_status(db(), subject)


class DeviceRequestSchema(Schema):
    kind = fields.String(required=True, validate=validate.OneOf(("access", "erasure")))
    note = fields.String(load_default=None, validate=validate.Length(max=2000))


@blp.route("/requests", methods=["POST"])
@require_device
@blp.arguments(DeviceRequestSchema)
@blp.response(201, RequestSchema)
def subject_request(body):
    """The subject asks, from the app, for a copy or erasure of their data."""
    p = principal()
    ctx = actor_kwargs()
    req = rights.create_request(db(), p.tenant_id, ctx["actor"], subject_id=p.subject_id,
                                kind=body["kind"], source="device", note=body["note"],
                                now=request_now(),
                                due_days=current_app.config["GOVERN"].request_due_days,
                                request_id=ctx["request_id"])
    commit()
    return req


@blp.route("/duty", methods=["POST"])
@require_device
@blp.arguments(DutySchema)
@blp.response(200, DevicePolicySchema)
def set_duty(body):
    """Go on or off duty; off-duty pings are dropped."""
    ctx = actor_kwargs()
    subject = subjects.get_subject(db(), principal().subject_id)
    subjects.set_duty(db(), subject, body["on_duty"], ctx["actor"], ctx["request_id"])
    commit()
    return collection_status(db(), subject)
