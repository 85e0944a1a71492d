"""Creating and opening a CA: the files and their modes, and one-line errors for every bad input."""

from __future__ import annotations

import re
import stat
import time
import tomllib
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.unit.ca.conftest import NOW, PASSPHRASE, ROOT_PASSPHRASE
from tlsward.ca.authority import CertificateAuthority, _serial_number
from tlsward.model.ca import CaError
from tlsward.storage import Store, open_store


def test_layout_modes_and_encryption(ca: CertificateAuthority) -> None:
    d = ca.directory
    for name in ("root.key", "intermediate.key"):
        assert stat.S_IMODE((d / name).stat().st_mode) == 0o600
        assert b"ENCRYPTED PRIVATE KEY" in (d / name).read_bytes()
    with pytest.raises(TypeError):   # the root key needs its passphrase
        serialization.load_pem_private_key((d / "root.key").read_bytes(), None)
    serialization.load_pem_private_key((d / "root.key").read_bytes(), ROOT_PASSPHRASE)
    with pytest.raises(ValueError):  # ... its own, not the intermediate's
        serialization.load_pem_private_key((d / "root.key").read_bytes(), PASSPHRASE)
    config = tomllib.loads((d / "ca.toml").read_text())
    assert config["name"] == "Unit Test" and config["key_id"] == ca.key_id
    assert "passphrase" not in (d / "ca.toml").read_text().lower().replace("passphrases come", "")
    assert not list(d.glob(".*")), "no temporary files left behind"
    assert ca.ca_bundle_pem() == (d / "root.pem").read_bytes()


def test_root_passphrase_defaults_to_the_ca_passphrase_and_is_required(tmp_path: Path, ca_store: Store) -> None:
    ca = CertificateAuthority.init(tmp_path / "one", ca_store, name="One", passphrase=b"only", now=NOW)
    serialization.load_pem_private_key((ca.directory / "root.key").read_bytes(), b"only")
    with pytest.raises(CaError, match="the root key must be encrypted"):
        CertificateAuthority.init(tmp_path / "two", ca_store, name="Two", passphrase=None, now=NOW)
    assert not (tmp_path / "two" / "ca.toml").exists()


def test_unencrypted_intermediate_is_0600(tmp_path: Path, ca_store: Store, leaf_key: ec.EllipticCurvePrivateKey
                                          ) -> None:
    ca = CertificateAuthority.init(tmp_path / "u", ca_store, name="U", passphrase=None, root_passphrase=b"r", now=NOW)
    key = ca.directory / "intermediate.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and b"ENCRYPTED" not in key.read_bytes()
    reopened = CertificateAuthority.open(ca.directory, ca_store, passphrase=None)
    reopened.issue(names=["u.example.test"], public_key=leaf_key.public_key(), now=NOW)


def test_init_refuses_an_existing_ca_and_bad_settings(ca: CertificateAuthority, ca_store: Store) -> None:
    with pytest.raises(CaError, match="already holds a CA"):
        CertificateAuthority.init(ca.directory, ca_store, name="Again", passphrase=PASSPHRASE, now=NOW)
    with pytest.raises(CaError, match="--key-type 'dsa-1024'"):
        CertificateAuthority.init(ca.directory.parent / "k", ca_store, name="K", passphrase=PASSPHRASE,
                                  key_type="dsa-1024", now=NOW)
    with pytest.raises(CaError, match=re.escape("--permit '10.0.0.1/8'")):
        CertificateAuthority.init(ca.directory.parent / "p", ca_store, name="P", passphrase=PASSPHRASE,
                                  permitted_names=["10.0.0.1/8"], now=NOW)


def test_open_errors_name_the_input(ca: CertificateAuthority, ca_store: Store, tmp_path: Path) -> None:
    d = ca.directory
    with pytest.raises(CaError, match=re.escape(f"{d / 'intermediate.key'}: wrong passphrase")):
        CertificateAuthority.open(d, ca_store, passphrase=b"wrong")
    with pytest.raises(CaError, match="is encrypted: give its passphrase"):
        CertificateAuthority.open(d, ca_store, passphrase=None)
    with pytest.raises(CaError, match="does not exist"):
        CertificateAuthority.open(tmp_path / "nowhere", ca_store, passphrase=PASSPHRASE)
    with pytest.raises(CaError, match=r"no ca\.toml"):
        CertificateAuthority.open(tmp_path, ca_store, passphrase=PASSPHRASE)


@pytest.mark.parametrize(("damage", "message"), [
    (lambda d: (d / "ca.toml").write_text("name = [unterminated"), "not a readable CA configuration"),
    (lambda d: (d / "ca.toml").write_text((d / "ca.toml").read_text() + 'colour = "blue"\n'),
     "unknown setting 'colour'"),
    (lambda d: (d / "intermediate.pem").write_text("garbage"), "intermediate certificate .*: not a PEM certificate"),
    (lambda d: (d / "root.pem").unlink(), "root certificate .*: cannot read it"),
    (lambda d: (d / "intermediate.key").write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(PASSPHRASE))), "does not belong to"),
    (lambda d: (d / "intermediate.key").write_text("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
     "not a PEM private key"),
    (lambda d: (d / "root.pem").write_bytes((d / "intermediate.pem").read_bytes()), "not signed by"),
], ids=["toml", "unknown-key", "intermediate-pem", "root-missing", "other-key", "key-garbage", "wrong-root"])
def test_corrupt_ca_directory(ca: CertificateAuthority, ca_store: Store, damage: object, message: str) -> None:
    assert callable(damage)
    damage(ca.directory)
    with pytest.raises(CaError, match=message):
        CertificateAuthority.open(ca.directory, ca_store, passphrase=PASSPHRASE)


def test_open_with_another_inventory_registers_the_authority(ca: CertificateAuthority, tmp_path: Path,
                                                             leaf_key: ec.EllipticCurvePrivateKey) -> None:
    with open_store(f"sqlite:///{tmp_path / 'second.db'}") as second:
        other = CertificateAuthority.open(ca.directory, second, passphrase=PASSPHRASE)
        issued = other.issue(names=["s.example.test"], public_key=leaf_key.public_key(), now=NOW)
        assert other.record(issued.serial).names == ("s.example.test",)
        assert ca.certificates(now=NOW) == []


def test_settings_survive_reopening(tmp_path: Path, ca_store: Store, leaf_key: ec.EllipticCurvePrivateKey) -> None:
    import datetime as dt

    ca = CertificateAuthority.init(tmp_path / "s", ca_store, name='Quote " Org', passphrase=PASSPHRASE,
                                   permitted_names=["corp.test", "fd00::/8"], lifetimes={"client": 2.5},
                                   crl_url="http://127.0.0.1:9/ca/crl", crl_validity=dt.timedelta(hours=6), now=NOW)
    again = CertificateAuthority.open(ca.directory, ca_store, passphrase=PASSPHRASE)
    assert again.config == ca.config
    assert again.config.permitted == ("corp.test", "fd00::/8") and again.config.name == 'Quote " Org'
    issued = again.issue(names=["c.corp.test", "fd00::1"], public_key=leaf_key.public_key(), profile="client",
                         now=NOW)
    assert issued.certificate.not_valid_after_utc - issued.certificate.not_valid_before_utc == dt.timedelta(days=2.5)
    assert again.crl(now=NOW).next_update_utc == NOW + dt.timedelta(hours=6)


def test_serials_are_random_below_and_grow_with_time() -> None:
    """The leading bits are the time (the inventory's key takes new records at its end), the low 100 bits come
    from the CSPRNG: more than the 64 random bits the CA/Browser Forum asks for."""
    first = _serial_number()
    time.sleep(0.002)
    second = _serial_number()
    assert 0 < first < second < 2**159
    assert first >> 100 < second >> 100
    assert len({_serial_number() & (2**100 - 1) for _ in range(100)}) == 100
