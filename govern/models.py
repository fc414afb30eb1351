"""Tables. Every tenant table carries tenant_id and puts it first in every key (Citus rules)."""

from __future__ import annotations

import datetime as dt
import uuid

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKeyConstraint,
    Identity,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

ROLES = ("owner", "admin", "analyst", "dispatcher", "auditor")


class Base(DeclarativeBase):
    pass


def _uuid_pk() -> Mapped[uuid.UUID]:
    return mapped_column(UUID(as_uuid=True), primary_key=True, default=uuid.uuid4)


def _tenant_pk() -> Mapped[uuid.UUID]:
    return mapped_column(UUID(as_uuid=True), primary_key=True)


def _now() -> Mapped[dt.datetime]:
    return mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())


class Tenant(Base):
    __tablename__ = "tenants"
    tenant_id: Mapped[uuid.UUID] = _uuid_pk()
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    created_at: Mapped[dt.datetime] = _now()


class Member(Base):
    __tablename__ = "members"
    tenant_id: Mapped[uuid.UUID] = _tenant_pk()
    member_id: Mapped[uuid.UUID] = _uuid_pk()
    email: Mapped[str] = mapped_column(String(320), nullable=False)
    display_name: Mapped[str | None] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20), nullable=False)
    created_at: Mapped[dt.datetime] = _now()
    removed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.tenant_id"], ondelete="CASCADE"),
        CheckConstraint(f"role IN {ROLES!r}", name="members_role_valid"),
        Index(
            "members_active_email",
            "tenant_id",
            func.lower("email"),
            unique=True,
            postgresql_where="removed_at IS NULL",
        ),
    )


class Subject(Base):
    """A tracked person. Devices belong to a subject; consent is the subject's."""

    __tablename__ = "subjects"
    tenant_id: Mapped[uuid.UUID] = _tenant_pk()
    subject_id: Mapped[uuid.UUID] = _uuid_pk()
    external_ref: Mapped[str] = mapped_column(String(200), nullable=False)
    display_name: Mapped[str | None] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64), nullable=False, default="UTC")
    collection_windows: Mapped[list | None] = mapped_column(JSONB(none_as_null=True))
    collection_blocked: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    blocked_reason: Mapped[str | None] = mapped_column(Text)
    on_duty: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    duty_changed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[dt.datetime] = _now()
    erased_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.tenant_id"], ondelete="CASCADE"),
        UniqueConstraint("tenant_id", "external_ref", name="subjects_external_ref_unique"),
    )


class Device(Base):
    __tablename__ = "devices"
    tenant_id: Mapped[uuid.UUID] = _tenant_pk()
    device_id: Mapped[uuid.UUID] = _uuid_pk()
    subject_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    identifier: Mapped[str] = mapped_column(String(100), nullable=False)
    name: Mapped[str | None] = mapped_column(String(200))
    platform: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[dt.datetime] = _now()
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    last_seen_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "subject_id"], ["subjects.tenant_id", "subjects.subject_id"]
        ),
        UniqueConstraint("tenant_id", "identifier", name="devices_identifier_unique"),
    )


class ApiToken(Base):
    """A bearer token. Only its SHA-256 is kept; the secret is shown once at creation."""

    __tablename__ = "api_tokens"
    tenant_id: Mapped[uuid.UUID] = _tenant_pk()
    token_id: Mapped[uuid.UUID] = _uuid_pk()
    kind: Mapped[str] = mapped_column(String(10), nullable=False)
    member_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    device_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    name: Mapped[str] = mapped_column(String(200), nullable=False, default="")
    token_hash: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    hint: Mapped[str] = mapped_column(String(16), nullable=False)
    created_at: Mapped[dt.datetime] = _now()
    expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.tenant_id"], ondelete="CASCADE"),
        ForeignKeyConstraint(
            ["tenant_id", "member_id"], ["members.tenant_id", "members.member_id"]
        ),
        ForeignKeyConstraint(
            ["tenant_id", "device_id"], ["devices.tenant_id", "devices.device_id"]
        ),
        UniqueConstraint("tenant_id", "token_hash", name="api_tokens_hash_unique"),
        CheckConstraint("kind IN ('member', 'device')", name="api_tokens_kind_valid"),
        CheckConstraint(
            "(kind = 'member' AND member_id IS NOT NULL AND device_id IS NULL)"
            " OR (kind = 'device' AND device_id IS NOT NULL AND member_id IS NULL)",
            name="api_tokens_owner_matches_kind",
        ),
    )


class AuditEntry(Base):
    """Append-only, hash-chained per tenant by a database trigger (seq, prev_hash, hash)."""

    __tablename__ = "audit_log"
    tenant_id: Mapped[uuid.UUID] = _tenant_pk()
    seq: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    at: Mapped[dt.datetime] = _now()
    actor_kind: Mapped[str] = mapped_column(String(10), nullable=False)
    actor_id: Mapped[str | None] = mapped_column(Text)
    action: Mapped[str] = mapped_column(String(80), nullable=False)
    target_type: Mapped[str | None] = mapped_column(String(40))
    target_id: Mapped[str | None] = mapped_column(Text)
    subject_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    request_id: Mapped[str | None] = mapped_column(String(100))
    details: Mapped[dict] = mapped_column(JSONB, nullable=False, default=dict)
    prev_hash: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.tenant_id"], ondelete="CASCADE"),
        Index("audit_log_at", "tenant_id", "at"),
        Index("audit_log_subject", "tenant_id", "subject_id",
              postgresql_where="subject_id IS NOT NULL"),
    )


class Purpose(Base):
    """Why location is processed. `bit` is the purpose's place in a ping's purpose mask."""

    __tablename__ = "purposes"
    tenant_id: Mapped[uuid.UUID] = _tenant_pk()
    purpose_id: Mapped[uuid.UUID] = _uuid_pk()
    bit: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    key: Mapped[str] = mapped_column(String(64), nullable=False)
    title: Mapped[str] = mapped_column(String(200), nullable=False)
    description: Mapped[str] = mapped_column(Text, nullable=False, default="")
    requires_consent: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    precision_m: Mapped[int] = mapped_column(Integer, nullable=False)
    retention_days: Mapped[int] = mapped_column(Integer, nullable=False)
    individual_access: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    aggregate_use: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    reader_roles: Mapped[list[str]] = mapped_column(ARRAY(String(20)), nullable=False,
                                                    default=list)
    created_at: Mapped[dt.datetime] = _now()
    updated_at: Mapped[dt.datetime] = _now()
    archived_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # see govern.policy.cutoffs: cut-offs earlier settings put in force, never moved back
    window_floor: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    individual_since: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.tenant_id"], ondelete="CASCADE"),
        UniqueConstraint("tenant_id", "key", name="purposes_key_unique"),
        UniqueConstraint("tenant_id", "bit", name="purposes_bit_unique"),
    )


class ConsentEvent(Base):
    """One line of the append-only consent ledger."""

    __tablename__ = "consent_events"
    tenant_id: Mapped[uuid.UUID] = _tenant_pk()
    event_id: Mapped[uuid.UUID] = _uuid_pk()
    seq: Mapped[int] = mapped_column(BigInteger, Identity(always=True), nullable=False)
    subject_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    purpose_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    status: Mapped[str] = mapped_column(String(10), nullable=False)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    recorded_at: Mapped[dt.datetime] = _now()
    policy_version: Mapped[str] = mapped_column(String(100), nullable=False)
    source: Mapped[str] = mapped_column(String(10), nullable=False)
    actor_id: Mapped[str] = mapped_column(Text, nullable=False)
    evidence: Mapped[dict] = mapped_column(JSONB, nullable=False, default=dict)
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "subject_id"], ["subjects.tenant_id", "subjects.subject_id"]
        ),
        ForeignKeyConstraint(
            ["tenant_id", "purpose_id"], ["purposes.tenant_id", "purposes.purpose_id"]
        ),
    )


class PolicyVersion(Base):
    __tablename__ = "policy_versions"
    tenant_id: Mapped[uuid.UUID] = _tenant_pk()
    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    policy: Mapped[dict] = mapped_column(JSONB, nullable=False)
    changed: Mapped[list] = mapped_column(JSONB, nullable=False, default=list)
    created_at: Mapped[dt.datetime] = _now()
    created_by: Mapped[str] = mapped_column(Text, nullable=False)
    __table_args__ = (
        ForeignKeyConstraint(["tenant_id"], ["tenants.tenant_id"], ondelete="CASCADE"),
    )


class Zone(Base):
    """A privacy zone: nothing recorded inside it is kept. Tenant-wide or for one subject."""

    __tablename__ = "zones"
    tenant_id: Mapped[uuid.UUID] = _tenant_pk()
    zone_id: Mapped[uuid.UUID] = _uuid_pk()
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    subject_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    geometry: Mapped[dict] = mapped_column(JSONB, nullable=False)
    radius_m: Mapped[float | None] = mapped_column(Float)
    drawn = mapped_column(Geometry("MULTIPOLYGON", srid=4326, spatial_index=False),
                          nullable=False)  # what it protects, as drawn
    area = mapped_column(Geometry("MULTIPOLYGON", srid=4326, spatial_index=False),
                         nullable=False)  # the hidden region (govern.policy.zones)
    reach = mapped_column(Geometry("MULTIPOLYGON", srid=4326, spatial_index=False),
                          nullable=False)  # area grown by trim_m
    trim_m: Mapped[float] = mapped_column(Float, nullable=False, default=0.0)
    salt: Mapped[str] = mapped_column(Text, nullable=False)  # secret: never returned
    hiding: Mapped[str] = mapped_column(Text, nullable=False, default="offset")
    vertices: Mapped[int] = mapped_column(Integer, nullable=False)
    scale_m: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[dt.datetime] = _now()
    created_by: Mapped[str] = mapped_column(Text, nullable=False)
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "subject_id"], ["subjects.tenant_id", "subjects.subject_id"]
        ),
    )
