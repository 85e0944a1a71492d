"""Runbooks come from docs/findings.md (shipped in the package), one per catalogue id, complete, and are what
alerts, the scan JSON and ``tlsward explain`` point to."""

from __future__ import annotations

import datetime as dt

import pytest

from tlsward.model.alerts import Route
from tlsward.model.findings import FINDING_CATALOGUE, Severity
from tlsward.model.monitor import AlertSettings
from tlsward.monitor.alerting import build_alert
from tlsward.monitor.evaluate import Contribution
from tlsward.report.runbooks import DOC_PATH, anchor, runbook, runbooks

NOW = dt.datetime(2031, 5, 17, 12, tzinfo=dt.UTC)


@pytest.mark.parametrize("fid", sorted(FINDING_CATALOGUE))
def test_every_finding_has_a_complete_runbook(fid: str) -> None:
    book = runbook(fid)
    assert book is not None, f"no runbook for {fid}"
    assert book.severity.split()[0] == FINDING_CATALOGUE[fid].severity.name.lower()
    for part in (book.what, book.why, book.how, book.confirm, book.fix):
        assert len(part) >= 8, (fid, part)
    assert "\n" not in book.fix and "### " not in book.fix and "## " not in book.fix
    assert book.link == f"{DOC_PATH}#{anchor(fid)}"


def test_no_runbook_for_an_unknown_id_and_anchors_drop_dots() -> None:
    assert runbook("no.such_thing") is None
    assert anchor("chain.incomplete") == "chainincomplete"
    assert anchor("cert.not_yet_valid") == "certnot_yet_valid"
    assert set(runbooks()) == set(FINDING_CATALOGUE)


def test_a_fix_that_refers_to_a_shared_fix_carries_it() -> None:
    book = runbook("chain.incomplete")
    assert book is not None and "fullchain.pem" in book.fix and "full-chain fix:" in book.fix
    expired = runbook("cert.expired")
    assert expired is not None and "certbot renew --cert-name NAME" in expired.fix


def _part(rule: str, runbook_id: str = "") -> Contribution:
    return Contribution(key=f"{rule}:x", rule=rule, severity=Severity.HIGH, route=Route.PAGE, stage="s",
                        stage_rank=1, summary="s", description="d", fix="f", endpoint="a.test:443", owner=None,
                        team=None, environment=None, runbook=runbook_id)


def test_alerts_link_the_runbook_of_their_finding() -> None:
    assert build_alert([_part("chain.incomplete")], "firing", NOW).runbook_url == "docs/findings.md#chainincomplete"  # type: ignore[arg-type]
    failing = build_alert([_part("probe.failing", "conn.refused")], "firing", NOW,  # type: ignore[arg-type]
                          runbook_base="https://tlsward.example.com/findings")
    assert failing.runbook_url == "https://tlsward.example.com/findings#connrefused"
    changed = build_alert([_part("chain.changed")], "firing", NOW)  # type: ignore[arg-type]
    assert changed.runbook_url == "docs/monitor.md#alert-rules"
    assert AlertSettings().runbook_base == "docs/findings.md"
