"""A root key that never leaves a PKCS#11 token (SoftHSM 2, Debian's softhsm2): `tlsward ca init` generates it in
the token, the root and the intermediate are signed by it, OpenSSL verifies the chain, and the token holds the key
while the CA directory holds none. Run through the CLI in subprocesses: SoftHSM reads SOFTHSM2_CONF once per
process."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from tests.integration.ca_support import run

pytestmark = pytest.mark.integration

MODULE = "/usr/lib/softhsm/libsofthsm2.so"
TOKEN = "tlsward-test"
PIN = "123456"


@pytest.fixture
def softhsm(tmp_path: Path) -> dict[str, str]:
    """A token in a temporary directory; the environment that points SoftHSM at it."""
    assert Path(MODULE).exists(), "softhsm2 is required (Debian package softhsm2; `make test` installs it)"
    tokens = tmp_path / "tokens"
    tokens.mkdir()
    conf = tmp_path / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n")
    env = {**os.environ, "SOFTHSM2_CONF": str(conf)}
    run("softhsm2-util", "--init-token", "--free", "--label", TOKEN, "--pin", PIN, "--so-pin", "654321", env=env)
    return env


def _cli(*args: str, env: dict[str, str], check: bool = True) -> tuple[int, str, str]:
    done = run(sys.executable, "-m", "tlsward.cli.ca", *args, env=env, check=check, timeout=60)
    return done.returncode, done.stdout, done.stderr


@pytest.mark.parametrize("key_type", ["ecdsa-p256", "rsa-3072"])
def test_root_in_softhsm(tmp_path: Path, softhsm: dict[str, str], key_type: str) -> None:
    ca_dir = tmp_path / "ca"
    env = {**softhsm, "TLSWARD_DB": f"sqlite:///{tmp_path / 'inv.db'}", "TLSWARD_CA_DIR": str(ca_dir),
           "TLSWARD_CA_PASSPHRASE": "intermediate secret"}
    env.pop("TLSWARD_CA_PKCS11_PIN", None)
    pin_file = tmp_path / "pin"
    pin_file.write_text(PIN + "\n")
    bad_pin = tmp_path / "bad-pin"
    bad_pin.write_text("000000\n")
    token = ("--pkcs11-module", MODULE, "--pkcs11-token", TOKEN)

    rc, _, err = _cli("init", "--name", "HSM Org", *token, "--pkcs11-pin-file", str(bad_pin), env=env, check=False)
    assert rc == 2 and "cannot log in" in err and len(err.strip().splitlines()) == 1, err
    rc, _, err = _cli("init", "--name", "HSM Org", "--pkcs11-module", MODULE, "--pkcs11-token", "no-such-token",
                      "--pkcs11-pin-file", str(pin_file), env=env, check=False)
    assert rc == 2 and "'no-such-token'" in err and "not found" in err, err

    _, out, _ = _cli("init", "--name", "HSM Org", "--key-type", key_type, *token, "--pkcs11-pin-file", str(pin_file),
                     "--json", env=env)
    assert json.loads(out)["root_key"] == "pkcs11"
    assert not (ca_dir / "root.key").exists(), "the root key must stay in the token"
    config = (ca_dir / "ca.toml").read_text()
    assert 'root_storage = "pkcs11"' in config and PIN not in config
    listed = run("pkcs11-tool", "--module", MODULE, "--token-label", TOKEN, "--login", "--pin", PIN,
                 "--list-objects", env=softhsm).stdout
    assert "label:      tlsward-root" in listed and "Private Key Object" in listed, listed

    root, intermediate = ca_dir / "root.pem", ca_dir / "intermediate.pem"
    assert run("openssl", "verify", "-CAfile", str(root), str(intermediate)).stdout.strip() == f"{intermediate}: OK"
    # the root really is the token's key: its SPKI is the token's public key
    token_pub = tmp_path / "token.pub.der"
    run("pkcs11-tool", "--module", MODULE, "--token-label", TOKEN, "--read-object", "--type", "pubkey", "--label",
        "tlsward-root", "--output-file", str(token_pub), env=softhsm)
    cert_pub = run("openssl", "x509", "-in", str(root), "-noout", "-pubkey").stdout
    token_pem = run("openssl", "pkey", "-pubin", "-inform", "DER", "-in", str(token_pub)).stdout
    assert cert_pub == token_pem

    _, out, _ = _cli("issue", "--name", "hsm.example.test", "--out-dir", str(tmp_path / "out"), "--json", env=env)
    files = json.loads(out)["files"]
    run("openssl", "verify", "-CAfile", str(root), "-untrusted", files["chain"], files["cert"])

    # the root CRL is re-signed in the token (the PIN from the environment this time)
    _cli("crl", "--root", "--bundle", "--out", str(tmp_path / "bundle.pem"),
         env={**env, "TLSWARD_CA_PKCS11_PIN": PIN})
    run("openssl", "crl", "-inform", "DER", "-in", str(ca_dir / "root.crl"), "-CAfile", str(root), "-verify",
        "-noout")
    number = run("openssl", "crl", "-inform", "DER", "-in", str(ca_dir / "root.crl"), "-noout", "-crlnumber").stdout
    assert number.strip() == "crlNumber=0x02"
    # a second CA in the same token may not reuse the label (never overwrite a root key)
    rc, _, err = _cli("init", "--name", "HSM Two", *token, "--pkcs11-pin-file", str(pin_file), "--ca-dir",
                      str(tmp_path / "two"), env=env, check=False)
    assert rc == 2 and "already holds a key labelled 'tlsward-root'" in err, err
