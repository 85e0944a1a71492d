"""``/endpoints/{target}``: one endpoint in depth, for whoever is debugging it. The newest observation in full,
the presented chain drawn from leaf to root, each certificate's facts, the findings with their fix, the
handshake timing, the observation history with a latency chart, the alerts about it, and a "Rescan now" button
(operators) that starts a scan through the JSON API (``POST /api/v1/scans``), follows its Server-Sent Events
and reloads the page when it is done."""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import HTMLResponse

from tlsward.model.access import Principal, Role
from tlsward.model.alerts import AlertStatus
from tlsward.model.certificate import CertificateFacts, ChainAnalysis
from tlsward.model.errors import Error, UsageError
from tlsward.model.findings import FINDING_CATALOGUE, Severity
from tlsward.model.inventory import CertificateRecord, EndpointRecord, ObservationRecord
from tlsward.model.metrics import common_name
from tlsward.model.target import Target
from tlsward.storage import Store
from tlsward.storage.alerts import AlertStore
from tlsward.storage.snapshot import finding_severities
from tlsward.web.app import render
from tlsward.web.auth import settings_of, store_of, viewer
from tlsward.web.problems import Problem
from tlsward.web.views.clients import IMPACT_POLICY, client_panel
from tlsward.web.views.common import PageRoute, now
from tlsward.web.views.findings import finding_doc, inline
from tlsward.x509.trust import ca_file_store, mozilla_store, system_store
from tlsward.x509.validate import analyse_chain

HISTORY = 60
BOX_WIDTH, BOX_HEIGHT, GAP, MARGIN = 640, 58, 34, 10


@dataclass(frozen=True, slots=True)
class ChainBox:
    """One box of the chain drawing: a certificate (``sha256`` set) or the root the server did not send."""

    y: int
    title: str
    subtitle: str
    detail: str
    css: str
    sha256: str | None = None


@dataclass(frozen=True, slots=True)
class ChainDrawing:
    width: int
    height: int
    boxes: tuple[ChainBox, ...]
    arrows: tuple[tuple[int, int], ...]      # (y from, y to): from a box's bottom edge to the next one's top

    @property
    def box_width(self) -> int:
        return BOX_WIDTH

    @property
    def box_height(self) -> int:
        return BOX_HEIGHT

    @property
    def x(self) -> int:
        return MARGIN


def chain_drawing(chain: list[CertificateRecord], moment: dt.datetime) -> ChainDrawing:
    """Boxes from the leaf (top) to the root, an arrow from each certificate to its issuer. When the chain
    does not end with a self-issued certificate, a dashed box stands for the root the client must already
    trust (servers normally do not send it)."""
    boxes: list[ChainBox] = []
    for position, cert in enumerate(chain):
        days = (cert.not_after - moment).total_seconds() / 86400
        state = "expired" if days <= 0 else "expiring" if days <= 30 else "valid"
        role = "leaf" if position == 0 else "root" if cert.subject == cert.issuer else "intermediate"
        when = f"expired {abs(days):.1f} d ago" if days <= 0 else f"expires in {days:.1f} d"
        boxes.append(ChainBox(MARGIN + position * (BOX_HEIGHT + GAP), f"{role}: {common_name(cert.subject)}"[:80],
                              f"issued by {common_name(cert.issuer)}"[:90],
                              f"{when} · {cert.key_type} {cert.key_bits} · sha256 {cert.sha256[:16]}",
                              f"chain-box {state}", cert.sha256))
    if chain and chain[-1].subject != chain[-1].issuer:
        boxes.append(ChainBox(MARGIN + len(chain) * (BOX_HEIGHT + GAP), f"root: {common_name(chain[-1].issuer)}"[:80],
                              "not sent by the server: the client's trust store must hold it", "",
                              "chain-box absent"))
    arrows = tuple((box.y + BOX_HEIGHT, nxt.y) for box, nxt in itertools.pairwise(boxes))
    height = (boxes[-1].y + BOX_HEIGHT + MARGIN) if boxes else 0
    return ChainDrawing(BOX_WIDTH + 2 * MARGIN, height, tuple(boxes), arrows)


def certificate_facts(cert: CertificateRecord) -> CertificateFacts | None:
    """Every fact of a stored certificate, parsed from its DER (None when only a summary was stored)."""
    if not cert.der:
        return None
    from tlsward.x509.facts import facts_from_der

    try:
        return facts_from_der(cert.der)
    except (Error, ValueError):
        return None


def validate_stored_chain(chain: list[CertificateRecord], hostname: str, ca_files: tuple[str, ...],
                          moment: dt.datetime) -> ChainAnalysis | str | None:
    """RFC 5280 validation of the stored chain (as last presented) against every trust store, now: the verdict
    per store, or a one-line reason why it cannot be judged (no chain, a certificate stored without DER)."""
    if not chain:
        return None
    if any(not cert.der for cert in chain):
        return "the stored chain has no certificate bytes to validate; rescan to see verdicts"
    try:
        stores = [*(ca_file_store(path) for path in ca_files), mozilla_store(), system_store()]
        return analyse_chain([cert.der for cert in chain], hostname, stores, moment)
    except Error as exc:
        return f"cannot validate: {exc}"


def find_endpoint(store: Store, target: str) -> EndpointRecord:
    """The endpoint as given, or as its canonical form names it; a 404 page otherwise."""
    record = store.get_endpoint(target)
    if record is None:
        try:
            record = store.get_endpoint(str(Target.parse(target)))
        except UsageError:
            record = None
    if record is None:
        raise Problem(404, f"no endpoint {target[:200]!r} in the inventory (`tlsward inventory add` adds one)")
    return record


def latency_chart(history: list[ObservationRecord]) -> dict[str, Any]:
    """Handshake time of each observation, oldest first; failed probes as points on a second series."""
    ordered = list(reversed(history))
    return {"type": "line", "labels": [f"{o.observed_at:%m-%d %H:%M}" for o in ordered], "unit": "ms",
            "datasets": [{"label": "handshake (ms)", "data": [o.handshake_ms if o.success else None for o in ordered],
                          "color": "#1c7ed6"},
                         {"label": "failed probe", "data": [0 if not o.success else None for o in ordered],
                          "color": "#b3122e", "points": True}]}


def router() -> APIRouter:
    pages = APIRouter(route_class=PageRoute)

    @pages.get("/endpoints/{target:path}", response_class=HTMLResponse)
    def endpoint(request: Request, principal: Annotated[Principal, Depends(viewer)],
                 target: Annotated[str, Path(max_length=1024)]) -> HTMLResponse:
        store = store_of(request)
        moment = now()
        record = find_endpoint(store, target)
        latest, _ = store.latest(record.target)
        chain = [cert for _, cert in store.certificates(record.target)]
        history = store.observations(record.target, limit=HISTORY)
        findings = []
        if latest is not None:
            for finding_id, severity in zip(latest.finding_ids,
                                            finding_severities(latest.finding_ids, latest.worst_severity),
                                            strict=True):
                spec = FINDING_CATALOGUE.get(finding_id)
                findings.append((finding_id, severity, spec.title if spec else finding_id, finding_doc(finding_id)))
        alerts = [r for r in AlertStore(store).load(status=AlertStatus.FIRING) if record.target in r.alert.endpoints]
        latest_success = next((o for o in history if o.success), None)
        analysis = validate_stored_chain(chain, record.sni or record.host, settings_of(request).ca_files, moment)
        return render(
            request, "endpoint.html", record=record, latest=latest, latest_success=latest_success, chain=chain,
            facts={cert.sha256: certificate_facts(cert) for cert in chain}, drawing=chain_drawing(chain, moment),
            history=history, findings=findings, alerts=alerts, files=store.endpoint_files(record.target),
            charts={"chart-latency": latency_chart(history)} if history else {}, now=moment, Severity=Severity,
            can_scan=principal.role >= Role.OPERATOR and principal.csrf_token is not None, inline=inline,
            analysis=analysis, impact_policy=IMPACT_POLICY, clients=client_panel(store, record, moment))

    return pages
