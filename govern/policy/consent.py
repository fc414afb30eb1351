"""Consent state derived from the append-only consent ledger.

Nothing in the ledger is overwritten, so the state at any instant is a fold over the
events up to that instant: the latest event per purpose wins. This lets a ping be judged
by the consent in force when it was recorded, not when it arrived.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

GRANTED = "granted"
WITHDRAWN = "withdrawn"
Status = Literal["granted", "withdrawn"]


@dataclass(frozen=True)
class ConsentEvent:
    """One ledger row. `seq` orders events with the same `at` (the later seq wins)."""

    purpose: str
    status: Status
    at: datetime
    seq: int

    def __post_init__(self):
        if self.status not in (GRANTED, WITHDRAWN):
            raise ValueError(f"consent status must be 'granted' or 'withdrawn', "
                             f"got {self.status!r}")
        _require_aware(self.at, "ConsentEvent.at")


def _require_aware(value: datetime, name: str) -> None:
    # Comparing naive and aware datetimes raises deep inside a sort; fail early instead.
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime")


def consent_state_at(events: Iterable[ConsentEvent], at: datetime) -> dict[str, str]:
    """Status per purpose at `at`; an event exactly at `at` already counts.

    Purposes with no event up to `at` are absent (never asked is not the same as withdrawn).
    """
    _require_aware(at, "at")
    latest: dict[str, ConsentEvent] = {}
    for event in events:
        if event.at > at:
            continue
        current = latest.get(event.purpose)
        if current is None or (event.at, event.seq) >= (current.at, current.seq):
            latest[event.purpose] = event
    return {purpose: event.status for purpose, event in latest.items()}


def is_consented(events: Iterable[ConsentEvent], purpose: str, at: datetime) -> bool:
    """Whether `purpose` is granted at `at`."""
    return consent_state_at(events, at).get(purpose) == GRANTED


def purposes_allowed(purposes: Mapping[str, bool], events: Iterable[ConsentEvent],
                     at: datetime) -> set[str]:
    """Purposes a ping recorded at `at` may serve.

    `purposes` maps each purpose name to whether it requires consent; those that do not are
    always allowed, the others only while granted. Grants for unknown purposes are ignored.
    """
    state = consent_state_at(events, at)
    return {name for name, requires_consent in purposes.items()
            if not requires_consent or state.get(name) == GRANTED}
