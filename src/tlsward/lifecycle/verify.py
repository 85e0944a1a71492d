"""After a reload: does every configured endpoint now serve the new certificate, with a chain that validates?

The check is tlsward's own scanner (the quick probe ``tlsward scan`` runs), trusting only the configured CA file,
so "verified" means what a client of that CA would see. nginx and haproxy reload gracefully: old workers may
answer for a moment with the old certificate, so each endpoint is retried for a bounded time until it serves
the new leaf several times in a row (:data:`STABLE_CHECKS`); only then, or at the deadline, is the verdict given.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tlsward.engine import Scanner, ScanOptions
from tlsward.lifecycle.config import VerifyEndpoint
from tlsward.model.errors import Error
from tlsward.model.scan import ScanResult
from tlsward.model.target import Target

RETRY_EVERY_S = 0.2
# A graceful reload leaves the old workers accepting for a moment after the first new one answers: one good
# handshake proves little, so the new certificate must be served this many times in a row.
STABLE_CHECKS = 3


@dataclass(frozen=True, slots=True)
class EndpointCheck:
    endpoint: VerifyEndpoint
    ok: bool
    served_sha256: str | None
    reason: str = ""            # empty when ok
    attempts: int = 0


def judge(result: ScanResult, expected_sha256: str, sni: str | None) -> tuple[bool, str | None, str]:
    """(ok, served leaf fingerprint, reason) for one scan of one endpoint."""
    if result.failure is not None:
        return False, None, f"handshake failed: {result.failure.message}"
    if not result.chain:
        return False, None, "no certificate presented"
    served = result.chain[0].sha256.lower()
    if served != expected_sha256.lower():
        return False, served, f"serves {served[:16]}… instead of the new {expected_sha256[:16]}…"
    analysis = result.analysis
    if analysis is None or not analysis.trusted:
        why = "; ".join(v.reason for v in (analysis.verdicts if analysis else ()) if v.reason) or "no verdict"
        return False, served, f"serves the new certificate but its chain does not validate: {why}"
    if sni is not None and not analysis.hostname_matches:
        return False, served, f"serves the new certificate but it does not cover {sni}"
    return True, served, ""


async def _verify(endpoints: Sequence[VerifyEndpoint], expected_sha256: str, trust: Path,
                  timeout_s: float) -> list[EndpointCheck]:
    scanner = Scanner(ScanOptions(timeout=min(5.0, timeout_s), ca_files=(str(trust),), mozilla=False, system=False,
                                  revocation="off"))
    deadline = time.monotonic() + timeout_s

    async def one(endpoint: VerifyEndpoint) -> EndpointCheck:
        try:
            target = Target.parse(endpoint.target, sni=endpoint.sni)
        except Error as exc:
            return EndpointCheck(endpoint, False, None, str(exc))
        attempts = streak = 0
        while True:
            attempts += 1
            result = await scanner.scan_one(target)
            ok, served, reason = judge(result, expected_sha256, endpoint.sni)
            streak = streak + 1 if ok else 0
            if streak >= STABLE_CHECKS or time.monotonic() + RETRY_EVERY_S >= deadline:
                if ok and streak < STABLE_CHECKS:
                    reason = f"served the new certificate only {streak} times in a row before the deadline"
                return EndpointCheck(endpoint, streak >= STABLE_CHECKS, served, reason, attempts)
            await asyncio.sleep(RETRY_EVERY_S)

    return list(await asyncio.gather(*(one(endpoint) for endpoint in endpoints)))


def verify_endpoints(endpoints: Sequence[VerifyEndpoint], expected_sha256: str, trust: Path,
                     timeout_s: float) -> list[EndpointCheck]:
    """Check every endpoint (in parallel), each retried until it serves ``expected_sha256`` with a chain valid
    against ``trust``, or ``timeout_s`` has passed. Runs its own event loop: call it from a thread, not a loop."""
    if not endpoints:
        return []
    return asyncio.run(_verify(endpoints, expected_sha256, trust, timeout_s))
