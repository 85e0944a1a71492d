"""The shipped Mozilla profiles: built from Mozilla's JSON as published, every name resolving in the registry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tlsward.model.policy import PolicyProfile
from tlsward.model.registry import cipher_by_name, group_by_name
from tlsward.policy import SHIPPED, load_policy, shipped_profiles
from tlsward.policy.mozilla import GUIDELINES, guidelines
from tlsward.policy.names import canonical_signature, canonical_version

SHARED = Path(__file__).resolve().parents[4] / "shared" / "data" / GUIDELINES


def test_three_profiles_are_shipped() -> None:
    assert SHIPPED == ("mozilla-modern", "mozilla-intermediate", "mozilla-old")
    assert list(shipped_profiles()) == list(SHIPPED)
    for name in SHIPPED:
        profile = load_policy(name)
        assert profile.name == name
        assert profile.source == "https://ssl-config.mozilla.org/guidelines/5.7.json"
        assert profile.description.startswith("Mozilla Server Side TLS 5.7")


def test_intermediate_allows_tls12_and_tls13_with_aead_forward_secret_suites() -> None:
    p = load_policy("mozilla-intermediate")
    assert p.versions == ("TLSv1.2", "TLSv1.3")
    assert "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" in p.suites
    assert "TLS_AES_128_GCM_SHA256" in p.suites
    assert all(cipher_by_name(s).aead and cipher_by_name(s).forward_secrecy for s in p.suites)  # type: ignore[union-attr]
    assert p.groups == ("x25519", "secp256r1", "secp384r1")
    assert p.key_types == ("EC", "RSA")
    assert (p.min_rsa_bits, p.min_ec_bits, p.min_dh_bits) == (2048, 256, 2048)
    assert p.max_cert_lifetime_days == 366
    assert p.hsts_required and p.hsts_min_max_age == 63072000
    assert p.ocsp_stapling_required and not p.server_preference_required


def test_modern_is_tls13_only() -> None:
    p = load_policy("mozilla-modern")
    assert p.versions == ("TLSv1.3",)
    assert p.suites == ("TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256")
    assert p.key_types == ("EC",) and p.min_rsa_bits == 0 and p.min_dh_bits == 0
    assert p.signature_algorithms == ("ecdsa-with-SHA256", "ecdsa-with-SHA384", "ecdsa-with-SHA512")
    assert p.max_cert_lifetime_days == 90


def test_old_includes_tls10_and_cbc_suites() -> None:
    p = load_policy("mozilla-old")
    assert p.versions == ("TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3")
    assert {"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "TLS_RSA_WITH_AES_128_CBC_SHA",
            "TLS_RSA_WITH_3DES_EDE_CBC_SHA"} <= set(p.suites)
    assert p.server_preference_required and p.min_dh_bits == 1024 and p.key_types == ("RSA",)


@pytest.mark.parametrize("name", SHIPPED)
def test_every_name_resolves_in_the_registry(name: str) -> None:
    p = load_policy(name)
    for suite in (*p.suites, *p.forbidden_suites):
        found = cipher_by_name(suite)
        assert found is not None and found.name == suite, suite
    for group in (*p.groups, *p.curves):
        found_group = group_by_name(group)
        assert found_group is not None and found_group.name == group, group
    assert all(canonical_version(v) == v for v in p.versions)
    assert all(canonical_signature(s) == s for s in p.signature_algorithms)


@pytest.mark.parametrize("level", ["modern", "intermediate", "old"])
def test_openssl_names_map_to_mozillas_own_iana_list(level: str) -> None:
    """Mozilla publishes the same suites under several spellings: our OpenSSL → IANA mapping must agree."""
    config = guidelines()["configurations"][level]
    profile = load_policy(f"mozilla-{level}")
    tls12 = {s for s in profile.suites if not cipher_by_name(s).tls13}  # type: ignore[union-attr]
    assert tls12 == set(config["ciphers"]["iana"])
    assert {s for s in profile.suites if cipher_by_name(s).tls13} == set(config["ciphersuites"])  # type: ignore[union-attr]


@pytest.mark.skipif(not SHARED.is_file(), reason="shared/ is not beside this checkout")
def test_shipped_json_is_the_published_one() -> None:
    shipped = Path(__file__).resolve().parents[3] / "src" / "tlsward" / "policy" / "data" / GUIDELINES
    assert json.loads(shipped.read_text()) == json.loads(SHARED.read_text())


def test_profiles_are_frozen_values() -> None:
    p = load_policy("mozilla-intermediate")
    with pytest.raises(AttributeError):
        p.versions = ()  # type: ignore[misc]
    assert load_policy("mozilla-intermediate") is p
    assert "name" not in PolicyProfile.rule_names() and "versions" in PolicyProfile.rule_names()
