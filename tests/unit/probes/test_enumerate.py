"""The deep scan's elimination logic against a simulated server: no sockets.

Only the connection itself (``_Scanner._attempt``) is replaced, by a small model of a TLS server that reads the
real ClientHello bytes; retries, the connection budget, windows, re-ranking and the order test are the real code.
"""

from __future__ import annotations

import asyncio
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from tlsward.model.deep import DeepScan, Features
from tlsward.model.registry import CIPHER_SUITES, AlertDescription, cipher_by_code, group_by_code
from tlsward.model.registry.alerts import Alert
from tlsward.model.target import Target
from tlsward.probes import enumerate as deep
from tlsward.probes.enumerate import (
    EC_GROUP_CANDIDATES,
    GIVE_UP_AFTER,
    LEGACY_CANDIDATES,
    MAX_SUITES_PER_HELLO,
    PRE_TLS12_CANDIDATES,
    TLS13_CANDIDATES,
    TLS13_GROUP_CANDIDATES,
    DeepOptions,
    _Answer,
)
from tlsward.wire.server_messages import ServerHello, ServerKeyExchange

TLS10, TLS11, TLS12, TLS13 = 0x0301, 0x0302, 0x0303, 0x0304
X25519, SECP256R1, SECP384R1, X25519MLKEM768 = 0x001D, 0x0017, 0x0018, 0x11EC
ECDHE_RSA_AES128_GCM, RSA_AES128_GCM, RSA_AES128_SHA = 0xC02F, 0x009C, 0x002F


# --- a ClientHello, read back ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Hello:
    version: int
    suites: tuple[int, ...]
    compression: tuple[int, ...]
    extensions: dict[int, bytes]

    def u16_list(self, ext: int, length_bytes: int = 2) -> tuple[int, ...]:
        body = self.extensions.get(ext, b"")[length_bytes:]
        return tuple(struct.unpack(f">{len(body) // 2}H", body))

    @property
    def supported_versions(self) -> tuple[int, ...]:
        return self.u16_list(0x002B, 1)

    @property
    def groups(self) -> tuple[int, ...]:
        return self.u16_list(0x000A)

    @property
    def key_shares(self) -> tuple[int, ...]:
        body, shares = self.extensions.get(0x0033, b"")[2:], []
        while body:
            group, length = struct.unpack(">HH", body[:4])
            shares.append(group)
            body = body[4 + length:]
        return tuple(shares)


def read_hello(record: bytes) -> Hello:
    assert record[0] == 22 and record[5] == 1
    body = record[9:]
    version, pos = struct.unpack(">H", body[:2])[0], 34
    pos += 1 + body[pos]
    (n,) = struct.unpack(">H", body[pos:pos + 2])
    suites = struct.unpack(f">{n // 2}H", body[pos + 2:pos + 2 + n])
    pos += 2 + n
    compression = tuple(body[pos + 1:pos + 1 + body[pos]])
    pos += 1 + body[pos]
    extensions: dict[int, bytes] = {}
    if pos < len(body):
        end = pos + 2 + struct.unpack(">H", body[pos:pos + 2])[0]
        pos += 2
        while pos < end:
            ext_type, length = struct.unpack(">HH", body[pos:pos + 4])
            extensions[ext_type] = body[pos + 4:pos + 4 + length]
            pos += 4 + length
    return Hello(version, suites, compression, extensions)


# --- a server ------------------------------------------------------------------------------------------------
def _server_hello(version: int, suite: int, *, group: int | None = None, hrr: bool = False,
                  extensions: tuple[int, ...] = (0xFF01,)) -> ServerHello:
    random = bytes.fromhex("CF21AD74E59A6111BE1D8C021E65B891C2A211167ABB8C5E079E09E2C8A8339C") if hrr else bytes(32)
    return ServerHello(min(version, TLS12), version, random, b"\x01" * 32, suite, 0,
                       extensions if version < TLS13 else (0x002B, 0x0033), group, hrr, None)


def _alert(description: int) -> _Answer:
    return _Answer(alert=Alert(2, description))


@dataclass
class SimServer:
    """OpenSSL-like choices: version by supported_versions or legacy_version, suite and group by preference."""

    versions: frozenset[int]
    suites: tuple[int, ...] = (ECDHE_RSA_AES128_GCM, RSA_AES128_GCM)
    tls13_suites: tuple[int, ...] = (0x1302, 0x1301)
    groups: tuple[int, ...] = (X25519, SECP256R1)
    server_order: bool = True
    silent: Callable[[Hello], bool] = lambda hello: False
    seen: list[Hello] = field(default_factory=list)

    def _prefer(self, mine: tuple[int, ...], theirs: tuple[int, ...]) -> int | None:
        shared = [c for c in mine if c in theirs] if self.server_order else [c for c in theirs if c in mine]
        return shared[0] if shared else None

    def answer(self, record: bytes) -> _Answer | None:
        hello = read_hello(record)
        self.seen.append(hello)
        if self.silent(hello):
            return None
        if hello.supported_versions:
            common = [v for v in hello.supported_versions if v in self.versions]
            if not common:
                return _alert(AlertDescription.PROTOCOL_VERSION)
            version = max(common)
        else:
            possible = [v for v in self.versions if v <= min(hello.version, TLS12)]
            if not possible:
                return _alert(AlertDescription.PROTOCOL_VERSION)
            version = max(possible)
        if 0x5600 in hello.suites and version < max(self.versions):
            return _alert(AlertDescription.INAPPROPRIATE_FALLBACK)
        if version == TLS13:
            suite = self._prefer(self.tls13_suites, hello.suites)
            group = self._prefer(self.groups, hello.groups)
            if suite is None or group is None:
                return _alert(AlertDescription.HANDSHAKE_FAILURE)
            share = next((g for g in hello.key_shares if g in self.groups), None)
            if share is not None:
                return _Answer(_server_hello(TLS13, suite, group=share))
            return _Answer(_server_hello(TLS13, suite, group=group, hrr=True))
        suite = self._prefer(self.suites, hello.suites)
        if suite is None:
            return _alert(AlertDescription.HANDSHAKE_FAILURE)
        entry = cipher_by_code(suite)
        assert entry is not None
        kx = None
        if entry.key_exchange == "ECDHE":
            curve = self._prefer(self.groups, hello.groups)
            if curve is None:
                return _alert(AlertDescription.HANDSHAKE_FAILURE)
            kx = ServerKeyExchange("ecdhe", b"", curve_type=3, named_group=curve)
        return _Answer(_server_hello(version, suite), kx)


QUICK = DeepOptions(timeout=0.1)


def scan(server: SimServer, options: DeepOptions = QUICK) -> DeepScan:
    class Simulated(deep._Scanner):
        async def _attempt(self, hello: bytes) -> tuple[_Answer, bool]:
            self.connections += 1
            answer = server.answer(hello)
            if answer is None:
                return _Answer(problem="the server closed the connection without a ServerHello or an alert"), True
            return answer, False

    async def run() -> DeepScan:
        scanner = Simulated(Target("sim.test", 443, sni="sim.test"), "192.0.2.1", options)
        await scanner.enumerate_versions()
        return scanner.result(await scanner.groups_and_features(), 0.0)

    return asyncio.run(run())


def suites_of(result: DeepScan, version: str) -> list[int]:
    support = result.version(version)
    assert support is not None
    return [s.code for s in support.suites]


# --- candidates ---------------------------------------------------------------------------------------------
def test_every_assigned_suite_is_a_candidate_once_and_hellos_stay_small() -> None:
    legacy = {s.code for s in CIPHER_SUITES if not s.tls13 and not s.signaling}
    assert sorted(LEGACY_CANDIDATES) == sorted(legacy)
    assert sorted(TLS13_CANDIDATES) == sorted(s.code for s in CIPHER_SUITES if s.tls13)
    assert TLS13_CANDIDATES[:5] == (0x1301, 0x1302, 0x1303, 0x1304, 0x1305)
    first = LEGACY_CANDIDATES[:MAX_SUITES_PER_HELLO]
    assert ECDHE_RSA_AES128_GCM in first and 0x000A in first, "mainstream suites (3DES included) go first"
    scanner = deep._Scanner(Target("a.test", 443, sni="a.test"), "192.0.2.1", DeepOptions())
    assert len(scanner.legacy_hello(TLS12, first)) < 1024


def test_versions_before_tls12_are_asked_about_what_can_exist_there_in_one_hello() -> None:
    assert len(PRE_TLS12_CANDIDATES) <= MAX_SUITES_PER_HELLO
    suites = [cipher_by_code(code) for code in PRE_TLS12_CANDIDATES]
    assert all(s is not None and not s.aead and s.mac in ("SHA1", "MD5", "NULL") for s in suites)
    names = {s.name for s in suites if s is not None}
    assert {"TLS_RSA_WITH_3DES_EDE_CBC_SHA", "TLS_RSA_WITH_RC4_128_MD5", "TLS_RSA_EXPORT_WITH_RC4_40_MD5",
            "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "TLS_RSA_WITH_NULL_SHA"} <= names
    assert [c for c in LEGACY_CANDIDATES if c in PRE_TLS12_CANDIDATES] == list(PRE_TLS12_CANDIDATES)  # same order


def test_group_candidates() -> None:
    assert TLS13_GROUP_CANDIDATES[:2] == (X25519, SECP256R1)
    assert {0x11EB, 0x11EC, 0x11ED, 0x0100, 0x0104} <= set(TLS13_GROUP_CANDIDATES)
    assert len(set(TLS13_GROUP_CANDIDATES)) == len(TLS13_GROUP_CANDIDATES)
    kinds = {entry.kind for g in EC_GROUP_CANDIDATES if (entry := group_by_code(g)) is not None}
    assert kinds == {"ecdhe"}


# --- enumeration ------------------------------------------------------------------------------------------------
def test_a_tls12_and_13_server_is_enumerated_in_its_order() -> None:
    server = SimServer(frozenset({TLS12, TLS13}))
    result = scan(server)
    assert result.accepted_versions == ("TLSv1.2", "TLSv1.3")
    assert suites_of(result, "TLSv1.2") == [ECDHE_RSA_AES128_GCM, RSA_AES128_GCM]
    assert suites_of(result, "TLSv1.3") == [0x1302, 0x1301]
    tls12 = result.version("TLSv1.2")
    assert tls12 is not None and tls12.server_order is True
    assert [(s.key_exchange, s.kx_group, s.forward_secrecy) for s in tls12.suites] == [
        ("ECDHE", "x25519", True), ("RSA", None, False)]
    assert [(g.name, g.via) for g in result.groups if g.accepted] == [
        ("x25519", "key_share"), ("secp256r1", "hello_retry_request")]
    assert all(g.accepted is False and g.post_quantum for g in result.groups if not g.accepted)
    assert result.features.fallback_scsv is True
    assert result.features.secure_renegotiation is True
    assert result.features.compression is False
    assert result.features.session_ids is True
    v = {s.version: s for s in result.versions}
    assert v["TLSv1.1"].accepted is False and v["TLSv1.1"].note == "refused: protocol_version alert"
    assert not result.notes


def test_suites_found_in_different_hellos_are_ranked_against_each_other() -> None:
    obscure = LEGACY_CANDIDATES[MAX_SUITES_PER_HELLO + 70]  # only offered in the second hello
    assert cipher_by_code(obscure) is not None
    server = SimServer(frozenset({TLS12}), suites=(obscure, RSA_AES128_GCM))
    result = scan(server)
    assert suites_of(result, "TLSv1.2") == [obscure, RSA_AES128_GCM], "the server's preference, not the hello order"
    tls12 = result.version("TLSv1.2")
    assert tls12 is not None and tls12.server_order is True and not tls12.note


def test_a_server_that_follows_the_client_order_is_told_apart() -> None:
    server = SimServer(frozenset({TLS12}), suites=(RSA_AES128_SHA, ECDHE_RSA_AES128_GCM, RSA_AES128_GCM),
                       server_order=False)
    result = scan(server)
    tls12 = result.version("TLSv1.2")
    assert tls12 is not None and tls12.server_order is False
    assert suites_of(result, "TLSv1.2") == [ECDHE_RSA_AES128_GCM, RSA_AES128_GCM, RSA_AES128_SHA]  # our order


def test_a_lower_version_answer_means_the_version_is_refused() -> None:
    result = scan(SimServer(frozenset({TLS10}), suites=(0xC013, RSA_AES128_SHA)))  # ECDHE-RSA-AES128-SHA, AES128-SHA
    assert result.accepted_versions == ("TLSv1.0",)
    assert suites_of(result, "TLSv1.0") == [0xC013, RSA_AES128_SHA]
    tls12 = result.version("TLSv1.2")
    assert tls12 is not None and tls12.accepted is False
    assert tls12.note == "refused: the server answered with a TLSv1.0 ServerHello"
    assert [g.name for g in result.groups if g.accepted] == ["x25519", "secp256r1"]
    assert {g.via for g in result.groups if g.accepted} == {"server_key_exchange"}


def test_a_post_quantum_hybrid_is_found_through_a_hello_retry_request() -> None:
    result = scan(SimServer(frozenset({TLS13}), groups=(X25519MLKEM768, X25519)))
    accepted = [(g.name, g.post_quantum, g.via) for g in result.groups if g.accepted]
    assert accepted == [("x25519", False, "key_share"), ("X25519MLKEM768", True, "hello_retry_request")]
    assert result.features.compression is False  # TLS 1.3 has none
    assert result.features.secure_renegotiation is None and result.features.alpn == ()
    assert any("TLS 1.3 only" in note for note in result.notes)


# --- robustness ---------------------------------------------------------------------------------------------
def test_silence_is_retried_then_inconclusive_never_a_refusal() -> None:
    server = SimServer(frozenset({TLS12, TLS13}), silent=lambda hello: hello.version == TLS11)
    result = scan(server, DeepOptions(timeout=0.1, retries=2))
    tls11 = result.version("TLSv1.1")
    assert tls11 is not None and tls11.accepted is None
    assert tls11.note.startswith("inconclusive: the server closed the connection")
    assert sum(1 for hello in server.seen if hello.version == TLS11) == 3  # the question, then two retries
    assert result.accepted_versions == ("TLSv1.2", "TLSv1.3")


def test_an_unresponsive_endpoint_is_given_up_quickly() -> None:
    server = SimServer(frozenset({TLS12}), silent=lambda hello: True)
    result = scan(server, DeepOptions(timeout=0.1, retries=1))
    assert result.connections == GIVE_UP_AFTER * 2
    assert all(v.accepted is None for v in result.versions)
    assert all(g.accepted is None for g in result.groups)
    assert result.features == Features()
    assert any("stopped early" in note for note in result.notes)


@pytest.mark.parametrize("budget", [1, 4, 9])
def test_the_connection_budget_is_a_hard_limit(budget: int) -> None:
    server = SimServer(frozenset({TLS12, TLS13}))
    result = scan(server, DeepOptions(timeout=0.1, max_connections=budget))
    assert result.connections == len(server.seen) == budget
    assert any(f"connection budget of {budget} used up" in note for note in result.notes)
    assert not any(v.accepted is False and v.version in ("TLSv1.2", "TLSv1.3") for v in result.versions)


def test_pacing_waits_between_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    server = SimServer(frozenset({TLS12}), suites=(RSA_AES128_GCM,))
    loop_sleeps: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        loop_sleeps.append(seconds)

    class Paced(deep._Scanner):
        async def _attempt(self, hello: bytes) -> tuple[_Answer, bool]:
            await self._pace()
            self.connections += 1
            self._last_close = time.monotonic()
            answer = server.answer(hello)
            return (answer, False) if answer is not None else (_Answer(problem="silent"), True)

    async def run() -> int:
        scanner = Paced(Target("sim.test", 443, sni="sim.test"), "192.0.2.1", DeepOptions(delay=0.5))
        await scanner.enumerate_versions()
        return scanner.connections

    monkeypatch.setattr("tlsward.probes.enumerate.asyncio.sleep", fake_sleep)
    connections = asyncio.run(run())
    assert len(loop_sleeps) == connections - 1 and all(0.4 < s <= 0.5 for s in loop_sleeps)


@dataclass
class OpenCount:
    """Connections open at once across scans, and the most there ever were."""

    now: int = 0
    peak: int = 0


def overlapping(server: SimServer, count: OpenCount) -> type[deep._Scanner]:
    """A scanner whose every exchange yields to the loop mid-way, so overlapping connections overlap for real."""

    class Overlapping(deep._Scanner):
        async def _attempt(self, hello: bytes) -> tuple[_Answer, bool]:
            self.connections += 1
            count.now += 1
            count.peak = max(count.peak, count.now)
            try:
                for _ in range(3):
                    await asyncio.sleep(0)
                answer = server.answer(hello)
            finally:
                count.now -= 1
            return (answer, False) if answer is not None else (_Answer(problem="silent"), True)

    return Overlapping


async def whole_scan(scanner: deep._Scanner) -> DeepScan:
    await scanner.enumerate_versions()
    return scanner.result(await scanner.groups_and_features(), 0.0)


def scan_counting(server: SimServer, options: DeepOptions, target: Target) -> tuple[DeepScan, int]:
    """The result and the most connections that were open at once."""
    count = OpenCount()
    result = asyncio.run(whole_scan(overlapping(server, count)(target, "192.0.2.1", options)))
    return result, count.peak


SIM = Target("sim.test", 443, sni="sim.test")


@pytest.mark.parametrize("versions", [frozenset({TLS12, TLS13}), frozenset({TLS10, TLS11, TLS12}),
                                      frozenset({TLS13}), frozenset({0x0300, TLS10})])
def test_side_by_side_questions_give_the_same_answers_with_the_same_connections(versions: frozenset[int]) -> None:
    alone, one = scan_counting(SimServer(versions), DeepOptions(timeout=0.1), SIM)
    together, four = scan_counting(SimServer(versions), DeepOptions(timeout=0.1, parallel=4), SIM)
    assert one == 1 and 1 < four <= 4
    assert together.versions == alone.versions and together.groups == alone.groups
    assert together.features == alone.features and together.connections == alone.connections
    assert sorted(together.notes) == sorted(alone.notes)


def test_paced_and_starttls_scans_keep_one_connection_at_a_time() -> None:
    server = SimServer(frozenset({TLS12, TLS13}))
    _, paced = scan_counting(server, DeepOptions(timeout=0.1, parallel=4, delay=0.001), SIM)
    smtp = Target("mail.sim.test", 25, sni="mail.sim.test", scheme="smtp")
    assert smtp.starttls is not None
    _, mail = scan_counting(SimServer(frozenset({TLS12, TLS13})), DeepOptions(timeout=0.1, parallel=4), smtp)
    assert (paced, mail) == (1, 1)


def test_endpoints_on_one_address_share_its_connection_cap() -> None:
    """Two deep scans of endpoints behind one address, each allowed 4 at once, under a per-address cap of 2."""
    count = OpenCount()
    servers = [SimServer(frozenset({TLS12, TLS13})),
               SimServer(frozenset({TLS10, TLS12}), suites=(ECDHE_RSA_AES128_GCM, RSA_AES128_SHA))]

    async def run() -> list[DeepScan]:
        gate = asyncio.Semaphore(2)
        options = DeepOptions(timeout=0.1, parallel=4)
        return list(await asyncio.gather(*(whole_scan(overlapping(server, count)(SIM, "192.0.2.1", options, gate))
                                           for server in servers)))

    first, second = asyncio.run(run())
    assert count.peak == 2
    assert first.accepted_versions == ("TLSv1.2", "TLSv1.3")
    assert second.accepted_versions == ("TLSv1.0", "TLSv1.2")
