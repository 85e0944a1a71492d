"""Notifiers against real receivers on 127.0.0.1: an HTTP server we can tell to fail, an SMTP server (aiosmtpd)
speaking STARTTLS and implicit TLS with a CA made at test time, and the real Prometheus Alertmanager.

No mocks on the wire: every test opens real connections. A missing ``prometheus-alertmanager`` binary or
``aiosmtpd`` package is a failure, never a skip. Every wait is bounded; every server is stopped at teardown.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import email
import email.policy
import ipaddress
import json
import shutil
import socket
import ssl
import subprocess
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.unit.loopback_http import closed_port
from tests.unit.monitor.builders import Sleeps, make_notification
from tlsward.model.alerts import AlertStatus, NotificationKind
from tlsward.monitor.notify import (
    AlertmanagerNotifier,
    DeliveryError,
    Dispatcher,
    EmailNotifier,
    Notifier,
    RetryPolicy,
    build_notifier,
    receivers_from_mapping,
)
from tlsward.monitor.notify.config import ReceiverConfig

pytestmark = pytest.mark.integration

try:
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword
except ImportError as exc:   # a missing test peer fails loudly, it is never skipped
    raise AssertionError("tests/integration/test_notifiers.py needs aiosmtpd (pip install aiosmtpd)") from exc


def run(coro: Coroutine[Any, Any, Any], timeout: float = 15) -> Any:
    return asyncio.run(asyncio.wait_for(coro, timeout))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out after {timeout}s waiting for {what}"
        time.sleep(0.02)


def receiver(**table: Any) -> ReceiverConfig:
    """One receiver through the real config loader, so the tests also cover validation and defaults."""
    [config] = receivers_from_mapping({"receivers": [table]})
    return config


async def send_and_close(notifier: Notifier, *notifications: Any) -> None:
    try:
        for notification in notifications:
            await notifier.send(notification)
    finally:
        await notifier.aclose()


# -- a test PKI --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pki:
    ca_file: Path              # the CA that issued the servers' certificate
    other_ca_file: Path        # a CA that did not
    cert_file: Path
    key_file: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context


def _ca(name: str, now: dt.datetime) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A CA and a server certificate for 127.0.0.1 and localhost, plus an unrelated CA, made now."""
    now = dt.datetime.now(dt.UTC)
    ca_cert, ca_key = _ca("tlsward notifier test CA", now)
    other_cert, _ = _ca("tlsward unrelated CA", now)
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    directory = tmp_path_factory.mktemp("notify-pki")
    pem = serialization.Encoding.PEM
    paths = Pki(directory / "ca.pem", directory / "other-ca.pem", directory / "server.pem",
                    directory / "server.key")
    paths.ca_file.write_bytes(ca_cert.public_bytes(pem))
    paths.other_ca_file.write_bytes(other_cert.public_bytes(pem))
    paths.cert_file.write_bytes(leaf.public_bytes(pem))
    paths.key_file.write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                 serialization.NoEncryption()))
    return paths


# -- an HTTP receiver that records requests and fails on demand --------------------------------------------------


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    tls: str | None

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Answer:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


class Receiver:
    """Records every request; answers the queued failures first, then ``ok``."""

    def __init__(self, server: ThreadingHTTPServer, tls: bool) -> None:
        self.server = server
        self.scheme = "https" if tls else "http"
        self.requests: list[Request] = []
        self.failures: list[Answer] = []
        self.ok = Answer(200, b"ok")
        self.lock = threading.Lock()

    def url(self, path: str = "/") -> str:
        return f"{self.scheme}://127.0.0.1:{self.server.server_address[1]}{path}"

    def fail_next(self, count: int, status: int = 500, body: bytes = b"boom",
                  headers: dict[str, str] | None = None) -> None:
        with self.lock:
            self.failures += [Answer(status, body, headers or {}) for _ in range(count)]

    def answer(self, request: Request) -> Answer:
        with self.lock:
            self.requests.append(request)
            return self.failures.pop(0) if self.failures else self.ok

    def received(self, path: str) -> list[Request]:
        with self.lock:
            return [r for r in self.requests if r.path == path]


@contextmanager
def http_receiver(tls_context: ssl.SSLContext | None = None) -> Iterator[Receiver]:
    state: list[Receiver] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            return

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            tls = self.connection.version() if isinstance(self.connection, ssl.SSLSocket) else None
            answer = state[0].answer(Request("POST", self.path, {k.lower(): v for k, v in self.headers.items()},
                                             body, tls))
            self.send_response(answer.status)
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            with contextlib.suppress(OSError):
                self.wfile.write(answer.body)

    class Server(ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request: Any, client_address: Any) -> None:
            return     # a client refusing our certificate is a test case, not noise

    server = Server(("127.0.0.1", 0), Handler)
    if tls_context is not None:
        server.socket = tls_context.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
        original = server.finish_request

        def finish_request(request: Any, client_address: Any) -> None:
            request.do_handshake()   # in the worker thread, so a failed handshake blocks nobody
            original(request, client_address)

        server.finish_request = finish_request  # type: ignore[method-assign]
    state.append(Receiver(server, tls_context is not None))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), name="notify-receiver", daemon=True)
    thread.start()
    try:
        yield state[0]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def hook() -> Iterator[Receiver]:
    with http_receiver() as receiver_:
        yield receiver_


# -- generic webhook, Slack, PagerDuty ---------------------------------------------------------------------------


def test_webhook_posts_the_versioned_payload_with_configured_headers(hook: Receiver) -> None:
    config = receiver(name="hook", kind="webhook", url=hook.url("/alerts?team=tls"),
                      headers={"Authorization": "Bearer t0ken", "X-Source": "tests"})

    async def scenario() -> None:
        async with Dispatcher.from_configs([config]) as dispatcher:
            assert dispatcher.submit(make_notification())
            assert dispatcher.submit(make_notification(NotificationKind.RESOLVED))
        assert dispatcher.stats()["hook"].sent == 2

    run(scenario())
    firing, resolved = hook.received("/alerts?team=tls")
    assert firing.headers["authorization"] == "Bearer t0ken" and firing.headers["x-source"] == "tests"
    assert firing.headers["content-type"] == "application/json"
    assert firing.headers["user-agent"].startswith("tlsward/")
    payload = firing.json()
    assert (payload["version"], payload["kind"], payload["status"]) == ("1.0.0", "firing", "firing")
    assert payload["alert"]["endpoints"][0] == "api.example.test:443"
    assert payload["alert"]["starts_at"] == "2031-05-17T12:00:00Z"
    assert resolved.json()["status"] == "resolved" and resolved.json()["alert"]["ends_at"] == "2031-05-18T09:30:00Z"


def test_webhook_retries_after_500_with_backoff(hook: Receiver) -> None:
    hook.fail_next(2, 500, b"temporarily broken")
    config = receiver(name="hook", kind="webhook", url=hook.url("/"))
    sleeps = Sleeps()

    async def scenario() -> Dispatcher:
        dispatcher = Dispatcher([build_notifier(config)], retry=RetryPolicy(max_attempts=4, base_delay=1.0),
                                sleep=sleeps, random=lambda: 0.0)
        dispatcher.submit(make_notification())
        assert await dispatcher.close(10)
        return dispatcher

    stats = run(scenario()).stats()["hook"]
    assert len(hook.received("/")) == 3
    assert (stats.sent, stats.failed, stats.retried) == (1, 0, 2)
    assert sleeps.delays == [0.5, 1.0]
    assert stats.last_error == f"receiver 'hook' ({hook.url('')}): HTTP 500 Internal Server Error: temporarily broken"


def test_retry_after_from_a_429_is_honoured(hook: Receiver) -> None:
    hook.fail_next(1, 429, b"slow down", {"Retry-After": "3"})
    config = receiver(name="hook", kind="slack", url=hook.url("/services/T0/B0/x"))
    sleeps = Sleeps()

    async def scenario() -> None:
        async with Dispatcher([build_notifier(config)], sleep=sleeps, random=lambda: 0.0) as dispatcher:
            dispatcher.submit(make_notification())

    run(scenario())
    assert sleeps.delays == [3.0] and len(hook.received("/services/T0/B0/x")) == 2


def test_a_4xx_is_not_retried_and_names_status_and_body(hook: Receiver) -> None:
    hook.fail_next(1, 400, b'{"error": "unknown field\\n \\"blocks\\""}')
    notifier = build_notifier(receiver(name="chat", kind="slack", url=hook.url("/hook/SECRET")))
    with pytest.raises(DeliveryError) as info:
        run(send_and_close(notifier, make_notification()))
    assert str(info.value) == (f"receiver 'chat' ({hook.url('')}): HTTP 400 Bad Request: "
                               '{"error": "unknown field\\n \\"blocks\\""}')
    assert not info.value.retryable and "SECRET" not in str(info.value)


def test_connection_refused_is_one_retryable_line() -> None:
    port = closed_port()
    notifier = build_notifier(receiver(name="hook", kind="webhook", url=f"http://127.0.0.1:{port}/x", timeout=2))
    with pytest.raises(DeliveryError) as info:
        run(send_and_close(notifier, make_notification()))
    assert str(info.value) == f"receiver 'hook' (http://127.0.0.1:{port}): connection refused"
    assert info.value.retryable


def test_a_dead_receiver_never_delays_a_live_one(hook: Receiver) -> None:
    dead = receiver(name="dead", kind="webhook", url=f"http://127.0.0.1:{closed_port()}/", timeout=2)
    live = receiver(name="live", kind="webhook", url=hook.url("/live"))

    async def scenario() -> Dispatcher:
        # Real sleeps: the dead receiver's first backoff is 30-60 s, far longer than this test may take.
        dispatcher = Dispatcher.from_configs([dead, live], retry=RetryPolicy(base_delay=60.0))
        for _ in range(3):
            dispatcher.submit(make_notification(receiver="dead"))
        started = time.monotonic()
        dispatcher.submit(make_notification(receiver="live"))
        while not hook.received("/live"):
            assert time.monotonic() - started < 2, "the live receiver waited behind the dead one"
            await asyncio.sleep(0.01)
        while dispatcher.stats()["dead"].retried == 0:
            assert time.monotonic() - started < 5
            await asyncio.sleep(0.01)
        assert await dispatcher.close(0.2) is False          # gives up on the backlog instead of hanging
        return dispatcher

    stats = run(scenario()).stats()
    assert stats["live"].sent == 1
    assert (stats["dead"].sent, stats["dead"].retried, stats["dead"].dropped, stats["dead"].queued) == (0, 1, 3, 0)
    assert stats["dead"].last_error is not None and stats["dead"].last_error.endswith("connection refused")


def test_slack_message_arrives_as_text_and_blocks(hook: Receiver) -> None:
    notifier = build_notifier(receiver(name="chat", kind="slack", url=hook.url("/services/T0/B0/secret")))
    run(send_and_close(notifier, make_notification(NotificationKind.REMINDER)))
    [request] = hook.received("/services/T0/B0/secret")
    body = request.json()
    assert body["text"] == ("[REMINDER page] HIGH: Certificate for api.example.test expires in 6 days | endpoints: "
                            "api.example.test:443, 10.0.0.2:443, 10.0.0.3:443 and 2 more | fix: Renew the "
                            "certificate and reload the servers listed.")
    assert [block["type"] for block in body["blocks"]] == ["section"] * 4 + ["context"]


def test_pagerduty_trigger_then_resolve_share_the_dedup_key(hook: Receiver) -> None:
    hook.ok = Answer(202, b'{"status":"success","message":"Event processed","dedup_key":"x"}')
    notifier = build_notifier(receiver(name="pd", kind="pagerduty", url=hook.url("/v2/enqueue"),
                                       routing_key="R0UTINGKEY"))
    run(send_and_close(notifier, make_notification(), make_notification(NotificationKind.RESOLVED)))
    trigger, resolve = (r.json() for r in hook.received("/v2/enqueue"))
    assert trigger["event_action"] == "trigger" and resolve["event_action"] == "resolve"
    assert trigger["dedup_key"] == resolve["dedup_key"] == make_notification().alert.key
    assert trigger["routing_key"] == resolve["routing_key"] == "R0UTINGKEY"
    assert trigger["payload"]["severity"] == "error" and trigger["payload"]["source"] == "api.example.test:443"
    assert set(trigger["payload"]["custom_details"]) >= {"endpoints", "fix", "description", "alert_key"}


def test_https_receiver_is_verified_against_the_configured_ca(pki: Pki) -> None:
    with http_receiver(pki.server_context()) as secure:
        trusted = build_notifier(receiver(name="hook", kind="webhook", url=secure.url("/tls"),
                                          ca_file=str(pki.ca_file)))
        run(send_and_close(trusted, make_notification()))
        [request] = secure.received("/tls")
        assert request.tls is not None and request.tls.startswith("TLSv1.")

        untrusted = build_notifier(receiver(name="hook", kind="webhook", url=secure.url("/tls")))   # Mozilla roots
        with pytest.raises(DeliveryError, match=r"TLS certificate not trusted \(.*\)") as info:
            run(send_and_close(untrusted, make_notification()))
        assert not info.value.retryable
        assert len(secure.received("/tls")) == 1


# -- email over SMTP ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mail:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    tls: str | None           # the TLS version the message travelled over, None for plain text
    login: str | None

    def message(self) -> email.message.EmailMessage:
        parsed = email.message_from_bytes(self.content.replace(b"\r\n", b"\n"), policy=email.policy.default)
        assert isinstance(parsed, email.message.EmailMessage)
        return parsed


class Inbox:
    """The aiosmtpd handler: keeps every message with how it arrived."""

    def __init__(self) -> None:
        self.mails: list[Mail] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        ssl_object = server.transport.get_extra_info("ssl_object")
        login = session.auth_data.login.decode() if isinstance(session.auth_data, LoginPassword) else None
        self.mails.append(Mail(envelope.mail_from, list(envelope.rcpt_tos), envelope.content,
                               ssl_object.version() if ssl_object is not None else None, login))
        return "250 2.0.0 OK"


def _authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (b"alerts", b"s3cret")
    return AuthResult(success=ok, auth_data=auth_data if ok else None, handled=False)


@contextmanager
def smtp_server(*, starttls: ssl.SSLContext | None = None, implicit_tls: ssl.SSLContext | None = None,
                auth: bool = False) -> Iterator[tuple[int, Inbox]]:
    inbox = Inbox()
    port = free_port()
    kwargs: dict[str, Any] = {}
    if auth:
        kwargs["authenticator"] = _authenticator
    controller = Controller(inbox, hostname="127.0.0.1", port=port, tls_context=starttls,
                            require_starttls=starttls is not None, ssl_context=implicit_tls,
                            server_hostname="mail.tlsward.test", ready_timeout=5, **kwargs)
    controller.start()
    try:
        yield port, inbox
    finally:
        controller.stop()


def mail_receiver(port: int, **keys: Any) -> ReceiverConfig:
    return receiver(name="mail", kind="email", host="127.0.0.1", port=port, timeout=3, to=["oncall@example.test"],
                    **{"from": "tlsward@example.test", **keys})


def test_email_over_starttls_with_login(pki: Pki) -> None:
    with smtp_server(starttls=pki.server_context(), auth=True) as (port, inbox):
        config = mail_receiver(port, security="starttls", username="alerts", password="s3cret",
                               ca_file=str(pki.ca_file))

        async def scenario() -> None:
            async with Dispatcher.from_configs([config]) as dispatcher:
                dispatcher.submit(make_notification(receiver="mail"))
                dispatcher.submit(make_notification(NotificationKind.RESOLVED, receiver="mail"))
            assert dispatcher.stats()["mail"].sent == 2, dispatcher.stats()["mail"].last_error

        run(scenario())
        firing, resolved = inbox.mails
    assert firing.tls is not None and firing.tls.startswith("TLSv1.")     # the message travelled encrypted
    assert firing.login == "alerts"
    assert (firing.mail_from, firing.rcpt_tos) == ("tlsward@example.test", ["oncall@example.test"])
    message = firing.message()
    assert message["Subject"] == "[FIRING page] Certificate for api.example.test expires in 6 days"
    body = message.get_content()
    assert "Fix:\nRenew the certificate" in body and "  - 10.0.0.5:443" in body
    assert resolved.message()["Subject"] == "[RESOLVED] Certificate for api.example.test expires in 6 days"
    assert resolved.message()["References"] == message["References"]


def test_email_over_implicit_tls(pki: Pki) -> None:
    with smtp_server(implicit_tls=pki.server_context()) as (port, inbox):
        run(send_and_close(EmailNotifier(mail_receiver(port, security="tls", ca_file=str(pki.ca_file))),
                           make_notification(receiver="mail")))
        [mail] = inbox.mails
    assert mail.tls is not None and mail.tls.startswith("TLSv1.")


def test_plain_email_to_localhost() -> None:
    with smtp_server() as (port, inbox):
        run(send_and_close(build_notifier(mail_receiver(port, security="plain")), make_notification()))
        [mail] = inbox.mails
    assert mail.tls is None


def test_email_refuses_a_server_certificate_from_another_ca(pki: Pki) -> None:
    with smtp_server(starttls=pki.server_context()) as (port, inbox):
        notifier = build_notifier(mail_receiver(port, ca_file=str(pki.other_ca_file)))
        with pytest.raises(DeliveryError) as info:
            run(send_and_close(notifier, make_notification()))
        assert not inbox.mails
    assert str(info.value).startswith(f"receiver 'mail' (smtp://127.0.0.1:{port}): TLS certificate not trusted (")
    assert not info.value.retryable


def test_email_never_downgrades_when_starttls_is_missing(pki: Pki) -> None:
    with smtp_server() as (port, inbox):
        notifier = build_notifier(mail_receiver(port, ca_file=str(pki.ca_file)))
        with pytest.raises(DeliveryError) as info:
            run(send_and_close(notifier, make_notification()))
        assert not inbox.mails
    assert str(info.value) == (f"receiver 'mail' (smtp://127.0.0.1:{port}): server does not offer STARTTLS; "
                               "not sending in plain text")


def test_email_login_refused_names_the_smtp_reply(pki: Pki) -> None:
    with smtp_server(starttls=pki.server_context(), auth=True) as (port, inbox):
        notifier = build_notifier(mail_receiver(port, username="alerts", password="wrong", ca_file=str(pki.ca_file)))
        with pytest.raises(DeliveryError, match=r"login refused: SMTP 535 ") as info:
            run(send_and_close(notifier, make_notification()))
        assert not inbox.mails and not info.value.retryable


def test_email_connection_refused() -> None:
    port = closed_port()
    with pytest.raises(DeliveryError) as info:
        run(send_and_close(build_notifier(mail_receiver(port, security="plain")), make_notification()))
    assert str(info.value) == f"receiver 'mail' (smtp://127.0.0.1:{port}): connection refused"
    assert info.value.retryable


# -- Prometheus Alertmanager -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Alertmanager:
    url: str
    forwarded: Receiver         # where Alertmanager sends its own notifications (send_resolved: true)

    def active(self, alert_key: str) -> list[dict[str, Any]]:
        query = urllib.parse.urlencode({"filter": f'alert_key="{alert_key}"'})
        response = httpx.get(f"{self.url}/api/v2/alerts?{query}", timeout=5)
        response.raise_for_status()
        alerts: list[dict[str, Any]] = response.json()
        return alerts

    def forwarded_for(self, alert_key: str) -> list[dict[str, Any]]:
        return [alert for request in self.forwarded.received("/am") for alert in request.json()["alerts"]
                if alert["labels"].get("alert_key") == alert_key]


AM_CONFIG = """\
route:
  receiver: capture
  group_by: ['alert_key']
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: capture
    webhook_configs:
      - url: {url}
        send_resolved: true
"""


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/-/ready", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def alertmanager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Alertmanager]:
    """The Debian ``prometheus-alertmanager`` on a free loopback port, gossip off, state in a temp dir."""
    binary = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    assert binary, "these tests need Prometheus Alertmanager: apt-get install prometheus-alertmanager"
    directory = tmp_path_factory.mktemp("alertmanager")
    with http_receiver() as forwarded:
        config = directory / "alertmanager.yml"
        config.write_text(AM_CONFIG.format(url=forwarded.url("/am")))
        log_path = directory / "alertmanager.log"
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [binary, f"--config.file={config}", f"--web.listen-address=127.0.0.1:{port}",
                 "--cluster.listen-address=", f"--storage.path={directory / 'data'}"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            )
        try:
            deadline = time.monotonic() + 15
            while not _ready(url):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"Alertmanager did not become ready:\n{log_path.read_text()[-2000:]}")
                time.sleep(0.05)
            yield Alertmanager(url, forwarded)
        finally:
            process.terminate()
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


def test_alertmanager_receives_labels_and_annotations(alertmanager: Alertmanager) -> None:
    key = f"cert.expiring:{uuid.uuid4().hex}:7d"
    started = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=5)
    notification = make_notification(key=key, starts_at=started, receiver="am",
                                     labels=(("environment", "prod"), ("k8s-namespace", "payments")))
    config = receiver(name="am", kind="alertmanager", url=alertmanager.url, firing_ttl=600,
                      generator_url="https://tlsward.example.test/alerts")
    before = dt.datetime.now(dt.UTC)
    run(send_and_close(AlertmanagerNotifier(config), notification))

    [alert] = alertmanager.active(key)
    assert alert["labels"] == {
        "alertname": "cert.expiring", "severity": "high", "route": "page", "owner": "alice", "team": "payments",
        "alert_key": key, "environment": "prod", "k8s_namespace": "payments",
    }
    assert alert["annotations"] == {
        "summary": "Certificate for api.example.test expires in 6 days",
        "description": notification.alert.description,
        "fix": "Renew the certificate and reload the servers listed.",
        "runbook_url": "https://runbooks.example.test/cert-expiring",
        "endpoints": "api.example.test:443, 10.0.0.2:443, 10.0.0.3:443, 10.0.0.4:443, 10.0.0.5:443",
    }
    assert alert["generatorURL"] == "https://tlsward.example.test/alerts"
    assert alert["status"]["state"] in ("active", "unprocessed")
    assert _parse(alert["startsAt"]) == started
    ends = _parse(alert["endsAt"])
    assert before + dt.timedelta(seconds=590) <= ends <= before + dt.timedelta(seconds=620)   # firing_ttl


def test_alertmanager_resolves_the_alert_and_forwards_the_resolve(alertmanager: Alertmanager) -> None:
    key = f"cert.expired:{uuid.uuid4().hex}"
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    firing = make_notification(key=key, rule="cert.expired", starts_at=now - dt.timedelta(minutes=10),
                               receiver="am")
    config = receiver(name="am", kind="alertmanager", url=alertmanager.url + "/")
    run(send_and_close(AlertmanagerNotifier(config), firing))
    assert len(alertmanager.active(key)) == 1
    wait_until(lambda: any(a["status"] == "firing" for a in alertmanager.forwarded_for(key)), 5,
               "Alertmanager to forward the firing alert")

    resolved = make_notification(NotificationKind.RESOLVED, key=key, rule="cert.expired", receiver="am",
                                 status=AlertStatus.RESOLVED, starts_at=now - dt.timedelta(minutes=10),
                                 ends_at=now - dt.timedelta(seconds=1))
    run(send_and_close(AlertmanagerNotifier(config), resolved))
    assert alertmanager.active(key) == []                 # a resolved alert leaves the active list
    wait_until(lambda: any(a["status"] == "resolved" for a in alertmanager.forwarded_for(key)), 5,
               "Alertmanager to forward the resolve")
    [forwarded] = [a for a in alertmanager.forwarded_for(key) if a["status"] == "resolved"]
    assert _parse(forwarded["endsAt"]) == now - dt.timedelta(seconds=1)
    assert forwarded["labels"]["alertname"] == "cert.expired"


def test_alertmanager_gets_a_bounded_key_label_and_rejects_nothing(alertmanager: Alertmanager) -> None:
    key = "name.backends_differ:" + ",".join(f"backend-{i}.example.test:443" for i in range(20)) + uuid.uuid4().hex
    config = receiver(name="am", kind="alertmanager", url=alertmanager.url)
    run(send_and_close(AlertmanagerNotifier(config),
                       make_notification(key=key, receiver="am", starts_at=dt.datetime.now(dt.UTC))))
    response = httpx.get(f"{alertmanager.url}/api/v2/alerts", timeout=5)
    labels = [a["labels"]["alert_key"] for a in response.json()
              if a["labels"]["alert_key"].startswith("name.backends_differ:")]
    assert len(labels) == 1 and len(labels[0]) == 100


def test_an_alertmanager_refusal_is_permanent_and_quoted(alertmanager: Alertmanager) -> None:
    notifier = AlertmanagerNotifier(receiver(name="am", kind="alertmanager", url=alertmanager.url, firing_ttl=60))
    # A monitor whose clock runs a day ahead: the alert starts after its end (now + the 60 s ttl).
    ahead = make_notification(receiver="am", starts_at=dt.datetime.now(dt.UTC) + dt.timedelta(days=1))
    with pytest.raises(DeliveryError) as info:
        run(send_and_close(notifier, ahead))
    assert str(info.value) == (f"receiver 'am' ({alertmanager.url}): HTTP 400 Bad Request: "
                               '"start time must be before end time"')
    assert not info.value.retryable


def _parse(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
