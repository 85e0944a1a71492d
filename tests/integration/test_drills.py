"""Every drill end to end against the built-in lab: a loopback endpoint built from the lab's PKI and server code,
the real monitor (scanner, alert rules, lifecycle, routes) over a fresh SQLite inventory, a fault injected mid-drill.
Each must be detected AND alerted, and the report must say so with the times; a drill whose detection is missing
must fail and name it. Then a staging target driven by --apply/--revert shell hooks, and the CLI as a user runs it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from typer.testing import CliRunner

from tests.integration.test_notifiers import http_receiver
from tlsward.drills import scenarios
from tlsward.drills.catalogue import DRILLS
from tlsward.drills.harness import MonitorSetup
from tlsward.drills.loopback import Deployment, LoopbackLab
from tlsward.drills.runner import StagingOptions, run_lab_drill, run_staging_drill
from tlsward.model.drills import DrillReport, DrillSpec
from tlsward.monitor.config import load_config
from tlsward.storage import open_store
from tlsward.storage.ca import CaStore
from tlsward.storage.lifecycle import LifecycleStore

pytestmark = pytest.mark.integration


def explain(report: DrillReport) -> str:
    return f"{report.drill}: error={report.error}; " + "; ".join(
        f"MISSING [{c.expectation.phase}] {c.expectation.describe()}: {c.detail}" for c in report.missing)


@pytest.mark.parametrize("drill", DRILLS, ids=lambda d: d.name)
def test_each_drill_detects_and_alerts_against_the_lab(drill: DrillSpec, tmp_path: Path) -> None:
    report = run_lab_drill(drill.name, work_dir=tmp_path)
    assert report.passed, explain(report)
    fault = next(p for p in report.phases if p.fault)
    met = {(c.expectation.kind, c.expectation.phase) for c in report.checks if c.met}
    assert ("detection", fault.name) in met and ("alert", fault.name) in met, "detection AND alert"
    assert report.time_to_detect_s is not None and 0 <= report.time_to_detect_s < 30
    assert report.time_to_alert_s is not None and report.time_to_detect_s <= report.time_to_alert_s < 30
    assert [p.name for p in report.phases] == [p.name for p in drill.phases]
    scans = [o for o in report.observations if o.kind == "scan"]
    assert scans and all(o.success for o in scans), "the fault breaks a rule, not the handshake"
    alerts = [o for o in report.observations if o.kind == "alert"]
    assert all(o.receivers for o in alerts), "every alert raised was routed to a receiver"
    assert (tmp_path / "drill-inventory.db").exists()


def test_expiry_escalates_one_alert_then_the_renewal_resolves_it(tmp_path: Path) -> None:
    report = run_lab_drill("cert-expiring", work_dir=tmp_path)
    assert report.passed, explain(report)
    sent = [(o.phase, o.notification, o.stage, o.route, o.receivers) for o in report.observations
            if o.kind == "alert"]
    assert sent == [("seven-days", "firing", "7d", "page", ("oncall-pager",)),
                    ("three-days", "firing", "3d", "page", ("oncall-pager",)),
                    ("renewal", "resolved", "3d", "page", ("oncall-pager",))]
    keys = {o.key for o in report.observations if o.kind == "alert"}
    assert len(keys) == 1, "one certificate, one alert: the 3-day page is an escalation, not a new alert"
    renewals = [o for o in report.observations if o.kind == "renewal"]
    assert [(o.phase, o.what, o.success) for o in renewals] == [("renewal", "drill-endpoint", True)], \
        "tlsward's own renewal fired once, in the renewal phase, and ended verified"
    served = (tmp_path / "served" / "fullchain.pem").read_bytes()
    leaf = x509.load_pem_x509_certificates(served)[0]
    assert renewals[0].summary.split("new certificate ")[1].startswith(leaf.fingerprint(hashes.SHA256()).hex()[:16])
    assert (leaf.not_valid_after_utc - leaf.not_valid_before_utc).days >= 89, "the renewed 90-day certificate"
    with open_store(f"sqlite:///{tmp_path / 'drill-inventory.db'}") as store:
        history = LifecycleStore(store).history("drill-endpoint")
        recorded = CaStore(store).find(leaf.fingerprint(hashes.SHA256()).hex())
    assert [e.outcome.value for e in history] == ["verified"]
    assert recorded is not None, "the internal CA recorded the renewed certificate in the inventory"


def test_ca_rotation_names_the_legacy_clients_before_the_switch(tmp_path: Path) -> None:
    report = run_lab_drill("ca-rotation", work_dir=tmp_path)
    assert report.passed, explain(report)
    switch = next(p for p in report.phases if p.name == "switch")
    predicted = next(c for c in report.checks if c.expectation.kind == "prediction")
    assert predicted.observed_at_s is not None and predicted.observed_at_s < switch.fault_at_s
    assert "legacy-clients" in predicted.detail and "before phase switch" in predicted.detail
    fired = {o.what: o.route for o in report.observations if o.kind == "alert" and o.phase == "switch"}
    assert fired == {"trust.store_fails": "page", "chain.changed": "ticket"}


def test_tls10_is_seen_by_the_deep_scans(tmp_path: Path) -> None:
    report = run_lab_drill("tls10-regression", work_dir=tmp_path)
    assert report.passed, explain(report)
    fault = [o for o in report.observations if o.kind == "scan" and o.phase == "fault"]
    assert fault and all(o.deep for o in fault)
    assert {"protocol.tls10", "protocol.tls11", "policy.violation"} <= set(fault[0].finding_ids)


def test_a_missing_detection_fails_the_drill_and_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """revocation-down with the monitor's default probes (`[probes] revocation = "off"`): nothing is detected,
    nothing alerts, and the report says so, with no time to detect."""
    original = scenarios.SCENARIOS["revocation-down"]

    def as_configured() -> scenarios.LabScenario:
        scenario = original()
        setup = scenario.setup

        def default_probes(lab: LoopbackLab, work: Path) -> MonitorSetup:
            config = setup(lab, work).config
            return MonitorSetup(replace(config, probes=replace(config.probes, revocation="off")),
                                scenarios.LAB_RECEIVERS)
        scenario.setup = default_probes
        return scenario

    monkeypatch.setitem(scenarios.SCENARIOS, "revocation-down", as_configured)
    report = run_lab_drill("revocation-down", work_dir=tmp_path / "api")
    assert not report.passed and report.error is None
    missing = {(c.expectation.kind, c.expectation.what) for c in report.missing}
    assert missing == {("detection", "cert.revocation_unknown"), ("alert", "cert.revocation_unknown")}
    assert report.time_to_detect_s is None and report.time_to_alert_s is None
    detection = next(c for c in report.missing if c.expectation.kind == "detection")
    assert detection.detail == "not detected: 3 scan(s) reported no findings", "3 rounds, then it gives up"

    from tlsward.cli.drill import app

    result = CliRunner().invoke(app, ["run", "revocation-down", "--work-dir", str(tmp_path / "cli")])
    assert result.exit_code == 1, result.output
    assert "FAILED" in result.output and "missing:" in result.output
    assert "a scan reports cert.revocation_unknown [fault]" in result.output


# -- a staging target ---------------------------------------------------------------------------------------------


class Staging:
    """A stand-in staging server: serves the full chain, or the leaf alone while ``fault`` exists (the hooks
    create and remove it, as a deploy script would change a server's files and reload it)."""

    def __init__(self, work: Path) -> None:
        self.flag = work / "fault"
        self.lab = LoopbackLab(work / "server").__enter__()
        self.ca_file = self.lab.write_bundle("staging-ca", ("root",))
        self.leaf = self.lab.pki.issue()
        self.lab.deploy(Deployment(self.leaf))
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)
        self.thread.start()

    def _watch(self) -> None:
        broken = False
        while not self.stop.wait(0.05):
            if self.flag.exists() != broken:
                broken = not broken
                self.lab.deploy(Deployment(self.leaf, full_chain=not broken))

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        self.lab.close()


@pytest.fixture
def staging(tmp_path: Path) -> Iterator[Staging]:
    server = Staging(tmp_path)
    yield server
    server.close()


def test_a_staging_target_through_apply_and_revert_hooks(staging: Staging, tmp_path: Path) -> None:
    options = StagingOptions(target=staging.lab.target, connect="127.0.0.1", apply=f"touch {staging.flag}",
                             revert=f"rm {staging.flag}", ca_files=(str(staging.ca_file),), detect_timeout=20,
                             interval=0.2, hook_timeout=10, timeout=3)
    report = run_staging_drill("intermediate-missing", options, work_dir=tmp_path / "drill")
    assert report.passed, explain(report)
    assert report.mode == "staging" and report.target == staging.lab.target
    assert [p.name for p in report.phases] == ["baseline", "apply", "revert"]
    hooks = [o.summary for o in report.observations if o.kind == "action" and o.what in ("apply", "revert")]
    assert hooks[0].startswith("apply exited 0") and hooks[1].startswith("revert exited 0")
    assert report.time_to_detect_s is not None and report.time_to_alert_s is not None
    assert not staging.flag.exists()


def test_staging_notifications_reach_the_users_receivers(staging: Staging, tmp_path: Path) -> None:
    """With --config, the drill uses the user's routes and receivers: a real webhook gets what the drill saw."""
    with http_receiver() as hook:
        config = tmp_path / "monitor.toml"
        config.write_text(f'[receivers.oncall]\nkind = "webhook"\nurl = "{hook.url("/hook")}"\n')
        options = StagingOptions(target=staging.lab.target, connect="127.0.0.1", apply=f"touch {staging.flag}",
                                 revert=f"rm {staging.flag}", ca_files=(str(staging.ca_file),), detect_timeout=20,
                                 interval=0.2, hook_timeout=10, timeout=3, loaded=load_config(config))
        report = run_staging_drill("intermediate-missing", options, work_dir=tmp_path / "drill")
        assert report.passed, explain(report)
        sent = [(r.json()["kind"], r.json()["alert"]["rule"]) for r in hook.received("/hook")]
    assert sent == [("firing", "chain.incomplete"), ("resolved", "chain.incomplete")]
    routed = {o.receivers for o in report.observations if o.kind == "alert"}
    assert routed == {("oncall",)}
    assert any("receivers and routes from" in setting for setting in report.settings)


def test_a_failing_apply_hook_fails_the_drill_and_still_reverts(staging: Staging, tmp_path: Path) -> None:
    from tlsward.cli.drill import app

    reverted = tmp_path / "reverted"
    result = CliRunner().invoke(app, [
        "run", "hostname-mismatch", "--target", staging.lab.target, "--connect", "127.0.0.1",
        "--ca-file", str(staging.ca_file), "--apply", "echo cannot deploy >&2; exit 3",
        "--revert", f"touch {reverted}", "--hook-timeout", "10", "--interval", "0.2", "--detect-timeout", "5",
        "--json"])
    assert result.exit_code == 1, result.output
    document = json.loads(result.stdout)
    [drill] = document["drills"]
    assert drill["passed"] is False and "the apply command exited 3" in drill["error"]
    assert "cannot deploy" in drill["error"]
    assert reverted.exists(), "the revert hook runs after a failed apply"
    assert [p["name"] for p in drill["phases"]] == ["baseline", "apply", "cleanup"]


def test_every_drill_from_the_command_line(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", "from tlsward.cli.drill import app; app()", "run", "--all",
                           "--json", "--work-dir", str(tmp_path)], capture_output=True, text=True, timeout=300,
                          check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    document = json.loads(done.stdout)
    assert document["schema"] == "tlsward.drill-report/1" and document["passed"] is True
    assert [d["drill"] for d in document["drills"]] == [d.name for d in DRILLS]
    for drill in document["drills"]:
        assert drill["passed"] and drill["missing"] == [] and drill["time_to_detect_s"] is not None
        assert drill["runbooks"] and all(r["link"].startswith("docs/findings.md#") for r in drill["runbooks"])
        assert (tmp_path / drill["drill"] / "drill-inventory.db").exists()
