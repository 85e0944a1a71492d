"""Failure drills: break something on purpose, then check that tlsward detected it and alerted the right people.

A drill (:class:`DrillSpec`) is a sequence of phases (a healthy baseline, the fault, an escalation, the revert),
each started by one action, and a written expectation broken down into :class:`Expectation` items: a finding a
scan must report, an alert that must be notified (with its route and escalation stage), a baseline that must stay
quiet, or a trust store a rotation plan must name before the switch breaks it. Running it yields a
:class:`DrillReport`: what was observed and when, one :class:`Check` per expectation (met or missing, with the
time from the phase's fault to the observation) and pass/fail.

Plain frozen data, stdlib only: ``tlsward.drills`` runs drills, ``tlsward.cli.drill`` prints their reports.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "FINDINGS_DOC",
    "SCHEMA",
    "Check",
    "DrillReport",
    "DrillSpec",
    "Expectation",
    "ExpectationKind",
    "Observation",
    "ObservationKind",
    "PhaseRecord",
    "PhaseSpec",
    "Runbook",
    "finding_anchor",
    "report_document",
]

SCHEMA = "tlsward.drill-report/1"
FINDINGS_DOC = "docs/findings.md"

ExpectationKind = Literal["detection", "alert", "quiet", "prediction", "renewal"]
ObservationKind = Literal["scan", "alert", "prediction", "renewal", "action", "note"]


def finding_anchor(finding_id: str) -> str:
    """The anchor of a finding's runbook section in docs/findings.md (dots dropped): ``chain.incomplete`` ->
    ``chainincomplete``."""
    return re.sub(r"[^a-z0-9_-]", "", finding_id.lower())


@dataclass(frozen=True, slots=True)
class Runbook:
    """The runbook a drill exercises: a finding's section in docs/findings.md."""

    finding_id: str
    why: str = ""               # what the on-call engineer uses it for in this drill

    @property
    def link(self) -> str:
        return f"{FINDINGS_DOC}#{finding_anchor(self.finding_id)}"


@dataclass(frozen=True, slots=True)
class PhaseSpec:
    """One step of a drill: the action that starts it and how the monitor probes during it."""

    name: str
    action: str                 # what the drill does at the start of the phase, in words
    fault: bool = False         # the phase that injects the fault: its times are the drill's time to detect/alert
    deep: bool = False          # the monitor's probes in this phase are deep scans (versions, suites, policy)
    clock_offset_days: float = 0.0   # the monitor's clock runs this far ahead (time passing, for expiry)


@dataclass(frozen=True, slots=True)
class Expectation:
    """One thing that must be observed in one phase.

    - ``detection``: a scan (as recorded in the inventory) reports finding ``what``;
    - ``alert``: alert rule ``what`` is notified (``notification`` firing or resolved) to at least one receiver,
      with ``route`` and escalation ``stage`` when given;
    - ``quiet``: no alert is notified as firing in the phase (no false alarm);
    - ``prediction``: a rotation plan names trust store ``what`` as breaking at the issuer switch;
    - ``renewal``: tlsward's renewal of managed certificate ``what`` ran and ended verified (the endpoint serves
      the new certificate).
    """

    kind: ExpectationKind
    phase: str
    what: str = ""
    notification: str = "firing"
    route: str | None = None
    stage: str | None = None

    def describe(self) -> str:
        if self.kind == "detection":
            return f"a scan reports {self.what}"
        if self.kind == "quiet":
            return "no alert fires"
        if self.kind == "prediction":
            return f"the rotation plan names {self.what} as breaking at the issuer switch, before the switch"
        if self.kind == "renewal":
            return f"the renewal of {self.what} fires: renewed, deployed, reloaded and verified served"
        extra = ", ".join(part for part in (f"route {self.route}" if self.route else "",
                                            f"stage {self.stage}" if self.stage else "") if part)
        return f"alert {self.what} notified {self.notification}" + (f" ({extra})" if extra else "")


@dataclass(frozen=True, slots=True)
class DrillSpec:
    """A drill: the real situation, the written expectation, the runbooks it exercises, and its phases and
    expectations against the built-in lab and against a staging target (``--apply``/``--revert`` hooks)."""

    name: str
    title: str
    situation: str
    expectation: str
    runbooks: tuple[Runbook, ...]
    phases: tuple[PhaseSpec, ...]
    expectations: tuple[Expectation, ...]
    staging_phases: tuple[PhaseSpec, ...] = ()
    staging_expectations: tuple[Expectation, ...] = ()
    staging_hint: str = ""          # what --apply and --revert should do against a staging target
    notes: tuple[str, ...] = ()

    def phase(self, name: str, *, staging: bool = False) -> PhaseSpec:
        for phase in self.staging_phases if staging else self.phases:
            if phase.name == name:
                return phase
        raise KeyError(name)


@dataclass(frozen=True, slots=True)
class Observation:
    """Something the drill saw, ``at_s`` seconds after it started.

    ``scan``: one probe as the inventory recorded it (``finding_ids``, ``success``, ``failure``, ``deep``);
    ``alert``: one notification (``notification`` kind, ``route``, ``stage``, ``severity``, ``receivers``);
    ``prediction``: a trust store a rotation plan says breaks at a step (``what`` the store id, ``stage`` the step);
    ``renewal``: one renewal attempt as the inventory recorded it (``what`` the managed certificate, ``success``
    whether it ended verified, ``failure`` the outcome and reason otherwise);
    ``action``: what the drill did; ``note``: anything else worth reading.
    """

    kind: ObservationKind
    phase: str
    at_s: float
    what: str
    finding_ids: tuple[str, ...] = ()
    success: bool | None = None
    failure: str | None = None
    deep: bool = False
    notification: str | None = None
    route: str | None = None
    stage: str | None = None
    severity: str | None = None
    receivers: tuple[str, ...] = ()
    key: str | None = None
    summary: str = ""
    runbook_url: str | None = None


@dataclass(frozen=True, slots=True)
class PhaseRecord:
    """When a phase ran: ``fault_at_s`` is when its action had taken effect (the clock for time to detect)."""

    name: str
    action: str
    started_at_s: float
    fault_at_s: float
    ended_at_s: float
    rounds: int
    fault: bool = False
    clock_offset_days: float = 0.0


@dataclass(frozen=True, slots=True)
class Check:
    """One expectation, met or missing; ``after_fault_s``: from its phase's fault to the observation."""

    expectation: Expectation
    met: bool
    detail: str
    observed_at_s: float | None = None
    after_fault_s: float | None = None


@dataclass(frozen=True, slots=True)
class DrillReport:
    """The outcome of one drill run."""

    drill: str
    title: str
    mode: Literal["lab", "staging"]
    target: str
    started_at: dt.datetime
    duration_s: float
    expectation: str
    runbooks: tuple[Runbook, ...]
    phases: tuple[PhaseRecord, ...]
    checks: tuple[Check, ...]
    observations: tuple[Observation, ...]
    settings: tuple[str, ...] = ()      # monitor settings the drill used that differ from the defaults
    notes: tuple[str, ...] = ()
    error: str | None = None            # the drill could not run to the end (the checks say what was seen)

    @property
    def passed(self) -> bool:
        return self.error is None and bool(self.checks) and all(check.met for check in self.checks)

    @property
    def missing(self) -> tuple[Check, ...]:
        return tuple(check for check in self.checks if not check.met)

    def _first(self, kind: ExpectationKind) -> float | None:
        faults = {phase.name for phase in self.phases if phase.fault}
        times = [c.after_fault_s for c in self.checks if c.met and c.expectation.kind == kind
                 and c.expectation.phase in faults and c.after_fault_s is not None]
        return min(times) if times else None

    @property
    def time_to_detect_s(self) -> float | None:
        """From the fault to the first expected detection (None: nothing expected was detected)."""
        return self._first("detection")

    @property
    def time_to_alert_s(self) -> float | None:
        """From the fault to the first expected alert notification."""
        return self._first("alert")


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _expectation(e: Expectation) -> dict[str, Any]:
    return {"kind": e.kind, "phase": e.phase, "what": e.what, "notification": e.notification, "route": e.route,
            "stage": e.stage, "description": e.describe()}


def _observation(o: Observation) -> dict[str, Any]:
    base: dict[str, Any] = {"kind": o.kind, "phase": o.phase, "at_s": _seconds(o.at_s), "what": o.what}
    if o.kind == "scan":
        base.update(finding_ids=list(o.finding_ids), success=o.success, failure=o.failure, deep=o.deep)
    elif o.kind == "alert":
        base.update(notification=o.notification, route=o.route, stage=o.stage, severity=o.severity,
                    receivers=list(o.receivers), key=o.key, summary=o.summary, runbook_url=o.runbook_url)
    elif o.kind == "prediction":
        base.update(stage=o.stage, summary=o.summary)
    else:
        base.update(summary=o.summary)
    return base


def report_document(reports: list[DrillReport] | tuple[DrillReport, ...]) -> dict[str, Any]:
    """The ``tlsward.drill-report/1`` JSON document for one or more drill runs (fields are only ever added)."""
    return {
        "schema": SCHEMA,
        "passed": bool(reports) and all(r.passed for r in reports),
        "drills": [{
            "drill": r.drill,
            "title": r.title,
            "mode": r.mode,
            "target": r.target,
            "started_at": r.started_at.astimezone(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
            "duration_s": _seconds(r.duration_s),
            "passed": r.passed,
            "error": r.error,
            "expectation": r.expectation,
            "runbooks": [{"finding_id": b.finding_id, "link": b.link, "why": b.why} for b in r.runbooks],
            "time_to_detect_s": _seconds(r.time_to_detect_s),
            "time_to_alert_s": _seconds(r.time_to_alert_s),
            "missing": [c.expectation.describe() + f" [{c.expectation.phase}]: {c.detail}" for c in r.missing],
            "phases": [{"name": p.name, "action": p.action, "fault": p.fault, "started_at_s": _seconds(p.started_at_s),
                        "fault_at_s": _seconds(p.fault_at_s), "ended_at_s": _seconds(p.ended_at_s),
                        "rounds": p.rounds, "clock_offset_days": p.clock_offset_days} for p in r.phases],
            "checks": [{"expectation": _expectation(c.expectation), "met": c.met, "detail": c.detail,
                        "observed_at_s": _seconds(c.observed_at_s), "after_fault_s": _seconds(c.after_fault_s)}
                       for c in r.checks],
            "observations": [_observation(o) for o in r.observations],
            "settings": list(r.settings),
            "notes": list(r.notes),
        } for r in reports],
    }
