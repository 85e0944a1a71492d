"""Distributed probing (``tlsward worker``, ``tlsward monitor --distributed``): zones, the probe orders the
scheduler sends to a zone's workers, and what workers, zones and the scheduler lease look like in the database.

Plain data and pure functions (the wire format of a probe order is JSON-compatible dicts, encoded and checked
here), so that the scheduler, the worker, the CLI and the tests share one definition.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from tlsward.model.errors import UsageError

DEFAULT_ZONE = "default"
QUEUE_PREFIX = "tlsward.zone."
PROBE_TASK = "tlsward.probe"            # the Celery task name workers register and the scheduler sends
ORDER_VERSION = 1
_ZONE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


def check_zone(name: str, where: str = "zone") -> str:
    """A zone name: lowercase letters, digits, ``-`` and ``_``, at most 63 characters (it names a queue).
    Raises UsageError naming ``where``."""
    if not isinstance(name, str) or not _ZONE.match(name):
        raise UsageError(f"{where} {name!r}: expected lowercase letters, digits, '-' or '_' (at most 63), "
                         f"e.g. {DEFAULT_ZONE!r} or 'dmz'")
    return name


def queue_name(zone: str) -> str:
    """The broker queue a zone's workers consume: ``tlsward.zone.<zone>``."""
    return QUEUE_PREFIX + check_zone(zone)


@dataclass(frozen=True, slots=True)
class ProbeOrder:
    """One probe the scheduler asks a worker to run: the endpoint as the inventory has it, the probe id (endpoint
    id + scheduled time in ms, ``:deep`` for a deep scan: the id that makes a redelivered probe count once), when
    it was due (Unix seconds) and the certificate files a server config links to it (deploy.not_deployed)."""

    probe_id: str
    endpoint_id: int
    target: str
    due: float
    sni: str | None = None
    connect: str | None = None
    team: str | None = None
    deep: bool = False
    links: tuple[tuple[str, str, int, str, str | None], ...] = ()   # (server, config, line, cert path, key path)

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {"id": self.probe_id, "endpoint": self.endpoint_id, "target": self.target,
                                "due": self.due}
        for name in ("sni", "connect", "team"):
            if getattr(self, name) is not None:
                wire[name] = getattr(self, name)
        if self.deep:
            wire["deep"] = True
        if self.links:
            wire["links"] = [list(link) for link in self.links]
        return wire

    @classmethod
    def from_wire(cls, raw: Mapping[str, Any]) -> ProbeOrder:
        """Raises ValueError for anything but what :meth:`to_wire` writes."""
        try:
            links = tuple((str(s), str(c), int(n), str(p), None if k is None else str(k))
                          for s, c, n, p, k in raw.get("links", ()))
            order = cls(probe_id=str(raw["id"]), endpoint_id=int(raw["endpoint"]), target=str(raw["target"]),
                        due=float(raw["due"]), sni=_opt(raw.get("sni")), connect=_opt(raw.get("connect")),
                        team=_opt(raw.get("team")), deep=bool(raw.get("deep", False)), links=links)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a probe order: {exc!r}") from None
        if not order.probe_id.startswith(f"{order.endpoint_id}:"):
            raise ValueError(f"probe id {order.probe_id!r} does not belong to endpoint {order.endpoint_id}")
        return order


def _opt(value: object) -> str | None:
    return None if value is None else str(value)


def encode_batch(zone: str, orders: Sequence[ProbeOrder], sent: float) -> dict[str, Any]:
    """The message body of one task: a batch of probe orders for one zone."""
    return {"v": ORDER_VERSION, "zone": zone, "sent": sent, "probes": [order.to_wire() for order in orders]}


def decode_batch(body: Mapping[str, Any]) -> tuple[str, list[ProbeOrder]]:
    """(zone, orders) of a task body; ValueError for a body of another version or shape."""
    if not isinstance(body, Mapping) or body.get("v") != ORDER_VERSION:
        raise ValueError(f"unsupported probe batch (version {body.get('v') if isinstance(body, Mapping) else '?'})")
    probes = body.get("probes")
    if not isinstance(probes, list):
        raise ValueError("probe batch without a list of probes")
    return check_zone(str(body.get("zone", DEFAULT_ZONE))), [ProbeOrder.from_wire(raw) for raw in probes]


def base_probe_id(probe_id: str) -> str:
    """The scheduler's id of the probe an observation's probe id belongs to: ``endpoint:ms`` plus ``:deep`` when
    it was a deep scan (with ``all_ips`` a probe writes one observation per address, ``endpoint:ms:ADDR[:deep]``)."""
    parts = probe_id.split(":")
    base = ":".join(parts[:2])
    return base + ":deep" if len(parts) > 2 and parts[-1] == "deep" else base


@dataclass(frozen=True, slots=True)
class WorkerRecord:
    """A worker process as it reports itself (a heartbeat row)."""

    name: str                       # Celery node name, unique: tlsward-<zone>@<host>-<pid>
    zone: str
    hostname: str
    pid: int
    concurrency: int
    started_at: dt.datetime
    last_seen: dt.datetime
    probes: int = 0                 # probes written by this worker
    failures: int = 0               # of which failed (the endpoint, not the worker)
    stopped_at: dt.datetime | None = None    # set by a clean shutdown

    def alive(self, now: dt.datetime, stale_after_s: float) -> bool:
        return self.stopped_at is None and (now - self.last_seen).total_seconds() <= stale_after_s


@dataclass(frozen=True, slots=True)
class ZoneState:
    """What the active scheduler last saw of a zone (written every few seconds; read by ``tlsward workers``
    and the metrics)."""

    zone: str
    endpoints: int = 0              # enabled endpoints in the zone
    workers: int = 0                # live workers (fresh heartbeat)
    slots: int = 0                  # their total concurrency
    queue_depth: int = 0            # tasks (batches) waiting in the broker queue
    pending: int = 0                # probes due but not sent (backpressure, zone down, broker down)
    outstanding: int = 0            # probes sent, not yet written
    oldest_due_s: float = 0.0       # age of the oldest probe due and not written (pending or outstanding)
    lag_p50_s: float = 0.0          # due -> written, probes written since the previous state
    lag_p95_s: float = 0.0
    enqueued: int = 0               # probes sent since the scheduler started (counters)
    done: int = 0                   # probes written
    resent: int = 0                 # probes sent again (lost with a broker, or redelivery overdue)
    abandoned: int = 0              # probes given up on after too many resends
    down_since: dt.datetime | None = None    # no live worker since then (the zone.down alert)
    updated_at: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class Lease:
    """The scheduler lease: who holds it and until when (database time)."""

    name: str
    holder: str
    acquired_at: dt.datetime
    expires_at: dt.datetime
    held: bool = False              # whether the caller holds it after this call


@dataclass(frozen=True, slots=True)
class ZoneSummary:
    """One line of ``tlsward workers``: a zone with its workers."""

    state: ZoneState
    workers: tuple[WorkerRecord, ...] = field(default_factory=tuple)
