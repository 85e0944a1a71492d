"""The scan engine: bounded concurrency (global and per host), results streamed as they complete.

Memory stays flat for any number of targets: at most ``concurrency`` targets are in flight and the
input is consumed lazily.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field, replace

from tlsward.model.errors import Error
from tlsward.model.scan import Failure, FailureKind, ProbeFailure, ScanResult, Timings
from tlsward.model.target import Target
from tlsward.net.connect import elapsed_ms, resolve
from tlsward.net.tls import ClientIdentity, make_context
from tlsward.probes.session import probe_session
from tlsward.rules.certificate import ExpiryPolicy
from tlsward.rules.evaluate import evaluate
from tlsward.x509.facts import facts_from_der
from tlsward.x509.trust import TrustStore, ca_file_store, mozilla_store, system_store
from tlsward.x509.validate import analyse_chain


@dataclass(frozen=True, slots=True)
class ScanOptions:
    timeout: float = 5.0
    concurrency: int = 200
    per_host: int = 4
    ca_files: tuple[str, ...] = ()
    mozilla: bool = True
    system: bool = True
    client: ClientIdentity | None = None
    expiry: ExpiryPolicy = field(default_factory=ExpiryPolicy)


def trust_stores(options: ScanOptions) -> list[TrustStore]:
    """Every store a verdict is given for; a bad --ca-file raises a one-line UsageError up front."""
    stores = [ca_file_store(path) for path in options.ca_files]
    if options.mozilla:
        stores.append(mozilla_store())
    if options.system:
        stores.append(system_store())
    return stores


class Scanner:
    """Holds what all scans share: one TLS client context and the trust stores."""

    def __init__(self, options: ScanOptions) -> None:
        self.options = options
        self.stores = trust_stores(options)
        self.ctx = make_context(options.client)
        self._per_host: dict[str, asyncio.Semaphore] = {}

    async def scan_one(self, target: Target) -> ScanResult:
        now = dt.datetime.now(dt.UTC)
        opts = self.options
        dns_ms = None
        address = target.connect
        try:
            if address is None:
                if target.is_ip:
                    address = target.host
                else:
                    start = time.perf_counter()
                    address = (await resolve(target.host, target.port, opts.timeout))[0]
                    dns_ms = elapsed_ms(start)
            gate = self._per_host.setdefault(address, asyncio.Semaphore(opts.per_host))
            async with gate:
                probe = await probe_session(target, address, self.ctx, opts.timeout, dns_ms)
        except ProbeFailure as exc:
            result = ScanResult(target, address, now, Timings(dns_ms), failure=Failure.of(exc))
            return replace(result, findings=evaluate(result, now, opts.expiry))
        notes: list[str] = []
        chain = []
        analysis = None
        if probe.session is not None and probe.session.chain_der:
            for index, der in enumerate(probe.session.chain_der):
                try:
                    chain.append(facts_from_der(der))
                except Error as exc:
                    notes.append(f"certificate #{index} of the served chain cannot be parsed: {exc}")
            if len(chain) == len(probe.session.chain_der):
                analysis = analyse_chain(probe.session.chain_der, target.name, self.stores, now)
        result = ScanResult(target, address, now, probe.timings, session=probe.session, chain=tuple(chain),
                            analysis=analysis, http=probe.http, notes=tuple(notes))
        return replace(result, findings=evaluate(result, now, opts.expiry))

    async def scan(self, targets: Iterable[Target]) -> AsyncIterator[ScanResult]:
        """Scan every target, yielding results in completion order; at most ``concurrency`` in flight."""
        queue: asyncio.Queue[ScanResult] = asyncio.Queue()
        tasks: set[asyncio.Task[None]] = set()
        iterator = iter(targets)
        in_flight = 0

        async def run(target: Target) -> None:
            try:
                result = await self.scan_one(target)
            except Exception as exc:  # a bug must cost one target, never the batch
                failure = Failure(FailureKind.PROTOCOL_ERROR, f"internal error while scanning: {exc!r}")
                result = ScanResult(target, target.connect, dt.datetime.now(dt.UTC), Timings(), failure=failure)
            await queue.put(result)

        def refill() -> None:
            nonlocal in_flight
            while in_flight < self.options.concurrency:
                target = next(iterator, None)
                if target is None:
                    return
                in_flight += 1
                task = asyncio.create_task(run(target))
                tasks.add(task)
                task.add_done_callback(tasks.discard)

        refill()
        try:
            while in_flight:
                result = await queue.get()
                in_flight -= 1
                refill()
                yield result
        finally:
            for task in tasks:
                task.cancel()


async def scan_all(targets: Sequence[Target], options: ScanOptions) -> list[ScanResult]:
    scanner = Scanner(options)
    return [result async for result in scanner.scan(targets)]
