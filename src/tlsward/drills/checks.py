"""Judging a drill: each expectation against what was observed in its phase. Pure functions of the model."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from tlsward.model.drills import Check, Expectation, Observation, PhaseRecord

__all__ = ["evaluate", "phase_settled"]


def _matches_alert(e: Expectation, o: Observation) -> bool:
    return (o.kind == "alert" and o.what == e.what and o.notification == e.notification and bool(o.receivers)
            and (e.route is None or o.route == e.route) and (e.stage is None or o.stage == e.stage))


def _first(observations: Iterable[Observation], e: Expectation) -> Observation | None:
    for o in observations:
        if e.kind == "detection" and o.kind == "scan" and e.what in o.finding_ids:
            return o
        if e.kind == "alert" and _matches_alert(e, o):
            return o
        if e.kind == "prediction" and o.kind == "prediction" and o.what == e.what and o.stage == "switch-issuer":
            return o
        if e.kind == "renewal" and o.kind == "renewal" and o.what == e.what and o.success:
            return o
    return None


def _why_not_detected(e: Expectation, seen: Sequence[Observation]) -> str:
    scans = [o for o in seen if o.kind == "scan"]
    if not scans:
        return "not detected: no scan ran in this phase"
    failed = [o for o in scans if not o.success]
    if len(failed) == len(scans):
        return f"not detected: every scan failed ({failed[-1].failure or 'unknown failure'})"
    reported = sorted({f for o in scans for f in o.finding_ids})
    return (f"not detected: {len(scans)} scan(s) reported " + (", ".join(reported) if reported else "no findings"))


def _why_not_alerted(e: Expectation, seen: Sequence[Observation]) -> str:
    same = [o for o in seen if o.kind == "alert" and o.what == e.what]
    if not same:
        others = sorted({f"{o.what} {o.notification}" for o in seen if o.kind == "alert" and o.notification})
        return "no alert " + e.what + " was raised" + (f" (notified instead: {', '.join(others)})" if others else "")
    if all(not o.receivers for o in same):
        return f"alert {e.what} was raised but notified to no receiver (silenced, or no route matched)"
    notified = [o for o in same if o.receivers]
    described = "; ".join(f"{o.notification} route {o.route} stage {o.stage} to {', '.join(o.receivers)}"
                          for o in notified)
    return f"alert {e.what} was notified, but not as expected: {described}"


def _why_not_renewed(e: Expectation, seen: Sequence[Observation]) -> str:
    attempts = [o for o in seen if o.kind == "renewal" and o.what == e.what]
    if not attempts:
        return f"no renewal of {e.what} ran"
    return f"the renewal of {e.what} did not end verified: {attempts[-1].failure or 'unknown'}"


def _lead(found: Observation, phases: Sequence[PhaseRecord]) -> str:
    """How long before the fault a prediction was made (the point of predicting)."""
    fault = next((p for p in phases if p.fault and p.fault_at_s >= found.at_s), None)
    return f" ({fault.fault_at_s - found.at_s:.1f} s before phase {fault.name})" if fault else ""


def _check(e: Expectation, phase: PhaseRecord | None, observations: Sequence[Observation],
           phases: Sequence[PhaseRecord] = ()) -> Check:
    if phase is None:
        return Check(e, False, f"phase {e.phase} did not run")
    seen = [o for o in observations if o.phase == e.phase]
    if e.kind == "quiet":
        fired = [o for o in seen if o.kind == "alert" and o.notification == "firing" and o.receivers]
        if fired:
            names = ", ".join(sorted({f"{o.what} ({o.route})" for o in fired}))
            return Check(e, False, f"false alarm: {names} fired", fired[0].at_s, fired[0].at_s - phase.fault_at_s)
        rounds = len([o for o in seen if o.kind == "scan"])
        return Check(e, True, f"no alert fired over {rounds} probe(s)")
    found = _first(seen, e)
    if found is None:
        why = _why_not_detected(e, seen) if e.kind == "detection" else _why_not_alerted(e, seen) \
            if e.kind == "alert" else _why_not_renewed(e, seen) if e.kind == "renewal" \
            else f"the rotation plan did not name {e.what} at the issuer switch"
        return Check(e, False, why)
    if e.kind == "detection":
        detail = f"{'deep scan' if found.deep else 'scan'} reported {e.what}"
    elif e.kind == "alert":
        detail = (f"{found.notification} {found.route} (stage {found.stage or '-'}, {found.severity}) to "
                  f"{', '.join(found.receivers)}: {found.summary}")
    elif e.kind == "renewal":
        detail = found.summary
    else:
        detail = (found.summary or f"{e.what} breaks at the issuer switch") + _lead(found, phases)
    return Check(e, True, detail, found.at_s, found.at_s - phase.fault_at_s)


def evaluate(expectations: Iterable[Expectation], phases: Sequence[PhaseRecord],
             observations: Sequence[Observation]) -> tuple[Check, ...]:
    """One :class:`Check` per expectation, in the order given."""
    by_name = {p.name: p for p in phases}
    return tuple(_check(e, by_name.get(e.phase), observations, phases) for e in expectations)


def phase_settled(expectations: Iterable[Expectation], phase: str, observations: Sequence[Observation]) -> bool:
    """Whether everything positive expected in ``phase`` has been observed (``quiet`` cannot settle early:
    it is judged when the phase ends)."""
    seen = [o for o in observations if o.phase == phase]
    wanted = [e for e in expectations if e.phase == phase and e.kind != "quiet"]
    return all(_first(seen, e) is not None for e in wanted)
