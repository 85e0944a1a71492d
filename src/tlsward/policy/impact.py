""""What breaks if": the requests (and the clients) that a policy profile would refuse, from what clients really
negotiated (server access logs, ``tlsward logs ingest``).

Why here: the policy check of a scan asks "does the server accept something the policy forbids"; this asks the
mirror question of the traffic: "does any client *need* something the policy forbids". A request fails under
the policy when its protocol version is not allowed, or its cipher suite is not (the suite list, the forbidden
list, forward secrecy and AEAD requirements). Logged cipher names are OpenSSL's (or IANA's for TLS 1.3); the
registry maps both. A name the registry does not know cannot be judged: it is counted apart, never as failing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from tlsward.model.clientlogs import OTHER_CLIENTS, ClientMix, ImpactClient, ImpactReport, MixRow
from tlsward.model.policy import PolicyProfile
from tlsward.model.registry.cipher_suites import cipher_by_name

__all__ = ["UNKNOWN_CIPHER", "impact", "refusal"]

UNKNOWN_CIPHER = "cipher name not known to tlsward (not judged)"
# Servers log TLS 1.0 as "TLSv1" (OpenSSL's name) and Envoy as "TLSv1"/"TLSv1_2"; tlsward says "TLSv1.0".
_VERSION_NAMES = {"TLSV1": "TLSv1.0", "TLSV1.0": "TLSv1.0", "TLSV1_0": "TLSv1.0", "TLSV1.1": "TLSv1.1",
                  "TLSV1_1": "TLSv1.1", "TLSV1.2": "TLSv1.2", "TLSV1_2": "TLSv1.2", "TLSV1.3": "TLSv1.3",
                  "TLSV1_3": "TLSv1.3", "SSLV3": "SSLv3", "SSLV2": "SSLv2"}


def refusal(protocol: str, cipher: str, policy: PolicyProfile) -> str | None:
    """Why ``policy`` refuses a connection over ``protocol`` and ``cipher``; None when it allows it, and
    :data:`UNKNOWN_CIPHER` when the cipher cannot be judged."""
    version = _VERSION_NAMES.get(protocol.upper(), protocol)
    if policy.versions and version not in policy.versions:
        return f"{version} not allowed"
    suite = cipher_by_name(cipher) if cipher else None
    if suite is None:
        return UNKNOWN_CIPHER if cipher else None
    if suite.name in policy.forbidden_suites:
        return f"{suite.name} forbidden"
    if policy.suites and suite.name not in policy.suites:
        return f"{suite.name} not allowed"
    if policy.forward_secrecy_required and not suite.forward_secrecy:
        return f"{suite.name} has no forward secrecy"
    if policy.aead_required and not suite.aead:
        return f"{suite.name} is not AEAD"
    return None


def impact(mix: ClientMix, policy: PolicyProfile, *, max_clients: int = 50) -> ImpactReport:
    """The share of TLS requests in ``mix`` that ``policy`` would refuse, by reason, and the clients behind them.
    Plain-HTTP requests (no protocol) are not counted: no TLS policy applies to them."""
    reasons: dict[tuple[str, str], str | None] = {}

    def why(row_protocol: str, row_cipher: str) -> str | None:
        key = (row_protocol, row_cipher)
        if key not in reasons:
            reasons[key] = refusal(row_protocol, row_cipher, policy)
        return reasons[key]

    tls: list[MixRow] = [row for row in mix.rows if row.protocol]
    by_reason: Counter[str] = Counter()
    for row in tls:
        reason = why(row.protocol, row.cipher)
        if reason is not None:
            by_reason[reason] += row.requests
    failing = sum(n for reason, n in by_reason.items() if reason != UNKNOWN_CIPHER)
    clients: Counter[tuple[str, str, str, str, str]] = Counter()
    for client in mix.clients:
        reason = why(client.protocol, client.cipher) if client.protocol else None
        if reason is not None and reason != UNKNOWN_CIPHER:
            clients[(client.user_agent, client.network, client.protocol, client.cipher, reason)] += client.requests
    def named(value: str) -> str:
        return "(other clients)" if value == OTHER_CLIENTS else value

    return ImpactReport(
        endpoint=mix.endpoint, policy=policy.name, since=mix.since, until=mix.until,
        requests=sum(row.requests for row in tls), failing=failing,
        by_reason=_ranked(by_reason.items()),
        clients=tuple(ImpactClient(named(ua), named(network), protocol, cipher, n, reason)
                      for (ua, network, protocol, cipher, reason), n in clients.most_common(max_clients)),
    )


def _ranked(items: Iterable[tuple[str, int]]) -> tuple[tuple[str, int], ...]:
    return tuple(sorted(items, key=lambda item: (-item[1], item[0])))
