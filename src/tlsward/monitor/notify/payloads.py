"""What each receiver kind is sent: pure functions from a notification to a payload, so shapes are unit-tested.

Shared conventions: times are RFC 3339 UTC with second precision (``2031-05-17T12:00:00Z``; a naive datetime is
taken as UTC, as the model stores UTC only); severities are lowercase names (``"high"``); free text is capped
where a receiver has a limit, so an oversized description can never make a receiver reject the alert.

Generic webhook (``POST``, ``application/json``), shape version :data:`WEBHOOK_VERSION` (semver: fields are only
added within a major version)::

    {"version": "1.0.0", "source": "tlsward", "receiver": "ops-hook",
     "kind": "firing" | "reminder" | "resolved",          # why this message was sent
     "status": "firing" | "resolved",                     # the alert's state
     "alert": {"key": "...", "rule": "cert.expiring", "status": "firing", "severity": "high",
               "route": "page" | "ticket", "summary": "...", "description": "...", "fix": "...",
               "endpoints": ["api.example.com:443", ...], "labels": {"env": "prod", ...},
               "owner": "..." | null, "team": "..." | null, "starts_at": "2031-05-17T12:00:00Z" | null,
               "ends_at": "..." | null, "runbook_url": "..." | null}}
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any

from tlsward.model.alerts import Alert, AlertStatus, Notification, NotificationKind
from tlsward.model.findings import Severity

__all__ = [
    "MAX_ALERT_KEY_LABEL",
    "PAGERDUTY_SEVERITY",
    "WEBHOOK_VERSION",
    "alert_key_label",
    "alertmanager_alerts",
    "email_message",
    "endpoint_list",
    "one_line",
    "pagerduty_event",
    "rfc3339",
    "slack_message",
    "status_tag",
    "webhook_payload",
]

WEBHOOK_VERSION = "1.0.0"
SOURCE = "tlsward"
MAX_ALERT_KEY_LABEL = 100          # Alertmanager label values are indexed: keep the key label short
ONE_LINE_ENDPOINTS = 3
BLOCK_ENDPOINTS = 10
ANNOTATION_ENDPOINTS = 50
SLACK_SECTION_LIMIT = 3000         # Slack rejects a section text over 3000 characters
PAGERDUTY_SUMMARY_LIMIT = 1024
PAGERDUTY_DEDUP_LIMIT = 255
SUBJECT_LIMIT = 200

PAGERDUTY_SEVERITY: dict[Severity, str] = {
    Severity.CRITICAL: "critical",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "warning",
    Severity.INFO: "info",
}
_LABEL_NAME_BAD = re.compile(r"[^A-Za-z0-9_]")


def rfc3339(value: dt.datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ``; a naive datetime is taken as UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _maybe_time(value: dt.datetime | None) -> str | None:
    return None if value is None else rfc3339(value)


def _severity(alert: Alert) -> str:
    return alert.severity.name.lower()


def is_resolved(notification: Notification) -> bool:
    """Either side saying resolved wins: a resolve must never be sent as a trigger."""
    return notification.kind is NotificationKind.RESOLVED or notification.alert.status is AlertStatus.RESOLVED


def status_tag(notification: Notification) -> str:
    """``[FIRING page]``, ``[REMINDER page]`` or ``[RESOLVED]``: what a person or a mail filter keys on."""
    if is_resolved(notification):
        return "[RESOLVED]"
    word = "REMINDER" if notification.kind is NotificationKind.REMINDER else "FIRING"
    return f"[{word} {notification.alert.route.value}]"


def endpoint_list(endpoints: Sequence[str], limit: int) -> str:
    """``a, b, c and 4 more``: a long list must not push the summary off a phone screen."""
    shown = ", ".join(endpoints[:limit])
    rest = len(endpoints) - limit
    return f"{shown} and {rest} more" if rest > 0 else shown


def _flat(text: str) -> str:
    return " ".join(text.split())


def _cap(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def one_line(notification: Notification) -> str:
    """``[FIRING page] HIGH: summary | endpoints: a, b, c and 2 more | fix: ...`` (no fix once resolved)."""
    alert = notification.alert
    parts = [f"{status_tag(notification)} {alert.severity.name}: {_flat(alert.summary)}"]
    if alert.endpoints:
        parts.append(f"endpoints: {endpoint_list(alert.endpoints, ONE_LINE_ENDPOINTS)}")
    if alert.fix and not is_resolved(notification):
        parts.append(f"fix: {_flat(alert.fix)}")
    return " | ".join(parts)


def alert_key_label(key: str) -> str:
    """The alert key, or for a long one a prefix plus a hash of the whole: bounded yet still unique."""
    if len(key) <= MAX_ALERT_KEY_LABEL:
        return key
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return key[: MAX_ALERT_KEY_LABEL - 17] + "~" + digest


# -- generic webhook ---------------------------------------------------------------------------------------------


def webhook_payload(notification: Notification) -> dict[str, Any]:
    """The versioned JSON document described in the module docstring."""
    alert = notification.alert
    return {
        "version": WEBHOOK_VERSION,
        "source": SOURCE,
        "receiver": notification.receiver,
        "kind": notification.kind.value,
        "status": alert.status.value,
        "alert": {
            "key": alert.key,
            "rule": alert.rule,
            "status": alert.status.value,
            "severity": _severity(alert),
            "route": alert.route.value,
            "summary": alert.summary,
            "description": alert.description,
            "fix": alert.fix,
            "endpoints": list(alert.endpoints),
            "labels": dict(alert.labels),
            "owner": alert.owner,
            "team": alert.team,
            "starts_at": _maybe_time(alert.starts_at),
            "ends_at": _maybe_time(alert.ends_at),
            "runbook_url": alert.runbook_url,
        },
    }


# -- Slack-compatible incoming webhook ---------------------------------------------------------------------------


def _mrkdwn(text: str) -> str:
    """Slack's three control characters; anything else is shown as written."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": _cap(text, SLACK_SECTION_LIMIT)}}


def slack_message(notification: Notification) -> dict[str, Any]:
    """``{"text": one_line, "blocks": [...]}``: ``text`` is the notification preview and the fallback."""
    alert = notification.alert
    resolved = is_resolved(notification)
    blocks: list[dict[str, Any]] = [
        _section(f"*{_mrkdwn(status_tag(notification))} {alert.severity.name}* {_mrkdwn(_flat(alert.summary))}"),
    ]
    if alert.description:
        blocks.append(_section(_mrkdwn(alert.description)))
    if alert.endpoints:
        shown = "\n".join(_mrkdwn(e) for e in alert.endpoints[:BLOCK_ENDPOINTS])
        more = len(alert.endpoints) - BLOCK_ENDPOINTS
        if more > 0:
            shown += f"\nand {more} more"
        blocks.append(_section(f"*Endpoints ({len(alert.endpoints)})*\n{shown}"))
    if alert.fix and not resolved:
        blocks.append(_section(f"*Fix*\n{_mrkdwn(alert.fix)}"))
    context = [f"rule {_mrkdwn(alert.rule)}", f"key {_mrkdwn(alert.key)}"]
    if alert.owner or alert.team:
        context.append("owner " + _mrkdwn(" / ".join(x for x in (alert.owner, alert.team) if x)))
    if alert.starts_at is not None:
        context.append(f"since {rfc3339(alert.starts_at)}")
    if resolved and alert.ends_at is not None:
        context.append(f"resolved {rfc3339(alert.ends_at)}")
    if alert.runbook_url and alert.runbook_url.startswith(("http://", "https://")) \
            and not any(c in alert.runbook_url for c in "|<> "):
        context.append(f"<{alert.runbook_url}|runbook>")
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": _cap(" | ".join(context), 3000)}]})
    return {"text": _mrkdwn(one_line(notification)), "blocks": blocks}


# -- PagerDuty Events API v2 -------------------------------------------------------------------------------------


def pagerduty_event(notification: Notification, routing_key: str) -> dict[str, Any]:
    """A trigger carries the full payload; a resolve needs only the routing and dedup keys (Events API v2)."""
    alert = notification.alert
    event: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": "resolve" if is_resolved(notification) else "trigger",
        "dedup_key": _cap(alert.key, PAGERDUTY_DEDUP_LIMIT),
    }
    if event["event_action"] == "resolve":
        return event
    details: dict[str, Any] = {
        "alert_key": alert.key,
        "rule": alert.rule,
        "severity": _severity(alert),
        "route": alert.route.value,
        "notification": notification.kind.value,
        "description": alert.description,
        "fix": alert.fix,
        "endpoints": list(alert.endpoints),
        "labels": dict(alert.labels),
    }
    for name in ("owner", "team", "runbook_url"):
        if getattr(alert, name):
            details[name] = getattr(alert, name)
    payload: dict[str, Any] = {
        "summary": _cap(_flat(alert.summary), PAGERDUTY_SUMMARY_LIMIT) or alert.rule,
        "source": alert.endpoints[0] if alert.endpoints else SOURCE,
        "severity": PAGERDUTY_SEVERITY[alert.severity],
        "class": alert.rule,
        "custom_details": details,
    }
    if alert.starts_at is not None:
        payload["timestamp"] = rfc3339(alert.starts_at)
    if alert.team:
        payload["group"] = alert.team
    event["payload"] = payload
    event["client"] = SOURCE
    if alert.runbook_url:
        event["links"] = [{"href": alert.runbook_url, "text": "Runbook"}]
    return event


# -- Prometheus Alertmanager API v2 ------------------------------------------------------------------------------


def _label_name(name: str) -> str | None:
    """Alertmanager accepts ``[a-zA-Z_][a-zA-Z0-9_]*`` and reserves names starting ``__``."""
    cleaned = _LABEL_NAME_BAD.sub("_", name)
    if not cleaned or cleaned.startswith("__"):
        return None
    return "_" + cleaned if cleaned[0].isdigit() else cleaned


def alertmanager_alerts(
    notification: Notification,
    *,
    now: dt.datetime,
    generator_url: str | None = None,
    firing_ttl: float | None = None,
) -> list[dict[str, Any]]:
    """The body of ``POST /api/v2/alerts``: one alert. The alert's own labels come first; the fixed ones
    (``alertname`` = rule, ``severity``, ``route``, ``owner``, ``team``, ``alert_key``) override them, so routing
    in Alertmanager can rely on them. Resolved alerts carry ``endsAt`` (the alert's ``ends_at``, else ``now``);
    firing ones carry ``now + firing_ttl`` when configured, else none (Alertmanager's ``resolve_timeout``)."""
    alert = notification.alert
    labels: dict[str, str] = {}
    for name, value in alert.labels:
        cleaned = _label_name(name)
        if cleaned and value:
            labels[cleaned] = _cap(value, 1024)
    labels.update({"alertname": alert.rule, "severity": _severity(alert), "route": alert.route.value})
    if alert.owner:
        labels["owner"] = alert.owner
    if alert.team:
        labels["team"] = alert.team
    labels["alert_key"] = alert_key_label(alert.key)
    annotations = {"summary": alert.summary, "description": alert.description}
    if alert.fix:
        annotations["fix"] = alert.fix
    if alert.runbook_url:
        annotations["runbook_url"] = alert.runbook_url
    if alert.endpoints:
        annotations["endpoints"] = endpoint_list(alert.endpoints, ANNOTATION_ENDPOINTS)
    body: dict[str, Any] = {
        "labels": labels,
        "annotations": annotations,
        "startsAt": rfc3339(alert.starts_at or now),
    }
    if is_resolved(notification):
        body["endsAt"] = rfc3339(alert.ends_at or now)
    elif firing_ttl is not None:
        body["endsAt"] = rfc3339(now + dt.timedelta(seconds=firing_ttl))
    if generator_url:
        body["generatorURL"] = generator_url
    return [body]


# -- email -------------------------------------------------------------------------------------------------------


def _thread_id(alert: Alert) -> str:
    """One thread id per incident (key + start): the same alert firing again next month is a new thread."""
    started = rfc3339(alert.starts_at) if alert.starts_at else ""
    digest = hashlib.sha256(f"{alert.key}\0{started}".encode()).hexdigest()[:32]
    return f"<{digest}.alert@tlsward.invalid>"


def email_subject(notification: Notification) -> str:
    """``[FIRING page] summary`` / ``[RESOLVED] summary``: one line, capped (a header cannot carry a newline)."""
    return _cap(f"{status_tag(notification)} {_flat(notification.alert.summary)}", SUBJECT_LIMIT)


def email_body(notification: Notification) -> str:
    """Plain text, most important first: what, where, what to do, then the identifiers."""
    alert = notification.alert
    resolved = is_resolved(notification)
    lines = [email_subject(notification), ""]
    if notification.kind is NotificationKind.REMINDER and not resolved:
        lines += ["This alert is still firing (reminder).", ""]
    if resolved:
        lines += ["This alert is resolved.", ""]
    lines.append(f"Severity: {alert.severity.name}    Route: {alert.route.value}    Rule: {alert.rule}")
    lines += ["", alert.summary]
    if alert.description:
        lines += ["", alert.description]
    if alert.endpoints:
        lines += ["", f"Endpoints ({len(alert.endpoints)}):"]
        lines += [f"  - {e}" for e in alert.endpoints[:ANNOTATION_ENDPOINTS]]
        if len(alert.endpoints) > ANNOTATION_ENDPOINTS:
            lines.append(f"  and {len(alert.endpoints) - ANNOTATION_ENDPOINTS} more")
    if alert.fix and not resolved:
        lines += ["", "Fix:", alert.fix]
    lines.append("")
    if alert.runbook_url:
        lines.append(f"Runbook: {alert.runbook_url}")
    if alert.owner or alert.team:
        lines.append(f"Owner: {alert.owner or '-'}    Team: {alert.team or '-'}")
    if alert.starts_at is not None:
        lines.append(f"Started: {rfc3339(alert.starts_at)}")
    if resolved and alert.ends_at is not None:
        lines.append(f"Resolved: {rfc3339(alert.ends_at)}")
    lines.append(f"Alert key: {alert.key}")
    lines += ["", "-- ", "Sent by tlsward."]
    return "\n".join(lines) + "\n"


def email_message(
    notification: Notification, *, sender: str, recipients: Sequence[str], now: dt.datetime
) -> EmailMessage:
    """A complete plain-text message. Every mail about one incident references the same (virtual) thread id, so
    mail clients group firing, reminders and resolve; each Message-ID stays unique (servers drop duplicates)."""
    alert = notification.alert
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Subject"] = email_subject(notification)
    message["Date"] = format_datetime(now if now.tzinfo else now.replace(tzinfo=dt.UTC))
    message["Message-ID"] = make_msgid(domain="tlsward.invalid")
    message["References"] = _thread_id(alert)
    message["X-Tlsward-Alert-Key"] = _flat(alert.key)
    message["X-Tlsward-Status"] = "resolved" if is_resolved(notification) else notification.kind.value
    message["Auto-Submitted"] = "auto-generated"     # RFC 3834: no vacation auto-replies to alerts
    message.set_content(email_body(notification))
    return message
