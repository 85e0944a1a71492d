"""The dispatcher: one bounded queue and one worker per receiver, so a slow or dead receiver delays only itself.

``submit()`` is synchronous and never blocks the monitor's evaluation loop: it appends to the receiver's queue
and returns. When a queue is full, reminders go first (the oldest queued reminder is dropped; a new reminder
finding no reminder to replace is itself dropped); only when the queue holds no reminder at all is the oldest
notification dropped, since the newest state is the one a person needs. Every drop is counted.

A failed send is retried with exponential backoff and equal jitter (half the delay fixed, half random, so a
fleet of monitors does not retry in lockstep), at most ``max_attempts`` sends in all, each delay capped at
``max_delay``; a receiver's ``Retry-After`` is honoured up to that cap. Errors that retrying cannot fix (HTTP
4xx, SMTP 5xx, an untrusted certificate) fail at once. ``sleep`` and ``random`` are injectable, so tests run the
backoff without waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random as _random
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from types import TracebackType

from tlsward.model.alerts import Notification, NotificationKind
from tlsward.model.errors import NotifyError, UsageError
from tlsward.monitor.notify.config import ReceiverConfig
from tlsward.monitor.notify.senders import DeliveryError, Notifier, build_notifier

__all__ = ["Dispatcher", "ReceiverStats", "RetryPolicy"]

log = logging.getLogger("tlsward.monitor.notify")
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """``max_attempts`` counts every send of one notification, the first included."""

    max_attempts: int = 5
    base_delay: float = 2.0
    max_delay: float = 300.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.base_delay < 0 or self.max_delay < 0:
            raise ValueError("delays cannot be negative")

    def delay(self, retry: int, rnd: float, retry_after: float | None = None) -> float:
        """Seconds before retry number ``retry`` (1-based); ``rnd`` in [0, 1) is the jitter draw."""
        ceiling = min(self.max_delay, self.base_delay * 2.0 ** (retry - 1))
        wait = ceiling / 2 + ceiling / 2 * rnd
        if retry_after is not None:
            wait = max(wait, retry_after)
        return min(wait, self.max_delay)


@dataclass(frozen=True, slots=True)
class ReceiverStats:
    """Counters for the exporter. ``failed`` counts notifications given up on, ``retried`` counts retry
    attempts, ``dropped`` counts notifications never sent (queue full, or still queued at close)."""

    receiver: str
    sent: int = 0
    failed: int = 0
    retried: int = 0
    dropped: int = 0
    queued: int = 0
    last_error: str | None = None


@dataclass(slots=True)
class _Lane:
    notifier: Notifier
    queue: deque[Notification] = field(default_factory=deque)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    in_flight: Notification | None = None
    sent: int = 0
    failed: int = 0
    retried: int = 0
    dropped: int = 0
    last_error: str | None = None


class Dispatcher:
    """Queues notifications per receiver and delivers them in the background (see the module docstring).

    Use inside a running event loop: ``submit()`` starts the workers on first use. Close with
    ``await dispatcher.close(timeout)`` or ``async with Dispatcher(...)``.
    """

    def __init__(
        self,
        notifiers: Iterable[Notifier],
        *,
        retry: RetryPolicy | None = None,
        queue_size: int = 100,
        sleep: Sleep = asyncio.sleep,
        random: Callable[[], float] = _random.random,
        close_timeout: float = 10.0,
    ) -> None:
        if queue_size < 1:
            raise ValueError("queue_size must be at least 1")
        self._lanes: dict[str, _Lane] = {}
        for notifier in notifiers:
            if notifier.name in self._lanes:
                raise UsageError(f"receiver {notifier.name!r}: defined twice")
            self._lanes[notifier.name] = _Lane(notifier)
        self.retry = retry or RetryPolicy()
        self.queue_size = queue_size
        self.close_timeout = close_timeout
        self._sleep = sleep
        self._random = random
        self._closed = False

    @classmethod
    def from_configs(
        cls,
        configs: Iterable[ReceiverConfig],
        *,
        retry: RetryPolicy | None = None,
        queue_size: int = 100,
        sleep: Sleep = asyncio.sleep,
        random: Callable[[], float] = _random.random,
        close_timeout: float = 10.0,
    ) -> Dispatcher:
        """A dispatcher with one notifier per validated receiver config."""
        return cls([build_notifier(config) for config in configs], retry=retry, queue_size=queue_size, sleep=sleep,
                   random=random, close_timeout=close_timeout)

    @property
    def receivers(self) -> list[str]:
        return list(self._lanes)

    def submit(self, notification: Notification) -> bool:
        """Queue ``notification`` for its receiver; never blocks. False when it was dropped instead (the queue
        was full of non-reminders and this is a reminder, or the dispatcher is closed)."""
        lane = self._lanes.get(notification.receiver)
        if lane is None:
            known = ", ".join(self._lanes) or "none"
            raise UsageError(f"no receiver named {notification.receiver!r} (configured: {known})")
        if self._closed:
            lane.dropped += 1
            return False
        if lane.task is None:
            lane.task = asyncio.get_running_loop().create_task(
                self._work(lane), name=f"tlsward-notify-{notification.receiver}")
        accepted = True
        if len(lane.queue) >= self.queue_size:
            lane.dropped += 1
            reminder = next((i for i, queued in enumerate(lane.queue) if queued.kind is NotificationKind.REMINDER),
                            None)
            if reminder is not None:
                del lane.queue[reminder]
            elif notification.kind is NotificationKind.REMINDER:
                accepted = False
            else:
                lane.queue.popleft()
            log.warning("notify queue for %r is full (%d): dropped a notification", notification.receiver,
                        self.queue_size)
        if accepted:
            lane.queue.append(notification)
            lane.wake.set()
        return accepted

    def stats(self) -> dict[str, ReceiverStats]:
        """A snapshot of every receiver's counters, keyed by receiver name."""
        return {
            name: ReceiverStats(name, lane.sent, lane.failed, lane.retried, lane.dropped,
                                len(lane.queue) + (lane.in_flight is not None), lane.last_error)
            for name, lane in self._lanes.items()
        }

    async def _work(self, lane: _Lane) -> None:
        while True:
            if not lane.queue:
                if self._closed:
                    return
                lane.wake.clear()
                await lane.wake.wait()
                continue
            lane.in_flight = lane.queue.popleft()
            try:
                await self._deliver(lane, lane.in_flight)
            except asyncio.CancelledError:
                lane.dropped += 1      # close() gave up on it mid-send or mid-backoff
                raise
            finally:
                lane.in_flight = None

    async def _deliver(self, lane: _Lane, notification: Notification) -> None:
        attempt = 1
        while True:
            try:
                await lane.notifier.send(notification)
            except Exception as exc:   # a bug in one notifier must not kill its worker
                retryable, retry_after = _classify(exc)
                message = str(exc) if isinstance(exc, NotifyError) else \
                    f"receiver {lane.notifier.name!r}: {type(exc).__name__}: {exc}"
                lane.last_error = message
                if not retryable or attempt >= self.retry.max_attempts:
                    lane.failed += 1
                    log.warning("notification %s for %s not delivered after %d attempt(s): %s",
                                notification.kind.value, notification.alert.key, attempt, message)
                    return
                delay = self.retry.delay(attempt, self._random(), retry_after)
                lane.retried += 1
                log.info("%s; retry %d in %.1fs", message, attempt, delay)
                await self._sleep(delay)
                attempt += 1
            else:
                lane.sent += 1
                return

    async def close(self, timeout: float | None = None) -> bool:
        """Stop accepting, deliver what is queued within ``timeout`` seconds (default ``close_timeout``), then
        give up on the rest (counted as dropped) and release connections. True when everything was drained."""
        self._closed = True
        wait = self.close_timeout if timeout is None else timeout
        tasks = [lane.task for lane in self._lanes.values() if lane.task is not None]
        for lane in self._lanes.values():
            lane.wake.set()
        pending: set[asyncio.Task[None]] = set()
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=max(wait, 0.0))
        for task in pending:
            task.cancel()
        for task in pending:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for lane in self._lanes.values():
            lane.dropped += len(lane.queue)
            lane.queue.clear()
        for lane in self._lanes.values():
            try:
                await lane.notifier.aclose()
            except Exception as exc:
                log.warning("closing receiver %r: %s", lane.notifier.name, exc)
        return not pending

    async def __aenter__(self) -> Dispatcher:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()


def _classify(exc: Exception) -> tuple[bool, float | None]:
    """(retryable, retry_after): a :class:`DeliveryError` says; another NotifyError is taken as transient; any
    other exception is a bug, and retrying a bug only repeats it."""
    if isinstance(exc, DeliveryError):
        return exc.retryable, exc.retry_after
    return isinstance(exc, NotifyError), None
