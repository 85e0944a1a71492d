"""Does a certificate cover the name we connected to? RFC 6125 service identity, as browsers apply it.

Why here, and not cryptography's verifier: the verifier folds a name mismatch into "untrusted", and a person
fixing a server needs the two causes apart (right chain, wrong certificate). Rules:

* DNS names compare case-insensitively, one trailing dot ignored, internationalised names as A-labels
  (``xn--...``; the standard library's IDNA 2003 codec, since this ring adds no dependency).
* A wildcard is honoured only as the complete left-most label and stands for exactly one non-empty label:
  ``*.example.com`` covers ``a.example.com`` but not ``example.com`` or ``a.b.example.com``. Partial-label
  wildcards (``f*.example.com``, ``*oo.example.com``) and wildcards elsewhere never match (browsers refuse
  them; RFC 6125 §7.2 advises against them), nor does a wildcard directly above a single label (``*.com``).
* An IP address target matches only IP address SANs (compared as addresses, so IPv6 is normalised), never
  a DNS SAN and never a wildcard.
* No fallback to the subject Common Name: browsers dropped it (Chrome 58, Firefox 48) and the CA/Browser
  Forum requires every name in the SAN, so a certificate that only names the host in its CN is broken.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from encodings import idna

__all__ = ["matches", "to_a_labels"]

_DOTS = str.maketrans({"\u3002": ".", "\uff0e": ".", "\uff61": "."})   # IDNA label separators
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def matches(name: str, dns_names: Iterable[str], ip_addresses: Iterable[str]) -> bool:
    """True when ``name`` (a host name or an IP address) is covered by the certificate's SANs."""
    target_ip = _as_ip(name)
    if target_ip is not None:
        return any(_as_ip(str(candidate)) == target_ip for candidate in ip_addresses)
    target = to_a_labels(name)
    if target is None or any("*" in label for label in target):
        return False
    return any(_dns_matches(target, pattern) for pattern in dns_names)


def to_a_labels(name: str) -> tuple[str, ...] | None:
    """Lower-case A-labels of a DNS name, one trailing dot dropped; None if it is not a usable name."""
    name = name.strip().translate(_DOTS)
    name = name.removesuffix(".")
    if not name:
        return None
    labels: list[str] = []
    for label in name.split("."):
        if not label:
            return None
        if not label.isascii():
            try:
                label = idna.ToASCII(label).decode("ascii")
            except UnicodeError:
                return None
        labels.append(label.lower())
    return tuple(labels)


def _as_ip(text: str) -> IPAddress | None:
    text = text.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _dns_matches(target: tuple[str, ...], pattern_text: str) -> bool:
    pattern = to_a_labels(pattern_text)
    if pattern is None:
        return False
    if not any("*" in label for label in pattern):
        return pattern == target
    if pattern[0] != "*" or any("*" in label for label in pattern[1:]) or len(pattern) < 3:
        return False
    return len(target) == len(pattern) and target[1:] == pattern[1:]
