"""`govern demo`: a demo tenant to try the API with."""

from __future__ import annotations

from govern.db import tenant_session
from govern.domain.tenants import create_tenant


def seed_demo(sessions, name: str = "Demo Field Services", days: int = 3,
              n_subjects: int = 12) -> dict:
    with tenant_session(sessions, None) as session:
        created = create_tenant(session, name, owner_email="owner@demo.example")
    return {"tenant_id": str(created.tenant_id), "owner_token": created.owner_token}
