"""Alert rules: from what the inventory knows about one endpoint to the alerts it contributes to.

Pure functions of an :class:`EndpointWatch` and the settings. Certificate alerts are keyed by the leaf's
fingerprint, so every endpoint serving that certificate contributes to one alert, and only a genuinely different
certificate starts a new one; endpoint alerts are keyed by the endpoint.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from tlsward.model.alerts import Route
from tlsward.model.findings import FINDING_CATALOGUE, Severity
from tlsward.model.inventory import EndpointRecord
from tlsward.model.lifecycle import RenewalEvent
from tlsward.model.monitor import AlertSettings, EndpointWatch, ExpiryAlerts

EXPIRED = "expired"
# Findings only a deep scan can establish (a quick probe sees one negotiated version and suite): they stand
# from one deep scan to the next, so a quick probe in between neither raises nor resolves them.
DEEP_ONLY = ("protocol.", "cipher.", "group.", "reneg.", "fallback_scsv.", "compression.", "policy.")


@dataclass(frozen=True, slots=True)
class Contribution:
    """One endpoint's part of one alert."""

    key: str
    rule: str
    severity: Severity
    route: Route
    stage: str
    stage_rank: int                      # higher = worse; a rise re-notifies
    summary: str
    description: str
    fix: str
    endpoint: str
    owner: str | None
    team: str | None
    environment: str | None
    runbook: str = ""                    # the finding id whose runbook applies (default: the rule itself)


def expiry_stage(days_left: float, lifetime_days: float, expiry: ExpiryAlerts) -> int | None:
    """Index of the deepest threshold crossed (capped by the lifetime: a third for the first threshold, a
    twelfth for the last, a quarter between); ``len(thresholds)`` once expired; None when none is crossed."""
    if days_left <= 0:
        return len(expiry.thresholds)
    count = len(expiry.thresholds)
    crossed = None
    for index, days in enumerate(expiry.thresholds):
        share = 1 / 3 if index == 0 else 1 / 12 if index == count - 1 else 1 / 4
        if days_left <= min(days, lifetime_days * share):
            crossed = index
    return crossed


def _stage_name(index: int, expiry: ExpiryAlerts) -> str:
    return EXPIRED if index >= len(expiry.thresholds) else f"{expiry.thresholds[index]:g}d"


def _days(value: float) -> str:
    return f"{value:.1f} days" if abs(value) < 3 else f"{value:.0f} days"


def contributions(watch: EndpointWatch, settings: AlertSettings, now: dt.datetime,
                  evidence: Mapping[str, str] | None = None) -> list[Contribution]:
    """Every alert this endpoint takes part in right now. ``evidence``: finding id -> what the newest probe
    saw (the monitor keeps it from its own probes; history stores only ids)."""
    record = watch.endpoint
    if not record.enabled:
        return []
    found: list[Contribution] = []
    if watch.chain:
        found.extend(_expiry(watch, settings.expiry, now))
    if watch.consecutive_failures >= settings.failing_after:
        reason = watch.failure_kind or "unknown"
        found.append(Contribution(
            key=f"probe.failing:{record.target}", rule="probe.failing", severity=Severity.CRITICAL,
            route=settings.failing_route, stage="failing", stage_rank=1,
            summary=f"{record.target}: TLS handshake failing ({reason}), {watch.consecutive_failures} probes in a row",
            description=f"The last {watch.consecutive_failures} probes of {record.target} failed; the newest "
                        f"failure: {reason} (findings: {', '.join(watch.finding_ids) or 'none'}).",
            fix=f"Run `tlsward scan {record.target}` for the diagnosis and the exact fix.",
            runbook=next((f for f in watch.finding_ids if f.startswith(("conn.", "starttls."))), ""), **_who(record)))
    if watch.chain and watch.previous_leaf is not None and watch.previous_leaf.issuer != watch.chain[0].issuer:
        leaf = watch.chain[0]
        found.append(Contribution(
            key=f"chain.changed:{record.target}:{leaf.sha256}", rule="chain.changed", severity=Severity.MEDIUM,
            route=Route.TICKET, stage="changed", stage_rank=1,
            summary=f"{record.target}: certificate issuer changed to {leaf.issuer}",
            description=f"{record.target} now serves {leaf.subject} issued by {leaf.issuer}; before "
                        f"{watch.previous_leaf_until:%Y-%m-%d %H:%M} UTC it served {watch.previous_leaf.subject} "
                        f"issued by {watch.previous_leaf.issuer}. Unexpected issuer changes break pinned clients "
                        "and trust stores that lack the new CA.",
            fix="Confirm the change was planned (CA migration); if not, redeploy the intended certificate.",
            **_who(record)))
    if watch.success:
        present = set(watch.finding_ids) | {f for f in watch.deep_finding_ids if f.startswith(DEEP_ONLY)}
        for finding_id, route in settings.finding_routes:
            if finding_id in present:
                spec = FINDING_CATALOGUE[finding_id]
                found.append(Contribution(
                    key=f"{finding_id}:{record.target}", rule=finding_id, severity=spec.severity, route=route,
                    stage="present", stage_rank=1, summary=f"{record.target}: {spec.title}",
                    description=f"The newest probe of {record.target} reports {finding_id}: "
                                f"{(evidence or {}).get(finding_id) or spec.title}.",
                    fix=f"See docs/findings.md#{finding_id.replace('.', '')}; `tlsward scan {record.target}` shows "
                        "the evidence and the fix.", **_who(record)))
    return found


def _who(record: EndpointRecord) -> dict[str, Any]:
    return {"endpoint": record.target, "owner": record.owner, "team": record.team,
            "environment": record.environment}


def _expiry(watch: EndpointWatch, expiry: ExpiryAlerts, now: dt.datetime) -> list[Contribution]:
    leaf = watch.chain[0]
    first = min(watch.chain, key=lambda cert: cert.not_after)
    days_left = (first.not_after - now).total_seconds() / 86400
    lifetime = (leaf.not_after - leaf.not_before).total_seconds() / 86400
    index = expiry_stage(days_left, lifetime, expiry)
    if index is None:
        return []
    stage = _stage_name(index, expiry)
    route = Route.PAGE if index >= len(expiry.thresholds) else expiry.routes[index]
    last = len(expiry.thresholds) - 1
    severity = (Severity.CRITICAL if index >= last else Severity.HIGH if index == last - 1 else Severity.MEDIUM)
    via = "" if first.sha256 == leaf.sha256 else \
        f" because the chain's {first.subject} (issued by {first.issuer}) expires before the leaf"
    when = f"{first.not_after:%Y-%m-%d %H:%M} UTC"
    if days_left <= 0:
        summary = f"Certificate {leaf.subject} has EXPIRED ({when}){via}"
    else:
        summary = f"Certificate {leaf.subject} expires in {_days(days_left)} ({when}){via}"
    return [Contribution(
        key=f"cert.expiring:{leaf.sha256}", rule="cert.expiring", severity=severity, route=route, stage=stage,
        stage_rank=index + 1, summary=summary,
        description=f"{leaf.subject}, issued by {leaf.issuer} (sha256 {leaf.sha256[:16]}...), is served by the "
                    f"endpoints listed; the chain stops being valid on {when}{via}. Threshold crossed: {stage}.",
        fix="Renew and deploy the certificate (then reload the server); `tlsward inventory cert "
            f"{leaf.sha256[:16]}` lists every place it is served from.", **_who(watch.endpoint))]


# Alert rules raised from the managed-certificate history (tlsward.lifecycle), not from probes.
LIFECYCLE_RULES = ("cert.deploy_failed", "cert.renewal_failed")


def lifecycle_contributions(events: Iterable[RenewalEvent]) -> list[Contribution]:
    """One alert per managed certificate whose newest renewal attempt failed (``events``: the newest per
    certificate). A later successful run drops the contribution, which resolves the alert. A rollback that
    restored service is a ticket (the old certificate still expires); one that did not, or a deploy that could
    not be undone, pages."""
    found: list[Contribution] = []
    for event in events:
        if event.outcome.ok:
            continue
        rule = "cert.deploy_failed" if event.stage == "deploy" else "cert.renewal_failed"
        broken = "FAILED" in event.reason or "NOT served" in event.reason
        what = {"rolled_back": "deploy rolled back", "failed": "renewal failed"}.get(str(event.outcome),
                                                                                    str(event.outcome))
        old = f" The previous certificate ({event.old_sha256[:16]}...) stays deployed." if event.old_sha256 and \
            not broken else ""
        for endpoint in event.endpoints or (f"certificate {event.certificate}",):
            found.append(Contribution(
                key=f"{rule}:{event.certificate}", rule=rule,
                severity=Severity.CRITICAL if broken else Severity.HIGH,
                route=Route.PAGE if broken else Route.TICKET, stage="failed", stage_rank=2 if broken else 1,
                summary=f"Managed certificate {event.certificate}: {what} ({event.finished_at:%Y-%m-%d %H:%M} UTC)",
                description=f"The renewal run of {event.certificate} ({event.source}) at "
                            f"{event.started_at:%Y-%m-%d %H:%M} UTC ended {event.outcome}: {event.reason}.{old}",
                fix=f"Fix the cause above, then `tlsward renew {event.certificate} --force`; `tlsward cert list` "
                    "shows the last outcome of each certificate (docs/lifecycle.md).",
                endpoint=endpoint, owner=None, team=None, environment=None))
    return found
