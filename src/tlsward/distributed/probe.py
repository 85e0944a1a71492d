"""What a worker does with a batch of probe orders: the monitor's probe, step for step, then one batched write.

The scanners are the single-machine monitor's own (built by :class:`tlsward.monitor.scheduler.Monitor` from the
same ``[probes]`` settings), and a probe is the same engine call the monitor makes: ``Scanner.scan_one(target)``
(``scan_backends`` with ``all_ips``), then the config-linked certificate files (``deploy.not_deployed``). Probe
ids are the scheduler's (endpoint id + due time in ms, ``:deep`` for deep scans; one per address with
``all_ips``), so a batch written twice (a redelivered task) stores each observation once.

Each probe is bounded by ``probe_time_limit`` (``deep_time_limit`` for deep scans): past it the probe is recorded
as failed, so a target that hangs costs one slot for that long and is seen, never silently skipped.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from tlsward.distributed.settings import DistributedSettings
from tlsward.engine import Scanner
from tlsward.model.distributed import ProbeOrder
from tlsward.model.errors import Error, StorageError
from tlsward.model.inventory import EndpointFileRecord
from tlsward.model.monitor import MonitorConfig
from tlsward.model.scan import Failure, FailureKind, ScanResult, Timings
from tlsward.model.target import Target
from tlsward.monitor.deployment import deployment_findings
from tlsward.storage import Store
from tlsward.storage.store import DEEP_PROBE_SUFFIX

log = logging.getLogger("tlsward.worker")


def monitor_scanners(config: MonitorConfig, *, deep: bool) -> tuple[Scanner, Scanner | None]:
    """The quick and deep scanners exactly as ``tlsward monitor`` builds them from ``config``."""
    from tlsward.monitor.scheduler import Monitor

    monitor = Monitor(None, config, submit=lambda _notification: None, receivers=(), force_deep=deep)
    monitor._db.shutdown(wait=False)
    return monitor.scanner, monitor.deep_scanner


@dataclass
class BatchOutcome:
    """One batch: the results to write (result, probe id) and counts for the worker's heartbeat row."""

    results: list[tuple[ScanResult, str]]
    probes: int = 0
    failures: int = 0
    timed_out: int = 0
    skipped: int = 0                   # orders whose target cannot be parsed (logged)


class Prober:
    """A worker process's probing state: scanners (trust stores, chain cache) kept across batches."""

    def __init__(self, config: MonitorConfig, settings: DistributedSettings) -> None:
        self.config = config
        self.settings = settings
        self.scanner, self.deep_scanner = monitor_scanners(config, deep=False)

    def _scanner(self, deep: bool) -> Scanner:
        if not deep:
            return self.scanner
        if self.deep_scanner is None:            # this worker's config has deep scans off; the scheduler's has not
            self.deep_scanner = monitor_scanners(self.config, deep=True)[1]
        assert self.deep_scanner is not None
        return self.deep_scanner

    async def run(self, orders: Sequence[ProbeOrder]) -> BatchOutcome:
        """Probe every order of the batch at once (the scanner's per-address gates still apply)."""
        outcome = BatchOutcome([])
        for results in await asyncio.gather(*(self._probe(order, outcome) for order in orders)):
            outcome.results.extend(results)
        return outcome

    async def _probe(self, order: ProbeOrder, outcome: BatchOutcome) -> list[tuple[ScanResult, str]]:
        """``Monitor._probe`` for one order: a bug costs this probe, never the batch."""
        try:
            return await self._probe_unguarded(order, outcome)
        except Exception:
            log.exception("probe of %s failed unexpectedly", order.target)
            return []

    async def _probe_unguarded(self, order: ProbeOrder, outcome: BatchOutcome) -> list[tuple[ScanResult, str]]:
        try:
            target = Target.parse(order.target, sni=order.sni, connect=order.connect)
        except Error as exc:
            log.error("endpoint %s cannot be probed: %s", order.target, exc)
            outcome.skipped += 1
            return []
        scanner = self._scanner(order.deep)
        limit = self.settings.deep_time_limit_s if order.deep else self.settings.probe_time_limit_s
        started = dt.datetime.now(dt.UTC)
        try:
            if self.config.probes.all_ips and target.connect is None and not target.is_ip:
                results = await asyncio.wait_for(scanner.scan_backends(target), limit)
            else:
                results = [await asyncio.wait_for(scanner.scan_one(target), limit)]
        except TimeoutError:
            outcome.timed_out += 1
            failure = Failure(FailureKind.HANDSHAKE_TIMEOUT,
                              f"the probe exceeded its time limit of {limit:g} s (distributed.probe_time_limit)")
            results = [ScanResult(target, target.connect, started, Timings(), failure=failure)]
        links = [EndpointFileRecord(target=order.target, server=server, config_path=config, config_line=line,
                                    certificate_path=path, key_path=key)
                 for server, config, line, path, key in order.links]
        written: list[tuple[ScanResult, str]] = []
        for result in results:
            if links and result.failure is None:
                extra = await asyncio.to_thread(deployment_findings, result, links, dt.datetime.now(dt.UTC))
                if extra:
                    result = replace(result, findings=(*result.findings, *extra))
            outcome.probes += 1
            if result.failure is not None:
                outcome.failures += 1
            probe_id = order.probe_id if len(results) == 1 else \
                order.probe_id.replace(DEEP_PROBE_SUFFIX, "") + \
                f":{result.address}{DEEP_PROBE_SUFFIX if order.deep else ''}"
            written.append((result, probe_id))
        return written


def write_batch(store_factory: Any, batch: Sequence[tuple[ScanResult, str]], deadline: float) -> int:
    """``record_scans`` of the batch, retried until ``deadline`` (monotonic): the database may be restarting, and
    two workers writing the same new certificate or the same (redelivered) probe at once make one of the two
    transactions fail; the retry then finds it stored and skips it. Returns the observations written (fewer than
    the batch when some probe ids were already stored). Raises StorageError once the deadline has passed.

    ``store_factory()`` returns the worker process's open :class:`Store` (reopened after a failure)."""
    delay = 0.05
    while True:
        store: Store = store_factory()
        try:
            return store.record_scans(batch)
        except StorageError as exc:
            if time.monotonic() + delay > deadline:
                raise
            log.warning("writing %d results failed (%s); retrying in %.1f s", len(batch), exc, delay)
            time.sleep(delay)
            delay = min(delay * 2, 5.0)
