"""Tenants: one client organisation each, created with its first owner and token."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from govern.db import scope_to_tenant
from govern.domain import audit
from govern.domain.policy import write_initial_policy
from govern.domain.tokens import issue_member_token
from govern.models import Member, Tenant
from govern.sql import tenants as sql


@dataclass(frozen=True)
class CreatedTenant:
    tenant_id: uuid.UUID
    owner_member_id: uuid.UUID
    owner_token: str


def create_tenant(session: Session, name: str, owner_email: str = "owner@localhost",
                  actor: str = "cli") -> CreatedTenant:
    name = name.strip()
    if not name or len(name) > 200:
        raise ValueError("tenant name must be 1 to 200 characters")
    tenant_id = uuid.uuid4()
    scope_to_tenant(session, tenant_id)
    session.add(Tenant(tenant_id=tenant_id, name=name))
    session.flush()
    owner = Member(tenant_id=tenant_id, member_id=uuid.uuid4(), email=owner_email,
                   display_name="Owner", role="owner")
    session.add(owner)
    session.flush()
    write_initial_policy(session, tenant_id, actor)
    token, _ = issue_member_token(session, tenant_id, owner.member_id, name="initial owner token")
    audit.record(session, tenant_id, actor, "tenant.create", target_type="tenant",
                 target_id=tenant_id, details={"name": name})
    return CreatedTenant(tenant_id, owner.member_id, token)


def tenant_ids(owner: Engine) -> list[uuid.UUID]:
    """Every tenant's id (on the owner engine, which sees across tenants)."""
    with owner.connect() as conn:
        return [r[0] for r in conn.execute(sql.TENANT_IDS)]
