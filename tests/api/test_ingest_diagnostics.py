"""A misconfigured phone is visible before its data is gone: GET /v1/devices/{id}/ingest,
the flag in the device list, refused requests counted, Prometheus series without device
labels, no per-token 429 for OwnTracks, and the server-timed mark in the export."""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import zipfile

import pytest

from govern.app import create_app
from govern.config import Config
from govern.domain import diagnostics


def basic(token):
    return {"Authorization": "Basic " + base64.b64encode(f"u:{token}".encode()).decode()}


def recent(minutes=2) -> int:
    return int((dt.datetime.now(dt.UTC) - dt.timedelta(minutes=minutes)).timestamp())


@pytest.fixture
def tracked(tenant, make_tracked):
    return make_tracked(tenant, identifier="phone-0001")


def _leaves(value):
    if isinstance(value, dict):
        for v in value.values():
            yield from _leaves(v)
    elif isinstance(value, list):
        for v in value:
            yield from _leaves(v)
    else:
        yield value


def _coordinates(body) -> list:
    """Every value of the answer that is or names a coordinate sent in these tests (52.5...
    or 13.4): numbers near them, and strings holding them that are not instants (a time's
    seconds can read 52.5...)."""
    def instant(v: str) -> bool:
        try:
            dt.datetime.fromisoformat(v)
        except ValueError:
            return False
        return True

    return [v for v in _leaves(body)
            if (isinstance(v, int | float) and not isinstance(v, bool)
                and (52.4 < v < 52.6 or 13.3 < v < 13.5))
            or (isinstance(v, str) and ("52.5" in v or "13.4" in v) and not instant(v))]


def _owntracks(client, tracked, body, **kw):
    return client.post("/v1/ingest/owntracks", json=body, headers=basic(tracked.device_token),
                       **kw)


def test_misconfigured_device_is_flagged_and_its_refusals_shown(tenant, tracked, client):
    # a phone whose OwnTracks build sends latitude in the wrong field: every point refused
    for n in range(diagnostics.REFUSED_STREAK_FLAG):
        resp = _owntracks(client, tracked, {"_type": "location", "latitude": 52.5 + n / 1000,
                                            "lon": 13.4, "tst": recent(10 - n)})
        assert resp.status_code == 200 and resp.get_json() == []  # the app can be told nothing
    listed = tenant.get("/v1/devices").get_json()["devices"]
    assert [d["ingest_flagged"] for d in listed] == [True]
    assert listed[0]["refused_streak"] == diagnostics.REFUSED_STREAK_FLAG
    page = tenant.get(f"/v1/devices/{tracked.device_id}/ingest")
    assert page.status_code == 200
    got = page.get_json()
    assert got["flagged"] and got["requests"] == 5 and got["accepted"] == 0
    assert got["rejected"] == {"lat": 5} and got["last_accepted_at"] is None
    assert got["refusals"][0] == {**got["refusals"][0], "format": "owntracks",
                                  "kind": "rejected", "reason": "is required", "field": "lat",
                                  "count": 1}
    assert not _coordinates(got)  # never a coordinate
    # fixed: the next good point clears the flag
    _owntracks(client, tracked, {"_type": "location", "lat": 52.5, "lon": 13.4,
                                 "tst": recent(1)})
    assert tenant.get("/v1/devices").get_json()["devices"][0]["ingest_flagged"] is False
    got = tenant.get(f"/v1/devices/{tracked.device_id}/ingest").get_json()
    assert got["accepted"] == 1 and got["last_accepted_at"] is not None


def test_diagnostics_are_for_owners_and_admins_of_the_tenant(tenant, tracked, make_tenant):
    path = f"/v1/devices/{tracked.device_id}/ingest"
    assert tenant.get(path).status_code == 200
    assert tenant.get(path, token=tenant.token_for("admin")).status_code == 200
    for role in ("analyst", "dispatcher", "auditor"):
        assert tenant.get(path, token=tenant.token_for(role)).status_code == 403
    assert make_tenant("other").get(path).status_code == 404
    assert tracked.post(path).status_code in (403, 405)  # not for the device itself
    assert tenant.client.get(path, headers={"Authorization": f"Bearer {tracked.device_token}"}
                             ).status_code == 403


def test_a_request_refused_whole_is_counted_for_its_device(tenant, tracked, client):
    assert _owntracks(client, tracked, "just a string").status_code == 422
    bad = client.post("/v1/ingest/transistor", data=b"{not json",
                      content_type="application/json",
                      headers={"Authorization": f"Bearer {tracked.device_token}"})
    assert bad.status_code == 400 and bad.get_json()["error"]["code"] == "bad_request"
    got = tenant.get(f"/v1/devices/{tracked.device_id}/ingest").get_json()
    assert got["refused"] == {"validation_failed": 1, "bad_request": 1}
    assert [(r["format"], r["kind"]) for r in got["refusals"]] == [
        ("transistor", "refused"), ("owntracks", "refused")]
    assert got["refused_streak"] == 2


def test_json_whatever_the_label_and_empty_bodies(tenant, tracked, client, superuser):
    body = json.dumps({"_type": "location", "lat": 52.5, "lon": 13.4, "tst": recent()})
    for label in ("application/x-www-form-urlencoded", "text/plain", None):
        resp = client.post("/v1/ingest/owntracks", data=body, content_type=label,
                           headers=basic(tracked.device_token))
        assert resp.status_code == 200 and resp.get_json() == [], label
    assert superuser.execute("SELECT count(*) FROM pings").fetchone()[0] == 1  # retries deduped
    empty = client.post("/v1/ingest/owntracks", data=b"", headers=basic(tracked.device_token))
    assert empty.status_code == 200 and empty.get_json() == []
    # for the apps that never send an empty body it stays a clear 400
    overland = client.post("/v1/ingest/overland", data=b"",
                           headers={"Authorization": f"Bearer {tracked.device_token}"})
    assert overland.status_code == 400
    # the body checks still apply: NUL and duplicate keys
    dup = client.post("/v1/ingest/owntracks", data=b'{"_type":"location","_type":"lwt"}',
                      content_type="text/plain", headers=basic(tracked.device_token))
    assert dup.status_code == 400
    nul = client.post("/v1/ingest/owntracks", data=b'{"_type":"loc\\u0000ation"}',
                      content_type="text/plain", headers=basic(tracked.device_token))
    assert nul.status_code == 422


def test_metrics_count_by_reason_without_device_labels(tenant, tracked, client):
    client.get(f"/v1/ingest/osmand/{tenant.tenant_id}", query_string={"id": tracked.identifier,
                                                  "cell": "257,02,16,2224"})
    _owntracks(client, tracked, {"_type": "location", "lat": 91, "lon": 13.4, "tst": recent()})
    text = client.get("/metrics").get_data(as_text=True)
    assert 'govern_pings_total{outcome="dropped_no_fix"}' in text
    assert 'govern_pings_rejected_by_field_total{field="lat"}' in text
    assert 'govern_ingest_requests_total{format="osmand",outcome="nothing_stored"}' in text
    assert tracked.device_id not in text and tracked.identifier not in text


def test_osmand_without_timestamp_is_stored_at_receipt_and_marked_in_the_export(
        tenant, tracked, client, superuser):
    before = dt.datetime.now(dt.UTC)
    resp = client.get(f"/v1/ingest/osmand/{tenant.tenant_id}", query_string={
        "deviceid": tracked.identifier, "lat": "52.52", "lon": "13.405", "batt": "87.5"})
    assert resp.status_code == 200
    t, server_time = superuser.execute("SELECT t, server_time FROM pings").fetchone()
    assert server_time and before - dt.timedelta(seconds=1) <= t <= dt.datetime.now(dt.UTC)
    from govern.domain.rights import export_bundle

    sessions = tenant.client.application.extensions["govern"].sessions
    zf = zipfile.ZipFile(io.BytesIO(b"".join(export_bundle(sessions, tenant.tenant_id,
                                                           tracked.subject_id,
                                                           dt.datetime.now(dt.UTC)))))
    features = json.loads(zf.read("pings.geojson"))["features"]
    assert [f["properties"]["time_source"] for f in features] == ["server"]


@pytest.fixture
def limited_app(database_url):
    config = Config.from_env({"DATABASE_URL": database_url, "LOG_LEVEL": "WARNING",
                              "RATE_LIMIT": "3 per minute", "AUTH_FAILURE_LIMIT": "3 per minute"})
    app = create_app(config)
    yield app
    app.extensions["govern"].engine.dispose()


def test_owntracks_is_never_answered_429_for_a_burst(limited_app, tracked):
    client = limited_app.test_client()
    statuses = [client.post("/v1/ingest/owntracks", headers=basic(tracked.device_token),
                            json={"_type": "location", "lat": 52.5, "lon": 13.4,
                                  "tst": recent(20 - n)}).status_code for n in range(8)]
    assert statuses == [200] * 8
    # the same budget still limits the other endpoints of that token
    native = [client.post("/v1/pings", headers={"Authorization": f"Bearer {tracked.device_token}"},
                          json={"pings": []}).status_code for _ in range(5)]
    assert 429 in native
    # and failed authentication on the OwnTracks endpoint stays limited
    wrong = [client.post("/v1/ingest/owntracks", headers=basic("wrong"), json=[]).status_code
             for _ in range(5)]
    assert wrong[-1] == 429
