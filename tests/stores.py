"""Build real trust stores for tests, with the real tools that make them on a host: keytool (JKS, PKCS#12, a copy
of the JRE's cacerts), certutil (NSS sql: databases), ``python -m venv`` + pip (a virtualenv with an old certifi),
and a PEM file for Node's NODE_EXTRA_CA_CERTS. Plus the independent readings the tests compare ours with
(``keytool -list``, ``certutil -L``).

Why real tools and not hand-made bytes: the readers must agree with what Java, NSS and pip actually write. The
tools are required (Debian packages openjdk-17-jre-headless and libnss3-tools, the node binary): a missing one is
an assertion failure, never a skip.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

OLD_CERTIFI = "2023.7.22"
JAVA_DEFAULT = "changeit"   # the JDK's well-known cacerts password
# keytool starts a JVM per call: these flags halve its start-up.
FAST_JVM = ("-J-XX:TieredStopAtLevel=1", "-J-XX:+UseSerialGC", "-J-Xshare:auto")
_ENTRIES = re.compile(r"Your keystore contains (\d+) entr")


def tool(name: str, package: str) -> str:
    """The path of a required tool; its absence fails the test with the package that provides it."""
    path = shutil.which(name)
    assert path is not None, f"{name} is required (Debian package {package}; `make test` installs it)"
    return path


def run(*command: str, timeout: float = 120, cwd: Path | None = None) -> str:
    """Run a tool; a failure fails the test with its output."""
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, cwd=cwd, check=False,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0, f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    return done.stdout


# --- certificates -------------------------------------------------------------------------------------------------


def make_ca(common_name: str, *, organization: str = "Test Org", days: int = 365,
            not_before: dt.datetime | None = None) -> x509.Certificate:
    """A self-signed CA certificate (EC P-256), as an internal CA's root looks."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    start = not_before or dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(start)
            .not_valid_after(start + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))


def pem(*certs: x509.Certificate) -> bytes:
    return b"".join(cert.public_bytes(Encoding.PEM) for cert in certs)


def write_pem(path: Path, *certs: x509.Certificate) -> Path:
    path.write_bytes(pem(*certs))
    return path


def node_extra_file(path: Path, *certs: x509.Certificate) -> Path:
    """A NODE_EXTRA_CA_CERTS file: PEM certificates, as Node reads it."""
    return write_pem(path, *certs)


def pem_count(path: Path | str) -> int:
    """``grep -c BEGIN``: certificates in a PEM bundle, counted without parsing."""
    return Path(path).read_bytes().count(b"-----BEGIN CERTIFICATE-----")


# --- Java ---------------------------------------------------------------------------------------------------------


def keytool_truststore(path: Path, ca_pem: Path, *, store_type: str = "JKS", password: str = JAVA_DEFAULT,
                       alias: str = "ca") -> Path:
    """A truststore made as operators make one: ``keytool -importcert -noprompt`` of a CA's PEM."""
    keytool = tool("keytool", "openjdk-17-jre-headless")
    run(keytool, *FAST_JVM, "-importcert", "-noprompt", "-alias", alias, "-file", str(ca_pem),
        "-keystore", str(path), "-storetype", store_type, "-storepass", password)
    return path


def keytool_keypair(path: Path, *, store_type: str = "JKS", password: str = JAVA_DEFAULT, alias: str = "site") -> Path:
    """A keystore holding one private key entry (a server's identity, not a trust anchor)."""
    keytool = tool("keytool", "openjdk-17-jre-headless")
    run(keytool, *FAST_JVM, "-genkeypair", "-keystore", str(path), "-storetype", store_type, "-storepass", password,
        "-keypass", password, "-alias", alias, "-keyalg", "EC", "-groupname", "secp256r1",
        "-dname", f"CN={alias}.example.test", "-validity", "30")
    return path


def jre_cacerts() -> Path:
    """The cacerts of the JRE whose keytool is on PATH (on Debian a symlink to /etc/ssl/certs/java/cacerts)."""
    home = Path(tool("keytool", "openjdk-17-jre-headless")).resolve().parents[1]
    cacerts = home / "lib" / "security" / "cacerts"
    assert cacerts.exists(), f"{cacerts}: the JRE has no cacerts"
    return cacerts


def cacerts_with_extra_ca(path: Path, ca_pem: Path, *, alias: str = "internal-ca") -> Path:
    """A copy of the JRE's cacerts with one more CA imported by keytool: a JDK whose truststore was patched."""
    shutil.copyfile(jre_cacerts(), path)
    path.chmod(0o644)
    return keytool_truststore(path, ca_pem, store_type=keytool_store_type(path), alias=alias)


def keytool_store_type(path: Path) -> str:
    return "JKS" if path.read_bytes()[:4] == b"\xfe\xed\xfe\xed" else "PKCS12"


def fake_jdk(home: Path, cacerts: Path, *, version: str = "21.0.4", implementor: str = "Test Vendor") -> Path:
    """A JDK layout as discovery sees one: a ``release`` file and ``lib/security/cacerts`` (a copy)."""
    (home / "lib" / "security").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(cacerts, home / "lib" / "security" / "cacerts")
    (home / "release").write_text(f'IMPLEMENTOR="{implementor}"\nJAVA_VERSION="{version}"\n')
    return home


def keytool_entries(*args: str) -> int:
    """How many entries ``keytool -list`` counts (e.g. ``-cacerts`` or ``-keystore PATH``), our independent check."""
    keytool = tool("keytool", "openjdk-17-jre-headless")
    output = run(keytool, *FAST_JVM, "-list", *args)
    match = _ENTRIES.search(output)
    assert match is not None, output
    return int(match.group(1))


def keytool_trusted_entries(*args: str) -> int:
    """How many ``trustedCertEntry`` lines ``keytool -list`` prints: anchors, not key entries."""
    keytool = tool("keytool", "openjdk-17-jre-headless")
    return run(keytool, *FAST_JVM, "-list", *args).count("trustedCertEntry")


# --- NSS ----------------------------------------------------------------------------------------------------------


def nss_db(directory: Path, certs: Sequence[tuple[str, str, Path]] = ()) -> Path:
    """A ``sql:`` NSS database made by certutil: ``certs`` are (nickname, trust flags, PEM file), e.g.
    ("internal", "C,,", ca.pem) for a trusted CA, ",," for no trust, "p,," for explicitly distrusted."""
    certutil = tool("certutil", "libnss3-tools")
    directory.mkdir(parents=True, exist_ok=True)
    run(certutil, "-N", "-d", f"sql:{directory}", "--empty-password")
    for nickname, trust, pem_file in certs:
        run(certutil, "-A", "-d", f"sql:{directory}", "-n", nickname, "-t", trust, "-i", str(pem_file))
    return directory


def certutil_trust(directory: Path) -> dict[str, str]:
    """``certutil -L``: nickname → trust flags ("C,,", ",,", "p,,"), the independent reading of a database."""
    certutil = tool("certutil", "libnss3-tools")
    listing: dict[str, str] = {}
    for line in run(certutil, "-L", "-d", f"sql:{directory}").splitlines():
        match = re.match(r"^(.*?)\s+([a-zA-Z]*,[a-zA-Z]*,[a-zA-Z]*)\s*$", line)
        if match and not line.startswith("Certificate Nickname"):
            listing[match.group(1).strip()] = match.group(2)
    return listing


def certutil_der(directory: Path, nickname: str) -> bytes:
    """The certificate certutil holds under ``nickname`` (DER), to compare fingerprints with."""
    certutil = tool("certutil", "libnss3-tools")
    done = subprocess.run([certutil, "-L", "-d", f"sql:{directory}", "-n", nickname, "-r"], capture_output=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout


# --- certifi in a virtualenv --------------------------------------------------------------------------------------


def certifi_venv(base: Path, version: str = OLD_CERTIFI) -> Path:
    """A throwaway virtualenv with ``certifi==version`` installed by pip from the registry; made once under
    ``base`` (a per-session directory) and reused, since venv + pip cost a few seconds."""
    venv = base / f"certifi-{version}-venv"
    marker = venv / ".tlsward-ready"
    if marker.exists():
        return venv
    if venv.exists():
        shutil.rmtree(venv)
    run(sys.executable, "-m", "venv", str(venv), timeout=300)
    run(str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
        "--no-input", f"certifi=={version}", timeout=600)
    marker.write_text(version)
    return venv


def certifi_bundle(venv: Path) -> Path:
    """The venv's certifi ``cacert.pem`` (lib/pythonX.Y/site-packages/certifi)."""
    matches = sorted(venv.glob("lib/python*/site-packages/certifi/cacert.pem"))
    assert len(matches) == 1, f"{venv}: expected one certifi, found {matches}"
    return matches[0]


# --- Node ---------------------------------------------------------------------------------------------------------


def node_root_count(node: str | None = None) -> int:
    """``node -p "require('tls').rootCertificates.length"``: Node's own count of its built-in roots."""
    binary = node or tool("node", "nodejs (nodesource)")
    return int(run(binary, "-p", "require('tls').rootCertificates.length", timeout=30).strip())
