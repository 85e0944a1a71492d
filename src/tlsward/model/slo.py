"""Service-level indicators over a window of probe history: ``tlsward report slo``.

The SLIs SRE teams ask of TLS (handshake success rate, certificate validity, version and cipher mix,
handshake latency), per owner or team, with an optional target and its error budget. Plain frozen data:
``tlsward.storage.reports`` computes it, the CLI renders it; docs/slo.md defines every number.

Percentages are 0-100 floats. Counts are *probes*, not rows: a row folded by retention stands for
``samples`` probes, of which ``successes`` succeeded, and is weighted accordingly.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass
from typing import Literal

from tlsward.model.errors import UsageError

SLO_SCHEMA = "tlsward.slo/1"   # the --json shape; bump on any incompatible change

# A successful probe presented a *valid* certificate unless its findings include one of these: the failures
# that make a client refuse the certificate (expired, not yet valid, untrusted, wrong name, revoked, or an
# expired intermediate in the chain). Weaker problems (expiring soon, SHA-1, short keys) are posture, not
# validity, and have their own findings.
INVALID_CERTIFICATE_FINDINGS: frozenset[str] = frozenset({
    "cert.expired", "cert.not_yet_valid", "chain.untrusted", "name.mismatch", "cert.revoked",
    "chain.expired_intermediate"})

WORST_ENDPOINTS = 5

GroupBy = Literal["owner", "team"]

WINDOW = re.compile(r"([1-9][0-9]{0,6})([dhm])")
UNIT_SECONDS = {"d": 86400, "h": 3600, "m": 60}
MAX_WINDOW = dt.timedelta(days=3660)   # ten years: past any retention, and far from datetime's limits
TARGET = re.compile(r"[0-9]{1,3}(\.[0-9]+)?")


def parse_window(text: str, what: str = "--window") -> dt.timedelta:
    """``30d``, ``12h`` or ``90m``, nothing else (no spaces, no units mixed, no zero): a report over a window
    someone mistyped is worse than none. ``what`` names the input in the error (a flag, a query parameter)."""
    match = WINDOW.fullmatch(text)
    if match is None:
        raise UsageError(f"{what} {text!r}: expected a whole number of days, hours or minutes (30d, 12h, 90m)")
    span = dt.timedelta(seconds=int(match[1]) * UNIT_SECONDS[match[2]])
    if span > MAX_WINDOW:
        raise UsageError(f"{what} {text!r}: at most {MAX_WINDOW.days}d")
    return span


def parse_target(text: str, what: str = "--target") -> float:
    """A percentage in (0, 100], written as a plain number (``99.9``)."""
    value = float(text) if TARGET.fullmatch(text) else None
    if value is None or not 0 < value <= 100:
        raise UsageError(f"{what} {text!r}: expected a percentage above 0 and at most 100, such as 99.9")
    return value


@dataclass(frozen=True, slots=True)
class Share:
    """One value of a distribution (a TLS version, a cipher suite) and the probes that negotiated it."""

    name: str
    probes: int
    pct: float          # of the probes that negotiated any value (failed handshakes negotiate none)


@dataclass(frozen=True, slots=True)
class EndpointSli:
    """One endpoint's handshake success over the window (a line of "worst endpoints")."""

    target: str
    probes: int
    successes: int

    @property
    def success_pct(self) -> float:
        return 100.0 * self.successes / self.probes if self.probes else 0.0


@dataclass(frozen=True, slots=True)
class Latency:
    """Handshake latency percentiles, nearest rank over the probes in ``probes`` (see docs/slo.md for which
    rows count: raw, successful, with a measured handshake). None when there are none."""

    probes: int = 0
    p50_ms: float | None = None
    p95_ms: float | None = None


@dataclass(frozen=True, slots=True)
class SloVerdict:
    """A group's handshake success rate against ``--target``.

    The error budget is the failures the target allows over the window, ``(1 - target) x probes``;
    ``budget_remaining_pct`` is how much of it is left (100: no failure, 0: spent exactly, negative:
    overspent). None when the target is 100 %, which allows no failure at all.
    """

    target_pct: float
    met: bool | None                    # None: no probe in the window, so nothing to judge
    failures: int
    allowed_failures: float
    budget_remaining_pct: float | None


@dataclass(frozen=True, slots=True)
class GroupSli:
    """The SLIs of one group of endpoints (an owner, a team, or everything)."""

    key: str | None                     # the owner or team; None: endpoints without one (or the overall row)
    endpoints: int                      # endpoints with at least one probe in the window
    unprobed_endpoints: int             # enabled endpoints with none: a blind spot, not a success
    probes: int
    successes: int
    valid_certificate_probes: int
    versions: tuple[Share, ...] = ()    # most probes first
    ciphers: tuple[Share, ...] = ()
    latency: Latency = Latency()
    worst_endpoints: tuple[EndpointSli, ...] = ()   # lowest success rate first; only endpoints that failed
    slo: SloVerdict | None = None

    @property
    def success_pct(self) -> float | None:
        return 100.0 * self.successes / self.probes if self.probes else None

    @property
    def valid_certificate_pct(self) -> float | None:
        return 100.0 * self.valid_certificate_probes / self.probes if self.probes else None


@dataclass(frozen=True, slots=True)
class SloReport:
    """Every group's SLIs over ``[since, until)``, grouped ``by`` the endpoints' *current* owner or team."""

    since: dt.datetime
    until: dt.datetime
    by: GroupBy
    overall: GroupSli
    groups: tuple[GroupSli, ...]        # by key, the group without an owner/team last
    target_pct: float | None = None

    @property
    def missed(self) -> tuple[GroupSli, ...]:
        """The groups (overall included) whose success rate is below the target."""
        return tuple(group for group in (self.overall, *self.groups)
                     if group.slo is not None and group.slo.met is False)


def verdict(target_pct: float, probes: int, successes: int) -> SloVerdict:
    """The target comparison for one group: pure arithmetic, shared by every group."""
    failures = probes - successes
    allowed = (100.0 - target_pct) / 100.0 * probes
    if not probes:
        return SloVerdict(target_pct, None, 0, 0.0, None)
    rate = 100.0 * successes / probes
    met = rate >= target_pct or math.isclose(rate, target_pct, rel_tol=1e-12)   # 999 of 1000 meets 99.9
    remaining = None if target_pct >= 100.0 else 100.0 * (1.0 - failures / allowed)
    return SloVerdict(target_pct, met, failures, allowed, remaining)
