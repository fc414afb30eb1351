"""Browser tests of the console: the demo tenant, served on 127.0.0.1, in headless Chromium.

The demo is seeded once for the package (a test here does not empty the database after
itself, as tests elsewhere do); the tables are emptied when the package is done.
"""

from __future__ import annotations

import re

import psycopg
import pytest

from govern.config import libpq_url
from tests.e2e.harness import CHROMIUM, VIEWPORT, Server, launch

OUTSIDE = re.compile(r"^https?://(?!127\.0\.0\.1[:/])")


@pytest.fixture(autouse=True)
def _clean_database():
    """Overrides the suite's per-test cleanup: the package shares one seeded demo."""
    yield


@pytest.fixture(scope="package", autouse=True)
def _needs_chromium():
    """Before anything is seeded or served: skip (saying why) without a browser to drive."""
    pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium, or set "
                    "GOVERN_CHROMIUM)")


def _empty_tables(database_url: str) -> None:
    url = libpq_url(database_url)
    with psycopg.connect(url, autocommit=True) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition "
            "AND c.relname NOT IN ('alembic_version', 'spatial_ref_sys')")]
        conn.execute("TRUNCATE " + ", ".join(tables) + " CASCADE")


@pytest.fixture(scope="package")
def demo(app, sessions, database_url):
    """The demo tenant as `govern demo` seeds it (sites, trips built), with two days of
    movement of 6 subjects; its tokens per role. The pages ask their default, the newest
    day; a test that needs a question nobody asked before (exact releases are checked
    against everything the tenant was given) asks the day before."""
    from govern.demo import seed_demo

    seeded = seed_demo(sessions, days=2, n_subjects=6, progress=False)
    # the demo's last day is yesterday: released at once, without the settling delay
    resp = app.test_client().patch(
        "/v1/policy", json={"release_delay_hours": 0},
        headers={"Authorization": f"Bearer {seeded['tokens']['owner']}"})
    assert resp.status_code == 200, resp.get_json()
    yield seeded
    _empty_tables(database_url)


@pytest.fixture(scope="package")
def server(app, demo):
    with Server(app) as srv:
        yield srv


@pytest.fixture(scope="package")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = launch(pw)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    """A fresh browser context (its own sessionStorage); fails the test on a script error."""
    context = browser.new_context(viewport=VIEWPORT, locale="en-GB", timezone_id="UTC")
    context.set_default_timeout(10_000)
    # nothing leaves the machine: the default basemap's tiles (OpenStreetMap) fail at once,
    # as without a network, and the console falls back to its offline basemap
    context.route(OUTSIDE, lambda route: route.abort("internetdisconnected"))
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    yield pg
    context.close()
    assert not errors, f"script errors in the console: {errors}"
