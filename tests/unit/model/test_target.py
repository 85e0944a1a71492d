from __future__ import annotations

import pytest

from tlsward.model.errors import UsageError
from tlsward.model.target import StartTLS, Target


@pytest.mark.parametrize(("text", "host", "port", "scheme", "sni"), [
    ("example.com", "example.com", 443, "tls", "example.com"),
    ("Example.COM.", "example.com", 443, "tls", "example.com"),
    ("example.com:8443", "example.com", 8443, "tls", "example.com"),
    ("127.0.0.1:993", "127.0.0.1", 993, "tls", None),
    ("[::1]:8443", "::1", 8443, "tls", None),
    ("[::1]", "::1", 443, "tls", None),
    ("::1", "::1", 443, "tls", None),
    ("https://example.com", "example.com", 443, "https", "example.com"),
    ("https://example.com:4443/path?q=1", "example.com", 4443, "https", "example.com"),
    ("smtp://mail.example.com", "mail.example.com", 25, "smtp", "mail.example.com"),
    ("imaps://mail.example.com", "mail.example.com", 993, "imaps", "mail.example.com"),
    ("postgres://[2001:db8::1]:6432", "2001:db8::1", 6432, "postgres", None),
    ("mysql://db", "db", 3306, "mysql", "db"),
    ("ldaps://dir.example.com", "dir.example.com", 636, "ldaps", "dir.example.com"),
])
def test_parse(text: str, host: str, port: int, scheme: str, sni: str | None) -> None:
    target = Target.parse(text)
    assert (target.host, target.port, target.scheme, target.sni) == (host, port, scheme, sni)


def test_starttls_and_overrides() -> None:
    target = Target.parse("smtp://mx.example.com:2525", sni="other.example.com", connect="192.0.2.1")
    assert target.starttls is StartTLS.SMTP
    assert target.name == "other.example.com"
    assert target.connect == "192.0.2.1"
    assert str(target) == "smtp://mx.example.com:2525"
    assert Target.parse("127.0.0.1:443", sni="a.test").name == "a.test"
    assert str(Target.parse("[::1]:8443")) == "[::1]:8443"


@pytest.mark.parametrize(("text", "message"), [
    ("", "empty target"),
    ("example.com:0", "out of range"),
    ("example.com:70000", "out of range"),
    ("example.com:https", "not a number"),
    ("gopher://example.com", "unknown scheme"),
    ("[::1", "missing ']'"),
    ("[nothost]:443", "not an IPv6 address"),
    ("2001:db8::zz:443", "write IPv6 with a port"),
    ("exa mple.com", "not a valid host name"),
    ("https://user:pw@example.com", "credentials"),
    ("https://example.com:99999", "out of range"),
])
def test_bad_targets_raise_one_line_naming_the_input(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message) as info:
        Target.parse(text)
    assert "\n" not in str(info.value)


def test_bad_overrides() -> None:
    with pytest.raises(UsageError, match="--connect"):
        Target.parse("example.com", connect="not-an-ip")
    with pytest.raises(UsageError, match="--sni"):
        Target.parse("example.com", sni="bad name")
