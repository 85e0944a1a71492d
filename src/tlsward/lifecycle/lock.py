"""One renewal per managed certificate at a time: an ``fcntl.flock`` on ``<state_dir>/<name>.lock``.

flock is released by the kernel when the holder dies, so a crashed run never leaves a stale lock (a pid file
would). The holder writes its pid into the file, so the refusal names who holds it. By default the lock is not
waited for (cron and the monitor simply try again next time); ``wait`` gives a bounded wait instead.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

from tlsward.lifecycle.errors import LifecycleError, LockHeldError


def _holder(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


@contextlib.contextmanager
def certificate_lock(state_dir: Path, name: str, *, wait: float = 0.0) -> Iterator[Path]:
    """Hold the lock of certificate ``name`` for the ``with`` block; LockHeldError when another process holds
    it (after up to ``wait`` seconds)."""
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        path = state_dir / f"{name}.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise LifecycleError(f"{state_dir}: cannot create the lock of {name}: {exc.strerror}") from None
    try:
        deadline = time.monotonic() + max(0.0, wait)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LockHeldError(name, _holder(fd)) from None
                time.sleep(0.05)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        try:
            yield path
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
