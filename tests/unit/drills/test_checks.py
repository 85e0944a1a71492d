"""Judging a drill: each kind of expectation met, missing (with the reason in words), times from the fault."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace

import pytest

from tlsward.drills.checks import evaluate, phase_settled
from tlsward.model.drills import (
    SCHEMA,
    DrillReport,
    Expectation,
    Observation,
    PhaseRecord,
    Runbook,
    finding_anchor,
    report_document,
)

PHASES = (PhaseRecord("baseline", "healthy", 0.0, 0.0, 1.0, 1),
          PhaseRecord("fault", "break it", 1.0, 1.5, 3.0, 2, fault=True),
          PhaseRecord("revert", "fix it", 3.0, 3.2, 4.0, 1))


def scan(phase: str, at: float, *ids: str, success: bool = True, failure: str | None = None) -> Observation:
    return Observation("scan", phase, at, "svc:443", finding_ids=ids, success=success, failure=failure)


def alert(phase: str, at: float, rule: str, kind: str | None = "firing", route: str = "page",
          stage: str | None = "present", receivers: tuple[str, ...] = ("pager",)) -> Observation:
    return Observation("alert", phase, at, rule, notification=kind, route=route, stage=stage, severity="high",
                       receivers=receivers, key=f"{rule}:svc:443", summary=f"svc: {rule}")


def test_met_expectations_carry_the_time_from_the_fault() -> None:
    observations = [scan("baseline", 0.5), scan("fault", 1.6), scan("fault", 2.0, "chain.incomplete"),
                    alert("fault", 2.3, "chain.incomplete", route="ticket", receivers=("tickets",))]
    detect = Expectation("detection", "fault", "chain.incomplete")
    page = Expectation("alert", "fault", "chain.incomplete", route="ticket")
    quiet = Expectation("quiet", "baseline")
    checks = evaluate([quiet, detect, page], PHASES, observations)
    assert [c.met for c in checks] == [True, True, True]
    assert checks[1].observed_at_s == 2.0 and checks[1].after_fault_s == pytest.approx(0.5)
    assert checks[2].after_fault_s == pytest.approx(0.8)
    assert "to tickets" in checks[2].detail
    report = DrillReport("d", "t", "lab", "lab", dt.datetime(2026, 1, 1, tzinfo=dt.UTC), 4.0, "x", (), PHASES, checks,
                         tuple(observations))
    assert report.passed and report.missing == ()
    assert report.time_to_detect_s is not None and abs(report.time_to_detect_s - 0.5) < 1e-9
    assert report.time_to_alert_s is not None and abs(report.time_to_alert_s - 0.8) < 1e-9


def test_a_missing_detection_says_what_the_scans_reported_instead() -> None:
    [check] = evaluate([Expectation("detection", "fault", "name.mismatch")], PHASES,
                       [scan("fault", 2.0, "chain.incomplete")])
    assert not check.met and check.detail == "not detected: 1 scan(s) reported chain.incomplete"
    [check] = evaluate([Expectation("detection", "fault", "name.mismatch")], PHASES,
                       [scan("fault", 2.0, success=False, failure="refused")])
    assert not check.met and "every scan failed (refused)" in check.detail
    [check] = evaluate([Expectation("detection", "fault", "name.mismatch")], PHASES, [])
    assert "no scan ran" in check.detail


def test_a_missing_alert_tells_unrouted_from_wrong_stage_from_absent() -> None:
    expected = Expectation("alert", "fault", "cert.expiring", route="page", stage="3d")
    [absent] = evaluate([expected], PHASES, [alert("fault", 2.0, "name.mismatch")])
    assert not absent.met and "no alert cert.expiring was raised" in absent.detail
    assert "name.mismatch firing" in absent.detail
    [unrouted] = evaluate([expected], PHASES, [alert("fault", 2.0, "cert.expiring", kind=None, receivers=())])
    assert not unrouted.met and "notified to no receiver" in unrouted.detail
    [early] = evaluate([expected], PHASES, [alert("fault", 2.0, "cert.expiring", stage="7d")])
    assert not early.met and "not as expected" in early.detail and "stage 7d" in early.detail
    [right] = evaluate([expected], PHASES, [alert("fault", 2.0, "cert.expiring", stage="3d")])
    assert right.met


def test_an_observation_counts_only_in_its_own_phase() -> None:
    [check] = evaluate([Expectation("alert", "revert", "chain.incomplete", notification="resolved")], PHASES,
                       [alert("fault", 2.0, "chain.incomplete", kind="resolved")])
    assert not check.met
    [check] = evaluate([Expectation("detection", "nope", "x")], PHASES, [])
    assert not check.met and check.detail == "phase nope did not run"


def test_quiet_fails_on_a_false_alarm_but_not_on_resolutions_or_unrouted_alerts() -> None:
    quiet = Expectation("quiet", "revert")
    [ok] = evaluate([quiet], PHASES, [alert("revert", 3.5, "x", kind="resolved"),
                                      alert("revert", 3.5, "y", kind=None, receivers=())])
    assert ok.met
    [noisy] = evaluate([quiet], PHASES, [alert("revert", 3.5, "cert.expiring")])
    assert not noisy.met and noisy.detail == "false alarm: cert.expiring (page) fired"


def test_a_prediction_is_met_before_the_fault_and_says_how_long_before() -> None:
    phases = (PhaseRecord("new-ca", "plan", 0.0, 0.0, 1.0, 1), PhaseRecord("switch", "switch", 1.0, 2.0, 3.0, 1, True))
    seen = [Observation("prediction", "new-ca", 0.5, "legacy", stage="remove-old-root", summary="later"),
            Observation("prediction", "new-ca", 0.5, "legacy", stage="switch-issuer", summary="legacy breaks")]
    [check] = evaluate([Expectation("prediction", "new-ca", "legacy")], phases, seen)
    assert check.met and check.detail == "legacy breaks (1.5 s before phase switch)"
    [other] = evaluate([Expectation("prediction", "new-ca", "updated")], phases, seen)
    assert not other.met


def test_a_phase_settles_once_every_positive_expectation_is_seen() -> None:
    wanted = [Expectation("quiet", "fault"), Expectation("detection", "fault", "a"),
              Expectation("alert", "fault", "a")]
    assert not phase_settled(wanted, "fault", [scan("fault", 1.0, "a")])
    assert phase_settled(wanted, "fault", [scan("fault", 1.0, "a"), alert("fault", 1.1, "a")])
    assert phase_settled(wanted, "baseline", [])           # quiet alone never holds a phase open


def test_a_report_with_an_error_or_no_checks_fails() -> None:
    base = DrillReport("d", "t", "lab", "lab", dt.datetime(2026, 1, 1, tzinfo=dt.UTC), 1.0, "x", (), PHASES, (), ())
    assert not base.passed
    [check] = evaluate([Expectation("quiet", "baseline")], PHASES, [])
    assert replace(base, checks=(check,)).passed
    assert not replace(base, checks=(check,), error="boom").passed


def test_the_json_document_is_versioned_and_names_what_is_missing() -> None:
    observations = (scan("fault", 2.0, "chain.incomplete"),)
    checks = evaluate([Expectation("detection", "fault", "chain.incomplete"),
                       Expectation("alert", "fault", "chain.incomplete", route="ticket")], PHASES, observations)
    report = DrillReport("intermediate-missing", "t", "lab", "lab (x)", dt.datetime(2026, 1, 1, tzinfo=dt.UTC), 4.0,
                         "expect", (Runbook("chain.incomplete", "why"),), PHASES, checks, observations,
                         settings=("s",), notes=("n",))
    document = json.loads(json.dumps(report_document([report])))
    assert document["schema"] == SCHEMA == "tlsward.drill-report/1" and document["passed"] is False
    [drill] = document["drills"]
    assert drill["started_at"] == "2026-01-01T00:00:00Z" and drill["passed"] is False
    assert drill["runbooks"] == [{"finding_id": "chain.incomplete", "link": "docs/findings.md#chainincomplete",
                                  "why": "why"}]
    assert drill["time_to_detect_s"] == 0.5 and drill["time_to_alert_s"] is None
    assert drill["missing"] == ["alert chain.incomplete notified firing (route ticket) [fault]: no alert "
                                "chain.incomplete was raised"]
    assert [c["met"] for c in drill["checks"]] == [True, False]
    assert drill["observations"][0]["finding_ids"] == ["chain.incomplete"]
    assert {p["name"] for p in drill["phases"]} == {"baseline", "fault", "revert"}


def test_finding_anchors_match_the_docs_headings() -> None:
    assert finding_anchor("chain.incomplete") == "chainincomplete"
    assert finding_anchor("trust.store_fails") == "truststore_fails"
    assert Runbook("cert.revocation_unknown").link == "docs/findings.md#certrevocation_unknown"
