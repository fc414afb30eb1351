"""Out-of-range dates are 422s naming the field, never 500s."""

import datetime as dt

import pytest

EARLY = "0001-01-01T00:00:00+14:00"  # before year 1 in UTC
LATE = "9999-12-31T00:00:00Z"


@pytest.fixture
def ctx(tenant, make_tracked):
    tracked = make_tracked(tenant)
    return tenant, tracked


CASES = [
    ("heatmap late", "/v1/reports/heatmap", "analyst",
     {"from": "9999-01-01T00:00:00Z", "to": LATE}, None),
    ("heatmap week late", "/v1/reports/heatmap", "analyst",
     {"from": "9999-12-27T00:00:00Z", "to": "9999-12-31T23:00:00Z"}, None),
    ("heatmap early", "/v1/reports/heatmap", "analyst",
     {"from": EARLY, "to": "0001-01-02T00:00:00+14:00"}, None),
    ("od early", "/v1/reports/od", "analyst",
     {"from": EARLY, "to": "0001-01-02T00:00:00+14:00", "zones": "h3:7"}, None),
    ("od late", "/v1/reports/od", "analyst",
     {"from": "9999-12-01T00:00:00Z", "to": LATE, "zones": "h3:7"}, None),
    ("track to early", "/v1/subjects/{sid}/track", "dispatcher",
     {"purpose": "navigation", "from": EARLY, "to": "0001-01-01T12:00:00Z"}, None),
    ("track from early", "/v1/subjects/{sid}/track", "dispatcher",
     {"purpose": "navigation", "to": "0001-01-01T12:00:00+00:00"}, None),
    ("travel to early", "/v1/subjects/{sid}/travel", "dispatcher",
     {"purpose": "navigation", "to": "0001-01-01T12:00:00Z"}, None),
    ("travel late", "/v1/subjects/{sid}/travel", "dispatcher",
     {"purpose": "navigation", "from": "9999-12-30T00:00:00Z", "to": LATE}, None),
]


@pytest.mark.parametrize("name,path,role,query,_", CASES, ids=[c[0] for c in CASES])
def test_out_of_range_dates_are_422_naming_the_field(ctx, name, path, role, query, _):
    tenant, tracked = ctx
    resp = tenant.get(path.format(sid=tracked.subject_id), token=tenant.token_for(role),
                      query_string=query)
    assert resp.status_code == 422, (name, resp.status_code, resp.get_data(as_text=True))
    details = resp.get_json()["error"]["details"]
    assert set(details) & {"from", "to"}, details


@pytest.mark.parametrize("received_at,named", [
    ("9999-12-31T00:00:00Z", "received_at"),
    ((dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).isoformat(), "received_at"),
    ("2099-01-01T00:00:00Z", "received_at"),
])
def test_request_received_at_in_the_future_or_out_of_range_is_422(ctx, received_at, named):
    tenant, tracked = ctx
    resp = tenant.post("/v1/requests", {"subject_id": tracked.subject_id, "kind": "access",
                                        "received_at": received_at})
    assert resp.status_code == 422, resp.get_data(as_text=True)
    assert named in resp.get_json()["error"]["details"]
