"""/v1/devices: enrol a subject's device (its token is shown once), list, revoke; and what
its ingest requests became (GET /v1/devices/{id}/ingest)."""

from __future__ import annotations

from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from govern.api.auth import require_member
from govern.api.common import actor_kwargs, commit, db, request_now, row_dict
from govern.domain import diagnostics, subjects

blp = Blueprint("devices", __name__, url_prefix="/v1/devices",
                description="Devices of subjects; each gets a device token.")

WRITERS = ("owner", "admin")
READERS = ("owner", "admin", "auditor")


class DeviceSchema(Schema):
    device_id = fields.UUID(dump_only=True)
    subject_id = fields.UUID(required=True)
    identifier = fields.String(
        load_default=None, validate=validate.Length(min=4, max=100),
        metadata={"description": "the id the app sends (Traccar Client), unique in the "
                                 "tenant; generated if absent"})
    osmand_path = fields.Function(
        lambda d: f"/v1/ingest/osmand/{_get(d, 'tenant_id')}", dump_only=True,
        metadata={"description": "the path of Traccar Client's server URL for this device"})
    name = fields.String(allow_none=True, validate=validate.Length(max=200))
    platform = fields.String(allow_none=True, validate=validate.Length(max=40))
    created_at = fields.DateTime(dump_only=True)
    revoked_at = fields.DateTime(dump_only=True, allow_none=True)
    last_seen_at = fields.DateTime(dump_only=True, allow_none=True)
    ingest_flagged = fields.Boolean(dump_only=True, metadata={
        "description": f"its last {diagnostics.REFUSED_STREAK_FLAG} or more ingest requests "
                       "all stored nothing and refused something (in the device list)"})
    refused_streak = fields.Integer(dump_only=True, metadata={
        "description": "ingest requests in a row that stored nothing and refused something"})
    last_accepted_at = fields.DateTime(dump_only=True, allow_none=True, metadata={
        "description": "when an ingest request last stored a ping"})


class RefusalSchema(Schema):
    at = fields.String(metadata={"description": "receipt time of the request"})
    format = fields.String(metadata={"description": "owntracks, osmand, transistor, overland "
                                                    "or native"})
    kind = fields.String(metadata={"description": "rejected (a ping that did not validate), "
                                                  "dropped (by the door, with its reason) or "
                                                  "refused (the whole request)"})
    reason = fields.String(metadata={"description": "the message or drop reason; never a "
                                                    "coordinate or a value"})
    field = fields.String(allow_none=True)
    count = fields.Integer(metadata={"description": "items of that request with this refusal"})


class IngestDiagnosticsSchema(Schema):
    device_id = fields.UUID()
    window_start = fields.DateTime(metadata={"description": "start of the current hour, "
                                                            "less 23 hours"})
    now = fields.DateTime()
    requests = fields.Integer()
    accepted = fields.Integer()
    duplicates = fields.Integer()
    ignored = fields.Integer(metadata={"description": "messages that are no location"})
    server_time = fields.Integer(metadata={"description": "pings timed at receipt (their "
                                                          "client sent no time)"})
    dropped = fields.Dict(keys=fields.String(), values=fields.Integer())
    rejected = fields.Dict(keys=fields.String(), values=fields.Integer(),
                           metadata={"description": "rejected pings by field"})
    refused = fields.Dict(keys=fields.String(), values=fields.Integer(),
                          metadata={"description": "whole requests refused, by error code"})
    last_request_at = fields.DateTime(allow_none=True)
    last_accepted_at = fields.DateTime(allow_none=True)
    refused_streak = fields.Integer()
    flagged = fields.Boolean()
    refusals = fields.List(fields.Nested(RefusalSchema), metadata={
        "description": f"the last {diagnostics.sql.REFUSALS_KEPT}, newest first"})


def _get(obj, key):
    return obj[key] if isinstance(obj, dict) else getattr(obj, key)


class EnrolledDeviceSchema(DeviceSchema):
    token = fields.String(dump_only=True, metadata={"description": "device token, shown once"})


class DeviceQuery(Schema):
    subject_id = fields.UUID(load_default=None)
    include_revoked = fields.Boolean(load_default=False)


class DeviceListSchema(Schema):
    devices = fields.List(fields.Nested(DeviceSchema))


@blp.route("")
@require_member(*READERS)
@blp.arguments(DeviceQuery, location="query")
@blp.response(200, DeviceListSchema)
def list_devices(query):
    """Devices with their last-seen time, and a flag on those whose ingest keeps refusing."""
    devices = subjects.list_devices(db(), query["subject_id"], query["include_revoked"])
    health = diagnostics.streaks(db(), [d.device_id for d in devices])
    none = {"refused_streak": 0, "flagged": False, "last_accepted_at": None}
    return {"devices": [
        row_dict(d, **{("ingest_flagged" if k == "flagged" else k): v
                       for k, v in health.get(d.device_id, none).items()})
        for d in devices]}


@blp.route("", methods=["POST"])
@require_member(*WRITERS)
@blp.arguments(DeviceSchema)
@blp.response(201, EnrolledDeviceSchema)
def enrol_device(body):
    """Enrol a device for a subject. The device token is in this response only."""
    ctx = actor_kwargs()
    device, token = subjects.enrol_device(
        db(), ctx["tenant_id"], ctx["actor"], body["subject_id"], body.get("identifier"),
        body.get("name"), body.get("platform"), ctx["request_id"])
    commit()
    return row_dict(device, token=token)


@blp.route("/<uuid:device_id>")
@require_member(*READERS)
@blp.response(200, DeviceSchema)
def get_device(device_id):
    return subjects.get_device(db(), device_id)


@blp.route("/<uuid:device_id>/ingest")
@require_member(*WRITERS)
@blp.response(200, IngestDiagnosticsSchema)
def device_ingest(device_id):
    """What the device's ingest requests became over the last 24 hours, and its last
    refusals (reason and field, never coordinates). For owners and admins."""
    subjects.get_device(db(), device_id)  # 404 for a device of no one or of another tenant
    return diagnostics.device_ingest(db(), device_id, request_now())


@blp.route("/<uuid:device_id>", methods=["DELETE"])
@require_member(*WRITERS)
@blp.response(200, DeviceSchema)
def revoke_device(device_id):
    """Revoke a device and its token; its identifier stops routing."""
    ctx = actor_kwargs()
    device = subjects.revoke_device(db(), ctx["actor"], device_id, ctx["request_id"])
    commit()
    return device
