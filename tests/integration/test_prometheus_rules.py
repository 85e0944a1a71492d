"""The Prometheus assets against the real promtool (Debian's ``prometheus`` package): the rules load, their
unit tests (deploy/prometheus/rules_test.yml) prove each alert fires on synthetic series, every dashboard
query parses as PromQL, and the exporter's own output passes promtool's metric lint."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.unit.storage.builders import failed_result, finding, scan_result
from tlsward.exporter.app import metrics_app
from tlsward.model.findings import Severity
from tlsward.model.metrics import ProbeStats
from tlsward.storage import open_store

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "rules.yml"
RULES_TEST = ROOT / "deploy" / "prometheus" / "rules_test.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "tlsward-dashboard.json"

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def promtool() -> str:
    found = shutil.which("promtool")
    assert found, "promtool is missing: install Debian's prometheus package (`make system-deps`)"
    return found


def run(*cmd: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, input=stdin.decode() if stdin is not None else None, capture_output=True, text=True,
                          timeout=60, check=False)


def test_the_rules_load(promtool: str) -> None:
    checked = run(promtool, "check", "rules", str(RULES))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 18 rules found" in checked.stdout


def test_every_alert_fires_in_the_rule_unit_tests(promtool: str) -> None:
    tested = run(promtool, "test", "rules", str(RULES_TEST))
    assert tested.returncode == 0, tested.stdout + tested.stderr
    alerts = {rule["alert"] for group in yaml.safe_load(RULES.read_text())["groups"]
              for rule in group["rules"] if "alert" in rule}
    fired = {case["alertname"] for test in yaml.safe_load(RULES_TEST.read_text())["tests"]
             for case in test.get("alert_rule_test", ()) if case["exp_alerts"]}
    assert fired == alerts, f"alerts without a test that makes them fire: {sorted(alerts - fired)}"


def dashboard_expressions() -> Iterator[str]:
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        for target in panel.get("targets", ()):
            yield target["expr"]


def test_every_dashboard_query_is_valid_promql(promtool: str, tmp_path: Path) -> None:
    # promtool has no "parse this expression" command; a rule file of them does the same.
    rules = [{"record": f"dashboard:query_{i}:check",
              "expr": re.sub(r"\$\{?(team|environment)\}?", ".*", expr)}
             for i, expr in enumerate(dashboard_expressions())]
    assert len(rules) > 10
    path = tmp_path / "dashboard-rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    checked = run(promtool, "check", "rules", str(path))
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_exporter_output_passes_promtool_metric_lint(promtool: str, tmp_path: Path) -> None:
    with open_store(f"sqlite:///{tmp_path / 'inventory.db'}") as store:
        store.record_scan(scan_result("a.test:443", findings=(finding("chain.order", Severity.LOW),)))
        store.record_scan(failed_result("b.test:443"))
        stats = ProbeStats()
        stats.record(team="web", failure_kind=None, handshake_seconds=0.02)
        stats.record(team="web", failure_kind="refused", handshake_seconds=None)
        _, _, body = metrics_app(store, stats).render()
    linted = run(promtool, "check", "metrics", stdin=body)
    assert linted.returncode == 0 and not linted.stdout.strip(), linted.stdout + linted.stderr
