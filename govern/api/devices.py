"""/v1/devices: enrol a subject's device (its token is shown once), list, revoke."""

from __future__ import annotations

from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from govern.api.common import actor_kwargs, commit, db, row_dict
from govern.auth import require_member
from govern.domain import subjects

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
    """Devices with their last-seen time."""
    return {"devices": subjects.list_devices(db(), query["subject_id"],
                                             query["include_revoked"])}


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


@blp.route("/<uuid:device_id>", methods=["DELETE"])
@require_member(*WRITERS)
@blp.response(200, DeviceSchema)
def revoke_device(device_id):
    """Revoke a device and its token; its identifier stops routing."""
    ctx = actor_kwargs()
    device = subjects.revoke_device(db(), ctx["actor"], device_id, ctx["request_id"])
    commit()
    return device
