"""How many fresh TLS handshakes per second the lab serves, next to ``openssl s_server`` on the same
certificate: the lab is the target of every scan benchmark, so it must not be the bottleneck unnoticed.

Both servers are measured by the same client, ``openssl s_time -new`` (a full handshake per connection,
TLS 1.3, ECDSA P-256 leaf), one after the other in one run. Reproduce: ``make bench``.
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tlsward.lab.server import find_free_plan

SECONDS = 5


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def s_time(port: int) -> float:
    """Handshakes per second reached by ``openssl s_time -new`` against 127.0.0.1:port."""
    out = subprocess.run(
        ["openssl", "s_time", "-connect", f"127.0.0.1:{port}", "-new", "-time", str(SECONDS)],
        capture_output=True, text=True, timeout=SECONDS * 6, stdin=subprocess.DEVNULL, check=False,
    ).stdout
    match = re.search(r"(\d+) connections in ([\d.]+) real seconds", out)
    if not match:
        raise SystemExit(f"could not read openssl s_time output:\n{out}")
    return int(match.group(1)) / float(match.group(2))


def wait_listening(port: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit(f"nothing listens on {port}")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp)
        plan, sockets = find_free_plan("127.0.0.1")
        for sock in sockets.values():
            sock.close()
        lab = subprocess.Popen([sys.executable, "-m", "tlsward.lab", "--state-dir", str(state), "--base-port",
                                str(plan.base)], stdin=subprocess.DEVNULL)
        try:
            while not (state / "lab.json").exists():
                if lab.poll() is not None:
                    raise SystemExit("lab did not start")
                time.sleep(0.05)
            lab_rate = s_time(plan.ports["healthy-ecdsa"])
            port = free_port()
            server = subprocess.Popen(
                ["openssl", "s_server", "-accept", str(port), "-cert", str(state / "certs" / "healthy-ecdsa.pem"),
                 "-key", str(state / "certs" / "healthy-ecdsa.key"), "-www", "-quiet"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
            try:
                wait_listening(port)
                native_rate = s_time(port)
            finally:
                server.terminate()
                server.wait(10)
        finally:
            lab.terminate()
            lab.wait(10)
    print(f"lab (asyncio, one process): {lab_rate:8.0f} handshakes/s")
    print(f"openssl s_server          : {native_rate:8.0f} handshakes/s")
    print(f"ratio lab / s_server      : {lab_rate / native_rate:8.2f}")


if __name__ == "__main__":
    main()
