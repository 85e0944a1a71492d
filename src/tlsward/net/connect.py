"""DNS and TCP connect with per-phase timings and failures translated to model kinds."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
import time

from tlsward.model.scan import FailureKind, ProbeFailure

Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]


def elapsed_ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 2)


async def resolve(host: str, port: int, timeout: float) -> list[str]:
    """Every address of ``host`` (IPv6 and IPv4, de-duplicated, resolver order)."""
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(
            loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP), timeout)
    except socket.gaierror as exc:
        raise ProbeFailure(FailureKind.DNS, f"{host}: name does not resolve ({exc.strerror})", phase="dns") from None
    except TimeoutError:
        raise ProbeFailure(FailureKind.DNS, f"{host}: DNS lookup timed out after {timeout:g}s", phase="dns") from None
    addresses: list[str] = []
    for *_, sockaddr in infos:
        address = str(sockaddr[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise ProbeFailure(FailureKind.DNS, f"{host}: no A/AAAA records", phase="dns")
    return addresses


async def open_tcp(address: str, port: int, timeout: float) -> Stream:
    """Connect, mapping refusal, unreachability and timeouts to failure kinds."""
    where = f"[{address}]:{port}" if ":" in address else f"{address}:{port}"
    try:
        return await asyncio.wait_for(asyncio.open_connection(address, port, limit=1 << 20), timeout)
    except TimeoutError:
        raise ProbeFailure(FailureKind.CONNECT_TIMEOUT, f"{where}: TCP connect timed out after {timeout:g}s",
                           phase="connect") from None
    except ConnectionRefusedError:
        raise ProbeFailure(FailureKind.REFUSED, f"{where}: connection refused (nothing listens there)",
                           phase="connect") from None
    except OSError as exc:
        if exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
            raise ProbeFailure(FailureKind.UNREACHABLE, f"{where}: {exc.strerror}", phase="connect") from None
        raise ProbeFailure(FailureKind.UNREACHABLE, f"{where}: {exc.strerror or exc}", phase="connect") from None


async def close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError, TimeoutError):
        await asyncio.wait_for(writer.wait_closed(), 1.0)
