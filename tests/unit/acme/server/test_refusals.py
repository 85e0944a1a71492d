"""Every malformed or unauthorised request is refused with the right ACME problem type (and a fresh nonce),
never a 500: JWS structure, nonces, signatures, URLs, kids, keys, identifier policy, CSRs, EAB."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from starlette.testclient import TestClient

from tests.unit.acme.server.acme_support import JOSE, Acme, Key, b64, csr, jws
from tests.unit.acme.server.test_flow import ACME, problem_type
from tlsward.acme.server.jws import b64e
from tlsward.model.acme import AcmeEabKey
from tlsward.storage import Store
from tlsward.storage.acme import AcmeStore


def raw_post(http: TestClient, url: str, body: bytes | str, content_type: str = JOSE["Content-Type"]) -> Any:
    return http.post(url, content=body, headers={"Content-Type": content_type})


@pytest.fixture(scope="module")
def account(http: TestClient) -> Acme:
    client = Acme(http)
    assert client.register().status_code == 201
    return client


@pytest.mark.parametrize("body", [b"", b"{", b"[]", b"null", b"\xff\xfe", b'{"protected": 1}',
                                  b'{"protected": "", "payload": "", "signature": ""}',
                                  b'{"protected": "e30", "payload": "", "signature": ""}',
                                  b'{"protected": "!!!", "payload": "", "signature": ""}',
                                  b'{"protected": "WzFd", "payload": "", "signature": ""}',
                                  b'{"signatures": [], "payload": ""}', b"x" * 70000])
def test_malformed_bodies(http: TestClient, body: bytes) -> None:
    response = raw_post(http, f"{ACME}/new-order", body)
    assert response.status_code in (400, 413)
    assert problem_type(response) == "malformed"


def test_wrong_content_type(http: TestClient, account: Acme) -> None:
    body = json.dumps(jws(account.key, f"{ACME}/new-order", {}, nonce=account.nonce(), kid=account.kid))
    response = raw_post(http, f"{ACME}/new-order", body, "application/json")
    assert response.status_code == 415 and problem_type(response) == "malformed"


def test_nonces(http: TestClient, account: Acme) -> None:
    url = account.kid
    assert url is not None
    missing = raw_post(http, url, json.dumps(jws(account.key, url, None, nonce=None, kid=account.kid)))
    assert problem_type(missing) == "badNonce"
    unknown = raw_post(http, url, json.dumps(jws(account.key, url, None, nonce="bm90LWlzc3VlZA", kid=account.kid)))
    assert problem_type(unknown) == "badNonce"
    nonce = account.nonce()
    first = raw_post(http, url, json.dumps(jws(account.key, url, None, nonce=nonce, kid=account.kid)))
    assert first.status_code == 200
    replayed = raw_post(http, url, json.dumps(jws(account.key, url, None, nonce=nonce, kid=account.kid)))
    assert replayed.status_code == 400 and problem_type(replayed) == "badNonce"
    assert replayed.headers["Replay-Nonce"] != nonce


def test_bad_signature(account: Acme) -> None:
    assert problem_type(account.post(f"{ACME}/new-order", {"identifiers": []}, sign_with=Key())) == "malformed"


def test_signature_algorithms(account: Acme) -> None:
    url = f"{ACME}/new-order"
    assert problem_type(account.post(url, {}, alg="none")) == "badSignatureAlgorithm"
    assert problem_type(account.post(url, {}, alg="HS256")) == "badSignatureAlgorithm"
    refused = account.post(url, {}, alg="RS256")     # an EC key with an RSA algorithm
    assert problem_type(refused) == "badSignatureAlgorithm" and "ES256" in refused.json()["algorithms"]


def test_wrong_url(account: Acme) -> None:
    body = jws(account.key, f"{ACME}/new-account", {"identifiers": []}, nonce=account.nonce(), kid=account.kid)
    response = account.http.post(f"{ACME}/new-order", content=json.dumps(body), headers=JOSE)
    assert response.status_code == 403 and problem_type(response) == "unauthorized"


def test_unknown_kid(http: TestClient) -> None:
    stranger = Acme(http)
    stranger.kid = f"{ACME}/acct/nobody"
    assert problem_type(stranger.order("a.example.test")) == "accountDoesNotExist"
    stranger.kid = "https://elsewhere.test/acct/1"
    assert problem_type(stranger.order("a.example.test")) == "accountDoesNotExist"


def test_jwk_and_kid_rules(http: TestClient, account: Acme) -> None:
    assert problem_type(account.post(f"{ACME}/new-order", {}, use_jwk=True)) == "malformed"
    both = account.post(f"{ACME}/new-order", {}, header={"jwk": account.key.public_json()})
    assert problem_type(both) == "malformed"
    assert problem_type(account.post(f"{ACME}/new-account", {})) == "malformed"   # kid on newAccount
    weak = Acme(http)
    weak.key.private = rsa.generate_private_key(65537, 1024)  # noqa: S505 - the weak key to refuse
    weak.key.alg = Key("rsa").alg
    weak.key.jwk = Key("rsa").jwk.__class__(key=weak.key.private.public_key())
    assert problem_type(weak.register()) == "badPublicKey"


def test_post_as_get_and_payload_rules(account: Acme) -> None:
    assert problem_type(account.post(f"{ACME}/new-order", None)) == "malformed"
    assert problem_type(account.post(f"{ACME}/new-order", [1, 2])) == "malformed"
    assert problem_type(account.post(f"{ACME}/new-order", {"identifiers": "x"})) == "malformed"
    assert problem_type(account.post(f"{ACME}/new-order", {"identifiers": [{"type": "email", "value": "a"}]})) \
        == "unsupportedIdentifier"
    assert account.post(f"{ACME}/order/nope", None).status_code == 404


@pytest.mark.parametrize("name", ["outside.test", "example.test.evil.test", "*.other.test", "bad_name.example.test",
                                  "-x.example.test", "192.0.2.1"])
def test_identifier_policy(account: Acme, name: str) -> None:
    response = account.order(name)
    assert response.status_code == 400 and problem_type(response) == "rejectedIdentifier"


def test_identifier_policy_allows(account: Acme) -> None:
    assert account.order("*.example.test").status_code == 201
    assert account.post(f"{ACME}/new-order", {"identifiers": [{"type": "ip", "value": "127.0.0.1"}]}
                        ).status_code == 201
    refused = account.post(f"{ACME}/new-order", {"identifiers": [{"type": "ip", "value": "10.0.0.1"}]})
    assert problem_type(refused) == "rejectedIdentifier"
    assert refused.json()["subproblems"][0]["identifier"]["value"] == "10.0.0.1"


def _ready_order(client: Acme, *names: str) -> dict[str, Any]:
    created = client.order(*names)
    order: dict[str, Any] = created.json()
    client.authorize(order)
    return order


def test_bad_csrs(account: Acme) -> None:
    order = _ready_order(account, "csr.example.test", "csr2.example.test")
    url = order["finalize"]
    cases = {
        "names missing": csr(["csr.example.test"]),
        "names extra": csr(["csr.example.test", "csr2.example.test", "x.example.test"]),
        "cn outside": csr(["csr.example.test", "csr2.example.test"], common_name="other.example.test"),
        "weak rsa": csr(["csr.example.test", "csr2.example.test"],
                        rsa.generate_private_key(65537, 1024)),  # noqa: S505 - the weak key to refuse
        "p521": csr(["csr.example.test", "csr2.example.test"], ec.generate_private_key(ec.SECP521R1())),
        "account key": csr(["csr.example.test", "csr2.example.test"], account.key.private),
        "garbage": b"\x30\x03\x02\x01\x01",
    }
    for what, der in cases.items():
        response = account.post(url, {"csr": b64(der)})
        assert problem_type(response) == "badCSR", what
    assert problem_type(account.post(url, {"csr": "!!"})) == "badCSR"
    good = account.post(url, {"csr": b64(csr(["csr2.example.test", "csr.example.test"],
                                               common_name="csr.example.test"))})
    assert good.status_code == 200 and good.json()["status"] == "valid"
    assert problem_type(account.post(url, {"csr": b64(csr(["csr.example.test", "csr2.example.test"]))})) \
        == "orderNotReady"


def test_garbage_never_500(http: TestClient, account: Acme) -> None:
    urls = [f"{ACME}/new-account", f"{ACME}/new-order", f"{ACME}/revoke-cert", f"{ACME}/key-change",
            f"{account.kid}", f"{ACME}/chall/x-0", f"{ACME}/cert/x"]
    payloads: list[Any] = [{}, {"identifiers": [None]}, {"identifiers": [{"type": "dns", "value": 5}]},
                           {"certificate": 5}, {"certificate": "AAAA"}, {"csr": None}, {"contact": "x"},
                           {"status": 3}, {"protected": "", "payload": "", "signature": ""},
                           {"externalAccountBinding": "x"}, {"externalAccountBinding": {}}, {"onlyReturnExisting": 1}]
    for url in urls:
        for payload in payloads:
            for use_jwk in (False, True):
                response = account.post(url, payload, use_jwk=use_jwk)
                assert response.status_code < 500, (url, payload, response.text)
                if response.status_code >= 400:
                    assert response.headers["Content-Type"] == "application/problem+json"


def _eab(key: Key, kid: str, mac: bytes, url: str = f"{ACME}/new-account") -> dict[str, str]:
    protected = b64e(json.dumps({"alg": "HS256", "kid": kid, "url": url}).encode())
    payload = b64e(json.dumps(key.public_json()).encode())
    signature = hmac.new(mac, f"{protected}.{payload}".encode(), hashlib.sha256).digest()
    return {"protected": protected, "payload": payload, "signature": b64e(signature)}


def test_external_account_binding(eab_http: TestClient, http: TestClient, store: Store) -> None:
    assert eab_http.get(f"{ACME}/directory").json()["meta"]["externalAccountRequired"] is True
    mac = b"k" * 32
    AcmeStore(store).add_eab_key(AcmeEabKey(kid="narrow-kid", hmac_key=mac, label="test"))
    client = Acme(eab_http)
    assert problem_type(client.register()) == "externalAccountRequired"
    assert problem_type(client.register(externalAccountBinding=_eab(client.key, "narrow-kid", b"x" * 32))) \
        == "unauthorized"
    assert problem_type(client.register(externalAccountBinding=_eab(client.key, "nobody", mac))) == "unauthorized"
    assert problem_type(client.register(externalAccountBinding=_eab(Key(), "narrow-kid", mac))) == "unauthorized"
    assert problem_type(client.register(externalAccountBinding=_eab(client.key, "narrow-kid", mac,
                                                                   url=f"{ACME}/new-order"))) == "unauthorized"
    bound = client.register(externalAccountBinding=_eab(client.key, "narrow-kid", mac))
    assert bound.status_code == 201, bound.text
    second = Acme(eab_http)
    assert problem_type(second.register(externalAccountBinding=_eab(second.key, "narrow-kid", mac))) \
        == "unauthorized"
    # the account bound with "narrow-kid" gets that key's policy: one name only
    assert problem_type(client.order("www.example.test")) == "rejectedIdentifier"
    assert client.order("only.example.test").status_code == 201


def test_unknown_routes_and_methods_are_problems(http: TestClient) -> None:
    for response in (http.get(f"{ACME}/nowhere"), http.get(f"{ACME}/new-order"), http.put(f"{ACME}/directory")):
        assert response.status_code in (404, 405)
        assert problem_type(response) == "malformed"


def test_chunked_body_is_capped(http: TestClient) -> None:
    def chunks() -> Any:
        for _ in range(100):
            yield b"x" * 1024

    response = http.post(f"{ACME}/new-order", content=chunks(), headers=JOSE)
    assert response.status_code == 413 and problem_type(response) == "malformed"
