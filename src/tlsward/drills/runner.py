"""Running a drill end to end: against the built-in lab (a loopback endpoint and PKI responder the drill
controls), or against a staging target the user names, whose fault is injected and removed by the user's
``--apply`` and ``--revert`` commands.

Everything is bounded: each monitor round by :data:`~tlsward.drills.harness.ROUND_TIMEOUT`, a lab drill by
:data:`LAB_DRILL_TIMEOUT`, each hook by ``hook_timeout`` and each staging phase by ``detect_timeout``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from tlsward.drills.catalogue import drill_named
from tlsward.drills.harness import Harness, MonitorSetup, inventory_url
from tlsward.drills.loopback import LoopbackLab
from tlsward.drills.scenarios import LAB_RECEIVERS, LAB_ROUTES, ROUTES_SETTING, SCENARIOS
from tlsward.engine import ScanOptions, trust_stores
from tlsward.model.alerts import Route
from tlsward.model.drills import DrillReport, Expectation, Observation, PhaseSpec
from tlsward.model.errors import Error, UsageError
from tlsward.model.inventory import EndpointRecord
from tlsward.model.monitor import MonitorConfig
from tlsward.model.target import Target
from tlsward.monitor.config import LoadedConfig

__all__ = ["LAB_DRILL_TIMEOUT", "StagingOptions", "run_lab_drill", "run_staging_drill"]

LAB_DRILL_TIMEOUT = 180.0
LAB_MAX_ROUNDS = 3            # per phase: one round normally settles it on loopback
OUTPUT_TAIL = 400             # characters of a hook's output kept in the report
Progress = Callable[[str], None]


@contextlib.contextmanager
def _work_dir(work_dir: Path | None) -> Iterator[Path]:
    if work_dir is not None:
        work_dir.mkdir(parents=True, exist_ok=True)
        yield work_dir
        return
    with tempfile.TemporaryDirectory(prefix="tlsward-drill-") as tmp:
        yield Path(tmp)


def _db_url(work: Path) -> str:
    """A fresh inventory for every run: what an earlier run in the same work directory recorded must not be read
    back as this run's observations."""
    url = inventory_url(work)
    db = Path(url.removeprefix("sqlite:///"))
    for leftover in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        leftover.unlink(missing_ok=True)
    return url


def run_lab_drill(name: str, *, work_dir: Path | None = None, progress: Progress | None = None) -> DrillReport:
    """Run drill ``name`` against the built-in lab; never raises for what the drill finds (a failed expectation,
    a monitor error): those are in the report."""
    spec = drill_named(name)
    scenario = SCENARIOS[name]()
    with _work_dir(work_dir) as work, LoopbackLab(work / "lab") as lab:
        db_url = _db_url(work)        # fresh before the setup, which may record in it (the drill's internal CA)
        setup = scenario.setup(lab, work)
        endpoint = EndpointRecord(target=lab.target, host=lab.sni, port=lab.port, sni=lab.sni, connect=lab.host,
                                  owner="drill", team="drills", environment="lab")
        harness = Harness(spec, "lab", endpoint, db_url, setup, spec.expectations, progress=progress)
        deadline = LAB_DRILL_TIMEOUT
        error = None
        try:
            for phase in spec.phases:
                if harness.now_s() >= deadline:
                    raise TimeoutError(f"the drill ran out of time ({deadline:.0f} s) before phase {phase.name}")
                harness.begin(phase)
                scenario.actions[phase.name](lab, harness)
                harness.fault_live()
                harness.probe(max_rounds=LAB_MAX_ROUNDS, deadline_s=deadline)
        except (Error, OSError, TimeoutError, ValueError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        return harness.report(target=f"lab ({lab.target} on {lab.host})", error=error)


# -- staging ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StagingOptions:
    """A staging target and how to break it. ``apply``/``revert`` are shell commands run on this host."""

    target: str
    apply: str
    revert: str | None = None
    sni: str | None = None
    connect: str | None = None
    ca_files: tuple[str, ...] = ()
    policy: str = "mozilla-intermediate"
    stores: tuple[str, ...] = ()          # trust bundles of client fleets (ca-rotation: legacy and updated)
    old_root: str | None = None           # ca-rotation: the root being retired (PEM)
    new_root: str | None = None           # ca-rotation: the root taking over (PEM)
    detect_timeout: float = 300.0         # per phase: how long to keep probing for what is expected
    interval: float = 10.0                # between probe rounds
    hook_timeout: float = 120.0
    loaded: LoadedConfig | None = None    # the user's monitor config (alert settings, routes, receivers)
    timeout: float = 5.0                  # per probe


def _run_hook(harness: Harness, what: str, command: str, timeout: float) -> None:
    """Run a hook through the shell in its own process group, bounded: on timeout the whole group is killed (a
    hook's children must not outlive it). A non-zero exit or a timeout raises :class:`UsageError`."""
    harness.action(f"{what}: {command}")
    started = time.monotonic()
    child = subprocess.Popen(command, shell=True, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,  # noqa: S602
                             stderr=subprocess.STDOUT, start_new_session=True)
    try:
        raw, _ = child.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.communicate(timeout=5.0)
        raise UsageError(f"the {what} command did not finish within {timeout:g}s: {command}") from None
    tail = raw.decode("utf-8", "replace").strip()[-OUTPUT_TAIL:]
    harness.observe(Observation("action", harness.phase_name, harness.now_s(), what,
                                summary=f"{what} exited {child.returncode} after {time.monotonic() - started:.1f}s"
                                        + (f": {tail}" if tail else "")))
    if child.returncode != 0:
        raise UsageError(f"the {what} command exited {child.returncode}: {command}" + (f" ({tail})" if tail else ""))


def _staging_setup(name: str, options: StagingOptions) -> MonitorSetup:
    loaded = options.loaded
    base = loaded.config if loaded is not None else MonitorConfig()
    probes = replace(base.probes, timeout_s=options.timeout, jitter=0.0, deep_interval_s=0.0,
                     ca_files=(*base.probes.ca_files, *options.ca_files),
                     policy=options.policy if name == "tls10-regression" else base.probes.policy)
    alerts = base.alerts
    settings = [f"probes.ca_files = {list(probes.ca_files)}", f"probes.timeout = {options.timeout:g}s"]
    extra = {"ca-rotation": "trust.store_fails", "revocation-down": "cert.revocation_unknown"}.get(name)
    routed = {finding for finding, _ in alerts.finding_routes}
    if extra and extra not in routed:
        alerts = replace(alerts, finding_routes=(*alerts.finding_routes, (extra, Route.PAGE)))
        settings.append(f"alerts.findings: + {extra} = page")
    if name == "tls10-regression":
        settings.append(f"probes.policy = {options.policy}; every probe is a deep scan")
    if loaded is not None and loaded.receivers:
        receivers = tuple(r.name for r in loaded.receivers)
        routes = base.routes
        settings.append(f"receivers and routes from {base.source} (notifications are delivered to them)")
    else:
        receivers, routes = LAB_RECEIVERS, LAB_ROUTES
        settings.append(ROUTES_SETTING)
    config = replace(base, probes=probes, alerts=alerts, routes=routes)

    scan_options: Callable[[], ScanOptions | None] = lambda: None   # noqa: E731 - as the monitor would
    if name == "revocation-down":
        settings.append("probes check revocation in hard mode (through the Monitor's scan options)")

        def hard() -> ScanOptions | None:
            return ScanOptions(timeout=probes.timeout_s, concurrency=probes.concurrency, per_host=probes.per_host,
                               ca_files=probes.ca_files, revocation="hard")
        scan_options = hard
    elif name == "ca-rotation" and options.stores:
        from tlsward.x509.truststores import read_bundle

        settings.append(f"probes validate against the stores {list(options.stores)} (scan --all-stores)")

        def with_stores() -> ScanOptions | None:
            loaded_stores = [read_bundle(path, store_id=Path(path).stem, label=Path(path).stem)
                             for path in options.stores]
            return ScanOptions(timeout=probes.timeout_s, concurrency=probes.concurrency, per_host=probes.per_host,
                               ca_files=probes.ca_files, revocation="off",
                               host_stores=tuple(s.trust for s in loaded_stores if s.trust is not None))
        scan_options = with_stores
    return MonitorSetup(config, receivers, scan_options=scan_options,
                        deliver_to=loaded.receivers if loaded is not None else (), settings=tuple(settings))


def _rotation_expectations(harness: Harness, options: StagingOptions) -> list[Expectation]:
    """ca-rotation against staging: predict from the stores which break at the switch; each must then be seen."""
    from tlsward.rules.truststores import rotation_plan
    from tlsward.x509.truststores import read_bundle, read_store

    if not (options.stores and options.old_root and options.new_root):
        harness.note("no --store/--old-root/--new-root given: the rotation plan and trust.store_fails are not "
                     "checked, only the issuer change (chain.changed)")
        return []
    infos = [read_bundle(path, store_id=Path(path).stem, label=Path(path).stem).info for path in options.stores]
    old, new = read_store(options.old_root), read_store(options.new_root)
    if not old.info.roots or not new.info.roots:
        raise UsageError("--old-root and --new-root must each hold a root certificate (PEM or DER)")
    plan = rotation_plan(infos, old.info.roots, new.info.roots)
    wanted: list[Expectation] = []
    for step in plan.steps:
        for broken in step.breaks:
            harness.observe(Observation("prediction", harness.phase_name, harness.now_s(), broken.store_id,
                                        stage=step.name, summary=f"{broken.store_id} breaks at {step.name}: "
                                        f"{broken.reason}; fix: {broken.fix}"))
            if step.name == "switch-issuer":
                wanted.append(Expectation("prediction", "baseline", broken.store_id))
    if wanted:
        wanted.append(Expectation("detection", "apply", "trust.store_fails"))
    return wanted


def run_staging_drill(name: str, options: StagingOptions, *, work_dir: Path | None = None,
                      progress: Progress | None = None, sleep: Callable[[float], None] = time.sleep) -> DrillReport:
    """Run drill ``name`` against a staging target: baseline, ``--apply``, then ``--revert`` (always attempted
    once the apply command ran). Raises :class:`UsageError` for a bad target before anything runs."""
    spec = drill_named(name)
    target = Target.parse(options.target, sni=options.sni, connect=options.connect)
    setup = _staging_setup(name, options)
    # What would only fail inside the first monitor round fails here, before any hook runs.
    trust_stores(ScanOptions(ca_files=setup.config.probes.ca_files, mozilla=False, system=False))
    if name == "tls10-regression":
        from tlsward.policy import load_policy

        load_policy(options.policy)
    phases: list[PhaseSpec] = list(spec.staging_phases)
    expectations = list(spec.staging_expectations)
    if options.revert is None:
        phases = [p for p in phases if p.name != "revert"]
        expectations = [e for e in expectations if e.phase != "revert"]
    endpoint = EndpointRecord(target=str(target), host=target.host, port=target.port, scheme=target.scheme,
                              sni=target.sni, connect=target.connect, owner="drill", team="drills",
                              environment="staging")
    with _work_dir(work_dir) as work:
        harness = Harness(spec, "staging", endpoint, _db_url(work), setup, tuple(expectations), progress=progress)
        if options.revert is None:
            harness.note("no --revert command: the fault is left in place and its resolution is not checked")
        error = None
        applied = False
        try:
            for phase in phases:
                harness.begin(phase)
                if phase.name == "baseline" and name == "ca-rotation":
                    harness.expectations = (*harness.expectations, *_rotation_expectations(harness, options))
                if phase.name == "apply":
                    applied = True
                    _run_hook(harness, "apply", options.apply, options.hook_timeout)
                elif phase.name == "revert" and options.revert is not None:
                    applied = False
                    _run_hook(harness, "revert", options.revert, options.hook_timeout)
                harness.fault_live()
                budget = harness.now_s() + (options.detect_timeout if phase.name != "baseline" else 0.0)
                harness.probe(max_rounds=1 if phase.name == "baseline" else 10_000, deadline_s=budget,
                              interval_s=options.interval, sleep=sleep)
        except (Error, OSError, ValueError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        finally:
            if applied and options.revert is not None:
                with contextlib.suppress(Error, OSError):
                    harness.begin(PhaseSpec("cleanup", "run the --revert command after a failed drill"))
                    _run_hook(harness, "revert", options.revert, options.hook_timeout)
        return harness.report(target=str(target), error=error)

