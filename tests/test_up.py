"""`govern up` (what `make run` runs): the demo seeded, one block of tokens printed once the
web server answers, written to a 0600 file; a second run says where that file is."""

from __future__ import annotations

import http.client
import os
import queue
import signal
import socket
import stat
import subprocess
import sys
import threading
import time

from tests.conftest import ROOT


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(port: int, path: str, token: str | None = None) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", path, headers={"Authorization": f"Bearer {token}"} if token else {})
    return conn.getresponse().status


class Up:
    """`govern up` as a subprocess, its stdout read line by line from a thread."""

    def __init__(self, database_url: str, tokens_file, port: int):
        env = {**os.environ, "DATABASE_URL": database_url, "PORT": str(port),
               "WEB_WORKERS": "1", "RATE_LIMITS": "off", "LOG_LEVEL": "WARNING"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "govern.cli", "up", "--tokens-file", str(tokens_file),
             "--demo-days", "1", "--demo-subjects", "3"], cwd=ROOT, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.seen: list[str] = []

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))

    def until(self, predicate, timeout: float = 240) -> str:
        deadline = time.monotonic() + timeout
        while True:
            assert self.proc.poll() is None or not self.lines.empty(), self.seen
            line = self.lines.get(timeout=max(0.1, deadline - time.monotonic()))
            self.seen.append(line)
            if predicate(line):
                return line

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(60)


def test_up_prints_the_tokens_once_the_server_listens(database_url, tmp_path):
    tokens_file = tmp_path / "var" / "demo-tokens.txt"
    port = _free_port()
    up = Up(database_url, tokens_file, port)
    try:
        up.until(lambda line: line.startswith("govern is serving"))
        # printed only once gunicorn answers, not when it was started
        assert _get(port, "/healthz") == 200
        # gunicorn's control socket is under var/, not in the home directory
        assert (ROOT / "var" / f"gunicorn-{port}.ctl").is_socket()
        up.until(lambda line: line.startswith("demo tokens"))
        block = [up.until(lambda line: True) for _ in range(8)]
    finally:
        up.stop()
    tokens = {line.split()[0]: line.split()[-1] for line in block if line.startswith(
        ("owner", "admin", "analyst", "dispatcher", "auditor"))}
    assert set(tokens) == {"owner", "admin", "analyst", "dispatcher", "auditor"}
    assert stat.S_IMODE(tokens_file.stat().st_mode) == 0o600
    written = tokens_file.read_text()
    assert all(token in written for token in tokens.values())

    # the second run seeds nothing and says where the tokens are; they still work
    port = _free_port()
    again = Up(database_url, tokens_file, port)
    try:
        again.until(lambda line: line.startswith("govern is serving"))
        line = again.until(lambda line: "demo-tokens.txt" in line)
        assert str(tokens_file) in line
        for role, token in tokens.items():
            assert _get(port, "/v1/me", token) == 200, role
    finally:
        again.stop()
    assert not any("seeding" in line for line in again.seen)
    assert tokens_file.read_text() == written
