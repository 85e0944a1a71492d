"""Scans started through the API (``POST /api/v1/scans``): jobs on the app's event loop, bounded.

A job runs the same engine as ``tlsward scan`` and records its result in the inventory like ``scan --save``
(the store is synchronous, so the write runs in a thread). At most ``scan_concurrency`` jobs run at once and
``scan_queue`` wait or run, so a burst of requests cannot open unbounded connections from the server; only the
newest ``scan_keep`` finished jobs are kept, so memory stays flat however long the server runs. Jobs live in
memory: the inventory keeps what matters (the observation), and a restart forgets the queue.

One :class:`ScanManager` per app, created on first use (:func:`scans_of`) on the event loop serving requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import secrets
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from tlsward.model.errors import Error
from tlsward.model.target import Target
from tlsward.report.json import result_to_dict
from tlsward.storage import Store
from tlsward.web.settings import WebSettings

if TYPE_CHECKING:
    from fastapi import FastAPI

    from tlsward.engine import Scanner

JobStatus = Literal["queued", "running", "done", "failed"]
FINISHED: frozenset[str] = frozenset({"done", "failed"})
KEEPALIVE_S = 15.0          # an SSE comment this often keeps proxies from closing an idle stream
PROBE_ID_PREFIX = "api:"    # observations recorded by API scans: probe ids "api:<job id>[:deep]"
log = logging.getLogger("tlsward.web.scans")


class QueueFull(Exception):
    """Too many scans queued or running; the caller should retry later (HTTP 429)."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(eq=False)
class ScanJob:
    """One requested scan and what became of it. Changed only on the event loop; watchers wait on
    :meth:`changed`, which is replaced on every change so that each waiter sees each change once."""

    id: str
    target: Target
    deep: bool
    requested_by: str
    created_at: dt.datetime
    status: JobStatus = "queued"
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    result: dict[str, Any] | None = None
    error: str | None = None
    _changed: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    def changed(self) -> asyncio.Event:
        """Set at the next change (take it *before* reading the state, then wait on it)."""
        return self._changed

    def update(self, **changes: Any) -> None:
        for name, value in changes.items():
            setattr(self, name, value)
        event, self._changed = self._changed, asyncio.Event()
        event.set()

    def to_json(self, *, with_result: bool = True) -> dict[str, Any]:
        return {"id": self.id, "status": self.status, "target": str(self.target), "deep": self.deep,
                "created_at": self.created_at.isoformat(),
                "started_at": self.started_at.isoformat() if self.started_at else None,
                "finished_at": self.finished_at.isoformat() if self.finished_at else None,
                "result": self.result if with_result else None, "error": self.error}


class ScanManager:
    """The app's scan jobs: submit, look up, watch, and cancel them all at shutdown."""

    def __init__(self, store: Store, settings: WebSettings) -> None:
        self.store, self.settings = store, settings
        self._jobs: OrderedDict[str, ScanJob] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(max(1, settings.scan_concurrency))
        self._scanners: dict[bool, Scanner] = {}
        self._scanner_lock = asyncio.Lock()

    def get(self, job_id: str) -> ScanJob | None:
        return self._jobs.get(job_id)

    def jobs(self) -> list[ScanJob]:
        """Every job kept, newest first."""
        return list(reversed(self._jobs.values()))

    def pending(self) -> int:
        return sum(not job.finished for job in self._jobs.values())

    def submit(self, target: Target, *, deep: bool, requested_by: str) -> ScanJob:
        """Queue a scan and start its task on the running loop; raises QueueFull past ``scan_queue``."""
        if self.pending() >= self.settings.scan_queue:
            raise QueueFull(f"{self.settings.scan_queue} scans are already queued or running; try again later")
        job = ScanJob(secrets.token_hex(8), target, deep, requested_by, _now())
        self._jobs[job.id] = job
        task = asyncio.get_running_loop().create_task(self._run(job), name=f"tlsward scan {job.id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        self._prune()
        return job

    async def _scanner(self, deep: bool) -> Scanner:
        """One engine per kind (plain, deep), built once: loading trust stores takes a while, and a shared
        engine shares its per-host limits and chain cache across jobs."""
        async with self._scanner_lock:
            scanner = self._scanners.get(deep)
            if scanner is None:
                from tlsward.engine import Scanner, ScanOptions
                from tlsward.probes.enumerate import DeepOptions

                timeout = self.settings.scan_timeout_s
                options = ScanOptions(timeout=timeout, revocation="off", ca_files=self.settings.ca_files,
                                      deep=DeepOptions(timeout=min(timeout, 3.0)) if deep else None)
                scanner = await asyncio.to_thread(Scanner, options)
                self._scanners[deep] = scanner
            return scanner

    async def _run(self, job: ScanJob) -> None:
        try:
            async with self._slots:
                job.update(status="running", started_at=_now())
                scanner = await self._scanner(job.deep)
                result = await asyncio.wait_for(scanner.scan_one(job.target), self.settings.scan_job_timeout_s)
                body = result_to_dict(result)
                probe_id = f"{PROBE_ID_PREFIX}{job.id}{':deep' if job.deep else ''}"
                try:
                    await asyncio.to_thread(self.store.record_scan, result, probe_id=probe_id)
                except Error as exc:
                    job.update(status="failed", result=body, error=f"the scan ran but was not recorded: {exc}",
                               finished_at=_now())
                    return
                job.update(status="done", result=body, finished_at=_now())
        except asyncio.CancelledError:
            job.update(status="failed", error="cancelled: the server stopped", finished_at=_now())
            raise
        except TimeoutError:
            job.update(status="failed", error=f"the scan took longer than {self.settings.scan_job_timeout_s:g} s",
                       finished_at=_now())
        except Error as exc:
            job.update(status="failed", error=str(exc), finished_at=_now())
        except Exception:
            log.exception("scan job %s (%s) failed", job.id, job.target)
            job.update(status="failed", error="internal error (logged on the server)", finished_at=_now())
        finally:
            self._prune()

    def _prune(self) -> None:
        finished = [job_id for job_id, job in self._jobs.items() if job.finished]
        for job_id in finished[:max(0, len(finished) - self.settings.scan_keep)]:
            del self._jobs[job_id]

    async def close(self) -> None:
        """Cancel every job still queued or running (the server is stopping)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def job_events(job: ScanJob, timeout_s: float, keepalive_s: float = KEEPALIVE_S) -> AsyncIterator[str]:
    """The job as Server-Sent Events: ``event: status`` at each change of status, then one ``event: done``
    with the whole job (result or error) when it finishes, or ``event: timeout`` after ``timeout_s``;
    comments in between keep the connection alive. Always ends."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    sent: str | None = None
    while True:
        changed = job.changed()
        if job.status != sent:
            sent = job.status
            yield _event("status", job.to_json(with_result=False))
        if job.finished:
            yield _event("done", job.to_json())
            return
        left = deadline - loop.time()
        if left <= 0:
            yield _event("timeout", job.to_json(with_result=False))
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(changed.wait(), min(left, keepalive_s))
        if not changed.is_set():
            yield ": keepalive\n\n"


def _event(name: str, data: dict[str, Any]) -> str:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def scans_of(app: FastAPI) -> ScanManager:
    """The app's scan manager, created on first use (on the loop serving the request)."""
    manager: ScanManager | None = getattr(app.state, "scans", None)
    if manager is None:
        manager = ScanManager(app.state.store, app.state.settings)
        app.state.scans = manager
    return manager
