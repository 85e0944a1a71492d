"""The monitor end to end: real TLS servers on loopback whose certificate we swap, the inventory on SQLite, and
every notifier talking to a real receiver (HTTP hooks, an SMTP server with STARTTLS, Debian's Alertmanager).

One certificate served by two endpoints makes exactly one alert; each threshold crossing notifies each receiver
exactly once; a restart does not re-send; a silence holds notifications back (and they come when it ends); a
replaced certificate resolves the alert.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ssl
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.integration.test_notifiers import Alertmanager, Pki, Receiver, http_receiver, smtp_server, wait_until
from tlsward.model.alerts import AlertStatus
from tlsward.model.inventory import EndpointRecord
from tlsward.model.monitor import Silence
from tlsward.monitor.config import parse_config
from tlsward.monitor.notify import Dispatcher
from tlsward.monitor.scheduler import Monitor
from tlsward.storage import open_store
from tlsward.storage.alerts import AlertStore

NAME = "svc.monitor.test"
INTERMEDIATE = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305"


class Issuer:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        self.name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Monitor Test CA")])
        self.cert = (x509.CertificateBuilder().subject_name(self.name).issuer_name(self.name)
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - dt.timedelta(days=400)).not_valid_after(now + dt.timedelta(days=400))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                     .add_extension(x509.KeyUsage(digital_signature=False, key_cert_sign=True, crl_sign=True,
                                                  content_commitment=False, key_encipherment=False,
                                                  data_encipherment=False, key_agreement=False,
                                                  encipher_only=False, decipher_only=False), critical=True)
                     .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False)
                     .sign(self.key, hashes.SHA256()))
        self.ca_file = directory / "ca.pem"
        self.ca_file.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def leaf(self, label: str, *, days_left: float, lifetime_days: float = 90) -> tuple[Path, Path, str]:
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        not_after = now + dt.timedelta(days=days_left)
        cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, NAME)]))
                .issuer_name(self.name).public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(not_after - dt.timedelta(days=lifetime_days)).not_valid_after(not_after)
                .add_extension(x509.SubjectAlternativeName([x509.DNSName(NAME)]), critical=False)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                               critical=False)
                .sign(self.key, hashes.SHA256()))
        cert_path, key_path = self.directory / f"{label}.pem", self.directory / f"{label}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        return cert_path, key_path, cert.fingerprint(hashes.SHA256()).hex()


class SwappableServer:
    """A loopback TLS server on a fixed port; assigning ``context`` restarts it with that context (new
    certificate, new protocol versions) on the same port, as a reload would."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.server: asyncio.Server | None = None
        self.port = 0
        self._context: ssl.SSLContext | None = None

    @property
    def context(self) -> ssl.SSLContext | None:
        return self._context

    @context.setter
    def context(self, context: ssl.SSLContext) -> None:
        self._context = context
        if self.thread.is_alive():
            asyncio.run_coroutine_threadsafe(self._listen(), self.loop).result(10)

    def serve(self, cert: Path, key: Path) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.context = context

    async def _listen(self) -> None:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.close()

        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
        self.server = await asyncio.start_server(handle, "127.0.0.1", self.port, ssl=self._context,
                                                 reuse_address=True)
        self.port = self.server.sockets[0].getsockname()[1]

    def start(self) -> None:
        self.thread.start()
        if self._context is None:
            placeholder = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self._context = placeholder
        asyncio.run_coroutine_threadsafe(self._listen(), self.loop).result(10)

    def stop(self) -> None:
        if self.server is not None:
            self.server.close()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[tuple[SwappableServer, SwappableServer]]:
    pair = (SwappableServer(), SwappableServer())
    for server in pair:
        server.start()
    yield pair
    for server in pair:
        server.stop()


def _config(hook: Receiver, smtp_port: int, pki: Pki, am: Alertmanager, ca_file: Path) -> Any:
    return parse_config({
        "probes": {"ca_files": [str(ca_file)], "timeout": "3s"},
        "receivers": {
            "hook": {"kind": "webhook", "url": hook.url("/hook")},
            "slack": {"kind": "slack", "url": hook.url("/slack")},
            "pd": {"kind": "pagerduty", "url": hook.url("/pd"), "routing_key": "R0UTINGKEY0123456789012345678901"},
            "mail": {"kind": "email", "host": "127.0.0.1", "port": smtp_port, "security": "starttls",
                     "ca_file": str(pki.ca_file), "from": "tlsward@example.test", "to": ["oncall@example.test"],
                     "timeout": 5},
            "am": {"kind": "alertmanager", "url": am.url},
        },
    }, "test-config")


def _round(db: str, loaded: Any, clock_offset: dt.timedelta = dt.timedelta(0)) -> None:
    """One `tlsward monitor --once` as a fresh process would run it: a new monitor and a new dispatcher."""
    async def scenario() -> None:
        dispatcher = Dispatcher.from_configs(loaded.receivers)
        monitor = Monitor(db, loaded.config, submit=dispatcher.submit, receivers=dispatcher.receivers,
                          clock=lambda: dt.datetime.now(dt.UTC) + clock_offset)
        await monitor.run(asyncio.Event(), once=True)
        assert await dispatcher.close(20), dispatcher.stats()
        failed = {name: s.last_error for name, s in dispatcher.stats().items() if s.failed}
        assert not failed, failed

    asyncio.run(scenario())


def test_expiry_alert_lifecycle_through_every_notifier(servers: tuple[SwappableServer, SwappableServer], pki: Pki,
                                                       alertmanager: Alertmanager, tmp_path: Path) -> None:
    issuer = Issuer(tmp_path)
    old_cert, old_key, old_sha = issuer.leaf("old", days_left=5)
    for server in servers:
        server.serve(old_cert, old_key)
    db = f"sqlite:///{tmp_path / 'inventory.db'}"
    with open_store(db) as store:
        for server in servers:
            store.upsert_endpoint(EndpointRecord(target=f"{NAME}:{server.port}", host=NAME, port=server.port,
                                                 sni=NAME, connect="127.0.0.1", owner="ana", team="payments"))
    key = f"cert.expiring:{old_sha}"
    with http_receiver() as hook, smtp_server(starttls=pki.server_context()) as (smtp_port, inbox):
        loaded = _config(hook, smtp_port, pki, alertmanager, issuer.ca_file)

        _round(db, loaded)                                   # 5 days left: the 7-day threshold, page
        firing = [r.json() for r in hook.received("/hook")]
        assert [(p["kind"], p["alert"]["key"]) for p in firing] == [("firing", key)]
        alert = firing[0]["alert"]
        assert alert["route"] == "page" and "Threshold crossed: 7d" in alert["description"]
        assert alert["team"] == "payments" and alert["labels"]["team"] == "payments"
        assert sorted(alert["endpoints"]) == sorted(f"{NAME}:{s.port}" for s in servers), "one alert, 2 endpoints"
        assert len(hook.received("/slack")) == 1 and len(hook.received("/pd")) == 1 and len(inbox.mails) == 1
        assert inbox.mails[0].tls is not None and "[FIRING page]" in inbox.mails[0].message()["Subject"]
        assert hook.received("/pd")[0].json()["dedup_key"] == key
        assert [a["labels"]["alertname"] for a in alertmanager.active(key)] == ["cert.expiring"]

        _round(db, loaded)                                   # a restart: nothing new to say
        assert len(hook.received("/hook")) == 1 and len(inbox.mails) == 1 and len(hook.received("/pd")) == 1

        now = dt.datetime.now(dt.UTC)
        with open_store(db) as store:
            silence = AlertStore(store).add_silence(Silence((("team", "payments"),), now, now + dt.timedelta(days=9),
                                                            "test", "maintenance"), now)
        later = dt.timedelta(days=3)                          # 2 days left: the 3-day threshold
        _round(db, loaded, later)
        assert len(hook.received("/hook")) == 1 and len(inbox.mails) == 1, "the silence must hold it back"
        with open_store(db) as store:
            [stored] = AlertStore(store).load(status=AlertStatus.FIRING)
            assert (stored.stage, stored.notified_stage) == ("3d", "7d")
            assert silence.id is not None and AlertStore(store).expire_silence(silence.id, dt.datetime.now(dt.UTC))
        _round(db, loaded, later)                             # silence over: the escalation goes out, once
        assert ["Threshold crossed: 3d" in r.json()["alert"]["description"] for r in hook.received("/hook")] == [
            False, True]
        assert [a["labels"]["severity"] for a in alertmanager.active(key)] == ["critical"], "one version only"
        assert len(inbox.mails) == 2 and len(hook.received("/slack")) == 2 and len(hook.received("/pd")) == 2
        _round(db, loaded, later)
        assert len(hook.received("/hook")) == 2

        new_cert, new_key, new_sha = issuer.leaf("new", days_left=80)
        for server in servers:
            server.serve(new_cert, new_key)                   # renewed and deployed everywhere
        _round(db, loaded)                                    # (real time again: Alertmanager reads endsAt)
        assert [r.json()["kind"] for r in hook.received("/hook")] == ["firing", "firing", "resolved"]
        assert hook.received("/pd")[-1].json()["event_action"] == "resolve"
        assert "[RESOLVED]" in inbox.mails[-1].message()["Subject"] and len(inbox.mails) == 3
        # Labels are an alert's identity in Alertmanager and the escalation changed severity: the superseded
        # version was ended when the escalation was posted, and the resolve ended the last one.
        wait_until(lambda: alertmanager.active(key) == [], 10, "Alertmanager to drop the resolved alert")
        _round(db, loaded, later)
        assert len(hook.received("/hook")) == 3, "a resolved alert must stay quiet"
        with open_store(db) as store:
            alerts = AlertStore(store).load()
            assert [(a.alert.key, a.alert.status) for a in alerts] == [(key, AlertStatus.RESOLVED)]
            assert not any(new_sha in a.alert.key for a in alerts)


def test_tls10_enabled_again_is_caught_by_deep_scans_and_quick_probes_do_not_flap(
        servers: tuple[SwappableServer, SwappableServer], tmp_path: Path) -> None:
    issuer = Issuer(tmp_path)
    cert, key, _ = issuer.leaf("site", days_left=80)
    server = servers[0]

    def versions(minimum: ssl.TLSVersion) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)   # TLS 1.0 is the point of this test
            context.minimum_version = minimum
        # Mozilla intermediate's TLS 1.2 suites (the policy checked), plus, with TLS 1.0, what TLS 1.0 needs
        # (Debian's OpenSSL refuses TLS 1.0 below security level 0).
        context.set_ciphers(INTERMEDIATE if minimum >= ssl.TLSVersion.TLSv1_2 else
                            f"{INTERMEDIATE}:ECDHE-ECDSA-AES128-SHA:@SECLEVEL=0")
        server.context = context

    versions(ssl.TLSVersion.TLSv1_2)
    db = f"sqlite:///{tmp_path / 'inventory.db'}"
    target = f"{NAME}:{server.port}"
    with open_store(db) as store:
        store.upsert_endpoint(EndpointRecord(target=target, host=NAME, port=server.port, sni=NAME,
                                             connect="127.0.0.1", team="web"))
    policy = tmp_path / "team.toml"    # Mozilla intermediate, without the rules a bare Python server cannot meet
    policy.write_text('extends = "mozilla-intermediate"\ngroups = []\nhsts_required = false\n'
                      "ocsp_stapling_required = false\n")
    with http_receiver() as hook:
        loaded = parse_config({"probes": {"ca_files": [str(issuer.ca_file)], "timeout": "3s",
                                          "deep_interval": "off", "policy": str(policy)},
                               "receivers": {"hook": {"kind": "webhook", "url": hook.url("/hook")}}}, "test")

        def round_(deep: bool) -> list[tuple[str, str]]:
            async def scenario() -> None:
                dispatcher = Dispatcher.from_configs(loaded.receivers)
                monitor = Monitor(db, loaded.config, submit=dispatcher.submit, receivers=dispatcher.receivers,
                                  force_deep=deep)
                await monitor.run(asyncio.Event(), once=True)
                assert await dispatcher.close(20)

            asyncio.run(scenario())
            return [(r.json()["kind"], r.json()["alert"]["key"]) for r in hook.received("/hook")]

        assert round_(deep=True) == [], [r.json()["alert"]["description"] for r in hook.received("/hook")]
        versions(ssl.TLSVersion.TLSv1)                      # someone re-enabled TLS 1.0 for an old client
        assert round_(deep=False) == [], "a quick probe negotiates TLS 1.3 and cannot see it"
        sent = round_(deep=True)
        assert ("firing", f"protocol.tls10:{target}") in sent, sent
        assert ("firing", f"policy.violation:{target}") in sent, sent
        described = {r.json()["alert"]["key"]: r.json()["alert"]["description"] for r in hook.received("/hook")}
        assert "TLSv1.0" in described[f"policy.violation:{target}"], "the alert must say what was seen"
        count = len(sent)
        assert len(round_(deep=False)) == count, "the quick probe in between must not resolve it"
        versions(ssl.TLSVersion.TLSv1_2)                    # rolled back
        final = round_(deep=True)
        assert ("resolved", f"protocol.tls10:{target}") in final[count:], final
