"""``tlsward lab up|list|down`` as a user runs them: background process, pid file, conflicts, exit codes.

Every lab started here is stopped by a fixture finalizer, whatever the test outcome.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tlsward.lab import CASES
from tlsward.lab.server import find_free_plan

pytestmark = pytest.mark.e2e

TLSWARD = Path(sys.executable).with_name("tlsward")  # the console script of this venv
TIMEOUT = 90.0
ENVIRONMENT_ERROR = 4
# Wide output so rich never folds a case name; no lab settings inherited from the user's shell.
ENV = {k: v for k, v in os.environ.items() if not k.startswith("TLSWARD_")} | {"COLUMNS": "250"}


def tlsward(*args: str) -> subprocess.CompletedProcess[str]:
    assert TLSWARD.is_file(), f"{TLSWARD} is missing: install the project into this venv"
    return subprocess.run([str(TLSWARD), *args], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=TIMEOUT, env=ENV, check=False)


def explain(proc: subprocess.CompletedProcess[str]) -> str:
    return f"$ {' '.join(proc.args)}\nexit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"


def free_base_port() -> int:
    plan, sockets = find_free_plan("127.0.0.1")
    for sock in sockets.values():
        sock.close()
    return plan.base


def read_pid(state_dir: Path) -> int | None:
    try:
        return int((state_dir / "lab.pid").read_text().strip())
    except (OSError, ValueError):
        return None


def proc_state(pid: int) -> str | None:
    """The /proc state letter of ``pid`` (``Z`` for a zombie), or None if there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return stat.rsplit(")", 1)[1].split()[0]


def is_lab_process(pid: int) -> bool:
    with contextlib.suppress(OSError):
        return b"tlsward" in Path(f"/proc/{pid}/cmdline").read_bytes()
    return False


def wait_gone(pid: int, timeout: float = 5.0) -> str | None:
    """Wait until ``pid`` has left /proc; returns its last state letter if it has not (e.g. ``Z``).

    The lab is re-parented to init once ``lab up`` exits, so init reaps it: a zombie is dead, just
    not yet collected. A pid that comes back as some other program has been recycled: the lab is gone.
    """
    deadline = time.monotonic() + timeout
    state = proc_state(pid)
    while state is not None and time.monotonic() < deadline:
        if state != "Z" and not is_lab_process(pid):
            return None
        time.sleep(0.05)
        state = proc_state(pid)
    return state


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, f"expected a single line on stderr, got:\n{stderr}"
    return lines[0]


@pytest.fixture
def lab_dirs(tmp_path: Path) -> Iterator[list[Path]]:
    """State directories this test may start labs from; every lab still running there is stopped."""
    dirs: list[Path] = []
    yield dirs
    for state_dir in dirs:
        pid = read_pid(state_dir)
        if pid is None or proc_state(pid) in (None, "Z"):
            continue
        tlsward("lab", "down", "--state-dir", str(state_dir))
        if proc_state(pid) not in (None, "Z") and is_lab_process(pid):
            os.kill(pid, signal.SIGKILL)  # our own lab process, by pid, as a last resort
            wait_gone(pid)


def test_lab_list_without_a_running_lab(tmp_path: Path) -> None:
    proc = tlsward("lab", "list", "--state-dir", str(tmp_path / "never-started"))
    assert proc.returncode == 0, explain(proc)
    assert "not running" in proc.stdout, explain(proc)
    missing = [case.name for case in CASES if case.name not in proc.stdout]
    assert not missing, f"catalogue listing lacks {missing}\n{explain(proc)}"


def test_lab_up_conflicts_list_and_down(tmp_path: Path, lab_dirs: list[Path]) -> None:
    state_dir, other_dir = tmp_path / "lab", tmp_path / "other-lab"
    lab_dirs += [state_dir, other_dir]
    base = free_base_port()

    up = tlsward("lab", "up", "--state-dir", str(state_dir), "--base-port", str(base))
    assert up.returncode == 0, explain(up)
    assert (state_dir / "lab.json").is_file(), explain(up)
    published = json.loads((state_dir / "lab.json").read_text())
    pid = read_pid(state_dir)
    assert pid is not None and published["pid"] == pid, published
    assert published["base_port"] == base
    assert {e["name"]: e["port"] for e in published["endpoints"]} == {
        case.name: base + 1 + i for i, case in enumerate(CASES)
    }
    assert proc_state(pid) not in (None, "Z") and is_lab_process(pid)

    listed = tlsward("lab", "list", "--state-dir", str(state_dir))
    assert listed.returncode == 0, explain(listed)
    assert f"pid {pid}" in listed.stdout and f"base port {base}" in listed.stdout, explain(listed)
    healthy = published["endpoints"][0]
    assert healthy["name"] in listed.stdout and str(healthy["port"]) in listed.stdout, explain(listed)

    again = tlsward("lab", "up", "--state-dir", str(state_dir), "--base-port", str(base))
    assert again.returncode == ENVIRONMENT_ERROR, explain(again)
    assert "already running" in one_line(again.stderr)

    clash = tlsward("lab", "up", "--state-dir", str(other_dir), "--base-port", str(base))
    assert clash.returncode == ENVIRONMENT_ERROR, explain(clash)
    assert "already in use" in one_line(clash.stderr)
    assert not (other_dir / "lab.pid").exists(), "a lab that could not bind its ports left a pid file"
    assert read_pid(state_dir) == pid and proc_state(pid) not in (None, "Z"), "the first lab was disturbed"

    down = tlsward("lab", "down", "--state-dir", str(state_dir))
    assert down.returncode == 0, explain(down)
    assert str(pid) in down.stdout, explain(down)
    left = wait_gone(pid)
    assert left in (None, "Z"), f"lab process {pid} still running after `lab down` (state {left})"
    assert not (state_dir / "lab.pid").exists() and not (state_dir / "lab.json").exists()

    listed_after = tlsward("lab", "list", "--state-dir", str(state_dir))
    assert listed_after.returncode == 0 and "not running" in listed_after.stdout, explain(listed_after)

    down_again = tlsward("lab", "down", "--state-dir", str(state_dir))
    assert down_again.returncode == ENVIRONMENT_ERROR, explain(down_again)
    assert "no lab is running" in one_line(down_again.stderr)
