"""Walking real directory trees (no mocked file system): what is found, which key pairs with which certificate,
and one exact problem per broken, mismatched, exposed or unreadable file, while the walk goes on."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from tests.unit.x509.test_files import Material, key_pem, make_material, pem, spki_of
from tlsward.discovery.files import obvious_partners, pair_keys, scan_paths
from tlsward.model.discovery import FileProblem, FileScan

DER = serialization.Encoding.DER


@pytest.fixture(scope="module")
def m() -> Material:
    return make_material()


def write(path: Path, data: bytes, mode: int = 0o644) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    path.chmod(mode)
    return path


def rel(base: Path, path: str) -> str:
    return str(Path(path).relative_to(base))


def problems(scan: FileScan, base: Path) -> list[tuple[str, str, int | None]]:
    return [(rel(base, p.path), p.finding.id, p.line) for p in scan.problems]


def evidence(scan: FileScan, base: Path, name: str, finding_id: str) -> str:
    (found,) = [p for p in scan.problems if p.path == str(base / name) and p.finding.id == finding_id]
    return found.finding.evidence


# --- what is found ----------------------------------------------------------------------------------------------


def test_clean_tree_finds_everything_and_reports_nothing(tmp_path: Path, m: Material) -> None:
    write(tmp_path / "site" / "site.crt", pem(m.leaf, m.ca))
    write(tmp_path / "site" / "site.key", key_pem(m.leaf_key), 0o600)
    write(tmp_path / "ca" / "ca.der", m.ca.public_bytes(DER))
    write(tmp_path / "ca" / "ca-bundle", pem(m.ca))                       # no extension, starts like PEM
    write(tmp_path / "ca" / "README", b"these are our certificates\n")    # no extension, not PEM: skipped
    write(tmp_path / "ca" / "tool", b"\x7fELF\x02\x01\x01" + bytes(100))  # a binary: skipped
    write(tmp_path / "notes.txt", pem(m.other))                           # not a certificate extension
    write(tmp_path / "dns" / "Kexample.+013+12345.key", b"example. 3600 IN DNSKEY 257 3 13 abc=\n")  # DNSSEC
    write(tmp_path / "dns" / "slides.key", b"PK\x03\x04" + bytes(range(256)))                    # Keynote
    write(tmp_path / "pg" / "root.crt", b"This is a dummy root certificate file for PostgreSQL.\n")  # Debian's

    scan = scan_paths([tmp_path])
    assert scan.problems == ()
    assert scan.files_seen == 7   # site.crt, site.key, ca.der, ca-bundle, the two .key files, root.crt
    assert [(rel(tmp_path, c.path), c.index, c.format) for c in scan.certificates] == [
        ("ca/ca-bundle", 0, "pem"), ("ca/ca.der", 0, "der"), ("site/site.crt", 0, "pem"), ("site/site.crt", 1, "pem")]
    (key,) = scan.keys
    assert (rel(tmp_path, key.path), key.mode, key.spki_sha256) == ("site/site.key", 0o600, spki_of(m.leaf))
    (pairing,) = pair_keys(scan)
    assert [(rel(tmp_path, c.path), c.index) for c in pairing.certificates] == [("site/site.crt", 0)]


def test_single_files_and_a_missing_path(tmp_path: Path, m: Material) -> None:
    named = write(tmp_path / "served-cert.txt", pem(m.leaf))    # named on purpose: read whatever its extension
    text = write(tmp_path / "notes.key", b"not a key at all\n")   # named on purpose: reported, unlike in a walk
    missing = tmp_path / "nowhere"
    scan = scan_paths([named, str(missing), text])
    assert [c.path for c in scan.certificates] == [str(named)]
    assert problems(scan, tmp_path) == [("notes.key", "file.unparseable", None), ("nowhere", "file.unreadable", None)]
    assert evidence(scan, tmp_path, "nowhere", "file.unreadable") == f"{missing}: does not exist"


def test_keystores_with_the_password_options(tmp_path: Path, m: Material) -> None:
    import jks  # type: ignore[import-untyped]
    store = jks.KeyStore.new("jks", [jks.PrivateKeyEntry.new(
        "site", [m.leaf.public_bytes(DER)], m.leaf_key.private_bytes(DER, serialization.PrivateFormat.PKCS8,
                                                                       serialization.NoEncryption()))])
    write(tmp_path / "app.jks", store.saves("jks-pass"), 0o600)
    write(tmp_path / "site.p12", pkcs12.serialize_key_and_certificates(
        b"site", m.other_key, m.other, None, serialization.BestAvailableEncryption(b"p12-pass")), 0o600)

    opened = scan_paths([tmp_path], password="jks-pass", passwords=("p12-pass",))
    assert opened.problems == ()
    assert [(rel(tmp_path, k.path), k.format, k.spki_sha256) for k in opened.keys] == [
        ("app.jks", "jks", spki_of(m.leaf)), ("site.p12", "pkcs12", spki_of(m.other))]
    assert all(len(p.certificates) == 1 for p in pair_keys(opened))

    locked = scan_paths([tmp_path], password="wrong")
    assert problems(locked, tmp_path) == [("app.jks", "file.wrong_password", None),
                                          ("site.p12", "file.wrong_password", None)]
    assert [rel(tmp_path, c.path) for c in locked.certificates] == ["app.jks"]   # JKS certificates are in clear


# --- pairing --------------------------------------------------------------------------------------------------


def test_key_next_to_the_wrong_certificate(tmp_path: Path, m: Material) -> None:
    write(tmp_path / "site.crt", pem(m.leaf))
    write(tmp_path / "site.key", key_pem(m.other_key), 0o600)
    scan = scan_paths([tmp_path])
    assert problems(scan, tmp_path) == [("site.key", "file.key_mismatch", None)]
    text = evidence(scan, tmp_path, "site.key", "file.key_mismatch")
    assert text.startswith(f"{tmp_path}/site.key: the EC 256 private key does not match the certificate "
                           f"(CN=site.example.test, expires {m.leaf.not_valid_after_utc:%Y-%m-%d}) in "
                           f"{tmp_path}/site.crt: their public keys differ (key {spki_of(m.other)[:16]}…, "
                           f"certificate {spki_of(m.leaf)[:16]}…)")
    remediation = scan.problems[0].finding.remediation
    assert remediation.confirm == (f"diff <(openssl pkey -in {tmp_path}/site.key -pubout) "
                                   f"<(openssl x509 -in {tmp_path}/site.crt -noout -pubkey)")
    assert f"{tmp_path}/site.crt" in remediation.fix
    (pairing,) = pair_keys(scan)
    assert pairing.certificates == ()   # an orphan key: no certificate anywhere carries its public key


def test_key_and_certificate_in_one_file(tmp_path: Path, m: Material) -> None:
    write(tmp_path / "good.pem", key_pem(m.leaf_key) + pem(m.leaf, m.ca), 0o600)     # HAProxy's crt file
    write(tmp_path / "bad.pem", key_pem(m.other_key) + pem(m.leaf, m.ca), 0o600)
    scan = scan_paths([tmp_path])
    assert problems(scan, tmp_path) == [("bad.pem", "file.key_mismatch", None)]
    assert "does not match any of the 2 certificates (first: CN=site.example.test) in the same file" in evidence(
        scan, tmp_path, "bad.pem", "file.key_mismatch")


def certbot_lineage(root: Path, name: str, key: bytes, cert: bytes, chain: bytes) -> None:
    """certbot's layout: numbered files in archive/NAME, relative symlinks to them in live/NAME."""
    archive, live = root / "archive" / name, root / "live" / name
    write(archive / "cert1.pem", cert)
    write(archive / "chain1.pem", chain)
    write(archive / "fullchain1.pem", cert + chain)
    write(archive / "privkey1.pem", key, 0o600)
    live.mkdir(parents=True)
    for link in ("cert", "chain", "fullchain", "privkey"):
        (live / f"{link}.pem").symlink_to(f"../../archive/{name}/{link}1.pem")


def test_certbot_live_layout(tmp_path: Path, m: Material) -> None:
    certbot_lineage(tmp_path, "site.example.test", key_pem(m.leaf_key), pem(m.leaf), pem(m.ca))
    certbot_lineage(tmp_path, "broken.example.test", key_pem(m.other_key), pem(m.leaf), pem(m.ca))
    scan = scan_paths([tmp_path])
    assert problems(scan, tmp_path) == [
        ("archive/broken.example.test/privkey1.pem", "file.key_mismatch", None),   # against cert1.pem
        ("archive/broken.example.test/privkey1.pem", "file.key_mismatch", None),   # against fullchain1.pem
        ("live/broken.example.test/privkey.pem", "file.key_mismatch", None),
        ("live/broken.example.test/privkey.pem", "file.key_mismatch", None),
    ]
    partners = sorted(p.finding.evidence.split(" in ")[-1].split(":")[0] for p in scan.problems)
    assert [rel(tmp_path, p) for p in partners] == [
        "archive/broken.example.test/cert1.pem", "archive/broken.example.test/fullchain1.pem",
        "live/broken.example.test/cert.pem", "live/broken.example.test/fullchain.pem"]
    assert len(scan.certificates) == 16 and len(scan.keys) == 4    # each name reported, each inode parsed once
    good = next(p for p in pair_keys(scan) if p.key.path.endswith("live/site.example.test/privkey.pem"))
    carrying_leaf = [f"{top}/{lineage}/{name}" for lineage in ("broken.example.test", "site.example.test")
                     for top, names in (("archive", ("cert1.pem", "fullchain1.pem")), ("live", ("cert.pem",
                                                                                                "fullchain.pem")))
                     for name in names]
    assert sorted((rel(tmp_path, c.path), c.index) for c in good.certificates) == [(p, 0) for p in
                                                                                    sorted(carrying_leaf)]
    assert good.key.mode == 0o600


@pytest.mark.parametrize(("key", "expected"), [
    ("/s/site.key", ["/s/site.crt", "/s/site.pem", "/s/site.cer", "/s/site.der"]),
    ("/le/live/x/privkey.pem", ["/le/live/x/cert.pem", "/le/live/x/fullchain.pem"]),
    ("/le/archive/x/privkey7.pem", ["/le/archive/x/cert7.pem", "/le/archive/x/fullchain7.pem"]),
    ("/s/site-key.pem", ["/s/site-cert.pem", "/s/site.crt", "/s/site.pem"]),
    ("/k8s/tls.key", ["/k8s/tls.crt"]),
])
def test_obvious_partners(key: str, expected: list[str]) -> None:
    partners = obvious_partners(key)
    assert [p for p in partners if p in expected] == expected   # in this order, among possibly more names
    assert key not in partners


# --- permissions ------------------------------------------------------------------------------------------------


def test_exposed_keys(tmp_path: Path, m: Material) -> None:
    write(tmp_path / "world.key", key_pem(m.leaf_key), 0o644)
    write(tmp_path / "private.key", key_pem(m.leaf_key), 0o600)
    write(tmp_path / "group.key", key_pem(m.leaf_key), 0o640)
    write(tmp_path / "locked.key", key_pem(m.leaf_key, password=b"pw"), 0o604)
    write(tmp_path / "bundle.p12", pkcs12.serialize_key_and_certificates(
        b"s", m.leaf_key, m.leaf, None, serialization.NoEncryption()), 0o644)
    write(tmp_path / "public.crt", pem(m.leaf), 0o644)       # certificates may be world-readable
    scan = scan_paths([tmp_path])
    assert problems(scan, tmp_path) == [
        ("bundle.p12", "file.key_exposed", None),
        ("group.key", "file.key_exposed", None),
        ("locked.key", "file.key_exposed", None),
        ("locked.key", "file.wrong_password", 1),
        ("world.key", "file.key_exposed", None),
    ]
    group = Path(tmp_path / "group.key").group()
    assert evidence(scan, tmp_path, "group.key", "file.key_exposed") == (
        f"{tmp_path}/group.key: holds a private key and its mode is 0640: group {group} can read it")
    assert evidence(scan, tmp_path, "world.key", "file.key_exposed") == (
        f"{tmp_path}/world.key: holds a private key and its mode is 0644: group {group} and every other user can "
        "read it")
    assert "(encrypted, but" in evidence(scan, tmp_path, "locked.key", "file.key_exposed")
    exposed = next(p for p in scan.problems if p.path.endswith("world.key"))
    assert exposed.finding.remediation.confirm == f"stat -c '%a %U:%G' {tmp_path}/world.key"
    assert exposed.finding.remediation.fix.startswith(f"`chmod 600 {tmp_path}/world.key`")
    assert {rel(tmp_path, k.path): k.mode for k in scan.keys} == {
        "world.key": 0o644, "private.key": 0o600, "group.key": 0o640, "bundle.p12": 0o644}


NOBODY = 65534


def as_nobody(work: Callable[[], FileScan]) -> dict[str, list[list[str]]]:
    """Run ``work`` in a child process that dropped root to nobody, so "permission denied" is real even when the
    tests run as root (root reads everything). The child sends back what it found as JSON."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:   # pragma: no cover - the child's coverage is not collected
        status = 1
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            scan = work()
            payload = {"certificates": [[c.path] for c in scan.certificates],
                       "problems": [[p.path, p.finding.id, p.finding.evidence] for p in scan.problems]}
            os.write(write_end, json.dumps(payload).encode())
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    chunks = []
    while chunk := os.read(read_end, 65536):
        chunks.append(chunk)
    os.close(read_end)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    result: dict[str, list[list[str]]] = json.loads(b"".join(chunks))
    return result


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory nobody can reach (pytest's tmp_path sits under a root-only 0700 directory)."""
    path = Path(tempfile.mkdtemp(prefix="tlsward-discovery-", dir="/tmp"))
    path.chmod(0o755)
    yield path
    for directory, _, _ in os.walk(path):
        Path(directory).chmod(0o755)
    shutil.rmtree(path)


def test_permission_denied(shared_dir: Path, m: Material) -> None:
    write(shared_dir / "public.pem", pem(m.leaf), 0o644)
    write(shared_dir / "secret.key", key_pem(m.leaf_key), 0o600)
    write(shared_dir / "closed" / "inside.pem", pem(m.ca), 0o644)
    (shared_dir / "closed").chmod(0o700)
    if os.geteuid() == 0:
        found = as_nobody(lambda: scan_paths([shared_dir]))
        uid = NOBODY
    else:
        (shared_dir / "secret.key").chmod(0o000)
        (shared_dir / "closed").chmod(0o000)
        scan = scan_paths([shared_dir])
        found = {"certificates": [[c.path] for c in scan.certificates],
                 "problems": [[p.path, p.finding.id, p.finding.evidence] for p in scan.problems]}
        uid = os.geteuid()
    assert found["certificates"] == [[str(shared_dir / "public.pem")]]
    assert [(rel(shared_dir, p), fid) for p, fid, _ in found["problems"]] == [
        ("closed", "file.unreadable"), ("secret.key", "file.unreadable")]
    closed, secret = (text for _, _, text in found["problems"])
    assert closed.startswith(f"{shared_dir}/closed: cannot list the directory: permission denied to uid {uid} (")
    assert secret.startswith(f"{shared_dir}/secret.key: cannot read the file: permission denied to uid {uid} (")


# --- broken files -----------------------------------------------------------------------------------------------


def test_every_broken_file_is_one_problem_and_the_walk_goes_on(tmp_path: Path, m: Material) -> None:
    leaf = m.leaf.public_bytes(DER)
    write(tmp_path / "a-garbage.pem", bytes(range(200, 256)) * 8)
    write(tmp_path / "b-truncated.der", leaf[:150])
    write(tmp_path / "c-empty.crt", b"")
    write(tmp_path / "d-broken.pem", pem(m.ca) + pem(m.leaf)[:300])
    write(tmp_path / "e-huge.pem", pem(m.ca) + b"#" * 20_000)
    write(tmp_path / "f-good.pem", pem(m.other))
    scan = scan_paths([tmp_path], max_file_bytes=10_000)
    ca_lines = pem(m.ca).count(b"\n")
    assert problems(scan, tmp_path) == [
        ("a-garbage.pem", "file.unparseable", None),
        ("b-truncated.der", "file.unparseable", None),
        ("c-empty.crt", "file.unparseable", None),
        ("d-broken.pem", "file.unparseable", ca_lines + 1),
        ("e-huge.pem", "file.unparseable", None),
    ]
    assert evidence(scan, tmp_path, "e-huge.pem", "file.unparseable") == (
        f"{tmp_path}/e-huge.pem: not read: {len(pem(m.ca)) + 20_000} bytes is over the 10000-byte limit for one "
        "certificate or key file")
    assert f"announces {len(leaf)} bytes but the file has 150" in evidence(
        scan, tmp_path, "b-truncated.der", "file.unparseable")
    assert [(rel(tmp_path, c.path), c.facts.subject) for c in scan.certificates] == [
        ("d-broken.pem", "CN=Files Test CA"), ("f-good.pem", "CN=other.example.test")]
    assert scan.files_seen == 6


def test_symlinks_dangling_and_looping(tmp_path: Path, m: Material) -> None:
    write(tmp_path / "real" / "site.pem", pem(m.leaf))
    (tmp_path / "gone.pem").symlink_to("missing/target.pem")
    (tmp_path / "loop-a.crt").symlink_to("loop-b.crt")
    (tmp_path / "loop-b.crt").symlink_to("loop-a.crt")
    (tmp_path / "real" / "back").symlink_to("..")                    # a directory loop
    (tmp_path / "alias").symlink_to("real")                          # the same directory twice
    os.mkfifo(tmp_path / "fifo.pem")                                  # never opened for a blocking read

    expected_problems = [("gone.pem", "file.unreadable", None), ("loop-a.crt", "file.unreadable", None),
                         ("loop-b.crt", "file.unreadable", None)]
    for follow in (False, True):
        started = time.monotonic()
        scan = scan_paths([tmp_path], follow_symlinks=follow)
        assert time.monotonic() - started < 5
        assert problems(scan, tmp_path) == expected_problems
        assert [rel(tmp_path, c.path) for c in scan.certificates] == ["real/site.pem"]   # once, by its real path
    assert evidence(scan, tmp_path, "gone.pem", "file.unreadable") == (
        f"{tmp_path}/gone.pem: dangling symlink: it points to missing/target.pem, which does not exist")
    assert evidence(scan, tmp_path, "loop-a.crt", "file.unreadable") == (
        f"{tmp_path}/loop-a.crt: symlink loop: resolving it leads back to itself (it points to loop-b.crt)")
    assert scan.problems[0].finding.remediation.confirm == f"namei -l {tmp_path}/gone.pem"

    write(tmp_path / "outside" / "other.pem", pem(m.other))
    write(tmp_path / "tree" / "mine.pem", pem(m.leaf))
    (tmp_path / "tree" / "ext").symlink_to("../outside")             # a directory outside the walked tree
    (tmp_path / "tree" / "self").symlink_to(".")
    followed = scan_paths([tmp_path / "tree"], follow_symlinks=True)
    assert [rel(tmp_path, c.path) for c in followed.certificates] == ["tree/ext/other.pem", "tree/mine.pem"]
    assert [rel(tmp_path, c.path) for c in scan_paths([tmp_path / "tree"]).certificates] == ["tree/mine.pem"]


def test_deterministic_and_streamed(tmp_path: Path, m: Material) -> None:
    for n in range(30):
        write(tmp_path / f"d{n % 4}" / f"s{n}.pem", pem(m.leaf if n % 3 else m.ca))
        write(tmp_path / f"d{n % 4}" / f"s{n}.key", key_pem(m.other_key if n % 5 == 0 else m.leaf_key), 0o600)
    write(tmp_path / "d1" / "junk.crt", b"junk")
    seen: list[FileProblem] = []
    first = scan_paths([tmp_path], on_problem=seen.append)
    second = scan_paths([str(tmp_path)])
    assert first == second
    assert sorted(seen, key=str) == sorted(first.problems, key=str)
    assert [p.path for p in first.problems] == sorted(p.path for p in first.problems)
    # s{n}.key holds the other key when n % 5 == 0, s{n}.pem the CA certificate when n % 3 == 0: either mismatches
    mismatched = sorted(rel(tmp_path, p.path) for p in first.problems if p.finding.id == "file.key_mismatch")
    assert mismatched == sorted(f"d{n % 4}/s{n}.key" for n in range(30) if n % 5 == 0 or n % 3 == 0)
    assert first.files_seen == 61
