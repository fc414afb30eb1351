from datetime import UTC, datetime, timedelta, timezone

import pytest

from govern.policy.consent import (
    ConsentEvent,
    consent_state_at,
    is_consented,
    purposes_allowed,
)

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
US = timedelta(microseconds=1)


def ev(purpose, status, at, seq):
    return ConsentEvent(purpose, status, at, seq)


GRANT = ev("navigation", "granted", T0, 1)
WITHDRAW = ev("navigation", "withdrawn", T0 + timedelta(hours=1), 2)
REGRANT = ev("navigation", "granted", T0 + timedelta(hours=2), 3)
LEDGER = [GRANT, WITHDRAW, REGRANT]


def test_nothing_before_first_event():
    assert consent_state_at(LEDGER, T0 - US) == {}
    assert not is_consented(LEDGER, "navigation", T0 - US)
    assert consent_state_at([], T0) == {}


def test_grant_counts_from_its_exact_instant():
    assert consent_state_at(LEDGER, T0) == {"navigation": "granted"}
    assert is_consented(LEDGER, "navigation", T0)
    assert is_consented(LEDGER, "navigation", T0 + US)


def test_withdrawal_takes_effect_at_its_instant():
    at = WITHDRAW.at
    assert is_consented(LEDGER, "navigation", at - US)
    assert not is_consented(LEDGER, "navigation", at)
    assert consent_state_at(LEDGER, at + US) == {"navigation": "withdrawn"}


def test_regrant():
    at = REGRANT.at
    assert not is_consented(LEDGER, "navigation", at - US)
    assert is_consented(LEDGER, "navigation", at)
    assert is_consented(LEDGER, "navigation", at + timedelta(days=365))


def test_order_of_input_does_not_matter():
    assert consent_state_at(reversed(LEDGER), WITHDRAW.at) == {"navigation": "withdrawn"}
    assert is_consented(iter(reversed(LEDGER)), "navigation", REGRANT.at)


def test_ties_broken_by_seq():
    granted_then_withdrawn = [ev("dispatch", "withdrawn", T0, 8), ev("dispatch", "granted", T0, 7)]
    assert consent_state_at(granted_then_withdrawn, T0) == {"dispatch": "withdrawn"}
    withdrawn_then_granted = [ev("dispatch", "granted", T0, 9), ev("dispatch", "withdrawn", T0, 8)]
    assert consent_state_at(withdrawn_then_granted, T0) == {"dispatch": "granted"}


def test_equal_instants_in_different_offsets():
    plus2 = timezone(timedelta(hours=2))
    events = [ev("dispatch", "granted", T0, 1),
              ev("dispatch", "withdrawn", datetime(2026, 5, 1, 14, 0, tzinfo=plus2), 2)]
    assert consent_state_at(events, T0) == {"dispatch": "withdrawn"}
    assert consent_state_at(events, datetime(2026, 5, 1, 13, 59, tzinfo=plus2)) == {}


def test_purposes_are_independent():
    events = LEDGER + [ev("analytics", "granted", T0 + timedelta(minutes=30), 4)]
    at = WITHDRAW.at
    assert consent_state_at(events, at) == {"navigation": "withdrawn", "analytics": "granted"}
    assert is_consented(events, "analytics", at)
    assert not is_consented(events, "dispatch", at)


def test_purposes_allowed():
    purposes = {"navigation": True, "time_tracking": False, "analytics": True}
    events = LEDGER + [ev("analytics", "granted", T0, 4), ev("unknown", "granted", T0, 5)]
    assert purposes_allowed(purposes, events, T0 - US) == {"time_tracking"}
    assert purposes_allowed(purposes, events, T0) == {"navigation", "time_tracking", "analytics"}
    assert purposes_allowed(purposes, events, WITHDRAW.at) == {"time_tracking", "analytics"}
    assert purposes_allowed({}, events, T0) == set()


def test_invalid_events_and_instants():
    with pytest.raises(ValueError, match="'granted' or 'withdrawn'"):
        ConsentEvent("navigation", "revoked", T0, 1)
    with pytest.raises(ValueError, match="timezone-aware"):
        ConsentEvent("navigation", "granted", datetime(2026, 5, 1), 1)
    with pytest.raises(ValueError, match="timezone-aware"):
        consent_state_at(LEDGER, datetime(2026, 5, 1))
