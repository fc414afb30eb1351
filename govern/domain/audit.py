"""Recording audit events. The chain (seq, prev_hash, hash) is computed by the database."""

from __future__ import annotations

import uuid

from sqlalchemy import insert
from sqlalchemy.orm import Session

from govern.models import AuditEntry


def record(
    session: Session,
    tenant_id: uuid.UUID,
    actor: str,
    action: str,
    *,
    target_type: str | None = None,
    target_id=None,
    subject_id: uuid.UUID | None = None,
    details: dict | None = None,
    request_id: str | None = None,
) -> None:
    """Append one event. `actor` is "member:<id>", "device:<id>", "system:<job>" or "cli"."""
    kind = actor.split(":", 1)[0]
    session.execute(
        insert(AuditEntry).values(
            tenant_id=tenant_id,
            actor_kind=kind,
            actor_id=actor,
            action=action,
            target_type=target_type,
            target_id=str(target_id) if target_id is not None else None,
            subject_id=subject_id,
            details=details or {},
            request_id=request_id,
            # filled in by the audit_log_chain trigger
            seq=0,
            prev_hash=b"",
            hash=b"",
        )
    )
