"""GET /v1/device/policy and POST /v1/device/duty: what the app should collect now, and why not.

Exact DST instants are tested in tests/policy; here "now" is real, so windows are chosen to
give a known answer whatever the time of the run.
"""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

ALL_DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def window(start, end, days=ALL_DAYS):
    return {"days": days, "start": start, "end": end}


def late_morning_zone() -> str:
    """A fixed-offset zone where it is now between 11:00 and 12:59 local time."""
    offset = 11 - dt.datetime.now(dt.UTC).hour  # -12..11
    return f"Etc/GMT{-offset:+d}"  # POSIX sign: Etc/GMT-5 is UTC+5


@pytest.fixture
def setup(tenant):
    """A subject with a device; returns (subject_id, device token)."""
    tenant.purpose("navigation", precision_m=50)
    sid = tenant.subject(timezone="Europe/Berlin")["subject_id"]
    return sid, tenant.device(sid)["token"]


def policy(tenant, token):
    resp = tenant.get("/v1/device/policy", token=token)
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def test_without_own_consent_nothing_is_collected(tenant, setup):
    _, token = setup
    body = policy(tenant, token)
    assert body["collecting"] is False and body["reasons"] == ["no_consent"]
    assert body["purposes"] == [] and body["precision_m"] is None
    assert body["timezone"] == "Europe/Berlin" and body["min_accuracy_m"] == 500
    assert body["in_window"] is True and body["next_window_change_at"] is None
    assert body["on_duty"] is True and body["collection_windows"] == []
    other = tenant.subject(timezone="Asia/Tokyo")["subject_id"]
    tenant.consent(other, "navigation")  # another subject's consent changes nothing here
    assert policy(tenant, token)["reasons"] == ["no_consent"]


def test_device_consent_turns_collection_on_and_withdrawal_off(tenant, setup):
    _, token = setup
    grant = {"purpose": "navigation", "status": "granted", "policy_version": "v1"}
    tenant.post("/v1/device/consents", grant, token=token)
    body = policy(tenant, token)
    assert body["collecting"] is True and body["reasons"] == []
    assert body["purposes"] == [{"key": "navigation", "precision_m": 50,
                                 "requires_consent": True}]
    assert body["precision_m"] == 50
    tenant.post("/v1/device/consents", {**grant, "status": "withdrawn"}, token=token)
    assert policy(tenant, token)["reasons"] == ["no_consent"]


def test_precision_is_the_finest_active_purpose(tenant, setup):
    sid, token = setup
    tenant.purpose("dispatch", precision_m=500, requires_consent=False)
    assert policy(tenant, token)["precision_m"] == 500
    tenant.consent(sid, "navigation")
    assert policy(tenant, token)["precision_m"] == 50


def test_off_duty_is_a_reason_back_on_clears_it_and_duty_is_a_boolean(tenant, setup, superuser):
    sid, token = setup
    tenant.consent(sid, "navigation")
    resp = tenant.post("/v1/device/duty", {"on_duty": False}, token=token)
    assert resp.status_code == 200
    assert resp.get_json()["on_duty"] is False and resp.get_json()["reasons"] == ["off_duty"]
    assert policy(tenant, token)["collecting"] is False
    subject = tenant.get(f"/v1/subjects/{sid}").get_json()
    assert subject["on_duty"] is False and subject["duty_changed_at"] is not None
    tenant.post("/v1/device/duty", {"on_duty": False}, token=token)  # no change: no audit row
    back = tenant.post("/v1/device/duty", {"on_duty": True}, token=token).get_json()
    assert back["collecting"] is True and back["on_duty"] is True
    assert tenant.audit_actions(superuser).count("subject.duty") == 2
    for body in ({}, {"on_duty": "perhaps"}):
        resp = tenant.post("/v1/device/duty", body, token=token)
        assert resp.status_code == 422
        assert "on_duty" in resp.get_json()["error"]["details"]


def test_blocked_subject_is_a_reason(tenant, setup):
    sid, token = setup
    tenant.consent(sid, "navigation")
    tenant.patch(f"/v1/subjects/{sid}", {"collection_blocked": True, "blocked_reason": "minor"})
    body = policy(tenant, token)
    assert body["collecting"] is False and body["reasons"] == ["subject_blocked"]


def test_whole_week_window_is_always_in_and_never_changes(tenant, setup):
    _, token = setup
    tenant.patch("/v1/policy", {"collection_windows": [window("00:00", "24:00")]})
    body = policy(tenant, token)
    assert body["in_window"] is True and body["next_window_change_at"] is None
    assert body["collection_windows"] == [window("00:00", "24:00")]


def test_overnight_window_covering_now(tenant):
    zone = late_morning_zone()
    sid = tenant.subject(timezone=zone)["subject_id"]
    tenant.patch("/v1/policy", {"collection_windows": [window("10:00", "09:00")]})
    body = policy(tenant, tenant.device(sid)["token"])
    assert body["in_window"] is True and "outside_window" not in body["reasons"]
    change = dt.datetime.fromisoformat(body["next_window_change_at"]).astimezone(ZoneInfo(zone))
    today = dt.datetime.now(ZoneInfo(zone)).date()
    assert (change.date(), change.time()) == (today + dt.timedelta(days=1), dt.time(9, 0))


def test_outside_an_overnight_window(tenant):
    zone = late_morning_zone()
    sid = tenant.subject(timezone=zone)["subject_id"]
    tenant.patch("/v1/policy", {"collection_windows": [window("14:00", "10:00")]})
    body = policy(tenant, tenant.device(sid)["token"])
    assert body["in_window"] is False and "outside_window" in body["reasons"]
    assert body["collecting"] is False and body["timezone"] == zone
    change = dt.datetime.fromisoformat(body["next_window_change_at"]).astimezone(ZoneInfo(zone))
    today = dt.datetime.now(ZoneInfo(zone)).date()
    assert (change.date(), change.time()) == (today, dt.time(14, 0))


def test_window_boundaries_are_wall_clock_in_a_dst_zone(tenant):
    sid = tenant.subject(timezone="America/New_York")["subject_id"]
    tenant.patch("/v1/policy", {"collection_windows": [window("10:00", "09:00")]})
    body = policy(tenant, tenant.device(sid)["token"])
    change = dt.datetime.fromisoformat(body["next_window_change_at"])
    local = change.astimezone(ZoneInfo("America/New_York")).time()
    assert local == (dt.time(9, 0) if body["in_window"] else dt.time(10, 0))
    assert dt.timedelta(0) < change - dt.datetime.now(dt.UTC) <= dt.timedelta(hours=24)


def test_subject_override_beats_the_tenant_windows(tenant):
    zone = late_morning_zone()
    tenant.patch("/v1/policy", {"collection_windows": [window("14:00", "10:00")]})
    sid = tenant.subject(timezone=zone, collection_windows=[])["subject_id"]
    body = policy(tenant, tenant.device(sid)["token"])
    assert body["in_window"] is True and body["collection_windows"] == []
    tenant.patch(f"/v1/subjects/{sid}", {"collection_windows": None})
    body = policy(tenant, tenant.device(sid)["token"])
    assert body["in_window"] is False
    assert body["collection_windows"] == [window("14:00", "10:00")]
    tenant.patch("/v1/policy", {"collection_windows": []})
    tenant.patch(f"/v1/subjects/{sid}", {"collection_windows": [window("14:00", "10:00")]})
    assert policy(tenant, tenant.device(sid)["token"])["in_window"] is False

