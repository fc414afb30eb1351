"""Screenshots of every console page, for docs/console.md and the README.

    .venv/bin/python -m tests.e2e.screenshots [--out docs/images]

Starts a throwaway PostGIS cluster (or uses TEST_DATABASE_URL, a superuser URL, creating a
fresh database in it), seeds the demo tenant, adds a few requests, a legal hold and a zone,
serves the app on 127.0.0.1 and photographs each page in the system's headless Chromium.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import tempfile
import uuid
from contextlib import contextmanager
from pathlib import Path

from tests.e2e.harness import VIEWPORT, Server, launch, sign_in

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def database():
    import psycopg

    from govern import migrate
    from govern.localdb import FAST_SETTINGS, LocalCluster

    given = os.environ.get("TEST_DATABASE_URL")
    if given:
        from urllib.parse import urlsplit, urlunsplit

        name = f"govern_shots_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(given, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = urlunsplit(urlsplit(given)._replace(path=f"/{name}"))
        try:
            migrate.upgrade(url)
            yield url
        finally:
            with psycopg.connect(given, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        return
    base = Path(tempfile.mkdtemp(prefix="govern-shots-pg-"))
    cluster = LocalCluster(base, settings=FAST_SETTINGS)
    cluster.start()
    try:
        url = cluster.ensure_database()
        migrate.upgrade(url)
        yield url
    finally:
        cluster.stop("immediate")
        shutil.rmtree(base, ignore_errors=True)


def enrich(client, tokens: dict) -> None:
    """What a tenant after a few weeks looks like: requests, a hold, a zone, a change."""
    owner = {"Authorization": f"Bearer {tokens['owner']}"}
    subjects = client.get("/v1/subjects", headers=owner).get_json()["subjects"]
    now = dt.datetime.now(dt.UTC)
    for s, kind, days_ago in ((subjects[1], "access", 33), (subjects[2], "erasure", 4),
                              (subjects[0], "access", 1)):
        resp = client.post("/v1/requests", headers=owner, json={
            "subject_id": s["subject_id"], "kind": kind, "note": "by email",
            "received_at": (now - dt.timedelta(days=days_ago)).isoformat()})
        assert resp.status_code == 201, resp.get_json()
    resp = client.post("/v1/legal-holds", headers=owner, json={
        "subject_id": subjects[3]["subject_id"], "reason": "employment tribunal case 2026-117",
        "ends_at": (now + dt.timedelta(days=90)).isoformat()})
    assert resp.status_code == 201, resp.get_json()
    resp = client.post("/v1/zones", headers=owner, json={
        "name": "Clinic Mitte (patients' privacy)",
        "geometry": {"type": "Polygon", "coordinates": [[
            [13.386, 52.523], [13.394, 52.523], [13.394, 52.527], [13.386, 52.527],
            [13.386, 52.523]]]}})
    assert resp.status_code == 201, resp.get_json()
    purposes = client.get("/v1/purposes", headers=owner).get_json()["purposes"]
    nav = next(p for p in purposes if p["key"] == "time_tracking")
    resp = client.patch(f"/v1/purposes/{nav['purpose_id']}", headers=owner,
                        json={"retention_days": 180})
    assert resp.status_code == 200, resp.get_json()


def shoot(page, path: Path, full: bool = False, height: int | None = None,
          clip_height: int | None = None) -> None:
    page.wait_for_load_state("networkidle")
    page.wait_for_timeout(400)  # let maps finish their fit and fade
    if height:
        page.set_viewport_size({"width": VIEWPORT["width"], "height": height})
    clip = {"x": 0, "y": 0, "width": VIEWPORT["width"], "height": clip_height} \
        if clip_height else None
    page.screenshot(path=str(path), full_page=full, clip=clip)
    if height:
        page.set_viewport_size(VIEWPORT)
    print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    from playwright.sync_api import sync_playwright

    from govern.app import create_app
    from govern.config import Config
    from govern.demo import seed_demo

    with database() as url:
        app = create_app(Config.from_env({"DATABASE_URL": url, "LOG_LEVEL": "WARNING",
                                          "RATE_LIMITS": "off"}))
        demo = seed_demo(app.extensions["govern"].sessions, days=2, n_subjects=10,
                         progress=False)
        tokens = demo["tokens"]
        enrich(app.test_client(), tokens)
        with Server(app) as server, sync_playwright() as pw:
            browser = launch(pw)
            context = browser.new_context(viewport=VIEWPORT, locale="en-GB", timezone_id="UTC",
                                          device_scale_factor=1)
            page = context.new_page()
            out = args.out

            page.goto(f"{server.url}/console")
            page.wait_for_selector("form.signin")
            shoot(page, out / "console-signin.png")

            sign_in(page, server.url, tokens["analyst"])
            page.wait_for_selector("#heatmap-map path.hex-cell")
            shoot(page, out / "console-heatmap.png", height=1000)

            for kind in ("travel", "visits", "od"):
                page.goto(f"{server.url}/console#/reports/{kind}")
                page.wait_for_selector(".report-out .card, .messages .alert")
                shoot(page, out / f"console-reports-{kind}.png", full=True)

            page.click("#sign-out")
            sign_in(page, server.url, tokens["owner"])
            page.goto(f"{server.url}/console#/policy")
            page.wait_for_selector("#zones-list tbody tr")
            page.click("button[data-edit=analytics]")
            page.fill("form.editor-form[data-purpose=analytics] input[name=retention_days]", "0")
            page.click("form.editor-form[data-purpose=analytics] button[type=submit]")
            page.wait_for_selector(".field-error")
            shoot(page, out / "console-policy.png", full=True)

            page.goto(f"{server.url}/console#/subjects")
            page.wait_for_selector("#requests tbody tr")
            shoot(page, out / "console-subjects.png", full=True)

            page.get_by_role("link", name="worker-002").first.click()
            page.wait_for_selector("#consent-history tbody tr")
            page.click("#track-show")
            page.wait_for_selector("#track-map path.track-line")
            page.wait_for_selector("#subject-travel tbody tr")
            shoot(page, out / "console-subject.png", full=True)

            page.click("#sign-out")
            sign_in(page, server.url, tokens["auditor"])
            page.wait_for_selector("#audit-log tbody tr")
            page.wait_for_selector("#audit-verify .verify")
            shoot(page, out / "console-audit.png")

            page.click("#sign-out")
            sign_in(page, server.url, tokens["dispatcher"])
            page.wait_for_selector("#positions-map")
            shoot(page, out / "console-positions.png")

            page.click("#sign-out")
            sign_in(page, server.url, tokens["analyst"])
            page.goto(f"{server.url}/console#/policy")
            page.wait_for_selector(".forbidden")
            shoot(page, out / "console-forbidden.png", clip_height=200)
            browser.close()


if __name__ == "__main__":
    main()
