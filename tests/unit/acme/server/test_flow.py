"""The whole ACME flow through the real app, CA and SQL state: directory, nonces, account, order, authorization,
challenge, finalize, download with the chain, ARI, renewal with ``replaces``, revocation, key rollover and
deactivation."""

from __future__ import annotations

import base64
import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from starlette.testclient import TestClient

from tests.unit.acme.server.acme_support import Acme, Key, b64, csr, jws
from tlsward.acme.server.ari import cert_id_of
from tlsward.ca.authority import CertificateAuthority

ACME = "http://testserver/acme"


def problem_type(response: object) -> str:
    assert hasattr(response, "json") and hasattr(response, "headers")
    assert response.headers["Content-Type"] == "application/problem+json"
    assert response.headers.get("Replay-Nonce")
    kind: str = response.json()["type"]
    return kind.removeprefix("urn:ietf:params:acme:error:")


def test_directory_and_nonces(http: TestClient) -> None:
    directory = http.get(f"{ACME}/directory").json()
    assert http.get(f"{ACME}/directory").headers["Replay-Nonce"]
    for field in ("newNonce", "newAccount", "newOrder", "revokeCert", "keyChange", "renewalInfo"):
        assert directory[field].startswith(f"{ACME}/")
    assert directory["meta"]["externalAccountRequired"] is False
    head = http.head(directory["newNonce"])
    get = http.get(directory["newNonce"])
    assert head.status_code == 200 and get.status_code == 204
    assert head.headers["Replay-Nonce"] != get.headers["Replay-Nonce"]
    assert head.headers["Cache-Control"] == "no-store"


def test_issue_download_ari_renew_revoke(http: TestClient, ca: CertificateAuthority) -> None:
    client = Acme(http)
    created = client.register(contact=["mailto:ops@example.test"])
    assert created.status_code == 201 and created.json()["status"] == "valid"
    assert client.register().status_code == 200        # same key: the same account
    _, order_url, download = client.issue("www.example.test", "example.test")
    assert download.status_code == 200
    assert download.headers["Content-Type"].startswith("application/pem-certificate-chain")
    chain = x509.load_pem_x509_certificates(download.content)
    assert len(chain) == 2 and chain[1] == ca.intermediate
    leaf = chain[0]
    assert set(leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
               .get_values_for_type(x509.DNSName)) == {"www.example.test", "example.test"}
    assert client.post(order_url, None).json()["status"] == "valid"
    assert order_url in client.post(f"{client.kid}/orders", None).json()["orders"]

    cert_id = str(cert_id_of(leaf))
    info = http.get(f"{ACME}/renewal-info/{cert_id}")
    assert info.status_code == 200 and int(info.headers["Retry-After"]) > 0
    window = info.json()["suggestedWindow"]
    start = dt.datetime.fromisoformat(window["start"])
    assert leaf.not_valid_before_utc < start < dt.datetime.fromisoformat(window["end"]) < leaf.not_valid_after_utc

    renewal = client.post(f"{ACME}/new-order", {"identifiers": [{"type": "dns", "value": "example.test"}],
                                                "replaces": cert_id})
    assert renewal.status_code == 201 and renewal.json()["replaces"] == cert_id
    again = client.post(f"{ACME}/new-order", {"identifiers": [{"type": "dns", "value": "example.test"}],
                                              "replaces": cert_id})
    assert again.status_code == 409 and problem_type(again) == "alreadyReplaced"

    der = leaf.public_bytes(serialization.Encoding.DER)
    bad_reason = client.post(f"{ACME}/revoke-cert", {"certificate": b64(der), "reason": 7})
    assert problem_type(bad_reason) == "badRevocationReason"
    revoked = client.post(f"{ACME}/revoke-cert", {"certificate": b64(der), "reason": 4})
    assert revoked.status_code == 200, revoked.text
    assert ca.record(leaf.serial_number).revoked_at is not None
    twice = client.post(f"{ACME}/revoke-cert", {"certificate": b64(der)})
    assert problem_type(twice) == "alreadyRevoked"
    revoked_info = http.get(f"{ACME}/renewal-info/{cert_id}").json()["suggestedWindow"]
    assert dt.datetime.fromisoformat(revoked_info["start"]) < dt.datetime.now(dt.UTC)


def test_revocation_by_certificate_key_and_wrong_keys(http: TestClient) -> None:
    owner, other = Acme(http), Acme(http)
    owner.register()
    other.register()
    cert_key = ec.generate_private_key(ec.SECP256R1())
    _, _, download = owner.issue("revoke.example.test", cert_key=cert_key)
    der = x509.load_pem_x509_certificates(download.content)[0].public_bytes(serialization.Encoding.DER)
    url = f"{ACME}/revoke-cert"
    assert problem_type(other.post(url, {"certificate": b64(der)})) == "unauthorized"
    stranger = Acme(http)
    assert problem_type(stranger.post(url, {"certificate": b64(der)}, use_jwk=True)) == "unauthorized"
    holder = Acme(http)
    holder.key.private = cert_key
    holder.key.jwk = Key().jwk.__class__(key=cert_key.public_key())
    assert holder.post(url, {"certificate": b64(der), "reason": 1}, use_jwk=True).status_code == 200
    assert problem_type(other.post(url, {"certificate": b64(b"\x30\x03\x02\x01\x01")})) == "malformed"


def test_certificate_and_order_belong_to_their_account(http: TestClient) -> None:
    owner, other = Acme(http), Acme(http)
    owner.register()
    other.register()
    order, order_url, _ = owner.issue("mine.example.test")
    assert problem_type(other.post(order_url, None)) == "unauthorized"
    assert problem_type(other.post(order["certificate"], None)) == "unauthorized"
    assert problem_type(other.post(order["authorizations"][0], None)) == "unauthorized"


def test_key_rollover(http: TestClient) -> None:
    client = Acme(http)
    client.register()
    old, new = client.key, Key()
    url = f"{ACME}/key-change"
    wrong_old = jws(new, url, {"account": client.kid, "oldKey": Key().public_json()}, nonce=None)
    assert problem_type(client.post(url, wrong_old)) == "unauthorized"
    inner = jws(new, url, {"account": client.kid, "oldKey": old.public_json()}, nonce=None)
    with_nonce = jws(new, url, {"account": client.kid, "oldKey": old.public_json()}, nonce=client.nonce())
    assert problem_type(client.post(url, with_nonce)) == "malformed"
    changed = client.post(url, inner)
    assert changed.status_code == 200, changed.text
    assert changed.json()["key"]["x"] == new.public_json()["x"]
    assert problem_type(client.post(client.kid, None)) == "malformed"       # the old key no longer signs
    client.key = new
    assert client.post(client.kid, None).status_code == 200
    taken = Acme(http)
    taken.register()
    conflict = client.post(url, jws(taken.key, url, {"account": client.kid, "oldKey": new.public_json()},
                                    nonce=None))
    assert conflict.status_code == 409 and conflict.headers["Location"] == taken.kid


def test_deactivation(http: TestClient) -> None:
    client = Acme(http)
    client.register()
    assert client.post(client.kid, {"contact": ["mailto:a@example.test"]}).json()["contact"] == \
        ["mailto:a@example.test"]
    assert problem_type(client.post(client.kid, {"contact": ["tel:+1"]})) == "unsupportedContact"
    assert client.post(client.kid, {"status": "deactivated"}).json()["status"] == "deactivated"
    assert problem_type(client.order("late.example.test")) == "unauthorized"
    assert problem_type(client.register()) == "unauthorized"


def test_authorization_deactivation_invalidates_the_order(http: TestClient) -> None:
    client = Acme(http)
    client.register()
    created = client.order("gone.example.test")
    order, url = created.json(), created.headers["Location"]
    assert client.post(order["authorizations"][0], {"status": "deactivated"}).json()["status"] == "deactivated"
    assert client.post(url, None).json()["status"] == "invalid"


def test_finalize_before_ready(http: TestClient) -> None:
    client = Acme(http)
    client.register()
    order = client.order("early.example.test").json()
    response = client.post(order["finalize"], {"csr": b64(csr(["early.example.test"]))})
    assert response.status_code == 403 and problem_type(response) == "orderNotReady"


def test_only_return_existing(http: TestClient) -> None:
    client = Acme(http)
    response = client.post(f"{ACME}/new-account", {"onlyReturnExisting": True}, use_jwk=True)
    assert problem_type(response) == "accountDoesNotExist"


def test_renewal_info_refusals(http: TestClient) -> None:
    assert http.get(f"{ACME}/renewal-info/nonsense").json()["type"].endswith(":malformed")
    unknown = f"{base64.urlsafe_b64encode(b'x' * 20).decode().rstrip('=')}.AQ"
    assert http.get(f"{ACME}/renewal-info/{unknown}").status_code == 404


def test_ip_identifier(http: TestClient) -> None:
    import ipaddress

    from cryptography.hazmat.primitives import hashes

    client = Acme(http)
    client.register()
    created = client.post(f"{ACME}/new-order", {"identifiers": [{"type": "ip", "value": "127.0.0.1"}]})
    order = created.json()
    authz = client.post(order["authorizations"][0], None).json()
    assert {c["type"] for c in authz["challenges"]} == {"http-01", "tls-alpn-01"}   # RFC 8738: no dns-01
    client.authorize(order)
    key = ec.generate_private_key(ec.SECP256R1())
    request = (x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
               .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                              critical=False).sign(key, hashes.SHA256()))
    finalized = client.post(order["finalize"], {"csr": b64(request.public_bytes(serialization.Encoding.DER))})
    assert finalized.status_code == 200, finalized.text
    leaf = x509.load_pem_x509_certificates(client.post(finalized.json()["certificate"], None).content)[0]
    assert leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]


def test_wildcard_order_offers_dns01_only(http: TestClient) -> None:
    client = Acme(http)
    client.register()
    order = client.order("*.wild.example.test").json()
    authz = client.post(order["authorizations"][0], None).json()
    assert authz["wildcard"] is True and authz["identifier"]["value"] == "wild.example.test"
    assert [c["type"] for c in authz["challenges"]] == ["dns-01"]
