"""A real nginx run from a test's own prefix directory: `nginx -t`, start and wait until it listens, reopen its
logs, stop. Shared by the tests that need the real server (deploy check, access-log ingest)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path


class NginxProcess:
    """``conf`` and ``port`` are set by the subclass that writes the config; ``start`` waits for ``port``."""

    prefix: Path
    conf: Path
    port: int
    proc: subprocess.Popen[str] | None = None

    @staticmethod
    def binary() -> str:
        path = shutil.which("nginx") or "/usr/sbin/nginx"
        assert Path(path).exists(), "nginx is required (`make test` installs it)"
        return path

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([self.binary(), *args, "-c", str(self.conf), "-p", str(self.prefix)],
                              capture_output=True, text=True, timeout=30, check=False)

    def check(self) -> None:
        proc = self._run("-t")
        assert proc.returncode == 0, f"nginx -t rejects the config: {proc.stderr}"

    def start(self) -> None:
        self.proc = subprocess.Popen([self.binary(), "-c", str(self.conf), "-p", str(self.prefix)],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     text=True)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"nginx exited: {self.proc.stderr.read() if self.proc.stderr else ''!r}"
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("nginx did not start listening within 15 s")

    def reopen(self) -> None:
        """``nginx -s reopen``: what logrotate's postrotate does."""
        proc = self._run("-s", "reopen")
        assert proc.returncode == 0, proc.stderr

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None
