"""Identifier policy: which DNS names and IP addresses an account may get a certificate for.

A rule is a set of allow-lists: DNS suffixes (``example.com`` allows it and every name under it), exact names,
IP networks, and whether wildcards are allowed. Accounts may have their own rule, found by account id or by the
External Account Binding key id they were bound with; other accounts get the global rule. Everything not
allowed is refused with ``rejectedIdentifier``; names that are not valid DNS names at all with ``malformed``
or ``unsupportedIdentifier``. The file format is TOML (``docs/acme-server.md``)."""

from __future__ import annotations

import ipaddress
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tlsward.acme.server.problems import AcmeProblem
from tlsward.model.acme import AcmeIdentifier

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


@dataclass(frozen=True)
class IdentifierRule:
    allow_any: bool = False                      # no restriction on syntactically valid identifiers
    suffixes: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    wildcards: bool = True

    def allows(self, identifier: AcmeIdentifier) -> bool:
        if identifier.type == "ip":
            address = ipaddress.ip_address(identifier.value)
            return self.allow_any or any(address in network for network in self.networks)
        name = identifier.value
        if name.startswith("*."):
            if not self.wildcards:
                return False
            name = name[2:]
        if self.allow_any or identifier.value in self.names:
            return True
        return any(name == suffix or name.endswith("." + suffix) for suffix in self.suffixes)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], where: str) -> IdentifierRule:
        unknown = set(data) - {"allow_any", "suffixes", "names", "networks", "wildcards"}
        if unknown:
            raise ValueError(f"{where}: unknown keys {sorted(unknown)}")
        try:
            return cls(allow_any=bool(data.get("allow_any", False)),
                       suffixes=tuple(str(s).lower().strip(".") for s in data.get("suffixes", ())),
                       names=tuple(str(n).lower().rstrip(".") for n in data.get("names", ())),
                       networks=tuple(ipaddress.ip_network(str(n), strict=False) for n in data.get("networks", ())),
                       wildcards=bool(data.get("wildcards", True)))
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None


@dataclass(frozen=True)
class IdentifierPolicy:
    default: IdentifierRule = field(default_factory=lambda: IdentifierRule(allow_any=True))
    accounts: Mapping[str, IdentifierRule] = field(default_factory=dict)   # account id or EAB kid -> rule
    max_identifiers: int = 100

    def rule_for(self, account_id: str, eab_kid: str | None) -> IdentifierRule:
        if account_id in self.accounts:
            return self.accounts[account_id]
        if eab_kid is not None and eab_kid in self.accounts:
            return self.accounts[eab_kid]
        return self.default

    def check(self, identifiers: Sequence[AcmeIdentifier], account_id: str, eab_kid: str | None) -> None:
        if len(identifiers) > self.max_identifiers:
            raise AcmeProblem("rejectedIdentifier", f"at most {self.max_identifiers} identifiers per order")
        rule = self.rule_for(account_id, eab_kid)
        refused = [i for i in identifiers if not rule.allows(i)]
        if refused:
            subproblems = [{"type": "urn:ietf:params:acme:error:rejectedIdentifier", "identifier":
                            {"type": i.type, "value": i.value}, "detail": f"policy forbids {i.value}"}
                           for i in refused]
            raise AcmeProblem("rejectedIdentifier", "policy forbids issuing for " +
                              ", ".join(i.value for i in refused), subproblems=subproblems)

    @classmethod
    def load(cls, path: Path) -> IdentifierPolicy:
        """Read a TOML policy: ``[default]`` and ``[accounts."<id or EAB kid>"]`` tables of rule keys."""
        with path.open("rb") as handle:
            data = tomllib.load(handle)
        return cls.from_mapping(data, str(path))

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], where: str = "policy") -> IdentifierPolicy:
        unknown = set(data) - {"default", "accounts", "max_identifiers"}
        if unknown:
            raise ValueError(f"{where}: unknown keys {sorted(unknown)}")
        default = IdentifierRule.from_mapping(data.get("default", {}), f"{where} [default]")
        accounts = {str(k): IdentifierRule.from_mapping(v, f"{where} [accounts.{k}]")
                    for k, v in data.get("accounts", {}).items()}
        return cls(default=default, accounts=accounts, max_identifiers=int(data.get("max_identifiers", 100)))


def normalize(raw: Any) -> AcmeIdentifier:
    """One identifier from a newOrder payload, canonical; refuses what is not a DNS name or IP address."""
    if not isinstance(raw, dict) or not isinstance(raw.get("type"), str) or not isinstance(raw.get("value"), str):
        raise AcmeProblem("malformed", "an identifier is an object with string type and value")
    kind, value = raw["type"], raw["value"]
    if kind == "ip":
        try:
            return AcmeIdentifier("ip", str(ipaddress.ip_address(value)))
        except ValueError:
            raise AcmeProblem("malformed", f"{value[:100]!r} is not an IP address") from None
    if kind != "dns":
        raise AcmeProblem("unsupportedIdentifier", f"identifier type {kind[:20]!r} is not supported")
    name = value.lower()
    if name.endswith("."):
        raise AcmeProblem("rejectedIdentifier", f"{value[:100]!r} ends with a dot")
    body = name[2:] if name.startswith("*.") else name
    labels = body.split(".")
    if len(name) > 253 or not all(_LABEL.match(label) for label in labels):
        raise AcmeProblem("rejectedIdentifier", f"{value[:100]!r} is not a valid DNS name")
    try:
        ipaddress.ip_address(body)
    except ValueError:
        pass
    else:
        raise AcmeProblem("rejectedIdentifier", f"{value[:100]!r} is an IP address: use an ip identifier")
    if labels[-1].isdigit():
        raise AcmeProblem("rejectedIdentifier", f"{value[:100]!r} has a numeric top-level label")
    return AcmeIdentifier("dns", name)
