"""Challenge solvers: publish what the ACME server checks, only while an order runs, then remove it.

``Http01Webroot`` writes files a web server already serves; ``Http01Listener`` is its own tiny HTTP server for hosts
without one; ``Dns01Rfc2136`` adds TXT records with RFC 2136 dynamic updates (TSIG optional) and waits until the
primary answers them, which is what makes dns-01 work for wildcards and hosts that are not reachable.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Protocol

import dns.exception
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.tsig
import dns.update

from tlsward.acme.errors import AcmeError

CHALLENGE_PATH = "/.well-known/acme-challenge/"


@dataclass(frozen=True)
class ChallengeTask:
    """One challenge to publish: ``validation`` is the http-01 body or the dns-01 TXT value, already computed."""

    domain: str
    token: str
    key_authorization: str
    validation: str


class ChallengeSolver(Protocol):
    """What the client needs from a solver: one challenge type, and a start/present/cleanup/stop life cycle."""

    @property
    def challenge_type(self) -> str:
        """``http-01`` or ``dns-01``: the challenge the solver answers."""
        ...

    def start(self) -> None:
        """Called once before the first ``present`` of an order."""
        ...

    def present(self, task: ChallengeTask) -> None:
        """Publish the challenge response; return only once the server can see it."""
        ...

    def cleanup(self, task: ChallengeTask) -> None:
        """Remove what ``present`` published (also called after a failure)."""
        ...

    def stop(self) -> None:
        """Called once after the order finished or failed."""
        ...


def _check_token(token: str) -> str:
    """Tokens come from the server: refuse anything that could leave the challenge directory."""
    if not token or any(c not in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_" for c in token):
        raise AcmeError("", "solver", f"http-01 token {token!r} is not base64url")
    return token


class Http01Webroot:
    """http-01 through an existing web server: write ``<webroot>/.well-known/acme-challenge/<token>``."""

    challenge_type = "http-01"

    def __init__(self, webroot: Path) -> None:
        self.webroot = Path(webroot)

    def _path(self, task: ChallengeTask) -> Path:
        return self.webroot / ".well-known" / "acme-challenge" / _check_token(task.token)

    def start(self) -> None:
        """Nothing to start: the web server is someone else's."""

    def present(self, task: ChallengeTask) -> None:
        """Write the key authorization, world-readable because the web server usually runs as another user."""
        path = self._path(task)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(task.validation, encoding="ascii")
            path.chmod(0o644)
        except OSError as exc:
            raise AcmeError("", "solver", f"cannot write http-01 file {path}: {exc.strerror or exc}") from exc

    def cleanup(self, task: ChallengeTask) -> None:
        """Remove the file; a missing file is fine (cleanup also runs after failures)."""
        with contextlib.suppress(OSError):
            self._path(task).unlink(missing_ok=True)

    def stop(self) -> None:
        """Nothing to stop."""


class _ChallengeServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    responses: dict[str, str]


class _ChallengeHandler(BaseHTTPRequestHandler):
    server: _ChallengeServer
    server_version = "tlsward-acme"

    def do_GET(self) -> None:
        body = None
        if self.path.startswith(CHALLENGE_PATH):
            body = self.server.responses.get(self.path[len(CHALLENGE_PATH) :])
        if body is None:
            self.send_error(404)
            return
        data = body.encode("ascii")
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the client logs what matters."""


class Http01Listener:
    """http-01 with a built-in HTTP server that listens only between ``start`` and ``stop`` of one order.

    It answers ``/.well-known/acme-challenge/<token>`` for the tokens presented and 404 for everything else.
    ``port`` is 80 in real life (the ACME server always connects to port 80); tests use the port the test server
    is configured to use. ``port=0`` picks a free port, readable from ``bound_port`` after ``start``.
    """

    challenge_type = "http-01"

    def __init__(self, host: str = "", port: int = 80) -> None:
        self.host = host
        self.port = port
        self._responses: dict[str, str] = {}
        self._server: _ChallengeServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def bound_port(self) -> int:
        """The port actually listened on (differs from ``port`` only when it was 0)."""
        if self._server is None:
            return self.port
        return int(self._server.server_address[1])

    def start(self) -> None:
        """Bind and serve on a daemon thread; a taken port fails here with one line."""
        if self._server is not None:
            return
        try:
            server = _ChallengeServer((self.host, self.port), _ChallengeHandler)
        except OSError as exc:
            where = f"{self.host or '*'}:{self.port}"
            raise AcmeError("", "solver", f"cannot listen on {where} for http-01: {exc.strerror or exc}") from exc
        server.responses = self._responses
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self._thread.start()

    def present(self, task: ChallengeTask) -> None:
        """Serve the key authorization for this token."""
        self._responses[_check_token(task.token)] = task.validation

    def cleanup(self, task: ChallengeTask) -> None:
        """Stop answering this token."""
        self._responses.pop(task.token, None)

    def stop(self) -> None:
        """Stop listening and release the port."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        self._responses.clear()


class Dns01Rfc2136:
    """dns-01 through RFC 2136 dynamic updates sent to ``server:port`` (the zone's primary), TSIG-signed when given.

    ``zone`` is found from the SOA the server returns for the record name when not given. ``present`` returns only
    once ``server`` answers the TXT value (bounded by ``propagation_timeout``); secondaries are not checked.
    """

    challenge_type = "dns-01"

    def __init__(
        self,
        server: str,
        port: int = 53,
        zone: str | None = None,
        *,
        tsig_name: str | None = None,
        tsig_secret: str | None = None,
        tsig_algorithm: str | None = "hmac-sha256",
        ttl: int = 60,
        timeout: float = 10.0,
        propagation_timeout: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if (tsig_name is None) != (tsig_secret is None):
            raise AcmeError("", "config", "RFC 2136 TSIG needs both a key name and a secret")
        self.server = server
        self.port = port
        self.zone = zone
        self.ttl = ttl
        self.timeout = timeout
        self.propagation_timeout = propagation_timeout
        self._sleep = sleep
        self._key: dns.tsig.Key | None = None
        if tsig_name is not None and tsig_secret is not None:
            try:
                self._key = dns.tsig.Key(tsig_name, tsig_secret, tsig_algorithm or "hmac-sha256")
            except (ValueError, dns.exception.DNSException) as exc:
                raise AcmeError("", "config", f"TSIG key {tsig_name}: {exc}") from exc

    @property
    def _where(self) -> str:
        return f"dns {self.server}:{self.port}"

    @staticmethod
    def record_name(domain: str) -> str:
        """``_acme-challenge.<domain>``; a wildcard's record is its base name's."""
        return "_acme-challenge." + domain.removeprefix("*.").rstrip(".") + "."

    def start(self) -> None:
        """Nothing to start: the DNS server runs elsewhere."""

    def stop(self) -> None:
        """Nothing to stop."""

    def _query(self, name: str, rdtype: dns.rdatatype.RdataType) -> dns.message.Message:
        query = dns.message.make_query(name, rdtype)
        try:
            return dns.query.tcp(query, self.server, timeout=self.timeout, port=self.port)
        except (OSError, dns.exception.DNSException) as exc:
            raise AcmeError("", "solver", f"{self._where}: {rdtype.name} query for {name} failed: {exc}") from exc

    def _zone_for(self, record: str) -> dns.name.Name:
        """The zone holding ``record``: the owner of the SOA in the answer or authority section."""
        if self.zone is not None:
            return dns.name.from_text(self.zone)
        response = self._query(record, dns.rdatatype.SOA)
        for rrset in (*response.answer, *response.authority):
            if rrset.rdtype == dns.rdatatype.SOA:
                return rrset.name
        raise AcmeError("", "solver", f"{self._where}: no SOA for {record}; pass the zone explicitly")

    def _update(self, task: ChallengeTask, *, add: bool) -> None:
        record = dns.name.from_text(self.record_name(task.domain))
        zone = self._zone_for(record.to_text())
        if not record.is_subdomain(zone):
            raise AcmeError("", "solver", f"{record} is not inside zone {zone}")
        update = dns.update.UpdateMessage(zone, keyring=self._key) if self._key else dns.update.UpdateMessage(zone)
        relative = record.relativize(zone)
        if add:
            update.add(relative, self.ttl, "TXT", f'"{task.validation}"')
        else:
            update.delete(relative, "TXT", f'"{task.validation}"')
        try:
            response = dns.query.tcp(update, self.server, timeout=self.timeout, port=self.port)
        except (OSError, dns.exception.DNSException) as exc:
            raise AcmeError("", "solver", f"{self._where}: update of {record} failed: {exc}") from exc
        if response.rcode() != dns.rcode.NOERROR:
            verb = "adding" if add else "deleting"
            raise AcmeError(
                "", "solver", f"{self._where}: {verb} TXT {record} refused: {dns.rcode.to_text(response.rcode())}"
            )

    def _published(self, task: ChallengeTask) -> bool:
        response = self._query(self.record_name(task.domain), dns.rdatatype.TXT)
        for rrset in response.answer:
            if rrset.rdtype != dns.rdatatype.TXT:
                continue
            for rdata in rrset:
                if b"".join(rdata.strings).decode("ascii", "replace") == task.validation:
                    return True
        return False

    def present(self, task: ChallengeTask) -> None:
        """Add the TXT record, then wait until the server answers it."""
        self._update(task, add=True)
        deadline = time.monotonic() + self.propagation_timeout
        while not self._published(task):
            if time.monotonic() >= deadline:
                name = self.record_name(task.domain)
                detail = f"{self._where}: TXT {name} not visible after {self.propagation_timeout:g}s"
                raise AcmeError("", "solver", detail)
            self._sleep(0.2)

    def cleanup(self, task: ChallengeTask) -> None:
        """Delete exactly the TXT value this order added (others for the same name stay)."""
        self._update(task, add=False)
