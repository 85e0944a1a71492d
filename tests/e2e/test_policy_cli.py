"""``tlsward policy list|show`` as a user runs them: tables, --json, and one-line errors with exit code 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

TLSWARD = Path(sys.executable).with_name("tlsward")
ENV = {k: v for k, v in os.environ.items() if not k.startswith("TLSWARD_")} | {"COLUMNS": "200"}
USAGE = 2


def tlsward(*args: str) -> subprocess.CompletedProcess[str]:
    assert TLSWARD.is_file(), f"{TLSWARD} is missing: install the project into this venv"
    return subprocess.run([str(TLSWARD), *args], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=60, env=ENV, check=False)


def test_list() -> None:
    proc = tlsward("policy", "list")
    assert proc.returncode == 0, proc.stderr
    for name in ("mozilla-modern", "mozilla-intermediate", "mozilla-old"):
        assert name in proc.stdout
    listed = json.loads(tlsward("policy", "list", "--json").stdout)
    assert [p["name"] for p in listed] == ["mozilla-modern", "mozilla-intermediate", "mozilla-old"]


def test_show_prints_every_rule() -> None:
    proc = tlsward("policy", "show", "mozilla-intermediate")
    assert proc.returncode == 0, proc.stderr
    for text in ("versions", "TLSv1.2", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "min_dh_bits", "2048",
                 "hsts_min_max_age", "63072000 (730 days)", "allowed_issuers", "no rule"):
        assert text in proc.stdout, text


def test_show_file_as_json(tmp_path: Path) -> None:
    policy = tmp_path / "team.toml"
    policy.write_text('extends = "mozilla-intermediate"\nversions = ["TLSv1.3"]\nmin_rsa_bits = 3072\n')
    proc = tlsward("policy", "show", str(policy), "--json")
    assert proc.returncode == 0, proc.stderr
    shown = json.loads(proc.stdout)
    assert shown["name"] == "team" and shown["versions"] == ["TLSv1.3"] and shown["min_rsa_bits"] == 3072
    assert shown["min_dh_bits"] == 2048 and shown["source"] == str(policy)


def test_bad_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    policy = tmp_path / "bad.yaml"
    policy.write_text("groups: [X25519, curve9000]\n")
    proc = tlsward("policy", "show", str(policy))
    assert proc.returncode == USAGE
    assert proc.stdout == ""
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith(f"error: {policy}: key 'groups': unknown group") and "'curve9000'" in line
    unknown = tlsward("policy", "show", "mozilla-strict")
    assert unknown.returncode == USAGE and "not a shipped profile" in unknown.stderr
