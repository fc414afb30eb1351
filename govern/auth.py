"""Bearer tokens: random, shown once, kept only as a SHA-256, scoped to one tenant.

Flask-free (the domain takes its Principal from here); the request side, reading the
Authorization header and the handler decorators, is govern.api.auth.

A token reads `gv_<tenant hex>_<secret>`. The tenant part lets authentication set the
row-level-security scope before it looks the hash up, so even this lookup never reads
across tenants (and routes to one shard under Citus).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
import uuid
from dataclasses import dataclass

from sqlalchemy.orm import Session

from govern.db import scope_to_tenant, tenant_scope_sql
from govern.sql import tokens as sql

TOKEN_RE = re.compile(r"^gv_([0-9a-f]{32})_([A-Za-z0-9_-]{43})$")
SECRET_BYTES = 32


@dataclass(frozen=True)
class NewToken:
    token: str
    token_hash: bytes
    hint: str


@dataclass(frozen=True)
class Principal:
    tenant_id: uuid.UUID
    kind: str  # "member" or "device"
    token_id: uuid.UUID | None  # None for a device named by identifier alone (OsmAnd)
    member_id: uuid.UUID | None = None
    role: str | None = None
    device_id: uuid.UUID | None = None
    subject_id: uuid.UUID | None = None

    @property
    def actor_id(self) -> str:
        return f"{self.kind}:{self.member_id or self.device_id}"


def hash_token(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def mint_token(tenant_id: uuid.UUID) -> NewToken:
    secret = secrets.token_urlsafe(SECRET_BYTES)
    token = f"gv_{tenant_id.hex}_{secret}"
    return NewToken(token=token, token_hash=hash_token(token), hint=secret[:6])


def tenant_of_token(token: str) -> uuid.UUID | None:
    m = TOKEN_RE.match(token)
    return uuid.UUID(m.group(1)) if m else None


def authenticate(session: Session, token: str, touch_seconds: int = 60) -> Principal | None:
    """The principal behind a token, or None when it is unknown, revoked or expired."""
    tenant_id = tenant_of_token(token)
    if tenant_id is None:
        return None
    scope_to_tenant(session, tenant_id)
    row = session.execute(
        sql.TOKEN_LOOKUP, {"tenant_id": tenant_id, "token_hash": hash_token(token)}
    ).first()
    if not token_row_live(session.get_bind(), tenant_id, row, touch_seconds):
        return None
    return Principal(
        tenant_id=tenant_id,
        kind=row.kind,
        token_id=row.token_id,
        member_id=row.member_id,
        role=row.role,
        device_id=row.device_id,
        subject_id=row.subject_id,
    )


def token_row_live(engine, tenant_id: uuid.UUID, row, touch_seconds: int) -> bool:
    """Whether a row of sql.TOKEN_LOOKUP authenticates (its member or device is still
    there); if so, its use is recorded when the last record is older than touch_seconds.
    Every token path (this module, govern.domain.single) judges a token by this."""
    if row is None:
        return False
    if row.kind == "member" and row.role is None:
        return False  # member removed
    if row.kind == "device" and row.subject_id is None:
        return False  # device revoked
    now = dt.datetime.now(dt.UTC)
    if row.last_used_at is None or (now - row.last_used_at).total_seconds() > touch_seconds:
        touch_on(engine, tenant_id, row.token_id,
                 row.device_id if row.kind == "device" else None)
    return True


def touch_on(engine, tenant_id: uuid.UUID, token_id: uuid.UUID,
             device_id: uuid.UUID | None) -> None:
    """Record token use (and device contact) in its own short transaction, on a
    connection of the engine's own, so it sticks even when the request only reads or fails."""
    with engine.connect() as conn:
        conn.exec_driver_sql(tenant_scope_sql(tenant_id))
        conn.execute(sql.TOUCH_TOKEN, {"t": tenant_id, "id": token_id})
        if device_id is not None:
            conn.execute(sql.TOUCH_DEVICE, {"t": tenant_id, "id": device_id})
        conn.commit()
