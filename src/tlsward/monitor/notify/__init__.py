"""Notifiers for the monitor's alerts: receiver config, payloads per receiver kind, and the dispatcher.

``receivers_from_mapping`` validates the config, ``Dispatcher.from_configs`` builds one notifier per receiver,
and the monitor calls ``dispatcher.submit(notification)`` (sync, never blocks) and ``await dispatcher.close()``.
"""

from __future__ import annotations

from tlsward.monitor.notify.config import (
    ReceiverConfig,
    ReceiverKind,
    SmtpConfig,
    SmtpSecurity,
    receivers_from_mapping,
)
from tlsward.monitor.notify.dispatch import Dispatcher, ReceiverStats, RetryPolicy
from tlsward.monitor.notify.senders import (
    AlertmanagerNotifier,
    DeliveryError,
    EmailNotifier,
    Notifier,
    PagerDutyNotifier,
    SlackNotifier,
    WebhookNotifier,
    build_notifier,
)

__all__ = [
    "AlertmanagerNotifier",
    "DeliveryError",
    "Dispatcher",
    "EmailNotifier",
    "Notifier",
    "PagerDutyNotifier",
    "ReceiverConfig",
    "ReceiverKind",
    "ReceiverStats",
    "RetryPolicy",
    "SlackNotifier",
    "SmtpConfig",
    "SmtpSecurity",
    "WebhookNotifier",
    "build_notifier",
    "receivers_from_mapping",
]
