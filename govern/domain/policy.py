"""The tenant policy document: versioned, validated, and read by every decision."""

from __future__ import annotations

import copy
import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from govern.domain import audit
from govern.models import PolicyVersion
from govern.sql import policy as sql

DEFAULT_POLICY: dict = {
    "timezone": "UTC",
    "collection_windows": [],
    "min_accuracy_m": 500,
    "k_min_subjects": 5,
    "dp_epsilon_per_query": None,
    "dp_epsilon_per_day": None,
    "aggregate_retention_days": 730,
    "release_delay_hours": 24,
    "keep_consent_proof_on_erasure": True,
    "stay_radius_m": 100,
    "stay_min_minutes": 5,
}


def current_policy_version(session: Session) -> PolicyVersion:
    row = session.scalar(
        select(PolicyVersion).order_by(PolicyVersion.version.desc()).limit(1)
    )
    if row is None:  # every tenant gets version 1 at creation; this is a broken invariant
        raise RuntimeError("tenant has no policy version")
    return row


def current_policy(session: Session) -> dict:
    """The policy now, with defaults for keys added after it was written."""
    return {**DEFAULT_POLICY, **current_policy_version(session).policy}


def changed_keys(before: dict, after: dict) -> list[str]:
    return sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))


def write_initial_policy(session: Session, tenant_id: uuid.UUID, actor: str) -> None:
    session.add(PolicyVersion(tenant_id=tenant_id, version=1,
                              policy=copy.deepcopy(DEFAULT_POLICY), changed=[],
                              created_by=actor))
    session.flush()


def update_policy(session: Session, tenant_id: uuid.UUID, actor: str, changes: dict,
                  replace: bool = False, request_id: str | None = None) -> PolicyVersion:
    """Write a new version: `changes` merged into the current policy (or over the defaults)."""
    session.execute(sql.LOCK_POLICY,
                    {"k": f"govern.policy:{tenant_id}"})
    current = current_policy_version(session)
    base = copy.deepcopy(DEFAULT_POLICY if replace else {**DEFAULT_POLICY, **current.policy})
    new_policy = {**base, **changes}
    if new_policy["dp_epsilon_per_query"] is None or new_policy["dp_epsilon_per_day"] is None:
        new_policy["dp_epsilon_per_query"] = new_policy["dp_epsilon_per_day"] = None
    changed = changed_keys({**DEFAULT_POLICY, **current.policy}, new_policy)
    if not changed:
        return current
    row = PolicyVersion(tenant_id=tenant_id, version=current.version + 1, policy=new_policy,
                        changed=changed, created_by=actor)
    session.add(row)
    session.flush()
    audit.record(session, tenant_id, actor, "policy.update", target_type="policy",
                 target_id=row.version, request_id=request_id,
                 details={"changed": {k: {"from": current.policy.get(k, DEFAULT_POLICY.get(k)),
                                          "to": new_policy.get(k)} for k in changed}})
    return row


def list_versions(session: Session) -> list[PolicyVersion]:
    return list(session.scalars(select(PolicyVersion).order_by(PolicyVersion.version.desc())))
