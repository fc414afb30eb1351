"""Rate limits, trusted proxies, security headers and CORS."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
import time
from dataclasses import dataclass
from functools import wraps

from flask import Flask, current_app, g, request
from flask_cors import CORS
from flask_limiter import ApplicationLimit, Limiter
from limits import RateLimitItem, parse
from limits.strategies import RateLimiter
from werkzeug.middleware.proxy_fix import ProxyFix

from govern.api.auth import bearer_token, client_address, presented_token, principal
from govern.auth import TOKEN_RE
from govern.config import Config
from govern.errors import ApiError
from govern.sql import health as sql

EXEMPT_ENDPOINTS = {"health.healthz", "health.readyz", "health.metrics"}
# Endpoints that authenticate by what the request names (OsmAnd), not by a header.
UNAUTHENTICATED_ENDPOINTS = {"ingest.osmand_get", "ingest.osmand_post",
                             "ingest.osmand_tenant_get", "ingest.osmand_tenant_post"}
# Not limited per token: OwnTracks posts one message per request, flushes its whole queue at
# once after a dead spot, and deletes a point answered 429 (it cannot retry). Its requests
# are accepted and counted (ingest diagnostics) instead; failed authentication stays limited.
BURST_TOLERANT_ENDPOINTS = {"ingest.owntracks"}


def rate_limit_key() -> str:
    """Per credential, else per address.

    The key is the parsed token (scheme in any case, whitespace trimmed, Bearer or Basic's
    password), hashed so tokens never reach the limiter's storage. A header that is not a
    well-formed token, and every request to an endpoint that does not authenticate by
    header (OsmAnd), counts against the address: varying the header buys no fresh budget.
    """
    if request.endpoint not in UNAUTHENTICATED_ENDPOINTS:
        token = presented_token()
        if token and TOKEN_RE.match(token):
            return "tok:" + hashlib.sha256(token.encode()).hexdigest()[:32]
    return "ip:" + client_address()


def _exempt() -> bool:
    return request.endpoint in EXEMPT_ENDPOINTS


def _exempt_per_token() -> bool:
    return request.endpoint in EXEMPT_ENDPOINTS or request.endpoint in BURST_TOLERANT_ENDPOINTS


@dataclass(frozen=True)
class AuthFailureLimit:
    """The budget of failed authentications per client address. It is charged only by
    failures and consulted only on failures: a valid credential is never refused by it,
    whatever others sent from the same address."""

    strategy: RateLimiter
    item: RateLimitItem

    def charge(self, address: str) -> int | None:
        """Count one failure; None while within budget, else the seconds until it resets."""
        if self.strategy.hit(self.item, "auth-failures", address):
            return None
        reset = self.strategy.get_window_stats(self.item, "auth-failures", address).reset_time
        return max(1, math.ceil(reset - time.time()))


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

    limiter = Limiter(
        key_func=rate_limit_key,
        app=app,
        storage_uri=config.redis_url or "memory://",
        headers_enabled=True,
        application_limits=[
            ApplicationLimit(config.rate_limit, key_function=rate_limit_key,
                             exempt_when=_exempt_per_token, scope="per-token"),
        ],
    )
    app.extensions["govern_auth_failures"] = AuthFailureLimit(
        limiter.limiter, parse(config.auth_failure_limit))
    return limiter


class TrustedProxies:
    """ProxyFix (X-Forwarded-For and -Proto, `hops` proxies deep) applied only to requests
    whose peer is a configured proxy; from anyone else the headers are ignored, so a client
    cannot pick the address its limits are counted against."""

    def __init__(self, wsgi_app, hops: int, networks: tuple[str, ...]):
        self.plain = wsgi_app
        self.fixed = ProxyFix(wsgi_app, x_for=hops, x_proto=hops)
        self.networks = tuple(ipaddress.ip_network(n) for n in networks)

    def _trusted(self, peer: str | None) -> bool:
        if not self.networks:
            return True
        try:
            address = ipaddress.ip_address(peer or "")
        except ValueError:
            return False
        return any(address in network for network in self.networks)

    def __call__(self, environ, start_response):
        app = self.fixed if self._trusted(environ.get("REMOTE_ADDR")) else self.plain
        return app(environ, start_response)


def metrics_allowed(config: Config) -> bool:
    """/metrics shows counts across tenants: with METRICS_TOKEN set, only to a request that
    bears it; without, only to a client on this machine that did not come through a proxy
    (no X-Forwarded-For), e.g. a Prometheus scraping the loopback address."""
    if config.metrics_token:
        presented = bearer_token() or ""
        return hmac.compare_digest(presented.encode(), config.metrics_token.encode())
    if "X-Forwarded-For" in request.headers or "Forwarded" in request.headers:
        return False
    try:
        return ipaddress.ip_address(client_address()).is_loopback
    except ValueError:
        return False


# ---- per-tenant bound on heavy reads ---------------------------------------------------------

HEAVY_LOCK_SPACE = 0x67760000  # first key of the two-key advisory locks: "gv" + slot space


def heavy_lock_key(tenant_id) -> int:
    """The second advisory-lock key of a tenant's heavy-read slots (a 32-bit signed int)."""
    digest = int.from_bytes(hashlib.sha256(tenant_id.bytes).digest()[:4], "big", signed=True)
    return digest


def take_heavy_slot(engine, tenant_id, slots: int, retry_after: int):
    """Take one of the tenant's `slots` for a heavy read, in every web process at once, and
    return the connection that holds it; closing it gives the slot back.

    The slot is a transaction-scoped advisory lock on (space + slot, tenant key), taken on a
    connection of its own: the request's transaction commits its audit entry before the
    answer is serialized, and a lock of that transaction would be released then, letting
    every worker serialize one tenant's long tracks at once. A dead process's connection
    closes and frees its slot. All taken: 429 `tenant_busy` with Retry-After, at once, so
    one tenant's long reads hold at most `slots` workers and never queue other tenants."""
    key = heavy_lock_key(tenant_id)
    conn = engine.connect()
    try:
        for slot in range(slots):
            if conn.execute(sql.TRY_HEAVY_SLOT, {"a": HEAVY_LOCK_SPACE + slot, "b": key}).scalar():
                held, conn = conn, None
                return held
    finally:
        if conn is not None:
            conn.close()  # rolls back: nothing held
    raise ApiError(429, f"This tenant already runs {slots} heavy reads (tracks, travel, "
                        "reports) at once; retry when one has finished.", code="tenant_busy",
                   details={"heavy_reads_per_tenant": slots},
                   headers={"Retry-After": str(retry_after)})


def release_heavy_slot(exc=None) -> None:
    """Teardown: the answer is built (and a streamed one sent); give the slot back."""
    conn = g.pop("heavy_slot", None)
    if conn is not None:
        conn.close()


def heavy(fn):
    """Handler decorator (under require_member): the read is heavy, bounded per tenant; its
    slot is held until the request is torn down, after its answer is built."""

    @wraps(fn)
    def wrapper(*args, **kwargs):
        extension = current_app.extensions["govern"]
        config = extension.config
        if config.heavy_reads_per_tenant > 0 and g.get("heavy_slot") is None:
            g.heavy_slot = take_heavy_slot(extension.engine, principal().tenant_id,
                                           config.heavy_reads_per_tenant,
                                           config.retry_after_seconds)
        return fn(*args, **kwargs)

    return wrapper


def init_trusted_proxies(app: Flask, config: Config) -> None:
    if config.trusted_proxy_hops > 0:
        app.wsgi_app = TrustedProxies(app.wsgi_app, config.trusted_proxy_hops,
                                      config.trusted_proxies)


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
