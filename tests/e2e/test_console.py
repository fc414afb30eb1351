"""The console in a real browser: sign-in, the demo heatmap, a policy change that lands in the
audit log with inline validation on the way, and pages hidden from roles that may not use
them."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from tests.e2e.harness import demo_day, sign_in

expect = pytest.importorskip("playwright.sync_api").expect


def test_console_page_is_served_with_its_assets(server, page):
    resp = page.request.get(f"{server.url}/console")
    assert resp.status == 200
    assert "script-src 'self'" in resp.headers["content-security-policy"]
    for asset in ("/console/static/js/app.js", "/console/static/vendor/leaflet/leaflet.js",
                  "/console/static/vendor/world-atlas/countries-110m.json"):
        assert page.request.get(f"{server.url}{asset}").status == 200, asset


def test_sign_in_shows_tenant_and_role_and_keeps_the_token_out_of_urls(server, demo, page):
    page.goto(f"{server.url}/console")
    page.fill("#token", "gv_" + "0" * 32 + "_" + "x" * 43)
    page.click("form.signin button[type=submit]")
    expect(page.locator(".signin .alert.error")).to_contain_text("unknown, revoked or expired")

    token = demo["tokens"]["owner"]
    sign_in(page, server.url, token)
    expect(page.locator("#who .tenant")).to_have_text("Demo Field Services")
    expect(page.locator("#who .role")).to_have_text("owner")
    assert token not in page.url
    assert page.evaluate("sessionStorage.getItem('govern.token')") == token
    assert page.evaluate("localStorage.length") == 0

    page.click("#sign-out")
    expect(page.locator("form.signin")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('govern.token')") is None


def test_heatmap_renders_the_demo_hexagons(server, demo, page):
    sign_in(page, server.url, demo["tokens"]["analyst"])
    expect(page).to_have_url(re.compile(r"#/heatmap$"))
    page.wait_for_selector("#heatmap-map[data-basemap=ready]")
    cells = page.locator("#heatmap-map path.hex-cell")
    expect(cells.first).to_be_visible()
    released = int(page.locator(".page[data-page=heatmap]").get_attribute("data-cells"))
    assert released > 0 and cells.count() == released
    expect(page.locator("#heatmap-stats")).to_contain_text("suppressed (under k)")
    expect(page.locator("#heatmap-stats")).to_contain_text("k = 3")

    expect(page.locator("#report-withheld")).to_contain_text("same answer")

    # a week is a period the API releases without noise, too: the newest closed one (the
    # demo's day is in it only when today is a Monday)
    page.select_option("select[name=period]", "week")
    page.click("#heatmap-show")
    expect(page.locator("#heatmap-stats")).to_contain_text("exact · week")
    # asked again, the day is the answer first given
    page.select_option("select[name=period]", "day")
    page.click("#heatmap-show")
    expect(page.locator("#report-withheld")).to_contain_text("this is that same answer")
    expect(cells.first).to_be_visible()


def test_retention_change_is_validated_inline_and_audited(server, demo, page):
    sign_in(page, server.url, demo["tokens"]["owner"])
    page.goto(f"{server.url}/console#/policy")
    row = page.locator("tr[data-purpose=analytics]")
    row.locator("button[data-edit=analytics]").click()
    form = page.locator("form.editor-form[data-purpose=analytics]")

    form.locator("input[name=retention_days]").fill("0")
    form.locator("button[type=submit]").click()
    expect(form.locator(".field.invalid .field-error")).to_contain_text(
        "greater than or equal to 1")

    form.locator("input[name=retention_days]").fill("180")
    form.locator("button[type=submit]").click()
    expect(page.locator("tr[data-purpose=analytics] td[data-col=retention_days]")).to_have_text(
        "180 days")

    page.goto(f"{server.url}/console#/audit")
    page.fill("input[name=action]", "purpose.update")
    page.click("#audit-log button[type=submit]")
    entry = page.locator("#audit-log tr[data-action='purpose.update']").first
    expect(entry).to_contain_text("retention_days")
    expect(entry).to_contain_text("365 → 180")
    expect(page.locator("#audit-verify")).to_contain_text("Chain intact")


def test_policy_validation_errors_show_next_to_the_window(server, demo, page):
    sign_in(page, server.url, demo["tokens"]["admin"])
    page.goto(f"{server.url}/console#/policy")
    page.locator("[data-field='collection_windows[0].end']").fill("25:00")
    page.click("#policy-save")
    expect(page.locator(".window-row .field.invalid .field-error")).to_contain_text(
        "not a valid time")
    # nothing was saved
    resp = page.request.get(f"{server.url}/v1/policy",
                            headers={"Authorization": f"Bearer {demo['tokens']['admin']}"})
    assert resp.json()["collection_windows"][0]["end"] == "21:00"


def test_an_analyst_cannot_open_the_policy_page(server, demo, page):
    sign_in(page, server.url, demo["tokens"]["analyst"])
    nav = page.locator("#nav")
    expect(nav.locator("a[data-page=heatmap]")).to_be_visible()
    for hidden in ("policy", "subjects", "audit", "positions"):
        expect(nav.locator(f"a[data-page={hidden}]")).to_have_count(0)
    page.goto(f"{server.url}/console#/policy")
    expect(page.locator(".forbidden")).to_contain_text('role "analyst" may not open')
    expect(page.locator("#purposes")).to_have_count(0)


def test_auditor_reads_policy_and_audit_but_cannot_edit(server, demo, page):
    sign_in(page, server.url, demo["tokens"]["auditor"])
    expect(page).to_have_url(re.compile(r"#/audit$"))
    expect(page.locator("#audit-verify")).to_contain_text("Chain intact")
    expect(page.locator("#nav a[data-page=heatmap]")).to_have_count(0)
    page.goto(f"{server.url}/console#/policy")
    expect(page.locator("tr[data-purpose=analytics]")).to_be_visible()
    expect(page.locator("button[data-edit]")).to_have_count(0)
    expect(page.locator("#policy-save")).to_have_count(0)
    expect(page.locator("#zones-list tbody tr")).to_have_count(6)


def test_subject_consent_devices_and_requests(server, demo, page):
    sign_in(page, server.url, demo["tokens"]["owner"])
    page.goto(f"{server.url}/console#/subjects")
    page.get_by_role("link", name="worker-001").first.click()
    expect(page.locator("#consent-state")).to_contain_text("analytics")
    expect(page.locator("#devices tbody tr")).to_have_count(1)
    expect(page.locator("#consent-history")).to_contain_text("onboarding")
    form = page.locator("form.inline-form", has_text="New request")
    form.locator("select[name=kind]").select_option("erasure")
    form.locator("button[type=submit]").click()
    expect(page.locator(".card", has_text="Access and erasure requests")).to_contain_text(
        "erasure")


def test_travel_visits_and_od_reports(server, demo, page):
    sign_in(page, server.url, demo["tokens"]["analyst"])
    page.goto(f"{server.url}/console#/reports/travel")
    report = page.locator("#report-out")
    expect(report.locator("tbody tr")).to_have_count(1)  # the demo's one day
    expect(report).to_contain_text("km")
    expect(report.locator("svg.chart rect")).to_have_count(1)

    page.get_by_role("tab", name="Visits").click()
    expect(page.locator("#report-out tbody")).to_contain_text("Depot Moabit")
    expect(page.locator("#report-map path.leaflet-interactive").first).to_be_attached()

    page.get_by_role("tab", name="Origin–destination").click()
    expect(page.locator("#report-out")).to_contain_text("→")

    with page.expect_download() as dl:
        page.click("#report-csv")
    assert dl.value.suggested_filename == "od.csv"


def test_a_zone_is_drawn_on_the_map_saved_and_deleted(server, demo, page):
    sign_in(page, server.url, demo["tokens"]["owner"])
    page.goto(f"{server.url}/console#/policy")
    expect(page.locator("#zones-list tbody tr")).to_have_count(6)
    page.get_by_role("button", name="Polygon").click()
    zone_map = page.locator("#zones-map")
    for x, y in ((120, 120), (220, 110), (200, 200)):
        zone_map.click(position={"x": x, "y": y})
    expect(page.locator(".draw[data-points='3']")).to_have_count(1)
    form = page.locator("form.zone-form")
    form.locator("button[type=submit]").click()  # no name yet: the API says so, inline
    expect(form.locator(".field.invalid .field-error")).to_contain_text(
        "Length must be between 1 and 200")
    form.locator("input[name=name]").fill("loading bay")
    form.locator("button[type=submit]").click()
    row = page.locator("#zones-list tr", has_text="loading bay")
    expect(row).to_contain_text("polygon")
    expect(row).to_contain_text("everyone")
    # what it protects and how well: the zone's stated numbers, never its offset
    expect(row.locator(".zone-protection")).to_contain_text("not within")
    expect(row.locator(".zone-protection")).to_contain_text("trips hidden up to")

    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Delete").click()
    expect(page.locator("#zones-list tbody tr")).to_have_count(6)


def test_a_misconfigured_phone_is_flagged_on_the_devices_page(server, demo, page):
    import base64
    import time

    auth = base64.b64encode(f"phone:{demo['device']['token']}".encode()).decode()
    for n in range(5):  # an OwnTracks build that sends no latitude: each point refused
        resp = page.request.post(f"{server.url}/v1/ingest/owntracks",
                                 headers={"Authorization": f"Basic {auth}",
                                          "Content-Type": "application/json"},
                                 data=f'{{"_type": "location", "lon": 13.4, '
                                      f'"tst": {int(time.time()) - 60 * (n + 1)}}}')
        assert resp.status == 200 and resp.json() == []
    sign_in(page, server.url, demo["tokens"]["admin"])
    page.goto(f"{server.url}/console#/devices")
    expect(page.locator("#devices-flagged")).to_contain_text("1 device refusing")
    row = page.locator("tr[data-flagged=true]")
    expect(row).to_have_count(1)
    row.locator("a").click()
    expect(page.locator("#device-flagged")).to_contain_text("stored nothing")
    refusals = page.locator("#device-refusals tbody tr")
    expect(refusals.first).to_contain_text("lat")
    expect(refusals.first).to_contain_text("is required")
    expect(refusals.first).to_contain_text("owntracks")
    # the analyst has no devices page
    page.click("#sign-out")
    sign_in(page, server.url, demo["tokens"]["analyst"])
    expect(page.locator("#nav a[data-page=devices]")).to_have_count(0)


def test_a_subjects_track_and_travel_are_read_under_a_purpose_and_audited(server, demo, page):
    sign_in(page, server.url, demo["tokens"]["owner"])
    page.goto(f"{server.url}/console#/subjects")
    page.get_by_role("link", name="worker-001").first.click()
    card = page.locator("#subject-track")
    expect(card.locator("select[name=track_purpose]")).to_have_value("time_tracking")
    expect(card.locator("input[name=track_day]")).to_have_value(demo_day().isoformat())
    card.locator("#track-show").click()
    expect(page.locator("#track-map path.track-line")).to_have_count(1)
    points = int(card.get_attribute("data-points"))
    assert points > 50
    expect(page.locator("#track-stats")).to_contain_text("250 m")
    travel = page.locator("#subject-travel")
    expect(travel.locator("tbody tr").first).to_contain_text("km")
    expect(travel).to_contain_text("Depot Moabit")  # trips end at the demo's sites

    # both reads are in the audit log, under the subject's reference and the owner's email
    page.goto(f"{server.url}/console#/audit")
    page.fill("input[name=action]", "read")
    page.fill("input[name=subject_ref]", "worker-001")
    page.click("#audit-log button[type=submit]")
    for action in ("read.track", "read.travel"):
        entry = page.locator(f"#audit-log tr[data-action='{action}']").first
        expect(entry).to_contain_text("owner@demo.example")
        expect(entry).to_contain_text("worker-001")


def test_a_dispatcher_cannot_read_a_track_under_time_tracking(server, demo, page):
    """A role the purpose does not name gets the API's refusal, not an empty map."""
    resp = page.request.get(
        f"{server.url}/v1/subjects/{demo['device']['subject_id']}/track?purpose=time_tracking",
        headers={"Authorization": f"Bearer {demo['tokens']['dispatcher']}"})
    assert resp.status == 403


def test_a_dispatcher_sees_positions_with_their_age_and_stale_ones_flagged(server, demo, page):
    sign_in(page, server.url, demo["tokens"]["dispatcher"])
    expect(page).to_have_url(re.compile(r"#/positions$"))
    rows = page.locator(".page[data-page=positions] tbody tr")
    expect(rows.first).to_be_visible()
    # the demo's movement ended yesterday: every latest position is hours old
    expect(page.locator(".stale-note")).to_contain_text("older than 30 minutes")
    assert rows.count() == page.locator("tbody .badge", has_text="stale").count() > 0
    expect(page.locator("#positions-map path.position.stale")).to_have_count(rows.count())
    # the age as the page computes it, at fixed instants
    ages = page.evaluate("""async () => {
        const { age } = await import('/console/static/js/pages/positions.js');
        const now = Date.parse('2026-03-02T12:00:00Z');
        return ['2026-03-02T11:56:00Z', '2026-03-02T09:55:00Z', '2026-02-28T08:00:00Z',
                '2026-03-02T12:01:00Z'].map((t) => age(t, now));
    }""")
    assert ages == ["4 min", "2 h 05 min", "2 d 4 h", "0 min"]


def test_od_between_cells_is_drawn_on_the_map_with_named_cells(server, demo, page):
    sign_in(page, server.url, demo["tokens"]["analyst"])
    page.goto(f"{server.url}/console#/reports/od")
    expect(page.locator("#report-out")).to_contain_text("→")
    # the day's site pairs were released just now; cell pairs of the same day would open
    # them (complementary suppression withholds them: 4 subjects, k = 3), so ask the day
    # before, which no one has asked
    day = page.locator("input[name=day]").input_value()
    before = (dt.date.fromisoformat(day) - dt.timedelta(days=1)).isoformat()
    page.fill("input[name=day]", before)
    page.select_option("select[name=zones]", "h3:5")  # coarse: pairs reach k
    page.locator("form.toolbar button[type=submit]").click()
    out = page.locator("#report-out")
    expect(out.locator("tbody tr").first).to_contain_text("cell 1 (")
    assert not re.search(r"\b8[0-9a-f]{14}\b", out.locator("tbody").inner_text()), (
        "no raw H3 index in the table")
    expect(page.locator("#report-map path.od-cell").first).to_be_attached()
    expect(page.locator("#report-map path.od-flow").first).to_be_attached()
    pairs = out.locator("tbody tr").count()
    expect(out.locator(".card h2", has_text="released")).to_have_text(
        f"{pairs} pair{'' if pairs == 1 else 's'} released")


def test_periods_default_to_the_last_complete_day_week_and_month(server, page):
    page.goto(f"{server.url}/console")
    got = page.evaluate("""async () => {
        const { settledPeriods } = await import('/console/static/js/period.js');
        return ['2026-03-02T00:30:00Z', '2026-01-01T10:00:00Z', '2026-01-05T23:59:00Z',
                '2026-03-04T12:00:00Z'].map((t) => settledPeriods(new Date(t), 0));
    }""")
    assert got == [
        {"day": "2026-03-01", "week": "2026-W09", "month": "2026-02"},  # a Monday
        {"day": "2025-12-31", "week": "2025-W52", "month": "2025-12"},  # new year, Thursday
        {"day": "2026-01-04", "week": "2026-W01", "month": "2025-12"},  # W01 began in 2025
        {"day": "2026-03-03", "week": "2026-W09", "month": "2026-02"},  # mid-week
    ]


def test_leaving_the_heatmap_while_it_zooms_raises_no_page_error(server, demo, page):
    """Leaflet ends a zoom animation on a timer that outlives the map's removal; leaving the
    page mid-zoom used to raise `_leaflet_pos` of undefined (the fixture fails on any error)."""
    sign_in(page, server.url, demo["tokens"]["analyst"])
    page.wait_for_selector("#heatmap-map path.hex-cell")
    page.click("#heatmap-map .leaflet-control-zoom-in")  # its end is a 250 ms timer
    page.click("#nav a[data-page=reports]")
    expect(page.locator("#report-out tbody tr").first).to_be_visible()
    # a later, longer timer fires after Leaflet's (timers run by due time, at any speed)
    page.wait_for_function("() => new Promise((done) => setTimeout(() => done(true), 300))")


def test_an_auditor_reads_the_log_with_names_newest_first(server, demo, page):
    day = demo_day()
    report = page.request.get(  # an analyst's report: one audited entry by a member
        f"{server.url}/v1/reports/heatmap?from={day}T00:00:00Z&to="
        f"{day + dt.timedelta(days=1)}T00:00:00Z&resolution=7",
        headers={"Authorization": f"Bearer {demo['tokens']['analyst']}"})
    assert report.status == 200
    sign_in(page, server.url, demo["tokens"]["auditor"])
    log = page.locator("#audit-log")
    expect(log.locator("tbody tr").first).to_be_visible()
    seqs = [int(t) for t in log.locator("tbody tr td:first-child").all_inner_texts()]
    assert seqs == sorted(seqs, reverse=True)
    page.fill("input[name=member]", "ANALYST@demo")
    page.click("#audit-log button[type=submit]")
    expect(log.locator("tbody tr", has_not_text="analyst@demo.example")).to_have_count(0)
    expect(log.locator("tbody tr[data-action^='report']").first).to_be_visible()
    assert "member:" not in log.locator("tbody").inner_text()


def test_a_busy_tenant_s_heatmap_is_asked_again_when_a_slot_frees(server, demo, page, config):
    """Another tab or member holds the tenant's heavy-read slots: the console is answered 429
    `tenant_busy` and asks again after Retry-After instead of showing the refusal."""
    import uuid

    import psycopg

    from govern.config import libpq_url
    from govern.hardening import HEAVY_LOCK_SPACE, heavy_lock_key

    key = heavy_lock_key(uuid.UUID(demo["tenant_id"]))
    holders = []
    for slot in range(config.heavy_reads_per_tenant):
        conn = psycopg.connect(libpq_url(config.app_database_url))
        conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (HEAVY_LOCK_SPACE + slot, key))
        holders.append(conn)
    try:
        with page.expect_response(lambda r: "/v1/reports/heatmap" in r.url
                                  and r.status == 429) as refused:
            sign_in(page, server.url, demo["tokens"]["analyst"])
        assert refused.value.json()["error"]["code"] == "tenant_busy"
    finally:
        for conn in holders:
            conn.close()
    with page.expect_response(lambda r: "/v1/reports/heatmap" in r.url and r.status == 200,
                              timeout=20_000):
        pass
    expect(page.locator("#heatmap-map path.hex-cell").first).to_be_visible()
    expect(page.locator(".page[data-page=heatmap] .alert.error")).to_have_count(0)
