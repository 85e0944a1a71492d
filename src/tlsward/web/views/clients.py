"""What real clients negotiate with an endpoint (from its access logs, ``tlsward logs ingest``), for the endpoint
and executive views: the version mix, and what a stricter policy would break ("what breaks if")."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass

from tlsward.model.clientlogs import PLAIN, ImpactReport, legacy_reason
from tlsward.model.inventory import EndpointRecord
from tlsward.storage import Store
from tlsward.storage.clientlogs import ClientLogStore

WINDOW = dt.timedelta(days=7)
IMPACT_POLICY = "mozilla-intermediate"      # the usual next step; `tlsward impact --policy` for any other


@dataclass(frozen=True, slots=True)
class ClientPanel:
    endpoint: str                            # the name the logs use
    requests: int
    versions: tuple[tuple[str, int], ...]    # ("TLSv1.3", 900), ... most first; "plain HTTP" for no TLS
    impact: ImpactReport


def _log_names(record: EndpointRecord) -> list[str]:
    host = record.sni or record.host
    return list(dict.fromkeys([record.target, f"{host}:{record.port}", host]))


def client_panel(store: Store, record: EndpointRecord, moment: dt.datetime) -> ClientPanel | None:
    """The endpoint's last 7 days of logged traffic, or None when no access log mentions it."""
    from tlsward.policy import load_policy
    from tlsward.policy.impact import impact

    logs = ClientLogStore(store)
    for name in _log_names(record):
        mix = logs.mix(name, moment - WINDOW, moment, by_bucket=False)
        if mix.rows:
            versions: Counter[str] = Counter()
            for row in mix.rows:
                versions[row.protocol or "plain HTTP"] += row.requests
            return ClientPanel(endpoint=name, requests=mix.requests, versions=tuple(versions.most_common()),
                               impact=impact(mix, load_policy(IMPACT_POLICY), max_clients=10))
    return None


@dataclass(frozen=True, slots=True)
class FleetClients:
    """The executive view's line: TLS requests on legacy protocols or suites, and the endpoints with most."""

    requests: int
    tls_requests: int
    legacy_requests: int
    worst: tuple[tuple[str, int, float], ...]   # (endpoint, requests, legacy share), most legacy first

    @property
    def legacy_share(self) -> float:
        return self.legacy_requests / self.tls_requests if self.tls_requests else 0.0


def fleet_clients(store: Store, moment: dt.datetime, top: int = 5) -> FleetClients | None:
    logs = ClientLogStore(store)
    shares = logs.endpoints(moment - WINDOW, moment)
    if not shares:
        return None
    mix = logs.mix(None, moment - WINDOW, moment, by_bucket=False)
    tls = [row for row in mix.rows if row.protocol != PLAIN]
    legacy = sum(row.requests for row in tls if legacy_reason(row.protocol, row.cipher) is not None)
    worst = sorted((s for s in shares if s[2] > 0), key=lambda s: (-s[2] * s[1], s[0]))[:top]
    return FleetClients(requests=mix.requests, tls_requests=sum(row.requests for row in tls), legacy_requests=legacy,
                        worst=tuple(worst))
