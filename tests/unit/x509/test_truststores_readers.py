"""The trust store readers against stores made by the real tools (keytool, certutil, openssl rehash) and against
every way a store can be broken: garbage, truncated, empty, a wrong password, a missing path, a directory that is
not a database. A broken store is a one-line problem naming the path, never an exception.

keytool (openjdk-17-jre-headless), certutil (libnss3-tools) and openssl are required: a missing one fails.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import shutil
import sqlite3
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tests.stores import (
    certutil_der,
    certutil_trust,
    keytool_entries,
    keytool_keypair,
    keytool_truststore,
    make_ca,
    nss_db,
    pem,
    run,
    tool,
    write_pem,
)
from tlsward.x509.trust import SYSTEM_BUNDLES, TrustStore, mozilla_store
from tlsward.x509.truststores import (
    LoadedStore,
    loaded_store,
    node_extra_store,
    node_store,
    read_bundle,
    read_hashed_dir,
    read_java_keystore,
    read_nss_db,
    read_store,
    root_info,
)


@pytest.fixture(scope="module")
def cas() -> dict[str, x509.Certificate]:
    return {name: make_ca(f"{name} Root", organization=f"{name} Org")
            for name in ("internal", "partner", "distrusted", "plain", "valid")}


def fingerprint(cert: x509.Certificate) -> str:
    return hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest()


def subjects(store: LoadedStore) -> set[str]:
    return {root.subject for root in store.info.roots}


def assert_problem(store: LoadedStore, path: Path | str, *words: str) -> None:
    """Unreadable: no roots, no trust, and one line that names the path (and says why)."""
    problem = store.info.problem
    assert problem and "\n" not in problem, problem
    assert str(path) in problem, problem
    for word in words:
        assert word in problem, problem
    assert store.info.roots == () and store.trust is None and not store.info.readable


# --- root_info ----------------------------------------------------------------------------------------------------


def test_root_info_fields(cas: dict[str, x509.Certificate]) -> None:
    cert = cas["internal"]
    info = root_info(cert)
    assert info.sha256 == fingerprint(cert)
    spki = cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    assert info.spki_sha256 == hashlib.sha256(spki).hexdigest()
    assert info.subject == "CN=internal Root,O=internal Org"
    assert info.organization == "internal Org"
    assert info.not_after == cert.not_valid_after_utc and info.not_after.tzinfo is not None
    assert not info.expired(dt.datetime.now(dt.UTC))


def test_root_info_spki_equals_cryptography_for_every_real_root() -> None:
    """The SubjectPublicKeyInfo is cut from the TBS bytes: it must be what cryptography re-encodes, for every
    key type and encoding among the OS's and Mozilla's roots (RSA, EC P-256/P-384, odd lengths)."""
    bundle = next(p for p in SYSTEM_BUNDLES if p.is_file())
    roots = list(read_bundle(bundle).roots) + list(mozilla_store().roots)
    assert len(roots) > 100
    for cert in roots:
        spki = cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        assert root_info(cert).spki_sha256 == hashlib.sha256(spki).hexdigest(), cert.subject


def test_same_key_in_two_certificates_shares_spki(cas: dict[str, x509.Certificate]) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name.from_rfc4514_string("CN=Re-issued Root")
    now = dt.datetime.now(dt.UTC)

    def issue(days: int) -> x509.Certificate:
        from cryptography.hazmat.primitives import hashes
        return (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(now)
                .not_valid_after(now + dt.timedelta(days=days)).sign(key, hashes.SHA256()))

    first, second = root_info(issue(10)), root_info(issue(20))
    assert first.sha256 != second.sha256 and first.spki_sha256 == second.spki_sha256
    assert first.organization == ""


def test_loaded_store_dedupes_and_a_problem_drops_the_roots(cas: dict[str, x509.Certificate]) -> None:
    store = loaded_store(store_id="file:x", kind="file", path="x", label="x",
                         certificates=[cas["internal"], cas["partner"], cas["internal"]])
    assert [r.sha256 for r in store.info.roots] == [fingerprint(cas["internal"]), fingerprint(cas["partner"])]
    assert store.trust is not None and cas["partner"] in store.trust and store.trust.name == "x"
    assert store.info.clients   # every kind says who reads it
    broken = loaded_store(store_id="file:x", kind="file", path="x", label="x", certificates=[cas["internal"]],
                          problem="x: broken")
    assert broken.info.roots == () and broken.trust is None


# --- PEM and DER bundles ------------------------------------------------------------------------------------------


def test_pem_bundle(tmp_path: Path, cas: dict[str, x509.Certificate]) -> None:
    path = tmp_path / "bundle.pem"
    path.write_bytes(b"# comment lines between blocks are fine\n" + pem(cas["internal"], cas["partner"])
                     + b"trailing text\n" + pem(cas["internal"]))
    store = read_bundle(path, kind="system-bundle", label="bundle")
    info = store.info
    assert (info.id, info.kind, info.path, info.label, info.problem) == (
        f"system-bundle:{path}", "system-bundle", str(path), "bundle", "")
    assert subjects(store) == {"CN=internal Root,O=internal Org", "CN=partner Root,O=partner Org"}
    assert len(info.roots) == 2   # the duplicate counted once
    assert info.modified == dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC)
    assert "curl" in info.clients


def test_single_der_certificate_and_trusted_certificate_form(tmp_path: Path,
                                                            cas: dict[str, x509.Certificate]) -> None:
    der = tmp_path / "root.der"
    der.write_bytes(cas["internal"].public_bytes(Encoding.DER))
    assert [r.sha256 for r in read_bundle(der).info.roots] == [fingerprint(cas["internal"])]
    # OpenSSL's "TRUSTED CERTIFICATE" (certificate + trust settings), made by openssl itself
    source = write_pem(tmp_path / "root.pem", cas["partner"])
    trusted = tmp_path / "trusted.pem"
    run(tool("openssl", "openssl"), "x509", "-in", str(source), "-addtrust", "serverAuth", "-trustout",
        "-out", str(trusted))
    assert b"BEGIN TRUSTED CERTIFICATE" in trusted.read_bytes()
    assert [r.sha256 for r in read_bundle(trusted).info.roots] == [fingerprint(cas["partner"])]


def test_hostile_bundles(tmp_path: Path, cas: dict[str, x509.Certificate]) -> None:
    good = pem(cas["internal"], cas["partner"])
    cases = {
        "garbage.pem": (os.urandom(2000).replace(b"\x30", b"\x31"), "neither a PEM bundle nor a DER"),
        "empty.pem": (b"", "empty"),
        "blank.pem": (b"\n\n  \n", "empty"),
        "truncated.pem": (good[: len(good) - 200], "cut short"),
        "badbase64.pem": (good.replace(b"MII", b"M!I", 1), "base64"),
        "nocerts.pem": (b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "without any CERTIFICATE"),
        "truncated.der": (cas["internal"].public_bytes(Encoding.DER)[:300], "cannot be parsed"),
        "notacert.pem": (pem(cas["internal"]).replace(b"MII", b"MIA", 1), "certificate 1 of 1"),
    }
    for name, (data, why) in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        assert_problem(read_bundle(path), path, why)
        assert_problem(read_store(path), path)
    assert_problem(read_bundle(tmp_path / "missing.pem"), tmp_path / "missing.pem", "No such file")
    assert_problem(read_bundle(tmp_path), tmp_path, "not a regular file")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert_problem(read_bundle(fifo), fifo, "not a regular file")   # never blocks on a FIFO


def test_unreadable_file(tmp_path: Path, cas: dict[str, x509.Certificate]) -> None:
    path = write_pem(tmp_path / "secret.pem", cas["internal"])
    path.chmod(0)
    try:
        if os.geteuid() == 0:   # root reads anything: the check is then that reading works
            assert read_bundle(path).info.readable
        else:
            assert_problem(read_bundle(path), path, "Permission denied")
    finally:
        path.chmod(0o644)


def test_an_edited_bundle_is_read_again(tmp_path: Path, cas: dict[str, x509.Certificate]) -> None:
    path = write_pem(tmp_path / "ca.pem", cas["internal"])
    first = read_bundle(path)
    assert read_bundle(path).roots[0] is first.roots[0]   # cached: the same parsed certificate
    write_pem(path, cas["internal"], cas["partner"])
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000_000))
    assert len(read_bundle(path).info.roots) == 2


# --- hashed directories -------------------------------------------------------------------------------------------


def test_hashed_directory_made_by_openssl_rehash(tmp_path: Path, cas: dict[str, x509.Certificate]) -> None:
    certs = tmp_path / "certs"
    certs.mkdir()
    write_pem(certs / "internal.pem", cas["internal"])
    write_pem(certs / "partner.pem", cas["partner"])
    run(tool("openssl", "openssl"), "rehash", str(certs))
    links = sorted(p.name for p in certs.iterdir() if p.is_symlink())
    assert len(links) == 2 and all(name.endswith(".0") for name in links), links
    # A second entry for the same certificate (as c_rehash leaves after a copy): counted once.
    write_pem(certs / "internal-copy.pem", cas["internal"])
    first = next(name for name in links if (certs / name).resolve().name == "internal.pem")
    (certs / first.replace(".0", ".1")).symlink_to("internal-copy.pem")
    store = read_hashed_dir(certs)
    assert store.info.problem == "" and "3 hashed entries" in store.info.notes
    assert {r.sha256 for r in store.info.roots} == {fingerprint(cas["internal"]), fingerprint(cas["partner"])}
    assert store.info.id == f"system-dir:{certs}" and store.info.kind == "system-dir"
    assert read_store(certs).info.fingerprints() == store.info.fingerprints()

    # A broken entry costs only that CA (OpenSSL looks entries up one by one): a note, not a problem.
    (certs / "deadbeef.0").write_bytes(b"garbage")
    (certs / "deadbeef.1").symlink_to(certs / "gone.pem")
    store = read_hashed_dir(certs)
    assert store.info.readable and len(store.info.roots) == 2
    assert any("2 unreadable entries skipped" in n for n in store.info.notes), store.info.notes


def test_hostile_hashed_directories(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_problem(read_hashed_dir(empty), empty, "no hashed certificate entries")
    assert_problem(read_hashed_dir(tmp_path / "missing"), tmp_path / "missing", "No such file")
    file = tmp_path / "file"
    file.write_text("x")
    assert_problem(read_hashed_dir(file), file, "not a directory")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "0123abcd.0").write_bytes(b"")
    assert_problem(read_hashed_dir(broken), broken, "none of its 1 hashed entries")


def test_the_real_system_directory_matches_the_bundle() -> None:
    """Debian's update-ca-certificates writes both from the same list."""
    bundle = Path("/etc/ssl/certs/ca-certificates.crt")
    assert bundle.is_file(), "the ca-certificates package is required"
    assert read_hashed_dir("/etc/ssl/certs").info.fingerprints() == read_bundle(bundle).info.fingerprints()


# --- Java keystores -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def java(tmp_path_factory: pytest.TempPathFactory, cas: dict[str, x509.Certificate]) -> Path:
    """Keystores made by keytool: JKS and PKCS#12 truststores with default and other passwords, and keystores
    holding a private key entry beside a trusted CA."""
    work = tmp_path_factory.mktemp("java")
    ca = write_pem(work / "internal.pem", cas["internal"])
    keytool_truststore(work / "default.jks", ca)
    keytool_truststore(work / "secret.jks", ca, password="s3cret-pass")
    keytool_truststore(work / "default.p12", ca, store_type="PKCS12")
    keytool_truststore(work / "secret.p12", ca, store_type="PKCS12", password="s3cret-pass")
    for store_type, name in (("JKS", "mixed.jks"), ("PKCS12", "mixed.p12")):
        keytool_keypair(work / name, store_type=store_type)
        keytool_truststore(work / name, ca, store_type=store_type)
    keytool_keypair(work / "keyonly.jks")
    return work


def test_java_truststores(java: Path, cas: dict[str, x509.Certificate]) -> None:
    internal = frozenset({fingerprint(cas["internal"])})
    for name, password in (("default.jks", None), ("secret.jks", "s3cret-pass"), ("default.p12", None),
                           ("secret.p12", "s3cret-pass")):
        store = read_java_keystore(java / name, password=password)
        assert (store.info.problem, store.info.fingerprints()) == ("", internal), name
        assert store.info.id == f"java:{java / name}" and "Java" in store.info.clients
        assert keytool_entries("-keystore", str(java / name), "-storepass", password or "changeit") == 1
        assert read_store(java / name, password=password).info.fingerprints() == internal


def test_pkcs12_truststore_made_by_openssl(tmp_path: Path, cas: dict[str, x509.Certificate]) -> None:
    """OpenSSL writes no friendly names and, with ``-nokeys``, no key: every certificate is an anchor."""
    source = write_pem(tmp_path / "cas.pem", cas["internal"], cas["partner"])
    for password in ("changeit", ""):
        path = tmp_path / f"openssl-{password or 'empty'}.p12"
        run(tool("openssl", "openssl"), "pkcs12", "-export", "-nokeys", "-in", str(source), "-out", str(path),
            "-passout", f"pass:{password}")
        store = read_java_keystore(path)
        assert store.info.fingerprints() == {fingerprint(cas["internal"]), fingerprint(cas["partner"])}, password


def test_java_only_trusted_entries_are_anchors(java: Path, cas: dict[str, x509.Certificate]) -> None:
    for name in ("mixed.jks", "mixed.p12"):
        assert keytool_entries("-keystore", str(java / name), "-storepass", "changeit") == 2
        store = read_java_keystore(java / name)
        assert store.info.fingerprints() == {fingerprint(cas["internal"])}, name
        assert any("not counted" in note for note in store.info.notes)
    assert_problem(read_java_keystore(java / "keyonly.jks"), java / "keyonly.jks", "without any trusted")


def test_java_wrong_password(java: Path, cas: dict[str, x509.Certificate]) -> None:
    # PKCS#12 encrypts its certificates: no password that opens it, nothing to read.
    store = read_java_keystore(java / "secret.p12", password="bad-pass")
    assert_problem(store, java / "secret.p12", "does not open with the given password, changeit or an empty password")
    assert "bad-pass" not in store.info.problem
    assert_problem(read_java_keystore(java / "secret.p12"), java / "secret.p12", "changeit or an empty password")
    # JKS keeps trusted certificates in clear and Java reads them without a password: read, with a note.
    jks = read_java_keystore(java / "secret.jks", password="bad-pass")
    assert jks.info.fingerprints() == {fingerprint(cas["internal"])}
    assert any("integrity not verified" in note for note in jks.info.notes)


def test_hostile_keystores(tmp_path: Path, java: Path) -> None:
    data = (java / "default.jks").read_bytes()
    p12 = (java / "default.p12").read_bytes()
    cases = {
        "truncated.jks": (data[: len(data) // 2], "cannot be parsed"),
        "magic-only.jks": (b"\xfe\xed\xfe\xed" + os.urandom(64), "cannot be parsed"),
        "truncated.p12": (p12[: len(p12) // 2], "truncated or malformed"),
        "empty.jks": (b"", "empty"),
        "text.jks": (b"not a keystore at all\n", "not a Java keystore"),
    }
    for name, (content, why) in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        assert_problem(read_java_keystore(path), path, why)
    assert_problem(read_java_keystore(tmp_path / "missing"), tmp_path / "missing", "No such file")
    assert_problem(read_java_keystore(tmp_path), tmp_path, "not a regular file")


# --- NSS ----------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def nss(tmp_path_factory: pytest.TempPathFactory, cas: dict[str, x509.Certificate]) -> Path:
    """A database as certutil makes it: one trusted CA (C,,), one added without trust (,,), one explicitly
    distrusted (p,,), one valid but not trusted for TLS servers (c,C,), and a Mozilla root distrusted (p,,)."""
    work = tmp_path_factory.mktemp("nss")
    files = {name: write_pem(work / f"{name}.pem", cert) for name, cert in cas.items()}
    mozilla_root = write_pem(work / "mozilla.pem", mozilla_store().roots[0])
    return nss_db(work / "db", [("internal", "C,,", files["internal"]), ("plain", ",,", files["plain"]),
                                ("distrusted", "p,,", files["distrusted"]), ("valid", "c,C,", files["valid"]),
                                ("mozilla-distrusted", "p,,", mozilla_root)])


def test_nss_anchors_agree_with_certutil(nss: Path, cas: dict[str, x509.Certificate]) -> None:
    listing = certutil_trust(nss)
    assert listing == {"internal": "C,,", "plain": ",,", "distrusted": "p,,", "valid": "c,C,",
                       "mozilla-distrusted": "p,,"}
    trusted = {hashlib.sha256(certutil_der(nss, name)).hexdigest() for name, flags in listing.items()
               if "C" in flags.split(",")[0]}
    store = read_nss_db(nss)
    assert store.info.problem == ""
    assert store.info.fingerprints() == trusted == {fingerprint(cas["internal"])}
    assert store.info.id == f"nss:{nss}" and store.info.kind == "nss"
    assert store.info.modified == dt.datetime.fromtimestamp((nss / "cert9.db").stat().st_mtime, dt.UTC)
    assert any("not counted" in note for note in store.info.notes)
    assert read_nss_db(nss / "cert9.db").info.fingerprints() == trusted   # the file itself names the database
    assert read_store(nss).info.fingerprints() == trusted


def test_nss_with_builtins(nss: Path, cas: dict[str, x509.Certificate]) -> None:
    mozilla = mozilla_store()
    store = read_nss_db(nss, builtins=mozilla)
    expected = {fingerprint(c) for c in mozilla.roots[1:]} | {fingerprint(cas["internal"])}
    assert store.info.fingerprints() == expected   # builtins + own anchors, minus the distrusted (by the database)
    assert fingerprint(mozilla.roots[0]) not in store.info.fingerprints()
    assert any("libnssckbi" in note and "1 distrusted" in note for note in store.info.notes), store.info.notes
    # A builtin list that holds a certificate the database distrusts drops it too.
    mine = TrustStore("mine", (cas["distrusted"], cas["partner"]))
    assert read_nss_db(nss, builtins=mine).info.fingerprints() == {fingerprint(cas["partner"]),
                                                                   fingerprint(cas["internal"])}


def test_hostile_nss(tmp_path: Path, nss: Path) -> None:
    empty_dir = tmp_path / "nodb"
    empty_dir.mkdir()
    assert_problem(read_nss_db(empty_dir), empty_dir, "no cert9.db")
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    (legacy / "cert8.db").write_bytes(b"\x00" * 100)
    assert_problem(read_nss_db(legacy), legacy, "legacy NSS database")
    assert_problem(read_nss_db(tmp_path / "missing"), tmp_path / "missing", "not an NSS database directory")

    def database(name: str, content: bytes) -> Path:
        directory = tmp_path / name
        directory.mkdir()
        (directory / "cert9.db").write_bytes(content)
        return directory

    original = (nss / "cert9.db").read_bytes()
    for directory in (database("garbage", os.urandom(4096)), database("empty", b""),
                      database("truncated", original[:2048])):
        assert_problem(read_nss_db(directory), directory / "cert9.db")
        assert_problem(read_store(directory), directory / "cert9.db")
    other = tmp_path / "other"
    other.mkdir()
    with sqlite3.connect(other / "cert9.db") as connection:
        connection.execute("CREATE TABLE unrelated (x)")
    assert_problem(read_nss_db(other), other / "cert9.db", "no nssPublic table")


def test_nss_database_copied_while_locked_is_read(tmp_path: Path, nss: Path) -> None:
    """A browser holds its database open; we open it read-only and still read it."""
    copy = tmp_path / "copy"
    shutil.copytree(nss, copy)
    holder = sqlite3.connect(copy / "cert9.db")
    holder.execute("BEGIN")
    holder.execute("SELECT count(*) FROM nssPublic").fetchall()
    try:
        assert read_nss_db(copy).info.fingerprints() == read_nss_db(nss).info.fingerprints()
    finally:
        holder.close()


# --- Node ---------------------------------------------------------------------------------------------------------


def test_node_store_and_extra_ca(tmp_path: Path, cas: dict[str, x509.Certificate]) -> None:
    listed = [pem(cas["internal"]).decode(), pem(cas["partner"]).decode()]
    base = node_store(listed, node_path="/usr/bin/node", version="20.1.0")
    assert (base.info.id, base.info.label, base.info.version) == ("node:/usr/bin/node", "Node 20.1.0 built-in roots",
                                                                 "20.1.0")
    assert len(base.info.roots) == 2 and "Node" in base.info.clients

    extra_file = write_pem(tmp_path / "extra.pem", cas["valid"])
    extra = node_extra_store(base, extra_file)
    assert extra.info.id == "node:/usr/bin/node+NODE_EXTRA_CA_CERTS"
    assert "NODE_EXTRA_CA_CERTS" in extra.info.label
    assert extra.info.fingerprints() == base.info.fingerprints() | {fingerprint(cas["valid"])}

    garbage = tmp_path / "garbage.pem"
    garbage.write_bytes(b"-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n")
    for path in (tmp_path / "missing.pem", garbage, tmp_path):
        broken = node_extra_store(base, path)
        assert_problem(broken, path, "NODE_EXTRA_CA_CERTS", "Node warns and ignores the file")
        assert broken.info.id == "node:/usr/bin/node+NODE_EXTRA_CA_CERTS"


def test_node_store_hostile_lists(cas: dict[str, x509.Certificate]) -> None:
    assert_problem(node_store([], node_path="/usr/bin/node"), "/usr/bin/node", "no readable root")
    store = node_store(["garbage", pem(cas["internal"]).decode()], node_path="/usr/bin/node")
    assert len(store.info.roots) == 1 and any("1 of 2" in n for n in store.info.notes)
    failed = node_store([], node_path="/usr/bin/node")
    assert_problem(node_extra_store(failed, "/nonexistent"), "/usr/bin/node")


# --- detection ----------------------------------------------------------------------------------------------------


def test_read_store_detects_the_kind(tmp_path: Path, java: Path, nss: Path, cas: dict[str, x509.Certificate]) -> None:
    bundle = write_pem(tmp_path / "ca.crt", cas["internal"])
    assert read_store(bundle).info.label == f"CA file {bundle}"
    assert read_store(java / "default.jks").info.label == f"keystore {java / 'default.jks'}"
    assert read_store(java / "default.p12").info.notes[0] == "PKCS#12 keystore"
    assert read_store(nss).info.label == f"NSS database {nss}"
    assert read_store(nss / "cert9.db").info.path == str(nss)
    assert_problem(read_store(tmp_path / "missing"), tmp_path / "missing", "cannot read")
    # without a kind the content decides it, so the fix printed for the store is keytool's or certutil's
    for store, kind in ((read_store(bundle), "file"), (read_store(java / "default.jks"), "java"),
                        (read_store(nss), "nss")):
        assert store.info.kind == kind and store.info.id == f"{kind}:{store.info.path}"
