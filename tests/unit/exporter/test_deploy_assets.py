"""The dashboard, the rules and the metric reference may only name metrics the exporter really exposes: a
renamed metric must break this test, not a dashboard nobody looks at until the night it is needed."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.unit.exporter.scraping import parse
from tests.unit.storage.builders import failed_result, finding, scan_result
from tlsward.exporter.app import metrics_app
from tlsward.exporter.collector import METRICS
from tlsward.model.findings import Severity
from tlsward.model.lifecycle import Outcome, RenewalEvent
from tlsward.model.metrics import ProbeStats
from tlsward.storage import open_store
from tlsward.storage.lifecycle import LifecycleStore

ROOT = Path(__file__).resolve().parents[3]
DASHBOARD = ROOT / "deploy" / "grafana" / "tlsward-dashboard.json"
RULES = ROOT / "deploy" / "prometheus" / "rules.yml"
DOCS = ROOT / "docs" / "metrics.md"
METRIC_NAME = re.compile(r"tlsward_[a-z_]+")
# In rules and docs, recording-rule names (level:tlsward_metric:operation) contain metric-like words too.
NOT_A_RECORDING_RULE = re.compile(r"(?<![\w:])tlsward_[a-z_]+(?![\w:])")


@pytest.fixture(scope="module")
def exposed(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """Every sample name a populated exporter writes (``_bucket``, ``_total`` ... included)."""
    path = tmp_path_factory.mktemp("inventory") / "inventory.db"
    with open_store(f"sqlite:///{path}") as store:
        store.record_scan(scan_result("a.test:443", findings=(finding("chain.order", Severity.LOW),)))
        store.record_scan(failed_result("b.test:443"))
        stats = ProbeStats()
        stats.record(team="web", failure_kind=None, handshake_seconds=0.02)
        now = dt.datetime.now(dt.UTC)
        LifecycleStore(store).record(RenewalEvent(
            certificate="www", source="ca", outcome=Outcome.VERIFIED, started_at=now, finished_at=now,
            new_sha256="ab" * 32, new_not_after=now + dt.timedelta(days=30)))
        _, _, body = metrics_app(store, stats).render()
    names = set(parse(body.decode()).samples)
    assert len(names) > 15
    return names


def dashboard_queries() -> Iterator[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    for panel in dashboard["panels"]:
        for target in panel.get("targets", ()):
            yield target["expr"]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            yield variable["query"]["query"]


def test_the_dashboard_is_json_with_both_rows() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    rows = [panel["title"] for panel in dashboard["panels"] if panel["type"] == "row"]
    assert rows == ["Executive", "On-call"]
    titles = {panel["title"] for panel in dashboard["panels"]}
    assert {"Endpoints by status", "Certificates by time to expiry", "Failing probes", "Soonest expiries (endpoints)",
            "Handshake latency", "TLS version mix"} <= titles
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def test_every_dashboard_query_names_only_exposed_metrics(exposed: set[str]) -> None:
    queries = list(dashboard_queries())
    referenced = {name for query in queries for name in METRIC_NAME.findall(query)}
    assert referenced and referenced <= exposed, sorted(referenced - exposed)
    assert all(METRIC_NAME.search(query) for query in queries)


def test_every_rule_names_only_exposed_metrics(exposed: set[str]) -> None:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    expressions = [rule["expr"] for group in groups for rule in group["rules"]]
    referenced = {name for expr in expressions for name in NOT_A_RECORDING_RULE.findall(expr)}
    assert referenced <= exposed, sorted(referenced - exposed)


def test_the_reference_documents_every_metric_and_only_those() -> None:
    text = DOCS.read_text()
    documented = set(NOT_A_RECORDING_RULE.findall(text))
    catalogue = set(METRICS)
    histogram_series = {f"{spec.name}{suffix}" for spec in METRICS.values() if spec.type == "histogram"
                        for suffix in ("_bucket", "_sum", "_count")}
    assert catalogue <= documented, sorted(catalogue - documented)
    assert documented <= catalogue | histogram_series, sorted(documented - catalogue - histogram_series)
    for spec in METRICS.values():   # the table row names the type and every label
        row = next(line for line in text.splitlines() if line.startswith(f"| `{spec.name}`"))
        assert f"| {spec.type} |" in row, row
        for label in spec.labels:
            assert f"`{label}`" in row, (spec.name, label)
