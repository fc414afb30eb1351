"""Rate limits, security headers and CORS."""

from __future__ import annotations

import hashlib

from flask import Flask, request
from flask_cors import CORS
from flask_limiter import ApplicationLimit, Limiter
from flask_limiter.util import get_remote_address

from govern.config import Config

EXEMPT_ENDPOINTS = {"health.healthz", "health.readyz", "health.metrics"}


def token_or_address() -> str:
    """Per token (a hash of it: tokens never reach the limiter's storage), else per address."""
    header = request.headers.get("Authorization", "")
    if header:
        return "tok:" + hashlib.sha256(header.encode()).hexdigest()[:32]
    return "ip:" + (get_remote_address() or "unknown")


def _exempt() -> bool:
    return request.endpoint in EXEMPT_ENDPOINTS


def init_rate_limits(app: Flask, config: Config) -> Limiter | None:
    if not config.rate_limits_enabled:
        return None

    @app.after_request
    def _retry_after_only_when_refused(resp):
        """flask-limiter adds Retry-After to every response; it means "refused, come back"
        (429, 503) only. Registered before the limiter, so it runs after its headers."""
        if resp.status_code not in (429, 503):
            resp.headers.pop("Retry-After", None)
        return resp

    return Limiter(
        key_func=token_or_address,
        app=app,
        storage_uri=config.redis_url or "memory://",
        headers_enabled=True,
        application_limits=[
            ApplicationLimit(config.rate_limit, key_function=token_or_address,
                             exempt_when=_exempt, scope="per-token"),
            # stricter on failed authentication: guessing tokens from one address
            ApplicationLimit(config.auth_failure_limit, key_function=get_remote_address,
                             deduct_when=lambda resp: resp.status_code == 401,
                             exempt_when=_exempt, scope="auth-failures"),
        ],
    )


def init_security_headers(app: Flask, config: Config) -> None:
    if config.cors_origins:
        CORS(app, resources={r"/v1/*": {"origins": config.cors_origins}},
             allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
             expose_headers=["X-Request-ID", "Retry-After", "X-Next-Cursor"], max_age=600)

    @app.after_request
    def _headers(resp):
        h = resp.headers
        h.setdefault("X-Content-Type-Options", "nosniff")
        h.setdefault("X-Frame-Options", "DENY")
        h.setdefault("Referrer-Policy", "no-referrer")
        h.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        h.setdefault("Content-Security-Policy",
                     "default-src 'self'; img-src 'self' data: blob:; style-src 'self' "
                     "'unsafe-inline'; worker-src 'self' blob:; frame-ancestors 'none'")
        if request.path.startswith("/v1/"):
            h.setdefault("Cache-Control", "no-store")  # location data stays out of caches
        if request.is_secure or request.headers.get("X-Forwarded-Proto") == "https":
            h.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        return resp
