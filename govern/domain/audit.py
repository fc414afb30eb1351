"""Recording audit events. The chain (seq, prev_hash, hash) is computed by the database."""

from __future__ import annotations

import uuid

from sqlalchemy import insert
from sqlalchemy.orm import Session

from govern.models import AuditEntry
from govern.sql import audit as sql


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


def verify_chain(session: Session) -> dict:
    """Walk the tenant's chain: ok, or the first entry where it breaks and how.

    An edited entry fails its own hash; a deleted one leaves a gap in seq and a broken
    link; reordered entries break the links. Publish `head` elsewhere to detect a cut tail.
    """
    tenant = {"tenant_id": session.info.get("tenant_id")}
    row = session.execute(sql.VERIFY, tenant).one()
    result = {"ok": row.first_bad is None, "entries": row.entries,
              "head": row.head.hex() if row.head else None}
    if row.first_bad is not None:
        bad = session.execute(sql.BAD_DETAIL, {**tenant, "seq": row.first_bad}).one()
        reasons = [name for name, ok in (("content_changed", bad.hash_ok),
                                         ("chain_link_broken", bad.link_ok),
                                         ("sequence_gap", bad.seq_ok)) if not ok]
        result["first_broken_seq"] = row.first_bad
        result["reasons"] = reasons
    return result


def list_entries(session: Session, *, t_from=None, t_to=None, actor=None, action=None,
                 subject_id=None, member=None, subject_ref=None, after_seq=None, limit=100,
                 newest_first: bool = False) -> list:
    """Entries with the names of their actors, subjects and targets as they are now.
    `after_seq` is the last seq of the previous page, in the order asked for."""
    return session.execute(sql.ENTRIES_DESC if newest_first else sql.ENTRIES_ASC, {
        "tenant_id": session.info.get("tenant_id"), "f": t_from, "t": t_to, "actor": actor,
        "action": action, "subject": subject_id,
        "member": member or None, "subject_ref": subject_ref or None, "after": after_seq,
        "limit": limit}).all()
