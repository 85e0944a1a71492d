"""``tlsward report slo`` as a user runs it, over history recorded by ``tlsward scan --save`` against the lab:
the ``tlsward.slo/1`` JSON, the table, exit codes (1 when a group misses ``--target``) and one-line usage
errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_scan_cli import explain, one_line, scan, tlsward
from tlsward.cli.exit_codes import ExitCode
from tlsward.lab import LabState
from tlsward.model.target import Target

pytestmark = pytest.mark.e2e

OWNERS = {"healthy-rsa": "ana", "expired": "ana", "closed": "bo"}   # every endpoint in team "web"


def canonical(lab: LabState, name: str) -> str:
    return str(Target.parse(lab.endpoint(name).target))


@pytest.fixture(scope="module")
def db(lab: LabState, tmp_path_factory: pytest.TempPathFactory) -> str:
    """An inventory with one saved scan of each endpoint: ana's two succeed (one with an expired certificate),
    bo's is refused."""
    url = f"sqlite:///{tmp_path_factory.mktemp('report') / 'inventory.db'}"
    for name, owner in OWNERS.items():
        added = tlsward("inventory", "add", lab.endpoint(name).target, "--owner", owner, "--team", "web",
                        "--db", url)
        assert added.returncode == ExitCode.OK, explain(added)
    saved = scan(lab, "--save", "--db", url, *(lab.endpoint(name).target for name in OWNERS))
    assert saved.returncode == ExitCode.UNSCANNABLE, explain(saved)   # closed
    return url


def report(*args: str) -> tuple[int, dict[str, Any]]:
    proc = tlsward("report", "slo", "--json", *args)
    assert proc.returncode in (ExitCode.OK, ExitCode.FINDINGS), explain(proc)
    assert proc.stderr.strip() == "", explain(proc)
    return proc.returncode, json.loads(proc.stdout)


def test_json_per_owner(lab: LabState, db: str) -> None:
    code, data = report("--db", db)
    assert code == ExitCode.OK
    assert data["schema"] == "tlsward.slo/1" and data["by"] == "owner" and data["window"]["text"] == "30d"
    assert data["window"]["seconds"] == 30 * 86400 and data["target_pct"] is None and data["met"] is None
    overall = data["overall"]
    assert (overall["endpoints"], overall["probes"], overall["successes"]) == (3, 3, 2)
    assert overall["success_pct"] == 66.6667 and overall["valid_certificate_probes"] == 1
    assert [e["target"] for e in overall["worst_endpoints"]] == [canonical(lab, "closed")]
    assert [g["key"] for g in data["groups"]] == ["ana", "bo"]
    ana, bo = data["groups"]
    assert (ana["probes"], ana["success_pct"], ana["valid_certificate_pct"]) == (2, 100.0, 50.0)
    assert sum(share["probes"] for share in ana["versions"]) == 2 and ana["versions"][0]["name"].startswith("TLS")
    assert ana["latency"]["probes"] == 2 and 0 < ana["latency"]["p50_ms"] <= ana["latency"]["p95_ms"]
    assert (bo["probes"], bo["success_pct"], bo["versions"], bo["latency"]["p50_ms"]) == (1, 0.0, [], None)
    assert all(group["slo"] is None for group in (overall, *data["groups"]))


def test_target_missed_is_exit_1_and_met_is_exit_0(db: str) -> None:
    code, data = report("--db", db, "--target", "99.9")
    assert code == ExitCode.FINDINGS and data["met"] is False
    ana, bo = data["groups"]
    assert ana["slo"]["met"] is True and ana["slo"]["error_budget_remaining_pct"] == 100.0
    assert bo["slo"] == {"target_pct": 99.9, "met": False, "failures": 1, "allowed_failures": 0.001,
                         "error_budget_remaining_pct": -99900.0}
    code, data = report("--db", db, "--by", "team", "--target", "60", "--window", "12h")
    assert code == ExitCode.OK and data["met"] is True and data["by"] == "team"
    assert [(g["key"], g["probes"], g["slo"]["met"]) for g in data["groups"]] == [("web", 3, True)]


def test_table_for_people(lab: LabState, db: str) -> None:
    proc = tlsward("report", "slo", "--db", db, "--target", "99.9")
    assert proc.returncode == ExitCode.FINDINGS, explain(proc)
    rows = {cells[0]: cells[1:] for cells in (line.split() for line in proc.stdout.splitlines()) if cells}
    # owner, endpoints, probes, success, valid cert, p50, p95, versions ("1.3 100%": two words), SLO, budget
    assert rows["ana"][:4] == ["2", "2", "100%", "50%"] and rows["ana"][-2:] == ["met", "100%"], explain(proc)
    assert 0 < float(rows["ana"][4]) <= float(rows["ana"][5]), explain(proc)
    assert rows["bo"] == ["1", "1", "0%", "0%", "-", "-", "-", "missed", "-99900%"], explain(proc)
    assert rows["all"][:4] == ["3", "3", "66.667%", "33.333%"] and rows["all"][-2] == "missed", explain(proc)
    assert f"worst endpoints: {canonical(lab, 'closed')} 0% (1 of 1 failed)" in proc.stdout, explain(proc)


def test_an_empty_inventory_reports_nothing(tmp_path: Path) -> None:
    code, data = report("--db", f"sqlite:///{tmp_path / 'empty.db'}", "--target", "99.9")
    assert code == ExitCode.OK and data["groups"] == [] and data["overall"]["probes"] == 0
    assert data["met"] is None


@pytest.mark.parametrize(("args", "named"), [
    (("--window", "30x"), "30x"), (("--window", "0d"), "0d"), (("--window", "30 d"), "30 d"),
    (("--window", "1w"), "1w"), (("--window", "99999d"), "99999d"), (("--by", "region"), "region"),
    (("--target", "abc"), "abc"), (("--target", "0"), "0"), (("--target", "101"), "101")])
def test_bad_options_are_one_line_exit_2(tmp_path: Path, args: tuple[str, str], named: str) -> None:
    proc = tlsward("report", "slo", "--db", f"sqlite:///{tmp_path / 'inventory.db'}", *args)
    assert proc.returncode == ExitCode.USAGE, explain(proc)
    line = one_line(proc.stderr)
    assert f"{args[0]} '{named}'" in line and proc.stdout == "", explain(proc)
