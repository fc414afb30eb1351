"""The request side of authentication: the token a request presents, and the handler
decorators that turn it into the request's principal (401/403/429 as the API answers).

Token logic itself (minting, hashing, looking a token up) is Flask-free in govern.auth.
"""

from __future__ import annotations

import base64
import binascii
from functools import wraps

from flask import current_app, g, request

from govern.api.common import db, principal
from govern.auth import Principal, authenticate
from govern.errors import ApiError

__all__ = ["bearer_token", "client_address", "failed_authentication", "load_principal",
           "presented_token", "principal", "require_device", "require_member", "unauthenticated"]


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
