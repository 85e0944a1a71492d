"""Renewal decisions (ARI window first, else two thirds of the lifetime) and the RFC 9773 certificate identifier."""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path

import pytest
from cryptography import x509

from tlsward.acme.errors import AcmeError
from tlsward.acme.renewal import ari_cert_id, renewal_due, serial_der_bytes

UTC = dt.UTC
T0 = dt.datetime(2029, 3, 15, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("days", "due_after"),
    [
        (6, dt.timedelta(days=4)),                   # Let's Encrypt's short-lived certificates
        (47, dt.timedelta(days=31, hours=8)),        # CA/B Forum maximum from 2029-03-15
        (90, dt.timedelta(days=60)),
        (200, dt.timedelta(days=133, hours=8)),
    ],
)
def test_without_ari_renewal_is_due_at_two_thirds(days: int, due_after: dt.timedelta) -> None:
    not_after = T0 + dt.timedelta(days=days)
    before = renewal_due(T0, not_after, T0 + due_after - dt.timedelta(seconds=1))
    at = renewal_due(T0, not_after, T0 + due_after)
    assert (before.due, at.due) == (False, True)
    assert before.at == at.at == T0 + due_after
    assert at.reason == "two-thirds-lifetime"


def test_expired_is_always_due_even_with_a_later_ari_window() -> None:
    not_after = T0 + dt.timedelta(days=6)
    window = (not_after + dt.timedelta(days=1), not_after + dt.timedelta(days=2))
    decision = renewal_due(T0, not_after, not_after, window)
    assert decision == renewal_due(T0, not_after, not_after) and decision.due and decision.reason == "expired"


def test_ari_window_overrides_two_thirds_both_ways() -> None:
    not_after = T0 + dt.timedelta(days=47)
    two_thirds = T0 + dt.timedelta(days=31, hours=8)
    early_window = (T0 + dt.timedelta(days=2), T0 + dt.timedelta(days=3))   # e.g. the CA plans a mass revocation
    decision = renewal_due(T0, not_after, T0 + dt.timedelta(days=5), early_window)
    assert decision.due and decision.reason == "ari-window-passed" and decision.at == early_window[1]
    late_window = (T0 + dt.timedelta(days=40), T0 + dt.timedelta(days=41))
    decision = renewal_due(T0, not_after, two_thirds + dt.timedelta(days=1), late_window, cert_id="x.y")
    assert not decision.due and decision.reason == "ari-window" and late_window[0] <= decision.at <= late_window[1]


def test_the_moment_in_the_window_is_fixed_per_certificate_and_spread_across_certificates() -> None:
    not_after = T0 + dt.timedelta(days=90)
    window = (T0 + dt.timedelta(days=60), T0 + dt.timedelta(days=62))
    now = T0
    first = renewal_due(T0, not_after, now, window, cert_id="cert-a").at
    assert all(renewal_due(T0, not_after, now, window, cert_id="cert-a").at == first for _ in range(5))
    moments = {renewal_due(T0, not_after, now, window, cert_id=f"cert-{i}").at for i in range(200)}
    assert len(moments) == 200
    assert all(window[0] <= m < window[1] for m in moments)
    offsets = sorted((m - window[0]) / (window[1] - window[0]) for m in moments)
    assert offsets[0] < 0.05 and offsets[-1] > 0.95 and 0.4 < offsets[100] < 0.6  # roughly uniform
    due_once_reached = renewal_due(T0, not_after, first, window, cert_id="cert-a")
    assert due_once_reached.due


def test_an_empty_window_is_a_single_moment() -> None:
    moment = T0 + dt.timedelta(days=3)
    decision = renewal_due(T0, T0 + dt.timedelta(days=6), moment - dt.timedelta(seconds=1), (moment, moment))
    assert decision.at == moment and not decision.due


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((T0.replace(tzinfo=None), T0 + dt.timedelta(days=1), T0), "not_before must be timezone-aware"),
        ((T0, T0, T0), "is not after not_before"),
        ((T0, T0 + dt.timedelta(days=9), T0, (T0 + dt.timedelta(days=2), T0 + dt.timedelta(days=1))), "before it"),
    ],
)
def test_nonsense_is_refused(args: tuple[object, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        renewal_due(*args)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("serial", "der"),
    [(0, "00"), (1, "01"), (0x7F, "7f"), (0x80, "0080"), (0xFF, "00ff"), (0x87654321, "0087654321"),
     (0x12345678, "12345678")],
)
def test_serial_content_octets_are_der_integers(serial: int, der: str) -> None:
    assert serial_der_bytes(serial).hex() == der


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=30)


def test_cert_id_of_an_openssl_certificate_matches_rfc_9773(tmp_path: Path) -> None:
    """The RFC 9773 §4.1 example: AKI keyIdentifier 69:88:5B:...:C8:D4 and serial 0x87654321 give
    aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE (checked by hand: `openssl base64` of the 20 key-id bytes, and 0x00
    prepended to the serial because its top bit is set). The certificate comes from openssl, not from our code."""
    ski = "69:88:5B:6B:87:46:40:41:E1:B3:7B:84:7B:A0:AE:2C:DE:01:C8:D4"
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca.key",
             "-out", "ca.pem", "-subj", "/CN=ARI test CA", "-days", "2", "-addext", f"subjectKeyIdentifier={ski}",
             "-addext", "basicConstraints=critical,CA:true", cwd=tmp_path)
    _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "leaf.key",
             "-out", "leaf.csr", "-subj", "/CN=leaf.example.test", cwd=tmp_path)
    (tmp_path / "ext.cnf").write_text("authorityKeyIdentifier=keyid:always\n")
    _openssl("x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-set_serial", "0x87654321",
             "-days", "1", "-extfile", "ext.cnf", "-out", "leaf.pem", cwd=tmp_path)
    leaf = x509.load_pem_x509_certificate((tmp_path / "leaf.pem").read_bytes())
    assert ari_cert_id(leaf) == "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE"


def test_cert_id_needs_an_authority_key_identifier(tmp_path: Path) -> None:
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "k.pem",
             "-out", "c.pem", "-subj", "/CN=no aki", "-days", "1", "-set_serial", "0x2a",
             "-addext", "authorityKeyIdentifier=none", "-addext", "subjectKeyIdentifier=none", cwd=tmp_path)
    cert = x509.load_pem_x509_certificate((tmp_path / "c.pem").read_bytes())
    with pytest.raises(AcmeError, match="serial 2a has no authority key identifier"):
        ari_cert_id(cert)
