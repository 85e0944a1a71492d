"""Starting and stopping the lab: in the foreground, in the background with a pid file, or in-process
for Python code and pytest.

One lab per state directory: the pid file is created exclusively, so two ``lab up`` never both run.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from tlsward.lab.catalogue import CASES, LabCase, PortPlan
from tlsward.lab.server import LabServer, bind_ports, find_free_plan
from tlsward.lab.state import LOG_FILE, PID_FILE, STATE_FILE, LabState
from tlsward.model.errors import LabAlreadyRunningError, LabError, LabNotRunningError

START_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours still answers kill(0); it is not running.
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


def _is_lab_process(pid: int) -> bool:
    """Guard against a recycled pid: only signal a process that is a tlsward lab."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return _pid_alive(pid)
    return b"tlsward" in cmdline


def running_pid(state_dir: Path) -> int | None:
    """The pid of the lab running from ``state_dir``, or None (stale pid files are ignored)."""
    try:
        pid = int((state_dir / PID_FILE).read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _pid_alive(pid) and _is_lab_process(pid) else None


def _claim_pid_file(state_dir: Path) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / PID_FILE
    if (pid := running_pid(state_dir)) is not None and pid != os.getpid():
        raise LabAlreadyRunningError(
            f"a lab is already running from {state_dir} (pid {pid}); run `tlsward lab down` first"
        )
    path.unlink(missing_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        raise LabAlreadyRunningError(f"another lab is starting from {state_dir}") from None
    with os.fdopen(fd, "w") as handle:
        handle.write(f"{os.getpid()}\n")


def _release(state_dir: Path) -> None:
    for name in (PID_FILE, STATE_FILE):
        with contextlib.suppress(OSError):
            path = state_dir / name
            if name != PID_FILE or path.read_text().strip() == str(os.getpid()):
                path.unlink()


def serve_foreground(state_dir: Path, host: str, base_port: int, cases: Sequence[LabCase] = CASES,
                     on_ready: object = None) -> None:
    """Run the lab in this process until SIGTERM or SIGINT. Raises a LabError before serving if it cannot."""
    plan = PortPlan.for_base(host, base_port, cases)
    sockets = bind_ports(plan, cases)  # before the pid file: a taken port must not leave files behind
    try:
        _claim_pid_file(state_dir)
    except LabError:
        for sock in sockets.values():
            sock.close()
        raise
    try:
        asyncio.run(_serve_until_signalled(LabServer(state_dir, plan, sockets, cases), on_ready))
    finally:
        _release(state_dir)


async def _serve_until_signalled(server: LabServer, on_ready: object) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        state = await server.start()
        if callable(on_ready):
            on_ready(state)
        await stop.wait()
    finally:
        await server.close()


def start_background(state_dir: Path, host: str, base_port: int) -> LabState:
    """Start the lab as a detached process and return once every port is listening."""
    if (pid := running_pid(state_dir)) is not None:
        raise LabAlreadyRunningError(
            f"a lab is already running from {state_dir} (pid {pid}); run `tlsward lab down` first"
        )
    state_dir.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(OSError):
        (state_dir / STATE_FILE).unlink()
    log_path = state_dir / LOG_FILE
    with log_path.open("wb") as log:
        child = subprocess.Popen(
            [sys.executable, "-m", "tlsward.lab", "--state-dir", str(state_dir), "--host", host,
             "--base-port", str(base_port)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
        )
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if child.poll() is not None:
            lines = log_path.read_text(errors="replace").strip().splitlines()
            raise LabError(lines[-1] if lines else f"lab process exited with status {child.returncode}")
        with contextlib.suppress(LabError):
            state = LabState.read(state_dir)
            if state.pid == child.pid:
                return state
        time.sleep(0.05)
    child.kill()
    raise LabError(f"lab did not become ready within {START_TIMEOUT:.0f}s; see {log_path}")


def stop_background(state_dir: Path) -> int:
    """Stop the lab running from ``state_dir``; returns its pid. Waits until the process is gone."""
    pid = running_pid(state_dir)
    if pid is None:
        for name in (PID_FILE, STATE_FILE):
            (state_dir / name).unlink(missing_ok=True)
        raise LabNotRunningError(f"no lab is running from {state_dir}")
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    while _pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _pid_alive(pid):
        os.kill(pid, signal.SIGKILL)
        while _pid_alive(pid) and time.monotonic() < deadline + STOP_TIMEOUT:
            time.sleep(0.05)
    for name in (PID_FILE, STATE_FILE):
        (state_dir / name).unlink(missing_ok=True)
    return pid


@contextlib.contextmanager
def running_lab(state_dir: Path, host: str = "127.0.0.1", base_port: int | None = None,
                cases: Sequence[LabCase] = CASES) -> Iterator[LabState]:
    """Run a lab on a thread of this process (for pytest and Python callers); stops on exit.

    With ``base_port=None`` a free block of ports is found, so tests never collide with a user's lab.
    """
    if base_port is None:
        plan, sockets = find_free_plan(host, cases)
    else:
        plan = PortPlan.for_base(host, base_port, cases)
        sockets = bind_ports(plan, cases)
    state_dir.mkdir(parents=True, exist_ok=True)
    loop = asyncio.new_event_loop()
    server = LabServer(state_dir, plan, sockets, cases)
    thread = threading.Thread(target=loop.run_forever, name="tlsward-lab", daemon=True)
    thread.start()
    try:
        state = asyncio.run_coroutine_threadsafe(server.start(), loop).result(START_TIMEOUT)
    except BaseException:
        asyncio.run_coroutine_threadsafe(server.close(), loop).result(STOP_TIMEOUT)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(STOP_TIMEOUT)
        raise
    try:
        yield state
    finally:
        asyncio.run_coroutine_threadsafe(server.close(), loop).result(STOP_TIMEOUT)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(STOP_TIMEOUT)
        loop.close()
        (state_dir / STATE_FILE).unlink(missing_ok=True)
