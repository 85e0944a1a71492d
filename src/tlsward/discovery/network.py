"""Find TLS listeners on network ranges: connect to every address and port, send one ClientHello, and
classify the first bytes that come back.

One ClientHello that offers TLS 1.0-1.3 with every common suite gets a ServerHello (or at least a TLS alert)
from any TLS server, so one connection per open port is enough; closed ports cost one SYN. The sweep is
bounded three ways: a cap on addresses x ports (so a typo like /8 is refused, not run), a connection rate
(token bucket) and a concurrency cap. Every wait has a timeout.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import Callable, Iterable, Iterator, Sequence

from tlsward.model.discovery import NetworkListener
from tlsward.model.errors import UsageError, WireError
from tlsward.model.registry.alerts import alert_name
from tlsward.model.scan import ProbeFailure
from tlsward.net.connect import close, open_tcp
from tlsward.wire.client_hello import TLS10, TLS13, ClientHelloSpec, build_client_hello, legacy_suites, tls13_suites
from tlsward.wire.records import RecordReader, sniff_not_tls

MAX_PROBES = 65_536
DEFAULT_RATE = 500.0          # connections per second
DEFAULT_CONCURRENCY = 128
DEFAULT_TIMEOUT = 1.5


def parse_ports(text: str) -> tuple[int, ...]:
    """``443,8443,9000-9010`` -> the ports, in order, without repeats. Raises UsageError naming the input."""
    ports: list[int] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        low_text, _, high_text = part.partition("-")
        try:
            low, high = int(low_text), int(high_text or low_text)
        except ValueError:
            raise UsageError(f"--ports {text!r}: {part!r} is not a port or a range like 9000-9010") from None
        if not 0 < low <= high < 65536:
            raise UsageError(f"--ports {text!r}: {part!r} is outside 1-65535")
        ports.extend(p for p in range(low, high + 1) if p not in ports)
    if not ports:
        raise UsageError(f"--ports {text!r}: no ports")
    return tuple(ports)


def parse_networks(cidrs: Iterable[str]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    networks = []
    for cidr in cidrs:
        try:
            networks.append(ipaddress.ip_network(cidr.strip(), strict=False))
        except ValueError as exc:
            raise UsageError(f"--cidr {cidr!r}: {exc}") from None
    if not networks:
        raise UsageError("give at least one --cidr")
    return tuple(networks)


def _addresses(network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> Iterator[str]:
    """Usable host addresses: a /31, /32 (or /127, /128) has no network/broadcast address to leave out."""
    hosts = network.hosts() if network.num_addresses > 2 else iter(network)
    return (str(address) for address in hosts)


def probe_count(networks: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network], ports: Sequence[int]) -> int:
    return sum(max(n.num_addresses - (2 if n.num_addresses > 2 and n.version == 4 else 0), 1) for n in networks) \
        * len(ports)


def _hello() -> bytes:
    return build_client_hello(ClientHelloSpec(cipher_suites=(*tls13_suites(), *legacy_suites()),
                                              max_version=TLS13, min_version=TLS10))


async def probe_port(address: str, port: int, timeout: float) -> NetworkListener | None:
    """None when nothing listens (refused, unreachable, no answer to SYN); otherwise what answered."""
    try:
        reader, writer = await open_tcp(address, port, timeout)
    except ProbeFailure:
        return None
    try:
        writer.write(_hello())
        received = b""
        deadline = time.monotonic() + timeout
        while len(received) < 7:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                chunk = await asyncio.wait_for(reader.read(4096), remaining)
            except (TimeoutError, OSError):
                break
            if not chunk:
                break
            received += chunk
        return _classify(address, port, received)
    except OSError:
        return NetworkListener(address, port, False, "open, but the connection was reset after our ClientHello")
    finally:
        await close(writer)


def _classify(address: str, port: int, received: bytes) -> NetworkListener:
    if not received:
        return NetworkListener(address, port, False, "open, but no answer to a ClientHello")
    not_tls = sniff_not_tls(received, final=True)
    if not_tls is not None:
        return NetworkListener(address, port, False, not_tls.description)
    try:
        records = RecordReader().feed(received)
    except WireError as exc:
        return NetworkListener(address, port, False, f"not TLS: {exc}")
    first = records[0] if records else None
    if first is None or first.content_type == 22:
        version = int.from_bytes(received[1:3], "big")
        return NetworkListener(address, port, True, f"TLS handshake (record version 0x{version:04X})")
    if first.content_type == 21 and len(first.fragment) >= 2:
        return NetworkListener(address, port, True, f"TLS alert {alert_name(first.fragment[1])} to a plain hello "
                                                    "(may need SNI or a client certificate)")
    return NetworkListener(address, port, True, f"TLS record type {first.content_type}")


async def sweep(cidrs: Iterable[str], ports: Sequence[int], *, rate: float = DEFAULT_RATE,
                concurrency: int = DEFAULT_CONCURRENCY, timeout: float = DEFAULT_TIMEOUT,
                max_probes: int = MAX_PROBES,
                on_result: Callable[[NetworkListener], None] | None = None) -> list[NetworkListener]:
    """Every open port in ``cidrs`` x ``ports``, sorted by address and port. Raises UsageError before any
    connection when the sweep would exceed ``max_probes`` or a parameter is out of range."""
    networks = parse_networks(cidrs)
    if rate <= 0 or concurrency < 1 or timeout <= 0:
        raise UsageError("--rate, --concurrency and --timeout must be positive")
    total = probe_count(networks, ports)
    if total > max_probes:
        raise UsageError(f"{total} address x port probes exceed the limit of {max_probes}; narrow --cidr or --ports "
                         "(or raise --max-probes)")
    semaphore = asyncio.Semaphore(concurrency)
    interval = 1.0 / rate
    next_start = time.monotonic()
    found: list[NetworkListener] = []

    async def one(address: str, port: int) -> None:
        try:
            result = await probe_port(address, port, timeout)
        finally:
            semaphore.release()
        if result is not None:
            found.append(result)
            if on_result is not None:
                on_result(result)

    tasks: list[asyncio.Task[None]] = []
    for network in networks:
        for address in _addresses(network):
            for port in ports:
                await semaphore.acquire()
                now = time.monotonic()
                if next_start > now:
                    await asyncio.sleep(next_start - now)
                next_start = max(next_start, now) + interval
                tasks.append(asyncio.create_task(one(address, port)))
    await asyncio.gather(*tasks)
    return sorted(found, key=lambda r: (ipaddress.ip_address(r.address), r.port))
