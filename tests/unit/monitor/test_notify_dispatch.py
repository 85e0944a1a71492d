"""Dispatcher logic with in-process notifiers: queueing, drop order, backoff, isolation and shutdown.

The network side is covered by tests/integration/test_notifiers.py against real receivers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import pytest

from tests.unit.monitor.builders import Sleeps, make_notification
from tlsward.model.alerts import Notification, NotificationKind
from tlsward.model.errors import NotifyError, UsageError
from tlsward.monitor.notify.dispatch import Dispatcher, RetryPolicy
from tlsward.monitor.notify.senders import DeliveryError


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 10))


class FakeNotifier:
    """Raises the queued errors one per send, then succeeds; ``gate`` (when set) holds every send open."""

    def __init__(self, name: str, errors: list[Exception] | None = None, gate: asyncio.Event | None = None,
                 always: Exception | None = None) -> None:
        self._name = name
        self.errors = list(errors or [])
        self.always = always
        self.gate = gate
        self.attempts: list[Notification] = []
        self.delivered: list[Notification] = []
        self.closed = False

    @property
    def name(self) -> str:
        return self._name

    async def send(self, notification: Notification) -> None:
        self.attempts.append(notification)
        if self.gate is not None:
            await self.gate.wait()
        if self.always is not None:
            raise self.always
        if self.errors:
            raise self.errors.pop(0)
        self.delivered.append(notification)

    async def aclose(self) -> None:
        self.closed = True


def transient(detail: str = "HTTP 500 Internal Server Error", retry_after: float | None = None) -> DeliveryError:
    return DeliveryError("hook", "http://127.0.0.1:1", detail, retryable=True, retry_after=retry_after)


def test_retry_policy_delays_are_exponential_jittered_and_capped() -> None:
    policy = RetryPolicy(max_attempts=10, base_delay=1.0, max_delay=5.0)
    assert [policy.delay(n, 0.0) for n in (1, 2, 3, 4, 5)] == [0.5, 1.0, 2.0, 2.5, 2.5]
    assert [policy.delay(n, 0.999999) for n in (1, 2, 3)] == pytest.approx([1.0, 2.0, 4.0], abs=1e-4)
    assert policy.delay(9, 0.5) == 3.75
    assert policy.delay(1, 0.0, retry_after=3.0) == 3.0
    assert policy.delay(1, 0.0, retry_after=3600.0) == 5.0     # Retry-After is honoured up to max_delay
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)


def test_retries_with_backoff_then_sends() -> None:
    async def scenario() -> None:
        sleeps = Sleeps()
        hook = FakeNotifier("hook", errors=[transient(), transient()])
        dispatcher = Dispatcher([hook], retry=RetryPolicy(max_attempts=5, base_delay=1.0, max_delay=60.0),
                                sleep=sleeps, random=lambda: 0.5)
        assert dispatcher.submit(make_notification()) is True
        assert await dispatcher.close(5) is True
        assert sleeps.delays == [0.75, 1.5]
        assert len(hook.attempts) == 3 and len(hook.delivered) == 1
        stats = dispatcher.stats()["hook"]
        assert (stats.sent, stats.failed, stats.retried, stats.dropped, stats.queued) == (1, 0, 2, 0, 0)
        assert stats.last_error is not None and "HTTP 500" in stats.last_error
        assert hook.closed

    run(scenario())


def test_gives_up_after_max_attempts() -> None:
    async def scenario() -> None:
        sleeps = Sleeps()
        hook = FakeNotifier("hook", always=transient("connection refused"))
        dispatcher = Dispatcher([hook], retry=RetryPolicy(max_attempts=3, base_delay=1.0), sleep=sleeps,
                                random=lambda: 0.0)
        dispatcher.submit(make_notification())
        dispatcher.submit(make_notification(NotificationKind.RESOLVED))
        await dispatcher.close(5)
        stats = dispatcher.stats()["hook"]
        assert (stats.sent, stats.failed, stats.retried) == (0, 2, 4)
        assert len(hook.attempts) == 6
        assert sleeps.delays == [0.5, 1.0, 0.5, 1.0]
        assert stats.last_error == "receiver 'hook' (http://127.0.0.1:1): connection refused"

    run(scenario())


def test_permanent_errors_and_bugs_are_not_retried() -> None:
    async def scenario() -> None:
        sleeps = Sleeps()
        permanent = DeliveryError("hook", "http://x:80", "HTTP 400 Bad Request: bad label", retryable=False)
        hook = FakeNotifier("hook", errors=[permanent, RuntimeError("bug in a notifier")])
        dispatcher = Dispatcher([hook], sleep=sleeps)
        for _ in range(3):
            dispatcher.submit(make_notification())
        await dispatcher.close(5)
        stats = dispatcher.stats()["hook"]
        assert (stats.sent, stats.failed, stats.retried) == (1, 2, 0)      # the worker survived the bug
        assert sleeps.delays == []
        assert stats.last_error == "receiver 'hook': RuntimeError: bug in a notifier"

    run(scenario())


def test_a_plain_notify_error_counts_as_transient() -> None:
    async def scenario() -> None:
        hook = FakeNotifier("hook", errors=[NotifyError("receiver 'hook': flaky")])
        dispatcher = Dispatcher([hook], sleep=Sleeps())
        dispatcher.submit(make_notification())
        await dispatcher.close(5)
        assert (dispatcher.stats()["hook"].sent, dispatcher.stats()["hook"].retried) == (1, 1)

    run(scenario())


def test_retry_after_is_used() -> None:
    async def scenario() -> None:
        sleeps = Sleeps()
        hook = FakeNotifier("hook", errors=[transient("HTTP 429 Too Many Requests", retry_after=7.0)])
        dispatcher = Dispatcher([hook], retry=RetryPolicy(base_delay=1.0, max_delay=60.0), sleep=sleeps,
                                random=lambda: 0.0)
        dispatcher.submit(make_notification())
        await dispatcher.close(5)
        assert sleeps.delays == [7.0]

    run(scenario())


def test_full_queue_drops_the_oldest_reminder_first() -> None:
    async def scenario() -> None:
        gate = asyncio.Event()
        hook = FakeNotifier("hook", gate=gate)
        dispatcher = Dispatcher([hook], queue_size=3)
        firing = make_notification(NotificationKind.FIRING, summary="f1")
        r1 = make_notification(NotificationKind.REMINDER, summary="r1")
        r2 = make_notification(NotificationKind.REMINDER, summary="r2")
        for n in (firing, r1, r2):
            assert dispatcher.submit(n)
        resolved = make_notification(NotificationKind.RESOLVED, summary="res")
        assert dispatcher.submit(resolved)                         # r1 (oldest reminder) goes
        r3 = make_notification(NotificationKind.REMINDER, summary="r3")
        assert dispatcher.submit(r3)                               # r2 goes
        f2 = make_notification(NotificationKind.FIRING, summary="f2")
        assert dispatcher.submit(f2)                               # r3 goes
        r4 = make_notification(NotificationKind.REMINDER, summary="r4")
        assert dispatcher.submit(r4) is False                      # no reminder queued: the new one goes
        f3 = make_notification(NotificationKind.FIRING, summary="f3")
        assert dispatcher.submit(f3)                               # no reminder at all: the oldest goes
        assert dispatcher.stats()["hook"].dropped == 5
        gate.set()
        assert await dispatcher.close(5)
        assert [n.alert.summary for n in hook.delivered] == ["res", "f2", "f3"]
        assert dispatcher.stats()["hook"].sent == 3

    run(scenario())


def test_a_stuck_receiver_does_not_delay_the_others_and_close_gives_up() -> None:
    async def scenario() -> None:
        stuck = FakeNotifier("stuck", gate=asyncio.Event())            # never released
        ok = FakeNotifier("ok")
        dispatcher = Dispatcher([stuck, ok])
        for _ in range(3):
            dispatcher.submit(make_notification(receiver="stuck"))
        dispatcher.submit(make_notification(receiver="ok"))
        for _ in range(100):
            if ok.delivered:
                break
            await asyncio.sleep(0.01)
        assert len(ok.delivered) == 1 and not stuck.delivered
        assert dispatcher.stats()["stuck"].queued == 3
        assert await dispatcher.close(0.05) is False
        stats = dispatcher.stats()
        assert stats["stuck"].dropped == 3 and stats["stuck"].queued == 0     # 1 in flight + 2 queued
        assert stats["ok"].sent == 1 and stats["ok"].dropped == 0
        assert stuck.closed and ok.closed

    run(scenario())


def test_submit_is_sync_unknown_receivers_fail_and_closed_dispatchers_drop() -> None:
    async def scenario() -> None:
        dispatcher = Dispatcher([FakeNotifier("hook")])
        with pytest.raises(UsageError, match="no receiver named 'nope' \\(configured: hook\\)"):
            dispatcher.submit(make_notification(receiver="nope"))
        await dispatcher.close(1)
        assert dispatcher.submit(make_notification()) is False
        assert dispatcher.stats()["hook"].dropped == 1

    run(scenario())


def test_async_context_manager_drains() -> None:
    async def scenario() -> None:
        hook = FakeNotifier("hook")
        async with Dispatcher([hook]) as dispatcher:
            for _ in range(5):
                dispatcher.submit(make_notification())
        assert len(hook.delivered) == 5 and hook.closed

    run(scenario())


def test_duplicate_receiver_names_are_refused() -> None:
    with pytest.raises(UsageError, match="defined twice"):
        Dispatcher([FakeNotifier("a"), FakeNotifier("a")])
