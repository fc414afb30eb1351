"""Factories: a tenant (with its owner token) in one call, members with a role, and so on."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import pytest

from govern.db import tenant_session
from govern.domain.tenants import create_tenant


@dataclass
class TenantHandle:
    tenant_id: uuid.UUID
    owner_token: str
    owner_member_id: uuid.UUID
    client: object
    tokens: dict = field(default_factory=dict)

    def headers(self, token: str | None = None) -> dict:
        return {"Authorization": f"Bearer {token or self.owner_token}"}

    def get(self, path, token=None, **kw):
        return self.client.get(path, headers=self.headers(token), **kw)

    def post(self, path, json=None, token=None, **kw):
        return self.client.post(path, json=json, headers=self.headers(token), **kw)

    def patch(self, path, json=None, token=None, **kw):
        return self.client.patch(path, json=json, headers=self.headers(token), **kw)

    def put(self, path, json=None, token=None, **kw):
        return self.client.put(path, json=json, headers=self.headers(token), **kw)

    def delete(self, path, token=None, **kw):
        return self.client.delete(path, headers=self.headers(token), **kw)

    def member(self, role: str, email: str | None = None) -> dict:
        """Invite a member with `role`; returns the response body (with its token)."""
        email = email or f"{role}-{uuid.uuid4().hex[:6]}@example.com"
        resp = self.post("/v1/members", {"email": email, "role": role})
        assert resp.status_code == 201, resp.get_json()
        return resp.get_json()

    def token_for(self, role: str) -> str:
        if role == "owner":
            return self.owner_token
        if role not in self.tokens:
            self.tokens[role] = self.member(role)["token"]
        return self.tokens[role]

    def purpose(self, key: str = "navigation", **values) -> dict:
        """Declare a purpose (defaults: consent required, 10 m, 30 days); returns its body."""
        body = {"key": key, "title": key.replace("_", " ").title(), "precision_m": 10,
                "retention_days": 30, **values}
        resp = self.post("/v1/purposes", body)
        assert resp.status_code == 201, resp.get_json()
        return resp.get_json()

    def subject(self, external_ref: str | None = None, **values) -> dict:
        """Add a subject; returns its body."""
        body = {"external_ref": external_ref or f"emp-{uuid.uuid4().hex[:8]}", **values}
        resp = self.post("/v1/subjects", body)
        assert resp.status_code == 201, resp.get_json()
        return resp.get_json()

    def device(self, subject_id, **values) -> dict:
        """Enrol a device for a subject; returns the body, with its one-time token."""
        resp = self.post("/v1/devices", {"subject_id": str(subject_id), **values})
        assert resp.status_code == 201, resp.get_json()
        return resp.get_json()

    def consent(self, subject_id, purpose: str, status: str = "granted", at=None,
                **values) -> dict:
        """Record a consent event as an admin (`at`: an aware datetime or None for now)."""
        body = {"purpose": purpose, "status": status, "policy_version": "v1",
                "evidence": {"form": "paper-1"}, **values}
        if at is not None:
            body["at"] = at.isoformat()
        resp = self.post(f"/v1/subjects/{subject_id}/consents", body)
        assert resp.status_code == 201, resp.get_json()
        return resp.get_json()

    def audit_actions(self, superuser) -> list[str]:
        """This tenant's audit actions, oldest first (read through RLS by a superuser)."""
        return [r[0] for r in superuser.execute(
            "SELECT action FROM audit_log WHERE tenant_id = %s ORDER BY seq", (self.tenant_id,))]


@pytest.fixture
def make_tenant(sessions, client):
    def make(name: str = "acme") -> TenantHandle:
        with tenant_session(sessions, None) as session:
            created = create_tenant(session, name)
        return TenantHandle(created.tenant_id, created.owner_token, created.owner_member_id,
                            client)

    return make


@pytest.fixture
def tenant(make_tenant) -> TenantHandle:
    return make_tenant("acme")
