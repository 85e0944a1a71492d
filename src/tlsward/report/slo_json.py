"""JSON over an SLO report: the ``tlsward.slo/1`` object of ``tlsward report slo --json`` and
``GET /api/v1/sli`` (docs/slo.md defines every field)."""

from __future__ import annotations

from typing import Any

from tlsward.model.slo import SLO_SCHEMA, EndpointSli, GroupSli, Share, SloReport, SloVerdict


def report_json(report: SloReport, window: str) -> dict[str, Any]:
    """The ``tlsward.slo/1`` object (docs/slo.md). Percentages are rounded to 4 decimals; the counts beside
    them are exact, for anyone who needs to recompute."""
    met = None if report.target_pct is None or not report.overall.probes else not report.missed
    return {
        "schema": SLO_SCHEMA,
        "window": {"text": window, "seconds": int((report.until - report.since).total_seconds()),
                   "since": report.since.isoformat(), "until": report.until.isoformat()},
        "by": report.by,
        "target_pct": report.target_pct,
        "met": met,
        "overall": _group_json(report.overall),
        "groups": [_group_json(group) for group in report.groups],
    }


def _group_json(group: GroupSli) -> dict[str, Any]:
    return {
        "key": group.key,
        "endpoints": group.endpoints,
        "unprobed_endpoints": group.unprobed_endpoints,
        "probes": group.probes,
        "successes": group.successes,
        "success_pct": _round(group.success_pct),
        "valid_certificate_probes": group.valid_certificate_probes,
        "valid_certificate_pct": _round(group.valid_certificate_pct),
        "versions": [_share_json(share) for share in group.versions],
        "ciphers": [_share_json(share) for share in group.ciphers],
        "latency": {"probes": group.latency.probes, "p50_ms": group.latency.p50_ms,
                    "p95_ms": group.latency.p95_ms},
        "worst_endpoints": [_endpoint_json(endpoint) for endpoint in group.worst_endpoints],
        "slo": _verdict_json(group.slo) if group.slo is not None else None,
    }


def _share_json(share: Share) -> dict[str, Any]:
    return {"name": share.name, "probes": share.probes, "pct": _round(share.pct)}


def _endpoint_json(endpoint: EndpointSli) -> dict[str, Any]:
    return {"target": endpoint.target, "probes": endpoint.probes, "successes": endpoint.successes,
            "success_pct": _round(endpoint.success_pct)}


def _verdict_json(verdict: SloVerdict) -> dict[str, Any]:
    return {"target_pct": verdict.target_pct, "met": verdict.met, "failures": verdict.failures,
            "allowed_failures": _round(verdict.allowed_failures),
            "error_budget_remaining_pct": _round(verdict.budget_remaining_pct)}


def _round(value: float | None) -> float | None:
    return round(value, 4) if value is not None else None
