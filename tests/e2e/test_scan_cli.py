"""``tlsward scan`` as a user runs it against the built-in lab: every --json line validates against the
committed schema, and the exit codes are the documented ones (docs/exit-codes.md)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from tlsward.cli.exit_codes import ExitCode
from tlsward.lab import LabState
from tlsward.model.target import Target
from tlsward.report import RESULT_SCHEMA, SCHEMA_VERSION, load_schema

pytestmark = pytest.mark.e2e

TLSWARD = Path(sys.executable).with_name("tlsward")  # the console script of this venv
TIMEOUT = 120.0
ENV = {k: v for k, v in os.environ.items() if not k.startswith("TLSWARD_")}
VALIDATOR = Draft202012Validator(load_schema(RESULT_SCHEMA))


def tlsward(*args: str, stdin_text: str | None = None) -> subprocess.CompletedProcess[str]:
    assert TLSWARD.is_file(), f"{TLSWARD} is missing: install the project into this venv"
    stdin = {"input": stdin_text} if stdin_text is not None else {"stdin": subprocess.DEVNULL}
    return subprocess.run([str(TLSWARD), *args], capture_output=True, text=True, timeout=TIMEOUT, env=ENV,
                          check=False, **stdin)  # type: ignore[call-overload]


def scan(lab: LabState, *args: str, stdin_text: str | None = None) -> subprocess.CompletedProcess[str]:
    return tlsward("scan", "--json", "--connect", lab.host, "--ca-file", lab.ca_file, "--timeout", "3", *args,
                   stdin_text=stdin_text)


def explain(proc: subprocess.CompletedProcess[str]) -> str:
    return f"$ {' '.join(map(str, proc.args))}\nexit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"


def json_lines(proc: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    """Every stdout line, each one a JSON object valid against the schema."""
    objects = []
    for number, line in enumerate(proc.stdout.splitlines(), 1):
        data = json.loads(line)
        errors = [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
                  for e in VALIDATOR.iter_errors(data)]
        assert not errors, f"line {number} ({data.get('target', {}).get('input')}):\n" + "\n".join(errors)
        objects.append(data)
    return objects


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, f"expected a single line on stderr, got:\n{stderr}"
    return lines[0]


def target(lab: LabState, name: str) -> str:
    return lab.endpoint(name).target


def finding_ids(data: dict[str, Any]) -> set[str]:
    return {f["id"] for f in data["findings"]}


def test_every_lab_endpoint_validates_against_the_schema(lab: LabState) -> None:
    proc = scan(lab, *(endpoint.target for endpoint in lab.endpoints))
    results = json_lines(proc)
    assert proc.returncode == ExitCode.UNSCANNABLE, explain(proc)  # closed, blackhole, reset ...
    expected = sorted(str(Target.parse(endpoint.target)) for endpoint in lab.endpoints)
    assert sorted(r["target"]["input"] for r in results) == expected, "one JSON line per endpoint"
    assert all(r["schema_version"] == SCHEMA_VERSION for r in results)
    assert proc.stderr.strip() == "", explain(proc)
    by_sni = {r["target"]["sni"]: r for r in results}
    healthy = by_sni[lab.endpoint("healthy-ecdsa").sni]
    assert healthy["session"]["version"] == "TLSv1.3" and healthy["analysis"]["trusted"] is True
    assert healthy["findings"] == [] and healthy["chain"][0]["days_left"] > 30


def test_healthy_target_exits_0(lab: LabState) -> None:
    proc = scan(lab, target(lab, "healthy-rsa"))
    assert proc.returncode == ExitCode.OK, explain(proc)
    [result] = json_lines(proc)
    assert result["findings"] == [] and result["failure"] is None
    assert result["target"]["connect"] == lab.host and result["address"] == lab.host


def test_expired_exits_1_with_default_fail_on(lab: LabState) -> None:
    proc = scan(lab, target(lab, "expired"))
    assert proc.returncode == ExitCode.FINDINGS, explain(proc)
    [result] = json_lines(proc)
    assert "cert.expired" in finding_ids(result)
    assert result["chain"][0]["days_left"] < 0


def test_medium_finding_depends_on_fail_on(lab: LabState) -> None:
    default = scan(lab, target(lab, "expiring-20d"))
    assert default.returncode == ExitCode.OK, explain(default)
    [result] = json_lines(default)
    assert [(f["id"], f["severity"]) for f in result["findings"]] == [("cert.expiring", "medium")]
    strict = scan(lab, "--fail-on", "medium", target(lab, "expiring-20d"))
    assert strict.returncode == ExitCode.FINDINGS, explain(strict)
    json_lines(strict)


def test_closed_port_exits_3(lab: LabState) -> None:
    proc = scan(lab, target(lab, "closed"))
    assert proc.returncode == ExitCode.UNSCANNABLE, explain(proc)
    [result] = json_lines(proc)
    assert result["session"] is None and result["failure"]["kind"] == "refused"
    assert finding_ids(result) == {"conn.refused"}


def test_mtls_with_client_certificate(lab: LabState) -> None:
    proc = scan(lab, "--cert", lab.client_cert, "--key", lab.client_key, target(lab, "mtls-required"))
    assert proc.returncode == ExitCode.OK, explain(proc)
    [result] = json_lines(proc)
    auth = result["session"]["client_auth"]
    assert auth["requested"] is True and any("Intermediate CA 2" in ca for ca in auth["acceptable_cas"])
    assert auth["required"] is True and auth["presented_accepted"] is True, explain(proc)
    assert finding_ids(result) == {"mtls.required"}, explain(proc)


def test_bad_target_only_exits_2_with_one_line(lab: LabState) -> None:
    proc = scan(lab, "example.com:99999")
    assert proc.returncode == ExitCode.USAGE, explain(proc)
    line = one_line(proc.stderr)
    assert "example.com:99999" in line and "out of range" in line, explain(proc)
    assert proc.stdout == ""


def test_file_with_a_garbage_line_reports_it_and_scans_the_rest(lab: LabState, tmp_path: Path) -> None:
    targets = tmp_path / "targets.txt"
    targets.write_text(f"# inventory\n{target(lab, 'healthy-ecdsa')}\nnot a target!!\n")
    proc = scan(lab, "-f", str(targets))
    assert proc.returncode == ExitCode.UNSCANNABLE, explain(proc)  # the garbage line is a target not scanned
    line = one_line(proc.stderr)
    assert f"{targets}:3" in line and "not a target!!" in line, explain(proc)
    [result] = json_lines(proc)
    assert result["target"]["sni"] == lab.endpoint("healthy-ecdsa").sni


def test_dash_reads_targets_from_stdin(lab: LabState) -> None:
    proc = scan(lab, "-", stdin_text=f"{target(lab, 'healthy-rsa')}\n\n{target(lab, 'tls12-only')}  # legacy\n")
    assert proc.returncode == ExitCode.OK, explain(proc)  # protocol.no_tls13 is low
    results = json_lines(proc)
    assert sorted(r["target"]["sni"] for r in results) == sorted(
        [lab.endpoint("healthy-rsa").sni, lab.endpoint("tls12-only").sni])


def test_bogus_fail_on_exits_2(lab: LabState) -> None:
    proc = scan(lab, "--fail-on", "bogus", target(lab, "healthy-rsa"))
    assert proc.returncode == ExitCode.USAGE, explain(proc)
    assert "bogus" in one_line(proc.stderr) and proc.stdout == ""


def test_missing_ca_file_exits_2_naming_the_path(lab: LabState, tmp_path: Path) -> None:
    missing = tmp_path / "nonexistent" / "ca.pem"
    proc = tlsward("scan", "--json", "--connect", lab.host, "--ca-file", str(missing), target(lab, "healthy-rsa"))
    assert proc.returncode == ExitCode.USAGE, explain(proc)
    assert str(missing) in one_line(proc.stderr) and proc.stdout == ""


def test_many_targets_end_with_a_summary_table(lab: LabState) -> None:
    tlsward = Path(sys.executable).with_name("tlsward")
    proc = subprocess.run([str(tlsward), "scan", "--connect", lab.host, "--ca-file", lab.ca_file,
                           target(lab, "healthy-rsa"), target(lab, "expired")], capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL, check=False)
    assert proc.returncode == ExitCode.FINDINGS, explain(proc)
    summary = proc.stdout[proc.stdout.index("2 of 2 endpoints scanned"):]
    assert summary.index("critical") < summary.index("ok")  # the worst endpoint first
    assert "cert.expired" in summary and "findings: 1 critical" in summary


def test_ctrl_c_reports_what_was_done(lab: LabState) -> None:
    tlsward = Path(sys.executable).with_name("tlsward")
    blackhole = target(lab, "blackhole")
    proc = subprocess.Popen([str(tlsward), "scan", "--connect", lab.host, "--timeout", "20", blackhole],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    try:
        time.sleep(2)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == ExitCode.INTERRUPTED
    assert "interrupted: 0 of 1 endpoints scanned" in stderr
    assert "Traceback" not in stderr


def test_unresolvable_name_is_a_finding_not_a_crash(lab: LabState) -> None:
    tlsward = Path(sys.executable).with_name("tlsward")
    proc = subprocess.run([str(tlsward), "scan", "--json", "no-such-host.invalid", "-"],
                          input=target(lab, "healthy-rsa"), capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == ExitCode.UNSCANNABLE, explain(proc)
    results = {line["target"]["host"]: line for line in json_lines(proc)}
    assert [f["id"] for f in results["no-such-host.invalid"]["findings"]] == ["conn.dns"]
    assert results["no-such-host.invalid"]["failure"]["kind"] == "dns"
    assert len(results) == 2 and "Traceback" not in proc.stderr  # the batch went on


def test_deep_scan_json_validates_and_carries_grade_and_policy(lab: LabState) -> None:
    names = ("healthy-rsa", "tls10-11", "legacy-3des", "smtp-starttls", "closed")
    proc = scan(lab, "--deep", "--policy", "mozilla-intermediate", *(target(lab, n) for n in names))
    assert proc.returncode == ExitCode.UNSCANNABLE, explain(proc)   # the closed port
    by_sni = {r["target"]["sni"]: r for r in json_lines(proc)}
    healthy = by_sni[lab.endpoint("healthy-rsa").sni]
    versions = {v["version"]: v["accepted"] for v in healthy["deep"]["versions"]}
    assert versions == {"SSLv3": False, "TLSv1.0": False, "TLSv1.1": False, "TLSv1.2": True, "TLSv1.3": True}
    assert healthy["grade"]["letter"] == "A+" and healthy["policy"] == "mozilla-intermediate"
    legacy = by_sni[lab.endpoint("legacy-3des").sni]
    assert legacy["grade"]["letter"] == "C" and "policy.violation" in finding_ids(legacy)
    closed = by_sni[lab.endpoint("closed").sni]
    assert closed["deep"] is None and closed["grade"] is None


@pytest.mark.parametrize(("cert", "key", "message"), [
    ("/nonexistent.pem", "/nonexistent.key", "--cert /nonexistent.pem: not a readable file"),
    ("GARBAGE", "GARBAGE", "not a usable PEM cert"),
    ("CLIENT", "OTHER", "does not match --cert"),
])
def test_bad_client_identity_is_one_line(lab: LabState, tmp_path: Path, cert: str, key: str, message: str) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    files = {"GARBAGE": str(garbage), "CLIENT": lab.client_cert,
             "OTHER": str(Path(lab.state_dir) / "certs" / "healthy-rsa.key")}
    proc = scan(lab, "--cert", files.get(cert, cert), "--key", files.get(key, key), target(lab, "mtls-required"))
    assert proc.returncode == ExitCode.USAGE, explain(proc)
    assert message in one_line(proc.stderr)
