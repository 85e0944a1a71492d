"""For the notifier tests: one realistic certificate alert (overridable per test) and a sleep that does not wait."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from tlsward.model.alerts import Alert, AlertStatus, Notification, NotificationKind, Route
from tlsward.model.findings import Severity

FINGERPRINT = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
STARTED = dt.datetime(2031, 5, 17, 12, 0, 0, tzinfo=dt.UTC)
ENDED = dt.datetime(2031, 5, 18, 9, 30, 0, tzinfo=dt.UTC)


def make_alert(**overrides: Any) -> Alert:
    fields: dict[str, Any] = {
        "key": f"cert.expiring:{FINGERPRINT}:7d",
        "rule": "cert.expiring",
        "status": AlertStatus.FIRING,
        "severity": Severity.HIGH,
        "route": Route.PAGE,
        "summary": "Certificate for api.example.test expires in 6 days",
        "description": "CN=api.example.test, issued by Example CA, is valid until 2031-05-23T12:00:00Z.",
        "fix": "Renew the certificate and reload the servers listed.",
        "endpoints": ("api.example.test:443", "10.0.0.2:443", "10.0.0.3:443", "10.0.0.4:443", "10.0.0.5:443"),
        "labels": (("environment", "prod"), ("owner", "alice"), ("team", "payments")),
        "owner": "alice",
        "team": "payments",
        "starts_at": STARTED,
        "runbook_url": "https://runbooks.example.test/cert-expiring",
    }
    fields.update(overrides)
    return Alert(**fields)


def make_notification(kind: NotificationKind = NotificationKind.FIRING, receiver: str = "hook",
                      **overrides: Any) -> Notification:
    if kind is NotificationKind.RESOLVED:
        overrides.setdefault("status", AlertStatus.RESOLVED)
        overrides.setdefault("ends_at", ENDED)
    return Notification(make_alert(**overrides), kind, receiver)


class Sleeps:
    """An injected ``sleep`` for the dispatcher: records the backoff delays and returns at once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        await asyncio.sleep(0)
