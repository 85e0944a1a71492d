"""User policy files (TOML and YAML): extends, overrides, canonical names, and one line per bad file."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from tlsward.model.errors import UsageError
from tlsward.policy import load_policy

TOML = """\
name = "acme-web"
description = "ACME's web baseline"
extends = "mozilla-intermediate"
versions = ["TLSv1.3"]
groups = ["X25519", "prime256v1", "X25519MLKEM768"]
forbidden-suites = ["ECDHE-RSA-CHACHA20-POLY1305"]
min_rsa_bits = 3072
signature_algorithms = ["sha256WithRSAEncryption", "ecdsa_secp256r1_sha256", "rsa_pss_rsae_sha256"]
max_cert_lifetime_days = 90
expiry_thresholds = [20, 10, 5]
hsts_min_max_age = 31536000
ocsp_stapling_required = false
allowed_issuers = ["O=Let's Encrypt", "ACME Internal CA"]
aead_required = true
"""

YAML = """\
# the same, in YAML
name: acme-web
extends: mozilla-intermediate
versions: [TLSv1.3]
groups: [X25519, prime256v1, X25519MLKEM768]
forbidden_suites:
  - ECDHE-RSA-CHACHA20-POLY1305
min_rsa_bits: 3072
signature_algorithms: [sha256WithRSAEncryption, ecdsa_secp256r1_sha256, rsa_pss_rsae_sha256]
max_cert_lifetime_days: 90
expiry_thresholds: [20, 10, 5]
hsts_min_max_age: 31536000
ocsp_stapling_required: false
allowed_issuers: ["O=Let's Encrypt", ACME Internal CA]
aead_required: true
description: ACME's web baseline
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(("name", "text"), [("acme.toml", TOML), ("acme.yaml", YAML), ("acme.yml", YAML)])
def test_extends_then_overrides(tmp_path: Path, name: str, text: str) -> None:
    p = load_policy(write(tmp_path, name, text))
    base = load_policy("mozilla-intermediate")
    assert p.name == "acme-web" and p.description == "ACME's web baseline"
    assert p.source == str(tmp_path / name)
    # overridden, canonicalised
    assert p.versions == ("TLSv1.3",)
    assert p.groups == ("x25519", "secp256r1", "X25519MLKEM768")
    assert p.forbidden_suites == ("TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",)
    assert p.min_rsa_bits == 3072
    assert p.signature_algorithms == ("sha256WithRSAEncryption", "ecdsa_secp256r1_sha256", "rsa_pss_rsae_sha256")
    assert p.expiry_thresholds == (20.0, 10.0, 5.0)
    assert p.hsts_min_max_age == 31536000 and not p.ocsp_stapling_required and p.aead_required
    assert p.allowed_issuers == ("O=Let's Encrypt", "ACME Internal CA")
    # inherited
    assert p.suites == base.suites and p.min_dh_bits == base.min_dh_bits and p.hsts_required


def test_toml_and_yaml_give_the_same_profile(tmp_path: Path) -> None:
    from_toml = load_policy(write(tmp_path, "a.toml", TOML))
    from_yaml = load_policy(write(tmp_path, "a.yaml", YAML))
    assert replace(from_yaml, source=from_toml.source) == from_toml


def test_without_extends_only_the_rules_given(tmp_path: Path) -> None:
    p = load_policy(write(tmp_path, "tiny.toml", 'versions = ["tls1.2", "TLSv1.3"]\n'))
    assert p.name == "tiny" and p.versions == ("TLSv1.2", "TLSv1.3")
    assert p.suites == () and p.min_rsa_bits == 0 and not p.hsts_required


def test_empty_yaml_is_a_profile_without_rules(tmp_path: Path) -> None:
    p = load_policy(write(tmp_path, "empty.yaml", "# nothing yet\n"))
    assert p.name == "empty" and p.versions == ()


def test_an_empty_list_clears_an_inherited_rule(tmp_path: Path) -> None:
    p = load_policy(write(tmp_path, "open.toml", 'extends = "mozilla-modern"\nsuites = []\nmin_ec_bits = 0\n'))
    assert p.suites == () and p.min_ec_bits == 0 and p.versions == ("TLSv1.3",)
    assert "mozilla-modern" in p.description


def test_extends_another_file_relative_to_this_one(tmp_path: Path) -> None:
    (tmp_path / "base").mkdir()
    write(tmp_path / "base", "company.yaml", "extends: mozilla-intermediate\nmin_rsa_bits: 4096\n")
    p = load_policy(write(tmp_path, "team.toml", 'extends = "base/company.yaml"\nversions = ["TLSv1.3"]\n'))
    assert p.min_rsa_bits == 4096 and p.versions == ("TLSv1.3",) and p.min_dh_bits == 2048
    assert p.name == "team"


def test_circular_extends_is_one_line(tmp_path: Path) -> None:
    write(tmp_path, "a.toml", 'extends = "b.toml"\n')
    write(tmp_path, "b.toml", 'extends = "a.toml"\n')
    with pytest.raises(UsageError, match=r"key 'extends': circular \(a.toml -> b.toml -> a.toml\)"):
        load_policy(tmp_path / "a.toml")


@pytest.mark.parametrize(("name", "text", "message"), [
    # unknown keys (with a suggestion when one is close)
    ("p.toml", "min_rsa_bit = 2048\n", r"unknown key 'min_rsa_bit'; did you mean 'min_rsa_bits'\?"),
    ("p.yaml", "colour: blue\n", r"unknown key 'colour' \(known: name, description, extends, versions"),
    ("p.toml", "[hsts]\nrequired = true\n", r"unknown key 'hsts'"),
    ("p.toml", "min_rsa_bits = 2048\nmin-rsa-bits = 3072\n", r"key 'min-rsa-bits' given twice"),
    # wrong types
    ("p.toml", 'min_rsa_bits = "2048"\n', r"key 'min_rsa_bits': expected a non-negative integer \(0: no rule\), "
                                          r"got string '2048'"),
    ("p.toml", "min_rsa_bits = -1\n", r"key 'min_rsa_bits': expected a non-negative integer"),
    ("p.yaml", "min_rsa_bits: true\n", r"key 'min_rsa_bits': expected a non-negative integer .* got boolean True"),
    ("p.yaml", "hsts_required: 1\n", r"key 'hsts_required': expected true or false, got integer 1"),
    ("p.toml", 'versions = "TLSv1.2"\n', r"key 'versions': expected a list of strings, got string 'TLSv1.2'"),
    ("p.yaml", "versions: [1.2]\n", r"key 'versions': expected a list of strings, got number 1.2 in it"),
    ("p.toml", "expiry_thresholds = [7, 14]\n", r"key 'expiry_thresholds': expected positive days in decreasing"),
    ("p.toml", 'expiry_thresholds = ["30"]\n', r"key 'expiry_thresholds': expected a list of days"),
    ("p.toml", "extends = 3\n", r"key 'extends': expected a non-empty string, got integer 3"),
    ("p.yaml", "name: ''\n", r"key 'name': expected a non-empty string"),
    # unknown names
    ("p.toml", 'versions = ["TLSv1.4"]\n', r"key 'versions': unknown protocol version .*: 'TLSv1.4'"),
    ("p.toml", 'suites = ["TLS_FOO_WITH_BAR"]\n', r"key 'suites': unknown cipher suite \(IANA or OpenSSL name\): "
                                                  r"'TLS_FOO_WITH_BAR'"),
    ("p.toml", 'suites = ["TLS_EMPTY_RENEGOTIATION_INFO_SCSV"]\n', r"key 'suites': unknown cipher suite"),
    ("p.yaml", "forbidden_suites: [RC4-SHAH]\n", r"key 'forbidden_suites': unknown cipher suite"),
    ("p.yaml", "groups: [curve9000]\n", r"key 'groups': unknown group .*: 'curve9000'"),
    ("p.yaml", "curves: [ffdhe2048]\n", r"key 'curves': unknown curve .*: 'ffdhe2048'"),
    ("p.yaml", "key_types: [rsa, kyber]\n", r"key 'key_types': unknown key type .*: 'kyber'"),
    ("p.yaml", "signature_algorithms: [sha256WithFish]\n", r"key 'signature_algorithms': unknown signature"),
    ("p.toml", 'extends = "mozilla-ancient"\n', r"key 'extends': 'mozilla-ancient' is not a shipped profile"),
    ("p.toml", 'extends = "missing.toml"\n', r"policy file .*missing.toml: not found"),
    # not a policy document at all
    ("p.toml", "versions = [\n", r"not valid TOML: "),
    ("p.yaml", "versions: [TLSv1.2\n", r"not valid YAML: line \d+: "),
    ("p.yaml", "- TLSv1.2\n", r"expected a mapping of policy keys at the top level, got a list"),
])
def test_bad_file_is_one_line_naming_file_and_key(tmp_path: Path, name: str, text: str, message: str) -> None:
    path = write(tmp_path, name, text)
    with pytest.raises(UsageError) as caught:
        load_policy(path)
    line = str(caught.value)
    assert "\n" not in line
    assert line.startswith((str(path), f"policy file {tmp_path}")), line
    assert re.search(message, line), line


def test_unknown_name_or_missing_file(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"policy 'strict': not a shipped profile \(mozilla-modern, "):
        load_policy("strict")
    with pytest.raises(UsageError, match=r"policy file .*nope.yaml: not found"):
        load_policy(tmp_path / "nope.yaml")
    other = write(tmp_path, "policy.json", "{}")
    with pytest.raises(UsageError, match=r"policy.json: a policy file ends in .toml, .yaml, .yml"):
        load_policy(other)


DOC = Path(__file__).resolve().parents[3] / "docs" / "policy.md"


def test_the_documented_example_loads_the_same_from_toml_and_yaml(tmp_path: Path) -> None:
    text = DOC.read_text(encoding="utf-8")
    (toml_block,) = re.findall(r"```toml\n(.*?)```", text, re.DOTALL)
    (yaml_block,) = re.findall(r"```yaml\n(.*?)```", text, re.DOTALL)
    from_toml = load_policy(write(tmp_path, "team-policy.toml", toml_block))
    from_yaml = load_policy(write(tmp_path, "team-policy.yaml", yaml_block))
    assert replace(from_yaml, source=from_toml.source) == from_toml
    assert from_toml.name == "acme-web" and "X25519MLKEM768" in from_toml.groups
    assert not any(s.startswith("TLS_DHE_") for s in from_toml.suites)
