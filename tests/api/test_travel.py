"""Travel reports (k floor, aligned periods, differential privacy, CSV, audit), individual
travel under a purpose, and travel following erasure and export."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import zipfile

import pytest

from govern.domain.trips import build_tenant
from tests.domain.test_trips import (
    ANALYTICS,
    NAV,
    STAY_EVERY,
    TIME,
    add_sites,
    midnight,
    post,
    worker_day,
)

DAY = dt.timedelta(days=1)
LONE_PLAN = [("school", 30), ("store", 20)]


def z(t: dt.datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def last_monday() -> dt.datetime:
    return midnight(0) - dt.timedelta(days=midnight(0).weekday() + 7)


@pytest.fixture
def team(tenant, make_tracked, sessions):
    """k = 3. Three workers do the usual round on Tuesday of last week; a fourth visits the
    school and the store alone on Wednesday."""
    # last week may have ended less than a day ago: no settling delay (tested in
    # tests/privacy)
    tenant.patch("/v1/policy", {"k_min_subjects": 3, "release_delay_hours": 0})
    sites = add_sites(tenant)
    monday = last_monday()
    workers = []
    for n in range(4):
        w = make_tracked(tenant, purposes=(NAV, ANALYTICS, TIME) if n == 0 else (),
                         consent=("navigation", "analytics", "time_tracking"),
                         consent_at=dt.datetime.now(dt.UTC) - 40 * DAY,
                         subject={"external_ref": f"w{n}"})
        if n < 3:
            start = monday + DAY + dt.timedelta(hours=7, minutes=7 * n)
            pings, _, truth = worker_day(start, prefix=f"w{n}-")
        else:
            start = monday + 2 * DAY + dt.timedelta(hours=9)
            pings, _, truth = worker_day(start, LONE_PLAN, prefix="lone-")
        post(w, pings)
        workers.append((w, truth))
    build_tenant(sessions, tenant.tenant_id)
    return {"tenant": tenant, "workers": workers, "sites": sites, "monday": monday}


def report(tenant, kind, t_from, t_to, role="analyst", **params):
    return tenant.get(f"/v1/reports/{kind}", token=tenant.token_for(role),
                      query_string={"from": z(t_from), "to": z(t_to), **params})


def test_travel_per_day_suppresses_days_under_k(team):
    tenant, monday = team["tenant"], team["monday"]
    resp = report(tenant, "travel", monday, monday + 7 * DAY, bucket="day")
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["properties"]["suppressed"] == 1  # Wednesday's lone worker
    assert body["properties"]["mode"] == "aligned" and body["properties"]["period"] == "week"
    (tuesday,) = body["buckets"]
    assert tuesday["bucket"].startswith((monday + DAY).date().isoformat())
    assert (tuesday["subjects"], tuesday["trips"], tuesday["stops"]) == (3, 9, 12)
    truth = sum(d for w, trips in team["workers"][:3] for *_, d in trips)
    assert tuesday["distance_m"] == pytest.approx(truth, rel=0.05)
    assert tuesday["moving_s"] > 0
    # the week as one bucket rests on a day with one subject: suppressed too (sticky)
    week = report(tenant, "travel", monday, monday + 7 * DAY, bucket="week").get_json()
    assert week["buckets"] == [] and week["properties"]["suppressed"] == 1


def test_travel_csv_and_roles(team, superuser):
    tenant, monday = team["tenant"], team["monday"]
    resp = report(tenant, "travel", monday + DAY, monday + 2 * DAY, format="csv")
    assert resp.mimetype == "text/csv" and resp.headers["X-Suppressed-Groups"] == "0"
    rows = list(csv.reader(io.StringIO(resp.get_data(as_text=True))))
    assert rows[0] == ["bucket", "subjects", "trips", "distance_m", "moving_s", "stops"]
    assert rows[1][1:3] == ["3", "9"]
    for role, status in (("dispatcher", 403), ("auditor", 403), ("admin", 200)):
        assert report(tenant, "travel", monday, monday + DAY, role=role).status_code == status
    bad = report(tenant, "travel", monday, monday + DAY + dt.timedelta(hours=1))
    assert bad.status_code == 422 and bad.get_json()["error"]["code"] == "unaligned_period"
    actions = [a for a in tenant.audit_actions(superuser) if a.startswith("report.")]
    assert actions == ["report.travel", "report.travel"]  # refusals are not reports


def test_visits_dwell_per_site(team):
    tenant, monday = team["tenant"], team["monday"]
    body = report(tenant, "visits", monday + DAY, monday + 2 * DAY).get_json()
    by_site = {v["site"]: v for v in body["visits"]}
    assert set(by_site) == {"depot", "clinic", "store"}
    assert (by_site["depot"]["visits"], by_site["depot"]["subjects"]) == (6, 3)
    clinic = by_site["clinic"]
    assert clinic["visits"] == 3 and abs(clinic["median_dwell_s"] - 45 * 60) <= STAY_EVERY
    assert abs(clinic["p90_dwell_s"] - 45 * 60) <= STAY_EVERY
    depot = sorted([20 * 60] * 3 + [15 * 60] * 3)
    assert abs(by_site["depot"]["median_dwell_s"] - (depot[2] + depot[3]) / 2) <= STAY_EVERY
    one = report(tenant, "visits", monday + DAY, monday + 2 * DAY,
                 site=team["sites"]["clinic"]).get_json()["visits"]
    assert [v["site"] for v in one] == ["clinic"]
    lone = report(tenant, "visits", monday + 2 * DAY, monday + 3 * DAY).get_json()
    assert lone["visits"] == [] and lone["properties"]["suppressed"] == 2  # school, store


def test_origin_destination_by_site_and_by_cell(team):
    tenant, monday = team["tenant"], team["monday"]
    body = report(tenant, "od", monday, monday + 7 * DAY, zones="sites").get_json()
    pairs = {(p["origin"]["site"], p["destination"]["site"]): p for p in body["pairs"]}
    assert set(pairs) == {("depot", "clinic"), ("clinic", "store"), ("store", "depot")}
    assert all(p["trips"] == 3 and p["subjects"] == 3 for p in pairs.values())
    assert body["properties"]["suppressed"] == 1  # school -> store, one worker
    cells = report(tenant, "od", monday, monday + 7 * DAY, zones="h3:8").get_json()
    assert len(cells["pairs"]) == 3 and len(cells["pairs"][0]["origin"]["cell"]) == 15
    assert report(tenant, "od", monday, monday + 7 * DAY, zones="h3:9").status_code == 422
    resp = report(tenant, "od", monday, monday + 7 * DAY, zones="sites", format="csv")
    assert resp.get_data(as_text=True).splitlines()[0].startswith("origin_site_id,")


def test_differential_privacy_charges_the_shared_budget_of_each_day_of_data(team):
    tenant, monday = team["tenant"], team["monday"]
    tenant.patch("/v1/policy", {"dp_epsilon_per_query": 1.0, "dp_epsilon_per_day": 2.5})
    start = monday + DAY + dt.timedelta(hours=6)
    ok = report(tenant, "visits", start, start + dt.timedelta(hours=13))  # any whole hours
    assert ok.status_code == 200, ok.get_json()
    props = ok.get_json()["properties"]
    assert props["mode"] == "differential_privacy"
    assert props["epsilon"] == pytest.approx(1.0)
    assert props["budget"]["remaining"] == pytest.approx(1.5)
    for visit in ok.get_json()["visits"]:
        assert visit["subjects"] >= 3 and 0 <= visit["median_dwell_s"] <= 12 * 3600
    assert report(tenant, "od", start, start + DAY, zones="sites").status_code == 200
    spent = report(tenant, "travel", start, start + DAY)
    assert spent.status_code == 429
    assert spent.get_json()["error"]["code"] == "privacy_budget_spent"
    heatmap = tenant.get("/v1/reports/heatmap", token=tenant.token_for("analyst"),
                         query_string={"from": z(start), "to": z(start + DAY)})
    assert heatmap.status_code == 429  # one budget for all aggregate reports


# ---- individual travel ----------------------------------------------------------------------

def travel(team, role="admin", n=0, purpose="time_tracking", **params):
    tenant, monday = team["tenant"], team["monday"]
    worker = team["workers"][n][0]
    return tenant.get(f"/v1/subjects/{worker.subject_id}/travel", token=tenant.token_for(role),
                      query_string={"purpose": purpose, "from": z(monday),
                                    "to": z(monday + 7 * DAY), **params})


def test_individual_travel_per_day_under_a_purpose(team, superuser):
    resp = travel(team)
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    (day,) = body["days"]
    truth = team["workers"][0][1]
    assert day["count"] == 3 and day["date"] == (team["monday"] + DAY).date().isoformat()
    assert day["distance_m"] == pytest.approx(sum(t[-1] for t in truth), rel=0.05)
    first = day["trips"][0]
    assert (first["origin"]["site"], first["destination"]["site"]) == ("depot", "clinic")
    assert first["precision_m"] == 250 and body["precision_m"] == 250
    assert body["totals"]["trips"] == 3
    entry = superuser.execute("SELECT action, subject_id::text, details->>'purpose' "
                              "FROM audit_log WHERE action = 'read.travel'").fetchone()
    assert entry == ("read.travel", team["workers"][0][0].subject_id, "time_tracking")


def test_individual_travel_follows_roles_purposes_and_consent(team):
    assert travel(team, role="analyst").status_code == 403
    assert travel(team, role="dispatcher").status_code == 403
    assert travel(team, purpose="analytics").get_json()["error"]["code"] == "aggregate_only"
    assert travel(team, role="dispatcher", purpose="navigation").status_code == 200
    worker = team["workers"][0][0]
    team["tenant"].consent(worker.subject_id, "time_tracking", status="withdrawn")
    resp = travel(team)
    assert resp.status_code == 200 and resp.get_json()["days"] == []


# ---- erasure and export -----------------------------------------------------------------------

def _request(tenant, subject_id, kind):
    resp = tenant.post("/v1/requests", {"subject_id": subject_id, "kind": kind})
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()["request_id"]


def test_erasure_takes_the_subjects_trips_and_stops(team, superuser, sessions):
    tenant = team["tenant"]
    worker = team["workers"][0][0]
    rid = _request(tenant, worker.subject_id, "access")
    bundle = zipfile.ZipFile(io.BytesIO(tenant.get(f"/v1/requests/{rid}/bundle").get_data()))
    exported = json.loads(bundle.read("trips.json"))
    assert len(exported) == 3 and exported[0]["origin_h3"] and exported[0]["distance_m"] > 0
    rid = _request(tenant, worker.subject_id, "erasure")
    resp = tenant.post(f"/v1/requests/{rid}/erase", {})
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["counts"]["trips"] == 3 and resp.get_json()["counts"]["stops"] == 4
    for table in ("trips", "stops"):
        assert superuser.execute(f"SELECT count(*) FROM {table} WHERE subject_id = %s",
                                 (worker.subject_id,)).fetchone()[0] == 0
        assert superuser.execute(f"SELECT count(*) FROM {table}").fetchone()[0] > 0  # others
    # the day now rests on two workers: under k, suppressed
    monday = team["monday"]
    body = report(tenant, "travel", monday + DAY, monday + 2 * DAY).get_json()
    assert body["buckets"] == [] and body["properties"]["suppressed"] == 1
    # and a later build does not bring anything back
    assert build_tenant(sessions, tenant.tenant_id).subjects == 0
