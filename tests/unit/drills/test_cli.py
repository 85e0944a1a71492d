"""``tlsward drill``: listing, and usage errors caught before anything runs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tlsward.cli.drill import app
from tlsward.drills.catalogue import DRILLS
from tlsward.model.errors import UsageError

runner = CliRunner()


def test_list_names_every_drill_with_its_runbooks() -> None:
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 0, result.output
    for drill in DRILLS:
        assert drill.name in result.output
    assert "docs/findings.md#chainincomplete" in result.output


def test_list_json() -> None:
    result = runner.invoke(app, ["list", "--json"])
    assert result.exit_code == 0, result.output
    listed = json.loads(result.output)
    assert [d["name"] for d in listed] == [d.name for d in DRILLS]
    rotation = next(d for d in listed if d["name"] == "ca-rotation")
    assert {"finding_id": "trust.store_fails", "link": "docs/findings.md#truststore_fails"} in rotation["runbooks"]
    assert any(p["fault"] for p in rotation["phases"]) and rotation["staging"].startswith("--apply")


@pytest.mark.parametrize(("args", "message"), [
    (["run"], "name a drill"),
    (["run", "cert-expiring", "--all"], "not both"),
    (["run", "nope"], "unknown drill 'nope'"),
    (["run", "--all", "--target", "h:443", "--apply", "true"], "--all runs against the built-in lab"),
    (["run", "cert-expiring", "--apply", "true"], "--apply only apply with --target"),
    (["run", "cert-expiring", "--store", "x.pem", "--sni", "a"], "--sni, --store only apply with --target"),
    (["run", "cert-expiring", "--target", "h:443"], "--target needs --apply"),
    (["run", "cert-expiring", "--target", "h:443", "--apply", "true", "--interval", "0"], "--interval must be"),
    (["run", "tls10-regression", "--target", "h:443", "--apply", "true", "--policy", "nope"], "not a shipped profile"),
    (["run", "cert-expiring", "--target", "h:443", "--apply", "true", "--ca-file", "/nonexistent.pem"],
     "cannot read the CA file"),
])
def test_usage_errors(args: list[str], message: str) -> None:
    result = runner.invoke(app, args)
    assert isinstance(result.exception, UsageError), result.output
    assert message in str(result.exception)


def test_a_bad_staging_target_is_a_usage_error_before_any_hook_runs(tmp_path: Path) -> None:
    marker = tmp_path / "applied"
    result = runner.invoke(app, ["run", "hostname-mismatch", "--target", "no port here", "--apply",
                                 f"touch {marker}"])
    assert isinstance(result.exception, UsageError), result.output
    assert not marker.exists()
