"""JSON over the monitor's alerts and silences: the objects of ``tlsward alerts list --json`` and of
``/api/v1/alerts`` and ``/api/v1/silences``. Times are ``datetime.isoformat()`` (UTC offset included)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from tlsward.model.alerts import AlertRecord
from tlsward.model.monitor import Silence
from tlsward.report.runbooks import DOC_PATH, anchor, runbook


def _time(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def alert_json(record: AlertRecord) -> dict[str, Any]:
    """One alert as the monitor keeps it: what it says, whom it is for, and how far it was notified."""
    alert = record.alert
    return {
        "key": alert.key, "rule": alert.rule, "status": str(alert.status),
        "severity": alert.severity.name.lower(), "route": str(alert.route), "stage": record.stage,
        "summary": alert.summary, "description": alert.description, "fix": alert.fix,
        "runbook": f"{DOC_PATH}#{anchor(alert.rule)}" if runbook(alert.rule) is not None else
                   "docs/monitor.md#alert-rules",
        "endpoints": list(alert.endpoints), "labels": dict(alert.labels), "owner": alert.owner,
        "team": alert.team, "starts_at": _time(alert.starts_at), "ends_at": _time(alert.ends_at),
        "notified_stage": record.notified_stage, "last_notified_at": _time(record.last_notified_at),
        "acked_by": record.acked_by}


def silence_json(silence: Silence, now: dt.datetime) -> dict[str, Any]:
    """A silence or maintenance window; ``active`` at ``now`` (false: scheduled, or over)."""
    return {"id": silence.id, "matchers": dict(silence.matchers), "starts_at": silence.starts_at.isoformat(),
            "ends_at": silence.ends_at.isoformat(), "created_by": silence.created_by, "comment": silence.comment,
            "active": silence.active(now)}
