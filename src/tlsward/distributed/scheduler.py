"""``tlsward monitor --distributed``: the monitor's scheduler, with its probe step replaced by sending the probe to
the endpoint's zone; workers probe and write, this process watches what gets written and alerts.

It *is* the single-machine :class:`~tlsward.monitor.scheduler.Monitor` (a subclass): due times from the newest
observations, jitter, failure backoff, the deep-scan cadence, alert evaluation, silences, notifications and
retention are the same code. What it adds, each for a failure mode of a fleet of workers:

- One active scheduler: a lease row in PostgreSQL (database clock). Only the holder sends; it renews every third
  of ``lease_ttl`` and stops sending on its own once it could not renew for 90% of it, before the lease expires
  in the database, so a standby that takes over after expiry never overlaps with it.
- Backpressure: per zone, at most ``queue_per_slot`` tasks wait in the broker per live worker slot (the sum of
  the live workers' ``--concurrency``). Due probes beyond that wait here, one per endpoint (a probe still waiting
  when the next falls due is the same probe: it is not sent twice).
- A zone whose workers are all gone gets nothing sent (nothing piles up in its queue) and, after
  ``zone_down_after``, a ``zone.down`` alert through the alert engine (the dashboards' alerts and the
  ``tlsward_zone_up`` metric show it).
- Nothing lost: every probe sent stays outstanding until its observation is in the database. One still missing
  ``resend_after`` seconds after it was sent (lost with a broker restarted without persistence, with a worker
  whose write failed, ...) is sent again with the same probe id, at most ``max_resends`` times; a probe written
  twice is stored once.
- The broker going away: sends fail, the probes stay pending, the outage is logged once, and sending resumes by
  itself when it is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import heapq
import logging
import os
import random
import socket
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

from tlsward.distributed.broker import BrokerError, Publisher
from tlsward.distributed.settings import DistributedSettings, redact
from tlsward.model.alerts import Notification, Route
from tlsward.model.distributed import DEFAULT_ZONE, ProbeOrder, WorkerRecord, ZoneState, encode_batch
from tlsward.model.errors import Error
from tlsward.model.findings import Severity
from tlsward.model.monitor import MonitorConfig
from tlsward.model.target import Target
from tlsward.monitor.evaluate import Contribution, contributions
from tlsward.monitor.scheduler import Monitor, MonitorStats
from tlsward.storage import Store
from tlsward.storage.store import DEEP_PROBE_SUFFIX
from tlsward.storage.workers import DistributedStore

log = logging.getLogger("tlsward.scheduler")
LEASE_NAME = "scheduler"
ZONE_DOWN_RULE = "zone.down"
_LAG_WINDOW = 2000               # lags kept per zone between two states
DEPTH_RECHECK_S = 0.1            # how soon queue depths are read again while they hold probes back
FORGET_WORKERS_AFTER_S = 86400.0  # a worker silent (or stopped) this long is deleted from probe_worker


@dataclass
class _Sent:
    order: ProbeOrder
    sent_at: float               # monotonic
    resends: int = 0


@dataclass
class _Zone:
    """The scheduler's view of one zone."""

    name: str
    index: int                                   # a stable negative key for its alert contributions
    pending: deque[ProbeOrder] = field(default_factory=deque)
    pending_endpoints: set[int] = field(default_factory=set)
    outstanding: dict[str, _Sent] = field(default_factory=dict)
    endpoints: int = 0
    workers: int = 0
    slots: int = 0
    depth: int = 0                               # last reading
    sent_since_reading: int = 0                  # tasks sent since that reading
    down_since: dt.datetime | None = None
    lags: list[float] = field(default_factory=list)
    last_lags: tuple[float, float] = (0.0, 0.0)
    enqueued: int = 0
    done: int = 0
    resent: int = 0
    abandoned: int = 0

    def capacity(self, per_slot: int) -> int:
        """Tasks that may still be sent now."""
        return max(0, per_slot * self.slots - self.depth - self.sent_since_reading)

    def oldest_due(self, now_wall: float) -> float:
        dues = [order.due for order in self.pending] + [sent.order.due for sent in self.outstanding.values()]
        return max(0.0, now_wall - min(dues)) if dues else 0.0


@dataclass
class DistributedStats(MonitorStats):
    enqueued: int = 0
    done: int = 0
    resent: int = 0
    abandoned: int = 0
    broker_outages: int = 0
    leader_terms: int = 0


class DistributedScheduler(Monitor):
    """The monitor as a scheduler of workers. ``publisher`` defaults to one on ``settings.broker``."""

    def __init__(self, db_url: str | None, config: MonitorConfig, settings: DistributedSettings, *,
                 submit: Callable[[Notification], Any], receivers: Sequence[str], publisher: Publisher | None = None,
                 holder: str | None = None, clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
                 rng: random.Random | None = None, force_deep: bool = False) -> None:
        super().__init__(db_url, config, submit=submit, receivers=receivers, clock=clock, rng=rng,
                         force_deep=force_deep)
        self.settings = settings
        self.stats: DistributedStats = DistributedStats()
        self.publisher = publisher
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._broker_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tlsward-broker")
        self._zones: dict[str, _Zone] = {}
        self._leader = False
        self._leader_since = 0.0
        self._lease_valid_until = 0.0
        self._next_lease = 0.0
        self._next_status = 0.0
        self._next_poll = 0.0
        self._next_depth = 0.0
        self._next_forget = 0.0
        self._broker_down_since: float | None = None
        self._broker_retry_at = 0.0
        self._checked: dict[int, tuple[tuple[str, str | None, str | None], bool]] = {}

    # -- helpers -------------------------------------------------------------------------------------------

    async def _broker(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._broker_thread, lambda: fn(*args, **kwargs))

    def _zone(self, name: str) -> _Zone:
        zone = self._zones.get(name)
        if zone is None:
            zone = self._zones[name] = _Zone(name, -1 - len(self._zones))
        return zone

    def _lease_valid(self) -> bool:
        return self._leader and time.monotonic() < self._lease_valid_until

    def zone_states(self) -> list[ZoneState]:
        """The zones as this scheduler sees them now (what it writes to ``probe_zone``)."""
        now, wall = self.clock(), time.time()
        states = []
        for zone in sorted(self._zones.values(), key=lambda z: z.name):
            lags = sorted(zone.lags)
            if lags:
                zone.last_lags = (lags[len(lags) // 2], lags[min(len(lags) - 1, int(len(lags) * 0.95))])
            states.append(ZoneState(
                zone=zone.name, endpoints=zone.endpoints, workers=zone.workers, slots=zone.slots,
                queue_depth=zone.depth + zone.sent_since_reading, pending=len(zone.pending),
                outstanding=len(zone.outstanding), oldest_due_s=zone.oldest_due(wall), lag_p50_s=zone.last_lags[0],
                lag_p95_s=zone.last_lags[1], enqueued=zone.enqueued, done=zone.done, resent=zone.resent,
                abandoned=zone.abandoned, down_since=zone.down_since, updated_at=now))
        return states

    # -- the lease ------------------------------------------------------------------------------------------

    async def _lease(self) -> None:
        ttl = self.settings.lease_ttl_s
        asked = time.monotonic()

        def acquire(store: Store) -> Any:
            return DistributedStore(store).acquire_lease(LEASE_NAME, self.holder, ttl)

        lease = await self._with_db("renewing the scheduler lease", acquire)
        now = time.monotonic()
        if lease is not None and lease.held:
            if not self._leader:
                self._become_leader()
            self._lease_valid_until = asked + ttl * 0.9
            self._next_lease = now + ttl / 3
            return
        if lease is not None and self._leader:
            log.error("the scheduler lease was taken by %s: standing by", lease.holder)
            self._stand_by()
        elif lease is None and self._leader and now >= self._lease_valid_until:
            log.error("could not renew the scheduler lease: standing by until the database answers")
            self._stand_by()
        elif lease is not None and not self._leader and self.stats.leader_terms == 0 and not self._announced:
            log.info("standing by: %s holds the scheduler lease until %s", lease.holder,
                     f"{lease.expires_at:%H:%M:%S}")
            self._announced = True
        self._next_lease = now + min(ttl / 3, 2.0)

    _announced = False

    def _become_leader(self) -> None:
        self._leader = True
        self._leader_since = time.monotonic()
        self.stats.leader_terms += 1
        self._last_refresh = -1e9
        self._next_status = 0.0
        log.info("active scheduler (%s): sending due probes to the workers", self.holder)

    def _stand_by(self) -> None:
        """Forget the schedule: the next term starts from the database, as a fresh scheduler would."""
        self._leader = False
        self._heap.clear()
        self._due.clear()
        self._contributions.clear()
        self._bootstrapped = False
        for zone in self._zones.values():
            zone.pending.clear()
            zone.pending_endpoints.clear()
            zone.outstanding.clear()

    # -- zones: workers, depths, zone.down ---------------------------------------------------------------

    async def _status(self, *, once: bool) -> None:
        settings = self.settings

        forget = time.monotonic() >= self._next_forget
        if forget:
            self._next_forget = time.monotonic() + 3600

        def read(store: Store) -> tuple[list[WorkerRecord], dict[str, int], dt.datetime]:
            data = DistributedStore(store)
            now = data.now()
            if forget and data.forget_workers(now - dt.timedelta(seconds=FORGET_WORKERS_AFTER_S)):
                log.info("forgot workers silent for more than %.0f h", FORGET_WORKERS_AFTER_S / 3600)
            return data.workers(), data.zone_endpoints(), now

        loaded = await self._with_db("reading the workers", read)
        if loaded is None:
            return
        workers, endpoints, db_now = loaded
        for name in endpoints:
            self._zone(name)
        for zone in self._zones.values():
            zone.endpoints = endpoints.get(zone.name, 0)
            live = [w for w in workers if w.zone == zone.name and w.alive(db_now, settings.worker_stale_after_s)]
            zone.workers, zone.slots = len(live), sum(w.concurrency for w in live)
            if live or not zone.endpoints:
                if zone.down_since is not None and live:
                    log.warning("zone %s: %d worker(s) back after %.0f s", zone.name, len(live),
                                (db_now - zone.down_since).total_seconds())
                zone.down_since = None
            elif zone.down_since is None:
                zone.down_since = db_now
                log.error("zone %s: no live worker (%d endpoints): its probes wait here", zone.name, zone.endpoints)
        for worker in workers:
            self._zone(worker.zone)
        await self._read_depths()
        before = {zone.index for zone in self._zones.values() if zone.index in self._contributions}
        self._zone_alerts(db_now, once=once)
        after = {zone.index for zone in self._zones.values() if zone.index in self._contributions}
        if once:
            self._abandon_down_zones(db_now)
        if before != after and self._bootstrapped:
            await self._alert_round(self.clock())
        states = self.zone_states()
        for zone in self._zones.values():
            zone.lags.clear()
        await self._with_db("saving zone states", lambda store: DistributedStore(store).save_zone_states(states))

    async def _read_depths(self) -> None:
        if self.publisher is None or not self._zones:
            return
        if self._broker_down_since is not None and time.monotonic() < self._broker_retry_at:
            return
        try:
            depths = await self._broker(self.publisher.depths, sorted(self._zones))
        except BrokerError as exc:
            self._broker_failed(exc)
            return
        self._broker_back()
        for name, depth in depths.items():
            zone = self._zones[name]
            zone.depth, zone.sent_since_reading = depth, 0

    def _zone_alerts(self, now: dt.datetime, *, once: bool) -> None:
        grace = self.settings.zone_down_after_s
        for zone in self._zones.values():
            down_for = (now - zone.down_since).total_seconds() if zone.down_since is not None else 0.0
            if zone.down_since is None or down_for < grace or \
                    time.monotonic() - self._leader_since < grace or once:
                self._contributions.pop(zone.index, None)
                continue
            waiting = len(zone.pending) + len(zone.outstanding)
            self._contributions[zone.index] = [Contribution(
                key=f"{ZONE_DOWN_RULE}:{zone.name}", rule=ZONE_DOWN_RULE, severity=Severity.CRITICAL,
                route=Route.PAGE, stage="down", stage_rank=1,
                summary=f"zone {zone.name}: no probe worker alive for {down_for:.0f} s; its {zone.endpoints} "
                        "endpoints are not being probed",
                description=f"No worker of zone {zone.name} has sent a heartbeat since "
                            f"{zone.down_since:%Y-%m-%d %H:%M:%S} UTC; {waiting} probes wait for one. The endpoints "
                            "of this zone keep their last observations, which grow stale.",
                fix=f"Start or repair the zone's workers (`tlsward worker --zone {zone.name}`); `tlsward workers` "
                    "lists what reports in.",
                endpoint=f"zone:{zone.name}", owner=None, team=None, environment=None)]

    def _abandon_down_zones(self, now: dt.datetime) -> None:
        """``--once``: a zone without a live worker for ``zone_down_after`` will not get its probes done; give them
        up (counted, logged) rather than wait forever."""
        for zone in self._zones.values():
            if zone.down_since is None or (now - zone.down_since).total_seconds() < self.settings.zone_down_after_s:
                continue
            dropped = len(zone.pending) + len(zone.outstanding)
            if dropped:
                log.error("zone %s: no live worker for %.0f s: giving up %d probes", zone.name,
                          (now - zone.down_since).total_seconds(), dropped)
                zone.abandoned += dropped
                self.stats.abandoned += dropped
                zone.pending.clear()
                zone.pending_endpoints.clear()
                zone.outstanding.clear()

    # -- due probes -> pending -> sent ------------------------------------------------------------------------

    def _collect_due(self, *, once: bool) -> int:
        """Move due endpoints from the heap to their zones' pending probes; the next slot is scheduled now, as the
        monitor does when it starts a probe."""
        now = time.monotonic()
        wall_offset = time.time() - now
        moved = 0
        while self._heap and self._heap[0][0] <= now:
            scheduled, _, endpoint_id = heapq.heappop(self._heap)
            entry = self._due.get(endpoint_id)
            if entry is None:
                continue
            if not once:
                self._push(endpoint_id, scheduled + self._interval(entry))
            record = entry.endpoint
            zone = self._zone(record.zone or DEFAULT_ZONE)
            if endpoint_id in zone.pending_endpoints:
                continue            # still waiting to be sent: that probe stands for this one
            if not self._probeable(endpoint_id, record.target, record.sni, record.connect):
                continue
            wall = scheduled + wall_offset
            deep = self._deep_due(endpoint_id)
            probe_id = f"{endpoint_id}:{int(wall * 1000)}" + (DEEP_PROBE_SUFFIX if deep else "")
            links = tuple((link.server, link.config_path, link.config_line, link.certificate_path, link.key_path)
                          for link in self._links.get(record.target, ()))
            zone.pending.append(ProbeOrder(probe_id=probe_id, endpoint_id=endpoint_id, target=record.target,
                                           due=wall, sni=record.sni, connect=record.connect, team=record.team,
                                           deep=deep, links=links))
            zone.pending_endpoints.add(endpoint_id)
            moved += 1
        return moved

    def _probeable(self, endpoint_id: int, target: str, sni: str | None, connect: str | None) -> bool:
        """Whether the worker will be able to parse the target (checked once per endpoint and version of it): a
        target it cannot parse would be sent again and again, never written."""
        key = (target, sni, connect)
        known = self._checked.get(endpoint_id)
        if known is not None and known[0] == key:
            return known[1]
        try:
            Target.parse(target, sni=sni, connect=connect)
            ok = True
        except Error as exc:
            log.error("endpoint %s cannot be probed: %s", target, exc)
            ok = False
        self._checked[endpoint_id] = (key, ok)
        return ok

    async def _send_pending(self) -> None:
        if self.publisher is None:
            return
        per_slot = self.settings.queue_per_slot
        for zone in list(self._zones.values()):
            while zone.pending and zone.capacity(per_slot) > 0 and self._can_send():
                batch = self._take(zone)
                if not await self._send(zone, batch):
                    for order in reversed(batch):
                        zone.pending.appendleft(order)
                        zone.pending_endpoints.add(order.endpoint_id)
                    return
                now = time.monotonic()
                for order in batch:
                    zone.outstanding[order.probe_id] = _Sent(order, now)
                zone.enqueued += len(batch)
                self.stats.enqueued += len(batch)

    def _take(self, zone: _Zone) -> list[ProbeOrder]:
        """The next batch of a zone: oldest first, deep scans in batches of their own (their time limit differs)."""
        deep = zone.pending[0].deep
        batch: list[ProbeOrder] = []
        kept: list[ProbeOrder] = []
        while zone.pending and len(batch) < self.settings.batch_size and len(kept) < 10 * self.settings.batch_size:
            order = zone.pending.popleft()
            if order.deep == deep:
                batch.append(order)
                zone.pending_endpoints.discard(order.endpoint_id)
            else:
                kept.append(order)
        zone.pending.extendleft(reversed(kept))
        return batch

    def _backpressured(self) -> bool:
        per_slot = self.settings.queue_per_slot
        return any(zone.pending and zone.slots and not zone.capacity(per_slot) for zone in self._zones.values())

    def _can_send(self) -> bool:
        if not self._lease_valid():
            return False
        return self._broker_down_since is None or time.monotonic() >= self._broker_retry_at

    async def _send(self, zone: _Zone, batch: list[ProbeOrder]) -> bool:
        assert self.publisher is not None
        soft, hard = self.settings.task_limits(any(order.deep for order in batch))
        body = encode_batch(zone.name, batch, time.time())
        try:
            await self._broker(self.publisher.send, zone.name, body, soft_limit=soft, hard_limit=hard)
        except BrokerError as exc:
            self._broker_failed(exc)
            return False
        self._broker_back()
        zone.sent_since_reading += 1
        if log.isEnabledFor(logging.DEBUG):
            log.debug("sent to zone %s: %s", zone.name, " ".join(order.probe_id for order in batch))
        return True

    def _broker_failed(self, exc: BaseException) -> None:
        now = time.monotonic()
        if self._broker_down_since is None:
            self._broker_down_since = now
            self.stats.broker_outages += 1
            url = redact(self.settings.broker or "")
            log.error("broker %s unavailable (%s): due probes are held and sent once it is back", url, exc)
        waited = now - self._broker_down_since
        self._broker_retry_at = now + min(10.0, 0.5 + waited / 4)

    def _broker_back(self) -> None:
        if self._broker_down_since is not None:
            held = sum(len(zone.pending) for zone in self._zones.values())
            log.warning("broker back after %.0f s; %d probes pending", time.monotonic() - self._broker_down_since,
                        held)
            self._broker_down_since = None

    async def _resend_overdue(self) -> None:
        """Probes sent and still not written after ``resend_after``: send them again, or give up on them."""
        if self.publisher is None:
            return
        now = time.monotonic()
        limit = self.settings.resend_after_s
        for zone in list(self._zones.values()):
            overdue = [sent for sent in zone.outstanding.values() if now - sent.sent_at >= limit]
            if not overdue:
                continue
            for sent in [s for s in overdue if s.resends >= self.settings.max_resends]:
                del zone.outstanding[sent.order.probe_id]
                zone.abandoned += 1
                self.stats.abandoned += 1
                log.error("zone %s: probe %s of %s given up after %d resends", zone.name, sent.order.probe_id,
                          sent.order.target, sent.resends)
            overdue = [s for s in overdue if s.order.probe_id in zone.outstanding]
            overdue.sort(key=lambda s: s.order.due)
            while overdue and zone.workers and zone.capacity(self.settings.queue_per_slot) > 0 and self._can_send():
                chunk, overdue = overdue[:self.settings.batch_size], overdue[self.settings.batch_size:]
                deep = [s for s in chunk if s.order.deep]
                for group_ in (deep, [s for s in chunk if not s.order.deep]):
                    if not group_ or not await self._send(zone, [s.order for s in group_]):
                        continue
                    sent_at = time.monotonic()
                    for sent in group_:
                        sent.sent_at, sent.resends = sent_at, sent.resends + 1
                    zone.resent += len(group_)
                    self.stats.resent += len(group_)
                    log.warning("zone %s: %d probes not written %.0f s after they were sent: sent again",
                                zone.name, len(group_), limit)

    # -- written probes -> lag, backoff, alerts ------------------------------------------------------------------

    async def _poll_written(self) -> None:
        outstanding = {probe_id: (zone, sent) for zone in self._zones.values()
                       for probe_id, sent in zone.outstanding.items()}
        if not outstanding:
            return
        ids = sorted(outstanding)
        all_ips = self.config.probes.all_ips
        since = dt.datetime.fromtimestamp(min(sent.order.due for _, sent in outstanding.values()) - 300, dt.UTC)
        endpoint_ids = sorted({sent.order.endpoint_id for _, sent in outstanding.values()})

        def read(store: Store) -> set[str]:
            data = DistributedStore(store)
            return data.written_since(endpoint_ids, since) if all_ips else data.written(ids)

        written = await self._with_db("looking for written probes", read)
        if not written:
            return
        wall = time.time()
        done_endpoints: set[int] = set()
        for probe_id in written:
            found = outstanding.get(probe_id)
            if found is None:
                continue
            zone, sent = found
            del zone.outstanding[probe_id]
            zone.done += 1
            self.stats.done += 1
            if len(zone.lags) < _LAG_WINDOW:
                zone.lags.append(max(0.0, wall - sent.order.due))
            done_endpoints.add(sent.order.endpoint_id)
        await self._evaluate(sorted(done_endpoints))

    async def _evaluate(self, endpoint_ids: list[int]) -> None:
        """What ``Monitor._flush`` does after a write: re-read the endpoints' state, update their alert parts and
        their failure count (backoff), then run an alert round."""
        window = self.config.alerts.failing_after
        watches = await self._with_db("reading endpoint states", lambda store: store.watch_states(
            endpoint_ids, failing_window=max(window, 1) + 8))
        if watches is None:
            return
        now = self.clock()
        for watch in watches:
            endpoint_id = watch.endpoint.id
            if endpoint_id is None:
                continue
            entry = self._due.get(endpoint_id)
            if entry is not None:
                entry.failures = watch.consecutive_failures          # the backoff counts past the alert window
            watch = replace(watch, consecutive_failures=min(watch.consecutive_failures, max(window, 1)))
            parts = contributions(watch, self.config.alerts, now, self._evidence_for(endpoint_id))
            if parts:
                self._contributions[endpoint_id] = parts
            else:
                self._contributions.pop(endpoint_id, None)
        await self._alert_round(now)

    # -- the loop ------------------------------------------------------------------------------------------

    def _idle(self) -> bool:
        return not self._heap and all(not zone.pending and not zone.outstanding for zone in self._zones.values())

    async def run(self, stop: asyncio.Event, *, once: bool = False, drain_timeout: float = 30.0) -> MonitorStats:
        """Until ``stop`` is set; with ``once``, until every enabled endpoint was probed once and written (or given
        up on). ``drain_timeout`` is unused: workers own the probes in flight."""
        if self.publisher is None:
            self.publisher = Publisher(self.settings)
        started_once = False
        try:
            while not stop.is_set():
                now = time.monotonic()
                if now >= self._next_lease:
                    await self._lease()
                if self._leader:
                    await self._renewals(wait=once)      # [renewal]: only the lease holder renews
                    if now - self._last_refresh >= self.config.probes.refresh_s and not (once and started_once) \
                            and await self._refresh(once=once):
                        started_once = True
                    if not self._bootstrapped and self._due:
                        await self._bootstrap()
                    if now >= self._next_status:
                        self._next_status = now + self.settings.status_every_s
                        await self._status(once=once)
                    self._collect_due(once=once)
                    await self._send_pending()
                    if self._backpressured() and time.monotonic() >= self._next_depth:
                        # Held back by the queue: look again soon, not only at the next status, or the rate would
                        # be capped at queue_per_slot tasks per slot per status interval.
                        self._next_depth = time.monotonic() + DEPTH_RECHECK_S
                        await self._read_depths()
                        await self._send_pending()
                    if now >= self._next_poll:
                        self._next_poll = now + self.settings.poll_every_s
                        await self._poll_written()
                        await self._resend_overdue()
                    if once and started_once and self._idle():
                        await self._status(once=once)
                        break
                    await self._prune()
                wait = 0.05 if self._leader else min(0.5, max(0.01, self._next_lease - time.monotonic()))
                if self._leader and not any(zone.pending for zone in self._zones.values()):
                    wait = 0.2 if not self._heap else min(0.2, max(0.0, self._heap[0][0] - time.monotonic()))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=max(wait, 0.01))
        finally:
            if self._renewal is not None and not self._renewal.done():
                await asyncio.wait([self._renewal], timeout=drain_timeout)
            if self._leader:
                with contextlib.suppress(Exception):
                    states = self.zone_states()
                    await self._with_db("saving zone states",
                                        lambda store: DistributedStore(store).save_zone_states(states))
                self._db_retry_at = 0.0
                await self._with_db("releasing the scheduler lease",
                                    lambda store: DistributedStore(store).release_lease(LEASE_NAME, self.holder))
            if self.publisher is not None:
                await self._broker(self.publisher.close)
            self._broker_thread.shutdown(wait=True)
            if self._store is not None:
                await self._call(self._store.close)
            self._db.shutdown(wait=True)
        return replace(self.stats)
