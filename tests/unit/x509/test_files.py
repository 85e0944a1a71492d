"""Certificate and key files: every format discovery meets (PEM bundles, traditional/PKCS#8/encrypted keys,
DER, PKCS#12, JKS, JCEKS, Java PKCS12 made by the real keytool), and every way a file can be broken, each
ending in an exact result: what was found, or one problem that names the path (and line)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import pkcs7, pkcs12
from cryptography.x509.oid import NameOID

from tlsward.model.findings import FINDING_CATALOGUE
from tlsward.x509.facts import facts_from_der
from tlsward.x509.files import ParsedFile, parse_file, sniff_format, spki_sha256

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
PEM = serialization.Encoding.PEM
DER = serialization.Encoding.DER
PKCS8 = serialization.PrivateFormat.PKCS8
TRADITIONAL = serialization.PrivateFormat.TraditionalOpenSSL
NO_ENCRYPTION = serialization.NoEncryption()


def certificate(key: PrivateKey, name: str, *, issuer_key: PrivateKey | None = None, issuer: str | None = None,
                ca: bool = False, days: int = 90) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    issuer_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer or name)])
    builder = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(issuer_name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
    signer = issuer_key or key
    return builder.sign(signer, None if isinstance(signer, ed25519.Ed25519PrivateKey) else hashes.SHA256())


def pem(*certs: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(PEM) for c in certs)


def key_pem(key: PrivateKey, fmt: serialization.PrivateFormat = PKCS8, password: bytes | None = None) -> bytes:
    encryption = serialization.BestAvailableEncryption(password) if password else NO_ENCRYPTION
    return key.private_bytes(PEM, fmt, encryption)


def spki_of(cert: x509.Certificate) -> str:
    return facts_from_der(cert.public_bytes(DER)).spki_sha256


@dataclass(frozen=True)
class Material:
    """One small PKI, made once per module: EC P-256 everywhere except where a test needs another type."""

    ca_key: ec.EllipticCurvePrivateKey
    ca: x509.Certificate
    leaf_key: ec.EllipticCurvePrivateKey
    leaf: x509.Certificate
    other_key: ec.EllipticCurvePrivateKey
    other: x509.Certificate

    @property
    def bundle(self) -> bytes:
        return pem(self.leaf, self.other, self.ca)


def make_material() -> Material:
    ca_key, leaf_key, other_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    ca = certificate(ca_key, "Files Test CA", ca=True)
    leaf = certificate(leaf_key, "site.example.test", issuer_key=ca_key, issuer="Files Test CA")
    other = certificate(other_key, "other.example.test", issuer_key=ca_key, issuer="Files Test CA")
    return Material(ca_key, ca, leaf_key, leaf, other_key, other)


@pytest.fixture(scope="module")
def m() -> Material:
    return make_material()


def only_problem(parsed: ParsedFile) -> tuple[str, int | None, str]:
    assert len(parsed.problems) == 1, parsed.problems
    problem = parsed.problems[0]
    return problem.finding.id, problem.line, problem.finding.evidence


# --- PEM ------------------------------------------------------------------------------------------------------


def test_pem_bundle_of_three_in_order(m: Material) -> None:
    parsed = parse_file("/etc/ssl/bundle.pem", m.bundle)
    assert parsed.format == "pem"
    assert parsed.problems == () and parsed.keys == () and not parsed.holds_private_key
    assert [(c.path, c.format, c.index) for c in parsed.certificates] == [("/etc/ssl/bundle.pem", "pem", i)
                                                                          for i in range(3)]
    assert [c.der for c in parsed.certificates] == [c.public_bytes(DER) for c in (m.leaf, m.other, m.ca)]
    assert [c.facts.subject for c in parsed.certificates] == [
        "CN=site.example.test", "CN=other.example.test", "CN=Files Test CA"]
    assert parsed.certificates[0].facts.dns_names == ("site.example.test",)


def test_pem_with_text_around_blocks_and_crlf(m: Material) -> None:
    data = (b"Bag Attributes\r\n    friendlyName: site\r\nsubject=CN = site.example.test\r\n"
            + m.leaf.public_bytes(PEM).replace(b"\n", b"\r\n") + b"trailing words\r\n")
    parsed = parse_file("site.crt", data)
    assert parsed.problems == ()
    assert [c.facts.sha256 for c in parsed.certificates] == [hashlib.sha256(m.leaf.public_bytes(DER)).hexdigest()]


@pytest.mark.parametrize("fmt", [PKCS8, TRADITIONAL], ids=["pkcs8", "traditional"])
def test_pem_ec_key_pairs_with_its_certificate_by_spki(m: Material, fmt: serialization.PrivateFormat) -> None:
    data = key_pem(m.leaf_key, fmt)
    assert data.startswith(b"-----BEGIN PRIVATE KEY" if fmt == PKCS8 else b"-----BEGIN EC PRIVATE KEY")
    parsed = parse_file("site.key", data, mode=0o600)
    assert parsed.problems == () and parsed.certificates == () and parsed.holds_private_key
    (key,) = parsed.keys
    assert (key.path, key.format, key.index, key.key_type, key.key_bits, key.mode) == (
        "site.key", "pem", 0, "EC", 256, 0o600)
    assert key.spki_sha256 == spki_of(m.leaf)
    assert key.spki_sha256 != spki_of(m.other)


def test_spki_matches_certificate_facts_for_rsa_and_ed25519() -> None:
    rsa_key = rsa.generate_private_key(65537, 2048)
    ed_key = ed25519.Ed25519PrivateKey.generate()
    rsa_cert, ed_cert = certificate(rsa_key, "rsa.example.test"), certificate(ed_key, "ed.example.test")
    parsed = parse_file("mixed.pem", key_pem(rsa_key, TRADITIONAL) + pem(rsa_cert) + key_pem(ed_key) + pem(ed_cert))
    assert parsed.problems == ()
    assert [(k.key_type, k.key_bits, k.index) for k in parsed.keys] == [("RSA", 2048, 0), ("Ed25519", 256, 1)]
    assert [k.spki_sha256 for k in parsed.keys] == [c.facts.spki_sha256 for c in parsed.certificates]
    assert parsed.keys[0].spki_sha256 == base64.b64encode(hashlib.sha256(rsa_key.public_key().public_bytes(
        DER, serialization.PublicFormat.SubjectPublicKeyInfo)).digest()).decode()
    assert spki_sha256(rsa_key) == parsed.certificates[0].facts.spki_sha256
    assert key_pem(rsa_key, TRADITIONAL).startswith(b"-----BEGIN RSA PRIVATE KEY-----")


@pytest.mark.parametrize("fmt", [PKCS8, TRADITIONAL], ids=["pkcs8", "traditional"])
def test_encrypted_pem_key_right_wrong_and_no_password(m: Material, fmt: serialization.PrivateFormat) -> None:
    data = key_pem(m.leaf_key, fmt, password=b"hunter22")
    marker = b"ENCRYPTED PRIVATE KEY" if fmt == PKCS8 else b"Proc-Type: 4,ENCRYPTED"
    assert marker in data

    right = parse_file("enc.key", data, passwords=("wrong-first", "hunter22"))
    assert right.problems == ()
    assert [k.spki_sha256 for k in right.keys] == [spki_of(m.leaf)]

    wrong = parse_file("enc.key", b"# key for site\n" + data, passwords=("nope",))
    assert wrong.keys == () and wrong.holds_private_key
    assert only_problem(wrong) == ("file.wrong_password", 2,
                                   "enc.key line 2: private key 1 is encrypted and does not open with the password "
                                   "given")
    none = parse_file("enc.key", data)
    assert only_problem(none) == ("file.wrong_password", 1,
                                  "enc.key line 1: private key 1 is encrypted and no password was given")
    assert none.problems[0].finding.remediation.confirm == "openssl pkey -in enc.key -noout"


def test_broken_pem_block_names_its_line_and_the_rest_is_still_read(m: Material) -> None:
    leaf = m.leaf.public_bytes(PEM)
    cut = leaf[: len(leaf) // 2]                 # BEGIN and half the base64, no END
    data = pem(m.ca) + cut + pem(m.other)
    parsed = parse_file("/srv/chain.pem", data)
    broken_line = pem(m.ca).count(b"\n") + 1
    assert only_problem(parsed) == (
        "file.unparseable", broken_line,
        f"/srv/chain.pem line {broken_line}: the CERTIFICATE block has no END line (the file is cut short or "
        "blocks are mixed up)")
    assert [c.facts.subject for c in parsed.certificates] == ["CN=Files Test CA", "CN=other.example.test"]


def test_bad_base64_and_bad_der_inside_pem_blocks(m: Material) -> None:
    lines = m.leaf.public_bytes(PEM).split(b"\n")
    lines[3] = b"!!!!" + lines[3][4:]
    bad_base64 = b"\n".join(lines)
    bad_der = b"-----BEGIN CERTIFICATE-----\n" + base64.encodebytes(b"\x30\x03\x02\x01\x01") + \
        b"-----END CERTIFICATE-----\n"
    parsed = parse_file("two.pem", pem(m.ca) + bad_base64 + bad_der)
    first_line = pem(m.ca).count(b"\n") + 1
    second_line = first_line + bad_base64.count(b"\n")
    assert [(p.finding.id, p.line) for p in parsed.problems] == [
        ("file.unparseable", first_line), ("file.unparseable", second_line)]
    assert "certificate 2: the CERTIFICATE block is not valid base64" in parsed.problems[0].finding.evidence
    assert "certificate 3 cannot be parsed" in parsed.problems[1].finding.evidence
    assert [c.index for c in parsed.certificates] == [0]


def test_broken_key_block_is_a_problem_and_still_counts_as_key_material() -> None:
    data = b"-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----\n"
    parsed = parse_file("k.pem", data)
    assert parsed.holds_private_key and parsed.keys == ()
    problem_id, line, evidence = only_problem(parsed)
    assert (problem_id, line) == ("file.unparseable", 1)
    assert evidence.startswith("k.pem line 1: private key 1: the PRIVATE KEY block cannot be parsed (")


def test_pem_blocks_without_certificates_or_keys_are_no_problem(m: Material) -> None:
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "csr")])).sign(m.leaf_key, hashes.SHA256()))
    public = m.leaf_key.public_key().public_bytes(PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    parsed = parse_file("misc.pem", csr.public_bytes(PEM) + public)
    assert (parsed.format, parsed.certificates, parsed.keys, parsed.problems) == ("pem", (), (), ())


def test_pkcs7_bundle_pem_and_der(m: Material) -> None:
    p7_pem = pkcs7.serialize_certificates([m.leaf, m.ca], PEM)
    p7_der = pkcs7.serialize_certificates([m.leaf, m.ca], DER)
    for name, data, fmt in (("chain.p7b", p7_pem, "pem"), ("chain.p7c", p7_der, "der")):
        parsed = parse_file(name, data, hint=name[-4:])
        assert parsed.problems == ()
        assert (parsed.format, sorted(c.facts.subject for c in parsed.certificates)) == (
            fmt, ["CN=Files Test CA", "CN=site.example.test"])


def test_openssl_trusted_certificate_form(m: Material) -> None:
    der = m.ca.public_bytes(DER) + bytes.fromhex("300a300806062b0601050507")   # certificate + trust settings
    body = base64.encodebytes(der)
    parsed = parse_file("trusted.pem", b"-----BEGIN TRUSTED CERTIFICATE-----\n" + body
                        + b"-----END TRUSTED CERTIFICATE-----\n")
    assert parsed.problems == ()
    assert [c.der for c in parsed.certificates] == [m.ca.public_bytes(DER)]


# --- DER ------------------------------------------------------------------------------------------------------


def test_der_certificate_and_der_keys(m: Material) -> None:
    cert = parse_file("site.cer", m.leaf.public_bytes(DER))
    assert (cert.format, [c.facts.subject for c in cert.certificates], cert.problems) == (
        "der", ["CN=site.example.test"], ())

    for fmt in (PKCS8, TRADITIONAL):
        key = parse_file("site.der", m.leaf_key.private_bytes(DER, fmt, NO_ENCRYPTION))
        assert key.problems == () and key.format == "der"
        assert [(k.format, k.spki_sha256) for k in key.keys] == [("der", spki_of(m.leaf))]

    encrypted = m.leaf_key.private_bytes(DER, PKCS8, serialization.BestAvailableEncryption(b"pw-der"))
    assert [k.spki_sha256 for k in parse_file("e.der", encrypted, passwords=(b"pw-der",)).keys] == [spki_of(m.leaf)]
    assert only_problem(parse_file("e.der", encrypted))[0] == "file.wrong_password"


def test_truncated_der_certificate(m: Material) -> None:
    der = m.leaf.public_bytes(DER)
    parsed = parse_file("/certs/site.der", der[:200])
    assert parsed.certificates == ()
    assert only_problem(parsed) == (
        "file.unparseable", None,
        f"/certs/site.der: truncated: its DER header announces {len(der)} bytes but the file has 200")
    assert parsed.problems[0].finding.remediation.confirm == "openssl asn1parse -inform DER -in /certs/site.der"


def test_der_crl_is_no_problem(m: Material) -> None:
    crl = (x509.CertificateRevocationListBuilder().issuer_name(m.ca.subject).last_update(NOW)
           .next_update(NOW + dt.timedelta(days=7)).sign(m.ca_key, hashes.SHA256()))
    parsed = parse_file("ca.der", crl.public_bytes(DER))
    assert (parsed.format, parsed.certificates, parsed.problems) == ("der", (), ())


# --- garbage ----------------------------------------------------------------------------------------------------


def test_garbage_empty_and_whitespace() -> None:
    garbage = parse_file("/x/junk.pem", bytes(range(200, 256)) * 4)
    assert garbage.format is None
    assert only_problem(garbage) == (
        "file.unparseable", None,
        "/x/junk.pem: neither PEM, DER, PKCS#12 nor a Java keystore (starts with bytes c8c9cacbcccdcecf)")
    for data in (b"", b" \n\n"):
        empty = parse_file("/x/empty.crt", data)
        assert only_problem(empty) == (
            "file.unparseable", None, f"/x/empty.crt: the file is empty ({len(data)} bytes), no certificate or key "
            "in it")


def test_problem_is_a_catalogued_finding_with_commands(m: Material) -> None:
    parsed = parse_file("/etc/my certs/site.pem", pem(m.leaf)[:-30])
    (problem,) = parsed.problems
    spec = FINDING_CATALOGUE["file.unparseable"]
    assert (problem.finding.severity, problem.finding.title) == (spec.severity, spec.title)
    assert problem.path == "/etc/my certs/site.pem"
    assert problem.finding.remediation.confirm == "openssl storeutl -noout -certs '/etc/my certs/site.pem'"
    assert problem.finding.remediation.fix
    assert str(problem).startswith("/etc/my certs/site.pem:1: file.unparseable: /etc/my certs/site.pem line 1: ")


def test_sniff_format(m: Material) -> None:
    assert sniff_format(pem(m.leaf)) == "pem"
    assert sniff_format(m.leaf.public_bytes(DER)) == "der"
    assert sniff_format(b"\xfe\xed\xfe\xed\x00\x00\x00\x02") == "jks"
    assert sniff_format(b"PK\x03\x04") is None
    p12 = pkcs12.serialize_key_and_certificates(b"x", m.leaf_key, m.leaf, None, NO_ENCRYPTION)
    assert sniff_format(p12) == "pkcs12"


# --- PKCS#12 ----------------------------------------------------------------------------------------------------


def test_pkcs12_right_wrong_and_no_password(m: Material) -> None:
    data = pkcs12.serialize_key_and_certificates(
        b"site", m.leaf_key, m.leaf, [m.ca], serialization.BestAvailableEncryption(b"p12-secret"))
    right = parse_file("/k/site.p12", data, passwords=("p12-secret",))
    assert right.problems == () and right.format == "pkcs12" and right.holds_private_key
    assert [(c.index, c.alias, c.facts.subject) for c in right.certificates] == [
        (0, "site", "CN=site.example.test"), (1, None, "CN=Files Test CA")]
    assert [(k.format, k.spki_sha256) for k in right.keys] == [("pkcs12", spki_of(m.leaf))]

    wrong = parse_file("/k/site.p12", data, passwords=("a", "b"))
    assert (wrong.certificates, wrong.keys, wrong.holds_private_key) == ((), (), True)
    assert only_problem(wrong) == ("file.wrong_password", None,
                                   "/k/site.p12: the PKCS#12 file does not open with any of the 2 passwords given")
    assert wrong.problems[0].finding.remediation.confirm == "openssl pkcs12 -info -in /k/site.p12 -noout"

    none = parse_file("/k/site.p12", data)
    problem_id, _, evidence = only_problem(none)
    assert problem_id == "file.wrong_password"
    assert evidence.startswith("/k/site.p12: the PKCS#12 file is protected by a password and none was given")


def test_pkcs12_without_password_opens_when_none_is_given(m: Material) -> None:
    data = pkcs12.serialize_key_and_certificates(b"site", m.leaf_key, m.leaf, None, NO_ENCRYPTION)
    parsed = parse_file("site.pfx", data)
    assert parsed.problems == ()
    assert [k.spki_sha256 for k in parsed.keys] == [c.facts.spki_sha256 for c in parsed.certificates]


def test_pkcs12_with_empty_password_opens_when_none_is_given(m: Material, tmp_path: Path) -> None:
    """The empty password is what Windows exports and ``openssl pkcs12 -passout pass:`` write."""
    openssl = shutil.which("openssl")
    assert openssl is not None, "openssl is required (`make test` installs it)"
    (tmp_path / "c.pem").write_bytes(pem(m.leaf))
    (tmp_path / "k.pem").write_bytes(key_pem(m.leaf_key))
    subprocess.run([openssl, "pkcs12", "-export", "-in", str(tmp_path / "c.pem"), "-inkey", str(tmp_path / "k.pem"),
                    "-passout", "pass:", "-out", str(tmp_path / "e.p12")], check=True, capture_output=True)
    data = (tmp_path / "e.p12").read_bytes()
    parsed = parse_file("e.p12", data)
    assert parsed.problems == ()
    assert [k.spki_sha256 for k in parsed.keys] == [spki_of(m.leaf)]
    assert only_problem(parse_file("e.p12", data, passwords=("not-empty",)))[0] == "file.wrong_password"


def test_truncated_pkcs12(m: Material) -> None:
    data = pkcs12.serialize_key_and_certificates(b"site", m.leaf_key, m.leaf, None, NO_ENCRYPTION)
    parsed = parse_file("site.p12", data[: len(data) - 40])
    assert parsed.format == "pkcs12" and parsed.holds_private_key
    assert only_problem(parsed)[0] == "file.unparseable"
    assert "truncated" in parsed.problems[0].finding.evidence


# --- Java keystores -----------------------------------------------------------------------------------------------

KEYTOOL = shutil.which("keytool")


@dataclass(frozen=True)
class Stores:
    jks: bytes          # store password changeit (the JDK default), one EC key entry "site"
    jceks: bytes        # store password s3cret-pass, one EC key entry "site"
    pkcs12: bytes       # Java PKCS12, store password s3cret-pass, one EC key entry "site"
    trust: bytes        # JKS truststore, password s3cret-pass, one trusted entry "ca"
    trust_pkcs12: bytes  # Java PKCS12 truststore, password s3cret-pass, one trusted entry "ca"


@pytest.fixture(scope="module")
def stores(m: Material, tmp_path_factory: pytest.TempPathFactory) -> Stores:
    """Made by the real keytool (Java 17): five JVMs started together, tuned for start-up, to keep this fast."""
    assert KEYTOOL is not None, "keytool is required (`make test` installs openjdk-17-jre-headless)"
    work = tmp_path_factory.mktemp("keytool")
    (work / "ca.pem").write_bytes(pem(m.ca))
    fast_jvm = ["-J-XX:TieredStopAtLevel=1", "-J-XX:+UseSerialGC", "-J-Xshare:auto"]

    def gen(store: str, store_type: str, password: str, name: str) -> list[str]:
        return [KEYTOOL, *fast_jvm, "-genkeypair", "-keystore", str(work / store), "-storetype", store_type,
                "-storepass", password, "-keypass", password, "-alias", "site", "-keyalg", "EC",
                "-groupname", "secp256r1", "-dname", f"CN={name}", "-validity", "30"]

    def trust(store: str, store_type: str) -> list[str]:
        return [KEYTOOL, *fast_jvm, "-importcert", "-noprompt", "-alias", "ca", "-file", str(work / "ca.pem"),
                "-keystore", str(work / store), "-storetype", store_type, "-storepass", "s3cret-pass"]

    commands = [gen("s.jks", "JKS", "changeit", "jks.example.test"),
                gen("s.jceks", "JCEKS", "s3cret-pass", "jceks.example.test"),
                gen("s.p12", "PKCS12", "s3cret-pass", "p12.example.test"),
                trust("trust.jks", "JKS"), trust("trust.p12", "PKCS12")]
    running = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for c in commands]
    for process in running:
        output, _ = process.communicate(timeout=60)
        assert process.returncode == 0, output.decode()
    return Stores(*((work / n).read_bytes() for n in ("s.jks", "s.jceks", "s.p12", "trust.jks", "trust.p12")))


def assert_key_matches_its_chain(parsed: ParsedFile, name: str) -> None:
    (key,) = parsed.keys
    assert (key.key_type, key.key_bits) == ("EC", 256)
    leaf = next(c for c in parsed.certificates if c.facts.subject == f"CN={name}")
    assert key.spki_sha256 == leaf.facts.spki_sha256
    assert leaf.alias == "site"


def test_keytool_jks_opens_with_the_default_password(stores: Stores) -> None:
    parsed = parse_file("s.jks", stores.jks)
    assert (parsed.format, parsed.problems, parsed.holds_private_key) == ("jks", (), True)
    assert [(c.index, c.alias, c.format) for c in parsed.certificates] == [(0, "site", "jks")]
    assert_key_matches_its_chain(parsed, "jks.example.test")


def test_keytool_jceks_right_and_wrong_password(stores: Stores) -> None:
    parsed = parse_file("s.jceks", stores.jceks, passwords=("s3cret-pass",))
    assert parsed.problems == ()
    assert_key_matches_its_chain(parsed, "jceks.example.test")

    wrong = parse_file("s.jceks", stores.jceks, passwords=("bad-pass",))
    assert wrong.keys == () and wrong.holds_private_key
    assert [c.facts.subject for c in wrong.certificates] == ["CN=jceks.example.test"]   # stored in clear
    assert only_problem(wrong) == ("file.wrong_password", None,
                                   "s.jceks: the private key of entry 'site' stays locked: it does not open with the "
                                   "password given")
    assert wrong.problems[0].finding.remediation.confirm == "keytool -list -v -storetype JCEKS -keystore s.jceks"

    no_password = parse_file("s.jceks", stores.jceks)
    assert only_problem(no_password)[2] == (
        "s.jceks: the private key of entry 'site' stays locked: no password was given")


def test_keytool_java_pkcs12_goes_through_pkcs12(stores: Stores, m: Material) -> None:
    parsed = parse_file("s.p12", stores.pkcs12, passwords=("s3cret-pass",))
    assert (parsed.format, parsed.problems) == ("pkcs12", ())
    assert [(c.alias, c.facts.subject) for c in parsed.certificates] == [("site", "CN=p12.example.test")]
    assert_key_matches_its_chain(parsed, "p12.example.test")
    assert only_problem(parse_file("s.p12", stores.pkcs12, passwords=("bad-pass",)))[0] == "file.wrong_password"
    assert only_problem(parse_file("s.p12", stores.pkcs12))[0] == "file.wrong_password"

    truststore = parse_file("trust.p12", stores.trust_pkcs12, passwords=("s3cret-pass",))
    assert (truststore.format, truststore.problems, truststore.keys, truststore.holds_private_key) == (
        "pkcs12", (), (), False)
    assert [(c.alias, c.der) for c in truststore.certificates] == [("ca", m.ca.public_bytes(DER))]


def test_keytool_truststore(stores: Stores, m: Material) -> None:
    right = parse_file("trust.jks", stores.trust, passwords=("s3cret-pass",))
    assert (right.problems, right.keys, right.holds_private_key) == ((), (), False)
    assert [(c.alias, c.der) for c in right.certificates] == [("ca", m.ca.public_bytes(DER))]
    # Trusted certificates are stored in clear: read without a password, and no problem since nothing is locked.
    unverified = parse_file("trust.jks", stores.trust)
    assert (unverified.problems, [c.alias for c in unverified.certificates]) == ((), ["ca"])
    # A password that is given and wrong is reported, certificates still read.
    wrong = parse_file("trust.jks", stores.trust, passwords=("bad-pass",))
    assert [c.alias for c in wrong.certificates] == ["ca"]
    assert only_problem(wrong) == ("file.wrong_password", None,
                                   "trust.jks: the keystore does not verify with the password given (its "
                                   "certificates were read without the integrity check)")


def test_pyjks_store_with_known_key_and_trusted_entry(m: Material) -> None:
    import jks  # type: ignore[import-untyped]
    pkcs8 = m.leaf_key.private_bytes(DER, PKCS8, NO_ENCRYPTION)
    store = jks.KeyStore.new("jks", [
        jks.PrivateKeyEntry.new("site", [m.leaf.public_bytes(DER), m.ca.public_bytes(DER)], pkcs8),
        jks.TrustedCertEntry.new("other", m.other.public_bytes(DER)),
    ])
    data = store.saves("store-pw-1")
    parsed = parse_file("app.keystore", data, passwords=("store-pw-1",))
    assert parsed.problems == ()
    assert [(c.index, c.alias, c.facts.subject) for c in parsed.certificates] == [
        (0, "site", "CN=site.example.test"), (1, "site", "CN=Files Test CA"), (2, "other", "CN=other.example.test")]
    assert [(k.format, k.spki_sha256) for k in parsed.keys] == [("jks", spki_of(m.leaf))]


def test_broken_keystores() -> None:
    truncated = b"\xfe\xed\xfe\xed\x00\x00\x00\x02\x00\x00\x00\x05\x00\x00"
    problem_id, line, evidence = only_problem(parse_file("/j/bad.jks", truncated))
    assert (problem_id, line) == ("file.unparseable", None)
    assert evidence.startswith("/j/bad.jks: a JKS keystore that cannot be parsed (")
    version = b"\xce\xce\xce\xce\x00\x00\x00\x07" + bytes(20)
    assert only_problem(parse_file("bad.jceks", version))[0] == "file.unparseable"


def test_reads_nothing_from_disk(tmp_path: Path, m: Material) -> None:
    """parse_file is bytes in, data out: the path is only a name (it need not exist)."""
    parsed = parse_file(str(tmp_path / "does-not-exist.pem"), pem(m.leaf))
    assert [c.path for c in parsed.certificates] == [str(tmp_path / "does-not-exist.pem")]
    assert list(tmp_path.iterdir()) == []
