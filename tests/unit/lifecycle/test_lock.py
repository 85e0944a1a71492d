"""One renewal per certificate: a second process is refused at once, naming the holder's pid, or waits a
bounded time; the kernel drops the lock of a killed holder."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tlsward.lifecycle.errors import LockHeldError
from tlsward.lifecycle.lock import certificate_lock

HOLD = """
import sys, time
from pathlib import Path
from tlsward.lifecycle.lock import certificate_lock
with certificate_lock(Path(sys.argv[1]), "www"):
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
"""


def holder(state: Path, seconds: float) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(state), str(seconds)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_process_is_refused_with_the_holders_pid(tmp_path: Path) -> None:
    proc = holder(tmp_path, 30)
    try:
        with pytest.raises(LockHeldError) as info, certificate_lock(tmp_path, "www"):
            pass
        assert str(info.value) == f"renewal of www already running (pid {proc.pid})"
        with certificate_lock(tmp_path, "api"):
            pass                                   # other certificates are not blocked
    finally:
        proc.kill()
        proc.wait(10)
    with certificate_lock(tmp_path, "www"):        # a killed holder leaves no stale lock
        pass


def test_a_bounded_wait_gets_the_lock_once_released(tmp_path: Path) -> None:
    proc = holder(tmp_path, 0.5)
    start = time.monotonic()
    with certificate_lock(tmp_path, "www", wait=10):
        assert 0.2 < time.monotonic() - start < 10
    proc.wait(10)


def test_a_bounded_wait_gives_up(tmp_path: Path) -> None:
    proc = holder(tmp_path, 30)
    try:
        start = time.monotonic()
        with pytest.raises(LockHeldError), certificate_lock(tmp_path, "www", wait=0.3):
            pass
        assert time.monotonic() - start < 3
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
