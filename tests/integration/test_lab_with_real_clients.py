"""Every lab case behaves as its catalogue entry declares, as seen by clients we did not write:
``openssl s_client`` / ``verify`` / ``crl`` / ``x509``, ``curl`` and ``nmap``.

Everything here talks to 127.0.0.1 only, and every subprocess has a timeout and no stdin.
"""

from __future__ import annotations

import re
import signal
import subprocess
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from tlsward.lab import CASES, LabCase, LabState, case_named
from tlsward.lab.catalogue import STARTTLS_KINDS

pytestmark = pytest.mark.integration

TIMEOUT = 20.0
BLACKHOLE_WAIT = 3.0
WEAK_OK = "DEFAULT:@SECLEVEL=0"  # lets OpenSSL 3 speak TLS 1.0/1.1 and accept RSA-1024 / SHA-1 leaves
VERSION_FLAGS = {"TLSv1": "-tls1", "TLSv1.1": "-tls1_1", "TLSv1.2": "-tls1_2", "TLSv1.3": "-tls1_3"}
WEAK_CERT_CASES = ("rsa-1024", "sha1-signature", "weak-dh")  # also DH-1024, refused at SECLEVEL 2
ROOT_CN = "tlsward lab Root CA"
INTERMEDIATE_CN = "tlsward lab Intermediate CA"
SUB_INTERMEDIATE_CN = "tlsward lab Sub-Intermediate CA"
PEM_CERT = re.compile(r"-----BEGIN CERTIFICATE-----\n.*?-----END CERTIFICATE-----\n", re.S)

# Cases where a stock OpenSSL client can complete a TLS handshake (directly, or after STARTTLS).
HANDSHAKE_CASES = [c for c in CASES if c.is_tls]


def run(cmd: Sequence[str], timeout: float = TIMEOUT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(cmd), stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=timeout, check=False)


def explain(proc: subprocess.CompletedProcess[str]) -> str:
    return f"$ {' '.join(proc.args)}\nexit {proc.returncode}\nstdout:\n{proc.stdout[-3000:]}\nstderr:\n{proc.stderr}"


def s_client_cmd(lab: LabState, name: str, *extra: str) -> list[str]:
    endpoint = lab.endpoint(name)
    cmd = ["openssl", "s_client", "-connect", f"{lab.host}:{endpoint.port}", "-servername", endpoint.sni]
    case = case_named(name)
    if case.kind in STARTTLS_KINDS:
        cmd += ["-starttls", case.kind]
        if case.kind == "xmpp":
            cmd += ["-xmpphost", endpoint.sni]
    return [*cmd, *extra]


def s_client(lab: LabState, name: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return run(s_client_cmd(lab, name, *extra))


def negotiated_version(proc: subprocess.CompletedProcess[str]) -> str | None:
    """The ``Protocol version`` a ``-brief`` s_client reports once the handshake completed."""
    match = re.search(r"^Protocol version: (\S+)$", proc.stderr, re.M)
    return match.group(1) if match else None


def curl(lab: LabState, name: str, *extra: str, scheme: str = "https") -> subprocess.CompletedProcess[str]:
    endpoint = lab.endpoint(name)
    return run(["curl", "-sS", "--max-time", "10", "--resolve", f"{endpoint.sni}:{endpoint.port}:{lab.host}",
                "--cacert", lab.ca_file, *extra, f"{scheme}://{endpoint.sni}:{endpoint.port}/"])


def status_of(lab: LabState, name: str, *extra: str,
              scheme: str = "https") -> tuple[str, subprocess.CompletedProcess[str]]:
    proc = curl(lab, name, "-o", "/dev/null", "-w", "%{http_code}", *extra, scheme=scheme)
    return proc.stdout.strip(), proc


def header(head: str, name: str) -> str | None:
    match = re.search(rf"^{re.escape(name)}:\s*(.*?)\s*$", head, re.M | re.I)
    return match.group(1) if match else None


def pki_file(lab: LabState, ca: str) -> str:
    return str(Path(lab.state_dir) / "pki" / f"{ca}.pem")


@dataclass(frozen=True)
class ServedChain:
    """What ``openssl s_client -showcerts`` received, in the order the server sent it."""

    pems: tuple[str, ...]
    subjects: tuple[str, ...]
    issuers: tuple[str, ...]

    def write(self, directory: Path, stem: str) -> tuple[Path, Path | None]:
        """The leaf, and the rest of the served chain (None if the server sent only the leaf)."""
        leaf = directory / f"{stem}-leaf.pem"
        leaf.write_text(self.pems[0])
        if len(self.pems) == 1:
            return leaf, None
        rest = directory / f"{stem}-served-intermediates.pem"
        rest.write_text("".join(self.pems[1:]))
        return leaf, rest


def served_chain(lab: LabState, name: str) -> ServedChain:
    proc = s_client(lab, name, "-showcerts", "-cipher", WEAK_OK)
    pems = tuple(PEM_CERT.findall(proc.stdout))
    subjects = tuple(re.findall(r"^\s*\d+ s:(.*)$", proc.stdout, re.M))
    issuers = tuple(re.findall(r"^\s+i:(.*)$", proc.stdout, re.M))
    assert pems and len(pems) == len(subjects) == len(issuers), explain(proc)
    return ServedChain(pems, subjects, issuers)


def cn(name: str) -> str:
    match = re.search(r"CN = (.*?)(?:, [A-Za-z]+ = |$)", name)
    assert match, name
    return match.group(1)


# --- protocol versions -------------------------------------------------------------------------------


def _attempt(lab: LabState, case: LabCase, version: str) -> tuple[str, subprocess.CompletedProcess[str]]:
    extra = [VERSION_FLAGS[version], "-brief"]
    if version in ("TLSv1", "TLSv1.1") or case.name in WEAK_CERT_CASES:
        extra += ["-cipher", WEAK_OK]  # the client must not be the side that refuses
    if case.client_cert == "required":
        extra += ["-cert", lab.client_cert, "-key", lab.client_key]
    return version, s_client(lab, case.name, *extra)


@pytest.mark.parametrize("case", HANDSHAKE_CASES, ids=lambda c: c.name)
def test_handshake_succeeds_exactly_with_declared_versions(lab: LabState, case: LabCase) -> None:
    with ThreadPoolExecutor(len(VERSION_FLAGS)) as pool:
        results = dict(pool.map(lambda v: _attempt(lab, case, v), VERSION_FLAGS))
    problems = []
    for version, proc in results.items():
        got = negotiated_version(proc)
        if version in case.versions:
            if proc.returncode != 0 or got != version:
                problems.append(f"declared {version} but the handshake did not negotiate it:\n{explain(proc)}")
        else:
            client_side = ("Connection refused", "no ciphers available", "no protocols available")
            if proc.returncode == 0 or got is not None or any(s in proc.stderr for s in client_side):
                problems.append(f"{version} is not declared but was not refused by the server:\n{explain(proc)}")
    assert not problems, f"{case.name} (declared {case.versions}):\n" + "\n".join(problems)


# --- certificate verification -------------------------------------------------------------------------

VERDICTS = {
    "healthy-rsa": None,
    "healthy-ecdsa": None,
    "wildcard": None,
    "valid-40d": None,
    "expiring-5d": None,
    "expiring-20d": None,
    "short-lived": None,
    "wrong-order": None,  # OpenSSL re-orders the chain itself
    "expired": "certificate has expired",
    "not-yet-valid": "certificate is not yet valid",
    "self-signed": "self-signed certificate",
    "untrusted-root": "unable to get local issuer certificate",
    "missing-intermediate": "unable to get local issuer certificate",
    "expired-intermediate": "certificate has expired",
}


@pytest.mark.parametrize(("name", "error"), VERDICTS.items(), ids=list(VERDICTS))
def test_verification_verdict_with_lab_root(lab: LabState, name: str, error: str | None) -> None:
    proc = s_client(lab, name, "-CAfile", lab.ca_file, "-verify_return_error", "-brief")
    if error is None:
        assert proc.returncode == 0, explain(proc)
        assert "Verification: OK" in proc.stderr, explain(proc)
    else:
        assert proc.returncode != 0, explain(proc)
        assert "verify error:num=" in proc.stderr and error in proc.stderr, explain(proc)


@pytest.mark.parametrize(("name", "matches"), [("name-mismatch", False), ("wildcard-too-deep", False),
                                               ("wildcard", True)])
def test_hostname_verification(lab: LabState, name: str, matches: bool) -> None:
    sni = lab.endpoint(name).sni
    proc = s_client(lab, name, "-CAfile", lab.ca_file, "-verify_return_error", "-verify_hostname", sni, "-brief")
    if matches:
        assert proc.returncode == 0 and "Verification: OK" in proc.stderr, explain(proc)
    else:
        assert proc.returncode != 0 and "hostname mismatch" in proc.stderr, explain(proc)


def test_missing_intermediate_verifies_once_the_intermediate_is_supplied(lab: LabState, tmp_path: Path) -> None:
    chain = served_chain(lab, "missing-intermediate")
    assert len(chain.pems) == 1, chain.subjects
    leaf, _ = chain.write(tmp_path, "missing-intermediate")
    alone = run(["openssl", "verify", "-CAfile", lab.ca_file, str(leaf)])
    assert alone.returncode != 0, explain(alone)
    assert "unable to get local issuer certificate" in alone.stdout + alone.stderr, explain(alone)
    helped = run(["openssl", "verify", "-CAfile", lab.ca_file, "-untrusted", pki_file(lab, "intermediate"),
                  str(leaf)])
    assert helped.returncode == 0 and f"{leaf}: OK" in helped.stdout, explain(helped)


@pytest.mark.parametrize("case", HANDSHAKE_CASES, ids=lambda c: c.name)
def test_served_chain_layout_as_declared(lab: LabState, case: LabCase) -> None:
    chain = served_chain(lab, case.name)
    order = [cn(s) for s in chain.subjects]
    if case.chain == "leaf_only":
        assert len(chain.pems) == 1, f"{case.name}: declared leaf_only, served {order}"
    elif case.chain == "full":
        assert len(chain.pems) >= 2, f"{case.name}: declared a full chain, served only {order}"
        for i in range(len(chain.pems) - 1):
            assert chain.issuers[i] == chain.subjects[i + 1], f"{case.name}: served out of order: {order}"
        assert cn(chain.issuers[-1]) == ROOT_CN, f"{case.name}: chain does not reach the root: {order}"
        assert ROOT_CN not in order, f"{case.name}: the root itself is served: {order}"
    else:
        assert case.chain == "wrong_order"
        # Served as leaf, intermediate, sub-intermediate although the leaf is issued by the sub-intermediate.
        assert order[1:] == [INTERMEDIATE_CN, SUB_INTERMEDIATE_CN], f"{case.name}: served {order}"
        assert cn(chain.issuers[0]) == SUB_INTERMEDIATE_CN
        assert cn(chain.issuers[2]) == INTERMEDIATE_CN


@pytest.mark.parametrize(("name", "needle"), [("rsa-1024", "Public-Key: (1024 bit)"),
                                              ("sha1-signature", "Signature Algorithm: sha1WithRSAEncryption")])
def test_weak_leaf_as_served(lab: LabState, tmp_path: Path, name: str, needle: str) -> None:
    leaf, _ = served_chain(lab, name).write(tmp_path, name)
    proc = run(["openssl", "x509", "-in", str(leaf), "-noout", "-text"])
    assert proc.returncode == 0 and needle in proc.stdout, explain(proc)


def test_revoked_leaf_is_listed_in_the_served_crl(lab: LabState, tmp_path: Path) -> None:
    der, pem = tmp_path / "intermediate.crl", tmp_path / "intermediate-crl.pem"
    fetched = run(["curl", "-sS", "-f", "--max-time", "10", "-o", str(der), f"{lab.pki_url}/intermediate.crl"])
    assert fetched.returncode == 0, explain(fetched)
    converted = run(["openssl", "crl", "-inform", "DER", "-in", str(der), "-out", str(pem)])
    assert converted.returncode == 0, explain(converted)

    revoked_leaf, revoked_rest = served_chain(lab, "revoked").write(tmp_path, "revoked")
    healthy_leaf, healthy_rest = served_chain(lab, "healthy-rsa").write(tmp_path, "healthy-rsa")
    assert revoked_rest is not None and healthy_rest is not None

    serial = run(["openssl", "x509", "-in", str(revoked_leaf), "-noout", "-serial"]).stdout.strip()
    listing = run(["openssl", "crl", "-in", str(pem), "-noout", "-text"])
    assert serial.startswith("serial=") and f"Serial Number: {serial[7:]}" in listing.stdout, explain(listing)

    def verify(leaf: Path, rest: Path, *crl: str) -> subprocess.CompletedProcess[str]:
        return run(["openssl", "verify", *crl, "-CAfile", lab.ca_file, "-untrusted", str(rest), str(leaf)])

    without_crl = verify(revoked_leaf, revoked_rest)
    assert without_crl.returncode == 0, explain(without_crl)  # only the CRL makes it fail
    with_crl = verify(revoked_leaf, revoked_rest, "-crl_check", "-CRLfile", str(pem))
    assert with_crl.returncode != 0, explain(with_crl)
    assert "certificate revoked" in with_crl.stdout + with_crl.stderr, explain(with_crl)
    healthy = verify(healthy_leaf, healthy_rest, "-crl_check", "-CRLfile", str(pem))
    assert healthy.returncode == 0 and f"{healthy_leaf}: OK" in healthy.stdout, explain(healthy)


# --- client certificates -------------------------------------------------------------------------------


def test_mtls_required_refuses_a_client_without_certificate(lab: LabState) -> None:
    status, proc = status_of(lab, "mtls-required")
    assert proc.returncode != 0 and status != "200", explain(proc)


def test_mtls_required_serves_a_client_with_the_lab_certificate(lab: LabState) -> None:
    status, proc = status_of(lab, "mtls-required", "--cert", lab.client_cert, "--key", lab.client_key)
    assert proc.returncode == 0 and status == "200", explain(proc)


def test_mtls_optional_serves_a_client_without_certificate(lab: LabState) -> None:
    status, proc = status_of(lab, "mtls-optional")
    assert proc.returncode == 0 and status == "200", explain(proc)


def test_mtls_optional_asks_for_a_client_certificate(lab: LabState) -> None:
    proc = s_client(lab, "mtls-optional", "-CAfile", lab.ca_file)
    assert proc.returncode == 0, explain(proc)
    # s_client prints the signature algorithms of a CertificateRequest only when it received one
    assert "Requested Signature Algorithms:" in proc.stdout, explain(proc)
    ca_names = re.search(r"^(?:Acceptable client certificate CA names|No client certificate CA names sent)"
                         r"(?:\n[^-\n].*)*", proc.stdout, re.M)
    assert ca_names and ca_names.group(0).startswith("Acceptable client certificate CA names"), (
        f"$ {' '.join(proc.args)}\n" + (ca_names.group(0) if ca_names else proc.stdout)
    )


# --- HTTP behaviour ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["https-no-hsts", "https-hsts", "healthy-rsa"])
def test_hsts_header_as_declared(lab: LabState, name: str) -> None:
    proc = curl(lab, name, "-I")
    assert proc.returncode == 0 and proc.stdout.startswith("HTTP/1.1 200"), explain(proc)
    hsts = header(proc.stdout, "Strict-Transport-Security")
    if case_named(name).hsts:
        assert hsts is not None and hsts.startswith("max-age="), explain(proc)
    else:
        assert hsts is None, explain(proc)


def test_http_redirect_answers_301_to_https(lab: LabState) -> None:
    proc = curl(lab, "http-redirect", "-I", scheme="http")
    assert proc.returncode == 0 and proc.stdout.startswith("HTTP/1.1 301"), explain(proc)
    location = header(proc.stdout, "Location")
    assert location is not None and location.startswith("https://"), explain(proc)
    # ... and the redirect target is a working HTTPS endpoint of the lab.
    target = re.match(r"https://([^/:]+):(\d+)/", location)
    assert target, location
    followed = curl(lab, "http-redirect", "-L", "--max-redirs", "1", "--resolve",
                    f"{target.group(1)}:{target.group(2)}:{lab.host}", "-o", "/dev/null",
                    "-w", "%{http_code} %{url_effective}", scheme="http")
    assert followed.returncode == 0 and followed.stdout.startswith("200 https://"), explain(followed)


def test_http_no_redirect_serves_in_clear(lab: LabState) -> None:
    proc = curl(lab, "http-no-redirect", "-I", scheme="http")
    assert proc.returncode == 0 and proc.stdout.startswith("HTTP/1.1 200"), explain(proc)
    assert header(proc.stdout, "Location") is None, explain(proc)


def test_plain_http_on_tls_port(lab: LabState) -> None:
    handshake = s_client(lab, "plain-http-on-tls-port", "-brief")
    assert handshake.returncode != 0 and negotiated_version(handshake) is None, explain(handshake)
    status, proc = status_of(lab, "plain-http-on-tls-port", scheme="http")
    assert status == "400", explain(proc)


# --- STARTTLS and PostgreSQL ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", [c.name for c in CASES if c.kind in STARTTLS_KINDS and c.starttls])
def test_starttls_handshake_completes(lab: LabState, name: str) -> None:
    proc = s_client(lab, name, "-CAfile", lab.ca_file, "-verify_return_error", "-brief")
    assert proc.returncode == 0 and negotiated_version(proc) is not None, explain(proc)
    assert "Verification: OK" in proc.stderr, explain(proc)


def test_smtp_without_starttls(lab: LabState) -> None:
    proc = s_client(lab, "smtp-no-starttls", "-brief")
    assert proc.returncode != 0 and negotiated_version(proc) is None, explain(proc)
    # OpenSSL 3.0's wording for "the EHLO reply does not offer STARTTLS"
    assert "Didn't find STARTTLS in server response" in proc.stderr, explain(proc)


# --- connection-level failures -------------------------------------------------------------------------


def test_blackhole_never_sends_a_server_hello(lab: LabState) -> None:
    proc = subprocess.Popen(s_client_cmd(lab, "blackhole", "-msg"), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=BLACKHOLE_WAIT)
    except subprocess.TimeoutExpired:
        proc.kill()  # the expected outcome: still waiting for the server
        out, err = proc.communicate(timeout=TIMEOUT)
    else:
        pytest.fail(f"openssl s_client ended within {BLACKHOLE_WAIT}s (exit {proc.returncode}):\n{out}\n{err}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(TIMEOUT)
    assert proc.returncode == -signal.SIGKILL
    assert "ClientHello" in out, f"the TCP connection was not even made:\n{out}\n{err}"
    assert "ServerHello" not in out and "<<<" not in out, out


def test_reset(lab: LabState) -> None:
    proc = curl(lab, "reset")
    assert proc.returncode in (35, 56), explain(proc)
    assert "Connection reset" in proc.stderr, explain(proc)


def test_closed(lab: LabState) -> None:
    proc = curl(lab, "closed")
    assert proc.returncode == 7, explain(proc)


# --- 3DES-only appliance: nmap crafts its own ClientHello ----------------------------------------------


@pytest.fixture(scope="module")
def nmap_legacy(lab: LabState) -> subprocess.CompletedProcess[str]:
    port = lab.endpoint("legacy-3des").port
    return run(["nmap", "-Pn", "-n", "--script", "ssl-enum-ciphers", "-p", str(port), lab.host], timeout=90)


def test_legacy_3des_seen_by_nmap(nmap_legacy: subprocess.CompletedProcess[str]) -> None:
    proc = nmap_legacy
    assert proc.returncode == 0 and "ssl-enum-ciphers" in proc.stdout, explain(proc)
    suites = set(re.findall(r"^\|\s+(TLS_\w+) \(", proc.stdout, re.M))
    assert suites == {"TLS_RSA_WITH_3DES_EDE_CBC_SHA"}, explain(proc)
    versions = set(re.findall(r"^\|\s+(SSLv3|TLSv1\.\d):\s*$", proc.stdout, re.M))
    declared = {"TLSv1.0" if v == "TLSv1" else v for v in case_named("legacy-3des").versions}
    assert versions == declared, explain(proc)


def test_legacy_3des_refuses_openssl(lab: LabState) -> None:
    proc = s_client(lab, "legacy-3des", "-cipher", "ALL:@SECLEVEL=0", "-brief")
    assert proc.returncode != 0 and negotiated_version(proc) is None, explain(proc)
    assert "handshake failure" in proc.stderr, explain(proc)


def test_truncated_server_hello_breaks_openssl_too(lab: LabState) -> None:
    proc = s_client(lab, "truncated-hello", "-brief")
    assert proc.returncode != 0 and negotiated_version(proc) is None, explain(proc)
    assert "unexpected eof" in proc.stderr.lower() or "eof" in proc.stderr.lower(), explain(proc)


def test_weak_dh_serves_1024_bit_parameters(lab: LabState) -> None:
    proc = s_client(lab, "weak-dh", "-cipher", WEAK_OK)
    assert proc.returncode == 0 and "Server Temp Key: DH, 1024 bits" in proc.stdout, explain(proc)
