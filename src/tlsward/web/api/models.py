"""The API's request and response shapes, declared so that ``/api/v1/openapi.json`` is precise.

The response models *describe* the dictionaries built by ``tlsward.report`` (the same functions the CLI's
``--json`` uses), they do not replace them: one serialization, two front ends. Times are ISO 8601 with a UTC
offset, as ``datetime.isoformat()`` writes them. The scan result is the ``tlsward scan --json`` object,
declared as a free-form object: its schema is ``GET /api/v1/schemas/scan-result-1.json``.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

from tlsward.web.api.common import MAX_TEXT, Body

Time = Annotated[str, Field(json_schema_extra={"format": "date-time"})]
SeverityName = Literal["info", "low", "medium", "high", "critical"]
Text = Annotated[str, Field(max_length=MAX_TEXT)]
Label = Annotated[str, Field(min_length=1, max_length=128)]


class Out(BaseModel):
    """Responses: every declared field is always present (null when unknown)."""

    model_config = ConfigDict(extra="forbid")


# -- endpoints ------------------------------------------------------------------------------------------------


class LastObservation(Out):
    time: Time
    success: bool | None
    failure_kind: str | None
    version: str | None
    cipher: str | None
    findings: list[str] = Field(description="Finding ids, worst first")
    worst_finding: str | None
    worst_severity: SeverityName | None


class Leaf(Out):
    sha256: str | None
    subject: str | None
    issuer: str | None
    not_after: Time
    days_left: float


class EndpointSummary(Out):
    """One line of ``tlsward inventory list --json``."""

    target: str = Field(description="Canonical target text: host:port, [v6]:port or scheme://host:port")
    sni: str | None
    connect: str | None
    owner: str | None
    team: str | None
    environment: str | None
    tags: list[str]
    enabled: bool
    last_observation: LastObservation | None = Field(description="The newest observation; null: never scanned")
    leaf: Leaf | None = Field(description="The leaf of the newest successful observation")


class EndpointPage(Out):
    items: list[EndpointSummary]
    next: str | None = Field(description="Cursor of the next page (pass as ?cursor=); null on the last page")
    total: int = Field(description="Endpoints matching the filters, over all pages")


class Certificate(Out):
    sha256: str
    subject: str
    issuer: str
    serial: str
    not_before: Time
    not_after: Time
    days_left: float
    sans: list[str]
    key_type: str
    key_bits: int
    signature_algorithm: str
    pem: str | None = Field(description="PEM, when the DER was stored (certificates seen on endpoints and files)")


class ChainCertificate(Certificate):
    position: int | None = Field(description="0 = leaf, in the chain as presented")


class Observation(Out):
    id: int | None
    target: str
    observed_at: Time
    success: bool
    failure_kind: str | None
    version: str | None
    cipher: str | None
    handshake_ms: float | None
    chain: list[str] = Field(description="SHA-256 fingerprints, leaf first")
    finding_ids: list[str] = Field(description="Worst first")
    worst_severity: SeverityName | None
    probe_id: str | None
    samples: int = Field(description="> 1 once retention folded several probes into this row")
    successes: int
    resolution: Literal["raw", "hour", "day"]


class EndpointDetail(EndpointSummary):
    """An endpoint with its certificates (the newest successful chain) and its newest observations."""

    host: str
    port: int
    scheme: str
    probe_interval_s: int | None
    created_at: Time | None
    updated_at: Time | None
    certificates: list[ChainCertificate]
    observations: list[Observation]


class EndpointIn(Body):
    """An endpoint to add, or to update (by its canonical target): as ``tlsward inventory add``."""

    target: Text = Field(min_length=1, description="host[:port] or scheme://host[:port]")
    sni: Text | None = None
    connect: Text | None = Field(None, description="IP address to connect to instead of resolving the host")
    owner: Text | None = None
    team: Text | None = None
    environment: Text | None = None
    tags: list[Text] = Field(default_factory=list, max_length=50)
    probe_interval_s: StrictInt | None = Field(None, ge=1, le=366 * 86400)
    enabled: StrictBool = True


# -- certificates and observations ------------------------------------------------------------------------------


class Place(Out):
    where: str = Field(description="An endpoint target, or the path of a file or server config")
    position: int | None
    first_seen: Time
    last_seen: Time


class CertificatePlaces(Certificate):
    places: list[Place]


class CertificateListItem(Out):
    sha256: str
    subject: str
    issuer: str
    not_after: str
    days_left: float
    key_type: str
    key_bits: int
    endpoints: int = Field(description="Endpoints that presented it, at any chain position")
    files: int = Field(description="Files on disk that hold it")


class CertificateList(Out):
    items: list[CertificateListItem]
    total: int = Field(description="Certificates matching the filters, over all pages")


class ObservationList(Out):
    items: list[Observation]


# -- scans ------------------------------------------------------------------------------------------------------


class ScanIn(Body):
    target: Text = Field(min_length=1, description="host[:port] or scheme://host[:port]")
    sni: Text | None = Field(None, description="Server name to send (default: the host)")
    connect: Text | None = Field(None, description="IP address to connect to instead of resolving the host")
    deep: StrictBool = Field(False, description="Enumerate versions, suites, groups and features, and grade")


class ScanAccepted(Out):
    id: str
    status: Literal["queued"]
    target: str
    location: str = Field(description="Where to follow the job (GET); add /events for a Server-Sent Events stream")


SCAN_RESULT_DESCRIPTION = ("The `tlsward scan --json` object for the endpoint; it validates against "
                           "GET /api/v1/schemas/scan-result-1.json. Null until the job is done.")


class ScanJob(Out):
    id: str
    status: Literal["queued", "running", "done", "failed"]
    target: str
    deep: bool
    created_at: Time
    started_at: Time | None
    finished_at: Time | None
    result: dict[str, Any] | None = Field(description=SCAN_RESULT_DESCRIPTION)
    error: str | None = Field(description="Why the job failed; null otherwise")


# -- findings, alerts, silences -----------------------------------------------------------------------------------


class Finding(Out):
    id: str = Field(description="Finding id (docs/findings.md)")
    severity: SeverityName
    title: str
    endpoint: str
    owner: str | None
    team: str | None
    observed_at: Time


class FindingPage(Out):
    items: list[Finding]
    total: int
    next_offset: int | None = Field(description="The offset of the next page; null on the last page")


class Alert(Out):
    """One alert, as ``tlsward alerts list --json`` shows it."""

    key: str
    rule: str
    status: Literal["firing", "resolved"]
    severity: SeverityName
    route: Literal["page", "ticket"]
    stage: str
    summary: str
    description: str
    fix: str
    runbook: str | None = Field(description="The runbook section for the alert's rule: docs/findings.md#ANCHOR "
                                            "(the dashboards' /findings page has the same anchors), or "
                                            "docs/monitor.md#alert-rules for rules that are not scan findings "
                                            "(chain.changed)")
    endpoints: list[str]
    labels: dict[str, str]
    owner: str | None
    team: str | None
    starts_at: Time | None
    ends_at: Time | None
    notified_stage: str | None
    last_notified_at: Time | None
    acked_by: str | None


class AlertList(Out):
    items: list[Alert]


class AckIn(Body):
    key: Text = Field(min_length=1, description="An alert key, or the start of one")


class AckResult(Out):
    acknowledged: int


class Silence(Out):
    id: int | None
    matchers: dict[str, str]
    starts_at: Time
    ends_at: Time
    created_by: str
    comment: str
    active: bool = Field(description="In force now (false: scheduled for later)")


class SilenceList(Out):
    items: list[Silence]


class SilenceIn(Body):
    """Hold back notifications of alerts whose labels all match, from ``starts_at`` (default now) for
    ``duration`` or until ``ends_at`` (one of the two)."""

    matchers: dict[Label, Text] = Field(min_length=1, max_length=20,
                                       description="label: value (owner, team, environment, rule, severity, route, "
                                                   "alert_key); all must match")
    starts_at: dt.datetime | None = Field(None, description="ISO 8601 with a UTC offset; default now")
    ends_at: dt.datetime | None = Field(None, description="ISO 8601 with a UTC offset")
    duration: Annotated[str, Field(max_length=32)] | None = Field(None, description="2h, 30m, 1d ...")
    comment: Annotated[str, Field(max_length=2000)] = ""


# -- SLIs and audit -------------------------------------------------------------------------------------------------


class Share(Out):
    name: str
    probes: int
    pct: float | None


class Latency(Out):
    probes: int
    p50_ms: float | None
    p95_ms: float | None


class EndpointSli(Out):
    target: str
    probes: int
    successes: int
    success_pct: float | None


class SloVerdict(Out):
    target_pct: float
    met: bool | None
    failures: int
    allowed_failures: float | None
    error_budget_remaining_pct: float | None


class GroupSli(Out):
    key: str | None
    endpoints: int
    unprobed_endpoints: int
    probes: int
    successes: int
    success_pct: float | None
    valid_certificate_probes: int
    valid_certificate_pct: float | None
    versions: list[Share]
    ciphers: list[Share]
    latency: Latency
    worst_endpoints: list[EndpointSli]
    slo: SloVerdict | None


class SloWindow(Out):
    text: str
    seconds: int
    since: Time
    until: Time


class SloReport(Out):
    """The ``tlsward.slo/1`` object of ``tlsward report slo --json`` (docs/slo.md)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    schema_: Literal["tlsward.slo/1"] = Field(alias="schema")
    window: SloWindow
    by: Literal["owner", "team"]
    target_pct: float | None
    met: bool | None
    overall: GroupSli
    groups: list[GroupSli]


class AuditEntry(Out):
    id: int | None
    at: Time
    actor: str
    action: str
    target: str
    detail: str


class AuditList(Out):
    items: list[AuditEntry]
