"""Consent evidence is bounded on every ledger write path (the ledger cannot be pruned)."""

import pytest

from govern.domain.consents import (
    EVIDENCE_MAX_BYTES,
    EVIDENCE_MAX_DEPTH,
    EVIDENCE_MAX_KEY_CHARS,
    EVIDENCE_MAX_KEYS,
    EVIDENCE_MAX_VALUE_CHARS,
)


@pytest.fixture
def paths(tenant):
    """Both ways into the ledger: an admin's entry and the device's own post."""
    tenant.purpose("navigation")
    sid = tenant.subject()["subject_id"]
    device = tenant.device(sid)

    def admin(evidence):
        return tenant.post(f"/v1/subjects/{sid}/consents", {
            "purpose": "navigation", "status": "granted", "policy_version": "v1",
            "evidence": evidence})

    def dev(evidence):
        return tenant.post("/v1/device/consents", {
            "purpose": "navigation", "status": "granted", "policy_version": "app-1",
            "evidence": evidence}, token=device["token"])

    return {"admin": admin, "device": dev}


def _deep(levels):
    value = "x"
    for _ in range(levels - 1):
        value = {"k": value}
    return value


CASES = {
    "bytes": ({f"k{i}": "v" * 900 for i in range(6)}, 413, f"{EVIDENCE_MAX_BYTES} bytes"),
    "depth": (_deep(EVIDENCE_MAX_DEPTH + 2), 422, f"deeper than {EVIDENCE_MAX_DEPTH}"),
    "keys": ({"l": list(range(EVIDENCE_MAX_KEYS + 1))}, 422, f"more than {EVIDENCE_MAX_KEYS}"),
    "key length": ({"k" * (EVIDENCE_MAX_KEY_CHARS + 1): 1}, 422,
                   f"longer than {EVIDENCE_MAX_KEY_CHARS}"),
    "value length": ({"a": {"b": "v" * (EVIDENCE_MAX_VALUE_CHARS + 1)}}, 422,
                     f"longer than {EVIDENCE_MAX_VALUE_CHARS}"),
}


@pytest.mark.parametrize("path", ["admin", "device"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_evidence_over_a_bound_is_refused_naming_it(paths, superuser, tenant, path, case):
    evidence, status, named = CASES[case]
    resp = paths[path](evidence)
    assert resp.status_code == status, resp.get_json()
    error = resp.get_json()["error"]
    assert named in error["message"] and named in error["details"]["evidence"][0]
    assert superuser.execute("SELECT count(*) FROM consent_events WHERE tenant_id = %s",
                             (tenant.tenant_id,)).fetchone()[0] == 0


@pytest.mark.parametrize("path", ["admin", "device"])
def test_evidence_at_the_bounds_is_kept(paths, path):
    evidence = {"form": "paper-1", "deep": _deep(EVIDENCE_MAX_DEPTH - 1),
                "k" * EVIDENCE_MAX_KEY_CHARS: "v" * EVIDENCE_MAX_VALUE_CHARS}
    resp = paths[path](evidence)
    assert resp.status_code == 201, resp.get_json()
    assert resp.get_json()["evidence"] == evidence
