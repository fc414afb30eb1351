"""/v1/policy: the tenant's versioned policy (windows, accuracy, k, differential privacy)."""

from __future__ import annotations

from flask_smorest import Blueprint
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from govern.api.auth import require_member
from govern.api.common import actor_kwargs, commit, db
from govern.api.schemas import (
    CollectionWindows,
    StrictBoolean,
    StrictFloat,
    StrictInteger,
    Timezone,
)
from govern.domain import policy

blp = Blueprint("policy", __name__, url_prefix="/v1/policy",
                description="Tenant policy; every change is a new version.")

WRITERS = ("owner", "admin")


class PolicyDocSchema(Schema):
    timezone = Timezone(metadata={"description": "default time zone of subjects and windows"})
    collection_windows = CollectionWindows(
        metadata={"description": "weekly hours when pings are kept; [] means always"})
    min_accuracy_m = StrictFloat(allow_none=True, validate=validate.Range(min=1, max=100_000),
                                  metadata={"description": "pings less accurate are dropped"})
    k_min_subjects = StrictInteger(validate=validate.Range(min=2, max=1000))
    dp_epsilon_per_query = StrictFloat(allow_none=True,
                                        validate=validate.Range(min=0.01, max=10))
    dp_epsilon_per_day = StrictFloat(allow_none=True, validate=validate.Range(min=0.01, max=100))
    aggregate_retention_days = StrictInteger(validate=validate.Range(min=1, max=3650))
    release_delay_hours = StrictInteger(
        validate=validate.Range(min=0, max=720),
        metadata={"description": "hours after a day, week or month ends before its exact "
                                 "reports are released (late uploads settle first)"})
    keep_consent_proof_on_erasure = StrictBoolean()
    stay_radius_m = StrictInteger(validate=validate.Range(min=10, max=5000))
    stay_min_minutes = StrictInteger(validate=validate.Range(min=1, max=1440))

    @validates_schema
    def _dp_pair(self, data, **kwargs):
        q, d = data.get("dp_epsilon_per_query"), data.get("dp_epsilon_per_day")
        if ("dp_epsilon_per_query" in data) != ("dp_epsilon_per_day" in data):
            raise ValidationError("set dp_epsilon_per_query and dp_epsilon_per_day together "
                                  "(both null turns differential privacy off)",
                                  "dp_epsilon_per_day")
        if (q is None) != (d is None):
            raise ValidationError("both null (off) or both set", "dp_epsilon_per_day")
        if q is not None and d is not None and q > d:
            raise ValidationError("the daily budget must be at least one query's epsilon",
                                  "dp_epsilon_per_day")


class PolicyPatchSchema(PolicyDocSchema):
    def __init__(self, **kwargs):
        super().__init__(partial=True, **kwargs)


class PolicySchema(PolicyDocSchema):
    version = fields.Integer(dump_only=True)
    created_at = fields.DateTime(dump_only=True)
    created_by = fields.String(dump_only=True)


class VersionSchema(Schema):
    version = fields.Integer()
    created_at = fields.DateTime()
    created_by = fields.String()
    changed = fields.List(fields.String())
    policy = fields.Nested(PolicyDocSchema)


class VersionListSchema(Schema):
    versions = fields.List(fields.Nested(VersionSchema))


def view(row) -> dict:
    return {**policy.DEFAULT_POLICY, **row.policy, "version": row.version,
            "created_at": row.created_at, "created_by": row.created_by}


@blp.route("")
@require_member()
@blp.response(200, PolicySchema)
def get_policy():
    """The policy in force (any member may read it)."""
    return view(policy.current_policy_version(db()))


def _write(body, replace: bool):
    ctx = actor_kwargs()
    row = policy.update_policy(db(), ctx["tenant_id"], ctx["actor"], body, replace=replace,
                               request_id=ctx["request_id"])
    commit()
    return view(row)


@blp.route("", methods=["PATCH"])
@require_member(*WRITERS)
@blp.arguments(PolicyPatchSchema, required=False)
@blp.response(200, PolicySchema)
def patch_policy(body):
    """Change some settings; the rest stay. A change makes a new version."""
    return _write(body, replace=False)


@blp.route("", methods=["PUT"])
@require_member(*WRITERS)
@blp.arguments(PolicyDocSchema, required=False)
@blp.response(200, PolicySchema)
def put_policy(body):
    """Replace the policy; settings left out take their defaults."""
    return _write(body, replace=True)


@blp.route("/versions")
@require_member(*WRITERS, "auditor")
@blp.response(200, VersionListSchema)
def list_versions():
    """Every version, newest first, with who changed what."""
    return {"versions": [
        {"version": v.version, "created_at": v.created_at, "created_by": v.created_by,
         "changed": v.changed, "policy": {**policy.DEFAULT_POLICY, **v.policy}}
        for v in policy.list_versions(db())]}
