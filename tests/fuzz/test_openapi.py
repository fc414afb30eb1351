"""Schemathesis against /openapi.json with all default checks, a bounded number of
examples per operation, as the owner of a tenant with data, through a real HTTP server."""

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from werkzeug.serving import make_server

MAX_EXAMPLES = os.environ.get("FUZZ_EXAMPLES", "5")
CONFIG = Path(__file__).with_name("schemathesis.toml")
# Operations that would take the fuzzer's own credentials away half-way (revoking its token,
# removing or demoting its member); they have their own tests in tests/api.
SELF_DESTRUCTIVE = ("DELETE /v1/tokens/{token_id}", "DELETE /v1/members/{member_id}",
                    "PATCH /v1/members/{member_id}")


@pytest.fixture
def live_server(app):
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def test_api_conforms_to_its_schema(live_server, tenant, make_tracked):
    make_tracked(tenant)
    cli = Path(sys.executable).with_name("schemathesis")
    excluded = [arg for name in SELF_DESTRUCTIVE for arg in ("--exclude-name", name)]
    result = subprocess.run(
        [str(cli), "--config-file", str(CONFIG), "run", f"{live_server}/openapi.json",
         "--max-examples", MAX_EXAMPLES, "--generation-deterministic",
         "--request-timeout", "30", "--continue-on-failure", "--no-color",
         "-H", f"Authorization: Bearer {tenant.owner_token}", *excluded],
        capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stdout[-20000:]
