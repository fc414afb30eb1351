"""What a device may collect now, so the app can stop when nothing would be kept."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from govern.domain.consents import consent_state
from govern.domain.policy import current_policy
from govern.models import Subject
from govern.policy.windows import in_collection_window, next_change, parse_windows


def effective_windows(subject: Subject, policy: dict) -> list[dict]:
    """The subject's own windows when set, else the tenant's."""
    if subject.collection_windows is not None:
        return subject.collection_windows
    return policy.get("collection_windows") or []


def collection_status(session: Session, subject: Subject,
                      now: dt.datetime | None = None) -> dict:
    now = now or dt.datetime.now(dt.UTC)
    policy = current_policy(session)
    windows_json = effective_windows(subject, policy)
    windows = parse_windows(windows_json)
    tz = subject.timezone or policy["timezone"]
    active = [s.purpose for s in consent_state(session, subject.subject_id, now) if s.active]
    in_window = in_collection_window(windows, tz, now)
    reasons = []
    if subject.collection_blocked:
        reasons.append("subject_blocked")
    if not active:
        reasons.append("no_consent")
    if not in_window:
        reasons.append("outside_window")
    if not subject.on_duty:
        reasons.append("off_duty")
    change = next_change(windows, tz, now)
    return {
        "collecting": not reasons,
        "reasons": reasons,
        "purposes": [{"key": p.key, "precision_m": p.precision_m,
                      "requires_consent": p.requires_consent} for p in active],
        "precision_m": min((p.precision_m for p in active), default=None),
        "min_accuracy_m": policy["min_accuracy_m"],
        "timezone": tz,
        "collection_windows": windows_json,
        "in_window": in_window,
        "next_window_change_at": change,
        "on_duty": subject.on_duty,
        "checked_at": now,
    }
