"""``tlsward monitor``: probe every enabled endpoint of the inventory on its interval, record each probe as an
observation, evaluate alerts and hand notifications to the dispatcher.

Design points, each for a failure an on-call engineer has lived through:
- Intervals get +-jitter, so a fleet imported at once does not probe in lockstep; a global concurrency cap
  bounds the load on the network and on the lab; an endpoint failing past the alert threshold backs off (x2 per
  failure, capped), so dead hosts do not eat the probe budget.
- Results are written in batches from one database thread; every probe has an id (endpoint + scheduled time),
  so a write retried after a database outage is never stored twice. While the database is down the monitor
  keeps probing, buffers results (bounded; the oldest are dropped and counted), logs the outage once and
  recovers by itself.
- SIGTERM: no new probes, in-flight probes finish, buffered results are written, the dispatcher drains.
  After SIGKILL nothing is half-written (each batch is one transaction) and a restart resumes from the
  inventory: due times come from the newest observations, alert state and notifications from the alert table.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import heapq
import logging
import random
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from tlsward.engine import Scanner, ScanOptions
from tlsward.model.alerts import AlertRecord, AlertStatus, Notification
from tlsward.model.errors import Error, StorageError
from tlsward.model.inventory import EndpointFileRecord, EndpointRecord
from tlsward.model.metrics import ProbeStats
from tlsward.model.monitor import MonitorConfig
from tlsward.model.scan import ScanResult
from tlsward.model.target import Target
from tlsward.monitor.alerting import AlertEngine, group
from tlsward.monitor.deployment import deployment_findings
from tlsward.monitor.evaluate import Contribution, contributions, lifecycle_contributions
from tlsward.storage import Store, open_store
from tlsward.storage.alerts import AlertStore
from tlsward.storage.store import DEEP_PROBE_SUFFIX

log = logging.getLogger("tlsward.monitor")
T = TypeVar("T")
MAX_BUFFERED_RESULTS = 50_000
FLUSH_AFTER_S = 1.0


@dataclass
class _Due:
    endpoint: EndpointRecord
    failures: int = 0


@dataclass
class MonitorStats:
    """Counters for logs, tests and the exporter."""

    probes: int = 0
    failures: int = 0
    written: int = 0
    dropped_results: int = 0
    notifications: int = 0
    db_outages: int = 0
    rounds: int = 0
    started: float = field(default_factory=time.monotonic)


class Monitor:
    """One monitor over one inventory. ``submit`` receives notifications (the dispatcher's ``submit``)."""

    def __init__(self, db_url: str | None, config: MonitorConfig, *, submit: Callable[[Notification], Any],
                 receivers: Sequence[str], scan_options: ScanOptions | None = None,
                 clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
                 rng: random.Random | None = None, force_deep: bool = False) -> None:
        self.db_url = db_url
        self.config = config
        self.submit = submit
        self.clock = clock
        self.rng = rng or random.Random()
        self.engine = AlertEngine(config.alerts, config.routes, receivers)
        self.scanner = Scanner(scan_options or ScanOptions(timeout=config.probes.timeout_s,
                                                           concurrency=config.probes.concurrency,
                                                           per_host=config.probes.per_host,
                                                           ca_files=config.probes.ca_files,
                                                           all_ips=config.probes.all_ips,
                                                           revocation=config.probes.revocation))
        self.force_deep = force_deep                # every probe of this run is a deep scan (--deep)
        self.deep_scanner: Scanner | None = None
        if config.probes.deep_interval_s > 0 or force_deep:
            from tlsward.probes.enumerate import DeepOptions

            policy = None
            if config.probes.policy is not None:
                from tlsward.policy import load_policy

                policy = load_policy(config.probes.policy)
            self.deep_scanner = Scanner(ScanOptions(
                timeout=config.probes.timeout_s, concurrency=config.probes.concurrency,
                per_host=config.probes.per_host,
                ca_files=config.probes.ca_files, revocation="off", policy=policy,
                deep=DeepOptions(timeout=min(config.probes.timeout_s, 3.0))))
        self._next_deep: dict[int, float] = {}      # endpoint id -> monotonic time its next deep scan is due
        self.stats = MonitorStats()
        self.probe_stats = ProbeStats()     # live counters and the handshake histogram, for /metrics
        self._db = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tlsward-db")
        self._store: Store | None = None
        self._heap: list[tuple[float, int, int]] = []          # (due monotonic, sequence, endpoint id)
        self._due: dict[int, _Due] = {}
        self._links: dict[str, list[EndpointFileRecord]] = {}
        self._contributions: dict[int, list[Contribution]] = {}
        self._evidence: dict[int, dict[str, str]] = {}           # finding evidence from this process's probes
        self._deep_evidence: dict[int, dict[str, str]] = {}
        self._alerts: dict[str, AlertRecord] = {}
        self._buffer: list[tuple[ScanResult, str]] = []
        self._buffer_since: float | None = None
        self._sequence = 0
        self._db_down_since: float | None = None
        self._db_retry_at = 0.0
        self._last_refresh = -1e9
        self._last_prune = time.monotonic()
        self._bootstrapped = False
        self._lifecycle: list[Contribution] = []       # managed certificates whose newest renewal failed
        self._lifecycle_read = -1e9
        self._renewal: asyncio.Task[None] | None = None
        self._round_lock = asyncio.Lock()       # the renewal task and the probe flushes both start alert rounds
        self._next_renewal = 0.0

    # -- database access, always on the one database thread ------------------------------------------

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._db, fn, *args)

    def _open(self) -> Store:
        if self._store is None:
            self._store = open_store(self.db_url)
        return self._store

    async def _with_db(self, what: str, fn: Callable[[Store], T]) -> T | None:
        """Run ``fn(store)`` on the database thread; on a storage error log the outage (once), back off and
        return None. The caller retries later."""
        now = time.monotonic()
        if self._db_down_since is not None and now < self._db_retry_at:
            return None
        try:
            result = await self._call(lambda: fn(self._open()))
        except (StorageError, OSError) as exc:
            if self._db_down_since is None:
                self._db_down_since = now
                self.stats.db_outages += 1
                log.error("database unavailable (%s): %s; probing goes on, results are buffered", what, exc)
            waited = now - self._db_down_since
            self._db_retry_at = now + min(30.0, 1.0 + waited / 2)
            if self._store is not None:
                store, self._store = self._store, None
                with contextlib.suppress(Exception):
                    await self._call(store.close)
            return None
        if self._db_down_since is not None:
            log.warning("database back after %.0f s; %d buffered results to write", now - self._db_down_since,
                        len(self._buffer))
            self._db_down_since = None
        return result

    # -- schedule ---------------------------------------------------------------------------------------

    def _interval(self, entry: _Due) -> float:
        base = float(entry.endpoint.probe_interval_s or self.config.probes.interval_s)
        over = entry.failures - self.config.alerts.failing_after
        if over >= 0:
            base = min(max(base, base * (2 ** (over + 1))), max(base, self.config.probes.failure_backoff_max_s))
        return base * (1 + self.rng.uniform(-self.config.probes.jitter, self.config.probes.jitter))

    def _push(self, endpoint_id: int, due: float) -> None:
        self._sequence += 1
        heapq.heappush(self._heap, (due, self._sequence, endpoint_id))

    async def _refresh(self, *, once: bool) -> bool:
        """Re-read the enabled endpoints (and config links); schedule new ones, drop removed or disabled ones."""
        def read(store: Store) -> tuple[list[EndpointRecord], dict[str, dt.datetime],
                                        list[EndpointFileRecord]]:
            records = [r for r in store.list_endpoints() if r.enabled]
            return records, store.last_observed(), store.endpoint_files()

        loaded = await self._with_db("reading the inventory", read)
        if loaded is None:
            return False
        records, last_seen, links = loaded
        self._links = {}
        for link in links:
            self._links.setdefault(link.target, []).append(link)
        now_mono, now = time.monotonic(), self.clock()
        current = {r.id: r for r in records if r.id is not None}
        for endpoint_id in list(self._due):
            if endpoint_id not in current:
                del self._due[endpoint_id]
                self._contributions.pop(endpoint_id, None)
        for endpoint_id, record in current.items():
            if endpoint_id in self._due:
                self._due[endpoint_id].endpoint = record
                continue
            entry = self._due[endpoint_id] = _Due(record)
            seen = last_seen.get(record.target)
            if once or seen is None:
                delay = 0.0 if once else self.rng.uniform(0, min(self._interval(entry), 5.0))
            else:
                delay = max(0.0, self._interval(entry) - (now - seen).total_seconds())
            self._push(endpoint_id, now_mono + delay)
        self._last_refresh = now_mono
        return True

    # -- probes -------------------------------------------------------------------------------------------

    async def _probe_guarded(self, endpoint_id: int, entry: _Due, scheduled: float) -> None:
        """A bug while probing one endpoint costs that probe, never the monitor."""
        try:
            await self._probe(endpoint_id, entry, scheduled)
        except Exception:
            log.exception("probe of %s failed unexpectedly", entry.endpoint.target)

    async def _probe(self, endpoint_id: int, entry: _Due, scheduled: float) -> None:
        record = entry.endpoint
        try:
            target = Target.parse(record.target, sni=record.sni, connect=record.connect)
        except Error as exc:
            log.error("endpoint %s cannot be probed: %s", record.target, exc)
            return
        deep = self._deep_due(endpoint_id)
        scanner = self.deep_scanner if deep and self.deep_scanner is not None else self.scanner
        if self.config.probes.all_ips and target.connect is None and not target.is_ip:
            results = await scanner.scan_backends(target)           # every address; name.backends_differ
        else:
            results = [await scanner.scan_one(target)]
        wall = time.time() + (scheduled - time.monotonic())
        slot = f"{endpoint_id}:{int(wall * 1000)}"                  # the scheduled slot, in ms
        if deep:
            slot += DEEP_PROBE_SUFFIX
        failed = False
        for result in results:
            links = self._links.get(record.target)
            if links and result.failure is None:
                extra = await asyncio.to_thread(deployment_findings, result, links, self.clock())
                if extra:
                    result = _with_findings(result, extra)
            self.stats.probes += 1
            self.probe_stats.record_scan(result, team=record.team)
            if result.failure is not None:
                self.stats.failures += 1
                failed = True
            seen: dict[str, str] = {}
            for finding in result.findings:       # one id may appear several times (one per policy rule)
                seen[finding.id] = f"{seen[finding.id]}; {finding.evidence}" if finding.id in seen \
                    else finding.evidence
            self._evidence[endpoint_id] = seen
            if deep:
                self._deep_evidence[endpoint_id] = seen
            probe_id = slot if len(results) == 1 else slot.replace(DEEP_PROBE_SUFFIX, "") + \
                f":{result.address}{DEEP_PROBE_SUFFIX if deep else ''}"
            self._buffer.append((result, probe_id))
        entry.failures = entry.failures + 1 if failed else 0
        if self._buffer_since is None:
            self._buffer_since = time.monotonic()
        if len(self._buffer) > MAX_BUFFERED_RESULTS:
            drop = len(self._buffer) - MAX_BUFFERED_RESULTS
            del self._buffer[:drop]
            self.stats.dropped_results += drop

    def _deep_due(self, endpoint_id: int) -> bool:
        """Whether this probe is a deep scan: once per ``deep_interval`` per endpoint, the first ones spread
        at random over the interval so a restart does not deep-scan the whole fleet at once."""
        if self.deep_scanner is None:
            return False
        if self.force_deep:
            return True
        interval = self.config.probes.deep_interval_s
        now = time.monotonic()
        due = self._next_deep.get(endpoint_id)
        if due is None:
            due = now + self.rng.uniform(0, interval)
        if due <= now:
            self._next_deep[endpoint_id] = now + interval
            return True
        self._next_deep[endpoint_id] = due
        return False

    async def _flush(self, *, force: bool = False) -> None:
        if not self._buffer:
            return
        if not force and len(self._buffer) < self.config.probes.batch_size and self._buffer_since is not None \
                and time.monotonic() - self._buffer_since < FLUSH_AFTER_S:
            return
        batch = list(self._buffer)
        ids = sorted({int(probe_id.split(":", 1)[0]) for _, probe_id in batch})
        window = self.config.alerts.failing_after

        def write(store: Store) -> tuple[int, list[Any]]:
            return store.record_scans(batch), store.watch_states(ids, failing_window=window)

        written = await self._with_db("writing results", write)
        if written is None:
            return
        count, watches = written
        del self._buffer[:len(batch)]
        self._buffer_since = time.monotonic() if self._buffer else None
        self.stats.written += count
        now = self.clock()
        for watch in watches:
            if watch.endpoint.id is not None:
                parts = contributions(watch, self.config.alerts, now, self._evidence_for(watch.endpoint.id))
                if parts:
                    self._contributions[watch.endpoint.id] = parts
                else:
                    self._contributions.pop(watch.endpoint.id, None)
        await self._alert_round(now)

    def _evidence_for(self, endpoint_id: int) -> dict[str, str]:
        return {**self._deep_evidence.get(endpoint_id, {}), **self._evidence.get(endpoint_id, {})}

    async def _bootstrap(self) -> bool:
        """Alert state from the database, contributions of every endpoint from its stored history."""
        ids = sorted(self._due)
        window = self.config.alerts.failing_after
        now = self.clock()
        settings = self.config.alerts

        def read(store: Store) -> tuple[list[AlertRecord], dict[int, list[Contribution]]]:
            # Chunk by chunk, keeping only endpoints that contribute to an alert: at 100,000 endpoints the
            # full watch list would cost more memory than everything else the monitor holds.
            found: dict[int, list[Contribution]] = {}
            for start in range(0, len(ids), 2000):
                for watch in store.watch_states(ids[start:start + 2000], failing_window=window):
                    parts = contributions(watch, settings, now)
                    if parts and watch.endpoint.id is not None:
                        found[watch.endpoint.id] = parts
            return AlertStore(store).load(status=AlertStatus.FIRING), found

        loaded = await self._with_db("loading alert state", read)
        if loaded is None:
            return False
        alerts, found = loaded
        self._alerts = {record.alert.key: record for record in alerts}
        self._contributions.update(found)
        self._bootstrapped = True
        # No alert round yet: the first one follows the first written probes, so a restart never notifies
        # from stale history what the fresh probe is about to contradict.
        return True

    async def _alert_round(self, now: dt.datetime) -> None:
        async with self._round_lock:
            await self._alert_round_locked(now)

    async def _alert_round_locked(self, now: dt.datetime) -> None:
        await self._read_lifecycle()
        desired = group([*(c for parts in self._contributions.values() for c in parts), *self._lifecycle])

        def silences(store: Store) -> list[Any]:
            return AlertStore(store).silences(active_at=now)

        active = await self._with_db("reading silences", silences)
        if active is None:
            return
        decision = self.engine.reconcile(self._alerts, desired, active, now)
        if not decision.records:
            return
        saved = await self._with_db("saving alerts", lambda store: AlertStore(store).save(decision.records, now))
        if saved is None:
            return              # not stored: decide again (and notify) once the database is back
        for record in decision.records:
            self._alerts[record.alert.key] = record
        for notification in decision.notifications:
            self.submit(notification)
            self.stats.notifications += 1
        self.stats.rounds += 1

    # -- managed certificates ([renewal]) -------------------------------------------------------------------

    async def _read_lifecycle(self, *, force: bool = False) -> None:
        """The newest renewal attempt of each managed certificate (written by this monitor's renewals or by
        `tlsward renew` from cron), re-read every refresh interval."""
        if not force and time.monotonic() - self._lifecycle_read < self.config.probes.refresh_s:
            return

        def read(store: Store) -> list[Contribution]:
            from tlsward.storage.lifecycle import LifecycleStore

            return lifecycle_contributions(LifecycleStore(store).latest().values())

        found = await self._with_db("reading the renewal history", read)
        if found is not None:
            self._lifecycle = found
            self._lifecycle_read = time.monotonic()

    def _renew_all(self) -> None:
        """`tlsward renew --all` in this process (a thread): each certificate under its own lock, so a renewal
        run from cron at the same moment is refused for that certificate, never run twice."""
        from pathlib import Path

        from tlsward.lifecycle.config import load_lifecycle_config
        from tlsward.lifecycle.renew import renew_certificates

        assert self.config.renewal is not None
        try:
            config = load_lifecycle_config(Path(self.config.renewal.certificates))
            with open_store(self.db_url) as store:
                for result in renew_certificates(config, store=store):
                    for line in result.lines:
                        (log.info if result.ok else log.error)("renewal: %s", line)
        except Error as exc:
            log.error("renewal: %s", exc)

    async def _renewals(self, *, wait: bool) -> None:
        """Start the renewal run when it is due (one at a time); ``wait``: until it is done (--once)."""
        if self.config.renewal is None or (self._renewal is not None and not self._renewal.done()):
            return
        if time.monotonic() < self._next_renewal:
            return
        self._next_renewal = time.monotonic() + self.config.renewal.interval_s

        async def run() -> None:
            try:
                await asyncio.to_thread(self._renew_all)
            except Exception:
                log.exception("renewal run failed unexpectedly")
            await self._read_lifecycle(force=True)
            if self._bootstrapped:
                await self._alert_round(self.clock())

        self._renewal = asyncio.create_task(run())
        if wait:
            await self._renewal

    async def _prune(self) -> None:
        if time.monotonic() - self._last_prune < self.config.probes.prune_every_s:
            return
        self._last_prune = time.monotonic()
        report = await self._with_db("pruning history", lambda store: store.prune(self.config.retention))
        if report is not None and (report.deleted_expired or report.folded_hourly or report.folded_daily):
            log.info("retention: deleted %d, folded %d hourly and %d daily", report.deleted_expired,
                     report.folded_hourly, report.folded_daily)

    # -- the loop ------------------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event, *, once: bool = False, drain_timeout: float = 30.0) -> MonitorStats:
        """Until ``stop`` is set (or, with ``once``, until every endpoint was probed once and written)."""
        in_flight: set[asyncio.Task[None]] = set()
        started_once = False
        try:
            while not stop.is_set():
                now = time.monotonic()
                await self._renewals(wait=once)     # --once: renew first, so the probes see what was deployed
                refresh = now - self._last_refresh >= self.config.probes.refresh_s and not (once and started_once)
                if refresh and await self._refresh(once=once) and once and not self._due:
                    if await self._bootstrap():      # nothing to probe: still alert on the renewal history
                        await self._alert_round(self.clock())
                    break               # --once over an inventory with nothing enabled: nothing to do
                if not self._bootstrapped and self._due:
                    await self._bootstrap()
                while self._heap and self._heap[0][0] <= now and len(in_flight) < self.config.probes.concurrency:
                    scheduled, _, endpoint_id = heapq.heappop(self._heap)
                    entry = self._due.get(endpoint_id)
                    if entry is None:
                        continue
                    task = asyncio.create_task(self._probe_guarded(endpoint_id, entry, scheduled))
                    in_flight.add(task)
                    task.add_done_callback(in_flight.discard)
                    if not once:
                        self._push(endpoint_id, scheduled + self._interval(entry))
                    started_once = True
                await self._flush()
                if once and started_once and not self._heap and not in_flight:
                    await self._flush(force=True)
                    if not self._buffer:
                        break
                await self._prune()
                wait = 0.2 if not self._heap else min(0.2, max(0.0, self._heap[0][0] - time.monotonic()))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=max(wait, 0.01))
        finally:
            if self._renewal is not None and not self._renewal.done():
                log.info("stopping: waiting for the renewal run")
                await asyncio.wait([self._renewal], timeout=drain_timeout)
            if in_flight:
                log.info("stopping: waiting for %d probes in flight", len(in_flight))
                _, pending = await asyncio.wait(in_flight, timeout=drain_timeout)
                for task in pending:
                    task.cancel()
            for _ in range(3):
                if not self._buffer:
                    break
                self._db_retry_at = 0.0
                await self._flush(force=True)
            if self._buffer:
                log.error("stopping with %d results that could not be written", len(self._buffer))
            if self._store is not None:
                await self._call(self._store.close)
            self._db.shutdown(wait=True)
        return self.stats


def _with_findings(result: ScanResult, extra: list[Any]) -> ScanResult:
    from dataclasses import replace

    return replace(result, findings=(*result.findings, *extra))
