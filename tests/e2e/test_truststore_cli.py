"""``tlsward truststore list|diff|matrix|plan|export|import`` as a user runs them: output, --json documents,
exit codes, and bad input reported on one line without stopping the rest."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from tests import stores
from tlsward.report.json import load_schema
from tlsward.report.truststores_json import SCHEMA_FILE

pytestmark = pytest.mark.e2e

TLSWARD = Path(sys.executable).with_name("tlsward")
ENV = {k: v for k, v in os.environ.items() if not k.startswith("TLSWARD_") and k != "NODE_EXTRA_CA_CERTS"} | {
    "COLUMNS": "220"}
OK, FINDINGS, USAGE = 0, 1, 2


def tlsward(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    assert TLSWARD.is_file(), f"{TLSWARD} is missing: install the project into this venv"
    return subprocess.run([str(TLSWARD), *args], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=120, env={**ENV, **(env or {})}, check=False)


@pytest.fixture(scope="module")
def material(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("tscli")
    internal = stores.make_ca("Corp Internal Root", organization="Corp")
    other = stores.make_ca("Corp Next Root", organization="Corp")
    files = {
        "internal": stores.write_pem(d / "internal.pem", internal),
        "next": stores.write_pem(d / "next.pem", other),
        "bundle": stores.write_pem(d / "bundle.pem", internal),
        "garbage": d / "garbage.jks",
        "db": d / "inventory.db",
    }
    files["garbage"].write_bytes(b"\xfe\xed\xfe\xed" + b"\x00" * 7)   # a truncated JKS
    files["nss"] = stores.nss_db(d / "nss", [("corp", "C,,", files["internal"])])
    return files


def test_list_shows_the_host_stores_and_reports_a_broken_one(material: dict[str, Path]) -> None:
    proc = tlsward("truststore", "list", "--no-home", "--store", str(material["garbage"]))
    assert proc.returncode == OK, proc.stderr
    assert "/etc/ssl/certs/ca-certificates.crt" in proc.stdout
    assert "cacerts" in proc.stdout
    assert str(material["garbage"]) in proc.stdout
    doc = json.loads(tlsward("truststore", "list", "--json", "--no-home", "--store", str(material["garbage"])).stdout)
    Draft202012Validator(load_schema(SCHEMA_FILE)).validate(doc)
    kinds = {s["kind"] for s in doc["stores"]}
    assert {"system-bundle", "system-dir", "java", "node"} <= kinds
    broken = [s for s in doc["stores"] if s["path"] == str(material["garbage"])]
    assert len(broken) == 1 and broken[0]["problem"], broken


def test_diff_exit_codes_and_json(material: dict[str, Path]) -> None:
    same = tlsward("truststore", "diff", str(material["bundle"]), str(material["internal"]), "--no-home")
    assert same.returncode == OK, same.stdout + same.stderr
    proc = tlsward("truststore", "diff", str(material["bundle"]), "mozilla", "--no-home", "--json")
    assert proc.returncode == FINDINGS, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["schema"] == "tlsward.truststore-analysis/1" and doc["kind"] == "diff"
    assert [r["subject"] for r in doc["only_a"]] == ["CN=Corp Internal Root,O=Corp"]
    assert len(doc["only_b"]) > 100 and doc["common"] == 0
    system = tlsward("truststore", "diff", "system-bundle:/etc/ssl/certs/ca-certificates.crt", "system-dir",
                     "--no-home")
    assert system.returncode == OK, system.stdout + system.stderr   # Debian's bundle and its hashed directory agree


def test_diff_refuses_an_unknown_store_in_one_line() -> None:
    proc = tlsward("truststore", "diff", "no-such-store-anywhere", "mozilla", "--no-home")
    assert proc.returncode == USAGE
    assert proc.stderr.count("\n") == 1 and "no-such-store-anywhere" in proc.stderr


def test_matrix_names_the_stores_missing_the_internal_ca(material: dict[str, Path]) -> None:
    proc = tlsward("truststore", "matrix", "--json", "--no-home", "--internal-ca", str(material["internal"]),
                   "--store", str(material["nss"]), "--store", str(material["bundle"]))
    assert proc.returncode == FINDINGS, proc.stderr   # internal_ca_missing is high, the default --fail-on
    doc = json.loads(proc.stdout)
    rows = {row["store"]: row for row in doc["stores"]}
    nss = next(r for r in rows.values() if r["path"] == str(material["nss"]))
    assert nss["internal_ca_present"] == [True]
    system = rows["system-bundle:/etc/ssl/certs/ca-certificates.crt"]
    assert system["internal_ca_present"] == [False]
    missing = {f["store"] for f in doc["findings"] if f["id"] == "truststore.internal_ca_missing"}
    assert "system-bundle:/etc/ssl/certs/ca-certificates.crt" in missing
    assert nss["store"] not in missing
    fix = next(f["fix"] for f in doc["findings"] if f["id"] == "truststore.internal_ca_missing"
               and f["store"].startswith("java:"))
    assert fix.startswith("keytool -importcert -noprompt -alias internal-ca -file INTERNAL-CA.pem -keystore ")
    relaxed = tlsward("truststore", "matrix", "--no-home", "--internal-ca", str(material["internal"]),
                      "--fail-on", "critical")
    assert relaxed.returncode == OK, relaxed.stderr
    assert "truststore.internal_ca_missing" in relaxed.stdout


def test_plan_refuses_bad_ca_files_in_one_line(material: dict[str, Path], tmp_path: Path) -> None:
    missing = tlsward("truststore", "plan", "--old", str(tmp_path / "nope.pem"), "--new", str(material["next"]))
    assert missing.returncode == USAGE and "--old" in missing.stderr and "nope.pem" in missing.stderr
    junk = tmp_path / "junk.pem"
    junk.write_text("-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n")
    bad = tlsward("truststore", "plan", "--old", str(material["internal"]), "--new", str(junk))
    assert bad.returncode == USAGE and "--new" in bad.stderr and "Traceback" not in bad.stderr


def test_plan_human_output_lists_breaks_with_fixes(material: dict[str, Path]) -> None:
    proc = tlsward("truststore", "plan", "--old", str(material["internal"]), "--new", str(material["next"]),
                   "--no-home", "--store", str(material["nss"]))
    assert proc.returncode == FINDINGS, proc.stderr
    assert "2. switch-issuer" in proc.stdout
    assert f"certutil -A -d sql:{material['nss']} -n new-root -t C,, -i {material['next']}" in proc.stdout


def test_export_then_import_into_the_inventory(material: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "host.json"
    proc = tlsward("truststore", "export", "-o", str(out), "--no-home")
    assert proc.returncode == OK, proc.stderr
    doc = json.loads(out.read_text())
    assert not list(tmp_path.glob(".host.json.*")), "the temporary file of the atomic write was left behind"
    garbage = tmp_path / "garbage.json"
    garbage.write_text('{"schema": "tlsward.truststores/1", "host": 7}')
    db = f"sqlite:///{tmp_path / 'inv.db'}"
    imported = tlsward("truststore", "import", str(garbage), str(out), "--db", db)
    assert imported.returncode == USAGE, imported.stderr        # one refused ...
    assert f"{doc['host']}, {len(doc['stores'])} stores" in imported.stdout   # ... and the good one imported
    assert str(garbage) in imported.stderr and imported.stderr.count("error:") == 1
    older = dict(doc, collected_at="2020-01-01T00:00:00+00:00")
    stale = tmp_path / "older.json"
    stale.write_text(json.dumps(older))
    refused = tlsward("truststore", "import", str(stale), "--db", db)
    assert refused.returncode == USAGE and "older.json" in refused.stderr
    forced = tlsward("truststore", "import", str(stale), "--db", db, "--force")
    assert forced.returncode == OK, forced.stderr
