"""Managed certificates: what one renewal run did to one certificate (renew -> deploy -> reload -> verify).

Plain frozen data: ``tlsward.lifecycle`` produces these, ``tlsward.storage.lifecycle`` keeps them as history, and
the monitor turns the newest failed one into a ``cert.deploy_failed`` / ``cert.renewal_failed`` alert.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum


class Outcome(StrEnum):
    """How one run for one certificate ended. Only ``verified`` (and ``deployed`` when nothing was to be verified)
    is success; ``rolled_back`` means the previous files are back and serving; ``failed`` means nothing changed
    on disk (issuance failed, a lock was held, the config was bad)."""

    VERIFIED = "verified"          # deployed, reloaded, and every endpoint serves the new certificate
    DEPLOYED = "deployed"          # deployed and reloaded; no endpoints configured to verify
    ROLLED_BACK = "rolled_back"    # deploy, reload or verify failed: the previous files were restored
    FAILED = "failed"              # could not obtain or deploy; the files on disk were not changed

    @property
    def ok(self) -> bool:
        return self in (Outcome.VERIFIED, Outcome.DEPLOYED)


@dataclass(frozen=True, slots=True)
class RenewalEvent:
    """One attempt for one managed certificate. Fingerprints are SHA-256 of the leaf DER, hex."""

    certificate: str                         # the managed certificate's name in certificates.toml
    source: str                              # "ca" | "acme"
    outcome: Outcome
    started_at: dt.datetime                  # UTC
    finished_at: dt.datetime                 # UTC
    reason: str = ""                         # why it failed or was rolled back; empty on success
    old_sha256: str | None = None            # on disk before the run
    new_sha256: str | None = None            # obtained by the run (None when obtaining failed)
    new_not_after: dt.datetime | None = None
    endpoints: tuple[str, ...] = ()          # the endpoints that must serve it
    steps: tuple[tuple[str, float], ...] = ()   # (step, milliseconds): obtain, deploy, reload, verify, rollback
    id: int | None = None

    @property
    def stage(self) -> str:
        """Where a failure happened, for alerts: renewal (obtaining) or deploy (deploy/reload/verify)."""
        return "deploy" if self.outcome is Outcome.ROLLED_BACK or self.new_sha256 is not None else "renewal"


@dataclass(frozen=True, slots=True)
class RenewalSettings:
    """``[renewal]`` in the monitor config: the managed-certificates file the monitor renews on its schedule."""

    certificates: str                        # path of certificates.toml
    interval_s: float = 3600.0               # how often the monitor runs `renew --all`
