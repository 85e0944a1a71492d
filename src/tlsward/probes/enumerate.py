"""The deep scan: which protocol versions, cipher suites, groups and features a server accepts, learned from
crafted ClientHellos over sequential connections (``tlsward scan --deep``).

Enumeration is by elimination: offer many candidates, note the one the server picks, remove it and offer the
rest again, until the server refuses. That costs about one connection per accepted item (plus one per refused
offer) instead of one per candidate, and yields the server's order of preference on the way.

* Versions SSL 3.0 to TLS 1.2: ``legacy_version`` = the version, no supported_versions, every assigned suite as
  a candidate (at most :data:`MAX_SUITES_PER_HELLO` per hello, mainstream suites first; before TLS 1.2 only the
  suites that can exist there, :data:`PRE_TLS12_CANDIDATES`, which fit one hello). A version is accepted
  iff a ServerHello carries exactly that version. The accepted suites are then offered reversed once: the same
  first pick means the server imposes its order (``server_order``).
* TLS 1.3: supported_versions = [TLS 1.3] only, the TLS 1.3 suites, key shares for x25519 and secp256r1 and
  every registry group in supported_groups; a HelloRetryRequest names the chosen suite too.
* Groups: with TLS 1.3, elimination over supported_groups with an x25519 key share only while x25519 is still
  offered: the answer names a group in its key_share (``via="key_share"``) or in a HelloRetryRequest
  (``via="hello_retry_request"``). Without TLS 1.3, elimination over the named curves with the accepted ECDHE
  suites, reading the curve from the ServerKeyExchange (``via="server_key_exchange"``); DHE prime sizes are
  reported per suite (``AcceptedSuite.dh_bits``). **Reported groups**: the accepted ones, in the server's order,
  then every post-quantum group (ML-KEM and its hybrids) the server did not accept, with ``accepted=False``
  (``None`` when the enumeration was cut short); other refused groups are omitted.
* Features reuse the ServerHellos already seen where they can (secure renegotiation, session tickets, OCSP
  stapling); session IDs are judged from hellos *without* the session_ticket extension, because OpenSSL sends
  an empty session ID whenever it is about to issue a ticket. Compression and ALPN cost one hello each (ALPN is
  itself an elimination over ``h2``, ``http/1.1``), fallback SCSV one more.

Verdicts are three-valued: an alert is a clean "no"; a timeout, a reset or a close without an alert is retried
``retries`` times and then inconclusive (``None``, with a note), never "not supported". Every loop is bounded by
its candidate count and by ``max_connections``. The scan stops, leaving what is undecided ``None``, when an SMTP
server answers ``421``, when STARTTLS itself fails, and after :data:`GIVE_UP_AFTER` inconclusive exchanges in a
row (:data:`GIVE_UP_AFTER_ONCE_ANSWERED` once the server has answered anything: some servers refuse a hello by
closing the connection without an alert, which stays inconclusive but is no reason to give up on the rest).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum

from tlsward.model.deep import AcceptedSuite, DeepScan, Features, GroupSupport, VersionSupport
from tlsward.model.errors import WireError
from tlsward.model.registry.alerts import Alert, AlertDescription
from tlsward.model.registry.cipher_suites import CIPHER_SUITES, CipherSuite, cipher_by_code, cipher_name
from tlsward.model.registry.groups import NAMED_GROUPS, group_by_code, group_name
from tlsward.model.registry.versions import TlsVersion, version_name
from tlsward.model.scan import FailureKind, ProbeFailure
from tlsward.model.target import Target
from tlsward.net import starttls
from tlsward.net.connect import close, open_tcp
from tlsward.wire.client_hello import (
    DEFLATE,
    NULL_COMPRESSION,
    SECP256R1,
    X25519,
    ClientHelloSpec,
    build_client_hello,
)
from tlsward.wire.server_messages import ExtensionType, ServerFlightParser, ServerHello, ServerKeyExchange


@dataclass(frozen=True, slots=True)
class DeepOptions:
    """How hard a deep scan may push one endpoint: connections are capped, paced and counted."""

    timeout: float = 3.0        # per connection (connect, each STARTTLS reply, the server's answer)
    delay: float = 0.0          # seconds to wait between connections to the host (pacing, --delay)
    parallel: int = 1           # connections at once; one at a time with a delay or over STARTTLS (see _Scanner)
    max_connections: int = 150  # hard budget per endpoint; stop and mark the rest inconclusive
    retries: int = 1            # a timeout/reset is retried this many times, then the verdict is None


DEFAULT_OPTIONS = DeepOptions()
MAX_SUITES_PER_HELLO = 128     # some servers mishandle longer suite lists; 128 keeps a hello near 400 bytes
# Inconclusive exchanges in a row before the endpoint counts as unresponsive: few while it has never answered
# (down, tarpit), more once it has (some servers close silently instead of alerting when they refuse a hello).
GIVE_UP_AFTER = 3
GIVE_UP_AFTER_ONCE_ANSWERED = 6
ALPN_PROTOCOLS = ("h2", "http/1.1")

SSL3, TLS10, TLS11, TLS12, TLS13 = (TlsVersion.SSLv3, TlsVersion.TLSv1_0, TlsVersion.TLSv1_1, TlsVersion.TLSv1_2,
                                    TlsVersion.TLSv1_3)
LEGACY_VERSIONS = (TLS12, TLS11, TLS10, SSL3)      # probing order: the most relevant first
_SKE_KEY_EXCHANGES = frozenset({"ECDHE", "DHE", "ECDHE_PSK", "DHE_PSK", "SRP"})
# STARTTLS failures that will not go away by asking again: stop instead of retrying every hello.
_PERMANENT_STARTTLS = frozenset({
    FailureKind.STARTTLS_NOT_OFFERED, FailureKind.STARTTLS_FAILED, FailureKind.PLAINTEXT_HTTP,
    FailureKind.NOT_TLS, FailureKind.PROTOCOL_ERROR, FailureKind.TLS_ALERT,
})


# --- candidates, in the order a modern client would offer them ---------------------------------------------------
def _legacy_rank(suite: CipherSuite) -> tuple[bool, bool, bool, bool, int, int]:
    mainstream = suite.key_exchange in ("ECDHE", "DHE", "RSA") and suite.authentication in ("RSA", "ECDSA", "DSS")
    kx_rank = {"ECDHE": 0, "DHE": 1}.get(suite.key_exchange, 2)
    return (not mainstream, suite.weak, not suite.forward_secrecy, not suite.aead, kx_rank, suite.code)


LEGACY_CANDIDATES: tuple[int, ...] = tuple(
    s.code for s in sorted((s for s in CIPHER_SUITES if not s.tls13 and not s.signaling), key=_legacy_rank))
# Before TLS 1.2 only suites with an HMAC-SHA1/MD5 (or no) MAC exist: AEAD and SHA-256/384 suites "MUST NOT be
# negotiated" in older versions (RFC 5246 A.5, RFC 5288/5289). They fit one hello, so a refused old version costs
# one connection.
PRE_TLS12_CANDIDATES: tuple[int, ...] = tuple(
    code for code in LEGACY_CANDIDATES
    if (suite := cipher_by_code(code)) is not None and not suite.aead and suite.mac in ("SHA1", "MD5", "NULL"))
_RFC8446_SUITES = (0x1301, 0x1302, 0x1303, 0x1304, 0x1305)
TLS13_CANDIDATES: tuple[int, ...] = _RFC8446_SUITES + tuple(
    s.code for s in CIPHER_SUITES if s.tls13 and s.code not in _RFC8446_SUITES)
_COMMON_GROUPS = (0x001D, 0x0017, 0x0018, 0x0019, 0x001E)  # x25519, secp256r1, secp384r1, secp521r1, x448
_HYBRIDS = (0x11EC, 0x11EB, 0x11ED)                          # X25519MLKEM768, SecP256r1MLKEM768, SecP384r1MLKEM1024
_FFDHE = tuple(g.code for g in NAMED_GROUPS if g.kind == "ffdhe")
TLS13_GROUP_CANDIDATES: tuple[int, ...] = _COMMON_GROUPS + _HYBRIDS + _FFDHE + tuple(
    g.code for g in NAMED_GROUPS
    if g.kind != "explicit" and g.code not in (*_COMMON_GROUPS, *_HYBRIDS, *_FFDHE))
# TLS <= 1.2 hellos offer named curves only: per RFC 7919 a server that sees FFDHE groups it does not support
# must not pick a DHE suite, which would hide DHE suites it accepts with its own parameters.
EC_GROUP_CANDIDATES: tuple[int, ...] = tuple(
    g for g in TLS13_GROUP_CANDIDATES if (entry := group_by_code(g)) is not None and entry.kind == "ecdhe")
POST_QUANTUM_GROUPS: tuple[int, ...] = tuple(g.code for g in NAMED_GROUPS if g.post_quantum)


# --- one exchange --------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class _Answer:
    """What one ClientHello got back: a ServerHello (with the ServerKeyExchange if one came), or an alert;
    ``problem`` set means neither arrived (inconclusive) and says why."""

    hello: ServerHello | None = None
    key_exchange: ServerKeyExchange | None = None
    alert: Alert | None = None
    problem: str = ""

    @property
    def refusal(self) -> str:
        return f"{self.alert.name} alert" if self.alert is not None else "no ServerHello"


class _Verdict(Enum):
    CHOSE = "chose"          # the server picked ``code`` from the offer
    REFUSED = "refused"      # a clean no to this offer; other candidates may still be accepted
    FINISHED = "finished"    # a clean no to every remaining candidate (e.g. the version itself is refused)
    ODD = "odd"              # an answer that does not fit the question: stop, undecided


@dataclass(frozen=True, slots=True)
class _Pick:
    verdict: _Verdict
    code: int = 0
    why: str = ""


Hello = Callable[[Sequence[int]], bytes]
Reader = Callable[[_Answer, bool], _Pick]   # (answer, found anything yet) -> verdict


@dataclass(slots=True)
class _Elimination:
    """Offer the remaining candidates (a window of them), remove what the server picks, until it refuses."""

    candidates: Sequence[int]
    hello: Hello
    read: Reader
    window: int
    remaining: list[int] = field(default_factory=list)
    found: list[tuple[int, _Answer]] = field(default_factory=list)
    offers_with_finds: set[int] = field(default_factory=set)
    offer_index: int = 0
    start: int = 0
    complete: bool = False     # every candidate is decided
    stopped: bool = False      # cut short: ``why`` says why
    why: str = ""              # the last refusal ("handshake_failure alert") or why it stopped

    def __post_init__(self) -> None:
        self.remaining = list(self.candidates)

    @property
    def done(self) -> bool:
        return self.complete or self.stopped

    async def run(self, scanner: _Scanner, *, until_first: bool = False) -> _Elimination:
        """Step until done (or, with ``until_first``, until something was found). Bounded: every step removes a
        candidate or moves the window past at least one."""
        for _ in range(2 * len(self.candidates) + 2):
            if self.done or (until_first and self.found):
                return self
            await self._step(scanner)
        if not self.done and not (until_first and self.found):
            self.stopped, self.why = True, "elimination did not converge"
        return self

    async def _step(self, scanner: _Scanner) -> None:
        offer = self.remaining[self.start:self.start + self.window]
        if not offer:
            self.complete = True
            return
        answer = await scanner.exchange(self.hello(offer))
        if answer.problem:
            self.stopped, self.why = True, answer.problem
            return
        pick = self.read(answer, bool(self.found))
        if pick.verdict is _Verdict.CHOSE and pick.code in offer:
            self.remaining.remove(pick.code)
            self.found.append((pick.code, answer))
            self.offers_with_finds.add(self.offer_index)
        elif pick.verdict is _Verdict.CHOSE:
            self.stopped, self.why = True, f"the server chose 0x{pick.code:04X}, which was not offered"
        elif pick.verdict is _Verdict.REFUSED:
            self.start += len(offer)
            self.offer_index += 1
            self.why = pick.why
        elif pick.verdict is _Verdict.FINISHED:
            self.complete, self.why = True, pick.why
        else:
            self.stopped, self.why = True, pick.why

    @property
    def codes(self) -> list[int]:
        return [code for code, _ in self.found]


# --- reading answers -------------------------------------------------------------------------------------------
def _describe(hello: ServerHello) -> str:
    kind = "HelloRetryRequest" if hello.is_hello_retry_request else "ServerHello"
    return f"a {hello.version_name} {kind}"


def _version_reader(version: int) -> Reader:
    def read(answer: _Answer, found_any: bool) -> _Pick:
        hello = answer.hello
        if hello is None:
            refused_version = answer.alert is not None and answer.alert.description == AlertDescription.PROTOCOL_VERSION
            return _Pick(_Verdict.FINISHED if refused_version and not found_any else _Verdict.REFUSED,
                         why=answer.refusal)
        if hello.version == version and (version == TLS13 or not hello.is_hello_retry_request):
            return _Pick(_Verdict.CHOSE, hello.cipher_suite)
        if not found_any and hello.version < version:
            return _Pick(_Verdict.FINISHED, why=f"the server answered with {_describe(hello)}")
        return _Pick(_Verdict.ODD, why=f"unexpected answer: {_describe(hello)}")
    return read


def _tls13_group_reader(answer: _Answer, found_any: bool) -> _Pick:
    hello = answer.hello
    if hello is None:
        return _Pick(_Verdict.REFUSED, why=answer.refusal)
    if hello.version != TLS13 or hello.key_share_group is None:
        return _Pick(_Verdict.ODD, why=f"unexpected answer: {_describe(hello)} without a key_share")
    return _Pick(_Verdict.CHOSE, hello.key_share_group)


def _ske_group_reader(version: int) -> Reader:
    def read(answer: _Answer, found_any: bool) -> _Pick:
        hello, kx = answer.hello, answer.key_exchange
        if hello is None:
            return _Pick(_Verdict.REFUSED, why=answer.refusal)
        if hello.version != version:
            return _Pick(_Verdict.ODD, why=f"unexpected answer: {_describe(hello)}")
        if kx is None or kx.named_group is None:
            what = "no ServerKeyExchange" if kx is None else f"an explicit curve (curve_type {kx.curve_type})"
            return _Pick(_Verdict.ODD, why=f"{what} instead of a named curve")
        return _Pick(_Verdict.CHOSE, kx.named_group)
    return read


def _alpn_reader(answer: _Answer, found_any: bool) -> _Pick:
    hello = answer.hello
    if hello is None:
        return _Pick(_Verdict.REFUSED, why=answer.refusal)
    if hello.alpn is None:
        return _Pick(_Verdict.REFUSED, why="no ALPN in the ServerHello")
    if hello.alpn not in ALPN_PROTOCOLS:
        return _Pick(_Verdict.ODD, why=f"the server selected ALPN {hello.alpn!r}, which was not offered")
    return _Pick(_Verdict.CHOSE, ALPN_PROTOCOLS.index(hello.alpn))


def _expects_key_exchange(hello: ServerHello) -> bool:
    suite = hello.cipher
    return suite is not None and (suite.key_exchange in _SKE_KEY_EXCHANGES or suite.export)


def _enough(parser: ServerFlightParser) -> bool:
    """Stop reading once we have what a deep scan needs: the ServerHello, and its ServerKeyExchange if any."""
    if parser.complete:
        return True
    hello = parser.server_hello
    if hello is None:
        return False
    return hello.tls13 or not _expects_key_exchange(hello) or parser.server_key_exchange is not None


def _accepted_suite(code: int, answer: _Answer) -> AcceptedSuite:
    kx, hello = answer.key_exchange, answer.hello
    group = kx.group_name if kx is not None else None
    if group is None and hello is not None and hello.tls13:
        group = hello.key_share_group_name
    bits = kx.dh_prime_bits if kx is not None else None
    suite = cipher_by_code(code)
    if suite is None:  # not offered by us, so not reachable; kept total for hostile servers
        return AcceptedSuite(code, cipher_name(code), "unknown", False, False, True, group, bits)
    return AcceptedSuite(code, suite.name, suite.key_exchange, suite.forward_secrecy, suite.aead, suite.weak,
                         group, bits)


def _group_support(code: int, accepted: bool | None, via: str = "") -> GroupSupport:
    entry = group_by_code(code)
    return GroupSupport(group_name(code), code, entry is not None and entry.post_quantum, accepted, via)


# --- the scanner -----------------------------------------------------------------------------------------------
@dataclass(slots=True)
class _Samples:
    """TLS 1.0-1.2 ServerHellos seen so far, for features that any of them answers."""

    with_ticket_ext: list[ServerHello] = field(default_factory=list)      # hellos that offered session_ticket
    without_ticket_ext: list[ServerHello] = field(default_factory=list)

    def add(self, hello: ServerHello | None, *, ticket_offered: bool) -> None:
        if hello is not None and TLS10 <= hello.version <= TLS12 and not hello.is_hello_retry_request:
            (self.with_ticket_ext if ticket_offered else self.without_ticket_ext).append(hello)

    @property
    def all(self) -> list[ServerHello]:
        return self.with_ticket_ext + self.without_ticket_ext


class _Scanner:
    def __init__(self, target: Target, address: str, options: DeepOptions,
                 address_gate: asyncio.Semaphore | None = None) -> None:
        self.target = target
        self.address = address
        self.options = options
        self.connections = 0
        self.notes: list[str] = []
        self.rate_limited = ""
        self.stopped = ""
        self._failures_in_a_row = 0
        self._answered = False
        self._last_close: float | None = None
        self.versions: dict[int, VersionSupport] = {}
        self.groups: tuple[GroupSupport, ...] = ()
        self.samples = _Samples()
        # Independent questions (each version, the groups, the features) run side by side up to ``parallel``
        # connections at once: the same connections, less waiting. Paced scans (--delay) and mail or database
        # servers (STARTTLS: they count connections per client and answer 421) get one at a time. The caller's
        # ``address_gate`` (the scanner's per-address cap) is held as well, so endpoints that share an address
        # share its cap.
        paced = options.delay > 0 or target.starttls is not None
        self._slots = asyncio.Semaphore(1 if paced else max(1, options.parallel))
        self._address_gate = address_gate

    # -- connections ------------------------------------------------------------------------------------------
    def stop(self, reason: str) -> None:
        if not self.stopped:
            self.stopped = reason
            self.notes.append(f"deep scan stopped early: {reason}; what was not decided is inconclusive")

    async def exchange(self, hello: bytes) -> _Answer:
        """One question: connect, send ``hello``, read the answer; retried on timeouts, resets and silent closes."""
        async with self._slots:   # a question and its retries hold one slot
            if self._address_gate is None:
                return await self._ask(hello)
            async with self._address_gate:
                return await self._ask(hello)

    async def _ask(self, hello: bytes) -> _Answer:
        answer = _Answer(problem=self.stopped)
        for _ in range(max(0, self.options.retries) + 1):
            if self.stopped:
                return _Answer(problem=self.stopped)
            if self.connections >= self.options.max_connections:
                self.stop(f"connection budget of {self.options.max_connections} used up")
                return _Answer(problem=self.stopped)
            answer, transient = await self._attempt(hello)
            if not answer.problem:
                self._failures_in_a_row, self._answered = 0, True
                return answer
            if not transient:
                break
        self._failures_in_a_row += 1
        limit = GIVE_UP_AFTER_ONCE_ANSWERED if self._answered else GIVE_UP_AFTER
        if self._failures_in_a_row >= limit:
            self.stop(f"{limit} questions in a row got no answer (last: {answer.problem})")
        return answer

    async def _pace(self) -> None:
        if self._last_close is not None and self.options.delay > 0:
            wait = self._last_close + self.options.delay - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)

    async def _attempt(self, hello: bytes) -> tuple[_Answer, bool]:
        """One connection. Returns the answer and, when it is inconclusive, whether asking again may help."""
        await self._pace()
        self.connections += 1
        timeout = self.options.timeout
        try:
            reader, writer = await open_tcp(self.address, self.target.port, timeout)
        except ProbeFailure as exc:
            self._last_close = time.monotonic()
            return _Answer(problem=str(exc)), True
        try:
            if self.target.starttls is not None:
                await starttls.upgrade(self.target.starttls, reader, writer, timeout, self.target.name)
            writer.write(hello)
            await writer.drain()
            return await self._read(reader, timeout)
        except ProbeFailure as exc:
            if exc.kind is FailureKind.RATE_LIMITED:
                self.rate_limited = str(exc)
                self.stop(f"rate limited ({exc})")
                return _Answer(problem=f"rate limited: {exc}"), False
            if exc.kind in _PERMANENT_STARTTLS:
                self.stop(f"STARTTLS failed: {exc}")
                return _Answer(problem=f"STARTTLS failed: {exc}"), False
            return _Answer(problem=str(exc)), True
        except TimeoutError:
            return _Answer(problem=f"no answer within {timeout:g}s"), True
        except (OSError, EOFError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else repr(exc)
            return _Answer(problem=f"connection reset or broken ({reason})"), True
        finally:
            await close(writer)
            self._last_close = time.monotonic()

    async def _read(self, reader: asyncio.StreamReader, timeout: float) -> tuple[_Answer, bool]:
        parser = ServerFlightParser()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        eof = False
        try:
            while not _enough(parser):
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise TimeoutError
                data = await asyncio.wait_for(reader.read(65536), remaining)
                if not data:
                    eof = True
                    parser.feed_eof()
                    break
                parser.feed(data)
        except WireError as exc:
            return _Answer(problem=f"malformed answer: {exc}"), False
        except (TimeoutError, OSError):
            if parser.server_hello is None:
                raise
            # the ServerHello came; whatever was still missing (the ServerKeyExchange) stays unknown
        if parser.not_tls is not None:
            return _Answer(problem=f"the answer is not TLS: {parser.not_tls}"), False
        if parser.server_hello is not None:
            return _Answer(parser.server_hello, parser.server_key_exchange, parser.alert), False
        if parser.alert is not None:
            return _Answer(alert=parser.alert), False
        what = "closed the connection" if eof else "stopped answering"
        return _Answer(problem=f"the server {what} without a ServerHello or an alert"), True

    # -- hellos -----------------------------------------------------------------------------------------------
    def legacy_hello(self, version: int, suites: Sequence[int], *, groups: Sequence[int] = EC_GROUP_CANDIDATES,
                     alpn: Sequence[str] = (), session_ticket: bool = True, fallback_scsv: bool = False,
                     compression_methods: Sequence[int] = (NULL_COMPRESSION,)) -> bytes:
        """A TLS 1.2-or-older hello with legacy_version = ``version`` (an SSL 3.0 hello carries only SNI)."""
        return build_client_hello(ClientHelloSpec(
            list(suites), max_version=version, min_version=version, server_name=self.target.sni, groups=list(groups),
            alpn=list(alpn), session_ticket=session_ticket, fallback_scsv=fallback_scsv,
            compression_methods=list(compression_methods), record_version=min(version, TLS10)))

    def tls13_hello(self, suites: Sequence[int], groups: Sequence[int] = TLS13_GROUP_CANDIDATES,
                    key_shares: Sequence[int] = (X25519, SECP256R1)) -> bytes:
        return build_client_hello(ClientHelloSpec(
            list(suites), max_version=TLS13, min_version=TLS13, server_name=self.target.sni, groups=list(groups),
            key_share_groups=list(key_shares)))

    # -- phases -----------------------------------------------------------------------------------------------
    def _elimination(self, version: int) -> _Elimination:
        if version == TLS13:
            return _Elimination(TLS13_CANDIDATES, self.tls13_hello, _version_reader(TLS13), len(TLS13_CANDIDATES))
        candidates = LEGACY_CANDIDATES if version == TLS12 else PRE_TLS12_CANDIDATES
        return _Elimination(candidates, lambda offer: self.legacy_hello(version, offer),
                            _version_reader(version), MAX_SUITES_PER_HELLO)

    async def enumerate_versions(self) -> None:
        order = (TLS13, *LEGACY_VERSIONS)
        runs = {version: self._elimination(version) for version in order}
        # First a verdict for every version (one or a few hellos each), then the suites of the accepted ones:
        # if the budget runs out, the versions are known. Versions are independent questions: side by side.
        await asyncio.gather(*(runs[version].run(self, until_first=True) for version in order))

        async def suites(version: TlsVersion) -> VersionSupport:
            run = runs[version]
            if run.found:
                await run.run(self)
            return await self._version_support(version, run)

        for version, support in zip(order, await asyncio.gather(*(suites(v) for v in order)), strict=True):
            self.versions[version] = support
            if version != TLS13 and version >= TLS10:
                for _, answer in runs[version].found:
                    self.samples.add(answer.hello, ticket_offered=True)

    async def _version_support(self, version: int, run: _Elimination) -> VersionSupport:
        label = version_name(version)
        if not run.found:
            if run.complete:
                return VersionSupport(label, False, note=f"refused: {run.why}" if run.why else "")
            return VersionSupport(label, None, note=f"inconclusive: {run.why}")
        found, note = run.found, ""
        if len(run.offers_with_finds) > 1:
            # suites found in different hellos were never offered together: rank them against each other
            rank = await _Elimination(run.codes, run.hello, run.read, len(run.codes)).run(self)
            if sorted(rank.codes) == sorted(run.codes):
                answers = dict(run.found)
                found = [(code, answers[code]) for code in rank.codes]
            else:
                note = "the order of suites found in different hellos is unverified"
        codes = [code for code, _ in found]
        server_order = await self._server_order(codes, run.hello, run.read)
        if run.stopped:
            note = "; ".join(filter(None, (f"suite list may be incomplete: {run.why}", note)))
        suites = tuple(_accepted_suite(code, answer) for code, answer in found)
        return VersionSupport(label, True, suites, server_order, note)

    async def _server_order(self, codes: Sequence[int], hello: Hello, read: Reader) -> bool | None:
        """Offer the accepted items reversed: the same first pick means the server imposes its preference."""
        if len(codes) < 2:
            return None
        answer = await self.exchange(hello(list(reversed(codes))))
        if answer.problem:
            return None
        pick = read(answer, True)
        return pick.code == codes[0] if pick.verdict is _Verdict.CHOSE and pick.code in codes else None

    def accepted(self, version: int) -> VersionSupport | None:
        support = self.versions.get(version)
        return support if support is not None and support.accepted else None

    def best_legacy(self, *, ecdhe: bool = False) -> tuple[int, VersionSupport] | None:
        """The highest accepted version below TLS 1.3 (with an ECDHE suite, if asked), and its verdict."""
        for version in LEGACY_VERSIONS:
            support = self.accepted(version)
            if support is not None and (not ecdhe or any(s.key_exchange == "ECDHE" for s in support.suites)):
                return version, support
        return None

    def inconclusive(self, what: str, why: str) -> None:
        if not self.stopped:  # once stopped, the one note saying so covers everything still undecided
            self.notes.append(f"{what}: {why}")

    async def enumerate_groups(self) -> None:
        tls13 = self.accepted(TLS13)
        if tls13 is not None:
            suites = [s.code for s in tls13.suites]

            def hello13(offer: Sequence[int]) -> bytes:
                return self.tls13_hello(suites, offer, (X25519,) if X25519 in offer else ())

            run = await _Elimination(TLS13_GROUP_CANDIDATES, hello13, _tls13_group_reader,
                                     len(TLS13_GROUP_CANDIDATES)).run(self)
            accepted = [_group_support(code, True, "hello_retry_request" if answer.hello is not None
                                       and answer.hello.is_hello_retry_request else "key_share")
                        for code, answer in run.found]
            pq_verdict: bool | None = False if run.complete else None
        else:
            accepted, run = [], None
            tls13_verdict = self.versions.get(TLS13)
            pq_verdict = False if tls13_verdict is not None and tls13_verdict.accepted is False else None
            legacy = self.best_legacy(ecdhe=True)
            if legacy is not None:
                version, support = legacy
                ecdhe = [s.code for s in support.suites if s.key_exchange == "ECDHE"]
                # RFC 8422 5.1: in TLS <= 1.2 supported_groups also limits the curve of an ECDSA certificate, so
                # ECDHE_RSA suites (when there are any) let every curve be eliminated without that side effect.
                rsa = [c for c in ecdhe if (suite := cipher_by_code(c)) is not None and suite.authentication == "RSA"]
                offered = rsa or ecdhe
                run = await _Elimination(
                    EC_GROUP_CANDIDATES, lambda offer: self.legacy_hello(version, offered, groups=list(offer)),
                    _ske_group_reader(version), len(EC_GROUP_CANDIDATES)).run(self)
                accepted = [_group_support(code, True, "server_key_exchange") for code, _ in run.found]
                if not rsa and run.found:
                    self.notes.append(
                        "curves enumerated with ECDHE_ECDSA suites: in TLS <= 1.2 the certificate's curve must stay "
                        "offered (RFC 8422 5.1), so curves the server ranks below it may be missing")
                for _, answer in run.found:
                    self.samples.add(answer.hello, ticket_offered=True)
            elif self.best_legacy() is not None:
                self.notes.append("no ECDHE suite accepted: there are no named curves to enumerate")
        if run is not None and run.stopped:
            self.inconclusive("group list may be incomplete", run.why)
        found = {g.code for g in accepted}
        refused_pq = [_group_support(code, pq_verdict) for code in POST_QUANTUM_GROUPS if code not in found]
        self.groups = (*accepted, *refused_pq) if accepted or pq_verdict is not None else ()

    async def groups_and_features(self) -> Features:
        """The groups and the features: independent questions once the versions are known, asked side by side;
        the features read the ServerHellos both collected."""
        probes, _ = await asyncio.gather(self._feature_probes(), self.enumerate_groups())
        return self.features(*probes)

    async def _feature_probes(self) -> tuple[bool | None, bool | None, tuple[str, ...]]:
        """(fallback SCSV, compression, ALPN protocols)."""
        legacy = self.best_legacy()
        if legacy is None:
            return await self._fallback_scsv(), None, ()
        version, support = legacy
        suites = [s.code for s in support.suites]
        return await asyncio.gather(self._fallback_scsv(), self._compression(version, suites),
                                    self._alpn(version, suites))

    def features(self, fallback: bool | None, compression: bool | None, alpn: tuple[str, ...]) -> Features:
        tls13_only = self.best_legacy() is None and self.accepted(TLS13) is not None
        if tls13_only:
            compression = False  # TLS 1.3 has no compression (RFC 8446 4.1.2)
            self.notes.append("TLS 1.3 only: ALPN, session tickets and OCSP stapling travel encrypted "
                              "(EncryptedExtensions, NewSessionTicket, Certificate), so they are not probed")
        hellos = self.samples.all
        return Features(
            fallback_scsv=fallback,
            secure_renegotiation=(any(h.secure_renegotiation for h in hellos) if hellos else None),
            compression=compression,
            session_ids=self._session_ids(),
            session_tickets=(any(ExtensionType.SESSION_TICKET in h.extensions for h in self.samples.with_ticket_ext)
                             if self.samples.with_ticket_ext else None),
            alpn=alpn,
            ocsp_stapling=(any(ExtensionType.STATUS_REQUEST in h.extensions for h in hellos) if hellos else None),
        )

    def _session_ids(self) -> bool | None:
        if any(h.session_id for h in self.samples.all):
            return True
        if self.samples.without_ticket_ext:
            return False
        return None

    async def _fallback_scsv(self) -> bool | None:
        accepted = [v for v in (TLS13, *LEGACY_VERSIONS) if self.accepted(v) is not None]
        if len(accepted) < 2:
            return None  # RFC 7507 needs a lower version to fall back to
        lower = accepted[1]
        support = self.versions[lower]
        answer = await self.exchange(self.legacy_hello(lower, [s.code for s in support.suites], fallback_scsv=True))
        if answer.problem:
            self.inconclusive("fallback SCSV inconclusive", answer.problem)
            return None
        if answer.alert is not None and answer.hello is None:
            if answer.alert.description == AlertDescription.INAPPROPRIATE_FALLBACK:
                return True
            self.inconclusive("fallback SCSV inconclusive", f"a {version_name(lower)} retry got a {answer.refusal}")
            return None
        if lower >= TLS10:
            self.samples.add(answer.hello, ticket_offered=True)
        return False

    async def _compression(self, version: int, suites: Sequence[int]) -> bool | None:
        answer = await self.exchange(self.legacy_hello(
            version, suites, compression_methods=(DEFLATE, NULL_COMPRESSION), session_ticket=False))
        if answer.hello is None:
            self.inconclusive("compression inconclusive",
                              f"{answer.problem or answer.refusal} to a hello offering DEFLATE")
            return None
        if version >= TLS10:
            self.samples.add(answer.hello, ticket_offered=False)
        return answer.hello.compression == DEFLATE

    async def _alpn(self, version: int, suites: Sequence[int]) -> tuple[str, ...]:
        def hello(offer: Sequence[int]) -> bytes:
            return self.legacy_hello(version, suites, alpn=[ALPN_PROTOCOLS[i] for i in offer], session_ticket=False)

        run = await _Elimination(range(len(ALPN_PROTOCOLS)), hello, _alpn_reader, len(ALPN_PROTOCOLS)).run(self)
        if run.stopped:
            self.inconclusive("ALPN list may be incomplete", run.why)
        for _, answer in run.found:
            if version >= TLS10:
                self.samples.add(answer.hello, ticket_offered=False)
        return tuple(ALPN_PROTOCOLS[i] for i in run.codes)

    # -- the whole scan ---------------------------------------------------------------------------------------
    def result(self, features: Features, started: float) -> DeepScan:
        order = (SSL3, TLS10, TLS11, TLS12, TLS13)
        versions = tuple(
            self.versions.get(v) or VersionSupport(version_name(v), None, note=f"not probed: {self.stopped}")
            for v in order)
        return DeepScan(
            versions=versions, groups=self.groups, features=features, connections=self.connections,
            elapsed_ms=round((time.perf_counter() - started) * 1000, 2), rate_limited=self.rate_limited,
            notes=tuple(self.notes))


async def deep_scan(target: Target, address: str, options: DeepOptions = DEFAULT_OPTIONS,
                    address_gate: asyncio.Semaphore | None = None) -> DeepScan:
    """Enumerate what ``target`` (reached at ``address``) accepts; never raises for network trouble.
    ``address_gate``: the caller's cap on connections at once to ``address``, shared with its other scans."""
    started = time.perf_counter()
    scanner = _Scanner(target, address, options, address_gate)
    await scanner.enumerate_versions()
    features = await scanner.groups_and_features()
    return scanner.result(features, started)


__all__ = ["DEFAULT_OPTIONS", "DeepOptions", "deep_scan"]
