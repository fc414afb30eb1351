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


def sign_in(page, base_url: str, token: str) -> None:
    page.goto(f"{base_url}/console")
    page.fill("#token", token)
    page.click("form.signin button[type=submit]")
    page.wait_for_selector("#who .role")
