"""Revocation and AIA fetches through a real HTTP proxy (Debian's tinyproxy) when the environment names one:
``http_proxy`` requests go to the proxy in absolute form, ``https_proxy`` ones through a CONNECT tunnel with TLS
to the server itself, ``no_proxy`` exempts hosts, and a proxy that is down or refuses is one clean error."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.unit.loopback_http import LoopbackHTTP, Route, closed_port, loopback_http
from tlsward.model.errors import FetchError
from tlsward.net.fetch import http_get

PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY",
                   "NO_PROXY")


@dataclass
class Proxy:
    url: str
    log: Path


@contextlib.contextmanager
def tls_server(work: Path) -> Iterator[int]:
    """A TLS server on loopback with a self-signed certificate (made by openssl): trusted by nobody, so a fetch
    that reaches it fails certificate verification, which shows the tunnel got through."""
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-days", "1", "-subj", "/CN=127.0.0.1", "-keyout", work / "key.pem", "-out", work / "cert.pem"],
                   check=True, capture_output=True, timeout=30)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(work / "cert.pem", work / "key.pem")
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with contextlib.suppress(OSError), connection:
                connection.settimeout(5)
                with context.wrap_socket(connection, server_side=True):
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        thread.join(5)
        listener.close()


@pytest.fixture(scope="module")
def https_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    with tls_server(tmp_path_factory.mktemp("tls")) as port:
        yield port


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory, https_port: int) -> Iterator[Proxy]:
    exe = shutil.which("tinyproxy")
    assert exe is not None, "tinyproxy is not installed: `make system-deps` installs it"
    work = tmp_path_factory.mktemp("tinyproxy")
    port = closed_port()   # free now: tinyproxy takes it
    log = work / "tinyproxy.log"
    (work / "tinyproxy.conf").write_text(
        f'Port {port}\nListen 127.0.0.1\nTimeout 10\nAllow 127.0.0.1\nConnectPort {https_port}\n'
        f'LogFile "{log}"\nLogLevel Info\nMaxClients 20\n')
    process = subprocess.Popen([exe, "-d", "-c", str(work / "tinyproxy.conf")], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
            assert process.poll() is None and time.monotonic() < deadline, "tinyproxy did not start"
            time.sleep(0.05)
        yield Proxy(f"http://127.0.0.1:{port}", log)
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture(scope="module")
def http() -> Iterator[LoopbackHTTP]:
    with loopback_http() as server:
        yield server


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def get(url: str) -> bytes:
    return asyncio.run(http_get(url, timeout=3.0, max_bytes=4096))


def failure(url: str) -> FetchError:
    with pytest.raises(FetchError) as info:
        get(url)
    assert "\n" not in str(info.value)
    return info.value


def test_a_plain_fetch_goes_through_the_proxy(proxy: Proxy, http: LoopbackHTTP,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    http.routes["/via-proxy.crl"] = Route(b"crl bytes")
    monkeypatch.setenv("http_proxy", proxy.url)
    assert get(http.url("/via-proxy.crl")) == b"crl bytes"
    assert f"GET {http.url('/via-proxy.crl')} HTTP/1.1" in proxy.log.read_text()


def test_uppercase_and_all_proxy_are_read_too(proxy: Proxy, http: LoopbackHTTP,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    http.routes["/all-proxy.crl"] = Route(b"crl bytes")
    monkeypatch.setenv("ALL_PROXY", proxy.url.removeprefix("http://"))   # scheme-less, as curl accepts
    assert get(http.url("/all-proxy.crl")) == b"crl bytes"
    assert f"GET {http.url('/all-proxy.crl')} HTTP/1.1" in proxy.log.read_text()


def test_no_proxy_exempts_a_host(http: LoopbackHTTP, monkeypatch: pytest.MonkeyPatch) -> None:
    http.routes["/direct.crl"] = Route(b"crl bytes")
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setenv("no_proxy", "localhost,127.0.0.1")
    assert get(http.url("/direct.crl")) == b"crl bytes"


def test_a_proxy_that_is_down_is_named(http: LoopbackHTTP, monkeypatch: pytest.MonkeyPatch) -> None:
    port = closed_port()
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{port}")
    error = failure(http.url("/anything.crl"))
    assert (error.kind, error.detail) == ("refused", f"proxy 127.0.0.1:{port}: connection refused")


def test_an_https_fetch_tunnels_through_connect_and_checks_the_server_itself(
        proxy: Proxy, https_port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("https_proxy", proxy.url)
    error = failure(f"https://127.0.0.1:{https_port}/ca.crt")
    assert error.kind == "tls" and "certificate not trusted" in error.detail, error.detail
    assert f"CONNECT 127.0.0.1:{https_port} HTTP/1.1" in proxy.log.read_text()


def test_a_refused_tunnel_is_one_clean_error(proxy: Proxy, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("https_proxy", proxy.url)
    port = closed_port()   # not a ConnectPort of this proxy: it answers 403
    error = failure(f"https://127.0.0.1:{port}/ca.crt")
    assert (error.kind, error.detail) == ("network", f"proxy {proxy.url.removeprefix('http://')} refused the tunnel: "
                                                     "HTTP 403")


def test_an_unusable_proxy_setting_is_reported(http: LoopbackHTTP, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("http_proxy", "socks5://127.0.0.1:1080")
    error = failure(http.url("/anything.crl"))
    assert error.kind == "url" and "unusable proxy setting 'socks5://127.0.0.1:1080'" in error.detail
