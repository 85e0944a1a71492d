"""``tlsward scan --save`` and ``tlsward inventory`` as a user runs them against the built-in lab."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.test_scan_cli import explain, json_lines, one_line, scan, tlsward
from tlsward.cli.exit_codes import ExitCode
from tlsward.lab import LabState
from tlsward.model.target import Target

pytestmark = pytest.mark.e2e


def canonical(lab: LabState, name: str) -> str:
    return str(Target.parse(lab.endpoint(name).target))


def test_scan_save_then_inventory_list_shows_both_with_their_worst_finding(lab: LabState, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'inventory.db'}"
    proc = scan(lab, "--save", "--db", db, lab.endpoint("expired").target, lab.endpoint("expiring-20d").target)
    assert proc.returncode == ExitCode.FINDINGS, explain(proc)
    assert len(json_lines(proc)) == 2 and proc.stderr.strip() == "", explain(proc)
    listed = tlsward("inventory", "list", "--db", db, "--json")
    assert listed.returncode == ExitCode.OK, explain(listed)
    by_target = {e["target"]: e for e in json.loads(listed.stdout)}
    assert set(by_target) == {canonical(lab, "expired"), canonical(lab, "expiring-20d")}
    expired = by_target[canonical(lab, "expired")]["last_observation"]
    assert expired["worst_finding"] == "cert.expired" and expired["worst_severity"] == "critical"
    expiring = by_target[canonical(lab, "expiring-20d")]
    assert expiring["last_observation"]["worst_finding"] == "cert.expiring"
    assert expiring["last_observation"]["worst_severity"] == "medium"
    assert 15 < expiring["leaf"]["days_left"] < 25
    soon = tlsward("inventory", "list", "--db", db, "--json", "--days-left", "0")
    assert [e["target"] for e in json.loads(soon.stdout)] == [canonical(lab, "expired")], explain(soon)


def test_add_list_show_rm(lab: LabState, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'inventory.db'}"
    target = lab.endpoint("healthy-rsa").target
    added = tlsward("inventory", "add", target, "--owner", "ana", "--team", "web", "--env", "prod",
                    "--tag", "pci", "--tag", "edge", "--db", db)
    assert added.returncode == ExitCode.OK, explain(added)
    saved = scan(lab, "--save", "--db", db, target)
    assert saved.returncode == ExitCode.OK, explain(saved)
    table = tlsward("inventory", "list", "--db", db, "--team", "web")
    assert table.returncode == ExitCode.OK and "ana" in table.stdout and "ok" in table.stdout, explain(table)
    assert json.loads(tlsward("inventory", "list", "--db", db, "--json", "--tag", "nope").stdout) == []
    shown = tlsward("inventory", "show", target, "--db", db)
    assert shown.returncode == ExitCode.OK, explain(shown)
    assert "pci, edge" in shown.stdout and "issuer" in shown.stdout and "TLSv1.3" in shown.stdout, explain(shown)
    removed = tlsward("inventory", "rm", target, "--db", db)
    assert removed.returncode == ExitCode.OK, explain(removed)
    again = tlsward("inventory", "rm", target, "--db", db)
    assert again.returncode == ExitCode.USAGE and "not in the inventory" in one_line(again.stderr), explain(again)


def test_bad_db_url_is_one_line_exit_2(tmp_path: Path) -> None:
    proc = tlsward("inventory", "list", "--db", "mysql://u@h/d")
    assert proc.returncode == ExitCode.USAGE, explain(proc)
    assert "mysql://u@h/d" in one_line(proc.stderr)


def test_unreachable_db_is_one_line_exit_4() -> None:
    proc = tlsward("inventory", "list", "--db", "postgresql+psycopg://postgres:pw@127.0.0.1:1/x?connect_timeout=3")
    assert proc.returncode == ExitCode.ENVIRONMENT, explain(proc)
    assert "pw@" not in one_line(proc.stderr)


def test_scan_save_to_an_unreachable_db_still_prints_the_scan(lab: LabState) -> None:
    proc = scan(lab, "--save", "--db", "postgresql+psycopg://postgres@127.0.0.1:1/x?connect_timeout=3",
                lab.endpoint("healthy-rsa").target)
    assert proc.returncode == ExitCode.ENVIRONMENT, explain(proc)
    assert len(json_lines(proc)) == 1, explain(proc)
    assert "--save" in one_line(proc.stderr)


def test_import_csv_with_a_bad_line_then_export(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'inventory.db'}"
    path = tmp_path / "endpoints.csv"
    path.write_text("target,owner,team,environment,tags,probe_interval,enabled\n"
                    "a.test:443,ana,web,prod,pci;edge,300,true\n"
                    "b.test:70000,bo,,,,,\n"
                    "c.test,cy,,,,,false\n", encoding="utf-8")
    dry = tlsward("inventory", "import", str(path), "--dry-run", "--db", db)
    assert dry.returncode == ExitCode.UNSCANNABLE and "nothing written" in dry.stdout, explain(dry)
    assert json.loads(tlsward("inventory", "list", "--db", db, "--json").stdout) == []
    proc = tlsward("inventory", "import", str(path), "--db", db)
    assert proc.returncode == ExitCode.UNSCANNABLE, explain(proc)
    assert one_line(proc.stderr).startswith(f"{path}:3: "), explain(proc)
    assert "70000" in proc.stderr and "2 added" in proc.stdout, explain(proc)
    exported = tlsward("inventory", "export", "--db", db)
    assert exported.returncode == ExitCode.OK, explain(exported)
    assert exported.stdout.splitlines() == ["target,sni,connect,owner,team,environment,tags,probe_interval,enabled",
                                            "a.test:443,a.test,,ana,web,prod,pci;edge,300,true",
                                            "c.test:443,c.test,,cy,,,,,false"]
    atomic = tlsward("inventory", "import", str(path), "--atomic", "--db", f"sqlite:///{tmp_path / 'other.db'}")
    assert atomic.returncode == ExitCode.USAGE and "nothing written" in atomic.stdout, explain(atomic)


def test_add_puts_an_endpoint_in_a_zone_and_refuses_a_bad_zone(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'zones.db'}"
    added = tlsward("inventory", "add", "dmz.example.test:443", "--zone", "dmz", "--db", db)
    assert added.returncode == 0 and "zone dmz" in added.stdout, added.stderr
    assert "zone dmz" in tlsward("inventory", "show", "dmz.example.test:443", "--db", db).stdout
    kept = tlsward("inventory", "add", "dmz.example.test:443", "--team", "edge", "--db", db)   # no --zone: kept
    assert kept.returncode == 0
    assert "zone dmz" in tlsward("inventory", "show", "dmz.example.test:443", "--db", db).stdout
    bad = tlsward("inventory", "add", "x.example.test:443", "--zone", "Not A Zone", "--db", db)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "--zone" in bad.stderr
