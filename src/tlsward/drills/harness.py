"""Running a drill's phases against the real monitor and recording what it saw.

Each probe round is one ``tlsward monitor --once`` as a fresh process would run it: a new
:class:`~tlsward.monitor.scheduler.Monitor` over the drill's own inventory (SQLite in the work directory), the
real scanner, alert rules, lifecycle and routes. Notifications are captured as the monitor hands them over (and,
when the user's monitor config names receivers, also delivered to those). After each round the harness reads
back what the inventory recorded (each probe's finding ids, with the time it ran) and what the alert table holds,
and turns both into :class:`~tlsward.model.drills.Observation` records.

Time: ``at_s`` is seconds since the drill started; a phase's ``fault_at_s`` is when its action had taken effect,
so "time to detect" is the time from the fault to the first scan that reported it (the scan's start), and "time
to alert" the time to the notification.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from tlsward.drills.checks import evaluate, phase_settled
from tlsward.engine import ScanOptions
from tlsward.model.alerts import AlertStatus, Notification
from tlsward.model.drills import DrillReport, DrillSpec, Expectation, Observation, PhaseRecord, PhaseSpec
from tlsward.model.inventory import EndpointRecord
from tlsward.model.monitor import MonitorConfig
from tlsward.monitor.notify import Dispatcher, ReceiverConfig
from tlsward.monitor.scheduler import Monitor
from tlsward.storage import open_store
from tlsward.storage.alerts import AlertStore
from tlsward.storage.lifecycle import LifecycleStore
from tlsward.storage.store import DEEP_PROBE_SUFFIX

__all__ = ["ROUND_TIMEOUT", "Harness", "MonitorSetup", "inventory_url"]

log = logging.getLogger("tlsward.drills")
ROUND_TIMEOUT = 120.0           # one monitor round, whatever the scans do
DELIVERY_TIMEOUT = 20.0         # notifications to the user's receivers, per round


def inventory_url(work: Path) -> str:
    """The drill's inventory (SQLite in the work directory): the monitor's, and the internal CA's."""
    return f"sqlite:///{work / 'drill-inventory.db'}"


@dataclass(frozen=True)
class MonitorSetup:
    """How the drill's monitor runs: its config, its receivers, the quick scanner's options (None: what the
    config says, as ``tlsward monitor`` does), and the settings that differ from the defaults, in words."""

    config: MonitorConfig
    receivers: tuple[str, ...]
    scan_options: Callable[[], ScanOptions | None] = lambda: None
    deliver_to: tuple[ReceiverConfig, ...] = ()       # the user's receivers: notifications are sent there too
    settings: tuple[str, ...] = ()


@dataclass
class _Phase:
    spec: PhaseSpec
    started_at_s: float
    fault_at_s: float | None = None
    rounds: int = 0


@dataclass
class Harness:
    """Records one drill run: phases, probe rounds, observations; :meth:`report` judges it."""

    spec: DrillSpec
    mode: Literal["lab", "staging"]
    endpoint: EndpointRecord
    db_url: str
    setup: MonitorSetup
    expectations: tuple[Expectation, ...]
    progress: Callable[[str], None] | None = None
    round_timeout: float = ROUND_TIMEOUT
    started_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    observations: list[Observation] = field(default_factory=list)
    phases: list[PhaseRecord] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    _t0: float = field(default_factory=time.monotonic)
    _current: _Phase | None = None
    _seen_probes: set[int] = field(default_factory=set)
    _seen_renewals: set[int] = field(default_factory=set)
    _raised: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        with open_store(self.db_url) as store:
            self.endpoint = store.upsert_endpoint(self.endpoint)

    # -- time and bookkeeping ---------------------------------------------------------------------------------

    def now_s(self) -> float:
        return time.monotonic() - self._t0

    def _say(self, text: str) -> None:
        log.info("%s: %s", self.spec.name, text)
        if self.progress is not None:
            self.progress(text)

    @property
    def phase_name(self) -> str:
        return self._current.spec.name if self._current else ""

    def observe(self, observation: Observation) -> None:
        self.observations.append(observation)

    def action(self, summary: str) -> None:
        self.observe(Observation("action", self.phase_name, self.now_s(), "action", summary=summary))
        self._say(f"[{self.phase_name}] {summary}")

    def note(self, text: str) -> None:
        self.notes.append(text)
        self.observe(Observation("note", self.phase_name, self.now_s(), "note", summary=text))

    def begin(self, phase: PhaseSpec) -> None:
        if self._current is not None:
            self.end()
        self._current = _Phase(phase, self.now_s())
        self._say(f"phase {phase.name}: {phase.action}")

    def fault_live(self) -> None:
        """The phase's action has taken effect: times to detect and alert count from here."""
        assert self._current is not None
        self._current.fault_at_s = self.now_s()

    def end(self) -> None:
        current, self._current = self._current, None
        if current is None:
            return
        fault_at = current.fault_at_s if current.fault_at_s is not None else current.started_at_s
        self.phases.append(PhaseRecord(current.spec.name, current.spec.action, current.started_at_s, fault_at,
                                       self.now_s(), current.rounds, current.spec.fault,
                                       current.spec.clock_offset_days))

    # -- probing -------------------------------------------------------------------------------------------------

    def settled(self) -> bool:
        return phase_settled(self.expectations, self.phase_name, self.observations)

    def probe(self, *, max_rounds: int, deadline_s: float | None = None, interval_s: float = 0.0,
              sleep: Callable[[float], None] = time.sleep) -> int:
        """Monitor rounds until every positive expectation of the phase is observed, ``max_rounds`` ran, or
        ``deadline_s`` (drill time) passed; at least one round. Returns the rounds run."""
        assert self._current is not None
        if self._current.fault_at_s is None:
            self.fault_live()
        ran = 0
        while ran < max_rounds:
            self.round()
            ran += 1
            if self.settled() or (deadline_s is not None and self.now_s() + interval_s >= deadline_s):
                break
            if interval_s > 0:
                sleep(interval_s)
        return ran

    def round(self) -> None:
        """One ``monitor --once`` round in this phase's mode (deep or quick, clock offset), then read back."""
        assert self._current is not None
        phase = self._current.spec
        captured: list[tuple[float, Notification]] = []
        offset = dt.timedelta(days=phase.clock_offset_days)
        setup = self.setup
        delivery_problems: list[str] = []

        async def run() -> None:
            dispatcher = Dispatcher.from_configs(setup.deliver_to) if setup.deliver_to else None

            def submit(notification: Notification) -> None:
                captured.append((self.now_s(), notification))
                if dispatcher is not None and notification.receiver in dispatcher.receivers:
                    dispatcher.submit(notification)

            monitor = Monitor(self.db_url, setup.config, submit=submit, receivers=setup.receivers,
                              scan_options=setup.scan_options(), clock=lambda: dt.datetime.now(dt.UTC) + offset,
                              force_deep=phase.deep)
            stop = asyncio.Event()
            timer = asyncio.get_running_loop().call_later(self.round_timeout, stop.set)
            try:
                await monitor.run(stop, once=True, drain_timeout=5.0)
            finally:
                timer.cancel()
                if dispatcher is not None:
                    if not await dispatcher.close(DELIVERY_TIMEOUT):
                        delivery_problems.append("some notifications were not delivered in time")
                    delivery_problems.extend(f"receiver {name}: {s.last_error}" for name, s in
                                             dispatcher.stats().items() if s.failed and s.last_error)

        asyncio.run(run())
        self._current.rounds += 1
        for problem in delivery_problems:
            self.note(problem)
        self._read_back(captured)

    def _read_back(self, captured: Sequence[tuple[float, Notification]]) -> None:
        phase = self.phase_name
        with open_store(self.db_url) as store:
            probes = store.observations(self.endpoint.target, limit=50)
            records = {record.alert.key: record for record in AlertStore(store).load()}
            renewals = LifecycleStore(store).history(limit=50)
        for event in reversed(renewals):                     # oldest first
            if event.id is None or event.id in self._seen_renewals:
                continue
            self._seen_renewals.add(event.id)
            finished = event.finished_at if event.finished_at.tzinfo else event.finished_at.replace(tzinfo=dt.UTC)
            served = f"{event.new_sha256[:16]}" if event.new_sha256 else "-"
            summary = (f"{event.certificate}: {event.outcome.value} (new certificate {served}, endpoints "
                       f"{', '.join(event.endpoints) or '-'})" + (f": {event.reason}" if event.reason else ""))
            self.observe(Observation("renewal", phase, (finished - self.started_at).total_seconds(), event.certificate,
                                     success=event.outcome.ok, failure=None if event.outcome.ok else
                                     f"{event.outcome.value}: {event.reason}", summary=summary))
            self._say(f"[{phase}] renewal {summary}")
        for probe in reversed(probes):                       # oldest first
            if probe.id is None or probe.id in self._seen_probes:
                continue
            self._seen_probes.add(probe.id)
            observed = probe.observed_at if probe.observed_at.tzinfo else probe.observed_at.replace(tzinfo=dt.UTC)
            deep = (probe.probe_id or "").endswith(DEEP_PROBE_SUFFIX)
            self.observe(Observation("scan", phase, (observed - self.started_at).total_seconds(), probe.target,
                                     finding_ids=tuple(probe.finding_ids), success=probe.success,
                                     failure=probe.failure_kind, deep=deep))
            found = ", ".join(probe.finding_ids) or "no findings"
            self._say(f"[{phase}] {'deep scan' if deep else 'probe'}: "
                      f"{found if probe.success else f'failed ({probe.failure_kind})'}")
        grouped: dict[tuple[str, str], tuple[float, Notification, list[str]]] = {}
        for at, notification in captured:
            slot = (notification.alert.key, notification.kind.value)
            if slot not in grouped:
                grouped[slot] = (at, notification, [])
            grouped[slot][2].append(notification.receiver)
        for (key, kind), (at, notification, receivers) in grouped.items():
            alert = notification.alert
            record = records.get(key)
            self.observe(Observation(
                "alert", phase, at, alert.rule, notification=kind, route=alert.route.value,
                stage=(record.stage or None) if record else None, severity=alert.severity.name.lower(),
                receivers=tuple(receivers), key=key, summary=alert.summary, runbook_url=alert.runbook_url))
            self._say(f"[{phase}] alert {alert.rule} {kind} ({alert.route.value}"
                      f"{', ' + record.stage if record and record.stage else ''}) -> {', '.join(receivers)}")
        notified = {key for key, _ in grouped}
        for key, record in records.items():      # raised but never notified: silenced, or routed to nobody
            if record.alert.status is AlertStatus.FIRING and record.notified_stage is None \
                    and key not in notified and key not in self._raised:
                self._raised.add(key)
                alert = record.alert
                self.observe(Observation("alert", phase, self.now_s(), alert.rule, notification=None,
                                         route=alert.route.value, stage=record.stage or None,
                                         severity=alert.severity.name.lower(), key=key,
                                         summary=f"raised, not notified: {alert.summary}"))

    # -- the outcome -------------------------------------------------------------------------------------------

    def report(self, *, target: str, error: str | None = None, notes: Sequence[str] = ()) -> DrillReport:
        self.end()
        checks = evaluate(self.expectations, self.phases, self.observations)
        return DrillReport(
            drill=self.spec.name, title=self.spec.title, mode=self.mode, target=target, started_at=self.started_at,
            duration_s=self.now_s(), expectation=self.spec.expectation, runbooks=self.spec.runbooks,
            phases=tuple(self.phases), checks=checks, observations=tuple(self.observations),
            settings=self.setup.settings, notes=(*self.spec.notes, *notes, *self.notes), error=error)
