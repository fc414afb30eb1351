"""Bearer tokens: random, shown once, kept only as a SHA-256, scoped to one tenant.

A token reads `gv_<tenant hex>_<secret>`. The tenant part lets authentication set the
row-level-security scope before it looks the hash up, so even this lookup never reads
across tenants (and routes to one shard under Citus).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import re
import secrets
import uuid
from dataclasses import dataclass
from functools import wraps

from flask import current_app, g, request
from sqlalchemy import text
from sqlalchemy.orm import Session

from govern.db import scope_to_tenant, tenant_scope_sql
from govern.errors import ApiError

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


_LOOKUP = text(
    """
    SELECT t.token_id, t.kind, t.member_id, m.role, t.device_id, d.subject_id,
           t.last_used_at
    FROM api_tokens t
    LEFT JOIN members m ON m.tenant_id = t.tenant_id AND m.member_id = t.member_id
                        AND m.removed_at IS NULL
    LEFT JOIN devices d ON d.tenant_id = t.tenant_id AND d.device_id = t.device_id
                        AND d.revoked_at IS NULL
    WHERE t.tenant_id = :tenant_id AND t.token_hash = :token_hash
      AND t.revoked_at IS NULL
      AND (t.expires_at IS NULL OR t.expires_at > now())
    """
)


def authenticate(session: Session, token: str, touch_seconds: int = 60) -> Principal | None:
    """The principal behind a token, or None when it is unknown, revoked or expired."""
    tenant_id = tenant_of_token(token)
    if tenant_id is None:
        return None
    scope_to_tenant(session, tenant_id)
    row = session.execute(
        _LOOKUP, {"tenant_id": tenant_id, "token_hash": hash_token(token)}
    ).first()
    if row is None:
        return None
    if row.kind == "member" and row.role is None:
        return None  # member removed
    if row.kind == "device" and row.subject_id is None:
        return None  # device revoked
    now = dt.datetime.now(dt.UTC)
    if row.last_used_at is None or (now - row.last_used_at).total_seconds() > touch_seconds:
        touch(session, tenant_id, row.token_id, row.device_id if row.kind == "device" else None)
    return Principal(
        tenant_id=tenant_id,
        kind=row.kind,
        token_id=row.token_id,
        member_id=row.member_id,
        role=row.role,
        device_id=row.device_id,
        subject_id=row.subject_id,
    )


def touch(session: Session, tenant_id: uuid.UUID, token_id: uuid.UUID,
          device_id: uuid.UUID | None) -> None:
    """Record token use (and device contact) in its own short transaction, so it sticks
    even when the request itself only reads or fails."""
    with session.get_bind().connect() as conn:
        conn.execute(text(tenant_scope_sql(tenant_id)))
        conn.execute(text("UPDATE api_tokens SET last_used_at = now() "
                          "WHERE tenant_id = :t AND token_id = :id"),
                     {"t": tenant_id, "id": token_id})
        if device_id is not None:
            conn.execute(text("UPDATE devices SET last_seen_at = now() "
                              "WHERE tenant_id = :t AND device_id = :id"),
                         {"t": tenant_id, "id": device_id})
        conn.commit()


def _authorization() -> tuple[str, str]:
    """The Authorization header as (scheme in lower case, credential with whitespace
    trimmed): `bearer`, `BEARER` and extra spaces are one credential."""
    parts = request.headers.get("Authorization", "").split(None, 1)
    if len(parts) != 2:
        return (parts[0].lower() if parts else ""), ""
    return parts[0].lower(), parts[1].strip()


def bearer_token() -> str | None:
    scheme, value = _authorization()
    return (value or None) if scheme == "bearer" else None


def presented_token() -> str | None:
    """The token a request presents: Bearer, or Basic's password (OwnTracks sends the
    device token as the password of any user name)."""
    scheme, value = _authorization()
    if scheme == "bearer":
        return value or None
    if scheme == "basic" and value:
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[2] or None
    return None


def client_address() -> str:
    """The address limits count against: the peer, or what a trusted proxy forwarded."""
    return request.remote_addr or "unknown"


def unauthenticated(message: str = "A valid bearer token is required.") -> ApiError:
    return ApiError(401, message, headers={"WWW-Authenticate": 'Bearer realm="govern"'})


def failed_authentication(error: ApiError) -> ApiError:
    """A presented credential did not authenticate: charge the client's failure budget
    (see govern.hardening.AuthFailureLimit); once it is spent, 429 instead of `error`.
    Valid credentials never reach this, so they keep working from the same address."""
    limit = current_app.extensions.get("govern_auth_failures")
    wait = limit.charge(client_address()) if limit is not None else None
    if wait is None:
        return error
    return ApiError(429, "Too many failed authentications from this address; retry later.",
                    headers={"Retry-After": str(wait)})


def load_principal(token: str | None) -> Principal:
    """Authenticate the request's token against the request's session; 401 when it fails."""
    from govern.api.common import db

    if not token:
        raise unauthenticated()
    principal = authenticate(db(), token, current_app.config["GOVERN"].token_touch_seconds)
    if principal is None:
        raise failed_authentication(unauthenticated("The token is unknown, revoked or expired."))
    g.principal = principal
    return principal


def require_member(*roles: str):
    """Handler decorator: a member token whose role is one of `roles` (any role if none)."""

    def decorator(fn):
        @wraps(fn)
        def wrapper(*args, **kwargs):
            principal = load_principal(bearer_token())
            if principal.kind != "member":
                raise ApiError(403, "This endpoint needs a member token, not a device token.")
            if roles and principal.role not in roles:
                record_denied(principal, list(roles))
                raise ApiError(
                    403,
                    f"The role '{principal.role}' may not do this.",
                    details={"allowed_roles": list(roles)},
                )
            return fn(*args, **kwargs)

        return wrapper

    return decorator


def record_denied(principal: Principal, allowed: list[str]) -> None:
    """Audit a refused authorisation in its own transaction (the request's rolls back)."""
    from govern.db import tenant_session
    from govern.domain import audit

    with tenant_session(current_app.extensions["govern"].sessions, principal.tenant_id) as s:
        audit.record(s, principal.tenant_id, principal.actor_id, "auth.denied",
                     target_type="endpoint", target_id=request.endpoint,
                     request_id=g.get("request_id"),
                     details={"method": request.method, "path": request.path,
                              "role": principal.role, "allowed_roles": allowed})


def require_device(fn):
    """Handler decorator: a device token (its subject is on the principal)."""

    @wraps(fn)
    def wrapper(*args, **kwargs):
        principal = load_principal(bearer_token())
        if principal.kind != "device":
            raise ApiError(403, "This endpoint needs a device token.")
        return fn(*args, **kwargs)

    return wrapper


def principal() -> Principal:
    return g.principal
