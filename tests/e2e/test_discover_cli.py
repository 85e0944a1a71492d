"""``tlsward inventory discover ...`` as a user runs it against the built-in lab and files on disk."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.test_scan_cli import explain, tlsward
from tlsward.cli.exit_codes import ExitCode
from tlsward.lab import LabState

pytestmark = pytest.mark.e2e


def test_discover_network_adds_tls_listeners_once_and_lists_other_open_ports(lab: LabState, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'inventory.db'}"
    healthy, smtp, closed = (lab.endpoint(name).port for name in ("healthy-rsa", "smtp-starttls", "closed"))
    args = ("inventory", "discover", "network", "--cidr", f"{lab.host}/32", "--ports", f"{healthy},{smtp},{closed}",
            "--team", "edge", "--db", db)
    first = tlsward(*args)
    assert first.returncode == ExitCode.OK, explain(first)
    assert f"TLS {lab.host}:{healthy}" in first.stdout and f"open {lab.host}:{smtp}" in first.stdout
    assert "1 TLS listeners, 1 other open ports; 1 added to the inventory, 0 already known" in first.stdout
    listed = json.loads(tlsward("inventory", "list", "--db", db, "--json").stdout)
    assert [(e["target"], e["team"], e["tags"]) for e in listed] == [(f"{lab.host}:{healthy}", "edge", ["discovered"])]
    tlsward("inventory", "add", f"{lab.host}:{healthy}", "--owner", "ana", "--team", "web", "--db", db)
    again = tlsward(*args)
    assert "0 added to the inventory, 1 already known" in again.stdout, explain(again)
    listed = json.loads(tlsward("inventory", "list", "--db", db, "--json").stdout)
    assert [(e["owner"], e["team"]) for e in listed] == [("ana", "web")], "discovery overwrote what a person set"


def test_discover_network_refuses_a_huge_range_before_connecting(tmp_path: Path) -> None:
    proc = tlsward("inventory", "discover", "network", "--cidr", "10.0.0.0/8", "--ports", "443",
                   "--db", f"sqlite:///{tmp_path / 'x.db'}")
    assert proc.returncode == ExitCode.USAGE and "exceed the limit" in proc.stderr, explain(proc)
