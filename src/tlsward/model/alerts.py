"""Alerts: what the monitor tells people, grouped so that one problem pages one person once.

An alert is identified by ``key`` (for certificate alerts: the rule, the certificate fingerprint and the
threshold crossed), so every endpoint serving that certificate lands in one alert. Plain frozen data:
``tlsward.monitor`` evaluates, stores and routes alerts; notifiers turn them into payloads.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

from tlsward.model.findings import Severity


class AlertStatus(StrEnum):
    FIRING = "firing"
    RESOLVED = "resolved"


class Route(StrEnum):
    """Page wakes someone up now; ticket goes to the owner's queue."""

    PAGE = "page"
    TICKET = "ticket"


class NotificationKind(StrEnum):
    FIRING = "firing"           # first notification of a firing alert
    REMINDER = "reminder"       # still firing after the re-notify interval
    RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert, as it is sent. ``labels`` are low-cardinality routing facts (owner, team, environment,
    rule, severity, route); everything long goes into ``summary``/``description``."""

    key: str                                  # stable identity, e.g. "cert.expiring:<sha256>:7d"
    rule: str                                 # the alert rule / finding id, e.g. "cert.expiring"
    status: AlertStatus
    severity: Severity
    route: Route
    summary: str                              # one line a person reads first
    description: str                          # evidence, in plain words
    fix: str = ""                             # what to do
    endpoints: tuple[str, ...] = ()           # every endpoint this alert covers
    labels: tuple[tuple[str, str], ...] = ()  # sorted (name, value) pairs
    owner: str | None = None
    team: str | None = None
    starts_at: dt.datetime | None = None      # UTC
    ends_at: dt.datetime | None = None        # UTC, set once resolved
    runbook_url: str | None = None

    def label(self, name: str) -> str | None:
        return dict(self.labels).get(name)


@dataclass(frozen=True, slots=True)
class Notification:
    """One message about one alert to one receiver."""

    alert: Alert
    kind: NotificationKind
    receiver: str                             # the configured receiver's name


@dataclass(frozen=True, slots=True)
class AlertRecord:
    """An alert as the monitor keeps it between rounds and restarts: the alert, how far it has escalated
    (``stage``, e.g. the expiry threshold crossed: "30d", "7d"), what was last notified, and acks."""

    alert: Alert
    stage: str = ""
    notified_stage: str | None = None          # None: never notified (silenced, or no receiver matched yet)
    last_notified_at: dt.datetime | None = None
    acked_at: dt.datetime | None = None
    acked_by: str | None = None
    updated_at: dt.datetime | None = None
    id: int | None = None
