"""What the Prometheus exporter renders: a snapshot of the inventory read at scrape time, and live probe
statistics the monitor process keeps in memory.

Two sources because they answer different questions. The inventory says what is true *now* per endpoint
and certificate (it survives restarts and is shared by every worker); only the process that runs the probes
sees *every* probe, so rates and latency distributions come from :class:`ProbeStats`. Plain data and a
lock: nothing here knows about prometheus_client, SQL or the clock.
"""

from __future__ import annotations

import datetime as dt
import threading
from bisect import bisect_left
from dataclasses import dataclass, field

from tlsward.model.findings import Severity
from tlsward.model.scan import ScanResult

# Handshake latency buckets, in seconds: loopback (5 ms) to a handshake timeout (10 s), roughly x2.5 apart.
# Fixed, because a histogram's buckets are part of its identity: changing them breaks every stored quantile.
HANDSHAKE_BUCKETS_S: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

# Live statistics are grouped by endpoint team, never by endpoint: 10,000 endpoints x 13 histogram series
# would be 130,000 series per monitor process. Team is who owns (and is paged for) an endpoint, so it is
# the breakdown worth having; it is bounded by the organisation, and hard-capped here all the same, since
# team names come from user-edited inventories. Teams beyond the cap are counted under OTHER_TEAM.
MAX_TEAMS = 64
OTHER_TEAM = "_other"


@dataclass(frozen=True, slots=True)
class EndpointMetrics:
    """One enabled endpoint as the exporter sees it.

    The ``last_*`` fields come from the newest observation, whatever its outcome. The certificate and session
    fields (``version``, ``cipher``, ``chain``, ``leaf_*``, ``chain_not_after``) come from the newest
    *successful* observation, so that a failing probe keeps reporting the last certificate seen instead of
    making its expiry series vanish (an endpoint that is down still has a certificate that will expire).
    """

    target: str
    owner: str | None = None
    team: str | None = None
    environment: str | None = None
    last_probe_at: dt.datetime | None = None     # None: never probed
    success: bool | None = None                  # of the newest observation; None: never probed
    failure_kind: str | None = None              # FailureKind value when the newest observation failed
    handshake_ms: float | None = None
    finding_ids: tuple[str, ...] = ()            # of the newest observation, worst first
    worst_severity: Severity | None = None
    last_success_at: dt.datetime | None = None
    version: str | None = None                   # TLSv1.2 ... as last negotiated
    cipher: str | None = None
    chain: tuple[str, ...] = ()                  # sha256 fingerprints as last presented, leaf first
    leaf_not_after: dt.datetime | None = None
    chain_not_after: dt.datetime | None = None   # min not_after over the presented chain (leaf included)

    @property
    def leaf_sha256(self) -> str | None:
        return self.chain[0] if self.chain else None


@dataclass(frozen=True, slots=True)
class CertificateMetrics:
    """A certificate presented in the newest successful chain of at least one enabled endpoint."""

    sha256: str
    subject: str                                 # RFC 4514, as stored
    issuer: str
    not_after: dt.datetime


@dataclass(frozen=True, slots=True)
class FindingCount:
    """How many endpoints' newest observations carry one finding id, at one severity."""

    finding_id: str
    severity: Severity
    endpoints: int


@dataclass(frozen=True, slots=True)
class AlertCount:
    """Alerts in one (status, route, severity) cell of the monitor's alert table."""

    status: str                                  # firing, resolved
    route: str                                   # page, ticket
    severity: int                                # a Severity value, kept as stored
    alerts: int


@dataclass(frozen=True, slots=True)
class RenewalMetrics:
    """A managed certificate's newest renewal attempt (``tlsward renew``), and the expiry of the newest
    certificate it got served (``served_not_after``; None before the first success)."""

    certificate: str
    outcome: str                                 # verified, deployed, rolled_back, failed
    finished_at: dt.datetime
    served_not_after: dt.datetime | None


@dataclass(frozen=True, slots=True)
class ClientRequests:
    """Requests clients made to an endpoint over one protocol in the last 24 hours, from its access logs
    (``protocol`` "" is plain HTTP)."""

    endpoint: str
    protocol: str
    requests: int


@dataclass(frozen=True, slots=True)
class MetricsSnapshot:
    """Everything the exporter renders from the inventory, read in one transaction at ``taken_at``.

    ``alerts`` is None when the inventory has no alert table (the monitor has not created it yet): the
    exporter then emits no alert series at all rather than zeros that would claim "no alerts".
    """

    taken_at: dt.datetime
    endpoints: tuple[EndpointMetrics, ...] = ()
    certificates: tuple[CertificateMetrics, ...] = ()
    findings: tuple[FindingCount, ...] = ()
    alerts: tuple[AlertCount, ...] | None = None
    client_requests: tuple[ClientRequests, ...] = ()
    renewals: tuple[RenewalMetrics, ...] = ()


@dataclass(frozen=True, slots=True)
class HistogramCounts:
    """A histogram as Prometheus wants it: cumulative counts per upper bound (``+Inf`` is ``count``)."""

    bounds: tuple[float, ...]
    cumulative: tuple[int, ...]                  # one per bound, non-decreasing
    count: int
    sum: float


@dataclass(frozen=True, slots=True)
class ProbeCount:
    team: str                                    # "" when the endpoint has no team
    result: str                                  # success, failure
    reason: str                                  # FailureKind value; "" for a success
    probes: int


@dataclass(frozen=True, slots=True)
class ProbeStatsSnapshot:
    """A consistent copy of :class:`ProbeStats`, safe to render while probes keep counting."""

    probes: tuple[ProbeCount, ...] = ()
    handshakes: tuple[tuple[str, HistogramCounts], ...] = ()   # (team, histogram), by team


@dataclass(slots=True, eq=False)
class ProbeStats:
    """Counters of probes by team, result and failure reason, and a handshake-duration histogram by team.

    Updated by the monitor after every probe, read by the exporter at scrape time. The monitor runs on one
    event loop, but the exporter renders in a worker thread (so that a scrape never stalls probing): a lock
    makes each ``record`` and ``snapshot`` atomic. Both are short (a bisect; a copy of at most 64 teams' counts)
    and the lock is never held across I/O.
    """

    buckets: tuple[float, ...] = HANDSHAKE_BUCKETS_S
    max_teams: int = MAX_TEAMS
    _probes: dict[tuple[str, str, str], int] = field(default_factory=dict, init=False, repr=False)
    _bucket_counts: dict[str, list[int]] = field(default_factory=dict, init=False, repr=False)
    _sums: dict[str, float] = field(default_factory=dict, init=False, repr=False)
    _teams: set[str] = field(default_factory=set, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        if list(self.buckets) != sorted(set(self.buckets)) or not self.buckets:
            raise ValueError(f"histogram buckets must be distinct and ascending: {self.buckets}")

    def record(self, *, team: str | None, failure_kind: str | None, handshake_seconds: float | None) -> None:
        """Count one probe (a success when ``failure_kind`` is None) and its handshake time, when it had one."""
        with self._lock:
            key = self._team(team)
            result = "success" if failure_kind is None else "failure"
            counter = (key, result, failure_kind or "")
            self._probes[counter] = self._probes.get(counter, 0) + 1
            if handshake_seconds is not None and handshake_seconds >= 0:
                counts = self._bucket_counts.setdefault(key, [0] * (len(self.buckets) + 1))
                counts[bisect_left(self.buckets, handshake_seconds)] += 1   # le: a value on a bound counts in it
                self._sums[key] = self._sums.get(key, 0.0) + handshake_seconds

    def record_scan(self, result: ScanResult, *, team: str | None = None) -> None:
        """Count one probe from its scan result."""
        handshake_ms = result.timings.handshake_ms
        self.record(team=team, failure_kind=str(result.failure.kind) if result.failure is not None else None,
                    handshake_seconds=handshake_ms / 1000 if handshake_ms is not None else None)

    def snapshot(self) -> ProbeStatsSnapshot:
        with self._lock:
            probes = tuple(ProbeCount(team, result, reason, n)
                           for (team, result, reason), n in sorted(self._probes.items()))
            handshakes = []
            for team, counts in sorted(self._bucket_counts.items()):
                cumulative: list[int] = []
                running = 0
                for n in counts[:-1]:
                    running += n
                    cumulative.append(running)
                handshakes.append((team, HistogramCounts(self.buckets, tuple(cumulative), running + counts[-1],
                                                         self._sums[team])))
            return ProbeStatsSnapshot(probes, tuple(handshakes))

    def _team(self, team: str | None) -> str:
        """The team's key, or OTHER_TEAM once ``max_teams`` distinct teams have been seen (lock held)."""
        key = team or ""
        if key in self._teams:
            return key
        if len(self._teams) >= self.max_teams:
            key = OTHER_TEAM
        self._teams.add(key)
        return key


def common_name(name: str) -> str:
    """The CN of an RFC 4514 distinguished name (``CN=a\\,b,O=X`` gives ``a,b``); the whole name when it has
    none, so that a label is never empty for a certificate that has a subject."""
    parts = _split_rdns(name) if "\\" in name else name.replace("+", ",").split(",")
    for part in parts:
        key, sep, value = part.partition("=")
        if sep and key.strip().upper() in ("CN", "2.5.4.3"):
            return value.strip()
    return name


def _split_rdns(name: str) -> list[str]:
    """Attribute pairs of a DN with backslash escapes (the slow path: most names have none)."""
    parts: list[str] = []
    attribute: list[str] = []
    escaped = False
    for char in name:
        if escaped:
            attribute.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char in ",+":
            parts.append("".join(attribute))
            attribute = []
        else:
            attribute.append(char)
    parts.append("".join(attribute))
    return parts
