"""The exporter end to end on both backends: inventories written through ``Store.record_scan``, scraped over
HTTP through the ASGI app, read back with prometheus_client's parser, exact values asserted."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import JSON, Boolean, Connection, DateTime, Integer, MetaData, Table, inspect, text

from tests.unit.exporter.scraping import scrape, ts
from tests.unit.storage.builders import DAY, NOW, cert, failed_result, finding, scan_result
from tlsward.exporter.app import metrics_app
from tlsward.exporter.collector import MAX_LABEL_LENGTH, METRICS, clip
from tlsward.model.findings import Severity
from tlsward.model.inventory import EndpointRecord
from tlsward.model.lifecycle import Outcome, RenewalEvent
from tlsward.model.metrics import ProbeStats
from tlsward.model.scan import ScanResult, Session, Timings
from tlsward.model.target import Target
from tlsward.storage import Store, open_store
from tlsward.storage.lifecycle import LifecycleStore


def with_intermediate(target: str, *, leaf_days: float, intermediate_days: float, at: dt.datetime = NOW) -> ScanResult:
    """A successful scan presenting a leaf under an intermediate of its own (expiring when we say)."""
    parsed = Target.parse(target)
    leaf, leaf_der = cert(parsed.host, issuer="CN=Short Intermediate", days_left=leaf_days)
    intermediate, intermediate_der = cert("Short Intermediate", issuer="CN=Lab Root", days_left=intermediate_days)
    intermediate = replace(intermediate, is_ca=True)
    session = Session("TLSv1.2", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", 0xC02B, "x25519", None, False, None,
                      (leaf_der, intermediate_der))
    return ScanResult(target=parsed, address="127.0.0.1", scanned_at=at, timings=Timings(handshake_ms=8.0),
                      session=session, chain=(leaf, intermediate))


def endpoint(target: str, **fields: object) -> EndpointRecord:
    host, port = target.rsplit(":", 1)
    return EndpointRecord(target=target, host=host, port=int(port), **fields)  # type: ignore[arg-type]


def test_a_failing_probe_keeps_reporting_the_last_certificate(store: Store) -> None:
    store.upsert_endpoint(endpoint("a.test:443", owner="ana", team="web", environment="prod"))
    store.record_scan(scan_result("a.test:443", days_left=30))
    store.record_scan(failed_result("a.test:443", at=NOW + DAY))
    metrics = scrape(metrics_app(store))
    leaf_not_after = ts(NOW + dt.timedelta(days=30))
    assert metrics.value("tlsward_endpoint_certificate_not_after_timestamp_seconds", endpoint="a.test:443") \
        == leaf_not_after
    assert metrics.value("tlsward_endpoint_chain_not_after_timestamp_seconds", endpoint="a.test:443") \
        == leaf_not_after                                  # the shared intermediate lives 900 days
    assert metrics.value("tlsward_probe_success", endpoint="a.test:443") == 0
    assert metrics.series("tlsward_probe_failure_info") == [{"endpoint": "a.test:443", "reason": "refused"}]
    assert metrics.value("tlsward_probe_last_timestamp_seconds", endpoint="a.test:443") == ts(NOW + DAY)
    assert metrics.value("tlsward_tls_version_info", endpoint="a.test:443", version="TLSv1.3") == 1
    assert metrics.value("tlsward_cipher_info", endpoint="a.test:443", cipher="TLS_AES_128_GCM_SHA256") == 1
    assert metrics.value("tlsward_endpoint_info", endpoint="a.test:443", owner="ana", team="web",
                         environment="prod") == 1
    subjects = {labels["subject_cn"]: labels
                for labels in metrics.series("tlsward_certificate_not_after_timestamp_seconds")}
    assert set(subjects) == {"a.test", "Lab Intermediate"}
    assert metrics.value("tlsward_certificate_not_after_timestamp_seconds", **subjects["a.test"]) == leaf_not_after
    assert subjects["a.test"]["issuer_cn"] == "Lab Intermediate" and len(subjects["a.test"]["sha256"]) == 16

    store.record_scan(scan_result("a.test:443", days_left=30, at=NOW + 2 * DAY))   # recovered
    again = scrape(metrics_app(store))
    assert again.value("tlsward_probe_success", endpoint="a.test:443") == 1
    assert again.series("tlsward_probe_failure_info") == []


def test_the_chain_expiry_is_the_intermediate_s_when_it_expires_first(store: Store) -> None:
    store.record_scan(with_intermediate("short.test:443", leaf_days=80, intermediate_days=10))
    store.record_scan(with_intermediate("long.test:443", leaf_days=5, intermediate_days=10))
    metrics = scrape(metrics_app(store))
    leaf = "tlsward_endpoint_certificate_not_after_timestamp_seconds"
    chain = "tlsward_endpoint_chain_not_after_timestamp_seconds"
    assert metrics.value(leaf, endpoint="short.test:443") == ts(NOW + 80 * DAY)
    assert metrics.value(chain, endpoint="short.test:443") == ts(NOW + 10 * DAY)
    assert metrics.value(leaf, endpoint="long.test:443") == ts(NOW + 5 * DAY)
    assert metrics.value(chain, endpoint="long.test:443") == ts(NOW + 5 * DAY)
    # The intermediate is one certificate, presented twice: one per-certificate series.
    issuers = [labels for labels in metrics.series("tlsward_certificate_not_after_timestamp_seconds")
               if labels["subject_cn"] == "Short Intermediate"]
    assert len(issuers) == 1 and issuers[0]["issuer_cn"] == "Lab Root"


def test_findings_by_id_and_severity_and_the_worst_per_endpoint(store: Store) -> None:
    store.record_scan(scan_result("a.test:443", findings=(finding("cert.expiring", Severity.CRITICAL),
                                                          finding("chain.order", Severity.LOW))))
    store.record_scan(scan_result("b.test:443", findings=(finding("protocol.tls10", Severity.HIGH),
                                                          finding("chain.order", Severity.LOW))))
    store.record_scan(scan_result("c.test:443"))
    store.record_scan(failed_result("d.test:443"))
    metrics = scrape(metrics_app(store))
    findings = {(labels["finding"], labels["severity"]): metrics.value("tlsward_findings", **labels)
                for labels in metrics.series("tlsward_findings")}
    assert findings == {("cert.expiring", "critical"): 1, ("chain.order", "low"): 2, ("protocol.tls10", "high"): 1,
                        ("conn.refused", "critical"): 1}
    by_severity: dict[str, float] = {}
    for (_, severity), count in findings.items():
        by_severity[severity] = by_severity.get(severity, 0) + count
    assert by_severity == {"critical": 2, "high": 1, "low": 2}
    worst = {labels["endpoint"]: metrics.value("tlsward_endpoint_worst_severity", **labels)
             for labels in metrics.series("tlsward_endpoint_worst_severity")}
    assert worst == {"a.test:443": 4, "b.test:443": 3, "c.test:443": -1, "d.test:443": 4}


def test_no_label_value_is_longer_than_the_maximum(store: Store) -> None:
    long_team = "platform-" + "x" * 300
    store.upsert_endpoint(endpoint("a.test:443", owner="o" * 500, team=long_team + "-a", environment="prod"))
    store.upsert_endpoint(endpoint("b.test:443", team=long_team + "-b"))
    long_name = ".".join(["a" * 60] * 4) + ".test"          # a 249-character host name, still a valid one
    store.record_scan(scan_result(f"{long_name}:443", leaf=long_name))
    store.record_scan(scan_result("a.test:443"))
    stats = ProbeStats()
    stats.record(team=long_team, failure_kind=None, handshake_seconds=0.01)
    metrics = scrape(metrics_app(store, stats))
    values = metrics.label_values()
    assert values and max(len(value) for value in values) == MAX_LABEL_LENGTH
    teams = [labels["team"] for labels in metrics.series("tlsward_endpoint_info") if labels.get("team")]
    assert len(teams) == 2 and len(set(teams)) == 2       # clipped, yet still two distinct series
    assert all(team.startswith("platform-xxx") for team in teams)
    assert metrics.value("tlsward_probe_success", endpoint=clip(f"{long_name}:443")) == 1


def test_a_second_scrape_shows_the_new_certificate(store: Store) -> None:
    app = metrics_app(store)
    store.record_scan(scan_result("a.test:443", days_left=10))
    first = scrape(app)
    assert first.value("tlsward_endpoint_certificate_not_after_timestamp_seconds", endpoint="a.test:443") \
        == ts(NOW + 10 * DAY)
    renewed = replace(scan_result("a.test:443", leaf="a.test renewed", days_left=90), scanned_at=NOW + DAY)
    store.record_scan(renewed)
    second = scrape(app)
    assert second.value("tlsward_endpoint_certificate_not_after_timestamp_seconds", endpoint="a.test:443") \
        == ts(NOW + 90 * DAY)
    # Only certificates presented now are exported: the replaced one is gone, not left to alert forever.
    subjects = {labels["subject_cn"] for labels in second.series("tlsward_certificate_not_after_timestamp_seconds")}
    assert subjects == {"a.test renewed", "Lab Intermediate"}


def test_disabled_and_never_probed_endpoints(store: Store) -> None:
    store.upsert_endpoint(endpoint("new.test:443", team="web"))
    store.record_scan(scan_result("off.test:443"))
    store.upsert_endpoint(endpoint("off.test:443", enabled=False))
    metrics = scrape(metrics_app(store))
    assert metrics.series("tlsward_endpoint_info") == [{"endpoint": "new.test:443", "environment": "", "owner": "",
                                                        "team": "web"}]
    for name in ("tlsward_probe_success", "tlsward_endpoint_certificate_not_after_timestamp_seconds",
                 "tlsward_probe_last_timestamp_seconds", "tlsward_certificate_not_after_timestamp_seconds"):
        assert metrics.series(name) == [], name


def alert_rows(connection: Connection, rows: list[tuple[str, str, int]]) -> None:
    """Insert alerts into whatever ``alert`` table the monitor's migration defines: status, route and severity
    as given, every other required column a dummy of its type (the exporter reads only those three)."""
    alert = Table("alert", MetaData(), autoload_with=connection)
    values = []
    for i, (status, route, severity) in enumerate(rows):
        row: dict[str, object] = {"status": status, "route": route, "severity": severity}
        for column in alert.columns:
            if column.name in row or column.nullable or column.server_default is not None or column.primary_key:
                continue
            kind = column.type
            row[column.name] = (i if isinstance(kind, Integer) else False if isinstance(kind, Boolean)
                                else NOW if isinstance(kind, DateTime) else {} if isinstance(kind, JSON)
                                else f"{column.name}-{i}")
        values.append(row)
    connection.execute(alert.insert(), values)


def test_no_alert_table_means_no_alert_series(tmp_path: Path) -> None:
    with open_store(f"sqlite:///{tmp_path / 'inventory.db'}") as store:
        with store.engine.begin() as connection:
            connection.execute(text("DROP TABLE IF EXISTS alert"))   # as before the monitor's migration
        store.record_scan(scan_result("a.test:443"))
        assert "tlsward_alerts" not in scrape(metrics_app(store)).families


def test_alert_counts_by_state_route_and_severity(store: Store) -> None:
    store.record_scan(scan_result("a.test:443"))
    app = metrics_app(store)
    with store.engine.connect() as connection:
        existed = inspect(connection).has_table("alert")
    if not existed:   # the monitor's migration has not landed: a table with the columns it will have
        with store.engine.begin() as connection:
            connection.execute(text("CREATE TABLE alert (status VARCHAR(16), route VARCHAR(16), severity INTEGER)"))
    try:
        assert scrape(app).families["tlsward_alerts"] == "gauge"
        assert scrape(app).series("tlsward_alerts") == []       # a table, no alerts yet: a family without samples
        with store.engine.begin() as connection:
            alert_rows(connection, [("firing", "page", 4), ("firing", "page", 4), ("firing", "ticket", 2),
                                    ("resolved", "page", 4)])
        metrics = scrape(app)
        assert metrics.value("tlsward_alerts", state="firing", route="page", severity="critical") == 2
        assert metrics.value("tlsward_alerts", state="firing", route="ticket", severity="medium") == 1
        assert metrics.value("tlsward_alerts", state="resolved", route="page", severity="critical") == 1
        assert len(metrics.series("tlsward_alerts")) == 3
    finally:
        with store.engine.begin() as connection:
            connection.execute(text("DELETE FROM alert" if existed else "DROP TABLE alert"))


def test_live_probe_statistics(store: Store) -> None:
    stats = ProbeStats()
    for seconds in (0.004, 0.005, 0.2, 3.0, 12.0):
        stats.record(team="web", failure_kind=None, handshake_seconds=seconds)
    stats.record(team="web", failure_kind="refused", handshake_seconds=None)
    stats.record_scan(failed_result("x.test:443"), team=None)
    metrics = scrape(metrics_app(store, stats))
    assert metrics.families["tlsward_probes"] == "counter"
    assert metrics.value("tlsward_probes_total", team="web", result="success", reason="") == 5
    assert metrics.value("tlsward_probes_total", team="web", result="failure", reason="refused") == 1
    assert metrics.value("tlsward_probes_total", team="", result="failure", reason="refused") == 1
    buckets = {labels["le"]: metrics.value("tlsward_handshake_duration_seconds_bucket", **labels)
               for labels in metrics.series("tlsward_handshake_duration_seconds_bucket")}
    assert buckets == {"0.005": 2, "0.01": 2, "0.025": 2, "0.05": 2, "0.1": 2, "0.25": 3, "0.5": 3, "1.0": 3,
                       "2.5": 3, "5.0": 4, "10.0": 4, "+Inf": 5}
    assert metrics.value("tlsward_handshake_duration_seconds_count", team="web") == 5
    assert metrics.value("tlsward_handshake_duration_seconds_sum", team="web") == pytest.approx(15.209)
    assert metrics.value("tlsward_inventory_up") == 1


def test_every_exposed_family_is_in_the_catalogue(store: Store) -> None:
    store.record_scan(scan_result("a.test:443", findings=(finding("chain.order", Severity.LOW),)))
    store.record_scan(failed_result("b.test:443"))
    stats = ProbeStats()
    stats.record(team="web", failure_kind=None, handshake_seconds=0.01)
    metrics = scrape(metrics_app(store, stats))
    exposed = {name + "_total" if kind == "counter" else name for name, kind in metrics.families.items()}
    # alerts: once the table exists; client requests: once access logs are ingested (tests/e2e/test_impact_cli.py)
    later = {"tlsward_alerts", "tlsward_client_requests_last_day", *RENEWAL_FAMILIES}   # (renewals: below)
    assert set(METRICS) - later <= exposed <= set(METRICS)
    for name, kind in metrics.families.items():
        assert METRICS[name + "_total" if kind == "counter" else name].type == kind


RENEWAL_FAMILIES = ("tlsward_managed_certificate_renewal_timestamp_seconds",
                    "tlsward_managed_certificate_renewal_success",
                    "tlsward_managed_certificate_not_after_timestamp_seconds")


def _renewal(name: str, outcome: Outcome, finished: dt.datetime, not_after: dt.datetime | None) -> RenewalEvent:
    return RenewalEvent(certificate=name, source="ca", outcome=outcome, started_at=finished - dt.timedelta(seconds=2),
                        finished_at=finished, reason="" if outcome.ok else "nginx -t failed",
                        new_sha256="ab" * 32 if not_after else None, new_not_after=not_after)


def test_managed_certificate_renewals(store: Store) -> None:
    """Each managed certificate's newest attempt (time and outcome), whether it succeeded, and the expiry of the
    newest certificate a renewal got served: a rolled-back renewal keeps the previous expiry."""
    history = LifecycleStore(store)
    history.record(_renewal("www", Outcome.VERIFIED, NOW - 3 * DAY, NOW + 27 * DAY))
    history.record(_renewal("www", Outcome.ROLLED_BACK, NOW - DAY, NOW + 29 * DAY))
    history.record(_renewal("api", Outcome.DEPLOYED, NOW - 2 * DAY, NOW + 60 * DAY))
    metrics = scrape(metrics_app(store))
    assert metrics.series("tlsward_managed_certificate_renewal_timestamp_seconds") == [
        {"certificate": "api", "outcome": "deployed"}, {"certificate": "www", "outcome": "rolled_back"}]
    assert metrics.value("tlsward_managed_certificate_renewal_timestamp_seconds", certificate="www",
                         outcome="rolled_back") == ts(NOW - DAY)
    assert metrics.value("tlsward_managed_certificate_renewal_success", certificate="www") == 0
    assert metrics.value("tlsward_managed_certificate_renewal_success", certificate="api") == 1
    assert metrics.value("tlsward_managed_certificate_not_after_timestamp_seconds", certificate="www") == \
        ts(NOW + 27 * DAY), "the rolled-back certificate was never served: the previous expiry stands"
    assert metrics.value("tlsward_managed_certificate_not_after_timestamp_seconds", certificate="api") == \
        ts(NOW + 60 * DAY)
