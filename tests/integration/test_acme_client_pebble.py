"""The ACME client against Debian's pebble on loopback: obtain (http-01 listener, webroot, dns-01 via RFC 2136 to a
real BIND), renew by the two-thirds rule, revoke, and badNonce retries when pebble rejects half of the nonces."""

from __future__ import annotations

import datetime as dt
import functools
import stat
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import pytest
from cryptography import x509

from tests.integration.acme_peers import TSIG_NAME, ZONE, Named, Pebble, make_server_tls, running_named, running_pebble
from tlsward.acme.client import AcmeAccountSettings, AcmeClient, AcmeError, ObtainedCertificate, RetryPolicy
from tlsward.acme.renewal import renewal_due
from tlsward.acme.solvers import Dns01Rfc2136, Http01Listener, Http01Webroot

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


@pytest.fixture(scope="module")
def named(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Named]:
    with running_named(tmp_path_factory.mktemp("named")) as server:
        yield server


@pytest.fixture(scope="module")
def pebble(tmp_path_factory: pytest.TempPathFactory, named: Named) -> Iterator[Pebble]:
    directory = tmp_path_factory.mktemp("pebble")
    with running_pebble(directory, make_server_tls(directory), named.port) as server:
        yield server


def _client(pebble: Pebble, account_dir: Path, **kwargs: object) -> AcmeClient:
    settings = AcmeAccountSettings(directory_url=pebble.directory_url, account_dir=account_dir,
                                   email="ops@example.test", ca_bundle=pebble.ca_bundle)
    return AcmeClient(settings, timeout=10, order_timeout=30, **kwargs)  # type: ignore[arg-type]


def _leaf(obtained: ObtainedCertificate) -> x509.Certificate:
    return x509.load_pem_x509_certificate(obtained.cert_pem)


def _sans(cert: x509.Certificate) -> set[str]:
    return set(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName))


def test_register_creates_a_private_key_and_finds_the_account_again(pebble: Pebble, tmp_path: Path) -> None:
    url = _client(pebble, tmp_path / "acct").register()
    assert url.startswith("https://127.0.0.1:")
    assert stat.S_IMODE((tmp_path / "acct" / "account.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "acct" / "account.json").stat().st_mode) == 0o600
    assert _client(pebble, tmp_path / "acct").register() == url  # same key, same account


def test_obtain_with_the_builtin_listener(pebble: Pebble, tmp_path: Path) -> None:
    solver = Http01Listener("127.0.0.1", pebble.http_port)
    obtained = _client(pebble, tmp_path / "acct").obtain(["www.example.test", "api.example.test"], solver)
    leaf = _leaf(obtained)
    assert _sans(leaf) == {"www.example.test", "api.example.test"}
    assert obtained.fullchain_pem.startswith(obtained.cert_pem) and obtained.chain_pem
    assert obtained.not_before == leaf.not_valid_before_utc and obtained.not_after == leaf.not_valid_after_utc
    assert b"PRIVATE KEY" in obtained.key_pem
    # The listener only ran during the order: the port is free again.
    probe = Http01Listener("127.0.0.1", pebble.http_port)
    probe.start()
    probe.stop()


def test_obtain_through_a_webroot_served_by_a_plain_web_server(pebble: Pebble, tmp_path: Path) -> None:
    webroot = tmp_path / "www"
    webroot.mkdir()
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(webroot))
    server = ThreadingHTTPServer(("127.0.0.1", pebble.http_port), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        obtained = _client(pebble, tmp_path / "acct").obtain(["static.example.test"], Http01Webroot(webroot),
                                                             key_type="rsa-2048")
    finally:
        server.shutdown()
        server.server_close()
    assert _sans(_leaf(obtained)) == {"static.example.test"}
    assert list((webroot / ".well-known" / "acme-challenge").iterdir()) == []  # cleaned up


def test_obtain_a_wildcard_over_dns01_with_rfc2136_updates_to_bind(pebble: Pebble, named: Named,
                                                                   tmp_path: Path) -> None:
    solver = Dns01Rfc2136("127.0.0.1", named.port, tsig_name=TSIG_NAME, tsig_secret=named.tsig_secret,
                          propagation_timeout=10)
    obtained = _client(pebble, tmp_path / "acct").obtain([f"*.{ZONE}", ZONE], solver)
    assert _sans(_leaf(obtained)) == {f"*.{ZONE}", ZONE}
    # Both TXT values (wildcard and apex share _acme-challenge.example.test) were deleted again.
    answer = dns.query.tcp(dns.message.make_query(f"_acme-challenge.{ZONE}", "TXT"), "127.0.0.1", timeout=5,
                           port=named.port)
    assert answer.rcode() == dns.rcode.NOERROR and not answer.answer


def test_dns01_update_without_the_key_is_refused_with_one_line(pebble: Pebble, named: Named, tmp_path: Path) -> None:
    solver = Dns01Rfc2136("127.0.0.1", named.port, zone=ZONE)
    with pytest.raises(AcmeError) as caught:
        _client(pebble, tmp_path / "acct").obtain([f"nokey.{ZONE}"], solver)
    message = str(caught.value)
    assert message.startswith(pebble.directory_url + ": solver: ") and "REFUSED" in message
    assert "\n" not in message


def test_failed_http01_validation_names_the_server_and_the_problem(pebble: Pebble, tmp_path: Path) -> None:
    webroot = tmp_path / "nobody-serves-this"
    with pytest.raises(AcmeError) as caught:
        _client(pebble, tmp_path / "acct").obtain(["unserved.example.test"], Http01Webroot(webroot))
    assert str(caught.value).startswith(f"{pebble.directory_url}: urn:ietf:params:acme:error:connection: ")
    assert "unserved.example.test" in str(caught.value)


def test_renew_at_two_thirds_then_revoke(pebble: Pebble, tmp_path: Path) -> None:
    client = _client(pebble, tmp_path / "acct")
    solver = Http01Listener("127.0.0.1", pebble.http_port)
    first = client.obtain(["renew.example.test"], solver)
    cert = _leaf(first)
    assert client.renewal_info(cert) is None  # pebble 2.4 has no ARI: the two-thirds rule decides
    lifetime = first.not_after - first.not_before
    early = renewal_due(first.not_before, first.not_after, first.not_before + lifetime / 2)
    assert not early.due and early.reason == "two-thirds-lifetime"
    later = renewal_due(first.not_before, first.not_after, first.not_before + lifetime * 0.7)
    assert later.due and abs(later.at - (first.not_before + lifetime * 2 / 3)) < dt.timedelta(seconds=1)

    second = client.obtain(["renew.example.test"], solver, key_pem=first.key_pem, replaces=cert)
    renewed = _leaf(second)
    assert renewed.serial_number != cert.serial_number and second.key_pem == first.key_pem
    assert renewed.public_key() == cert.public_key()

    assert pebble.cert_status(cert.serial_number) == "Valid"
    client.revoke(cert, reason=4)  # superseded
    assert pebble.cert_status(cert.serial_number) == "Revoked"
    assert pebble.cert_status(renewed.serial_number) == "Valid"
    with pytest.raises(AcmeError, match=r"urn:ietf:params:acme:error:alreadyRevoked"):
        client.revoke(cert)


@pytest.fixture
def flaky_pebble(tmp_path_factory: pytest.TempPathFactory, named: Named) -> Iterator[Pebble]:
    directory = tmp_path_factory.mktemp("pebble-nonces")
    with running_pebble(directory, make_server_tls(directory), named.port, nonce_reject=50) as server:
        yield server


def test_bad_nonces_are_retried_with_fresh_ones(flaky_pebble: Pebble, tmp_path: Path) -> None:
    """With half of the nonces rejected, a whole order still goes through; without retries it fails."""
    solver = Http01Listener("127.0.0.1", flaky_pebble.http_port)
    obtained = _client(flaky_pebble, tmp_path / "acct", retry=RetryPolicy(bad_nonce_attempts=30)).obtain(
        ["nonce.example.test"], solver)
    assert _sans(_leaf(obtained)) == {"nonce.example.test"}

    stubborn = _client(flaky_pebble, tmp_path / "acct2", retry=RetryPolicy(bad_nonce_attempts=0))
    with pytest.raises(AcmeError, match=r"urn:ietf:params:acme:error:badNonce"):
        for _ in range(20):  # P(no rejection in 20 obtains of ~8 POSTs each) is negligible
            stubborn.obtain(["nonce.example.test"], solver)
