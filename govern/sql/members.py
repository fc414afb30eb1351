"""Member SQL."""

from sqlalchemy import text

# The tenant's name and the member's own fields, for GET /v1/me.
WHOAMI = text(
    "SELECT t.name AS tenant_name, m.email, m.display_name FROM members m "
    "JOIN tenants t USING (tenant_id) WHERE m.member_id = :m")
