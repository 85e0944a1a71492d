"""``--all-ips``: a name with two A records whose backends serve different certificates is flagged.

Name resolution is real: the scan runs in a private mount namespace where /etc/hosts gives the name two
loopback addresses, each served by its own lab (each lab generates its own PKI, so the leaves differ).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tlsward.lab import LabState, running_lab

TLSWARD = str(Path(sys.executable).with_name("tlsward"))


def test_backends_serving_different_certificates_are_flagged(lab: LabState, tmp_path: Path) -> None:
    ep = lab.endpoint("healthy-rsa")
    with running_lab(tmp_path / "second", host="127.0.0.2", base_port=lab.base_port) as second:
        hosts = tmp_path / "hosts"
        hosts.write_text(f"127.0.0.1 localhost\n127.0.0.1 {ep.sni}\n127.0.0.2 {ep.sni}\n")
        script = (f"mount --bind {hosts} /etc/hosts && exec {TLSWARD} scan --all-ips --json "
                  f"--ca-file {lab.ca_file} --ca-file {second.ca_file} --fail-on critical {ep.sni}:{ep.port}")
        proc = subprocess.run(["unshare", "--mount", "sh", "-c", script], capture_output=True, text=True,
                              timeout=60, stdin=subprocess.DEVNULL, check=False)
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    assert sorted(line["address"] for line in lines) == ["127.0.0.1", "127.0.0.2"]
    for line in lines:
        ids = [f["id"] for f in line["findings"]]
        assert ids == ["name.backends_differ"], ids


def test_one_backend_is_not_flagged(lab: LabState) -> None:
    ep = lab.endpoint("healthy-rsa")
    proc = subprocess.run([TLSWARD, "scan", "--all-ips", "--json", "--sni", ep.sni, "--ca-file", lab.ca_file,
                           f"localhost:{ep.port}"], capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL, check=False)
    assert proc.returncode == 0, proc.stderr
    (line,) = [json.loads(x) for x in proc.stdout.splitlines() if x.strip()]
    assert line["address"] == "127.0.0.1" and line["findings"] == []
