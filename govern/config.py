"""Configuration, read once from the environment into one object."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, fields
from urllib.parse import urlsplit, urlunsplit

from govern.policy.zones import ZoneLimits

APP_ROLE = "govern_app"


def _int(env: dict, name: str, default: int) -> int:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from exc


def _switch(env: dict, name: str, default: bool) -> bool:
    raw = (env.get(name) or "").strip().lower()
    if not raw:
        return default
    if raw in ("on", "1", "true", "yes"):
        return True
    if raw in ("off", "0", "false", "no"):
        return False
    raise ValueError(f"{name} must be on or off, got {env.get(name)!r}")


def sqlalchemy_url(url: str) -> str:
    """Use the psycopg 3 driver whatever scheme the operator wrote."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def libpq_url(url: str) -> str:
    """The URL as libpq (psycopg.connect, psql) takes it: no SQLAlchemy driver name."""
    from sqlalchemy.engine import make_url

    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def app_url_from(owner_url: str) -> str:
    """The app role's URL: the owner's URL with the user swapped for the app role.

    Good for local clusters with trust or peer auth; production sets APP_DATABASE_URL.
    """
    parts = urlsplit(owner_url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{APP_ROLE}@{host}"))


OSM_TILES = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
OSM_ATTRIBUTION = "© OpenStreetMap contributors"
OSM_COPYRIGHT = "https://www.openstreetmap.org/copyright"


def tile_url_from(raw: str | None) -> str | None:
    """TILE_URL: an http(s) XYZ template with {z}, {x} and {y} ({s} is not supported: the
    Content-Security-Policy names exactly one origin), or "none" for the offline basemap."""
    if raw is None or raw.strip() == "":
        return OSM_TILES
    raw = raw.strip()
    if raw.lower() == "none":
        return None
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc or "{" in parts.netloc \
            or not all(p in raw for p in ("{z}", "{x}", "{y}")):
        raise ValueError("TILE_URL must be an http(s) URL template with {z}, {x} and {y} and a "
                         f"fixed host (or 'none'), got {raw!r}")
    return raw


class NoDatabase(RuntimeError):
    """No database was named, and none can be found."""


def _networks(env: dict, name: str) -> tuple[str, ...]:
    """Comma-separated addresses or CIDR networks, checked at start."""
    out = []
    for raw in env.get(name, "").split(","):
        if raw.strip():
            try:
                out.append(str(ipaddress.ip_network(raw.strip(), strict=False)))
            except ValueError as exc:
                raise ValueError(f"{name}: {raw.strip()!r} is not an address or network") \
                    from exc
    return tuple(out)


INT_SETTINGS = ("max_body_bytes", "max_batch_pings", "max_zone_vertices", "request_due_days",
                "token_touch_seconds", "db_pool_size", "db_statement_timeout_ms",
                "retry_after_seconds", "heavy_reads_per_tenant", "trusted_proxy_hops")


@dataclass(frozen=True)
class Config:
    database_url: str
    app_database_url: str
    log_level: str = "INFO"
    max_body_bytes: int = 2 * 1024 * 1024
    max_batch_pings: int = 1000
    max_zone_vertices: int = 10_000
    zone_limits: ZoneLimits = ZoneLimits()
    request_due_days: int = 30
    token_touch_seconds: int = 60
    db_pool_size: int = 5
    db_statement_timeout_ms: int = 30_000
    retry_after_seconds: int = 5
    rate_limits_enabled: bool = True
    # one transaction for the concurrent device requests of a tenant in a worker process
    # (govern.domain.group); useful with WEB_THREADS above 1
    group_commit: bool = False
    rate_limit: str = "1200 per minute"
    auth_failure_limit: str = "30 per minute"
    redis_url: str | None = None
    metrics_token: str | None = None
    heavy_reads_per_tenant: int = 2
    trusted_proxy_hops: int = 0
    trusted_proxies: tuple[str, ...] = ()
    cors_origins: tuple[str, ...] = ()
    # the console's basemap: an XYZ raster tile URL template, or None for the offline one
    tile_url: str | None = OSM_TILES
    tile_attribution: str = OSM_ATTRIBUTION
    tile_attribution_url: str | None = OSM_COPYRIGHT

    @classmethod
    def from_env(cls, env: dict | None = None, **overrides) -> Config:
        env = dict(os.environ if env is None else env)
        database_url = overrides.pop("database_url", None) or env.get("DATABASE_URL")
        if not database_url:
            raise NoDatabase(
                "DATABASE_URL is not set. `make run` starts a project-local PostGIS and sets it."
            )
        app_url = (
            overrides.pop("app_database_url", None)
            or env.get("APP_DATABASE_URL")
            or app_url_from(database_url)
        )
        default = {f.name: f.default for f in fields(cls)}  # each default written once
        values = dict(
            database_url=sqlalchemy_url(database_url),
            app_database_url=sqlalchemy_url(app_url),
            log_level=env.get("LOG_LEVEL", default["log_level"]).upper(),
            zone_limits=ZoneLimits(**{
                name: _int(env, name.upper(), value)
                for name, value in ZoneLimits().__dict__.items()}),
            rate_limits_enabled=_switch(env, "RATE_LIMITS", default["rate_limits_enabled"]),
            group_commit=_switch(env, "GROUP_COMMIT", default["group_commit"]),
            rate_limit=env.get("RATE_LIMIT", default["rate_limit"]),
            auth_failure_limit=env.get("AUTH_FAILURE_LIMIT", default["auth_failure_limit"]),
            redis_url=env.get("REDIS_URL") or None,
            metrics_token=env.get("METRICS_TOKEN") or None,
            trusted_proxies=_networks(env, "TRUSTED_PROXIES"),
            cors_origins=tuple(o.strip() for o in env.get("CORS_ORIGINS", "").split(",")
                               if o.strip()),
            tile_url=tile_url_from(env.get("TILE_URL")),
            tile_attribution=env.get("TILE_ATTRIBUTION") or default["tile_attribution"],
            tile_attribution_url=env.get("TILE_ATTRIBUTION_URL",
                                         default["tile_attribution_url"]) or None,
        )
        # the whole-number settings, each read from the variable of its name in capitals
        values.update({name: _int(env, name.upper(), default[name]) for name in INT_SETTINGS})
        values.update(overrides)
        return cls(**values)
