"""JSON of a "what breaks if" answer (``tlsward impact --json`` and ``/api/v1/impact``): schema
``tlsward.impact/1``, documented in docs/logs.md."""

from __future__ import annotations

from typing import Any

from tlsward.model.clientlogs import ImpactReport

__all__ = ["IMPACT_SCHEMA", "impact_json"]

IMPACT_SCHEMA = "tlsward.impact/1"


def impact_json(report: ImpactReport) -> dict[str, Any]:
    return {
        "schema": IMPACT_SCHEMA, "endpoint": report.endpoint, "policy": report.policy,
        "since": report.since.isoformat(), "until": report.until.isoformat(), "requests": report.requests,
        "failing": report.failing, "share": round(report.share, 6),
        "by_reason": [{"reason": reason, "requests": n} for reason, n in report.by_reason],
        "clients": [{"user_agent": c.user_agent, "network": c.network, "protocol": c.protocol, "cipher": c.cipher,
                     "requests": c.requests, "reason": c.reason} for c in report.clients],
    }
