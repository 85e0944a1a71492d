"""A minimal ACME client for driving the server in tests: builds flattened JWS by hand (josepy signs), so that
each test can break exactly one thing."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import httpx
import josepy
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from starlette.testclient import TestClient

JOSE = {"Content-Type": "application/jose+json"}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Key:
    """An account key with its JWS algorithm."""

    def __init__(self, kind: str = "ec") -> None:
        if kind == "rsa":
            self.private: Any = rsa.generate_private_key(65537, 2048)
            self.alg = josepy.RS256
            self.jwk: josepy.JWK = josepy.JWKRSA(key=self.private.public_key())
        else:
            self.private = ec.generate_private_key(ec.SECP256R1())
            self.alg = josepy.ES256
            self.jwk = josepy.JWKEC(key=self.private.public_key())

    def public_json(self) -> dict[str, Any]:
        value: dict[str, Any] = self.jwk.to_json()
        return value

    def sign(self, message: bytes) -> bytes:
        signature: bytes = self.alg.sign(self.private, message)
        return signature


def jws(key: Key, url: str, payload: Any, *, nonce: str | None, kid: str | None = None,
        header: dict[str, Any] | None = None, alg: str | None = None, sign_with: Key | None = None) -> dict[str, str]:
    protected: dict[str, Any] = {"alg": alg or key.alg.name, "url": url}
    if nonce is not None:
        protected["nonce"] = nonce
    if kid is not None:
        protected["kid"] = kid
    else:
        protected["jwk"] = key.public_json()
    protected.update(header or {})
    protected_b64 = b64(json.dumps(protected).encode())
    raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    payload_b64 = "" if payload is None else b64(raw)
    signature = (sign_with or key).sign(f"{protected_b64}.{payload_b64}".encode())
    return {"protected": protected_b64, "payload": payload_b64, "signature": b64(signature)}


class Acme:
    """One account's view of the server at ``base`` (the directory's parent)."""

    def __init__(self, http: TestClient, base: str = "http://testserver/acme", key: Key | None = None) -> None:
        self.http = http
        self.base = base
        self.key = key or Key()
        self.kid: str | None = None

    def nonce(self) -> str:
        return self.http.head(f"{self.base}/new-nonce").headers["Replay-Nonce"]

    def post(self, url: str, payload: Any, *, use_jwk: bool = False, key: Key | None = None, **kw: Any
             ) -> httpx.Response:
        body = jws(key or self.key, url, payload, nonce=kw.pop("nonce", None) or self.nonce(),
                   kid=None if use_jwk else self.kid, **kw)
        return self.http.post(url, content=json.dumps(body), headers=JOSE)

    def register(self, **payload: Any) -> httpx.Response:
        response = self.post(f"{self.base}/new-account", {"termsOfServiceAgreed": True, **payload}, use_jwk=True)
        if response.status_code in (200, 201):
            self.kid = response.headers["Location"]
        return response

    def order(self, *names: str) -> httpx.Response:
        return self.post(f"{self.base}/new-order", {"identifiers": [{"type": "dns", "value": n} for n in names]})

    def authorize(self, order: dict[str, Any]) -> None:
        """Answer http-01 on every authorization and wait (bounded) until each is valid."""
        for url in order["authorizations"]:
            authz = self.post(url, None).json()
            challenge = next(c for c in authz["challenges"] if c["type"] == "http-01")
            assert self.post(challenge["url"], {}).status_code == 200
            for _ in range(200):
                status = self.post(url, None).json()["status"]
                if status != "pending":
                    break
                time.sleep(0.01)
            assert status == "valid", self.post(url, None).json()

    def issue(self, *names: str, cert_key: Any = None) -> tuple[dict[str, Any], str, httpx.Response]:
        """A whole order; returns the order, its URL and the certificate download response."""
        created = self.order(*names)
        assert created.status_code == 201, created.text
        order, url = created.json(), created.headers["Location"]
        self.authorize(order)
        finalized = self.post(order["finalize"], {"csr": b64(csr(names, cert_key))})
        assert finalized.status_code == 200, finalized.text
        order = finalized.json()
        assert order["status"] == "valid"
        return order, url, self.post(order["certificate"], None)


def csr(names: tuple[str, ...] | list[str], key: Any = None, *, common_name: str | None = None) -> bytes:
    key = key or ec.generate_private_key(ec.SECP256R1())
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)] if common_name else []))
    builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)
