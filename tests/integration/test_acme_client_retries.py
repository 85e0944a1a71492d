"""Retries and ARI against a small scripted ACME server on loopback (real HTTP, no mocks): 503 and 429 with
Retry-After are waited out within a bound, a Retry-After beyond the bound fails at once with the server's problem,
renewalInfo is fetched by the RFC 9773 certificate identifier, and an order carries ``replaces`` (pebble 2.4 has no
ARI, so this is where the ARI side of the client meets a server)."""

from __future__ import annotations

import base64
import datetime as dt
import json
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tlsward.acme.client import AcmeAccountSettings, AcmeClient, AcmeError, RetryPolicy
from tlsward.acme.renewal import ari_cert_id, renewal_due
from tlsward.acme.solvers import Http01Listener

pytestmark = [pytest.mark.integration, pytest.mark.timeout(30)]

PROBLEM = "application/problem+json"


Answer = tuple[int, dict[str, str], bytes]


@dataclass
class Script:
    """Answers to hand out per path, in order; the last one repeats. Each is (status, headers, body), or a function
    of the JWS payload (decoded JSON, None for POST-as-GET) returning one."""

    answers: dict[str, list[Answer | Callable[[object], Answer]]] = field(default_factory=dict)
    seen: list[str] = field(default_factory=list)
    payloads: dict[str, list[object]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next(self, method: str, path: str, body: bytes) -> Answer:
        payload = None
        if method == "POST" and body:
            encoded = json.loads(body)["payload"]
            if encoded:
                payload = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
        with self.lock:
            self.seen.append(f"{method} {path}")
            self.payloads.setdefault(path, []).append(payload)
            queue = self.answers.get(path) or self.answers.get(path.rsplit("/", 1)[0] + "/*")
            if not queue:
                return 404, {}, b""
            answer = queue.pop(0) if len(queue) > 1 else queue[0]
        return answer(payload) if callable(answer) else answer


def _handler(script: Script) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            return

        def _answer(self, with_body: bool) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            request = self.rfile.read(length) if length else b""
            status, headers, body = script.next(self.command, self.path, request)
            self.send_response(status)
            self.send_header("Replay-Nonce", secrets.token_urlsafe(16))
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if with_body:
                self.wfile.write(body)

        def do_GET(self) -> None:
            self._answer(True)

        def do_POST(self) -> None:
            self._answer(True)

        def do_HEAD(self) -> None:
            self._answer(False)

    return Handler


@dataclass
class ScriptedAcme:
    base: str
    script: Script

    @property
    def directory_url(self) -> str:
        return self.base + "/dir"

    def directory(self, *, ari: bool = True) -> bytes:
        doc = {"newNonce": self.base + "/nonce", "newAccount": self.base + "/acct", "newOrder": self.base + "/order",
               "revokeCert": self.base + "/revoke", "keyChange": self.base + "/key", "meta": {}}
        if ari:
            doc["renewalInfo"] = self.base + "/ari"
        return json.dumps(doc).encode()


@pytest.fixture
def acme_server() -> Iterator[ScriptedAcme]:
    script = Script()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(script))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        acme = ScriptedAcme(f"http://127.0.0.1:{server.server_address[1]}", script)
        script.answers["/nonce"] = [(200, {}, b"")]
        script.answers["/acct"] = [(201, {"Location": acme.base + "/acct/1", "Content-Type": "application/json"},
                                    b'{"status": "valid"}')]
        yield acme
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _problem(code: str, detail: str) -> bytes:
    return json.dumps({"type": f"urn:ietf:params:acme:error:{code}", "detail": detail}).encode()


class RecordingSleep:
    """Sleeps for real (the server's clock is real too) and remembers each wait."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        time.sleep(seconds)


def _client(acme: ScriptedAcme, tmp_path: Path, sleep: RecordingSleep, retry: RetryPolicy | None = None) -> AcmeClient:
    settings = AcmeAccountSettings(directory_url=acme.directory_url, account_dir=tmp_path / "acct")
    return AcmeClient(settings, timeout=5, retry=retry, sleep=sleep)


def test_503_and_429_with_retry_after_are_waited_out(acme_server: ScriptedAcme, tmp_path: Path) -> None:
    script = acme_server.script
    script.answers["/dir"] = [(503, {"Retry-After": "1"}, b""), (503, {"Retry-After": "1"}, b""),
                              (200, {"Content-Type": "application/json"}, acme_server.directory())]
    script.answers["/acct"].insert(0, (429, {"Retry-After": "1", "Content-Type": PROBLEM},
                                       _problem("rateLimited", "too many new accounts")))
    sleep = RecordingSleep()
    started = time.monotonic()
    url = _client(acme_server, tmp_path, sleep).register()
    assert url == acme_server.base + "/acct/1"
    assert sleep.waits == [1.0, 1.0, 1.0]
    assert script.seen.count("GET /dir") == 3 and script.seen.count("POST /acct") == 2
    assert time.monotonic() - started < 10


def test_a_retry_after_beyond_the_bound_fails_at_once_with_the_servers_problem(acme_server: ScriptedAcme,
                                                                              tmp_path: Path) -> None:
    script = acme_server.script
    script.answers["/dir"] = [(200, {"Content-Type": "application/json"}, acme_server.directory())]
    script.answers["/acct"] = [(429, {"Retry-After": "3600", "Content-Type": PROBLEM},
                                _problem("rateLimited", "too many new accounts"))]
    sleep = RecordingSleep()
    with pytest.raises(AcmeError) as caught:
        _client(acme_server, tmp_path, sleep, RetryPolicy(max_wait=30)).register()
    assert str(caught.value) == (f"{acme_server.directory_url}: urn:ietf:params:acme:error:rateLimited: "
                                 "newAccount: too many new accounts")
    assert sleep.waits == []


def test_attempts_are_bounded_with_jittered_backoff(acme_server: ScriptedAcme, tmp_path: Path) -> None:
    acme_server.script.answers["/dir"] = [(503, {}, b"down")]
    sleep = RecordingSleep()
    policy = RetryPolicy(max_attempts=4, base_delay=0.05, max_delay=0.2)
    with pytest.raises(AcmeError) as caught:
        _client(acme_server, tmp_path, sleep, policy).register()
    url = acme_server.directory_url
    assert str(caught.value) == f"{url}: http: directory: HTTP 503 Service Unavailable from {url}"
    assert acme_server.script.seen.count("GET /dir") == 4
    assert len(sleep.waits) == 3
    assert all(0 <= wait <= cap for wait, cap in zip(sleep.waits, [0.05, 0.1, 0.2], strict=True))


def _cert_with_aki(serial: int) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ari.example.test")])
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(serial).not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=5))
        .add_extension(x509.AuthorityKeyIdentifier(bytes(range(20)), None, None), critical=False)
        .sign(key, hashes.SHA256())
    )


def test_renewal_info_asks_ari_by_cert_id_and_feeds_the_decision(acme_server: ScriptedAcme, tmp_path: Path) -> None:
    script = acme_server.script
    script.answers["/dir"] = [(200, {"Content-Type": "application/json"}, acme_server.directory())]
    start, end = "2026-11-30T00:00:00Z", "2026-12-01T00:00:00Z"
    script.answers["/ari/*"] = [(200, {"Content-Type": "application/json", "Retry-After": "21600"},
                                 json.dumps({"suggestedWindow": {"start": start, "end": end}}).encode())]
    cert = _cert_with_aki(0x87654321)
    window = _client(acme_server, tmp_path, RecordingSleep()).renewal_info(cert)
    assert window == (dt.datetime(2026, 11, 30, tzinfo=dt.UTC), dt.datetime(2026, 12, 1, tzinfo=dt.UTC))
    assert f"GET /ari/{ari_cert_id(cert)}" in script.seen
    assert ari_cert_id(cert) == "AAECAwQFBgcICQoLDA0ODxAREhM.AIdlQyE"
    decision = renewal_due(cert.not_valid_before_utc, cert.not_valid_after_utc, window[0] - dt.timedelta(hours=1),
                           window, cert_id=ari_cert_id(cert))
    assert not decision.due and decision.reason == "ari-window" and window[0] <= decision.at <= window[1]


def test_renewal_info_is_none_without_ari(acme_server: ScriptedAcme, tmp_path: Path) -> None:
    acme_server.script.answers["/dir"] = [(200, {"Content-Type": "application/json"},
                                           acme_server.directory(ari=False))]
    assert _client(acme_server, tmp_path, RecordingSleep()).renewal_info(_cert_with_aki(1)) is None


JSON = {"Content-Type": "application/json"}


def _script_an_order(acme: ScriptedAcme, name: str, new_order: list[Answer]) -> None:
    """A CA that has nothing left to validate (status ready) and signs whatever key the CSR carries."""
    base = acme.base
    order = {"identifiers": [{"type": "dns", "value": name}], "authorizations": [], "finalize": base + "/finalize/1"}
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "scripted CA")])

    def finalize(payload: object) -> Answer:
        assert isinstance(payload, dict)
        der = base64.urlsafe_b64decode(payload["csr"] + "=" * (-len(payload["csr"]) % 4))
        csr = x509.load_der_x509_csr(der)
        now = dt.datetime.now(dt.UTC)
        leaf = (
            x509.CertificateBuilder().subject_name(csr.subject).issuer_name(ca_name).public_key(csr.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + dt.timedelta(days=6))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        issuer = (
            x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + dt.timedelta(days=6))
            .sign(ca_key, hashes.SHA256())
        )
        chain = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (leaf, issuer))
        acme.script.answers["/cert/1"] = [(200, {"Content-Type": "application/pem-certificate-chain"}, chain)]
        return 200, JSON, json.dumps({**order, "status": "processing"}).encode()

    acme.script.answers["/dir"] = [(200, JSON, acme.directory())]
    acme.script.answers["/order"] = new_order
    acme.script.answers["/finalize/1"] = [finalize]
    acme.script.answers["/order/1"] = [(200, JSON, json.dumps({**order, "status": "valid",
                                                               "certificate": base + "/cert/1"}).encode())]


def _order_created(acme: ScriptedAcme, name: str) -> Answer:
    order = {"status": "ready", "identifiers": [{"type": "dns", "value": name}], "authorizations": [],
             "finalize": acme.base + "/finalize/1"}
    return 201, {**JSON, "Location": acme.base + "/order/1"}, json.dumps(order).encode()


def test_a_renewal_order_names_the_certificate_it_replaces(acme_server: ScriptedAcme, tmp_path: Path) -> None:
    old = _cert_with_aki(0x87654321)
    _script_an_order(acme_server, "ari.example.test", [_order_created(acme_server, "ari.example.test")])
    obtained = _client(acme_server, tmp_path, RecordingSleep()).obtain(
        ["ari.example.test"], Http01Listener("127.0.0.1", 0), replaces=old)
    assert acme_server.script.payloads["/order"] == [
        {"identifiers": [{"type": "dns", "value": "ari.example.test"}], "replaces": ari_cert_id(old)}]
    assert obtained.not_after - obtained.not_before == dt.timedelta(days=6)
    assert obtained.fullchain_pem == obtained.cert_pem + obtained.chain_pem


def test_a_refused_replaces_is_dropped_and_the_order_retried(acme_server: ScriptedAcme, tmp_path: Path) -> None:
    refused = (409, {"Content-Type": PROBLEM}, _problem("alreadyReplaced", "already replaced"))
    _script_an_order(acme_server, "ari.example.test",
                     [refused, _order_created(acme_server, "ari.example.test")])
    _client(acme_server, tmp_path, RecordingSleep()).obtain(["ari.example.test"], Http01Listener("127.0.0.1", 0),
                                                            replaces=_cert_with_aki(7))
    first, second = acme_server.script.payloads["/order"]
    assert isinstance(first, dict) and "replaces" in first
    assert isinstance(second, dict) and "replaces" not in second
