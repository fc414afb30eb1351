"""The command line fails in one clear line and a non-zero exit, never a traceback."""

import os
import socket
import subprocess
import sys

from click.testing import CliRunner

from govern import cli


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again once the block ends: nothing listens there


def test_an_unreachable_database_is_one_line_not_a_traceback():
    env = {**os.environ, "DATABASE_URL": f"postgresql://govern@127.0.0.1:{_closed_port()}/x"}
    done = subprocess.run([sys.executable, "-m", "govern.cli", "tenant", "create", "acme"],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: cannot reach the database"), lines
    assert "make run" in lines[0]


class _NoCluster:
    def initialised(self):
        return False

    def running(self):
        return False


def test_no_database_at_all_says_what_to_run(monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setattr(cli, "local_cluster", _NoCluster)  # as on a fresh clone: no var/pg
    result = CliRunner().invoke(cli.main, ["tenant", "create", "acme"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: no database: DATABASE_URL is not set")
    assert "make run" in result.output and "Traceback" not in result.output
