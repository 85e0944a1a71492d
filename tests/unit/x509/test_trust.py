"""Trust stores: named, cached, and every unusable CA file is one line naming the path."""

from __future__ import annotations

import os
from pathlib import Path

import certifi
import pytest

from tests.unit.x509.conftest import NOW, der
from tlsward.lab.pki import LabPKI, pem_bundle
from tlsward.model.errors import UsageError
from tlsward.x509 import trust
from tlsward.x509.trust import TrustStore, ca_file_store, mozilla_store, system_store
from tlsward.x509.validate import analyse_chain


def test_mozilla_store_is_named_and_cached() -> None:
    store = mozilla_store()
    assert store.name == f"mozilla (certifi {certifi.__version__})"
    assert len(store.roots) > 50
    assert store is mozilla_store()
    assert store.verification_store is not None


def test_system_store_uses_the_first_bundle_that_exists(tmp_path: Path, pki: LabPKI,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    second = tmp_path / "second.pem"
    second.write_bytes(pem_bundle([pki.cas["root"].cert]))
    monkeypatch.setattr(trust, "SYSTEM_BUNDLES", (tmp_path / "missing.pem", second))
    store = system_store()
    assert store.name == f"system ({second})"
    assert store.roots == (pki.cas["root"].cert,)


def test_no_system_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(trust, "SYSTEM_BUNDLES", (tmp_path / "a.pem", tmp_path / "b.pem"))
    with pytest.raises(UsageError, match=r"^no system trust store found \(looked for .*a\.pem, .*b\.pem\)$"):
        system_store()


def test_ca_file_store(tmp_path: Path, pki: LabPKI) -> None:
    path = tmp_path / "ca.pem"
    path.write_bytes(pem_bundle([pki.cas["root"].cert, pki.cas["untrusted-root"].cert]))
    store = ca_file_store(path)
    assert store.name == f"ca-file {path}"
    assert store.roots == (pki.cas["root"].cert, pki.cas["untrusted-root"].cert)
    assert ca_file_store(str(path)).roots == store.roots
    assert ca_file_store(path) is store                     # cached while the file is unchanged


def test_ca_file_store_reloads_a_changed_file(tmp_path: Path, pki: LabPKI) -> None:
    path = tmp_path / "ca.pem"
    path.write_bytes(pem_bundle([pki.cas["root"].cert]))
    first = ca_file_store(path)
    path.write_bytes(pem_bundle([pki.cas["root"].cert, pki.cas["untrusted-root"].cert]))
    os.utime(path, ns=(1, 1))
    assert len(ca_file_store(path).roots) == 2
    assert len(first.roots) == 1


def test_ca_file_in_der(tmp_path: Path, pki: LabPKI) -> None:
    path = tmp_path / "root.der"
    path.write_bytes(der([pki.cas["root"].cert])[0])
    assert ca_file_store(path).roots == (pki.cas["root"].cert,)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.pem", None, "cannot read the CA file (No such file or directory)"),
        ("dir", b"", "not a file"),
        ("empty.pem", b"", "empty, no certificates in it"),
        ("text.pem", b"not a certificate", "neither PEM nor a DER certificate"),
        ("key.pem", b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
         "PEM data without any CERTIFICATE block"),
    ],
)
def test_unusable_ca_file_is_one_line(tmp_path: Path, name: str, content: bytes | None, message: str) -> None:
    path = tmp_path / name
    if name == "dir":
        path.mkdir()
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(UsageError) as info:
        ca_file_store(path)
    text = str(info.value)
    assert text.startswith(f"{path}: {message}")
    assert "\n" not in text


def test_store_lookup(pki: LabPKI) -> None:
    store = TrustStore("lab", (pki.cas["root"].cert,))
    assert pki.cas["root"].cert in store
    assert pki.cas["intermediate"].cert not in store
    assert store.with_subject(pki.cas["root"].cert.subject) == (pki.cas["root"].cert,)
    assert store.with_subject(pki.cas["intermediate"].cert.subject) == ()


def test_empty_store_trusts_nothing(pki: LabPKI) -> None:
    empty = TrustStore("empty", ())
    assert empty.verification_store is None
    (verdict,) = analyse_chain(der(pki.chain_for("ok")), "ok.example.test", [empty], NOW).verdicts
    assert not verdict.trusted
    assert verdict.reason == "root CN=tlsward lab Root CA,O=tlsward lab is not in this store"
