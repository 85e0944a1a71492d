"""The drill catalogue is consistent: phases, expectations, runbooks and scenarios agree with each other and with
the finding catalogue and docs/findings.md."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tlsward.drills.catalogue import DRILLS, drill_named
from tlsward.drills.scenarios import SCENARIOS
from tlsward.model.drills import DrillSpec, finding_anchor
from tlsward.model.findings import FINDING_CATALOGUE

DOCS = Path(__file__).resolve().parents[3] / "docs"
ALERT_RULES = set(FINDING_CATALOGUE) | {"cert.expiring", "chain.changed", "probe.failing"}
ISSUE_DRILLS = {"cert-expiring", "intermediate-missing", "hostname-mismatch", "tls10-regression", "ca-rotation",
                "revocation-down"}


def test_every_drill_the_issue_asks_for_exists_once() -> None:
    names = [d.name for d in DRILLS]
    assert sorted(names) == sorted(ISSUE_DRILLS) and len(set(names)) == len(names)
    assert set(SCENARIOS) == ISSUE_DRILLS
    assert drill_named("ca-rotation").name == "ca-rotation"
    with pytest.raises(KeyError):
        drill_named("nope")


@pytest.mark.parametrize("drill", DRILLS, ids=lambda d: d.name)
def test_phases_and_expectations_agree(drill: DrillSpec) -> None:
    phases = [p.name for p in drill.phases]
    assert phases[0] == "baseline" and len(set(phases)) == len(phases)
    assert sum(p.fault for p in drill.phases) == 1, "exactly one phase injects the fault"
    assert {e.phase for e in drill.expectations} <= set(phases)
    fault = next(p.name for p in drill.phases if p.fault)
    kinds = {e.kind for e in drill.expectations if e.phase == fault}
    assert {"detection", "alert"} <= kinds, "the fault must be both detected and alerted"
    assert any(e.kind == "quiet" and e.phase == "baseline" for e in drill.expectations), "baseline: no false alarm"
    assert [p.name for p in drill.staging_phases] == ["baseline", "apply", "revert"]
    assert {e.phase for e in drill.staging_expectations} <= {"baseline", "apply", "revert"}
    assert any(e.kind == "alert" and e.phase == "apply" for e in drill.staging_expectations)
    assert drill.staging_hint.startswith("--apply")
    assert drill.title and drill.situation and drill.expectation


@pytest.mark.parametrize("drill", DRILLS, ids=lambda d: d.name)
def test_ids_are_real_and_runbooks_exist_in_the_docs(drill: DrillSpec) -> None:
    text = (DOCS / "findings.md").read_text(encoding="utf-8")
    documented = {finding_anchor(m) for m in re.findall(r"^### `([^`]+)`", text, re.MULTILINE)}
    assert drill.runbooks
    for runbook in drill.runbooks:
        assert runbook.finding_id in FINDING_CATALOGUE
        assert runbook.link.split("#", 1)[1] in documented, runbook.link
    for e in (*drill.expectations, *drill.staging_expectations):
        if e.kind == "detection":
            assert e.what in FINDING_CATALOGUE, e
        elif e.kind == "alert":
            assert e.what in ALERT_RULES and e.notification in ("firing", "resolved"), e
            assert e.route in (None, "page", "ticket")


@pytest.mark.parametrize("drill", DRILLS, ids=lambda d: d.name)
def test_each_lab_phase_has_an_action(drill: DrillSpec) -> None:
    scenario = SCENARIOS[drill.name]()
    assert set(scenario.actions) == {p.name for p in drill.phases}


def test_the_cert_expiring_drill_escalates_within_one_certificate() -> None:
    drill = drill_named("cert-expiring")
    assert drill.phase("three-days").clock_offset_days == 4.0
    stages = [e.stage for e in drill.expectations if e.kind == "alert" and e.notification == "firing"]
    assert stages == ["7d", "3d"]
    with pytest.raises(KeyError):
        drill.phase("apply")
    assert drill.phase("apply", staging=True).fault


def test_the_drills_page_documents_every_drill() -> None:
    text = (DOCS / "drills.md").read_text(encoding="utf-8")
    for drill in DRILLS:
        assert f"### `{drill.name}`" in text, drill.name
        for runbook in drill.runbooks:
            assert runbook.link.replace("docs/", "") in text, (drill.name, runbook.link)
