"""``tlsward monitor --once`` and ``tlsward alerts ...`` as a user runs them against the built-in lab."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.test_scan_cli import explain, tlsward
from tlsward.cli.exit_codes import ExitCode
from tlsward.lab import LabState

pytestmark = pytest.mark.e2e


def test_monitor_once_then_list_ack_and_silence(lab: LabState, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'inventory.db'}"
    for name in ("expiring-5d", "valid-40d", "tls10-only"):
        added = tlsward("inventory", "add", lab.endpoint(name).target, "--connect", lab.host, "--team", "web",
                        "--db", db)
        assert added.returncode == ExitCode.OK, explain(added)
    config = tmp_path / "monitor.toml"
    config.write_text(f'[probes]\nca_files = ["{lab.ca_file}"]\n')
    checked = tlsward("monitor", "--config", str(config), "--check-config")
    assert checked.returncode == ExitCode.OK and "ok (0 receivers, 0 routes)" in checked.stdout, explain(checked)
    ran = tlsward("monitor", "--once", "--config", str(config), "--db", db)
    assert ran.returncode == ExitCode.OK, explain(ran)
    assert "stopped: 3 probes (0 failed), 3 written" in ran.stderr, explain(ran)

    listed = tlsward("alerts", "list", "--json", "--db", db)
    alerts = {a["rule"]: a for a in json.loads(listed.stdout)}
    assert set(alerts) == {"cert.expiring", "protocol.tls10"}, explain(listed)
    expiring = alerts["cert.expiring"]
    assert expiring["route"] == "page" and expiring["stage"] == "7d" and expiring["team"] == "web"
    assert expiring["endpoints"] == [lab.endpoint("expiring-5d").target]

    acked = tlsward("alerts", "ack", "cert.expiring", "--by", "ana", "--db", db)
    assert acked.returncode == ExitCode.OK and "acknowledged 1 alert(s)" in acked.stdout, explain(acked)
    after = {a["rule"]: a for a in json.loads(tlsward("alerts", "list", "--json", "--db", db).stdout)}
    assert (after["cert.expiring"]["acked_by"], after["protocol.tls10"]["acked_by"]) == ("ana", None)
    nothing = tlsward("alerts", "ack", "no.such.alert", "--db", db)
    assert nothing.returncode == ExitCode.USAGE and "no firing alert" in nothing.stderr

    silenced = tlsward("alerts", "silence", "--match", "team=web", "--for", "2h", "--comment", "rotation",
                       "--by", "ana", "--db", db)
    assert silenced.returncode == ExitCode.OK and "silence 1: team=web" in silenced.stdout, explain(silenced)
    shown = tlsward("alerts", "silences", "--db", db)
    assert "active  team=web" in shown.stdout and "ana: rotation" in shown.stdout, explain(shown)
    assert tlsward("alerts", "unsilence", "1", "--db", db).returncode == ExitCode.OK
    assert "no active or scheduled silences" in tlsward("alerts", "silences", "--db", db).stdout
    bad = tlsward("alerts", "silence", "--match", "team", "--for", "2h", "--db", db)
    assert bad.returncode == ExitCode.USAGE and "label=value" in bad.stderr


def test_bad_monitor_config_is_a_usage_error(tmp_path: Path) -> None:
    config = tmp_path / "monitor.toml"
    config.write_text("[probes]\ninterval = 'often'\n")
    proc = tlsward("monitor", "--config", str(config), "--check-config")
    assert proc.returncode == ExitCode.USAGE and "probes.interval" in proc.stderr, explain(proc)


def test_monitor_once_over_an_empty_inventory_stops_at_once(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'empty.db'}"
    ran = tlsward("monitor", "--once", "--db", db)
    assert ran.returncode == ExitCode.OK, explain(ran)
    assert "stopped: 0 probes" in ran.stderr, explain(ran)
