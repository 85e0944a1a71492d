"""Certificate profiles (server, client for mTLS, both), name parsing, and the policy limits checked before any
signature is made.

Short default lifetimes on purpose: a leaked key of an internal certificate is worth little a week later, and the
lifecycle code renews automatically (server 30 days, client 7 days, both 7 days). The policy file sets the
ceiling (``max_cert_lifetime_days``) and the allowed key types and sizes.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID

from tlsward.model.ca import PROFILES, CaError
from tlsward.model.policy import PolicyProfile

DEFAULT_LIFETIMES: dict[str, dt.timedelta] = {
    "server": dt.timedelta(days=30), "client": dt.timedelta(days=7), "both": dt.timedelta(days=7)}
MIN_LIFETIME = dt.timedelta(minutes=5)
BACKDATE = dt.timedelta(minutes=5)       # notBefore this far back: clocks of relying parties drift
DNS_NAME = re.compile(r"^(\*\.)?([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")

IPV4ISH = re.compile(r"^[0-9.]+$")

Name = str | ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class Profile:
    """What a profile puts in a leaf: extended key usages, and whether a TLS server needs keyEncipherment (RSA)."""

    name: str
    usages: tuple[x509.ObjectIdentifier, ...]
    default_lifetime: dt.timedelta

    @property
    def extended_usage(self) -> x509.ExtendedKeyUsage:
        return x509.ExtendedKeyUsage(list(self.usages))


PROFILE_TABLE: dict[str, Profile] = {
    "server": Profile("server", (ExtendedKeyUsageOID.SERVER_AUTH,), DEFAULT_LIFETIMES["server"]),
    "client": Profile("client", (ExtendedKeyUsageOID.CLIENT_AUTH,), DEFAULT_LIFETIMES["client"]),
    "both": Profile("both", (ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH),
                    DEFAULT_LIFETIMES["both"]),
}


def profile(name: str) -> Profile:
    if name not in PROFILE_TABLE:
        raise CaError(f"--profile {name!r}: not one of {', '.join(PROFILES)}")
    return PROFILE_TABLE[name]


def parse_name(text: str) -> Name:
    """A DNS name (lower-cased, one leading ``*.`` allowed) or an IP literal; CaError naming the bad one."""
    raw = text.strip()
    if ":" in raw or IPV4ISH.match(raw):   # only these can be addresses: no exception per DNS name
        try:
            return ipaddress.ip_address(raw.strip("[]"))
        except ValueError:
            pass
    name = raw.lower().rstrip(".")
    if not name or len(name) > 253 or not DNS_NAME.match(name) or not name.isascii():
        raise CaError(f"--name {text!r}: not a DNS name or an IP address")
    return name


def parse_names(texts: Sequence[str]) -> tuple[Name, ...]:
    """Parsed and de-duplicated, in the order given. CaError for none at all."""
    names: list[Name] = []
    for text in texts:
        name = parse_name(text)
        if name not in names:
            names.append(name)
    if not names:
        raise CaError("a certificate needs at least one name (--name DNS-or-IP, or a CSR with a subjectAltName)")
    return tuple(names)


def general_names(names: Sequence[Name]) -> list[x509.GeneralName]:
    return [x509.IPAddress(n) if not isinstance(n, str) else x509.DNSName(n) for n in names]


# -- name constraints -----------------------------------------------------------------------------------------------


def parse_permitted(texts: Sequence[str]) -> tuple[str | ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """``--permit`` values: a DNS suffix (``example.internal``, ``.corp``) or an IP network (``10.0.0.0/8``)."""
    permitted: list[str | ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    for text in texts:
        raw = text.strip()
        if "/" in raw:
            try:
                permitted.append(ipaddress.ip_network(raw, strict=True))
                continue
            except ValueError:
                raise CaError(f"--permit {text!r}: not an IP network (address/prefix, host bits zero)") from None
        suffix = raw.lower().strip(".")
        if not suffix or not DNS_NAME.match(suffix):
            raise CaError(f"--permit {text!r}: not a DNS suffix or an IP network")
        permitted.append(suffix)
    return tuple(permitted)


def name_constraints(permitted: Sequence[str | ipaddress.IPv4Network | ipaddress.IPv6Network]
                     ) -> x509.NameConstraints | None:
    if not permitted:
        return None
    subtrees: list[x509.GeneralName] = [x509.DNSName(p) if isinstance(p, str) else x509.IPAddress(p)
                                        for p in permitted]
    # Constraining only DNS names would leave IP SANs unconstrained (RFC 5280 4.2.1.10): an empty IP subtree
    # (0.0.0.0/32 and ::/128) excludes every address when no network is permitted.
    excluded: list[x509.GeneralName] | None = None
    if not any(not isinstance(p, str) for p in permitted):
        excluded = [x509.IPAddress(ipaddress.ip_network("0.0.0.0/0")), x509.IPAddress(ipaddress.ip_network("::/0"))]
    return x509.NameConstraints(permitted_subtrees=subtrees, excluded_subtrees=excluded)


def within(name: Name, permitted: Sequence[str | ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    """Whether a name is inside the CA's constraints (no constraints: everything is)."""
    if not permitted:
        return True
    if isinstance(name, str):
        bare = name.removeprefix("*.")
        return any(isinstance(p, str) and (bare == p or bare.endswith("." + p)) for p in permitted)
    return any(not isinstance(p, str) and name.version == p.version and name in p for p in permitted)


# -- policy ---------------------------------------------------------------------------------------------------------


def _policy_key_type(key: PublicKeyTypes) -> tuple[str, int, str | None]:
    """(the policy's key-type name, bits, curve) of a public key."""
    if isinstance(key, rsa.RSAPublicKey):
        return "RSA", key.key_size, None
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "EC", key.curve.key_size, key.curve.name
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519", 256, None
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448", 456, None
    return type(key).__name__.removesuffix("PublicKey"), 0, None


def check_key(key: PublicKeyTypes, policy: PolicyProfile | None) -> None:
    """Refuse a public key the policy does not allow (type, curve, size), and keys no TLS stack should see."""
    kind, bits, curve = _policy_key_type(key)
    if kind not in ("RSA", "EC", "Ed25519", "Ed448"):
        raise CaError(f"a {kind} key cannot be certified by this CA (RSA, EC or Ed25519 only)")
    if kind == "RSA" and bits < 2048:
        raise CaError(f"an RSA key of {bits} bits is too small (at least 2048)")
    if policy is None:
        return
    if policy.key_types and kind not in policy.key_types:
        raise CaError(f"policy {policy.name!r} allows {', '.join(policy.key_types)} keys, not {kind}")
    if kind == "EC" and policy.curves and curve not in policy.curves:
        raise CaError(f"policy {policy.name!r} allows the curves {', '.join(policy.curves)}, not {curve}")
    if kind == "RSA" and bits < policy.min_rsa_bits:
        raise CaError(f"policy {policy.name!r} needs RSA keys of at least {policy.min_rsa_bits} bits, not {bits}")
    if kind == "EC" and bits < policy.min_ec_bits:
        raise CaError(f"policy {policy.name!r} needs EC keys of at least {policy.min_ec_bits} bits, not {bits}")


def check_lifetime(lifetime: dt.timedelta, policy: PolicyProfile | None, ceiling: dt.timedelta | None) -> None:
    """Refuse a lifetime shorter than five minutes, longer than the policy's maximum, or longer than the
    intermediate has left (``ceiling``: a leaf must not outlive its issuer)."""
    if lifetime < MIN_LIFETIME:
        raise CaError(f"a lifetime of {lifetime} is too short (at least {MIN_LIFETIME})")
    if policy is not None and policy.max_cert_lifetime_days and lifetime > dt.timedelta(
            days=policy.max_cert_lifetime_days):
        raise CaError(f"a lifetime of {_days(lifetime)} exceeds policy {policy.name!r}'s maximum of "
                      f"{policy.max_cert_lifetime_days} days")
    if ceiling is not None and lifetime > ceiling:
        raise CaError(f"a lifetime of {_days(lifetime)} would outlive the intermediate ({_days(ceiling)} left)")


def _days(delta: dt.timedelta) -> str:
    days = delta.total_seconds() / 86400
    return f"{days:g} days" if days >= 1 else f"{delta.total_seconds() / 3600:g} hours"
