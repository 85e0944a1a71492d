"""``/oncall``: what needs a person now. Firing alerts grouped by the certificate they are about (one renewal
fixes a whole group), with acknowledge and silence buttons for operators; endpoints whose newest probe failed,
with the reason, the findings (linked to their documentation) and the fix; and what changed in the last 24
hours: leaves that changed, alerts that started or resolved.

Acknowledging and silencing are HTML forms: ``POST /oncall/ack`` and ``POST /oncall/silence`` carry the
session's CSRF token, need the operator role, and are written to the audit log."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from tlsward.model.access import Principal, Role
from tlsward.model.alerts import AlertRecord, AlertStatus
from tlsward.model.dashboards import InventoryQuery
from tlsward.model.findings import FINDING_CATALOGUE, Severity
from tlsward.model.inventory import CertificateRecord
from tlsward.model.monitor import Silence
from tlsward.storage.access import AccessStore
from tlsward.storage.alerts import AlertStore
from tlsward.storage.dashboards import (
    alert_changes,
    certificates_by_sha,
    current_leaves,
    inventory_page,
    leaf_changes,
)
from tlsward.storage.workers import DistributedStore
from tlsward.web.app import render
from tlsward.web.auth import check_csrf, operator, store_of, viewer
from tlsward.web.problems import Problem
from tlsward.web.views.common import PageRoute, now, rollups_of
from tlsward.web.views.findings import finding_doc, inline

CHANGES_WINDOW = dt.timedelta(hours=24)
FAILING_SHOWN = 100
SILENCE_DURATIONS = {"1h": dt.timedelta(hours=1), "4h": dt.timedelta(hours=4), "12h": dt.timedelta(hours=12),
                     "1d": dt.timedelta(days=1), "3d": dt.timedelta(days=3), "7d": dt.timedelta(days=7)}
NOTICES = {"acked": "Acknowledged: no reminders until the alert resolves or escalates.",
           "silenced": "Silenced: notifications of that alert are held back until the silence ends."}


@dataclass(frozen=True, slots=True)
class AlertGroup:
    """Firing alerts about one certificate (``sha256`` None: alerts about endpoints that present none)."""

    sha256: str | None
    certificate: CertificateRecord | None
    alerts: tuple[AlertRecord, ...]

    @property
    def worst(self) -> Severity:
        return max(record.alert.severity for record in self.alerts)


def certificate_of(record: AlertRecord, leaves: dict[str, str]) -> str | None:
    """The certificate an alert is about: the one in its key (certificate alerts are keyed by the leaf's
    fingerprint), else the leaf its first endpoint with one presents now."""
    rule, _, rest = record.alert.key.partition(":")
    if rule == "cert.expiring":
        sha = rest.split(":", 1)[0]
        if len(sha) == 64:
            return sha
    return next((leaves[target] for target in record.alert.endpoints if target in leaves), None)


def group_alerts(records: list[AlertRecord], leaves: dict[str, str],
                 certificates: dict[str, CertificateRecord]) -> list[AlertGroup]:
    by_certificate: dict[str | None, list[AlertRecord]] = {}
    for record in records:
        by_certificate.setdefault(certificate_of(record, leaves), []).append(record)
    groups = [AlertGroup(sha, certificates.get(sha) if sha else None,
                         tuple(sorted(found, key=lambda r: (-r.alert.severity, r.alert.key))))
              for sha, found in by_certificate.items()]
    far = dt.datetime.max.replace(tzinfo=dt.UTC)
    groups.sort(key=lambda g: (-g.worst, g.sha256 is None, g.certificate.not_after if g.certificate else far))
    return groups


def router() -> APIRouter:
    pages = APIRouter(route_class=PageRoute)

    @pages.get("/oncall", response_class=HTMLResponse)
    def oncall(request: Request, principal: Annotated[Principal, Depends(viewer)],
               notice: Annotated[str, Query(max_length=32)] = "") -> HTMLResponse:
        moment = now()
        store = store_of(request)
        alerts = AlertStore(store)
        firing = alerts.load(status=AlertStatus.FIRING)
        leaves = current_leaves(store, [target for record in firing for target in record.alert.endpoints])
        shas = {sha for record in firing if (sha := certificate_of(record, leaves)) is not None}
        groups = group_alerts(firing, leaves, certificates_by_sha(store, sorted(shas)))
        failing = inventory_page(store, InventoryQuery(failing=True, sort="last_probe", descending=True), moment,
                                 limit=FAILING_SHOWN)
        since = moment - CHANGES_WINDOW
        started, resolved = alert_changes(store, since)
        rollups_of(request).warm(moment, 30)    # the executive page's history, computed before it is asked for
        silences = alerts.silences(active_at=moment)
        silenced = {record.alert.key for record in firing
                    if any(s.matches({**dict(record.alert.labels), "alert_key": record.alert.key}, moment)
                           for s in silences)}
        zones = DistributedStore(store).zone_states()    # empty unless `tlsward monitor --distributed` runs
        return render(
            request, "oncall.html", groups=groups, firing=len(firing), failing=failing, zones=zones,
            docs={finding_id: finding_doc(finding_id)
                  for finding_id in {*(f for row in failing.rows for f in row.finding_ids),
                                     *(record.alert.rule for record in firing)}
                  if finding_id in FINDING_CATALOGUE},
            changes=leaf_changes(store, since), started=started, resolved=resolved, since=since,
            silences=silences, silenced=silenced, now=moment, notice=NOTICES.get(notice, ""),
            can_act=principal.role >= Role.OPERATOR and principal.csrf_token is not None,
            durations=list(SILENCE_DURATIONS), inline=inline)

    @pages.post("/oncall/ack")
    def ack(request: Request, principal: Annotated[Principal, Depends(operator)],
            key: Annotated[str, Form(min_length=1, max_length=255)],
            csrf_token: Annotated[str, Form(max_length=128)] = "") -> Response:
        check_csrf(request, principal, csrf_token)
        moment = now()
        store = store_of(request)
        if not AlertStore(store).ack(key, principal.name, moment, exact=True):
            raise Problem(404, f"no firing alert has the key {key!r} (it may have resolved meanwhile)")
        AccessStore(store).audit(principal.name, "alert.ack", key, "1 alert(s), from the on-call page", moment)
        return RedirectResponse("/oncall?notice=acked", status_code=303)

    @pages.post("/oncall/silence")
    def silence(request: Request, principal: Annotated[Principal, Depends(operator)],
                key: Annotated[str, Form(min_length=1, max_length=255)],
                duration: Annotated[str, Form(max_length=8)] = "4h",
                comment: Annotated[str, Form(max_length=500)] = "",
                csrf_token: Annotated[str, Form(max_length=128)] = "") -> Response:
        check_csrf(request, principal, csrf_token)
        span = SILENCE_DURATIONS.get(duration)
        if span is None:
            raise Problem(400, f"duration {duration!r}: expected one of {', '.join(SILENCE_DURATIONS)}")
        moment = now()
        store = store_of(request)
        saved = AlertStore(store).add_silence(
            Silence((("alert_key", key),), moment, moment + span, principal.name,
                    comment.strip() or "silenced from the on-call page"), moment)
        AccessStore(store).audit(principal.name, "silence.add", f"silence {saved.id}",
                                 f"alert_key={key} {moment.isoformat()} .. {saved.ends_at.isoformat()}", moment)
        return RedirectResponse("/oncall?notice=silenced", status_code=303)

    return pages


__all__ = ("AlertGroup", "certificate_of", "group_alerts", "router")
