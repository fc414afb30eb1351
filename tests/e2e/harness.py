"""What the console's browser tests and the screenshot script share: a real HTTP server on
127.0.0.1, the system's headless Chromium driven by Playwright (never a downloaded browser),
and a few page helpers."""

from __future__ import annotations

import datetime as dt
import os
import threading
from pathlib import Path

from werkzeug.serving import WSGIRequestHandler, make_server

CHROMIUM = Path(os.environ.get("GOVERN_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1440, "height": 900}


class QuietHandler(WSGIRequestHandler):
    def log_request(self, *args, **kwargs) -> None:
        pass


class Server:
    """The app on a free port of 127.0.0.1, served from a thread until stopped."""

    def __init__(self, app):
        self._server = make_server("127.0.0.1", 0, app, threaded=True,
                                   request_handler=QuietHandler)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name="console-e2e-server")

    def __enter__(self) -> Server:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._thread.join(timeout=10)


def launch(playwright):
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS,
                                      headless=True)


def demo_day() -> dt.date:
    """The UTC day `seed_demo(days=1)` fills: yesterday (and the console's default)."""
    return dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)


def add_travel(app, tenant_id: str, owner_token: str) -> bool:
    """Sites at the demo's places, and stops and trips built from its pings (as the
    scheduler's trips job would), when this govern has travel reports; else False."""
    import uuid

    from govern.demo import SITES

    try:
        from govern.domain.trips import build_tenant
    except ImportError:
        return False
    client = app.test_client()
    for name, lat, lon in SITES:
        resp = client.post("/v1/sites", headers={"Authorization": f"Bearer {owner_token}"},
                           json={"name": name, "geometry": {"type": "Point",
                                                            "coordinates": [lon, lat]},
                                 "radius_m": 150, "kind": "depot" if "Depot" in name else None})
        if resp.status_code == 404:
            return False
        assert resp.status_code == 201, resp.get_json()
    build_tenant(app.extensions["govern"].sessions, uuid.UUID(tenant_id))
    return True


def sign_in(page, base_url: str, token: str) -> None:
    page.goto(f"{base_url}/console")
    page.fill("#token", token)
    page.click("form.signin button[type=submit]")
    page.wait_for_selector("#who .role")
