"""JSON over inventory records: one endpoint line of ``tlsward inventory list --json`` (also the items of
``GET /api/v1/endpoints``), certificates with their days left, and stored observations. Shared by the CLI and
the web API so that both print the same fields; times are ``datetime.isoformat()`` (UTC offset included)."""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

from tlsward.model.inventory import CertificateRecord, EndpointRecord, EndpointSummary, ObservationRecord


def summary_json(row: EndpointSummary, now: dt.datetime) -> dict[str, Any]:
    """One line of ``inventory list --json``: the endpoint, its newest observation and its last leaf."""
    record = row.endpoint
    return {
        "target": record.target, "sni": record.sni, "connect": record.connect, "owner": record.owner,
        "team": record.team, "environment": record.environment,
        "tags": list(record.tags), "enabled": record.enabled,
        "last_observation": None if row.observed_at is None else {
            "time": row.observed_at.isoformat(), "success": row.success, "failure_kind": row.failure_kind,
            "version": row.version, "cipher": row.cipher, "findings": list(row.finding_ids),
            "worst_finding": row.finding_ids[0] if row.finding_ids else None,
            "worst_severity": row.worst_severity.name.lower() if row.worst_severity is not None else None},
        "leaf": None if row.leaf_not_after is None else {
            "sha256": row.leaf_sha256, "subject": row.leaf_subject, "issuer": row.leaf_issuer,
            "not_after": row.leaf_not_after.isoformat(),
            "days_left": round((row.leaf_not_after - now).total_seconds() / 86400, 2)},
    }


def summary_of(record: EndpointRecord, latest: ObservationRecord | None,
               leaf: CertificateRecord | None) -> EndpointSummary:
    """The list line of one endpoint from its full records (what ``endpoint_summaries`` reads in one query)."""
    return EndpointSummary(
        endpoint=record, observed_at=latest.observed_at if latest else None,
        success=latest.success if latest else None, failure_kind=latest.failure_kind if latest else None,
        version=latest.version if latest else None, cipher=latest.cipher if latest else None,
        finding_ids=latest.finding_ids if latest else (), worst_severity=latest.worst_severity if latest else None,
        leaf_sha256=leaf.sha256 if leaf else None, leaf_subject=leaf.subject if leaf else None,
        leaf_issuer=leaf.issuer if leaf else None, leaf_not_after=leaf.not_after if leaf else None)


def endpoint_json(record: EndpointRecord) -> dict[str, Any]:
    """The fields a list line leaves out: how the endpoint is reached and when it was added."""
    return {"host": record.host, "port": record.port, "scheme": record.scheme,
            "probe_interval_s": record.probe_interval_s,
            "created_at": record.created_at.isoformat() if record.created_at else None,
            "updated_at": record.updated_at.isoformat() if record.updated_at else None}


def certificate_json(cert: CertificateRecord, now: dt.datetime) -> dict[str, Any]:
    """A stored certificate, with its days left at ``now`` and its PEM when the DER was kept."""
    pem = None
    if cert.der:
        body = base64.encodebytes(cert.der).decode("ascii").replace("\n", "")
        pem = "-----BEGIN CERTIFICATE-----\n" + "\n".join(body[i:i + 64] for i in range(0, len(body), 64)) + \
            "\n-----END CERTIFICATE-----\n"
    return {"sha256": cert.sha256, "subject": cert.subject, "issuer": cert.issuer, "serial": cert.serial,
            "not_before": cert.not_before.isoformat(), "not_after": cert.not_after.isoformat(),
            "days_left": round(cert.days_left(now), 2), "sans": list(cert.sans), "key_type": cert.key_type,
            "key_bits": cert.key_bits, "signature_algorithm": cert.signature_algorithm, "pem": pem}


def observation_json(row: ObservationRecord) -> dict[str, Any]:
    """One stored observation (a probe, or several folded by retention: ``samples``/``successes``)."""
    return {"id": row.id, "target": row.target, "observed_at": row.observed_at.isoformat(),
            "success": row.success, "failure_kind": row.failure_kind, "version": row.version,
            "cipher": row.cipher, "handshake_ms": row.handshake_ms, "chain": list(row.chain),
            "finding_ids": list(row.finding_ids),
            "worst_severity": row.worst_severity.name.lower() if row.worst_severity is not None else None,
            "probe_id": row.probe_id, "samples": row.samples, "successes": row.successes,
            "resolution": row.resolution}
