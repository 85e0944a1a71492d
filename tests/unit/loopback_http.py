"""A real HTTP server on 127.0.0.1, in a thread, that counts requests: for fetch, CRL, OCSP and AIA tests.

Routes map a path to a :class:`Route`: a fixed answer, or a function of the request body (an OCSP responder).
No mocks: the code under test opens real TCP connections to it.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Route:
    body: bytes | Callable[[bytes], bytes] = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0               # seconds to wait before answering
    content_length: bool = True      # False: no Content-Length, the body ends when the connection closes


class LoopbackHTTP:
    def __init__(self, server: ThreadingHTTPServer) -> None:
        self.server = server
        self.routes: dict[str, Route] = {}
        self.hits: Counter[str] = Counter()
        self.lock = threading.Lock()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def url(self, path: str) -> str:
        return self.base + path


def _handler(state: list[LoopbackHTTP]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def log_message(self, format: str, *args: object) -> None:
            return

        def _answer(self) -> None:
            http = state[0]
            with http.lock:
                http.hits[self.path] += 1
            length = int(self.headers.get("Content-Length") or 0)
            request = self.rfile.read(length) if length else b""
            route = http.routes.get(self.path)
            if route is None:
                self.send_error(404)
                return
            if route.delay:
                time.sleep(route.delay)
            body = route.body(request) if callable(route.body) else route.body
            self.send_response(route.status)
            for name, value in route.headers.items():
                self.send_header(name, value)
            if route.content_length:
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):   # the client gave up (limit, timeout)
                self.wfile.write(body)

        do_GET = _answer
        do_POST = _answer

    return Handler


@contextmanager
def loopback_http() -> Iterator[LoopbackHTTP]:
    state: list[LoopbackHTTP] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    state.append(LoopbackHTTP(server))
    thread = threading.Thread(target=server.serve_forever, name="loopback-http", daemon=True)
    thread.start()
    try:
        yield state[0]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
