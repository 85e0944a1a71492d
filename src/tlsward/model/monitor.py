"""What the monitor is told to do: probe intervals, alert thresholds and routes, silences. Plain frozen data,
read from a TOML or YAML file by ``tlsward.monitor.config``; every field has the default a team would pick."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from tlsward.model.alerts import Route
from tlsward.model.findings import Severity
from tlsward.model.inventory import EndpointRecord, RetentionPolicy
from tlsward.model.lifecycle import RenewalSettings


@dataclass(frozen=True, slots=True)
class ProbeSettings:
    """How often endpoints are probed. An endpoint's own ``probe_interval_s`` wins over ``interval_s``."""

    interval_s: float = 300.0
    jitter: float = 0.1                 # +-10 %: a fleet added at once does not stay in lockstep
    concurrency: int = 200              # probes in flight at once, over all endpoints
    per_host: int = 4                   # connections at once to one address (a shared load balancer)
    timeout_s: float = 5.0
    failure_backoff_max_s: float = 1800.0   # failing endpoints back off (x2 per failure) up to this
    batch_size: int = 500               # results written to the inventory in one transaction
    refresh_s: float = 30.0             # how often the endpoint list is re-read (adds, removals, disables)
    prune_every_s: float = 3600.0       # retention pass
    ca_files: tuple[str, ...] = ()      # extra trust anchors (internal CAs), as `tlsward scan --ca-file`
    all_ips: bool = False               # probe every address of a name; backends that disagree alert
    deep_interval_s: float = 86400.0    # a deep scan (every version, suite, group) per endpoint this often;
                                        # 0 disables. What only a deep scan sees (TLS 1.0 still accepted next to
                                        # 1.3, weak suites) alerts from it until the next deep scan says otherwise
    policy: str | None = None           # a policy profile (`tlsward policy list`) checked by the deep scans
    revocation: str = "off"             # the leaf's CRL/OCSP status at each probe: off | soft | hard (an
                                        # unreachable responder is then cert.revocation_unknown, which alerts)


@dataclass(frozen=True, slots=True)
class ExpiryAlerts:
    """One alert per certificate, re-notified at each threshold it crosses (days left, capped by the
    certificate's lifetime so short-lived certificates are judged at their own pace)."""

    thresholds: tuple[float, ...] = (30.0, 14.0, 7.0, 3.0)
    routes: tuple[Route, ...] = (Route.TICKET, Route.TICKET, Route.PAGE, Route.PAGE)


@dataclass(frozen=True, slots=True)
class AlertSettings:
    expiry: ExpiryAlerts = field(default_factory=ExpiryAlerts)
    failing_after: int = 3              # consecutive failed probes before probe.failing fires
    failing_route: Route = Route.PAGE
    chain_change_hold_s: float = 86400.0    # chain.changed stays firing this long (or until acked)
    # Findings that alert while present (a policy regression, backends that disagree, not deployed ...).
    finding_routes: tuple[tuple[str, Route], ...] = (
        ("protocol.ssl3", Route.TICKET), ("protocol.tls10", Route.TICKET), ("protocol.tls11", Route.TICKET),
        ("cipher.weak", Route.TICKET), ("policy.violation", Route.TICKET), ("name.backends_differ", Route.PAGE),
        ("deploy.not_deployed", Route.PAGE), ("name.mismatch", Route.PAGE), ("chain.untrusted", Route.PAGE),
        ("chain.incomplete", Route.TICKET), ("cert.revoked", Route.PAGE))
    renotify_page_s: float = 4 * 3600.0
    renotify_ticket_s: float = 24 * 3600.0
    # Where alerts link their runbook: the findings documentation, or the dashboards' /findings page
    # ("https://tlsward.example.com/findings"), which holds the same sections at the same anchors.
    runbook_base: str = "docs/findings.md"

    def renotify_s(self, route: Route) -> float:
        return self.renotify_page_s if route is Route.PAGE else self.renotify_ticket_s


@dataclass(frozen=True, slots=True)
class RouteRule:
    """Where alerts go. ``match`` is label name -> value (owner, team, environment, rule, severity, route);
    every pair must match. The first matching rule decides unless it says ``continue_matching``."""

    receivers: tuple[str, ...]
    match: tuple[tuple[str, str], ...] = ()
    continue_matching: bool = False

    def matches(self, labels: dict[str, str]) -> bool:
        return all(labels.get(name) == value for name, value in self.match)


@dataclass(frozen=True, slots=True)
class Silence:
    """Mutes notifications of alerts whose labels match, between ``starts_at`` and ``ends_at`` (a maintenance
    window is a silence scheduled ahead). Alerts keep their state; only notifications are held back."""

    matchers: tuple[tuple[str, str], ...]
    starts_at: dt.datetime
    ends_at: dt.datetime
    created_by: str = ""
    comment: str = ""
    id: int | None = None

    def active(self, now: dt.datetime) -> bool:
        return self.starts_at <= now < self.ends_at

    def matches(self, labels: dict[str, str], now: dt.datetime) -> bool:
        return self.active(now) and all(labels.get(name) == value for name, value in self.matchers)


@dataclass(frozen=True, slots=True)
class MonitorConfig:
    probes: ProbeSettings = field(default_factory=ProbeSettings)
    alerts: AlertSettings = field(default_factory=AlertSettings)
    routes: tuple[RouteRule, ...] = ()
    retention: RetentionPolicy = field(default_factory=RetentionPolicy)
    source: str = "(defaults)"
    renewal: RenewalSettings | None = None     # [renewal]: run `tlsward renew --all` on a schedule


SEVERITY_FOR_ROUTE = {Route.PAGE: Severity.CRITICAL, Route.TICKET: Severity.HIGH}


@dataclass(frozen=True, slots=True)
class ChainCert:
    """What alert rules need of one presented certificate."""

    sha256: str
    subject: str
    issuer: str
    not_before: dt.datetime
    not_after: dt.datetime


@dataclass(frozen=True, slots=True)
class EndpointWatch:
    """One endpoint as the alert rules see it after a probe: its newest observation, how many probes in a
    row failed, the chain of its newest successful probe and the leaf before that one."""

    endpoint: EndpointRecord
    observed_at: dt.datetime | None = None
    success: bool | None = None
    failure_kind: str | None = None
    finding_ids: tuple[str, ...] = ()
    deep_finding_ids: tuple[str, ...] = ()          # of the newest deep scan (which may be older)
    consecutive_failures: int = 0
    chain: tuple[ChainCert, ...] = ()              # newest successful probe, leaf first
    chain_seen_at: dt.datetime | None = None
    previous_leaf: ChainCert | None = None          # leaf of the successful probe before, when it differs
    previous_leaf_until: dt.datetime | None = None  # when the new leaf was first seen
