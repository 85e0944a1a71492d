"""The registries: complete, consistent, and right about the suites people ask about."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from tlsward.model.registry import (
    CIPHER_SUITES,
    NAMED_GROUPS,
    AlertDescription,
    TlsVersion,
    alert_name,
    cipher_by_code,
    cipher_by_name,
    cipher_name,
    group_by_code,
    group_by_name,
    version_name,
)

ROOT = Path(__file__).resolve().parents[3]


def test_every_assigned_suite_is_there_once() -> None:
    assert len(CIPHER_SUITES) > 300
    codes = [suite.code for suite in CIPHER_SUITES]
    names = [suite.name for suite in CIPHER_SUITES]
    assert len(set(codes)) == len(codes)
    assert len(set(names)) == len(names)
    assert codes == sorted(codes)
    assert all(name.startswith("TLS_") for name in names)
    openssl = [suite.openssl_name for suite in CIPHER_SUITES if suite.openssl_name is not None]
    assert len(set(openssl)) == len(openssl)


@pytest.mark.parametrize(
    ("code", "name"),
    [
        (0x0000, "TLS_NULL_WITH_NULL_NULL"),
        (0x0003, "TLS_RSA_EXPORT_WITH_RC4_40_MD5"),
        (0x0041, "TLS_RSA_WITH_CAMELLIA_128_CBC_SHA"),
        (0x00FF, "TLS_EMPTY_RENEGOTIATION_INFO_SCSV"),
        (0x1303, "TLS_CHACHA20_POLY1305_SHA256"),
        (0x1305, "TLS_AES_128_CCM_8_SHA256"),
        (0x5600, "TLS_FALLBACK_SCSV"),
        (0xC050, "TLS_RSA_WITH_ARIA_128_GCM_SHA256"),
        (0xC0AC, "TLS_ECDHE_ECDSA_WITH_AES_128_CCM"),
        (0xCCA8, "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"),
        (0xD001, "TLS_ECDHE_PSK_WITH_AES_128_GCM_SHA256"),
    ],
)
def test_known_code_points(code: int, name: str) -> None:
    suite = cipher_by_code(code)
    assert suite is not None
    assert suite.name == name
    assert cipher_by_name(name) is suite


def test_3des_rsa_is_weak_without_forward_secrecy() -> None:
    suite = cipher_by_code(0x000A)
    assert suite is not None
    assert suite.name == "TLS_RSA_WITH_3DES_EDE_CBC_SHA"
    assert (suite.key_exchange, suite.authentication) == ("RSA", "RSA")
    assert (suite.encryption, suite.mac) == ("3DES_EDE_CBC", "SHA1")
    assert suite.weak and not suite.forward_secrecy and not suite.aead
    assert suite.strength_bits == 112
    assert suite.openssl_name == "DES-CBC3-SHA"


def test_tls13_aes128_gcm() -> None:
    suite = cipher_by_code(0x1301)
    assert suite is not None
    assert suite.name == "TLS_AES_128_GCM_SHA256"
    assert suite.tls13 and suite.aead and suite.forward_secrecy and not suite.weak
    assert (suite.key_exchange, suite.authentication, suite.mac) == ("any", "any", "AEAD")
    assert suite.recommended


def test_ecdhe_rsa_aes128_gcm() -> None:
    suite = cipher_by_code(0xC02F)
    assert suite is not None
    assert suite.name == "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
    assert suite.forward_secrecy and suite.aead and not suite.weak and not suite.tls13
    assert (suite.key_exchange, suite.authentication, suite.encryption) == ("ECDHE", "RSA", "AES_128_GCM")
    assert suite.strength_bits == 128


def test_rc4_and_friends_are_weak() -> None:
    rc4 = cipher_by_code(0x0005)
    assert rc4 is not None and rc4.name == "TLS_RSA_WITH_RC4_128_SHA" and rc4.weak
    assert rc4.encryption == "RC4_128"
    export = cipher_by_code(0x0003)
    assert export is not None and export.export and export.weak and export.strength_bits == 40
    anon = cipher_by_name("TLS_DH_anon_WITH_AES_128_GCM_SHA256")
    assert anon is not None and anon.weak and anon.authentication == "anon" and anon.key_exchange == "DHE"
    null = cipher_by_code(0x0002)
    assert null is not None and null.weak and null.encryption == "NULL" and null.strength_bits == 0
    md5 = cipher_by_code(0x0004)
    assert md5 is not None and md5.weak and md5.mac == "MD5"
    idea = cipher_by_code(0x0007)
    assert idea is not None and idea.weak
    des = cipher_by_code(0x0009)
    assert des is not None and des.weak and des.strength_bits == 56


def test_weakness_is_never_claimed_for_modern_suites() -> None:
    for code in (0x1301, 0x1302, 0x1303, 0xC02B, 0xC02C, 0xC02F, 0xC030, 0xCCA8, 0xCCA9, 0x009E, 0xC009):
        suite = cipher_by_code(code)
        assert suite is not None and not suite.weak, suite


def test_scsvs_are_signals_not_ciphers() -> None:
    for code in (0x00FF, 0x5600):
        suite = cipher_by_code(code)
        assert suite is not None
        assert suite.signaling and not suite.weak and not suite.forward_secrecy


def test_flags_agree_with_the_name() -> None:
    for suite in CIPHER_SUITES:
        assert suite.export == ("_EXPORT" in suite.name), suite.name
        if suite.aead:
            assert suite.mac == "AEAD", suite.name
        if "_anon_" in suite.name:
            assert suite.weak and suite.authentication == "anon", suite.name
        if suite.encryption == "NULL" and not suite.signaling:
            assert suite.weak and suite.strength_bits == 0, suite.name
        if suite.tls13:
            assert suite.key_exchange == "any", suite.name


@pytest.mark.parametrize(
    ("openssl_name", "code"),
    [
        ("ECDHE-RSA-AES128-GCM-SHA256", 0xC02F),
        ("ECDHE-ECDSA-AES128-GCM-SHA256", 0xC02B),
        ("ecdhe-ecdsa-chacha20-poly1305", 0xCCA9),
        ("AES128-SHA", 0x002F),
        ("DES-CBC3-SHA", 0x000A),
        ("RC4-SHA", 0x0005),
        ("EXP-RC4-MD5", 0x0003),
        ("TLS_AES_256_GCM_SHA384", 0x1302),
        ("DHE-RSA-AES256-GCM-SHA384", 0x009F),
    ],
)
def test_openssl_names(openssl_name: str, code: int) -> None:
    suite = cipher_by_name(openssl_name)
    assert suite is not None and suite.code == code


def test_name_lookups_are_forgiving_but_not_inventive() -> None:
    assert cipher_by_name("  tls_ecdhe_rsa_with_aes_128_gcm_sha256 ") is cipher_by_code(0xC02F)
    assert cipher_by_name("SSL_RSA_WITH_RC4_128_MD5") is cipher_by_code(0x0004)
    assert cipher_by_name("NOT-A-CIPHER") is None
    assert cipher_by_code(0x0A0A) is None  # GREASE
    assert cipher_name(0x0A0A) == "0x0A0A"
    assert cipher_name(0xC02B) == "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"


def test_named_groups() -> None:
    codes = [group.code for group in NAMED_GROUPS]
    assert len(set(codes)) == len(codes)
    expected = {
        0x001D: "x25519", 0x001E: "x448", 0x0017: "secp256r1", 0x0018: "secp384r1", 0x0019: "secp521r1",
        0x001A: "brainpoolP256r1", 0x0100: "ffdhe2048", 0x0104: "ffdhe8192",
        0x11EC: "X25519MLKEM768", 0x11EB: "SecP256r1MLKEM768", 0x11ED: "SecP384r1MLKEM1024",
        0x0200: "MLKEM512", 0x0201: "MLKEM768", 0x0202: "MLKEM1024",
    }
    for code, name in expected.items():
        group = group_by_code(code)
        assert group is not None and group.name == name
    pq = {group.name for group in NAMED_GROUPS if group.post_quantum}
    assert {"X25519MLKEM768", "SecP256r1MLKEM768", "SecP384r1MLKEM1024", "MLKEM512", "MLKEM768", "MLKEM1024"} <= pq
    assert not any(group.post_quantum for group in NAMED_GROUPS if group.kind in ("ecdhe", "ffdhe"))
    assert group_by_name("P-256") is group_by_code(0x0017)
    assert group_by_name("prime256v1") is group_by_code(0x0017)
    assert group_by_name("X25519") is group_by_code(0x001D)
    assert group_by_name("x25519mlkem768") is group_by_code(0x11EC)
    assert group_by_code(0x0A0A) is None


def test_versions_and_alerts() -> None:
    assert [v.label for v in TlsVersion] == ["SSLv3", "TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3"]
    assert version_name(0x0303) == "TLSv1.2"
    assert version_name(0x7F17) == "TLSv1.3-draft23"
    assert version_name(0x0002) == "SSLv2"
    assert version_name(0x1234) == "0x1234"
    assert AlertDescription(0).rfc_name == "close_notify"
    assert alert_name(40) == "handshake_failure"
    assert alert_name(112) == "unrecognized_name"
    assert alert_name(116) == "certificate_required"
    assert alert_name(120) == "no_application_protocol"
    assert alert_name(200) == "alert_200"
    assert len(AlertDescription) == 34


def test_generated_tables_match_the_registry_data() -> None:
    spec = importlib.util.spec_from_file_location("gen_registry", ROOT / "scripts" / "gen_registry.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the script loads
    try:
        spec.loader.exec_module(module)
        assert module.main(["--check"]) == 0, "run python scripts/gen_registry.py"
    finally:
        del sys.modules[spec.name]
