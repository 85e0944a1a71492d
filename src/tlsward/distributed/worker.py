"""``tlsward worker --zone NAME``: a Celery worker (prefork pool) that consumes only its zone's queue, probes each
batch with the monitor's engine call and writes the results to the inventory in one transaction per batch.

Process layout: the main process holds the broker connection, acknowledges tasks once they returned (acks_late)
and writes this worker's heartbeat row every few seconds; ``--concurrency`` child processes run the tasks, each
with its own event loop, scanners and database connection, created on its first task (after the fork, so nothing
is shared across processes). A child killed mid-task has its task requeued (reject_on_worker_lost); the whole
worker killed leaves its tasks unacknowledged, and the broker redelivers them.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from celery import Celery
from celery.exceptions import Reject, SoftTimeLimitExceeded

from tlsward.distributed.app import harden_redis_ack, make_app
from tlsward.distributed.probe import Prober, write_batch
from tlsward.distributed.settings import DistributedSettings, redact
from tlsward.model.distributed import DEFAULT_ZONE, PROBE_TASK, WorkerRecord, check_zone, decode_batch
from tlsward.model.errors import StorageError
from tlsward.model.monitor import MonitorConfig
from tlsward.storage import Store, open_store
from tlsward.storage.workers import DistributedStore

log = logging.getLogger("tlsward.worker")


@dataclass
class WorkerSetup:
    """What every process of one worker knows (set in the main process before the pool forks)."""

    db_url: str | None
    config: MonitorConfig
    settings: DistributedSettings
    zone: str = DEFAULT_ZONE
    name: str = ""
    concurrency: int = 1


@dataclass
class _ChildState:
    """One pool process's probing state, created on its first task."""

    pid: int
    loop: asyncio.AbstractEventLoop
    prober: Prober
    store: Store | None = None
    extra: dict[str, Any] = field(default_factory=dict)


_setup: WorkerSetup | None = None
_child: _ChildState | None = None


def _child_state() -> _ChildState:
    global _child
    assert _setup is not None, "the probe task runs only in a tlsward worker"
    if _child is None or _child.pid != os.getpid():
        _child = _ChildState(os.getpid(), asyncio.new_event_loop(), Prober(_setup.config, _setup.settings))
    return _child


def _child_store() -> Store:
    state = _child_state()
    if state.store is None:
        assert _setup is not None
        state.store = open_store(_setup.db_url)
    return state.store


def _drop_child_store() -> None:
    state = _child_state()
    if state.store is not None:
        store, state.store = state.store, None
        with contextlib.suppress(Exception):
            store.close()


def probe_batch(body: dict[str, Any], *, soft_deadline: float | None = None) -> dict[str, int]:
    """The task: probe a batch of orders and write the results. Returns counts (for logs and tests)."""
    assert _setup is not None
    started = time.monotonic()
    try:
        zone, orders = decode_batch(body)
    except ValueError as exc:
        log.error("dropping a malformed probe batch: %s", exc)
        raise Reject(str(exc), requeue=False) from None
    if zone != _setup.zone:
        log.warning("probe batch for zone %s delivered to a worker of zone %s: probing it anyway", zone, _setup.zone)
    state = _child_state()
    outcome = state.loop.run_until_complete(state.prober.run(orders))
    deadline = started + (soft_deadline if soft_deadline is not None else _setup.settings.task_limits(
        any(order.deep for order in orders))[0]) - 5.0
    written = 0
    if outcome.results:
        def store() -> Store:
            return _child_store()

        try:
            written = write_batch(store, outcome.results, max(deadline, time.monotonic() + 1.0))
        except StorageError as exc:
            _drop_child_store()
            # Not requeued at once (that would re-probe in a loop while the database is away): the scheduler sends
            # the probes again once it sees them unwritten past distributed.resend_after.
            log.error("could not write %d results: %s; the scheduler will send these probes again",
                      len(outcome.results), exc)
            raise Reject(f"database unavailable: {exc}", requeue=False) from None
    duplicates = len(outcome.results) - written
    if duplicates:
        log.info("%d of %d results were already recorded (a redelivered batch)", duplicates, len(outcome.results))
    with contextlib.suppress(StorageError):
        DistributedStore(_child_store()).count_probes(_setup.name, written, min(outcome.failures, written))
    log.debug("batch of %d probes done in %.2f s (%d written)", len(orders), time.monotonic() - started, written)
    return {"probes": outcome.probes, "written": written, "failures": outcome.failures,
            "timed_out": outcome.timed_out, "duplicates": duplicates}


def register(app: Celery) -> None:
    """Register the probe task on ``app``."""

    @app.task(name=PROBE_TASK, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
    def probe(body: dict[str, Any]) -> dict[str, int]:
        try:
            return probe_batch(body)
        except SoftTimeLimitExceeded:
            log.error("a probe batch hit its soft time limit; the scheduler will send its probes again")
            raise Reject("soft time limit", requeue=False) from None


class Heartbeat(threading.Thread):
    """Writes the worker's row every ``heartbeat`` seconds (main process). The database connection is closed
    between beats, so a pool process forked later never inherits an open one."""

    def __init__(self, setup: WorkerSetup) -> None:
        super().__init__(name="tlsward-heartbeat", daemon=True)
        self.setup = setup
        self.stop_event = threading.Event()
        self.started_at = dt.datetime.now(dt.UTC)
        self._store: Store | None = None
        self._failing = False

    def record(self, *, stopped: bool = False) -> WorkerRecord:
        now = dt.datetime.now(dt.UTC)
        return WorkerRecord(name=self.setup.name, zone=self.setup.zone, hostname=socket.gethostname(),
                            pid=os.getpid(), concurrency=self.setup.concurrency, started_at=self.started_at,
                            last_seen=now, stopped_at=now if stopped else None)

    def beat(self, *, stopped: bool = False) -> bool:
        try:
            if self._store is None:
                self._store = open_store(self.setup.db_url)
            DistributedStore(self._store).heartbeat(self.record(stopped=stopped))
            self._store.engine.dispose()
        except (StorageError, OSError) as exc:
            if not self._failing:
                log.error("heartbeat not written (%s); retrying every %g s", exc, self.setup.settings.heartbeat_s)
            self._failing = True
            if self._store is not None:
                with contextlib.suppress(Exception):
                    self._store.close()
                self._store = None
            return False
        if self._failing:
            log.warning("heartbeat written again")
        self._failing = False
        return True

    def run(self) -> None:
        while not self.stop_event.wait(self.setup.settings.heartbeat_s):
            self.beat()

    def stop(self) -> None:
        self.stop_event.set()
        self.join(timeout=10)
        self.beat(stopped=True)
        if self._store is not None:
            self._store.close()


def worker_name(zone: str) -> str:
    return f"tlsward-{zone}@{socket.gethostname()}-{os.getpid()}"


def run_worker(db_url: str | None, config: MonitorConfig, settings: DistributedSettings, *, zone: str = DEFAULT_ZONE,
               concurrency: int = 2, name: str | None = None, log_level: str = "info") -> int:
    """Run a worker in this process until SIGTERM/SIGINT (warm shutdown: running batches finish and are
    acknowledged). Returns the exit code."""
    global _setup
    check_zone(zone)
    if concurrency < 1:
        from tlsward.model.errors import UsageError

        raise UsageError(f"--concurrency {concurrency}: must be >= 1")
    with open_store(db_url) as store:       # fail now on a bad URL or an unreachable database, not in the pool
        if store.engine.dialect.name != "postgresql":
            log.warning("%s is not PostgreSQL: only workers on this machine can share it", store.url)
    _setup = WorkerSetup(db_url=db_url, config=config, settings=settings, zone=zone, name=name or worker_name(zone),
                         concurrency=concurrency)
    app = make_app(settings, zone=zone)
    if settings.broker_kind() == "redis":
        harden_redis_ack()
    register(app)
    heartbeat = Heartbeat(_setup)
    heartbeat.beat()
    log.info("worker %s: zone %s, %d processes, broker %s", _setup.name, zone, concurrency,
             redact(settings.broker_url()))

    from celery import signals

    def _ready(**_kwargs: Any) -> None:
        heartbeat.start()

    signals.worker_ready.connect(_ready, weak=False)
    worker = app.Worker(hostname=_setup.name, queues=[f"tlsward.zone.{zone}"], concurrency=concurrency,
                        pool="prefork", loglevel=log_level.upper(), without_gossip=True, without_mingle=True,
                        without_heartbeat=True, optimization="fair", quiet=True)
    try:
        worker.start()
    finally:
        signals.worker_ready.disconnect(_ready)
        if heartbeat.is_alive():
            heartbeat.stop()
        else:
            heartbeat.beat(stopped=True)
    return int(getattr(worker, "exitcode", 0) or 0)
