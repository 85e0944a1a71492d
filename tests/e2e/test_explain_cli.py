"""``tlsward explain ID``: the runbook of every finding, as a person and as a script read it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tlsward.model.findings import FINDING_CATALOGUE

pytestmark = pytest.mark.e2e

TLSWARD = Path(sys.executable).with_name("tlsward")
ENV = {k: v for k, v in os.environ.items() if not k.startswith("TLSWARD_")} | {"COLUMNS": "200"}


def tlsward(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(TLSWARD), *args], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=60, env=ENV, check=False)


def test_every_finding_explains_itself_with_confirm_and_fix() -> None:
    listed = json.loads(tlsward("explain", "--list", "--json").stdout)
    assert [item["id"] for item in listed] == list(FINDING_CATALOGUE)
    for fid in ("chain.incomplete", "cert.expiring", "trust.store_fails", "deploy.not_deployed"):
        proc = tlsward("explain", fid, "--json")
        assert proc.returncode == 0, proc.stderr
        book = json.loads(proc.stdout)
        assert book["id"] == fid and book["confirm"] and book["fix"]
        assert book["runbook"] == "docs/findings.md#" + fid.replace(".", "")
    human = tlsward("explain", "chain.incomplete")
    assert human.returncode == 0
    for text in ("What it means", "Confirm", "Fix", "fullchain.pem", "docs/findings.md#chainincomplete"):
        assert text in human.stdout, text


def test_an_unknown_id_is_one_line_with_suggestions() -> None:
    proc = tlsward("explain", "chain.incompleet")
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "did you mean chain.incomplete" in proc.stderr
