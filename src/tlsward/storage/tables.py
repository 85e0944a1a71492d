"""The inventory schema as typed SQLAlchemy 2 ORM classes. Alembic migrations (``migrations/``) create it;
a test checks that these classes and the migrations agree."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {"ix": "ix_%(column_0_label)s", "uq": "uq_%(table_name)s_%(column_0_name)s",
          "ck": "ck_%(table_name)s_%(constraint_name)s", "fk": "fk_%(table_name)s_%(column_0_name)s",
          "pk": "pk_%(table_name)s"}


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Aware UTC datetimes in and out, on SQLite (which stores them naive) and PostgreSQL alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: tlsward stores UTC-aware times only")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        assert isinstance(value, dt.datetime)
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Endpoint(Base):
    __tablename__ = "endpoint"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    target: Mapped[str] = mapped_column(Text, unique=True)
    host: Mapped[str] = mapped_column(Text)
    port: Mapped[int] = mapped_column(Integer)
    scheme: Mapped[str] = mapped_column(String(32))
    sni: Mapped[str | None] = mapped_column(Text)
    connect: Mapped[str | None] = mapped_column(Text)   # address to reach instead of resolving host (0002)
    owner: Mapped[str | None] = mapped_column(Text, index=True)
    team: Mapped[str | None] = mapped_column(Text, index=True)
    environment: Mapped[str | None] = mapped_column(Text)
    tags: Mapped[list[str]] = mapped_column(JSON)
    probe_interval_s: Mapped[int | None] = mapped_column(Integer)
    enabled: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    # The endpoint's current state, kept by the store on every write (0003) so that list filters and the
    # exporter read one row per endpoint instead of searching its history. Plain ids, not foreign keys:
    # observation already points here, and retention may delete what these name.
    last_observation_id: Mapped[int | None] = mapped_column(Integer)
    last_success_id: Mapped[int | None] = mapped_column(Integer)
    last_success: Mapped[bool | None] = mapped_column(Boolean, index=True)
    leaf_sha256: Mapped[str | None] = mapped_column(String(64), index=True)
    leaf_not_after: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), index=True)
    # Where the endpoint is probed from (0009): `tlsward worker --zone NAME` consumes only its zone's probes.
    zone: Mapped[str] = mapped_column(String(63), server_default="default", index=True)


class Certificate(Base):
    __tablename__ = "certificate"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    subject: Mapped[str] = mapped_column(Text)
    issuer: Mapped[str] = mapped_column(Text, index=True)
    serial: Mapped[str] = mapped_column(Text)
    not_before: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    not_after: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
    sans: Mapped[list[str]] = mapped_column(JSON)
    key_type: Mapped[str] = mapped_column(String(32))
    key_bits: Mapped[int] = mapped_column(Integer)
    signature_algorithm: Mapped[str] = mapped_column(Text)
    der: Mapped[bytes] = mapped_column(LargeBinary)


class Sighting(Base):
    """Where a certificate was seen: on an endpoint (at a chain position), in a file, or in a config."""

    __tablename__ = "sighting"
    __table_args__ = (
        UniqueConstraint("certificate_sha256", "source", name="uq_sighting_certificate_source"),
        CheckConstraint("CAST(endpoint_id IS NOT NULL AS INTEGER) + CAST(file_path IS NOT NULL AS INTEGER) "
                        "+ CAST(config_path IS NOT NULL AS INTEGER) = 1",
                        name="one_source"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    certificate_sha256: Mapped[str] = mapped_column(ForeignKey("certificate.sha256", ondelete="CASCADE"))
    endpoint_id: Mapped[int | None] = mapped_column(ForeignKey("endpoint.id", ondelete="CASCADE"), index=True)
    file_path: Mapped[str | None] = mapped_column(Text)
    config_path: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = mapped_column(Text)   # "endpoint:<id>:<position>", "file:<path>", "config:<path>"
    position: Mapped[int | None] = mapped_column(Integer)   # 0 = leaf, in the chain as presented
    first_seen: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    last_seen: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class Observation(Base):
    __tablename__ = "observation"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("endpoint.id", ondelete="CASCADE"))
    observed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    success: Mapped[bool] = mapped_column(Boolean)
    failure_kind: Mapped[str | None] = mapped_column(String(64))
    version: Mapped[str | None] = mapped_column(String(16))
    cipher: Mapped[str | None] = mapped_column(Text)
    handshake_ms: Mapped[float | None] = mapped_column(Float)
    chain: Mapped[list[str]] = mapped_column(JSON)
    finding_ids: Mapped[list[str]] = mapped_column(JSON)
    worst_severity: Mapped[int | None] = mapped_column(Integer)
    probe_id: Mapped[str | None] = mapped_column(String(128), unique=True)
    # Retention (0002): a downsampled row stands for ``samples`` probes of which ``successes`` succeeded, so
    # success rates stay right after history is thinned. ``resolution`` is raw, hour or day.
    samples: Mapped[int] = mapped_column(Integer, server_default="1")
    successes: Mapped[int] = mapped_column(Integer, server_default="0")
    resolution: Mapped[str] = mapped_column(String(8), server_default="raw")
    # Per-phase milliseconds (dns, connect, starttls, handshake) of the probe (0006); NULL before it.
    timings: Mapped[dict[str, float] | None] = mapped_column(JSON)

    __table_args__ = (Index("ix_observation_endpoint_time", "endpoint_id", "observed_at"),
                      Index("ix_observation_resolution_time", "resolution", "observed_at"))


class EndpointFile(Base):
    """A certificate file a server config says an endpoint serves (0002): how "renewed on disk but not
    deployed" is noticed, by comparing this file's leaf with the leaf the endpoint presents."""

    __tablename__ = "endpoint_file"
    __table_args__ = (UniqueConstraint("endpoint_id", "certificate_path", name="uq_endpoint_file_endpoint_path"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("endpoint.id", ondelete="CASCADE"), index=True)
    server: Mapped[str] = mapped_column(String(16))            # nginx, apache, haproxy
    config_path: Mapped[str] = mapped_column(Text)
    config_line: Mapped[int] = mapped_column(Integer)
    certificate_path: Mapped[str] = mapped_column(Text)
    key_path: Mapped[str | None] = mapped_column(Text)
    seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class FileProblem(Base):
    """The latest problem discovery reported for a file (0002); cleared when a later walk finds it fine."""

    __tablename__ = "file_problem"
    __table_args__ = (UniqueConstraint("path", "finding_id", name="uq_file_problem_path_finding"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    path: Mapped[str] = mapped_column(Text, index=True)
    line: Mapped[int | None] = mapped_column(Integer)
    finding_id: Mapped[str] = mapped_column(String(64))
    severity: Mapped[int] = mapped_column(Integer)
    evidence: Mapped[str] = mapped_column(Text)
    seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())



class AlertRow(Base):
    """The monitor's alerts (0004): one row per alert key, firing or resolved; notifications are decided from
    ``stage`` versus ``notified_stage`` and ``last_notified_at``, so a restart neither forgets nor repeats."""

    __tablename__ = "alert"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(255), unique=True)
    rule: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(16), index=True)
    severity: Mapped[int] = mapped_column(Integer)
    route: Mapped[str] = mapped_column(String(16))
    summary: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text)
    fix: Mapped[str] = mapped_column(Text)
    endpoints: Mapped[list[str]] = mapped_column(JSON)
    labels: Mapped[dict[str, str]] = mapped_column(JSON)
    owner: Mapped[str | None] = mapped_column(Text)
    team: Mapped[str | None] = mapped_column(Text)
    stage: Mapped[str] = mapped_column(String(32))
    notified_stage: Mapped[str | None] = mapped_column(String(32))
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    resolved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    last_notified_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    acked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    acked_by: Mapped[str | None] = mapped_column(Text)


class SilenceRow(Base):
    """Silences and maintenance windows (0004): label matchers and a time range."""

    __tablename__ = "silence"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    matchers: Mapped[dict[str, str]] = mapped_column(JSON)
    starts_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
    created_by: Mapped[str] = mapped_column(Text)
    comment: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class ApiTokenRow(Base):
    """API tokens (0005): only the SHA-256 of the secret is stored."""

    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    role: Mapped[int] = mapped_column(Integer)
    secret_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class WebSession(Base):
    """Browser sessions (0005): a random id in an HttpOnly cookie, the token it was opened with, its CSRF token."""

    __tablename__ = "web_session"

    id_sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    token_id: Mapped[int] = mapped_column(ForeignKey("api_token.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class AuditRow(Base):
    """Who changed what (0005): tokens, acks, silences, scans, inventory edits."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
    actor: Mapped[str] = mapped_column(Text)
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(Text)
    detail: Mapped[str] = mapped_column(Text)


class TrustStoreHostRow(Base):
    """A host's newest trust-store snapshot (0007): imported from its ``tlsward.truststores/1`` document, which
    replaces the host's stores as a whole."""

    __tablename__ = "truststore_host"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    host: Mapped[str] = mapped_column(Text, unique=True)
    collected_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    imported_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    searched: Mapped[list[str]] = mapped_column(JSON)


class TrustStoreRow(Base):
    """One trust store on a host (0007); ``store_key`` is the store's id on that host."""

    __tablename__ = "truststore"
    __table_args__ = (UniqueConstraint("host_id", "store_key", name="uq_truststore_host_store_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    host_id: Mapped[int] = mapped_column(ForeignKey("truststore_host.id", ondelete="CASCADE"))
    store_key: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    path: Mapped[str] = mapped_column(Text)
    label: Mapped[str] = mapped_column(Text)
    version: Mapped[str] = mapped_column(Text)
    clients: Mapped[str] = mapped_column(Text)
    root_count: Mapped[int] = mapped_column(Integer)
    modified_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    problem: Mapped[str] = mapped_column(Text)
    notes: Mapped[list[str]] = mapped_column(JSON)


class TrustStoreRootRow(Base):
    """A root in a trust store (0007), in the store's order; the same root in many stores is many rows."""

    __tablename__ = "truststore_root"
    __table_args__ = (Index("ix_truststore_root_store_sha256", "truststore_id", "sha256"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    truststore_id: Mapped[int] = mapped_column(ForeignKey("truststore.id", ondelete="CASCADE"))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    spki_sha256: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(Text)
    not_after: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
    organization: Mapped[str] = mapped_column(Text)


class ClientLogMixRow(Base):
    """Requests per endpoint, hour, protocol and cipher, from access logs (0008); ``protocol`` "" is plain HTTP.
    Ingest adds to ``requests`` (upsert), in the transaction that moves the sources' checkpoints."""

    __tablename__ = "clientlog_mix"

    endpoint: Mapped[str] = mapped_column(Text, primary_key=True)
    bucket_start: Mapped[dt.datetime] = mapped_column(UTCDateTime(), primary_key=True, index=True)
    protocol: Mapped[str] = mapped_column(String(16), primary_key=True)
    cipher: Mapped[str] = mapped_column(String(128), primary_key=True)
    requests: Mapped[int] = mapped_column(BigInteger)


class ClientLogClientRow(Base):
    """Who made the non-TLS-1.3 requests of a mix row (0008): user agent and /24 or /48 network; at most the top
    K per (endpoint, bucket, protocol, cipher) plus one row with network "*" for all the others."""

    __tablename__ = "clientlog_client"

    endpoint: Mapped[str] = mapped_column(Text, primary_key=True)
    bucket_start: Mapped[dt.datetime] = mapped_column(UTCDateTime(), primary_key=True, index=True)
    protocol: Mapped[str] = mapped_column(String(16), primary_key=True)
    cipher: Mapped[str] = mapped_column(String(128), primary_key=True)
    network: Mapped[str] = mapped_column(Text, primary_key=True)
    user_agent: Mapped[str] = mapped_column(Text, primary_key=True)
    requests: Mapped[int] = mapped_column(BigInteger)


class ClientLogMalformedRow(Base):
    """Lines of a log source no parser understood (0008): how many, and the first few as [line, text] pairs."""

    __tablename__ = "clientlog_malformed"

    source: Mapped[str] = mapped_column(Text, primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger)
    samples: Mapped[list[list[Any]]] = mapped_column(JSON)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class ClientLogCheckpointRow(Base):
    """How far a log file was ingested (0008): written in the transaction that adds its lines' counts."""

    __tablename__ = "clientlog_checkpoint"

    source: Mapped[str] = mapped_column(Text, primary_key=True)
    inode: Mapped[int] = mapped_column(BigInteger)
    offset: Mapped[int] = mapped_column(BigInteger)
    line: Mapped[int] = mapped_column(BigInteger)
    fingerprint: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class ProbeWorkerRow(Base):
    """A distributed probe worker's heartbeat (0009): written every few seconds by the worker itself, so that
    ``tlsward workers``, the metrics and the scheduler see which zones have live workers."""

    __tablename__ = "probe_worker"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    zone: Mapped[str] = mapped_column(String(63), index=True)
    hostname: Mapped[str] = mapped_column(Text)
    pid: Mapped[int] = mapped_column(Integer)
    concurrency: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    last_seen: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
    probes: Mapped[int] = mapped_column(BigInteger, server_default="0")
    failures: Mapped[int] = mapped_column(BigInteger, server_default="0")
    stopped_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class ProbeZoneRow(Base):
    """What the active distributed scheduler last saw of a zone (0009): queue depth, probes pending and
    outstanding, lag, counters; rewritten every few seconds."""

    __tablename__ = "probe_zone"

    zone: Mapped[str] = mapped_column(String(63), primary_key=True)
    endpoints: Mapped[int] = mapped_column(Integer)
    workers: Mapped[int] = mapped_column(Integer)
    slots: Mapped[int] = mapped_column(Integer)
    queue_depth: Mapped[int] = mapped_column(Integer)
    pending: Mapped[int] = mapped_column(Integer)
    outstanding: Mapped[int] = mapped_column(Integer)
    oldest_due_s: Mapped[float] = mapped_column(Float)
    lag_p50_s: Mapped[float] = mapped_column(Float)
    lag_p95_s: Mapped[float] = mapped_column(Float)
    enqueued: Mapped[int] = mapped_column(BigInteger)
    done: Mapped[int] = mapped_column(BigInteger)
    resent: Mapped[int] = mapped_column(BigInteger)
    abandoned: Mapped[int] = mapped_column(BigInteger)
    down_since: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class SchedulerLeaseRow(Base):
    """The distributed scheduler's lease (0009): one holder at a time enqueues probes; a standby takes over once
    ``expires_at`` (database time) has passed without a renewal."""

    __tablename__ = "scheduler_lease"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(Text)
    acquired_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


# --- Internal CA (migration 0010) ---


class CaAuthorityRow(Base):
    """An internal CA's intermediate (0010) and its current CRL: the number only grows, and every process (the CLI
    that revokes, ``serve`` that publishes) reads the same signed CRL from here."""

    __tablename__ = "ca_authority"

    key_id: Mapped[str] = mapped_column(String(64), primary_key=True)   # hex SHA-1 of the intermediate's key
    name: Mapped[str] = mapped_column(Text)
    subject: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    crl_number: Mapped[int] = mapped_column(BigInteger)
    crl_this_update: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    crl_next_update: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    crl_der: Mapped[bytes | None] = mapped_column(LargeBinary)


class CaCertificateRow(Base):
    """A certificate the internal CA issued (0010), revoked in place. Serials are hex text: they are up to 159
    bits, more than any integer column holds.

    Few indexes on purpose: every issuance commits one row, and each index is one more page written per commit
    (a random one for a random key). The primary key (authority, serial) serves OCSP, revocation, status and
    ``ca renew`` (``--cert`` reads the serial from the file); the CRL's query uses a partial index that holds the
    revoked rows only (an issuance does not touch it). ``ca list`` (unexpired, newest first) scans, and so does
    :meth:`CaStore.find` by fingerprint (tools and tests; nothing on a hot path)."""

    __tablename__ = "ca_certificate"

    authority: Mapped[str] = mapped_column(String(64), ForeignKey("ca_authority.key_id"), primary_key=True)
    serial: Mapped[str] = mapped_column(String(40), primary_key=True)
    subject: Mapped[str] = mapped_column(Text)
    names: Mapped[list[str]] = mapped_column(JSON)
    profile: Mapped[str] = mapped_column(String(16))
    key_type: Mapped[str] = mapped_column(String(32))
    not_before: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    not_after: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    issued_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    requester: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    der: Mapped[bytes] = mapped_column(LargeBinary)
    replaces: Mapped[str | None] = mapped_column(String(40))
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    revocation_reason: Mapped[str | None] = mapped_column(String(32))


Index("ix_ca_certificate_revoked_at", CaCertificateRow.revoked_at,
      sqlite_where=CaCertificateRow.revoked_at.is_not(None), postgresql_where=CaCertificateRow.revoked_at.is_not(None))


# --- ACME server (migration 0011) ---


class AcmeAccountRow(Base):
    """An ACME account (0011): one per key (the RFC 7638 thumbprint is unique), the key itself as a JWK."""

    __tablename__ = "acme_account"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    jwk: Mapped[str] = mapped_column(Text)
    thumbprint: Mapped[str] = mapped_column(String(64), unique=True)
    status: Mapped[str] = mapped_column(String(16))
    contact: Mapped[list[str]] = mapped_column(JSON)
    eab_kid: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class AcmeOrderRow(Base):
    """An ACME order (0011); identifiers and authorization ids as JSON lists, in the order the client gave."""

    __tablename__ = "acme_order"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(32), ForeignKey("acme_account.id", ondelete="CASCADE"),
                                            index=True)
    status: Mapped[str] = mapped_column(String(16))
    identifiers: Mapped[list[list[str]]] = mapped_column(JSON)
    authz_ids: Mapped[list[str]] = mapped_column(JSON)
    expires: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    not_before: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    not_after: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    certificate_id: Mapped[str | None] = mapped_column(String(32))
    error: Mapped[str | None] = mapped_column(Text)
    replaces: Mapped[str | None] = mapped_column(String(255), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class AcmeAuthorizationRow(Base):
    """An ACME authorization (0011): one identifier of one order."""

    __tablename__ = "acme_authorization"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(32))
    order_id: Mapped[str] = mapped_column(String(32), ForeignKey("acme_order.id", ondelete="CASCADE"), index=True)
    identifier_type: Mapped[str] = mapped_column(String(8))
    identifier_value: Mapped[str] = mapped_column(Text)
    wildcard: Mapped[bool] = mapped_column(Boolean)
    status: Mapped[str] = mapped_column(String(16))
    expires: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class AcmeChallengeRow(Base):
    """An ACME challenge (0011); ``position`` keeps the order the server offered them in."""

    __tablename__ = "acme_challenge"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    authz_id: Mapped[str] = mapped_column(String(32), ForeignKey("acme_authorization.id", ondelete="CASCADE"),
                                          index=True)
    position: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(16))
    token: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    validated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    error: Mapped[str | None] = mapped_column(Text)


class AcmeCertificateRow(Base):
    """A certificate issued through ACME (0011): the full chain as downloaded, and its revocation."""

    __tablename__ = "acme_certificate"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(32), index=True)
    order_id: Mapped[str] = mapped_column(String(32))
    serial: Mapped[str] = mapped_column(String(64), unique=True)
    aki: Mapped[str] = mapped_column(String(128))
    fullchain_pem: Mapped[str] = mapped_column(Text)
    not_before: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    not_after: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    identifiers: Mapped[list[list[str]]] = mapped_column(JSON)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    revocation_reason: Mapped[int | None] = mapped_column(Integer)


class AcmeEabKeyRow(Base):
    """An External Account Binding key (0011): handed out once, bound to at most one account."""

    __tablename__ = "acme_eab_key"

    kid: Mapped[str] = mapped_column(String(128), primary_key=True)
    hmac_key: Mapped[bytes] = mapped_column(LargeBinary)
    label: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    account_id: Mapped[str | None] = mapped_column(String(32))


# --- Certificate lifecycle (migration 0012) ---


class CertificateRenewalRow(Base):
    """One renewal/deploy attempt of a managed certificate (0012): old and new fingerprint, the outcome
    (verified, deployed, rolled_back, failed), the reason and per-step timings; the monitor alerts from the newest
    row of each certificate."""

    __tablename__ = "certificate_renewal"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    certificate: Mapped[str] = mapped_column(String(255), index=True)
    source: Mapped[str] = mapped_column(String(16))
    outcome: Mapped[str] = mapped_column(String(16), index=True)
    reason: Mapped[str] = mapped_column(Text)
    old_sha256: Mapped[str | None] = mapped_column(String(64))
    new_sha256: Mapped[str | None] = mapped_column(String(64))
    new_not_after: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    endpoints: Mapped[list[str]] = mapped_column(JSON)
    steps: Mapped[list[list[Any]]] = mapped_column(JSON)
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
    finished_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
