"""The deep scan against the built-in lab: versions, suites, groups and features exactly as each case is
configured, at a bounded cost; inconclusive (never "not supported") where a server goes silent.

Expectations come from the catalogue itself: a case's cipher string, run through Python's ``ssl`` as the lab
server does (``SSLContext.get_ciphers()`` lists what the server will accept, in its order), filtered by what the
leaf's key can sign. Facts about the local OpenSSL that the expectations rest on are asserted, not assumed.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tlsward.lab import LabState, case_named
from tlsward.model.deep import DeepScan
from tlsward.model.target import Target
from tlsward.probes.enumerate import GIVE_UP_AFTER, DeepOptions, deep_scan

pytestmark = pytest.mark.integration

CASES = ("healthy-rsa", "healthy-ecdsa", "tls10-only", "tls10-11", "tls12-only", "static-rsa", "legacy-3des")
VERSION_NAMES = {"TLSv1": "TLSv1.0", "TLSv1.1": "TLSv1.1", "TLSv1.2": "TLSv1.2", "TLSv1.3": "TLSv1.3"}
ALL_VERSIONS = ("SSLv3", "TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3")
PROTOCOL_RANK = {"SSLv3": 0, "TLSv1.0": 1, "TLSv1.1": 2, "TLSv1.2": 3, "TLSv1.3": 4}
# OpenSSL 3.0's default server groups, in its order of preference (ssl/t1_lib.c, supported_groups_default).
OPENSSL30_GROUPS = ("x25519", "secp256r1", "x448", "secp521r1", "secp384r1",
                    "ffdhe2048", "ffdhe3072", "ffdhe4096", "ffdhe6144", "ffdhe8192")
ML_KEM_HYBRIDS = ("X25519MLKEM768", "SecP256r1MLKEM768", "SecP384r1MLKEM1024")
OPTIONS = DeepOptions(timeout=2.0)


@dataclass(frozen=True)
class Run:
    result: DeepScan
    wall_s: float


async def _scan(lab: LabState, name: str, options: DeepOptions = OPTIONS) -> Run:
    target = Target.parse(lab.endpoint(name).target, connect=lab.host)
    started = time.perf_counter()
    result = await deep_scan(target, lab.host, options)
    return Run(result, time.perf_counter() - started)


@pytest.fixture(scope="module")
def runs(lab: LabState) -> dict[str, Run]:
    async def scan_all() -> dict[str, Run]:
        return {name: await _scan(lab, name) for name in (*CASES, "smtp-starttls")}

    return asyncio.run(scan_all())


def server_suites(name: str, version: str) -> list[int]:
    """The suites the lab server for ``name`` accepts at ``version``, in its order (as OpenSSL sees its config)."""
    case = case_named(name)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.set_ciphers(case.ciphers)
    assert case.leaf is not None
    auth = "auth-rsa" if case.leaf.key.startswith("rsa") else "auth-ecdsa"
    return [c["id"] & 0xFFFF for c in ctx.get_ciphers() if c["protocol"] != "TLSv1.3" and c["auth"] == auth
            and PROTOCOL_RANK[c["protocol"]] <= PROTOCOL_RANK[version]]


def tls13_defaults() -> list[int]:
    ciphers = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).get_ciphers()
    return [c["id"] & 0xFFFF for c in ciphers if c["protocol"] == "TLSv1.3"]


def codes(result: DeepScan, version: str) -> list[int]:
    support = result.version(version)
    assert support is not None
    return [s.code for s in support.suites]


# --- what the expectations rest on ---------------------------------------------------------------------------
def test_lab_facts_the_expectations_rest_on() -> None:
    assert ssl.OPENSSL_VERSION_INFO[:2] == (3, 0), f"OPENSSL30_GROUPS describes OpenSSL 3.0, not {ssl.OPENSSL_VERSION}"
    # Python's ssl module sets SSL_OP_CIPHER_SERVER_PREFERENCE on every new context: lab servers impose their order.
    assert ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).options & ssl.OP_CIPHER_SERVER_PREFERENCE


# --- versions and suites -------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", CASES)
def test_versions_are_exactly_the_declared_ones_and_the_rest_cleanly_refused(runs: dict[str, Run], name: str) -> None:
    result = runs[name].result
    declared = tuple(VERSION_NAMES[v] for v in case_named(name).versions)
    assert result.accepted_versions == declared
    refused = {v.version: v.note for v in result.versions if v.version not in declared}
    assert all(result.version(v).accepted is False for v in refused), refused  # type: ignore[union-attr]
    assert all(note.startswith("refused: ") for note in refused.values()), refused


@pytest.mark.parametrize("name", [c for c in CASES if c != "legacy-3des"])
def test_tls12_and_older_suites_are_the_configured_ones_in_server_order(runs: dict[str, Run], name: str) -> None:
    result = runs[name].result
    for version in result.accepted_versions:
        if version == "TLSv1.3":
            continue
        assert codes(result, version) == server_suites(name, version), version
        support = result.version(version)
        assert support is not None and support.server_order is True and not support.note


@pytest.mark.parametrize("name", ["healthy-rsa", "healthy-ecdsa"])
def test_tls13_suites_are_openssl_defaults_in_server_order(runs: dict[str, Run], name: str) -> None:
    result = runs[name].result
    assert codes(result, "TLSv1.3") == tls13_defaults()
    tls13 = result.version("TLSv1.3")
    assert tls13 is not None and tls13.server_order is True
    assert all(s.kx_group == "x25519" and s.forward_secrecy and s.aead and not s.weak for s in tls13.suites)


def test_healthy_suites_are_forward_secret_aead_with_their_curve(runs: dict[str, Run]) -> None:
    suites = runs["healthy-rsa"].result.all_suites
    assert suites and all(s.forward_secrecy and s.aead and not s.weak for s in suites)
    tls12 = runs["healthy-rsa"].result.version("TLSv1.2")
    assert tls12 is not None
    assert {(s.key_exchange, s.kx_group, s.dh_bits) for s in tls12.suites} == {("ECDHE", "x25519", None)}


def test_static_rsa(runs: dict[str, Run]) -> None:
    tls12 = runs["static-rsa"].result.version("TLSv1.2")
    assert tls12 is not None
    assert [(s.name, s.key_exchange, s.forward_secrecy, s.aead, s.kx_group) for s in tls12.suites] == [
        ("TLS_RSA_WITH_AES_128_GCM_SHA256", "RSA", False, True, None),
        ("TLS_RSA_WITH_AES_256_CBC_SHA", "RSA", False, False, None),
    ]


def test_legacy_3des_is_seen_where_openssl_3_cannot_look(runs: dict[str, Run]) -> None:
    result = runs["legacy-3des"].result
    for version in ("TLSv1.0", "TLSv1.1", "TLSv1.2"):
        support = result.version(version)
        assert support is not None and support.accepted is True
        assert [(s.name, s.weak, s.forward_secrecy, s.aead) for s in support.suites] == [
            ("TLS_RSA_WITH_3DES_EDE_CBC_SHA", True, False, False)]
        assert support.server_order is None  # one suite: nothing to order
    assert result.features.fallback_scsv is False  # the hand-written responder ignores TLS_FALLBACK_SCSV
    assert result.features.secure_renegotiation is True
    assert result.features.session_ids is False and result.features.session_tickets is False
    assert result.groups and not any(g.accepted for g in result.groups)


# --- groups --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["healthy-ecdsa", "healthy-rsa"])
def test_tls13_groups_are_openssl_defaults_and_no_ml_kem(runs: dict[str, Run], name: str) -> None:
    groups = runs[name].result.groups
    accepted = [g for g in groups if g.accepted]
    assert tuple(g.name for g in accepted) == OPENSSL30_GROUPS
    assert [g.via for g in accepted] == ["key_share"] + ["hello_retry_request"] * (len(OPENSSL30_GROUPS) - 1)
    refused = {g.name: g.accepted for g in groups if not g.accepted}
    assert {name: refused.get(name) for name in ML_KEM_HYBRIDS} == dict.fromkeys(ML_KEM_HYBRIDS, False)
    assert all(g.post_quantum for g in groups if not g.accepted)


def test_tls10_curves_come_from_the_server_key_exchange(runs: dict[str, Run]) -> None:
    accepted = [g for g in runs["tls10-only"].result.groups if g.accepted]
    assert tuple(g.name for g in accepted) == OPENSSL30_GROUPS[:5]  # the named curves, in server order
    assert {g.via for g in accepted} == {"server_key_exchange"}


def test_tls12_ecdsa_curves_are_reported_with_their_limit(runs: dict[str, Run]) -> None:
    result = runs["tls12-only"].result
    assert [g.name for g in result.groups if g.accepted][:2] == ["x25519", "secp256r1"]
    assert any("RFC 8422" in note for note in result.notes)


# --- features ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["healthy-rsa", "healthy-ecdsa"])
def test_features_of_a_healthy_openssl_server(runs: dict[str, Run], name: str) -> None:
    features = runs[name].result.features
    assert features.fallback_scsv is True            # OpenSSL implements RFC 7507
    assert features.secure_renegotiation is True
    assert features.compression is False             # OpenSSL 3 is built without zlib compression
    assert features.session_ids is True              # judged without the ticket extension (see enumerate.py)
    assert features.session_tickets is True
    assert features.alpn == ("http/1.1",)            # the lab's only ALPN protocol
    assert features.ocsp_stapling is False
    assert not runs[name].result.notes


def test_fallback_scsv_with_two_old_versions(runs: dict[str, Run]) -> None:
    assert runs["tls10-11"].result.features.fallback_scsv is True
    assert runs["tls10-only"].result.features.fallback_scsv is None  # one version: nothing to fall back to


# --- cost ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", CASES)
def test_cost_is_bounded(runs: dict[str, Run], name: str) -> None:
    run = runs[name]
    assert run.result.connections <= 40
    assert run.wall_s < 1.0 and run.result.elapsed_ms < 1000
    if name.startswith("healthy"):
        # about one connection per accepted suite and group, plus one refusal per question
        assert run.result.connections <= 35


# --- servers that do not answer every question ---------------------------------------------------------------
def test_starttls_endpoints_get_definite_verdicts(runs: dict[str, Run]) -> None:
    """Over STARTTLS, refusals arrive as alerts too (the lab's STARTTLS servers send them, as Postfix does), so
    every version gets a definite verdict; a silent close would be inconclusive (see the unit tests)."""
    result = runs["smtp-starttls"].result
    assert result.accepted_versions == ("TLSv1.2", "TLSv1.3")
    assert codes(result, "TLSv1.2") == server_suites("smtp-starttls", "TLSv1.2")
    assert codes(result, "TLSv1.3") == tls13_defaults()
    assert all(v.accepted is not None for v in result.versions), result.versions
    assert result.features.fallback_scsv is True
    assert not result.rate_limited and result.connections <= OPTIONS.max_connections


@pytest.mark.parametrize("name", ["reset", "blackhole", "closed"])
def test_unresponsive_endpoints_are_inconclusive_and_given_up_quickly(lab: LabState, name: str) -> None:
    options = DeepOptions(timeout=0.3, retries=1)
    run = asyncio.run(_scan(lab, name, options))
    result = run.result
    assert all(v.accepted is None for v in result.versions)
    assert result.connections == GIVE_UP_AFTER * (options.retries + 1)
    assert any("stopped early" in note for note in result.notes)
    assert run.wall_s < GIVE_UP_AFTER * (options.retries + 1) * options.timeout + 1.0


# --- rate limiting -------------------------------------------------------------------------------------------
@contextlib.asynccontextmanager
async def smtp_proxy(upstream: int, allowed: int) -> AsyncIterator[int]:
    """Forward the first ``allowed`` connections to the lab's SMTP server, then greet with 421 like Postfix's
    smtpd_client_connection_count_limit."""
    seen = 0

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal seen
        seen += 1
        if seen > allowed:
            writer.write(b"421 4.7.0 mx.lab Error: too many connections from 127.0.0.1\r\n")
            await writer.drain()
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", upstream)
        await asyncio.wait_for(asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer)), 10.0)

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


def test_smtp_421_stops_the_deep_scan_and_keeps_what_it_learned(lab: LabState) -> None:
    ep = lab.endpoint("smtp-starttls")

    async def run() -> DeepScan:
        async with smtp_proxy(ep.port, allowed=3) as port:
            target = Target.parse(f"smtp://{ep.sni}:{port}", connect=lab.host)
            return await deep_scan(target, lab.host, DeepOptions(timeout=2.0))

    result = asyncio.run(run())
    assert result.rate_limited.startswith("SMTP 421 as greeting: '421 4.7.0")
    assert result.connections == 4  # three answered, the fourth was turned away, and the scan stopped there
    assert result.version("TLSv1.3").accepted is True and result.version("TLSv1.2").accepted is True  # type: ignore[union-attr]
    # Versions asked before the 421 have their (negative) answer; the rest stay inconclusive, never "no".
    old = [v for v in result.versions if v.version in ("SSLv3", "TLSv1.0", "TLSv1.1")]
    assert all(v.accepted is not True for v in old) and any(v.accepted is None for v in old)
    assert result.groups == () or all(g.accepted is None for g in result.groups)
    assert any("rate limited" in note for note in result.notes)


# --- a real OpenSSL server: DHE parameters and client-order servers ------------------------------------------
@contextlib.contextmanager
def s_server(tmp: Path, *args: str) -> Iterator[int]:
    """``openssl s_server`` on a kernel-chosen loopback port (stdout to a file, so it can never block; stdin an
    open pipe, because s_server stops at end of input)."""
    key, cert, log = tmp / "k.pem", tmp / "c.pem", tmp / f"s_server-{len(list(tmp.iterdir()))}.log"
    if not cert.exists():
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=dhe.test",
                        "-keyout", str(key), "-out", str(cert), "-days", "1"],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=60, check=True)
    with log.open("wb") as out:
        proc = subprocess.Popen(["openssl", "s_server", "-accept", "127.0.0.1:0", "-key", str(key), "-cert", str(cert),
                                 *args], stdin=subprocess.PIPE, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while b"ACCEPT " not in log.read_bytes():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.02)
        line = next(x for x in log.read_bytes().splitlines() if x.startswith(b"ACCEPT "))
        yield int(line.rsplit(b":", 1)[1])
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        if proc.stdin is not None:
            proc.stdin.close()


@pytest.mark.parametrize(("server_pref", "order"), [(False, [0x009E, 0x009F]), (True, [0x009F, 0x009E])])
def test_dhe_prime_size_and_client_order_against_openssl_s_server(
        tmp_path: Path, server_pref: bool, order: list[int]) -> None:
    ciphers = "DHE-RSA-AES256-GCM-SHA384:DHE-RSA-AES128-GCM-SHA256"
    extra = ("-serverpref",) if server_pref else ()
    with s_server(tmp_path, "-tls1_2", "-cipher", ciphers, *extra) as port:
        result = asyncio.run(deep_scan(Target.parse(f"dhe.test:{port}"), "127.0.0.1", OPTIONS))
    assert result.accepted_versions == ("TLSv1.2",)
    tls12 = result.version("TLSv1.2")
    assert tls12 is not None and tls12.server_order is server_pref  # s_server follows the client unless -serverpref
    assert [s.code for s in tls12.suites] == order
    assert {(s.key_exchange, s.dh_bits, s.kx_group) for s in tls12.suites} == {("DHE", 2048, None)}
    assert result.groups and not any(g.accepted for g in result.groups)
    assert any("no ECDHE suite" in note for note in result.notes)


def test_a_server_without_starttls_stops_the_scan_at_once(lab: LabState) -> None:
    result = asyncio.run(_scan(lab, "smtp-no-starttls")).result
    assert result.connections == 1  # asking again cannot help: not retried
    assert all(v.accepted is None for v in result.versions)
    assert any("STARTTLS failed" in note and "does not offer STARTTLS" in note for note in result.notes)
