"""``tlsward token create|list|revoke`` as an administrator runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.test_scan_cli import explain, tlsward
from tlsward.cli.exit_codes import ExitCode

pytestmark = pytest.mark.e2e


def test_create_list_revoke(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'inventory.db'}"
    created = tlsward("token", "create", "--name", "ci-pipeline", "--role", "operator", "--expires", "30d",
                      "--json", "--db", db)
    assert created.returncode == ExitCode.OK, explain(created)
    token = json.loads(created.stdout)
    assert token["token"].startswith("tlw_") and token["role"] == "operator" and token["expires_at"]
    listed = tlsward("token", "list", "--db", db)
    assert "ci-pipeline" in listed.stdout and "operator" in listed.stdout and "active" in listed.stdout
    assert token["token"] not in listed.stdout, "a secret is shown once, at creation"
    revoked = tlsward("token", "revoke", str(token["id"]), "--db", db)
    assert revoked.returncode == ExitCode.OK and "revoked" in revoked.stdout, explain(revoked)
    assert "revoked" in tlsward("token", "list", "--db", db).stdout
    bad = tlsward("token", "create", "--name", "x", "--role", "root", "--db", db)
    assert bad.returncode == ExitCode.USAGE and "unknown role" in bad.stderr, explain(bad)
    missing = tlsward("token", "revoke", "999", "--db", db)
    assert missing.returncode == ExitCode.USAGE and "names 0 tokens" in missing.stderr, explain(missing)
