"""Flattened JWS as ACME uses it (RFC 8555 section 6.2, RFC 7515): parse the request structure strictly, then
verify the signature once the key is known (``jwk`` in the header, or the account that ``kid`` names).

Signatures are checked with josepy (certbot's JOSE library) for RSA and ECDSA; Ed25519 (RFC 8037) with
cryptography directly, since josepy has no EdDSA. Every refusal is an :class:`AcmeProblem` of the right type."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from josepy.jwa import JWASignature
from josepy.jwk import JWK

from tlsward.acme.server.problems import AcmeProblem, malformed

# alg -> (key type, EC curve name or None)
ALGORITHMS: dict[str, tuple[str, str | None]] = {
    "RS256": ("RSA", None), "RS384": ("RSA", None), "RS512": ("RSA", None),
    "PS256": ("RSA", None), "PS384": ("RSA", None), "PS512": ("RSA", None),
    "ES256": ("EC", "P-256"), "ES384": ("EC", "P-384"), "ES512": ("EC", "P-521"),
    "EdDSA": ("OKP", "Ed25519"),
}
MAC_ALGORITHMS = ("HS256", "HS384", "HS512")   # External Account Binding only
MIN_RSA_BITS = 2048
MAX_BODY = 64 * 1024


def b64d(value: Any, what: str = "value") -> bytes:
    """Strict base64url without padding: anything else is malformed, never a crash."""
    if not isinstance(value, str) or any(c in value for c in "+/=") or len(value) % 4 == 1:
        raise malformed(f"{what} is not base64url")
    try:
        return base64.b64decode(value.replace("-", "+").replace("_", "/") + "=" * (-len(value) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise malformed(f"{what} is not base64url") from None


def b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class AccountKey:
    """A public JWK, checked for strength, with its RFC 7638 thumbprint and a verifier."""

    def __init__(self, jwk: Any) -> None:
        if not isinstance(jwk, dict):
            raise malformed("jwk is not a JSON object")
        kty = jwk.get("kty")
        if kty == "OKP":
            if jwk.get("crv") != "Ed25519" or "d" in jwk:
                raise AcmeProblem("badPublicKey", "only public Ed25519 OKP keys are accepted")
            raw = b64d(jwk.get("x"), "jwk x")
            try:
                self.public_key: Any = ed25519.Ed25519PublicKey.from_public_bytes(raw)
            except ValueError:
                raise AcmeProblem("badPublicKey", "not an Ed25519 public key") from None
            self.kty, self.curve = "OKP", "Ed25519"
            self.public: dict[str, str] = {"crv": "Ed25519", "kty": "OKP", "x": jwk["x"]}
            self.thumbprint = b64e(hashlib.sha256(json.dumps(self.public, sort_keys=True, separators=(",", ":"))
                                                  .encode()).digest())
            self._jose: JWK | None = None
            return
        if kty not in ("RSA", "EC") or "d" in jwk or "p" in jwk:
            raise AcmeProblem("badPublicKey", f"unsupported or private key (kty {kty!r})")
        try:
            parsed = JWK.from_json(jwk)
            assert isinstance(parsed, JWK)
        except Exception as exc:   # josepy raises several types on bad members
            raise AcmeProblem("badPublicKey", f"jwk does not parse: {str(exc)[:200]}") from None
        key = parsed.key._wrapped if hasattr(parsed.key, "_wrapped") else parsed.key
        if isinstance(key, rsa.RSAPublicKey):
            if key.key_size < MIN_RSA_BITS:
                raise AcmeProblem("badPublicKey", f"RSA keys need at least {MIN_RSA_BITS} bits")
            self.kty, self.curve = "RSA", ""
        elif isinstance(key, ec.EllipticCurvePublicKey):
            names = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}
            if key.curve.name not in names:
                raise AcmeProblem("badPublicKey", f"unsupported curve {key.curve.name}")
            self.kty, self.curve = "EC", names[key.curve.name]
        else:
            raise AcmeProblem("badPublicKey", "only public RSA, EC and Ed25519 keys are accepted")
        self.public_key = key
        self._jose = parsed
        self.public = {k: v for k, v in parsed.to_json().items() if isinstance(v, str)}
        self.thumbprint = b64e(parsed.thumbprint())

    def spki(self) -> bytes:
        data: bytes = self.public_key.public_bytes(serialization.Encoding.DER,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo)
        return data

    def json(self) -> str:
        return json.dumps(self.public, sort_keys=True, separators=(",", ":"))

    def verify(self, alg: str, message: bytes, signature: bytes) -> bool:
        kind = ALGORITHMS.get(alg)
        if kind is None or kind[0] != self.kty or (kind[1] is not None and kind[1] != self.curve):
            raise AcmeProblem("badSignatureAlgorithm", f"{alg} does not fit a {self.curve or self.kty} key",
                              algorithms=sorted(ALGORITHMS))
        if self.kty == "OKP":
            try:
                self.public_key.verify(signature, message)
            except InvalidSignature:
                return False
            return True
        verifier = JWASignature.from_json(alg)
        return bool(verifier.verify(self.public_key, message, signature))


@dataclass(frozen=True)
class Jws:
    """A structurally valid flattened JWS whose signature is not checked yet."""

    protected: dict[str, Any]
    protected_b64: str
    payload_b64: str
    signature: bytes
    alg: str
    nonce: str | None
    url: str
    jwk: dict[str, Any] | None
    kid: str | None

    @property
    def signing_input(self) -> bytes:
        return f"{self.protected_b64}.{self.payload_b64}".encode("ascii")

    @property
    def is_post_as_get(self) -> bool:
        return self.payload_b64 == ""

    def payload(self) -> dict[str, Any]:
        """The payload as a JSON object (an empty payload is POST-as-GET, not an object)."""
        if self.is_post_as_get:
            raise malformed("this resource needs a payload (this was POST-as-GET)")
        try:
            value = json.loads(b64d(self.payload_b64, "payload"))
        except (UnicodeDecodeError, ValueError):
            raise malformed("payload is not JSON") from None
        if not isinstance(value, dict):
            raise malformed("payload is not a JSON object")
        return value

    def raw_payload(self) -> bytes:
        return b64d(self.payload_b64, "payload")


def parse(body: bytes | str | dict[str, Any], *, inner: bool = False) -> Jws:
    """Check the structure; ``inner`` is the key-change inner JWS (jwk, no nonce) or an EAB JWS (MAC)."""
    if isinstance(body, dict):
        outer = body
    else:
        if len(body) > MAX_BODY:
            raise malformed("request body too large")
        try:
            outer = json.loads(body)
        except (UnicodeDecodeError, ValueError):
            raise malformed("request body is not JSON") from None
    if not isinstance(outer, dict):
        raise malformed("JWS is not a JSON object")
    if "signatures" in outer:
        raise malformed("JWS must use the flattened JSON serialization (one signature)")
    if "header" in outer:
        raise malformed("JWS must not have an unprotected header")
    for member in ("protected", "payload", "signature"):
        if not isinstance(outer.get(member), str):
            raise malformed(f"JWS member {member!r} is missing or not a string")
    protected_b64, payload_b64 = outer["protected"], outer["payload"]
    try:
        protected = json.loads(b64d(protected_b64, "protected header"))
    except (UnicodeDecodeError, ValueError):
        raise malformed("protected header is not JSON") from None
    if not isinstance(protected, dict):
        raise malformed("protected header is not a JSON object")
    if payload_b64:
        b64d(payload_b64, "payload")
    signature = b64d(outer["signature"], "signature")
    alg = protected.get("alg")
    if not isinstance(alg, str):
        raise malformed("protected header has no alg")
    if alg not in ALGORITHMS and not (inner and alg in MAC_ALGORITHMS):
        raise AcmeProblem("badSignatureAlgorithm", f"algorithm {alg!r} is not accepted",
                          algorithms=sorted(ALGORITHMS))
    url = protected.get("url")
    if not isinstance(url, str):
        raise malformed("protected header has no url")
    nonce = protected.get("nonce")
    if inner:
        if nonce is not None:
            raise malformed("an inner JWS must not carry a nonce")
    elif not isinstance(nonce, str) or not nonce:
        raise AcmeProblem("badNonce", "protected header has no nonce")
    jwk, kid = protected.get("jwk"), protected.get("kid")
    if (jwk is None) == (kid is None):
        raise malformed("protected header must have exactly one of jwk and kid")
    if jwk is not None and not isinstance(jwk, dict):
        raise malformed("jwk is not a JSON object")
    if kid is not None and not isinstance(kid, str):
        raise malformed("kid is not a string")
    if "b64" in protected or "crit" in protected:
        raise malformed("b64 and crit are not supported")
    return Jws(protected, protected_b64, payload_b64, signature, alg, nonce, url, jwk, kid)


def verify(jws: Jws, key: AccountKey) -> None:
    if not key.verify(jws.alg, jws.signing_input, jws.signature):
        raise malformed("JWS signature does not verify")
