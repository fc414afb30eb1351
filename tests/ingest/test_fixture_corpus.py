"""Every request of the fixture corpus (tests/ingest/fixtures), posted as its app posts it.

Each fixture names its source: the app's own repository or issue tracker. The test checks the
answer the app needs (OwnTracks a JSON array, Overland {"result": "ok"}, the others any 2xx),
what was stored (units converted: km/h and knots to m/s, battery 0-1 to percent; unknown
sentinels as null; the receipt time for a ping without one), and that the device's ingest
diagnostics counted every item: no request is acknowledged while a ping vanishes uncounted.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
from pathlib import Path

import orjson
import pytest
from werkzeug.datastructures import MultiDict

FIXTURES = Path(__file__).parent / "fixtures"
_PLACEHOLDER = re.compile(r"\{\{(\w+)(?:-(\d+))?\}\}")
_WHOLE = re.compile(r"^\{\{(\w+)(?:-(\d+))?\}\}$")
_UTC_MINUS_7 = dt.timezone(dt.timedelta(hours=-7))


def _corpus() -> list:
    cases = []
    for path in sorted(FIXTURES.glob("*.json")):
        for fixture in json.loads(path.read_text())["fixtures"]:
            cases.append(pytest.param(fixture, id=f"{path.stem}:{fixture['id']}"))
    return cases


def _format(kind: str, t: dt.datetime, as_text: bool):
    if kind == "epoch":
        value = int(t.timestamp())
    elif kind == "epoch_ms":
        value = int(t.timestamp() * 1000)
    elif kind == "iso_z":
        return t.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    elif kind == "iso_s_z":
        return t.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    elif kind == "iso_hhmm":
        return t.astimezone(_UTC_MINUS_7).strftime("%Y-%m-%dT%H:%M:%S%z")
    else:
        raise ValueError(f"unknown placeholder {kind}")
    return str(value) if as_text else value


def _timed(value, base: dt.datetime, as_text: bool = False):
    """The fixture with its time placeholders filled in from `base`."""
    if isinstance(value, dict):
        return {k: _timed(v, base, as_text) for k, v in value.items()}
    if isinstance(value, list):
        return [_timed(v, base, as_text) for v in value]
    if isinstance(value, str):
        whole = _WHOLE.match(value)
        if whole:
            return _format(whole[1], base - dt.timedelta(seconds=int(whole[2] or 0)), as_text)
        return _PLACEHOLDER.sub(lambda m: str(_format(
            m[1], base - dt.timedelta(seconds=int(m[2] or 0)), True)), value)
    return value


def _post(client, fixture: dict, token: str, base: dt.datetime, tenant_id):
    """Post a fixture as its app would, configured as docs/clients.md says: OsmAnd clients
    with the tenant's server URL (an identifier an admin chose routes only there)."""
    headers = {}
    if fixture.get("auth") == "basic":
        raw = base64.b64encode(f"owntracks-user:{token}".encode()).decode()
        headers["Authorization"] = f"Basic {raw}"
    elif fixture.get("auth") == "bearer":
        headers["Authorization"] = f"Bearer {token}"
    kwargs: dict = {"headers": headers}
    if "query" in fixture:
        kwargs["query_string"] = [tuple(p) for p in _timed(fixture["query"], base, True)]
    if "form" in fixture:
        kwargs["data"] = MultiDict([tuple(p) for p in _timed(fixture["form"], base, True)])
    elif "raw" in fixture:
        kwargs["data"] = _timed(fixture["raw"], base).encode()
    elif "body" in fixture:
        kwargs["data"] = orjson.dumps(_timed(fixture["body"], base))
    if "content_type" in fixture and "form" not in fixture:
        kwargs["content_type"] = fixture["content_type"]
    method = fixture.get("method", "POST")
    endpoint = fixture["endpoint"]
    if endpoint == "/v1/ingest/osmand":
        endpoint = f"{endpoint}/{tenant_id}"
    return client.open(endpoint, method=method, **kwargs)


STORED = ("SELECT t, speed, heading, battery, acc, activity, server_time, ST_Y(geom) AS lat, "
          "ST_X(geom) AS lon FROM pings ORDER BY t")


@pytest.mark.parametrize("fixture", _corpus())
def test_fixture_is_answered_stored_and_counted(fixture, tenant, make_tracked, client,
                                                superuser):
    tracked = make_tracked(tenant, identifier=fixture.get("identifier"))
    expect = fixture["expect"]
    base = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=10)
    before = dt.datetime.now(dt.UTC)
    resp = _post(client, fixture, tracked.device_token, base, tenant.tenant_id)
    after = dt.datetime.now(dt.UTC)

    assert resp.status_code == expect["status"], resp.get_data(as_text=True)
    if "json" in expect:
        assert resp.get_json() == expect["json"]
    if expect.get("any_2xx"):
        assert 200 <= resp.status_code < 300
    for key, value in expect.get("answer", {}).items():
        assert resp.get_json()[key] == value

    cursor = superuser.execute(STORED)
    names = [c.name for c in cursor.description]
    rows = [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]
    assert len(rows) == expect["stored"]
    for row, wanted in zip(rows, expect.get("pings", []), strict=False):
        for key, value in wanted.items():
            if value is None or isinstance(value, bool | str):
                assert row[key] == value, (key, row)
            elif key in ("lat", "lon"):
                assert row[key] == pytest.approx(value, abs=1e-3), (key, row)
            else:
                assert row[key] == pytest.approx(value, abs=0.05), (key, row)
        if row["server_time"]:
            assert before - dt.timedelta(seconds=1) <= row["t"] <= after
        else:
            assert base - dt.timedelta(hours=2) <= row["t"] <= base

    counted = tenant.get(f"/v1/devices/{tracked.device_id}/ingest").get_json()
    for key, value in expect.get("counted", {}).items():
        assert counted[key] == value, (key, counted)
    if 200 <= resp.status_code < 300:
        assert counted["requests"] == 1 and counted["accepted"] == expect["stored"]
        items = (counted["accepted"] + counted["duplicates"] + counted["ignored"]
                 + sum(counted["dropped"].values()) + sum(counted["rejected"].values()))
        empty = fixture.get("raw") == ""
        assert items >= 1 or empty, "acknowledged, but nothing in it was counted"
    elif fixture.get("auth"):  # the device was known: the refusal is on its page
        assert counted["refused"] and counted["refusals"][0]["kind"] == "refused"


def test_every_fixture_names_its_source():
    for case in _corpus():
        fixture = case.values[0]
        assert fixture["source"].strip(), fixture["id"]
        assert "/" in fixture["source"], fixture["id"]  # a repository path or an issue URL
