"""Lifecycle errors: each message is one line naming the certificate, the file or the step."""

from __future__ import annotations

from tlsward.model.errors import Error


class LifecycleError(Error):
    """A step of renew -> deploy -> reload -> verify failed (the message says which, and why)."""


class LockHeldError(LifecycleError):
    """Another process is renewing this certificate right now."""

    def __init__(self, name: str, pid: int | None) -> None:
        super().__init__(f"renewal of {name} already running (pid {pid if pid is not None else 'unknown'})")
        self.name = name
        self.pid = pid
