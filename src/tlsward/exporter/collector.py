"""A prometheus_client custom collector: every scrape reads a fresh snapshot of the inventory
(:func:`tlsward.storage.snapshot.metrics_snapshot`) and, when the monitor runs in this process, its live
:class:`~tlsward.model.metrics.ProbeStats`, and turns them into metric families. Nothing is cached between
scrapes, so what Prometheus stores is what the inventory said at that moment.

Cardinality is decided here and documented in docs/metrics.md: per-endpoint series carry the ``endpoint``
label only (plus the one value label an ``_info`` series is about); owner, team and environment live on
``tlsward_endpoint_info`` and are joined in PromQL (``* on (endpoint) group_left (team) tlsward_endpoint_info``).
Repeating them on every series would make a 10,000-endpoint scrape three times slower to render and would
rewrite every series of an endpoint whenever it changes hands. Label values never carry unbounded text
(no SAN lists, no error messages) and are clipped to :data:`MAX_LABEL_LENGTH`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.samples import Sample

from tlsward.model.errors import StorageError
from tlsward.model.findings import Severity
from tlsward.model.metrics import MetricsSnapshot, ProbeStats, ProbeStatsSnapshot, common_name
from tlsward.storage.snapshot import HasEngine, metrics_snapshot

log = logging.getLogger(__name__)

MAX_LABEL_LENGTH = 128      # longer values keep their first 119 characters, then "~" and 8 hex of their SHA-256
FINGERPRINT_LENGTH = 16     # hex characters of a certificate's SHA-256 in labels: unique enough, short to read
NO_FINDINGS = -1            # tlsward_endpoint_worst_severity for an endpoint whose newest probe found nothing


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """One metric family the exporter can expose: docs/metrics.md documents each, a test checks it."""

    name: str               # as exposed (counters with their _total)
    type: str               # gauge, counter, histogram
    labels: tuple[str, ...]
    help: str


def _spec(name: str, type_: str, labels: tuple[str, ...], help_: str) -> MetricSpec:
    return MetricSpec(name, type_, labels, help_)


METRICS: dict[str, MetricSpec] = {spec.name: spec for spec in (
    _spec("tlsward_inventory_up", "gauge", (),
          "1 if the inventory database could be read at this scrape, 0 if not (inventory series are then absent)."),
    _spec("tlsward_inventory_read_duration_seconds", "gauge", (),
          "Seconds this scrape spent reading the inventory snapshot."),
    _spec("tlsward_endpoint_info", "gauge", ("endpoint", "owner", "team", "environment"),
          "1 for every enabled endpoint in the inventory; carries its ownership labels for joins."),
    _spec("tlsward_endpoint_certificate_not_after_timestamp_seconds", "gauge", ("endpoint",),
          "Expiry (Unix time) of the leaf certificate of the newest successful probe."),
    _spec("tlsward_endpoint_chain_not_after_timestamp_seconds", "gauge", ("endpoint",),
          "Earliest expiry (Unix time) over the chain of the newest successful probe, intermediates included."),
    _spec("tlsward_endpoint_worst_severity", "gauge", ("endpoint",),
          "Worst finding severity of the newest probe: 0 info, 1 low, 2 medium, 3 high, 4 critical; -1 none."),
    _spec("tlsward_probe_success", "gauge", ("endpoint",),
          "1 if the newest probe of the endpoint succeeded, 0 if it failed."),
    _spec("tlsward_probe_failure_info", "gauge", ("endpoint", "reason"),
          "1 with the failure reason, for endpoints whose newest probe failed."),
    _spec("tlsward_probe_last_timestamp_seconds", "gauge", ("endpoint",),
          "Time (Unix) of the newest probe of the endpoint."),
    _spec("tlsward_tls_version_info", "gauge", ("endpoint", "version"),
          "1 with the protocol version negotiated at the newest successful probe."),
    _spec("tlsward_cipher_info", "gauge", ("endpoint", "cipher"),
          "1 with the cipher suite (IANA name) negotiated at the newest successful probe."),
    _spec("tlsward_certificate_not_after_timestamp_seconds", "gauge", ("sha256", "subject_cn", "issuer_cn"),
          "Expiry (Unix time) of each certificate currently presented by an enabled endpoint."),
    _spec("tlsward_findings", "gauge", ("finding", "severity"),
          "Endpoints whose newest probe reported the finding, by finding id and severity."),
    _spec("tlsward_alerts", "gauge", ("state", "route", "severity"),
          "Alerts in the monitor's alert table by state, route and severity (absent without an alert table)."),
    _spec("tlsward_client_requests_last_day", "gauge", ("endpoint", "protocol"),
          "Requests clients made over each protocol in the last 24 hours, from the endpoint's access logs "
          "(tlsward logs ingest); protocol \"plain\" is HTTP without TLS."),
    _spec("tlsward_managed_certificate_renewal_timestamp_seconds", "gauge", ("certificate", "outcome"),
          "Time (Unix) the newest renewal attempt of a managed certificate (tlsward renew) finished, with its outcome "
          "(verified, deployed, rolled_back, failed)."),
    _spec("tlsward_managed_certificate_renewal_success", "gauge", ("certificate",),
          "1 if the newest renewal attempt of the managed certificate succeeded (verified or deployed), 0 if not."),
    _spec("tlsward_managed_certificate_not_after_timestamp_seconds", "gauge", ("certificate",),
          "Expiry (Unix time) of the newest certificate a renewal deployed (and verified served) for it."),
    _spec("tlsward_probes_total", "counter", ("team", "result", "reason"),
          "Probes run by this process since it started, by endpoint team, result and failure reason."),
    _spec("tlsward_handshake_duration_seconds", "histogram", ("team",),
          "TLS handshake duration of the probes run by this process, by endpoint team."),
)}


def clip(value: str | None) -> str:
    """A label value: None as "" (Prometheus reads an empty label as absent) and at most MAX_LABEL_LENGTH
    characters. A clipped value ends with a hash of the whole, so two long values never collide into one
    series (Prometheus rejects a scrape with duplicate series)."""
    if value is None:
        return ""
    if len(value) <= MAX_LABEL_LENGTH:
        return value
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{value[:MAX_LABEL_LENGTH - 9]}~{digest}"


def severity_label(severity: int) -> str:
    """``critical`` for 4 and so on; an unknown value as its number."""
    try:
        return Severity(severity).name.lower()
    except ValueError:
        return str(severity)


def _family(name: str) -> GaugeMetricFamily:
    spec = METRICS[name]
    return GaugeMetricFamily(name, spec.help, labels=list(spec.labels))


def inventory_families(snapshot: MetricsSnapshot) -> list[Metric]:
    """The inventory's metric families (every ``tlsward_*`` family but the live probe statistics).

    Per-endpoint samples are appended directly, sharing one label dict across an endpoint's series: at
    10,000 endpoints this builds ~90,000 samples per scrape, and ``add_metric``'s per-sample dict was a third
    of that time."""
    info, leaf, chain, worst, success, failure, last, version, cipher = (_family(name) for name in (
        "tlsward_endpoint_info", "tlsward_endpoint_certificate_not_after_timestamp_seconds",
        "tlsward_endpoint_chain_not_after_timestamp_seconds", "tlsward_endpoint_worst_severity",
        "tlsward_probe_success", "tlsward_probe_failure_info", "tlsward_probe_last_timestamp_seconds",
        "tlsward_tls_version_info", "tlsward_cipher_info"))
    for endpoint in snapshot.endpoints:
        name = clip(endpoint.target)
        labels = {"endpoint": name}
        info.samples.append(Sample(info.name, {"endpoint": name, "owner": clip(endpoint.owner),
                                               "team": clip(endpoint.team),
                                               "environment": clip(endpoint.environment)}, 1))
        if endpoint.leaf_not_after is not None:
            leaf.samples.append(Sample(leaf.name, labels, endpoint.leaf_not_after.timestamp()))
        if endpoint.chain_not_after is not None:
            chain.samples.append(Sample(chain.name, labels, endpoint.chain_not_after.timestamp()))
        if endpoint.last_probe_at is not None:
            success.samples.append(Sample(success.name, labels, 1 if endpoint.success else 0))
            last.samples.append(Sample(last.name, labels, endpoint.last_probe_at.timestamp()))
            severity = endpoint.worst_severity
            worst.samples.append(Sample(worst.name, labels, int(severity) if severity is not None else NO_FINDINGS))
            if not endpoint.success:
                reason = clip(endpoint.failure_kind or "unknown")
                failure.samples.append(Sample(failure.name, {"endpoint": name, "reason": reason}, 1))
        if endpoint.version is not None:
            version.samples.append(Sample(version.name, {"endpoint": name, "version": clip(endpoint.version)}, 1))
        if endpoint.cipher is not None:
            cipher.samples.append(Sample(cipher.name, {"endpoint": name, "cipher": clip(endpoint.cipher)}, 1))
    certificates = _family("tlsward_certificate_not_after_timestamp_seconds")
    for cert in snapshot.certificates:
        certificates.add_metric([cert.sha256[:FINGERPRINT_LENGTH], clip(common_name(cert.subject)),
                                 clip(common_name(cert.issuer))], cert.not_after.timestamp())
    findings = _family("tlsward_findings")
    for count in snapshot.findings:
        findings.add_metric([clip(count.finding_id), severity_label(count.severity)], count.endpoints)
    families: list[Metric] = [info, leaf, chain, worst, success, failure, last, version, cipher, certificates,
                              findings]
    if snapshot.alerts is not None:
        alerts = _family("tlsward_alerts")
        for alert in snapshot.alerts:
            alerts.add_metric([clip(alert.status), clip(alert.route), severity_label(alert.severity)], alert.alerts)
        families.append(alerts)
    if snapshot.client_requests:
        clients = _family("tlsward_client_requests_last_day")
        for row in snapshot.client_requests:
            clients.add_metric([clip(row.endpoint), clip(row.protocol or "plain")], row.requests)
        families.append(clients)
    if snapshot.renewals:
        when, success, not_after = (_family(name) for name in (
            "tlsward_managed_certificate_renewal_timestamp_seconds", "tlsward_managed_certificate_renewal_success",
            "tlsward_managed_certificate_not_after_timestamp_seconds"))
        for renewal in snapshot.renewals:
            name = clip(renewal.certificate)
            when.add_metric([name, clip(renewal.outcome)], renewal.finished_at.timestamp())
            success.add_metric([name], 1 if renewal.outcome in ("verified", "deployed") else 0)
            if renewal.served_not_after is not None:
                not_after.add_metric([name], renewal.served_not_after.timestamp())
        families += [when, success, not_after]
    return families


def probe_families(stats: ProbeStatsSnapshot) -> list[Metric]:
    """The live probe statistics: a counter and a histogram, both by team."""
    spec = METRICS["tlsward_probes_total"]
    probes = CounterMetricFamily(spec.name, spec.help, labels=list(spec.labels))
    for count in stats.probes:
        probes.add_metric([clip(count.team), count.result, clip(count.reason)], count.probes)
    spec = METRICS["tlsward_handshake_duration_seconds"]
    handshakes = HistogramMetricFamily(spec.name, spec.help, labels=list(spec.labels))
    for team, histogram in stats.handshakes:
        buckets = [(repr(float(bound)), float(n))   # 0.005, 1.0, 10.0: as prometheus_client writes le
                   for bound, n in zip(histogram.bounds, histogram.cumulative, strict=True)]
        buckets.append(("+Inf", float(histogram.count)))
        handshakes.add_metric([clip(team)], buckets, histogram.sum)
    return [probes, handshakes]


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class InventoryCollector:
    """Register on a dedicated ``CollectorRegistry``: ``collect()`` reads the inventory on every call.

    An unreadable inventory is reported as ``tlsward_inventory_up 0`` (and logged), not as a failed scrape:
    Prometheus then still gets the live probe statistics, and the alert rules can tell "the exporter is
    down" from "the database is"."""

    def __init__(self, store: HasEngine, probe_stats: ProbeStats | None = None, *,
                 clock: Callable[[], dt.datetime] = _utcnow) -> None:
        self.store = store
        self.probe_stats = probe_stats
        self.clock = clock

    def describe(self) -> Iterable[Metric]:
        """Every family, without samples: the registry learns the names (for ``name[]`` filtering and clash
        checks) without reading the database."""
        for spec in METRICS.values():
            if spec.type == "counter":
                yield CounterMetricFamily(spec.name, spec.help, labels=list(spec.labels))
            elif spec.type == "histogram":
                yield HistogramMetricFamily(spec.name, spec.help, labels=list(spec.labels))
            else:
                yield GaugeMetricFamily(spec.name, spec.help, labels=list(spec.labels))

    def collect(self) -> Iterator[Metric]:
        start = time.perf_counter()
        try:
            snapshot: MetricsSnapshot | None = metrics_snapshot(self.store, self.clock())
        except StorageError as exc:
            log.warning("tlsward exporter: cannot read the inventory: %s", exc)
            snapshot = None
        read = time.perf_counter() - start
        up = _family("tlsward_inventory_up")
        up.add_metric([], 1 if snapshot is not None else 0)
        duration = _family("tlsward_inventory_read_duration_seconds")
        duration.add_metric([], read)
        yield up
        yield duration
        if snapshot is not None:
            yield from inventory_families(snapshot)
        if self.probe_stats is not None:
            yield from probe_families(self.probe_stats.snapshot())
