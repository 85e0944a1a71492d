"""What the dashboards of ``tlsward serve`` show: aggregates of the inventory and its history.

Plain frozen data computed by ``tlsward.storage.dashboards`` and rendered by ``tlsward.web.views``. Counts of
probes are *probes*, not rows (a row folded by retention stands for ``samples`` probes), as in
``tlsward.model.slo``, so the dashboards and ``tlsward report slo`` agree.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from tlsward.model.findings import Severity

# Days-left edges of the expiry buckets: expired, then up to 7, 14, 30, 60, 90 days, then the rest.
EXPIRY_EDGES: tuple[int, ...] = (7, 14, 30, 60, 90)

InventorySort = Literal["target", "days_left", "last_probe"]
INVENTORY_SORTS: tuple[InventorySort, ...] = ("target", "days_left", "last_probe")


@dataclass(frozen=True, slots=True)
class HealthSummary:
    """Every endpoint of the inventory by the outcome of its newest probe.

    ``healthy``: the newest probe succeeded with no finding of high severity or worse; ``degraded``: it
    succeeded with one; ``failing``: it failed; ``unprobed``: never probed."""

    endpoints: int = 0
    healthy: int = 0
    degraded: int = 0
    failing: int = 0
    unprobed: int = 0

    @property
    def probed(self) -> int:
        return self.endpoints - self.unprobed

    @property
    def healthy_pct(self) -> float | None:
        """Healthy share of the probed endpoints (an endpoint never probed is unknown, not healthy)."""
        return 100.0 * self.healthy / self.probed if self.probed else None


@dataclass(frozen=True, slots=True)
class ExpiryBucket:
    """Endpoints whose last presented leaf expires in ``(low, high]`` days (None: unbounded on that side; the
    first bucket, ``high`` 0, holds the expired ones) and the distinct leaf certificates among them."""

    label: str
    low: int | None
    high: int | None
    endpoints: int
    certificates: int


@dataclass(frozen=True, slots=True)
class ExpiryCounts:
    """Expiry at a glance: disjoint buckets for the chart, and cumulative "within N days" counts (expired
    included, as ``tlsward inventory list --days-left N`` counts them)."""

    buckets: tuple[ExpiryBucket, ...]
    within: tuple[tuple[int, int, int], ...]     # (days, endpoints, certificates)

    def endpoints_within(self, days: int) -> int:
        return next((n for d, n, _ in self.within if d == days), 0)

    def certificates_within(self, days: int) -> int:
        return next((n for d, _, n in self.within if d == days), 0)


@dataclass(frozen=True, slots=True)
class DayRollup:
    """One UTC day of probe history: probes and successes, the probes per negotiated TLS version, and the
    probes and successes per (owner, team) of the probed endpoints (their owner and team when read)."""

    day: dt.date
    probes: int
    successes: int
    versions: tuple[tuple[str, int], ...] = ()                          # (version, probes); failures have none
    groups: tuple[tuple[str | None, str | None, int, int], ...] = ()    # (owner, team, probes, successes)


@dataclass(frozen=True, slots=True)
class GroupHealth:
    """One owner's or team's endpoints now, and their handshake success over the window."""

    key: str | None
    endpoints: int
    failing: int
    degraded: int
    expiring_30d: int                 # leaf expires within 30 days (expired included)
    probes: int = 0
    successes: int = 0

    @property
    def success_pct(self) -> float | None:
        return 100.0 * self.successes / self.probes if self.probes else None

    @property
    def trouble(self) -> int:
        return self.failing + self.degraded + self.expiring_30d


@dataclass(frozen=True, slots=True)
class LeafChange:
    """An endpoint started presenting another leaf (``before`` None: the first leaf it ever presented)."""

    target: str
    at: dt.datetime
    after_sha256: str
    after_subject: str | None
    before_sha256: str | None = None
    before_subject: str | None = None


@dataclass(frozen=True, slots=True)
class InventoryQuery:
    """The inventory view's search, filters and order. ``q`` is a case-insensitive substring of the target,
    owner or team; the other filters are those of ``tlsward inventory list``."""

    q: str | None = None
    owner: str | None = None
    team: str | None = None
    tag: str | None = None
    issuer: str | None = None
    days_left: float | None = None
    failing: bool | None = None
    sort: InventorySort = "target"
    descending: bool = False


@dataclass(frozen=True, slots=True)
class InventoryRow:
    """One line of the inventory view."""

    target: str
    owner: str | None
    team: str | None
    environment: str | None
    tags: tuple[str, ...]
    enabled: bool
    observed_at: dt.datetime | None
    success: bool | None
    failure_kind: str | None
    version: str | None
    finding_ids: tuple[str, ...]
    worst_severity: Severity | None
    leaf_sha256: str | None
    leaf_subject: str | None
    leaf_issuer: str | None
    leaf_not_after: dt.datetime | None


@dataclass(frozen=True, slots=True)
class InventoryPage:
    """A page of the inventory view: keyset cursors (opaque strings) to the pages after and before it."""

    rows: tuple[InventoryRow, ...]
    total: int
    next_cursor: str | None = None
    prev_cursor: str | None = None
