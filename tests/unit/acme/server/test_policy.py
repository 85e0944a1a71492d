"""Identifier policy files: the TOML format, per-account rules by account id or EAB key id, wildcards, IP
networks, and one-line errors for a bad file."""

from __future__ import annotations

from pathlib import Path

import pytest

from tlsward.acme.server.policy import IdentifierPolicy, normalize
from tlsward.acme.server.problems import AcmeProblem
from tlsward.model.acme import AcmeIdentifier

POLICY = """
max_identifiers = 2
[default]
suffixes = ["corp.example"]
networks = ["10.0.0.0/8", "2001:db8::/32"]
wildcards = false

[accounts."team-kid"]
names = ["pay.corp.example"]
wildcards = true
suffixes = ["pay.corp.example"]
"""


def kinds(policy: IdentifierPolicy, account: str, kid: str | None, *values: str) -> str | None:
    try:
        policy.check([normalize({"type": "ip" if v[0].isdigit() else "dns", "value": v}) for v in values],
                     account, kid)
    except AcmeProblem as problem:
        return problem.kind
    return None


def test_policy_file(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(POLICY)
    policy = IdentifierPolicy.load(path)
    assert kinds(policy, "a", None, "www.corp.example", "corp.example") is None
    assert kinds(policy, "a", None, "a.corp.example", "b.corp.example", "c.corp.example") == "rejectedIdentifier"
    assert kinds(policy, "a", None, "*.corp.example") == "rejectedIdentifier"
    assert kinds(policy, "a", None, "evilcorp.example") == "rejectedIdentifier"
    assert kinds(policy, "a", None, "10.1.2.3") is None
    assert kinds(policy, "a", None, "192.168.0.1") == "rejectedIdentifier"
    assert kinds(policy, "a", "team-kid", "www.corp.example") == "rejectedIdentifier"
    assert kinds(policy, "a", "team-kid", "*.pay.corp.example") is None
    assert kinds(policy, "team-kid", None, "pay.corp.example") is None


def test_default_allows_any_valid_identifier() -> None:
    policy = IdentifierPolicy()
    assert kinds(policy, "a", None, "anything.example", "192.0.2.1") is None


@pytest.mark.parametrize("text", ["[default]\nsuffix = ['x']\n", "[default]\nnetworks = ['not-a-net']\n",
                                  "oops = 1\n", "[default\n"])
def test_bad_files(tmp_path: Path, text: str) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match=str(path).replace(".", r"\.") + "|Expected|Invalid|Unclosed"):
        IdentifierPolicy.load(path)


@pytest.mark.parametrize(("raw", "kind"), [({"type": "dns", "value": "a..b"}, "rejectedIdentifier"),
                                           ({"type": "dns", "value": "x" * 64 + ".test"}, "rejectedIdentifier"),
                                           ({"type": "dns", "value": "1.2.3.4"}, "rejectedIdentifier"),
                                           ({"type": "dns", "value": "host.123"}, "rejectedIdentifier"),
                                           ({"type": "ip", "value": "300.1.1.1"}, "malformed"),
                                           ({"type": "email", "value": "a@b"}, "unsupportedIdentifier"),
                                           ({"type": "dns"}, "malformed"), ("x", "malformed")])
def test_normalize_refuses(raw: object, kind: str) -> None:
    with pytest.raises(AcmeProblem) as caught:
        normalize(raw)
    assert caught.value.kind == kind


def test_normalize_canonical() -> None:
    assert normalize({"type": "dns", "value": "WWW.Example.TEST"}) == AcmeIdentifier("dns", "www.example.test")
    assert normalize({"type": "ip", "value": "2001:DB8::0:1"}) == AcmeIdentifier("ip", "2001:db8::1")
