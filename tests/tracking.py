"""A tenant set up for tracking in one call: purposes, a consenting subject, a device."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest

NAV = {"key": "navigation", "title": "Navigation", "precision_m": 10, "retention_days": 30,
       "individual_access": True, "reader_roles": ["dispatcher"]}
ANALYTICS = {"key": "analytics", "title": "Analytics", "precision_m": 500, "retention_days": 365,
             "aggregate_use": True, "individual_access": False}


@dataclass
class Tracked:
    tenant: object
    subject_id: str
    device_id: str
    device_token: str
    identifier: str
    purposes: dict

    def post(self, path, json=None, **kw):
        return self.tenant.client.post(
            path, json=json, headers={"Authorization": f"Bearer {self.device_token}"}, **kw)

    def pings(self, items):
        return self.post("/v1/pings", {"pings": items})


def now_iso(delta: dt.timedelta = dt.timedelta(0)) -> str:
    return (dt.datetime.now(dt.UTC) + delta).isoformat()


def ping(lat=52.52, lon=13.405, t=None, **extra) -> dict:
    return {"t": t or now_iso(dt.timedelta(minutes=-1)), "lat": lat, "lon": lon, **extra}


@pytest.fixture
def make_tracked():
    def make(tenant, purposes=(NAV, ANALYTICS), consent=("navigation", "analytics"),
             consent_at: dt.datetime | None = None, subject: dict | None = None,
             identifier: str | None = None) -> Tracked:
        created = {}
        for spec in purposes:
            resp = tenant.post("/v1/purposes", spec)
            assert resp.status_code == 201, resp.get_json()
            created[spec["key"]] = resp.get_json()
        resp = tenant.post("/v1/subjects", {"external_ref": "worker-1", **(subject or {})})
        assert resp.status_code == 201, resp.get_json()
        subject_id = resp.get_json()["subject_id"]
        body = {"subject_id": subject_id}
        if identifier:
            body["identifier"] = identifier
        resp = tenant.post("/v1/devices", body)
        assert resp.status_code == 201, resp.get_json()
        device = resp.get_json()
        at = consent_at or dt.datetime.now(dt.UTC) - dt.timedelta(hours=23)
        for key in consent:
            resp = tenant.post(f"/v1/subjects/{subject_id}/consents", {
                "purpose": key, "status": "granted", "at": at.isoformat(),
                "policy_version": "v1", "evidence": {"form": "test"}})
            assert resp.status_code == 201, resp.get_json()
        return Tracked(tenant, subject_id, device["device_id"], device["token"],
                       device["identifier"], created)

    return make
