"""Staging hooks: run through the shell, bounded, their whole process group killed on timeout."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tlsward.drills.runner import _run_hook
from tlsward.model.drills import Observation
from tlsward.model.errors import UsageError


@dataclass
class FakeHarness:
    phase_name: str = "apply"
    actions: list[str] = field(default_factory=list)
    seen: list[Observation] = field(default_factory=list)

    def action(self, summary: str) -> None:
        self.actions.append(summary)

    def observe(self, observation: Observation) -> None:
        self.seen.append(observation)

    def now_s(self) -> float:
        return 1.0


def test_a_hook_records_its_exit_status_and_output() -> None:
    harness = FakeHarness()
    _run_hook(harness, "apply", "echo deployed; echo warning >&2", 10)   # type: ignore[arg-type]
    assert harness.actions == ["apply: echo deployed; echo warning >&2"]
    [seen] = harness.seen
    assert seen.kind == "action" and seen.phase == "apply" and seen.summary.startswith("apply exited 0 after")
    assert seen.summary.endswith("deployed\nwarning")


def test_a_failing_hook_raises_with_its_output() -> None:
    with pytest.raises(UsageError, match=r"the revert command exited 3: .* \(nope\)"):
        _run_hook(FakeHarness(), "revert", "echo nope; exit 3", 10)   # type: ignore[arg-type]


def test_a_hung_hook_is_killed_with_its_children(tmp_path: Path) -> None:
    marker = tmp_path / "late"
    started = time.monotonic()
    with pytest.raises(UsageError, match=r"did not finish within 0\.3s"):
        _run_hook(FakeHarness(), "apply", f"(sleep 1; touch {marker}) & sleep 30", 0.3)   # type: ignore[arg-type]
    assert time.monotonic() - started < 5
    time.sleep(1.5)
    assert not marker.exists(), "the hook's background child was killed too"
