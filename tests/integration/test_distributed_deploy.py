"""deploy/distributed/ against the real tools and our own CLI: the Prometheus rules load and every alert fires in
its promtool unit test, every Grafana query is valid PromQL over metrics tlsward exposes, every command the
compose file and the systemd units run is one the CLI accepts, and the example config loads."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
import yaml
from typer.testing import CliRunner

from tlsward.cli.monitor import monitor
from tlsward.cli.worker import app as worker_app
from tlsward.distributed.metrics import METRICS

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy" / "distributed"
RULES = DEPLOY / "prometheus" / "rules-distributed.yml"
RULES_TEST = DEPLOY / "prometheus" / "rules-distributed_test.yml"
DASHBOARD = DEPLOY / "grafana" / "tlsward-distributed.json"

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def promtool() -> str:
    found = shutil.which("promtool")
    assert found, "promtool is missing: install Debian's prometheus package (`make system-deps`)"
    return found


def run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)


def test_the_rules_load_and_every_alert_fires_in_its_unit_test(promtool: str) -> None:
    checked = run(promtool, "check", "rules", str(RULES))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = run(promtool, "test", "rules", str(RULES_TEST))
    assert tested.returncode == 0, tested.stdout + tested.stderr
    alerts = {rule["alert"] for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]}
    fired = {case["alertname"] for test in yaml.safe_load(RULES_TEST.read_text())["tests"]
             for case in test["alert_rule_test"] if case["exp_alerts"]}
    assert fired == alerts, f"alerts never made to fire: {sorted(alerts - fired)}"


def _expressions() -> Iterator[str]:
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        for target in panel.get("targets", ()):
            yield target["expr"]
    for group in yaml.safe_load(RULES.read_text())["groups"]:
        for rule in group["rules"]:
            yield rule["expr"]


def test_the_dashboard_queries_are_valid_promql_over_exposed_metrics(promtool: str, tmp_path: Path) -> None:
    expressions = list(_expressions())
    rules = [{"record": f"dashboard:query_{i}:check", "expr": expr} for i, expr in enumerate(expressions)]
    path = tmp_path / "queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "queries", "rules": rules}]}))
    checked = run(promtool, "check", "rules", str(path))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    used = {name for expr in expressions for name in re.findall(r"\btlsward_[a-z0-9_]+", expr)}
    assert used and used <= set(METRICS), f"not exposed by tlsward: {sorted(used - set(METRICS))}"


def _cli() -> typer.Typer:
    cli = typer.Typer()
    cli.command("monitor")(monitor)
    for command in worker_app.registered_commands:
        cli.registered_commands.append(command)
    return cli


def _accepted(args: list[str]) -> None:
    result = CliRunner().invoke(_cli(), [*args, "--help"])
    assert result.exit_code == 0, f"tlsward {' '.join(args)}: {result.output}"


def test_the_compose_file_runs_commands_the_cli_accepts() -> None:
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "redis", "rabbitmq", "scheduler", "scheduler-standby", "worker-default", "worker-dmz",
            "prometheus", "grafana"} <= set(services)
    for name in ("scheduler", "scheduler-standby", "worker-default", "worker-dmz"):
        _accepted(services[name]["command"])
    assert services["worker-dmz"]["command"][:3] == ["worker", "--zone", "dmz"]
    for volume in services["prometheus"]["volumes"] + services["grafana"]["volumes"]:
        source = volume.split(":")[0]
        assert (DEPLOY / source).exists(), f"{volume}: {source} is missing"


def test_the_systemd_units_run_commands_the_cli_accepts() -> None:
    for unit, zone in (("tlsward-scheduler.service", ""), ("tlsward-worker@.service", "dmz")):
        text = (DEPLOY / "systemd" / unit).read_text()
        [exec_start] = re.findall(r"^ExecStart=(.*)$", text, re.MULTILINE)
        words = shlex.split(exec_start.replace("%i", zone).replace("${TLSWARD_WORKER_CONCURRENCY}", "4"))
        assert words[0].endswith("/tlsward")
        _accepted(words[1:])
        assert "EnvironmentFile=/etc/tlsward/tlsward.env" in text and "Restart=always" in text


def test_the_example_config_loads() -> None:
    from tlsward.distributed.settings import load_settings
    from tlsward.monitor.config import load_config

    config = DEPLOY / "tlsward.toml"
    assert load_config(config).config.probes.interval_s == 300
    settings = load_settings(config, broker="redis://broker:6379/0")
    assert settings.batch_size == 50 and settings.visibility_timeout_s > settings.task_limits(deep=True)[1]
