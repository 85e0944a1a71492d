"""A network sweep over the lab finds exactly the TLS listeners, names what else is open, and stays bounded."""

from __future__ import annotations

import asyncio
import time

import pytest

from tlsward.discovery.network import parse_ports, sweep
from tlsward.lab import LabState
from tlsward.model.errors import UsageError

TLS_KINDS = {"tls", "legacy_3des", "truncated"}     # every case that answers a ClientHello with TLS bytes
PLAINTEXT_BANNERS = {"smtp": "220", "imap": "IMAP", "pop3": "POP3", "ftp": "220", "xmpp": "XML",
                     "plain_http": "HTTP"}


def test_sweep_of_the_lab_finds_every_tls_listener_and_nothing_else(lab: LabState) -> None:
    ports = sorted({e.port for e in lab.endpoints})
    unused = [p for p in range(ports[0], ports[-1] + 4) if p not in ports]
    seen: list[str] = []
    found = asyncio.run(sweep([f"{lab.host}/32"], [*ports, *unused], timeout=1.0,
                              on_result=lambda listener: seen.append(listener.hostport)))
    by_port = {listener.port: listener for listener in found}
    assert sorted(seen) == sorted(listener.hostport for listener in found)
    for endpoint in lab.endpoints:
        listener = by_port.get(endpoint.port)
        if endpoint.kind == "closed":
            assert listener is None, endpoint.name
            continue
        assert listener is not None, f"{endpoint.name} listens but the sweep missed it"
        assert listener.tls == (endpoint.kind in TLS_KINDS), (endpoint.name, listener)
        if endpoint.kind in PLAINTEXT_BANNERS:
            assert PLAINTEXT_BANNERS[endpoint.kind] in listener.detail, (endpoint.name, listener.detail)
    assert not any(p in by_port for p in unused)
    tls10 = by_port[lab.endpoint("tls10-only").port]
    assert "0x0301" in tls10.detail


def test_a_range_of_closed_ports_is_swept_quickly_and_in_address_order(lab: LabState) -> None:
    healthy = lab.endpoint("healthy-rsa").port
    started = time.monotonic()
    found = asyncio.run(sweep(["127.0.0.0/28"], [healthy, lab.endpoint("closed").port], timeout=1.0, rate=2000))
    assert time.monotonic() - started < 10
    # The lab listens on 127.0.0.1 only: exactly one listener in the /28 (127.0.0.1-14).
    assert [(f.address, f.port, f.tls) for f in found] == [("127.0.0.1", healthy, True)]


def test_the_rate_limit_spaces_connections(lab: LabState) -> None:
    port = lab.endpoint("closed").port
    started = time.monotonic()
    asyncio.run(sweep(["127.0.0.0/29"], [port], rate=20, timeout=1.0))   # 6 hosts at 20/s: >= 0.25 s
    assert time.monotonic() - started >= 0.24


def test_oversized_sweeps_are_refused_before_any_connection() -> None:
    with pytest.raises(UsageError, match="exceed the limit"):
        asyncio.run(sweep(["10.0.0.0/8"], [443]))
    with pytest.raises(UsageError, match="--cidr"):
        asyncio.run(sweep(["127.0.0.300/32"], [443]))


@pytest.mark.parametrize(("text", "ports"), [("443", (443,)), ("443,8443", (443, 8443)),
                                             ("9000-9002,443,9001", (9000, 9001, 9002, 443))])
def test_ports_parse(text: str, ports: tuple[int, ...]) -> None:
    assert parse_ports(text) == ports


@pytest.mark.parametrize("text", ["", "0", "70000", "https", "10-5", "1-70000"])
def test_bad_ports_name_the_input(text: str) -> None:
    with pytest.raises(UsageError, match="--ports"):
        parse_ports(text)
