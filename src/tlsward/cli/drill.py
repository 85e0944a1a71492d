"""``tlsward drill list|run``: failure drills against the built-in lab or a staging target (docs/drills.md).

Exit codes: 0 when every drill run passed, 1 when one failed (an expected detection or alert was missing, or the
drill could not finish), 2 for usage errors. The drill machinery loads lazily.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from tlsward.cli.console import LazyConsole
from tlsward.cli.exit_codes import ExitCode
from tlsward.model.drills import DrillReport, Observation, report_document
from tlsward.model.errors import UsageError

if TYPE_CHECKING:
    from tlsward.model.drills import DrillSpec

app = typer.Typer(help="Failure drills: break a TLS endpoint on purpose (the built-in lab, or a staging target with "
                       "--apply/--revert hooks) and check that tlsward detected it and alerted, with the time each "
                       "took (docs/drills.md).", no_args_is_help=True)
out = LazyConsole(soft_wrap=True, highlight=False)
err = LazyConsole(stderr=True, soft_wrap=True, highlight=False)

AsJson = Annotated[bool, typer.Option("--json", help="One JSON document (schema tlsward.drill-report/1)")]


def _specs() -> tuple[DrillSpec, ...]:
    from tlsward.drills.catalogue import DRILLS

    return DRILLS


@app.command("list")
def list_(as_json: AsJson = False) -> None:
    """Every drill: what it breaks, what must be detected and alerted, the runbooks it exercises."""
    drills = _specs()
    if as_json:
        print(json.dumps([{
            "name": d.name, "title": d.title, "situation": d.situation, "expectation": d.expectation,
            "runbooks": [{"finding_id": r.finding_id, "link": r.link} for r in d.runbooks],
            "phases": [{"name": p.name, "action": p.action, "fault": p.fault} for p in d.phases],
            "expectations": [{"phase": e.phase, "kind": e.kind, "description": e.describe()} for e in d.expectations],
            "staging": d.staging_hint,
        } for d in drills], indent=2))
        return
    from rich.markup import escape

    for d in drills:
        out.print(f"[bold]{d.name}[/]: {escape(d.title)}")
        out.print(f"  expectation: {escape(d.expectation)}")
        out.print(f"  runbooks: {', '.join(r.link for r in d.runbooks)}")
        out.print(f"  staging: {escape(d.staging_hint)}")
    out.print(f"{len(drills)} drills: `tlsward drill run NAME` (or `--all`) against the built-in lab; "
              "`--target HOST:PORT --apply CMD --revert CMD` against staging")


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def _observation_line(o: Observation) -> str:
    if o.kind == "scan":
        what = ", ".join(o.finding_ids) or "no findings"
        return f"{'deep scan' if o.deep else 'probe'}: {what if o.success else f'failed ({o.failure}); {what}'}"
    if o.kind == "alert":
        if o.notification is None:
            return f"alert {o.what} raised, not notified ({o.route})"
        stage = f", {o.stage}" if o.stage and o.stage != "present" else ""
        runbook = f"; runbook {o.runbook_url}" if o.runbook_url and o.notification == "firing" else ""
        return f"alert {o.what} {o.notification} ({o.route}{stage}) -> {', '.join(o.receivers)}{runbook}"
    return o.summary


def print_report(report: DrillReport) -> None:
    """The report in words: verdict, expectation, timeline, checks, what was missing, times."""
    from rich.markup import escape

    verdict = "[green]PASSED[/]" if report.passed else "[red]FAILED[/]"
    out.print(f"[bold]drill {report.drill}[/]: {escape(report.title)} - {verdict} ({report.duration_s:.1f} s)")
    out.print(f"  target: {escape(report.target)}")
    out.print(f"  expectation: {escape(report.expectation)}")
    for runbook in report.runbooks:
        out.print(f"  runbook: {runbook.link}" + (f" ({escape(runbook.why)})" if runbook.why else ""))
    out.print("  timeline:")
    for phase in report.phases:
        fault = " [bold](fault)[/]" if phase.fault else ""
        clock = escape(f" [monitor clock +{phase.clock_offset_days:g} d]") if phase.clock_offset_days else ""
        out.print(f"    +{phase.started_at_s:6.2f}s  {phase.name}{fault}{clock}: {escape(phase.action)}")
        for o in report.observations:
            if o.phase == phase.name and o.kind != "note":
                out.print(f"    +{o.at_s:6.2f}s    {escape(_observation_line(o))}")
    out.print("  checks:")
    for check in report.checks:
        e = check.expectation
        mark = "[green]ok[/]  " if check.met else "[red]MISS[/]"
        timing = f" (+{check.after_fault_s:.2f} s)" if check.met and check.after_fault_s is not None \
            and e.kind in ("detection", "alert") else ""
        out.print(f"    {mark} {escape(f'[{e.phase}] {e.describe()}{timing}: {check.detail}')}")
    out.print(f"  time to detect: {_seconds(report.time_to_detect_s)}; time to alert: "
              f"{_seconds(report.time_to_alert_s)} (from the fault)")
    if report.missing:
        out.print("  [red]missing:[/] " + escape("; ".join(
            f"{c.expectation.describe()} [{c.expectation.phase}]" for c in report.missing)))
    if report.error:
        out.print(f"  [red]error:[/] {escape(report.error)}")
    for setting in report.settings:
        out.print(f"  setting: {escape(setting)}")
    for note in report.notes:
        out.print(f"  note: {escape(note)}")


def _progress(enabled: bool) -> Callable[[str], None] | None:
    if not enabled:
        return None

    from rich.markup import escape

    def say(text: str) -> None:
        err.print(f"  {escape(text)}")
    return say


@app.command("run")
def run(
    name: Annotated[str | None, typer.Argument(help="The drill (`tlsward drill list`)")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Run every drill against the built-in lab")] = False,
    as_json: AsJson = False,
    target: Annotated[str | None, typer.Option("--target", help="A staging target HOST:PORT instead of the lab "
                                               "(needs --apply)")] = None,
    apply: Annotated[str | None, typer.Option("--apply", help="Shell command that injects the fault on the "
                                              "staging target")] = None,
    revert: Annotated[str | None, typer.Option("--revert", help="Shell command that removes it again")] = None,
    sni: Annotated[str | None, typer.Option(help="Server name to send (default: the target's host)")] = None,
    connect: Annotated[str | None, typer.Option(help="Address to connect to instead of resolving the host")] = None,
    ca_file: Annotated[list[Path] | None, typer.Option("--ca-file", help="Extra trust anchors (internal CA), "
                                                       "repeatable")] = None,
    policy: Annotated[str, typer.Option(help="Policy profile or file for tls10-regression's deep scans")] = (
        "mozilla-intermediate"),
    store: Annotated[list[Path] | None, typer.Option("--store", help="ca-rotation: a client fleet's trust bundle, "
                                                     "repeatable")] = None,
    old_root: Annotated[Path | None, typer.Option("--old-root", help="ca-rotation: the retiring root")] = None,
    new_root: Annotated[Path | None, typer.Option("--new-root", help="ca-rotation: the new root")] = None,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="Monitor config for a staging run: its "
                                                "alert settings, routes and receivers (they get the drill's "
                                                "notifications)")] = None,
    detect_timeout: Annotated[float, typer.Option(help="Staging: seconds to keep probing after each hook")] = 300.0,
    interval: Annotated[float, typer.Option(help="Staging: seconds between probe rounds")] = 10.0,
    hook_timeout: Annotated[float, typer.Option(help="Staging: seconds each hook may take")] = 120.0,
    work_dir: Annotated[Path | None, typer.Option(help="Keep the drill's inventory and files here (default: a "
                                                  "temporary directory)")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Print each step as it happens (stderr); on "
                                          "by default with --target")] = False,
) -> None:
    """Run a drill (or --all) and report what was detected and alerted, what was missing, and how long it took.
    Exit 1 when a drill failed."""
    from tlsward.drills.catalogue import drill_named

    if all_ and name is not None:
        raise UsageError("give a drill NAME or --all, not both")
    if not all_ and name is None:
        raise UsageError("name a drill (`tlsward drill list`) or give --all")
    if all_ and target is not None:
        raise UsageError("--all runs against the built-in lab; a staging --target runs one drill with its --apply")
    names = [d.name for d in _specs()] if all_ else [str(name)]
    for drill in names:
        try:
            drill_named(drill)
        except KeyError:
            known = ", ".join(d.name for d in _specs())
            raise UsageError(f"unknown drill {drill!r} (known: {known})") from None
    staging_only = {"--apply": apply, "--revert": revert, "--sni": sni, "--connect": connect, "--config": config,
                    "--store": store, "--old-root": old_root, "--new-root": new_root}
    if target is None:
        given = [flag for flag, value in staging_only.items() if value]
        if given:
            raise UsageError(f"{', '.join(given)} only apply with --target (a staging target)")
    elif not apply:
        raise UsageError("--target needs --apply: the command that injects the fault (and --revert to undo it)")
    for flag, seconds in (("--detect-timeout", detect_timeout), ("--interval", interval),
                          ("--hook-timeout", hook_timeout)):
        if not seconds > 0:
            raise UsageError(f"{flag} must be positive, got {seconds:g}")
    progress = _progress(verbose or target is not None)
    reports: list[DrillReport] = []
    if target is None:
        from tlsward.drills.runner import run_lab_drill

        for drill in names:
            sub = work_dir / drill if work_dir is not None and all_ else work_dir
            reports.append(run_lab_drill(drill, work_dir=sub, progress=progress))
    else:
        from tlsward.drills.runner import StagingOptions, run_staging_drill
        from tlsward.monitor.config import load_config

        options = StagingOptions(
            target=target, apply=str(apply), revert=revert, sni=sni, connect=connect,
            ca_files=tuple(str(p) for p in ca_file or ()), policy=policy, stores=tuple(str(p) for p in store or ()),
            old_root=str(old_root) if old_root else None, new_root=str(new_root) if new_root else None,
            detect_timeout=detect_timeout, interval=interval, hook_timeout=hook_timeout,
            loaded=load_config(config) if config is not None else None)
        reports.append(run_staging_drill(names[0], options, work_dir=work_dir,
                                         progress=progress))
    if as_json:
        print(json.dumps(report_document(reports), indent=2))
    else:
        for report in reports:
            print_report(report)
        if len(reports) > 1:
            passed = sum(r.passed for r in reports)
            out.print(f"[bold]{passed}/{len(reports)} drills passed[/]"
                      + ("" if passed == len(reports) else ": failed " + ", ".join(
                          r.drill for r in reports if not r.passed)))
    sys.stdout.flush()
    if not all(r.passed for r in reports):
        raise typer.Exit(ExitCode.FINDINGS)
