"""Ingest diagnostics per device, at instants the test chooses: the 24-hour window, the
refused streak and its flag, the last refusals (never a coordinate), and hourly pruning."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from govern.db import tenant_session
from govern.domain import diagnostics
from govern.domain.ingest import ingest
from govern.ingest.validate import Skipped

T0 = dt.datetime(2026, 11, 10, 9, 30, tzinfo=dt.UTC)


@pytest.fixture
def device(tenant, make_tracked):
    tracked = make_tracked(tenant)
    return tenant.tenant_id, uuid.UUID(tracked.device_id), uuid.UUID(tracked.subject_id)


def _record(sessions, device, outcome, now):
    tenant_id, device_id, _ = device
    with tenant_session(sessions, tenant_id) as s:
        diagnostics.record(s, tenant_id, device_id, outcome, now)


def _read(sessions, device, now):
    tenant_id, device_id, _ = device
    with tenant_session(sessions, tenant_id) as s:
        return diagnostics.device_ingest(s, device_id, now)


def _rejected(field="lat", message="must be between -90 and 90"):
    return [{"index": 0, "id": None, "errors": {field: [message]}}]


def _outcome(now, accepted=0, dropped=None, rejected=()):
    from collections import Counter
    return diagnostics.outcome_of("owntracks", accepted, 0, 0, 0, Counter(dropped or {}),
                                  list(rejected), now)


def test_counts_add_up_per_hour_and_the_window_is_24_clock_hours(sessions, device):
    old = T0 - dt.timedelta(hours=24)
    _record(sessions, device, _outcome(old, accepted=7), old)  # before the window
    for hours_ago, n in ((23, 1), (5, 2), (0, 3)):
        at = T0 - dt.timedelta(hours=hours_ago)
        _record(sessions, device, _outcome(at, accepted=n, dropped={"future": 1}), at)
    _record(sessions, device, _outcome(T0, rejected=_rejected()), T0)
    got = _read(sessions, device, T0)
    assert got["window_start"] == dt.datetime(2026, 11, 9, 10, tzinfo=dt.UTC)
    assert (got["requests"], got["accepted"]) == (4, 6)
    assert got["dropped"] == {"future": 3} and got["rejected"] == {"lat": 1}
    # an hour later the 23-hours-ago bucket has left the window
    later = _read(sessions, device, T0 + dt.timedelta(hours=1))
    assert (later["requests"], later["accepted"]) == (3, 5)


def test_refused_streak_flags_the_device_and_a_stored_ping_clears_it(sessions, device):
    for n in range(diagnostics.REFUSED_STREAK_FLAG):
        at = T0 + dt.timedelta(minutes=n)
        _record(sessions, device, _outcome(at, rejected=_rejected()), at)
        assert _read(sessions, device, at)["flagged"] == (n + 1 >= diagnostics.REFUSED_STREAK_FLAG)
    # a request with nothing to store (an lwt) keeps the streak
    _record(sessions, device, _outcome(T0 + dt.timedelta(minutes=9)), T0 + dt.timedelta(minutes=9))
    assert _read(sessions, device, T0 + dt.timedelta(minutes=9))["flagged"]
    at = T0 + dt.timedelta(minutes=10)
    _record(sessions, device, _outcome(at, accepted=1), at)
    got = _read(sessions, device, at)
    assert not got["flagged"] and got["refused_streak"] == 0 and got["last_accepted_at"] == at


def test_last_refusals_are_kept_newest_first_and_capped(sessions, device):
    for n in range(25):
        at = T0 + dt.timedelta(seconds=n)
        _record(sessions, device, _outcome(at, rejected=_rejected("t", f"message {n}")), at)
    refusals = _read(sessions, device, T0 + dt.timedelta(minutes=1))["refusals"]
    assert len(refusals) == diagnostics.sql.REFUSALS_KEPT
    assert refusals[0]["reason"] == "message 24" and refusals[-1]["reason"] == "message 5"
    assert {r["field"] for r in refusals} == {"t"}


def test_a_refusal_never_carries_a_coordinate(app, sessions, device):
    """A real batch through ingest(): bad and dropped pings, with distinctive coordinates."""
    tenant_id, device_id, subject_id = device
    items = [{"t": (T0 + dt.timedelta(days=1)).isoformat(), "lat": 52.123456, "lon": 13.654321},
             {"t": T0.isoformat(), "lat": 152.123456, "lon": 13.654321},
             Skipped("no_fix")]
    with tenant_session(sessions, tenant_id) as s:
        result = ingest(s, app.extensions["govern"].engine, tenant_id, device_id, subject_id,
                        items, now=T0, source="osmand")
    assert result.dropped == {"future": 1, "no_fix": 1} and len(result.rejected) == 1
    got = _read(sessions, device, T0)
    assert got["dropped"] == {"future": 1, "no_fix": 1} and got["rejected"] == {"lat": 1}
    text = repr(got["refusals"])
    assert "52.12" not in text and "152.12" not in text and "13.65" not in text
    assert {(r["kind"], r["reason"], r["field"]) for r in got["refusals"]} == {
        ("rejected", "must be between -90 and 90", "lat"), ("dropped", "future", None),
        ("dropped", "no_fix", None)}


def test_old_hourly_rows_are_pruned_by_the_first_request_of_a_new_hour(sessions, device,
                                                                       superuser):
    _record(sessions, device, _outcome(T0, accepted=1), T0)
    later = T0 + dt.timedelta(days=8)
    _record(sessions, device, _outcome(later, accepted=1), later)
    hours = [r[0] for r in superuser.execute("SELECT hour FROM ingest_hourly ORDER BY hour")]
    assert hours == [dt.datetime(2026, 11, 18, 9, tzinfo=dt.UTC)]


def test_counters_are_isolated_per_tenant(sessions, make_tenant, make_tracked):
    a = make_tracked(make_tenant("a"))
    b = make_tracked(make_tenant("b"))
    device_a = (a.tenant.tenant_id, uuid.UUID(a.device_id), uuid.UUID(a.subject_id))
    _record(sessions, device_a, _outcome(T0, accepted=2), T0)
    with tenant_session(sessions, b.tenant.tenant_id) as s:
        seen = diagnostics.device_ingest(s, uuid.UUID(a.device_id), T0)
    assert seen["requests"] == 0 and seen["refusals"] == []
