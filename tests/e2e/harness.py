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
    """The last UTC day `seed_demo` fills: yesterday (and the console's default)."""
    return dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)


def sign_in(page, base_url: str, token: str) -> None:
    page.goto(f"{base_url}/console")
    page.fill("#token", token)
    page.click("form.signin button[type=submit]")
    page.wait_for_selector("#who .role")


def png(rgb: tuple[int, int, int], size: int = 256) -> bytes:
    """A solid-colour PNG (no imaging library needed): the tiles a test tile server serves."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    row = b"\x00" + bytes(rgb) * size
    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(row * size, 9)) + chunk(b"IEND", b""))


class TileServer:
    """XYZ tiles on a free port of 127.0.0.1: /{z}/{x}/{y}.png, each a PNG whose colour
    depends on its coordinates; every path asked for is recorded."""

    def __init__(self):
        import re
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        served = self.served = []
        pattern = re.compile(r"^/(\d+)/(\d+)/(\d+)\.png$")

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                m = pattern.match(self.path)
                if not m:
                    self.send_error(404)
                    return
                z, x, y = map(int, m.groups())
                body = png((200 + z % 50, 220 - x % 40, 200 + y % 50))
                served.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self._server.server_port}"
        self.template = self.origin + "/{z}/{x}/{y}.png"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name="console-e2e-tiles")

    def __enter__(self) -> TileServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)
