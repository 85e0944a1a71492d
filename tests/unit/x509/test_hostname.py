"""RFC 6125 name matching as browsers apply it: one table, one row per rule or trap."""

from __future__ import annotations

import pytest

from tlsward.x509.hostname import matches, to_a_labels

# (target, dns SANs, IP SANs, expected, why)
CASES: list[tuple[str, tuple[str, ...], tuple[str, ...], bool, str]] = [
    ("example.com", ("example.com",), (), True, "exact"),
    ("EXAMPLE.com", ("example.COM",), (), True, "case-insensitive"),
    ("example.com.", ("example.com",), (), True, "trailing dot on the target"),
    ("example.com", ("example.com.",), (), True, "trailing dot on the SAN"),
    ("example.com..", ("example.com",), (), False, "two trailing dots is an empty label"),
    ("www.example.com", ("example.com",), (), False, "no implicit subdomains"),
    ("example.com", ("www.example.com",), (), False, "no implicit parent"),
    ("other.test", ("a.test", "b.test", "other.test"), (), True, "any SAN in the list"),
    ("example.com", (), (), False, "no SANs at all (no CN fallback)"),
    ("a.example.com", ("*.example.com",), (), True, "wildcard covers one label"),
    ("A.Example.COM", ("*.EXAMPLE.com",), (), True, "wildcard, mixed case"),
    ("example.com", ("*.example.com",), (), False, "wildcard does not cover the apex"),
    ("a.b.example.com", ("*.example.com",), (), False, "wildcard covers exactly one label"),
    ("foo.example.com", ("f*.example.com",), (), False, "partial-label wildcard refused"),
    ("foo.example.com", ("*oo.example.com",), (), False, "partial-label wildcard refused (suffix)"),
    ("foo.example.com", ("foo.*.com",), (), False, "wildcard only in the left-most label"),
    ("a.b.example.com", ("*.*.example.com",), (), False, "two wildcards refused"),
    ("example.com", ("*.com",), (), False, "no wildcard right above a single label"),
    ("com", ("*",), (), False, "a bare wildcard matches nothing"),
    ("*.example.com", ("*.example.com",), (), False, "a wildcard target is not a host name"),
    ("", ("example.com",), (), False, "empty target"),
    ("a..example.com", ("a..example.com",), (), False, "empty label"),
    ("127.0.0.1", (), ("127.0.0.1",), True, "IPv4 against an IP SAN"),
    ("127.0.0.1", ("127.0.0.1",), (), False, "IP target never matches a DNS SAN"),
    ("127.0.0.2", (), ("127.0.0.1",), False, "different IPv4"),
    ("10.0.0.1", ("*.0.0.1",), (), False, "no wildcard for IP targets"),
    ("::1", (), ("0:0:0:0:0:0:0:1",), True, "IPv6 normalised"),
    ("[2001:DB8::1]", (), ("2001:db8:0::1",), True, "bracketed, upper-case IPv6"),
    ("2001:db8::1", (), ("2001:db8::2", "127.0.0.1"), False, "different IPv6"),
    ("::ffff:127.0.0.1", (), ("127.0.0.1",), False, "IPv4-mapped IPv6 is a different address"),
    ("example.com", (), ("93.184.216.34",), False, "DNS target never matches an IP SAN"),
    ("bücher.example", ("xn--bcher-kva.example",), (), True, "U-label target against its A-label"),
    ("xn--bcher-kva.example", ("xn--bcher-kva.example",), (), True, "A-label against A-label"),
    ("BÜCHER.example", ("xn--bcher-kva.example",), (), True, "U-label case-folded by nameprep"),
    ("xn--bcher-kva.example", ("*.example",), (), False, "wildcard needs two labels after it"),
    ("shop.bücher.example", ("*.xn--bcher-kva.example",), (), True, "wildcard over an IDN parent"),
    ("bucher.example", ("xn--bcher-kva.example",), (), False, "no ASCII folding of accents"),
    ("example.com", ("example.com\x00.evil.com",), (), False, "an embedded NUL is not a prefix match"),
]


@pytest.mark.parametrize(("target", "dns", "ips", "expected"), [c[:4] for c in CASES], ids=[c[4] for c in CASES])
def test_matches(target: str, dns: tuple[str, ...], ips: tuple[str, ...], expected: bool) -> None:
    assert matches(target, dns, ips) is expected


def test_table_is_large_enough() -> None:
    assert len(CASES) >= 25


@pytest.mark.parametrize(
    ("name", "labels"),
    [
        ("Example.COM.", ("example", "com")),
        ("bücher.example", ("xn--bcher-kva", "example")),
        ("a\u3002b\uff0ec", ("a", "b", "c")),     # IDNA full stops separate labels too
        (".", None),
        ("a..b", None),
    ],
)
def test_to_a_labels(name: str, labels: tuple[str, ...] | None) -> None:
    assert to_a_labels(name) == labels
