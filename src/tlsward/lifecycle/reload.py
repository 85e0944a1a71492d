"""Make the server pick up the new files: nginx, haproxy, a systemd unit or any command, each with a timeout.

Servers that can check their config are asked first (``nginx -t``, ``haproxy -c``): a wrong key or a broken
file then fails the check and the running server keeps serving the old certificate, instead of a reload that
leaves it half-configured (or a restart that leaves it down).
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
from pathlib import Path

from tlsward.lifecycle.config import ReloadAction
from tlsward.lifecycle.errors import LifecycleError

_LOG_PREFIX = re.compile(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d (?=\[)|(?<=\]) \d+#\d+:")   # nginx's time and pid#tid


def _binary(action: ReloadAction, name: str) -> str:
    if action.argv:
        return action.argv[0]
    found = shutil.which(name) or next((p for p in (f"/usr/sbin/{name}", f"/sbin/{name}") if Path(p).exists()),
                                       None)
    if found is None:
        raise LifecycleError(f"reload: {name} not found on PATH")
    return found


def _run(argv: list[str], timeout: float, what: str, cwd: Path | None = None) -> None:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False,
                              stdin=subprocess.DEVNULL, cwd=cwd)
    except subprocess.TimeoutExpired:
        raise LifecycleError(f"{what}: `{' '.join(argv)}` did not finish within {timeout:g} s") from None
    except OSError as exc:
        raise LifecycleError(f"{what}: cannot run {argv[0]}: {exc.strerror}") from None
    if proc.returncode != 0:
        lines = [line.strip() for line in (proc.stderr or proc.stdout).splitlines() if line.strip()]
        detail = next((line for line in lines if "emerg" in line or "error" in line.lower() or "ALERT" in line),
                      lines[0] if lines else "no output")
        detail = _LOG_PREFIX.sub("", detail)
        raise LifecycleError(f"{what}: `{' '.join(argv)}` exited {proc.returncode}: {detail}")


def _nginx_args(action: ReloadAction) -> list[str]:
    args = []
    if action.config is not None:
        args += ["-c", str(action.config)]
    if action.prefix is not None:
        args += ["-p", str(action.prefix)]
    return args


def _haproxy_master(socket_path: Path, timeout: float) -> None:
    """``reload`` on the master CLI (HAProxy 2.7+ answers with the outcome of the new worker's start)."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(socket_path))
            sock.sendall(b"reload\n")
            answer = b""
            while chunk := sock.recv(4096):
                answer += chunk
    except OSError as exc:
        raise LifecycleError(f"haproxy reload: master socket {socket_path}: {exc}") from None
    text = answer.decode("utf-8", "replace")
    if "Success=0" in text:
        raise LifecycleError(f"haproxy reload: the new worker failed to start: {text.strip().splitlines()[-1]}")


def reload_server(action: ReloadAction) -> str:
    """Run ``action``; a one-line description of what was done. LifecycleError with the reason otherwise."""
    timeout = action.timeout_s
    if action.kind == "nginx":
        nginx = _binary(action, "nginx")
        _run([nginx, "-t", "-q", *_nginx_args(action)], timeout, "nginx -t")
        _run([nginx, "-s", "reload", *_nginx_args(action)], timeout, "nginx reload")
    elif action.kind == "haproxy":
        haproxy = _binary(action, "haproxy")
        assert action.config is not None
        _run([haproxy, "-c", "-q", "-f", str(action.config)], timeout, "haproxy -c")
        if action.master_socket is not None:
            _haproxy_master(action.master_socket, timeout)
        else:
            _run(["systemctl", "reload", "haproxy"], timeout, "haproxy reload")
    elif action.kind == "systemd":
        assert action.unit is not None
        _run(["systemctl", "reload", action.unit], timeout, f"systemctl reload {action.unit}")
    elif action.kind == "command":
        _run(list(action.argv), timeout, "reload command", action.cwd)
    return action.describe()
