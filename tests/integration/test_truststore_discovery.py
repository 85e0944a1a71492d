"""Trust store discovery on this real machine, every count checked against the tool that owns the store: the OS
bundle against ``grep -c BEGIN``, each Java cacerts against ``keytool -list``, Node against
``require('tls').rootCertificates``, an NSS database against ``certutil -L``, certifi in a throwaway virtualenv
(an old release installed by pip) against its own file.

The stores the machine lacks are made with the real tools (tests/stores.py): a second JDK whose cacerts has the
lab's root CA imported by keytool (found through JAVA_HOME), an NSS database in a home directory (certutil), a Node
extra-CA file. keytool, certutil and node are required: a missing tool fails, it never skips.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from tests.stores import (
    OLD_CERTIFI,
    cacerts_with_extra_ca,
    certifi_bundle,
    certifi_venv,
    certutil_der,
    certutil_trust,
    fake_jdk,
    jre_cacerts,
    keytool_entries,
    keytool_trusted_entries,
    keytool_truststore,
    make_ca,
    node_extra_file,
    node_root_count,
    nss_db,
    pem_count,
    tool,
    write_pem,
)
from tlsward.discovery.truststores import Discovered, discover_stores, find_environments
from tlsward.lab.pki import build_pki
from tlsward.model.truststores import StoreInfo
from tlsward.x509.trust import mozilla_store

pytestmark = pytest.mark.integration

SYSTEM_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
SYSTEM_DIR = Path("/etc/ssl/certs")
CERTIFI_VERSION = "2023.07.22"   # what certifi 2023.7.22 writes in its __init__.py


def fingerprint(cert: x509.Certificate) -> str:
    return hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest()


@pytest.fixture(scope="session")
def certifi_env(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One virtualenv with certifi 2023.7.22 per test session (pip from the registry)."""
    base = tmp_path_factory.getbasetemp() / "certifi-venvs"
    base.mkdir(exist_ok=True)
    return certifi_venv(base, OLD_CERTIFI)


@dataclass(frozen=True)
class Host:
    found: Discovered
    seconds: float
    work: Path
    home: Path
    jdk: Path
    venv: Path
    internal: Path            # the lab's root CA (one certificate)
    node_extra: Path
    node_extra_ca: x509.Certificate
    walked_nss: Path
    broken: Path

    def store(self, store_id: str) -> StoreInfo:
        info = self.found.host.store(store_id)
        assert info is not None, f"{store_id} not found; found: {[s.id for s in self.found.host.stores]}"
        return info


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory, certifi_env: Path) -> Host:
    for name, package in (("keytool", "openjdk-17-jre-headless"), ("certutil", "libnss3-tools"),
                          ("node", "nodejs (nodesource)")):
        tool(name, package)
    work = tmp_path_factory.mktemp("host")
    # The lab's CA hierarchy (its root, and the root no client trusts), issued without starting the lab's servers.
    pki = build_pki({}, dt.datetime.now(dt.UTC), "http://127.0.0.1:9/pki")
    internal = write_pem(work / "lab-root.pem", pki.cas["root"].cert)
    untrusted = write_pem(work / "lab-untrusted-root.pem", pki.cas["untrusted-root"].cert)
    jdk = fake_jdk(work / "jdk-21", cacerts_with_extra_ca(work / "cacerts", internal))
    home = work / "home" / "alice"
    plain = write_pem(work / "plain.pem", make_ca("Plain Root"))
    nss_db(home / ".pki" / "nssdb", [("lab", "C,,", internal), ("untrusted", "p,,", untrusted),
                                     ("plain", ",,", plain)])
    walked_nss = nss_db(work / "srv" / "app" / "nssdb", [("lab", "C,,", internal)])
    node_extra_ca = make_ca("Node Extra Root")
    node_extra = node_extra_file(work / "node-extra.pem", node_extra_ca)
    broken = work / "broken.pem"
    broken.write_bytes(b"-----BEGIN CERTIFICATE-----\nMIIB\n")
    env = {"PATH": os.environ.get("PATH", os.defpath), "HOME": str(home), "JAVA_HOME": str(jdk),
           "NODE_EXTRA_CA_CERTS": str(node_extra), "SSL_CERT_FILE": str(internal)}
    started = time.perf_counter()
    found = discover_stores([certifi_env, work / "srv"], extra=[internal, broken], env=env)
    return Host(found, time.perf_counter() - started, work, home, jdk, certifi_env, internal, node_extra,
                node_extra_ca, walked_nss, broken)


def test_host_record(host: Host) -> None:
    record = host.found.host
    assert record.host == socket.gethostname()
    assert dt.timedelta(0) <= dt.datetime.now(dt.UTC) - record.collected_at < dt.timedelta(minutes=5)
    assert str(host.venv) in record.searched and str(host.work / "srv") in record.searched
    ids = [s.id for s in record.stores]
    assert len(ids) == len(set(ids))
    again = discover_stores([host.venv, host.work / "srv"], extra=[host.internal, host.broken],
                            env={"PATH": os.environ.get("PATH", ""), "HOME": str(host.home),
                                 "JAVA_HOME": str(host.jdk), "NODE_EXTRA_CA_CERTS": str(host.node_extra),
                                 "SSL_CERT_FILE": str(host.internal)})
    assert [s.id for s in again.host.stores] == ids   # stable ids across runs
    for info in record.stores:
        assert info.clients and info.label, info
        assert info.id.startswith(f"{info.kind}:"), info.id
        trust = host.found.trust(info.id)
        if info.readable:
            assert trust is not None and {fingerprint(c) for c in trust.roots} == info.fingerprints(), info.id
        else:
            assert trust is None and not info.roots and "\n" not in info.problem, info.id


def test_system_bundle_and_directory(host: Host) -> None:
    assert SYSTEM_BUNDLE.is_file(), "Debian's ca-certificates is required"
    bundle = host.store(f"system-bundle:{SYSTEM_BUNDLE}")
    assert (bundle.kind, bundle.problem) == ("system-bundle", "")
    assert len(bundle.roots) == pem_count(SYSTEM_BUNDLE)   # grep -c BEGIN
    assert bundle.modified == dt.datetime.fromtimestamp(SYSTEM_BUNDLE.stat().st_mtime, dt.UTC)

    directory = host.store(f"system-dir:{SYSTEM_DIR}")
    entries = {entry.resolve() for entry in SYSTEM_DIR.iterdir() if re.fullmatch(r"[0-9a-f]{8}\.[0-9]+", entry.name)}
    assert (directory.kind, directory.problem, len(directory.roots)) == ("system-dir", "", len(entries))
    assert directory.fingerprints() == bundle.fingerprints()   # update-ca-certificates writes both

    cert_file = host.store(f"system-bundle:{host.internal}")   # SSL_CERT_FILE, its own store
    assert "SSL_CERT_FILE" in cert_file.label and len(cert_file.roots) == pem_count(host.internal) == 1


def test_java_cacerts_match_keytool(host: Host) -> None:
    """One store per physical cacerts, its count equal to keytool's; symlinked JDKs share one store."""
    java = [s for s in host.found.host.stores if s.kind == "java"]
    installed = {p.resolve() for p in Path("/usr/lib/jvm").glob("*/lib/security/cacerts")}
    assert installed, "a JDK is required (openjdk-17-jre-headless)"
    assert {Path(s.path) for s in java} >= installed
    for cacerts in installed:
        store = host.store(f"java:{cacerts}")
        assert store.problem == ""
        assert len(store.roots) == keytool_entries("-keystore", str(cacerts), "-storepass", "changeit") \
            == keytool_trusted_entries("-keystore", str(cacerts), "-storepass", "changeit")
        users = [d for d in Path("/usr/lib/jvm").iterdir()
                 if (d / "lib/security/cacerts").exists() and (d / "lib/security/cacerts").resolve() == cacerts]
        for jdk in {d.resolve() for d in users}:
            assert any(str(jdk) in note for note in store.notes), (jdk, store.notes)
            release = (jdk / "release").read_text()
            version = re.search(r'JAVA_VERSION="([^"]+)"', release)
            assert version is not None and version.group(1) in store.label and version.group(1) in store.version
    jre = jre_cacerts().resolve()
    assert len(host.store(f"java:{jre}").roots) == keytool_entries("-cacerts", "-storepass", "changeit")

    patched = host.store(f"java:{host.jdk / 'lib/security/cacerts'}")   # JAVA_HOME's own copy, with the lab CA
    assert (patched.label, patched.version) == ("Java 21.0.4 (Test Vendor) cacerts", "21.0.4")
    expected = keytool_entries("-keystore", str(host.jdk / "lib/security/cacerts"), "-storepass", "changeit")
    assert len(patched.roots) == expected == len(host.store(f"java:{jre}").roots) + 1
    lab_root = host.store(f"file:{host.internal}")
    assert lab_root.fingerprints() <= patched.fingerprints()


def test_certifi_in_a_virtualenv(host: Host) -> None:
    bundle = certifi_bundle(host.venv)
    store = host.store(f"certifi:{bundle}")
    assert (store.kind, store.version, store.problem) == ("certifi", CERTIFI_VERSION, "")
    assert store.label == f"certifi {CERTIFI_VERSION} ({host.venv})"
    assert str(host.venv) in store.clients and "requests" in store.clients
    assert len(store.roots) == pem_count(bundle)
    vendored = [s for s in host.found.host.stores if s.kind == "certifi" and "/pip/_vendor/certifi/" in s.path
                and s.path.startswith(str(host.venv))]
    assert len(vendored) == 1 and vendored[0].label.startswith("pip's vendored certifi ")
    # An old certifi lacks roots the current Mozilla list has: the drift this discovery exists to show.
    assert store.fingerprints() != frozenset(fingerprint(c) for c in mozilla_store().roots)


def test_node_builtin_and_extra_ca(host: Host) -> None:
    node = shutil.which("node")
    assert node is not None, "node is required"
    base = host.store(f"node:{node}")
    assert base.problem == "" and base.label.startswith("Node v")
    assert len(base.roots) == node_root_count(node)
    extra = host.store(f"node:{node}+NODE_EXTRA_CA_CERTS")
    assert extra.problem == "" and "NODE_EXTRA_CA_CERTS" in extra.label
    assert len(extra.roots) == len(base.roots) + 1
    assert extra.fingerprints() == base.fingerprints() | {fingerprint(host.node_extra_ca)}


def test_node_problems_are_reported(tmp_path: Path) -> None:
    env = {"PATH": os.environ.get("PATH", ""), "NODE_EXTRA_CA_CERTS": str(tmp_path / "missing.pem")}
    found = discover_stores([tmp_path], env=env, home_dirs=False, system=False)
    node = shutil.which("node")
    base = found.host.store(f"node:{node}")
    assert base is not None and base.readable
    broken = found.host.store(f"node:{node}+NODE_EXTRA_CA_CERTS")
    assert broken is not None and str(tmp_path / "missing.pem") in broken.problem
    failing = discover_stores([tmp_path], env={"PATH": "/usr/bin:/bin"}, node="false", home_dirs=False, system=False)
    (store,) = [s for s in failing.host.stores if s.kind == "node"]
    assert store.problem.startswith(f"{shutil.which('false', path='/usr/bin:/bin')}: failed to list its roots")
    none = discover_stores([tmp_path], env={"PATH": str(tmp_path)}, home_dirs=False, system=False)
    assert [s for s in none.host.stores if s.kind == "node"] == []


def test_nss_databases_agree_with_certutil(host: Host) -> None:
    mozilla = {fingerprint(c) for c in mozilla_store().roots}
    for directory in (host.home / ".pki" / "nssdb", host.walked_nss):
        store = host.store(f"nss:{directory}")
        listing = certutil_trust(directory)
        own = {hashlib.sha256(certutil_der(directory, name)).hexdigest() for name, flags in listing.items()
               if "C" in flags.split(",")[0]}
        distrusted = {hashlib.sha256(certutil_der(directory, name)).hexdigest() for name, flags in listing.items()
                      if "p" in flags.split(",")[0]}
        assert own == host.store(f"file:{host.internal}").fingerprints()
        assert store.problem == "" and store.fingerprints() == (mozilla | own) - distrusted, directory
        assert any("libnssckbi" in note for note in store.notes)
    assert "alice" in host.store(f"nss:{host.home / '.pki' / 'nssdb'}").clients


def test_extra_paths_and_broken_stores(host: Host) -> None:
    lab_root = host.store(f"file:{host.internal}")
    assert (lab_root.kind, len(lab_root.roots), lab_root.problem) == ("file", 1, "")
    broken = host.store(f"file:{host.broken}")
    assert str(host.broken) in broken.problem and broken.roots == ()


FRESH_PROCESS = """
import json, sys, time
from tlsward.discovery.truststores import discover_stores
started = time.perf_counter()
found = discover_stores(home_dirs=True)
elapsed = time.perf_counter() - started
print(json.dumps({"seconds": elapsed, "stores": [[s.id, s.kind, s.problem] for s in found.host.stores]}))
"""


def test_discovery_of_this_machine_is_fast(host: Host) -> None:
    """Everything, home directories included, well under two seconds, measured in a fresh interpreter (no
    parsed store cached) on this machine's real stores."""
    assert host.seconds < 2.0, f"discovery with the built stores took {host.seconds:.2f} s"
    done = subprocess.run([sys.executable, "-c", FRESH_PROCESS], capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["seconds"] < 2.0, f"discovery took {answer['seconds']:.2f} s"
    assert {"system-bundle", "system-dir", "java", "node"} <= {kind for _, kind, _ in answer["stores"]}
    assert [(i, p) for i, _, p in answer["stores"] if p] == []   # nothing on this machine is unreadable


def test_the_walk_is_bounded(tmp_path: Path) -> None:
    """Symlinked directories are never followed (no loops, no escape), the depth and entry caps hold, and a
    site-packages is looked at only where certifi lives."""
    ca = make_ca("Walk Root")
    site = tmp_path / "env" / "lib" / "python3.11" / "site-packages"
    for package in ("certifi", "pip/_vendor/certifi"):
        (site / package).mkdir(parents=True)
        write_pem(site / package / "cacert.pem", ca)
        (site / package / "__init__.py").write_text('__version__ = "2001.01.01"\n')
    nested = site / "vendored" / "certifi"   # inside site-packages, not at a certifi place: not looked at
    nested.mkdir(parents=True)
    write_pem(nested / "cacert.pem", ca)
    stdlib = tmp_path / "env" / "lib" / "python3.11" / "encodings" / "certifi"   # the standard library: skipped
    stdlib.mkdir(parents=True)
    write_pem(stdlib / "cacert.pem", ca)
    (tmp_path / "env" / "loop").symlink_to(tmp_path)            # a loop
    (tmp_path / "env" / "escape").symlink_to("/usr/lib")       # out of the tree
    deep = tmp_path.joinpath(*(f"d{i}" for i in range(12)), "certifi")
    deep.mkdir(parents=True)
    write_pem(deep / "cacert.pem", ca)
    nssdir = nss_db(tmp_path / "d0" / "nss")

    found = find_environments([tmp_path], max_depth=10)
    assert set(found.certifi) == {site / "certifi", site / "pip" / "_vendor" / "certifi"}
    assert found.nss == (nssdir,) and not found.truncated
    deeper = find_environments([tmp_path], max_depth=20)
    assert deep in deeper.certifi
    capped = find_environments([tmp_path], max_files=5)
    assert capped.truncated
    assert find_environments([Path("/proc"), tmp_path / "missing"]) == find_environments([])

    result = discover_stores([tmp_path], env={"PATH": ""}, node=None, home_dirs=False, system=False, max_files=5)
    assert result.notes and "stopped after 5" in result.notes[0]
    stores = discover_stores([tmp_path / "env"], env={"PATH": ""}, node=None, home_dirs=False, system=False)
    labels = sorted(s.label for s in stores.host.stores)
    env = tmp_path / "env"
    assert labels == [f"certifi 2001.01.01 ({env})", f"pip's vendored certifi 2001.01.01 ({env})"]


def test_java_options_truststore_and_a_broken_jdk(tmp_path: Path, host: Host) -> None:
    """-Djavax.net.ssl.trustStore in JAVA_TOOL_OPTIONS is a store of its own (opened with the password given
    there); a JDK whose cacerts symlink dangles is reported, not skipped."""
    store = keytool_truststore(tmp_path / "app-trust.p12", host.internal, store_type="PKCS12",
                               password="s3cret-pass")
    broken_jdk = tmp_path / "broken-jdk"
    (broken_jdk / "lib" / "security").mkdir(parents=True)
    (broken_jdk / "lib" / "security" / "cacerts").symlink_to(tmp_path / "gone" / "cacerts")
    (broken_jdk / "release").write_text('JAVA_VERSION="11.0.2"\nIMPLEMENTOR="Broken"\n')
    options = f"-Xmx64m -Djavax.net.ssl.trustStore={store} -Djavax.net.ssl.trustStorePassword=s3cret-pass"
    found = discover_stores(env={"PATH": "", "JAVA_HOME": str(broken_jdk), "JAVA_TOOL_OPTIONS": options},
                            node=None, home_dirs=False)
    app = found.host.store(f"java:{store}+JAVA_TOOL_OPTIONS")
    assert app is not None and app.problem == ""
    assert app.fingerprints() == host.store(f"file:{host.internal}").fingerprints()
    assert len(app.roots) == keytool_entries("-keystore", str(store), "-storepass", "s3cret-pass")
    dangling = found.host.store(f"java:{tmp_path / 'gone' / 'cacerts'}")
    assert dangling is not None and dangling.label == "Java 11.0.2 (Broken) cacerts"
    assert "No such file" in dangling.problem and str(tmp_path / "gone" / "cacerts") in dangling.problem
