"""Alert lifecycle: group contributions into alerts, compare with what is stored, and decide what to notify.

The rules, in the words an on-call engineer would use:
- one alert per problem (per certificate for expiry, across every endpoint serving it), firing -> resolved;
- a notification when it starts firing, again when it escalates (crosses a further expiry threshold), a
  reminder after the re-notify interval unless acknowledged, and one when it resolves;
- a replaced certificate resolves its alert; the new certificate gets its own alert only if it too is in trouble;
- silences and maintenance windows hold notifications back, never state: when the silence ends and the alert
  still fires, it is notified then;
- routes pick receivers by labels (owner, team, environment, rule, severity, route), first match wins.
What was notified is stored with the alert, so a restart neither repeats nor forgets a notification.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from tlsward.model.alerts import Alert, AlertRecord, AlertStatus, Notification, NotificationKind
from tlsward.model.monitor import AlertSettings, RouteRule, Silence
from tlsward.monitor.evaluate import Contribution
from tlsward.report.runbooks import anchor, runbook

MAX_ENDPOINTS_IN_ALERT = 200


@dataclass(frozen=True)
class Decision:
    """What one reconciliation round changes: records to store and notifications to send."""

    records: list[AlertRecord]
    notifications: list[Notification]


def group(contributions: Iterable[Contribution]) -> dict[str, list[Contribution]]:
    grouped: dict[str, list[Contribution]] = {}
    for contribution in contributions:
        grouped.setdefault(contribution.key, []).append(contribution)
    return grouped


def _labels(first: Contribution, owner: str | None, team: str | None) -> tuple[tuple[str, str], ...]:
    # No stage here: labels identify an alert in Alertmanager, and an escalation is the same alert.
    labels = {"rule": first.rule, "severity": first.severity.name.lower(), "route": str(first.route)}
    if owner:
        labels["owner"] = owner
    if team:
        labels["team"] = team
    if first.environment:
        labels["environment"] = first.environment
    return tuple(sorted(labels.items()))


def _most_common(values: Iterable[str | None]) -> str | None:
    counted = Counter(value for value in values if value)
    return counted.most_common(1)[0][0] if counted else None


# Alert rules that are not scan findings (chain.changed, probe.failing without a failure finding) are explained,
# with what to do, in the monitor's documentation.
MONITOR_RULES = "docs/monitor.md#alert-rules"


def runbook_url(contribution: Contribution, base: str) -> str | None:
    """The runbook section for an alert: the finding's own (``BASE#anchor``, the anchors docs/findings.md and the
    dashboards' /findings page share); ``probe.failing`` links the failure's finding (conn.refused ...)."""
    finding_id = contribution.runbook or contribution.rule
    return f"{base}#{anchor(finding_id)}" if runbook(finding_id) is not None else MONITOR_RULES


def build_alert(parts: Sequence[Contribution], status: AlertStatus, starts_at: dt.datetime,
                runbook_base: str = "docs/findings.md") -> Alert:
    """The alert for one key from every endpoint's contribution; the worst stage speaks for all. Owner and team
    are the most common among the endpoints (every endpoint is listed)."""
    worst = max(parts, key=lambda c: (c.stage_rank, c.severity))
    endpoints = sorted({c.endpoint for c in parts})
    owner = _most_common(c.owner for c in parts)
    team = _most_common(c.team for c in parts)
    shown = endpoints[:MAX_ENDPOINTS_IN_ALERT]
    more = f" (and {len(endpoints) - len(shown)} more)" if len(endpoints) > len(shown) else ""
    where = f" Endpoints ({len(endpoints)}): {', '.join(shown)}{more}." if len(endpoints) > 1 else ""
    return Alert(key=worst.key, rule=worst.rule, status=status, severity=worst.severity, route=worst.route,
                 summary=worst.summary + (f" on {len(endpoints)} endpoints" if len(endpoints) > 1 else ""),
                 description=worst.description + where, fix=worst.fix, endpoints=tuple(shown),
                 labels=_labels(worst, owner, team), owner=owner, team=team, starts_at=starts_at,
                 runbook_url=runbook_url(worst, runbook_base))


def receivers_for(alert: Alert, routes: Sequence[RouteRule], all_receivers: Sequence[str]) -> list[str]:
    """Receivers by the first matching route (more when a route says continue). No routes configured: every
    receiver. Routes configured but none matches: nobody (the CLI warns about such configs)."""
    if not routes:
        return list(all_receivers)
    labels = dict(alert.labels)
    chosen: list[str] = []
    for route in routes:
        if route.matches(labels):
            chosen.extend(name for name in route.receivers if name not in chosen)
            if not route.continue_matching:
                break
    return chosen


class AlertEngine:
    def __init__(self, settings: AlertSettings, routes: Sequence[RouteRule], receivers: Sequence[str]) -> None:
        self.settings = settings
        self.routes = tuple(routes)
        self.receivers = tuple(receivers)

    def _runbook_of(self, rule: str) -> str | None:
        """The runbook link of a stored alert (the table keeps the rule, not the link)."""
        return f"{self.settings.runbook_base}#{anchor(rule)}" if runbook(rule) is not None else MONITOR_RULES

    def _notify(self, alert: Alert, kind: NotificationKind) -> list[Notification]:
        return [Notification(alert, kind, receiver) for receiver in receivers_for(alert, self.routes, self.receivers)]

    @staticmethod
    def _silenced(alert: Alert, silences: Sequence[Silence], now: dt.datetime) -> bool:
        labels = dict(alert.labels)
        labels["alert_key"] = alert.key
        return any(silence.matches(labels, now) for silence in silences)

    def reconcile(self, stored: Mapping[str, AlertRecord], desired: Mapping[str, Sequence[Contribution]],
                  silences: Sequence[Silence], now: dt.datetime) -> Decision:
        """Compare the alerts that should fire (``desired``, by key) with ``stored``; the records that change
        and the notifications to send."""
        records: list[AlertRecord] = []
        notifications: list[Notification] = []
        for key, parts in desired.items():
            record = stored.get(key)
            firing = record is not None and record.alert.status is AlertStatus.FIRING
            starts_at = record.alert.starts_at if firing and record is not None and record.alert.starts_at else now
            alert = build_alert(parts, AlertStatus.FIRING, starts_at, self.settings.runbook_base)
            stage = max(parts, key=lambda c: c.stage_rank).stage
            if not firing or record is None:
                record = AlertRecord(alert=alert, stage=stage)
                kind: NotificationKind | None = NotificationKind.FIRING
            else:
                escalated = self.rank(stage) > self.rank(record.notified_stage)
                record = replace(record, alert=alert, stage=stage,
                                 acked_at=None if escalated else record.acked_at,
                                 acked_by=None if escalated else record.acked_by)
                kind = self._due(record, now)
            if kind is not None and not self._silenced(alert, silences, now):
                notifications.extend(self._notify(alert, kind))
                record = replace(record, notified_stage=record.stage, last_notified_at=now)
            records.append(record)
        for key, record in stored.items():
            if key in desired or record.alert.status is not AlertStatus.FIRING:
                continue
            if record.alert.rule == "chain.changed" and record.alert.starts_at is not None and \
                    now < record.alert.starts_at + dt.timedelta(seconds=self.settings.chain_change_hold_s) and \
                    record.acked_at is None:
                continue      # an issuer change stays visible for the hold period unless someone acked it
            resolved = replace(record.alert, status=AlertStatus.RESOLVED, ends_at=now,
                               runbook_url=record.alert.runbook_url or self._runbook_of(record.alert.rule))
            record = replace(record, alert=resolved)
            if record.notified_stage is not None and not self._silenced(resolved, silences, now):
                notifications.extend(self._notify(resolved, NotificationKind.RESOLVED))
                record = replace(record, last_notified_at=now)
            records.append(record)
        return Decision(records, notifications)

    def rank(self, stage: str | None) -> int:
        """How bad a stage is: 0 for never notified; expiry stages by threshold order, then expired."""
        if stage is None:
            return 0
        names = [f"{days:g}d" for days in self.settings.expiry.thresholds]
        if stage in names:
            return names.index(stage) + 1
        if stage == "expired":
            return len(names) + 1
        return 1

    def _due(self, record: AlertRecord, now: dt.datetime) -> NotificationKind | None:
        """What a still-firing alert needs: its first notification (it was silenced or unrouted), an escalation,
        a reminder, or nothing."""
        if self.rank(record.stage) > self.rank(record.notified_stage):
            return NotificationKind.FIRING       # first notification, or an escalation (never a de-escalation)
        if record.acked_at is not None or record.last_notified_at is None:
            return None
        if now - record.last_notified_at >= dt.timedelta(seconds=self.settings.renotify_s(record.alert.route)):
            return NotificationKind.REMINDER
        return None
