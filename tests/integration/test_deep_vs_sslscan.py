"""The deep scan side by side with Debian's ``sslscan`` (2.0.7, on the system OpenSSL 3.0) on lab endpoints:
the same versions, the same suites per version, the same first choice, the same groups.

sslscan tests suites through OpenSSL and, for suites OpenSSL 3 cannot offer (3DES, RC4, export ...), with
hand-made ClientHellos of its own, so on these endpoints the two suite sets must be *equal*, 3DES included, not
merely equal on what OpenSSL 3 can speak. (Checked, not assumed: the legacy-3des case is in the list.)

Where the two legitimately differ it is asserted as such:

* sslscan offers one group per hello; in TLS <= 1.2 an ECDSA certificate's curve must be among the offered ones
  (RFC 8422 5.1), so against an ECDSA-only TLS 1.2 server it sees only the certificate's curve. tlsward
  eliminates from the full list and also sees the curves the server prefers to it: sslscan's set is a subset.
* sslscan reads a silent close as "not supported"; tlsward calls it inconclusive (the lab's STARTTLS servers
  close without an alert), so there only the accepted sides are compared.

sslscan needs ``scripts/install-system-deps.sh sslscan`` (``make test`` does it); a missing sslscan fails.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

import pytest

from tlsward.lab import LabState
from tlsward.model.deep import DeepScan
from tlsward.model.target import Target
from tlsward.probes.enumerate import DeepOptions, deep_scan

pytestmark = pytest.mark.integration

SSLSCAN_TIMEOUT = 120
# ``--no-groups`` for the hand-written 3DES responder: it never sends a ServerKeyExchange, and sslscan's group
# test waits out its socket timeout on every group (100+ s). It has no ECDHE suite, so there are no groups to see.
CASES: dict[str, tuple[str, ...]] = {
    "healthy-rsa": (), "healthy-ecdsa": (), "tls10-only": (), "tls10-11": (), "tls12-only": (), "static-rsa": (),
    "legacy-3des": ("--no-groups",), "smtp-starttls": ("--starttls-smtp",),
}
SILENT_CLOSERS: set[str] = set()  # servers that refuse by closing without an alert (none in the lab now)
ECDSA_TLS12_ONLY = {"tls12-only"}
PROTOCOLS = {("ssl", "2"): "SSLv2", ("ssl", "3"): "SSLv3", ("tls", "1.0"): "TLSv1.0", ("tls", "1.1"): "TLSv1.1",
             ("tls", "1.2"): "TLSv1.2", ("tls", "1.3"): "TLSv1.3"}
SSLSCAN_CURVES = {"25519": "x25519", "448": "x448", "P-256": "secp256r1", "P-384": "secp384r1", "P-521": "secp521r1"}


@dataclass
class SslscanView:
    versions: set[str] = field(default_factory=set)
    suites: dict[str, set[int]] = field(default_factory=dict)
    preferred: dict[str, int] = field(default_factory=dict)
    curves: dict[tuple[str, int], str] = field(default_factory=dict)   # (version, suite) -> curve name
    groups: dict[str, set[int]] = field(default_factory=dict)
    seconds: float = 0.0


def run_sslscan(lab: LabState, name: str) -> SslscanView:
    assert shutil.which("sslscan"), "sslscan is not installed: scripts/install-system-deps.sh sslscan"
    ep = lab.endpoint(name)
    started = time.perf_counter()
    proc = subprocess.run(
        ["sslscan", "--no-colour", f"--sni-name={ep.sni}", *CASES[name], "--xml=-", f"{lab.host}:{ep.port}"],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=SSLSCAN_TIMEOUT, check=False)
    assert proc.returncode == 0, proc.stderr
    xml = proc.stdout[proc.stdout.find("<?xml"):proc.stdout.rfind("</document>") + len("</document>")]
    test = ET.fromstring(xml).find("ssltest")  # noqa: S314 (our own sslscan run against our own lab)
    assert test is not None, proc.stdout[:500]
    view = SslscanView(seconds=time.perf_counter() - started)
    for element in test.iter("protocol"):
        if element.get("enabled") == "1":
            view.versions.add(PROTOCOLS[(element.get("type", ""), element.get("version", ""))])
    for element in test.iter("cipher"):
        version, code = element.get("sslversion", ""), int(element.get("id", ""), 16)
        view.suites.setdefault(version, set()).add(code)
        if element.get("status") == "preferred":
            view.preferred[version] = code
        if curve := element.get("curve"):
            view.curves[(version, code)] = SSLSCAN_CURVES.get(curve, curve)
    for element in test.iter("group"):
        view.groups.setdefault(element.get("sslversion", ""), set()).add(int(element.get("id", ""), 16))
    return view


@pytest.fixture(scope="module")
def deep_results(lab: LabState) -> dict[str, tuple[DeepScan, float]]:
    async def scan_all() -> dict[str, tuple[DeepScan, float]]:
        results = {}
        for name in CASES:
            started = time.perf_counter()
            target = Target.parse(lab.endpoint(name).target, connect=lab.host)
            result = await deep_scan(target, lab.host, DeepOptions(timeout=2.0))
            results[name] = (result, time.perf_counter() - started)
        return results

    return asyncio.run(scan_all())


@pytest.mark.parametrize("name", CASES)
def test_same_versions_suites_and_groups_as_sslscan(
        lab: LabState, deep_results: dict[str, tuple[DeepScan, float]], name: str) -> None:
    ours, seconds = deep_results[name]
    theirs = run_sslscan(lab, name)
    print(f"{name}: tlsward {seconds * 1000:.0f} ms / {ours.connections} connections; "
          f"sslscan {theirs.seconds * 1000:.0f} ms")
    assert "SSLv2" not in theirs.versions
    accepted = set(ours.accepted_versions)
    if name in SILENT_CLOSERS:
        assert accepted <= theirs.versions
        assert all(v.accepted is None for v in ours.versions if v.version not in theirs.versions)
    else:
        assert accepted == theirs.versions
    for version in accepted:
        support = ours.version(version)
        assert support is not None
        mine = [s.code for s in support.suites]
        assert set(mine) == theirs.suites.get(version, set()), version
        assert mine[0] == theirs.preferred[version], f"{version}: the server's first choice"
        for suite in support.suites:
            if (version, suite.code) in theirs.curves:
                assert suite.kx_group == theirs.curves[(version, suite.code)], (version, suite.name)
    our_groups = {g.code for g in ours.groups if g.accepted}
    if "TLSv1.3" in accepted:
        assert our_groups == theirs.groups["TLSv1.3"]
    elif theirs.groups:
        highest = max(theirs.groups, key=lambda v: v.replace("TLSv", ""))
        if name in ECDSA_TLS12_ONLY:
            assert theirs.groups[highest] < our_groups
        else:
            assert our_groups == theirs.groups[highest]
    else:
        assert not our_groups


def test_3des_is_seen_by_both(lab: LabState, deep_results: dict[str, tuple[DeepScan, float]]) -> None:
    """sslscan 2.0.7 finds 3DES with a hand-made hello; so does tlsward, on every version the responder speaks."""
    ours, _ = deep_results["legacy-3des"]
    assert {v: [s.name for s in ours.version(v).suites] for v in ours.accepted_versions} == {  # type: ignore[union-attr]
        v: ["TLS_RSA_WITH_3DES_EDE_CBC_SHA"] for v in ("TLSv1.0", "TLSv1.1", "TLSv1.2")}
