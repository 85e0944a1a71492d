"""Shared by the CA integration tests: the CA's ASGI app served by uvicorn on a free loopback port, in a thread."""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from tlsward.ca.authority import CertificateAuthority
from tlsward.ca.http import create_ca_app


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve_ca(ca: CertificateAuthority, *, refresh_seconds: float | None = None) -> Iterator[str]:
    """``http://127.0.0.1:PORT`` serving ``create_ca_app(ca)`` until the block ends."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_ca_app(ca, refresh_seconds=refresh_seconds), host="127.0.0.1",
                                           port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, name="ca-http", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the CA app did not start within 10 s"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def run(*command: str, timeout: float = 30, env: dict[str, str] | None = None,
        check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False, env=env,
                          stdin=subprocess.DEVNULL)
    if check:
        assert done.returncode == 0, f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    return done
