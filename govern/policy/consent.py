"""Consent state derived from the append-only consent ledger.

Nothing in the ledger is overwritten, so the state at any instant is a fold over the
events up to that instant: the latest event per purpose wins. This lets a ping be judged
by the consent in force when it was recorded, not when it arrived.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
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


def in_ledger_order(events: Iterable[ConsentEvent]) -> list[ConsentEvent]:
    """The ledger as it took effect: by instant, and of events at the same instant the
    later seq last (it wins)."""
    return sorted(events, key=lambda e: (e.at, e.seq))


def consent_state_at(events: Iterable[ConsentEvent], at: datetime) -> dict[str, str]:
    """Status per purpose at `at`; an event exactly at `at` already counts.

    Purposes with no event up to `at` are absent (never asked is not the same as withdrawn).
    """
    _require_aware(at, "at")
    return {e.purpose: e.status for e in in_ledger_order(events) if e.at <= at}


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


def last_withdrawals(events: Iterable[ConsentEvent], at: datetime) -> dict[str, datetime]:
    """Per purpose, the latest withdrawal recorded at or before `at`: nothing recorded at or
    before it serves that purpose any more, whatever was granted since
    (govern.policy.cutoffs)."""
    _require_aware(at, "at")
    out: dict[str, datetime] = {}
    for e in in_ledger_order(events):
        if e.status == WITHDRAWN and e.at <= at:
            out[e.purpose] = e.at
    return out


def allowed_timeline(requires_consent: Sequence[bool], keys: Sequence[str],
                     events: Iterable[ConsentEvent]) -> tuple[list[datetime], list[int]]:
    """purposes_allowed as a step function of time, folded once for many instants.

    Purpose n is `keys[n]`; a mask has bit n set when it is allowed. Returns (instants,
    masks): before instants[0] the mask is masks[0], from instants[k-1] (inclusive)
    masks[k] — the same answer as purposes_allowed at every instant.
    """
    index = {key: n for n, key in enumerate(keys)}
    always = sum(1 << n for n, needs in enumerate(requires_consent) if not needs)
    instants: list[datetime] = []
    masks, allowed = [always], always
    for e in in_ledger_order(e for e in events if e.purpose in index
                             and requires_consent[index[e.purpose]]):
        bit = 1 << index[e.purpose]
        allowed = allowed | bit if e.status == GRANTED else allowed & ~bit
        if instants and instants[-1] == e.at:
            masks[-1] = allowed
        else:
            instants.append(e.at)
            masks.append(allowed)
    return instants, masks
