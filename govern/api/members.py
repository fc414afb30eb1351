"""/v1/members: the team, their roles, invitations and removal."""

from __future__ import annotations

from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from govern.api.auth import principal, require_member
from govern.api.common import commit, db, row_dict
from govern.domain import members
from govern.models import ROLES

blp = Blueprint("members", __name__, url_prefix="/v1/members",
                description="Team members of the tenant and their roles.")

MANAGERS = ("owner", "admin")
READERS = ("owner", "admin", "auditor")


class MemberSchema(Schema):
    member_id = fields.UUID(dump_only=True)
    email = fields.Email(required=True, validate=validate.Length(max=320))
    display_name = fields.String(allow_none=True, validate=validate.Length(max=200))
    role = fields.String(required=True, validate=validate.OneOf(ROLES))
    created_at = fields.DateTime(dump_only=True)


class InvitedMemberSchema(MemberSchema):
    token = fields.String(dump_only=True, metadata={"description": "shown once"})


class RoleChangeSchema(Schema):
    role = fields.String(required=True, validate=validate.OneOf(ROLES))


class MemberListSchema(Schema):
    members = fields.List(fields.Nested(MemberSchema))


@blp.route("")
@require_member(*READERS)
@blp.response(200, MemberListSchema)
def list_members():
    """List the tenant's active members."""
    return {"members": members.list_members(db())}


@blp.route("", methods=["POST"])
@require_member(*MANAGERS)
@blp.arguments(MemberSchema)
@blp.response(201, InvitedMemberSchema)
def invite_member(body):
    """Invite a member; the response carries their first token, shown once."""
    member, token = members.invite_member(db(), principal(), body["email"], body["role"],
                                          body.get("display_name"))
    commit()
    return row_dict(member, token=token)


@blp.route("/<uuid:member_id>")
@require_member(*READERS)
@blp.response(200, MemberSchema)
def get_member(member_id):
    """One member. Another tenant's member answers 404."""
    return members.get_member(db(), member_id)


@blp.route("/<uuid:member_id>", methods=["PATCH"])
@require_member(*MANAGERS)
@blp.arguments(RoleChangeSchema)
@blp.response(200, MemberSchema)
def change_role(body, member_id):
    """Change a member's role. The last owner cannot be demoted."""
    member = members.change_role(db(), principal(), member_id, body["role"])
    commit()
    return member


@blp.route("/<uuid:member_id>", methods=["DELETE"])
@require_member(*MANAGERS)
@blp.response(204)
def remove_member(member_id):
    """Remove a member and revoke their tokens. The last owner cannot be removed."""
    members.remove_member(db(), principal(), member_id)
    commit()
