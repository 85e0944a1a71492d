"""The scan engine: bounded concurrency (global and per host), results streamed as they complete.

Memory stays flat for any number of targets: at most ``concurrency`` targets are in flight and the
input is consumed lazily.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field, replace

from tlsward.model.certificate import REVOCATION_MODES, CertificateFacts, ChainAnalysis, RevocationStatus
from tlsward.model.deep import DeepScan
from tlsward.model.errors import Error, UsageError
from tlsward.model.policy import PolicyProfile
from tlsward.model.scan import Failure, FailureKind, ProbeFailure, ScanResult, Session, Timings
from tlsward.model.target import Target
from tlsward.net.connect import elapsed_ms, resolve
from tlsward.net.tls import ClientIdentity, make_context
from tlsward.probes.enumerate import DeepOptions, deep_scan
from tlsward.probes.legacy import probe_legacy
from tlsward.probes.revocation import RevocationCache, check_leaf, fetch_missing_issuers, stapled_state
from tlsward.probes.session import SessionProbe, probe_session
from tlsward.rules.certificate import ExpiryPolicy
from tlsward.rules.evaluate import backends_differ_finding, evaluate
from tlsward.rules.grade import grade
from tlsward.x509.facts import facts_from_der
from tlsward.x509.hostname import matches
from tlsward.x509.trust import TrustStore, ca_file_store, mozilla_store, system_store
from tlsward.x509.validate import analyse_chain

# Marks the end of one target's results on the engine's queue (a target may yield several with --all-ips).
_DONE = ScanResult(Target("done.invalid", 1), None, dt.datetime.min.replace(tzinfo=dt.UTC), Timings())

# Failures after which the legacy probe can still tell what the server wants.
LEGACY_TRIGGERS = frozenset({FailureKind.NO_SHARED_CIPHER, FailureKind.CLOSED, FailureKind.TLS_ALERT})


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
    policy: PolicyProfile | None = None   # --policy: violations become policy.violation findings
    deep: DeepOptions | None = None       # --deep: enumerate versions, suites, groups, features; then grade
    all_ips: bool = False          # scan every A/AAAA record of a name and compare what the backends serve
    revocation: str = "soft"       # off | soft (unreachable: a note) | hard (unreachable: a finding)
    host_stores: tuple[TrustStore, ...] = ()   # --all-stores: every store found on this host, one verdict each


def trust_stores(options: ScanOptions) -> list[TrustStore]:
    """Every store a verdict is given for; a bad --ca-file raises a one-line UsageError up front."""
    stores = [ca_file_store(path) for path in options.ca_files]
    if options.mozilla:
        stores.append(mozilla_store())
    if options.system:
        stores.append(system_store())
    known = {store.name for store in stores}
    stores.extend(store for store in options.host_stores if store.name not in known)
    return stores


@functools.lru_cache(maxsize=4096)
def cached_facts(der: bytes) -> CertificateFacts:
    """Endpoints share certificates (wildcards, SAN certificates, intermediates): parse each once."""
    return facts_from_der(der)


class ChainCache:
    """Trust verdicts depend on the chain, the stores and the time, not on the name asked for, and many
    endpoints serve the same chain: validate each chain once per ``ttl`` seconds, then only re-check the
    hostname (cheap) for each endpoint."""

    def __init__(self, ttl: float = 60.0, size: int = 4096) -> None:
        self.ttl = dt.timedelta(seconds=ttl)
        self.size = size
        self._entries: dict[tuple[tuple[bytes, ...], tuple[bytes, ...]], tuple[dt.datetime, ChainAnalysis]] = {}

    def analysis(self, chain_der: Sequence[bytes], hostname: str, stores: Sequence[TrustStore], now: dt.datetime,
                 extra_issuers: Sequence[bytes] = ()) -> ChainAnalysis:
        key = (tuple(chain_der), tuple(extra_issuers))
        entry = self._entries.get(key)
        if entry is None or not entry[0] <= now < entry[0] + self.ttl:
            if len(self._entries) >= self.size:
                self._entries.clear()
            entry = (now, analyse_chain(chain_der, hostname, stores, now, extra_issuers))
            self._entries[key] = entry
        base = entry[1]
        if base.hostname == hostname:
            return base
        leaf = cached_facts(chain_der[0])
        return replace(base, hostname=hostname, hostname_matches=matches(hostname, leaf.dns_names, leaf.ip_addresses))


class Scanner:
    """Holds what all scans share: one TLS client context and the trust stores."""

    def __init__(self, options: ScanOptions) -> None:
        self.options = options
        self.stores = trust_stores(options)
        self.ctx = make_context()
        self.client_ctx = make_context(options.client) if options.client is not None else None
        self._per_host: dict[str, asyncio.Semaphore] = {}
        self._chains = ChainCache()
        self._revocations: dict[tuple[tuple[bytes, ...], bytes, tuple[bytes, ...]],
                                tuple[dt.datetime, asyncio.Future[RevocationStatus | None]]] = {}
        if options.revocation not in REVOCATION_MODES:
            raise UsageError(f"revocation mode {options.revocation!r}: expected one of {', '.join(REVOCATION_MODES)}")
        self.revocation_cache = RevocationCache()   # CRLs, OCSP answers, AIA issuers: fetched once per run

    def _gate(self, address: str) -> asyncio.Semaphore:
        """The cap on connections at once to ``address`` (``--per-host``), shared by every scan of it."""
        return self._per_host.setdefault(address, asyncio.Semaphore(self.options.per_host))

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
            async with self._gate(address):
                probe = await probe_session(target, address, self.ctx, opts.timeout, dns_ms, self.client_ctx)
        except ProbeFailure as exc:
            failure = Failure.of(exc)
            legacy = await self._ask_legacy(target, address, failure) if address else None
            if legacy is None:
                return self._judge(ScanResult(target, address, now, Timings(dns_ms), failure=failure), now)
            probe, failure = legacy
            return await self._finish(target, address, now, probe, failure)
        return await self._finish(target, address, now, probe, None)

    async def _revocation(self, chain_der: tuple[bytes, ...], stapled: bytes | None, extra: tuple[bytes, ...],
                          now: dt.datetime) -> RevocationStatus | None:
        """One revocation check per served chain per minute, shared by every endpoint serving it (even
        while the first check is still running)."""
        key = (chain_der, stapled or b"", extra)
        entry = self._revocations.get(key)
        if entry is not None and entry[1].done() and not entry[1].cancelled() and entry[1].exception() is None \
                and entry[0] <= now < entry[0] + self._chains.ttl:
            return entry[1].result()
        if entry is None or not entry[0] <= now < entry[0] + self._chains.ttl or entry[1].done() \
                or entry[1].get_loop() is not asyncio.get_running_loop():  # a Scanner may outlive one event loop
            if len(self._revocations) >= self._chains.size:
                self._revocations.clear()
            task = asyncio.ensure_future(check_leaf(chain_der, self.options.revocation, self.revocation_cache, now,
                                                    self.options.timeout, stapled=stapled, extra_issuers=extra))
            entry = (now, task)
            self._revocations[key] = entry
        return await asyncio.shield(entry[1])

    def _expands(self, target: Target) -> bool:
        return self.options.all_ips and target.connect is None and not target.is_ip

    async def scan_backends(self, target: Target) -> list[ScanResult]:
        """Scan the name on every address it resolves to and flag backends that serve different leaves."""
        try:
            addresses = await resolve(target.host, target.port, self.options.timeout)
        except ProbeFailure:
            return [await self.scan_one(target)]  # reports the DNS failure the usual way
        results = list(await asyncio.gather(*(self.scan_one(replace(target, connect=a)) for a in addresses)))
        return compare_backends(results)

    async def _ask_legacy(self, target: Target, address: str,
                          failure: Failure) -> tuple[SessionProbe, Failure] | None:
        """After "nothing in common", learn what the server does accept (3DES, RC4, export ...)."""
        if failure.kind not in LEGACY_TRIGGERS or failure.phase != "handshake":
            return None
        answer = await probe_legacy(target, address, self.options.timeout)
        if answer is None:
            return None
        session = Session(version=answer.version, cipher=answer.cipher, cipher_code=answer.cipher_code,
                          group=None, alpn=None, ocsp_stapled=False, ocsp_status=None,
                          chain_der=answer.chain_der, completed=False)
        explained = replace(failure, message=f"{failure.message}; offered the legacy suites OpenSSL no longer "
                            f"speaks, the server chose {answer.cipher} ({answer.version})")
        return SessionProbe(session, Timings(), None), explained

    async def _finish(self, target: Target, address: str | None, now: dt.datetime, probe: SessionProbe,
                      failure: Failure | None) -> ScanResult:
        """Chain, trust, revocation and (with --deep) the enumeration. The enumeration starts first and runs
        while the chain is validated and the CRL or OCSP answer is fetched (another server): still one
        connection at a time to the target, but its waits overlap with our work."""
        opts = self.options
        enumeration = None
        if opts.deep is not None and address is not None and target.speaks_tls:
            enumeration = asyncio.ensure_future(deep_scan(target, address, opts.deep, self._gate(address)))
            await asyncio.sleep(0)   # let it send its first ClientHello before the validation below holds the loop
        try:
            return await self._complete(target, address, now, probe, failure, enumeration)
        finally:
            if enumeration is not None and not enumeration.done():
                enumeration.cancel()

    async def _complete(self, target: Target, address: str | None, now: dt.datetime, probe: SessionProbe,
                        failure: Failure | None, enumeration: asyncio.Future[DeepScan] | None) -> ScanResult:
        opts = self.options
        notes: list[str] = []
        chain = []
        analysis = None
        revocation = None
        session = probe.session
        if session is not None and session.chain_der:
            for index, der in enumerate(session.chain_der):
                try:
                    chain.append(cached_facts(der))
                except Error as exc:
                    notes.append(f"certificate #{index} of the served chain cannot be parsed: {exc}")
            extra: tuple[bytes, ...] = ()
            if len(chain) == len(session.chain_der):
                analysis = self._chains.analysis(session.chain_der, target.name, self.stores, now)
                if analysis.incomplete:   # would AIA caIssuers repair it (as browsers do)?
                    extra = await fetch_missing_issuers(session.chain_der, self.revocation_cache, opts.timeout,
                                                        notes=notes)
                    if extra:
                        analysis = self._chains.analysis(session.chain_der, target.name, self.stores, now, extra)
                revocation = await self._revocation(session.chain_der, session.ocsp_response, extra, now)
                if revocation is not None and not revocation.established and opts.revocation != "hard":
                    notes.append(f"revocation {revocation.status}: {revocation.reason}")
            if session.ocsp_response:
                session = replace(session, ocsp_status=stapled_state(session.chain_der, session.ocsp_response, now,
                                                                     extra))
        deep = None if enumeration is None else self._with_session_features(await enumeration, session)
        result = ScanResult(target, address, now, probe.timings, session=session, failure=failure,
                            chain=tuple(chain), analysis=analysis, http=probe.http, revocation=revocation,
                            notes=tuple(notes), deep=deep)
        return self._judge(result, now)

    @staticmethod
    def _with_session_features(deep: DeepScan, session: Session | None) -> DeepScan:
        """TLS 1.3 encrypts ALPN and the stapled OCSP response, so crafted hellos cannot see them; the quick
        scan's real handshake did: fill what the enumeration had to leave open."""
        if session is None or not session.completed:
            return deep
        features = deep.features
        if not features.alpn and session.alpn:
            features = replace(features, alpn=(session.alpn,))
        if features.ocsp_stapling is None:
            features = replace(features, ocsp_stapling=session.ocsp_stapled)
        return replace(deep, features=features)

    def _judge(self, result: ScanResult, now: dt.datetime) -> ScanResult:
        """Findings from the rules and the policy profile, most severe first; then the grade, which reads them."""
        opts = self.options
        findings = list(evaluate(result, now, opts.expiry, revocation_required=opts.revocation == "hard"))
        if opts.host_stores and result.analysis is not None:
            from tlsward.rules.base import Context  # only with --all-stores: keeps start-up lean
            from tlsward.rules.truststores import stores_fail_finding

            split = stores_fail_finding(result.analysis, {s.name for s in opts.host_stores}, Context(
                result.target, result.address))
            if split is not None:
                findings.append(split)
                findings.sort(key=lambda f: (-f.severity, f.id))
        if opts.policy is not None:
            from tlsward.policy import check_policy  # only with --policy: keeps start-up lean

            findings.extend(check_policy(result, opts.policy, now))
            findings.sort(key=lambda f: (-f.severity, f.id))
        judged = replace(result, findings=tuple(findings), policy=opts.policy.name if opts.policy else None)
        return replace(judged, grade=grade(judged))

    async def scan(self, targets: Iterable[Target]) -> AsyncIterator[ScanResult]:
        """Scan every target, yielding results in completion order; at most ``concurrency`` in flight."""
        queue: asyncio.Queue[ScanResult] = asyncio.Queue()
        tasks: set[asyncio.Task[None]] = set()
        iterator = iter(targets)
        in_flight = 0

        async def run(target: Target) -> None:
            try:
                results = await self.scan_backends(target) if self._expands(target) else [
                    await self.scan_one(target)]
                for result in results:
                    await queue.put(result)
            except Exception as exc:  # a bug must cost one target, never the batch
                failure = Failure(FailureKind.PROTOCOL_ERROR, f"internal error while scanning {target}: {exc!r}")
                await queue.put(ScanResult(target, None, dt.datetime.now(dt.UTC), Timings(), failure=failure))
            finally:
                await queue.put(_DONE)  # always, so the stream can never wait forever for this target

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
                if result is _DONE:
                    in_flight -= 1
                    refill()
                    continue
                yield result
        finally:
            for task in tasks:
                task.cancel()


def compare_backends(results: list[ScanResult]) -> list[ScanResult]:
    """Add ``name.backends_differ`` to every backend when the leaves served behind one name differ."""
    leaves = {r.address: r.chain[0] for r in results if r.chain}
    if len({leaf.sha256 for leaf in leaves.values()}) < 2:
        return results
    described = "; ".join(f"{addr} serves {leaf.sha256[:16]}… (expires {leaf.not_after:%Y-%m-%d})"
                          for addr, leaf in sorted(leaves.items(), key=lambda item: str(item[0])))
    extra = backends_differ_finding(results[0].target, described)
    return [replace(r, findings=tuple(sorted((*r.findings, extra), key=lambda f: (-f.severity, f.id))))
            for r in results]


async def scan_all(targets: Sequence[Target], options: ScanOptions) -> list[ScanResult]:
    scanner = Scanner(options)
    return [result async for result in scanner.scan(targets)]
