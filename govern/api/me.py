"""GET /v1/me: who the token belongs to (for the console and scripts)."""

from __future__ import annotations

from flask_smorest import Blueprint
from marshmallow import Schema, fields
from sqlalchemy import text

from govern.api.auth import principal, require_member
from govern.api.common import db

blp = Blueprint("me", __name__, url_prefix="/v1/me", description="The calling member.")


class MeSchema(Schema):
    tenant_id = fields.UUID()
    tenant_name = fields.String()
    member_id = fields.UUID()
    role = fields.String()
    email = fields.String()
    display_name = fields.String(allow_none=True)


@blp.route("")
@require_member()
@blp.response(200, MeSchema)
def me():
    """The tenant, member and role behind this token."""
    p = principal()
    row = db().execute(text(
        "SELECT t.name AS tenant_name, m.email, m.display_name FROM members m "
        "JOIN tenants t USING (tenant_id) WHERE m.member_id = :m"), {"m": p.member_id}).one()
    return {"tenant_id": p.tenant_id, "member_id": p.member_id, "role": p.role,
            **row._mapping}
