"""What every blueprint shares: the request's database session, paging, audit helpers."""

from __future__ import annotations

from flask import current_app, g

from govern.auth import Principal
from govern.domain import audit
from govern.observability import current_request_id


def db():
    """The request's session: made on first use, rolled back if uncommitted at teardown."""
    session = g.get("db")
    if session is None:
        session = current_app.extensions["govern"].sessions()
        p = g.get("principal")  # authenticated without the session (govern.api.pings)
        if p is not None:
            session.info["tenant_id"] = p.tenant_id
        g.db = session
    return session


def principal() -> Principal:
    """The request's principal, set by govern.api.auth when it authenticates the request."""
    return g.principal


def request_now():
    """The request's instant, from the app's clock, read once so that every decision one
    request makes (periods, windows, cut-offs) sees the same time."""
    now = g.get("now")
    if now is None:
        now = g.now = current_app.extensions["govern"].clock.now()
    return now


def commit() -> None:
    """Commit before answering, so that a 2xx always means the change is durable."""
    db().commit()


def close_request_session(exc=None) -> None:
    device_request = g.pop("device_request", None)  # govern.api.pings.device_request
    if device_request is not None:
        device_request.close()
    session = g.pop("db", None)
    if session is not None:
        try:
            session.rollback()
        finally:
            session.close()


def audit_event(action: str, **kwargs) -> None:
    """Record an event for the calling principal in the request's transaction."""
    p = principal()
    audit.record(db(), p.tenant_id, p.actor_id, action, request_id=current_request_id(), **kwargs)


def row_dict(obj, **extra) -> dict:
    """A mapped row's column values as a dict (for responses that add a one-time secret)."""
    from sqlalchemy import inspect

    values = {attr.key: getattr(obj, attr.key) for attr in inspect(obj).mapper.column_attrs}
    values.update(extra)
    return values


def actor_kwargs() -> dict:
    """tenant_id, actor and request_id of the caller, as domain functions take them."""
    p = principal()
    return {"tenant_id": p.tenant_id, "actor": p.actor_id, "request_id": current_request_id()}

