"""The ACME server (RFC 8555, RFC 8737, RFC 8738, RFC 9773) as a Starlette ASGI app.

Per request: the JWS is checked in memory (structure, URL, signature, nonce), then one short state transaction
runs in a worker thread. Validation runs as a background task and the client polls; issuance runs in a worker
thread, synchronously within finalize, so the order is valid when the response goes out. The CA and the state
are handed in (:class:`Issuer`, :class:`~tlsward.acme.server.state.AcmeState`): this package imports neither."""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Any, Protocol, TypeVar

import anyio.to_thread
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from starlette.applications import Starlette
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tlsward.acme.server import ari
from tlsward.acme.server.jws import MAX_BODY, AccountKey, Jws, b64d, parse, verify
from tlsward.acme.server.nonces import NoncePool, random_token
from tlsward.acme.server.policy import IdentifierPolicy, normalize
from tlsward.acme.server.problems import AcmeProblem, malformed, unauthorized
from tlsward.acme.server.state import AcmeState
from tlsward.acme.server.validation import ValidationSettings, Validator
from tlsward.model.acme import (
    DEACTIVATED,
    INVALID,
    PENDING,
    PROCESSING,
    READY,
    VALID,
    AcmeAccount,
    AcmeAuthorization,
    AcmeCertificate,
    AcmeChallenge,
    AcmeIdentifier,
    AcmeOrder,
)

log = logging.getLogger("tlsward.acme.server")
T = TypeVar("T")

JOSE = "application/jose+json"
PEM_CHAIN = "application/pem-certificate-chain"
ORDER_LIFETIME = dt.timedelta(days=7)
REVOCATION_REASONS = {0: x509.ReasonFlags.unspecified, 1: x509.ReasonFlags.key_compromise,
                      3: x509.ReasonFlags.affiliation_changed, 4: x509.ReasonFlags.superseded,
                      5: x509.ReasonFlags.cessation_of_operation, 9: x509.ReasonFlags.privilege_withdrawn}
MIN_CSR_RSA_BITS = 2048
ACCOUNT_CACHE_S = 2.0
CSR_CURVES = ("secp256r1", "secp384r1")


class IssuedCertificateLike(Protocol):
    @property
    def certificate(self) -> x509.Certificate: ...
    def fullchain_pem(self) -> str | bytes: ...


class Issuer(Protocol):
    """What the server needs from a CA (``tlsward.ca.authority.CertificateAuthority`` fits)."""

    def issue(self, *, names: Sequence[str], csr: x509.CertificateSigningRequest | None = None,
              requester: str = "cli", replaces: int | None = None) -> IssuedCertificateLike:
        """Sign and record; ``replaces``: the serial of the certificate this order replaces (RFC 9773), so the
        inventory links the renewal to what it renews."""
        ...

    def revoke(self, serial: int, *, reason: x509.ReasonFlags = x509.ReasonFlags.unspecified) -> None: ...

    def is_revoked(self, serial: int) -> bool:
        """Revoked by the CA by any path (not only through ACME): renewal information must say so at once."""
        ...


class AcmeServer:
    """The server's parts and its request handlers; :meth:`app` builds the Starlette app."""

    def __init__(self, issuer: Issuer, state: AcmeState, policy: IdentifierPolicy, *, base_url: str | None = None,
                 validation: ValidationSettings | None = None, require_eab: bool = False,
                 clock: Callable[[], dt.datetime] | None = None, state_in_thread: bool = False,
                 validation_wait_s: float = 0.5) -> None:
        self.issuer = issuer
        self.validation_wait_s = validation_wait_s
        self.state_in_thread = state_in_thread
        self.state = state
        self.policy = policy
        self.base_url = base_url.rstrip("/") if base_url else None
        self.validator = Validator(validation or ValidationSettings())
        self.require_eab = require_eab
        self.nonces = NoncePool()
        self.clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self.tasks: set[asyncio.Task[AcmeChallenge]] = set()
        self._keys: dict[str, AccountKey] = {}
        self._accounts: dict[str, tuple[AcmeAccount, float]] = {}

    # -- plumbing -------------------------------------------------------------------------------------------

    def base(self, request: Request) -> str:
        if self.base_url:
            return self.base_url
        root = request.scope.get("root_path", "")
        return f"{request.url.scheme}://{request.url.netloc}{root}"

    def _relative(self, request: Request) -> str:
        root = request.scope.get("root_path", "")
        path = request.url.path
        return path[len(root):] if root and path.startswith(root) else path

    def _headers(self, request: Request, extra: dict[str, str] | None = None) -> dict[str, str]:
        headers = {"Replay-Nonce": self.nonces.new(), "Cache-Control": "no-store",
                   "Link": f'<{self.base(request)}/directory>;rel="index"'}
        if extra:
            headers.update(extra)
        return headers

    def _json(self, request: Request, body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        return JSONResponse(body, status_code=status, headers=self._headers(request, headers))

    def problem(self, request: Request, problem: AcmeProblem) -> Response:
        return Response(problem.json(), status_code=problem.status, media_type="application/problem+json",
                        headers=self._headers(request, problem.headers))

    async def db(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """A state call: one short transaction, run inline. Handing it to a worker thread costs more than the
        transaction itself (a thread switch and a wake-up of the event loop per call); the server's throughput
        is bounded by the event loop, not by waiting on the database."""
        if self.state_in_thread:
            return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs))
        return fn(*args, **kwargs)

    async def ca(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """CA work (signing may wait on an HSM) off the event loop."""
        return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs))

    async def _account(self, account_id: str) -> AcmeAccount | None:
        """An account by id, cached for ``ACCOUNT_CACHE_S``: every authenticated request needs it, and it
        changes only through this server (which refreshes the cache) or, with several server processes on
        one database, through another one (seen here within that time)."""
        now = time.monotonic()
        cached = self._accounts.get(account_id)
        if cached is not None and now - cached[1] < ACCOUNT_CACHE_S:
            return cached[0]
        found = await self.db(self.state.account, account_id)
        if found is not None:
            if len(self._accounts) > 10_000:
                self._accounts.clear()
            self._accounts[account_id] = (found, now)
        return found

    def _remember(self, account: AcmeAccount | None) -> AcmeAccount | None:
        if account is not None:
            self._accounts[account.id] = (account, time.monotonic())
        return account

    def _key(self, jwk_json: str) -> AccountKey:
        key = self._keys.get(jwk_json)
        if key is None:
            key = AccountKey(json.loads(jwk_json))
            if len(self._keys) > 10_000:
                self._keys.clear()
            self._keys[jwk_json] = key
        return key

    async def authenticate(self, request: Request, *, jwk: bool = False, kid: bool = True
                           ) -> tuple[Jws, AccountKey, AcmeAccount | None]:
        """Check a POST's JWS: content type, structure, URL, key, signature and nonce, in that order."""
        if request.headers.get("content-type", "").split(";")[0].strip().lower() != JOSE:
            raise malformed(f"Content-Type must be {JOSE}", status=415)
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY):
            raise malformed("request body too large", status=413)
        message = parse(await self._body(request))
        expected = self.base(request) + self._relative(request)
        if message.url != expected:
            raise unauthorized(f"the JWS url {message.url[:200]!r} is not the request URL {expected!r}")
        account: AcmeAccount | None = None
        if message.jwk is not None:
            if not jwk:
                raise malformed("this request must be signed with the account's kid, not a jwk")
            key = AccountKey(message.jwk)
        else:
            if not kid:
                raise malformed("this request must carry a jwk, not a kid")
            assert message.kid is not None
            prefix = self.base(request) + "/acct/"
            account_id = message.kid[len(prefix):] if message.kid.startswith(prefix) else ""
            found = await self._account(account_id) if account_id and "/" not in account_id else None
            if found is None:
                raise AcmeProblem("accountDoesNotExist", f"no account {message.kid[:200]!r}")
            if found.status != VALID:
                raise unauthorized(f"account {found.id} is {found.status}")
            account = found
            key = self._key(found.jwk)
        verify(message, key)
        assert message.nonce is not None
        if not self.nonces.consume(message.nonce):
            raise AcmeProblem("badNonce", "the nonce is unknown or was used already")
        return message, key, account

    @staticmethod
    async def _body(request: Request) -> bytes:
        """The body, refused past MAX_BODY as it streams in (a chunked body has no Content-Length to check)."""
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_BODY:
                raise malformed("request body too large", status=413)
            chunks.append(chunk)
        return b"".join(chunks)

    def _account_url(self, request: Request, account_id: str) -> str:
        return f"{self.base(request)}/acct/{account_id}"

    # -- resource documents --------------------------------------------------------------------------------

    def account_doc(self, request: Request, account: AcmeAccount) -> dict[str, Any]:
        return {"status": account.status, "contact": list(account.contact), "key": json.loads(account.jwk),
                "orders": f"{self._account_url(request, account.id)}/orders",
                "createdAt": ari.rfc3339(account.created_at)}

    def order_doc(self, request: Request, order: AcmeOrder) -> dict[str, Any]:
        base = self.base(request)
        doc: dict[str, Any] = {
            "status": self._order_status(order), "expires": ari.rfc3339(order.expires),
            "identifiers": [{"type": i.type, "value": i.value} for i in order.identifiers],
            "authorizations": [f"{base}/authz/{a}" for a in order.authz_ids],
            "finalize": f"{base}/order/{order.id}/finalize"}
        if order.certificate_id:
            doc["certificate"] = f"{base}/cert/{order.certificate_id}"
        if order.error:
            doc["error"] = json.loads(order.error)
        if order.replaces:
            doc["replaces"] = order.replaces
        return doc

    def _order_status(self, order: AcmeOrder) -> str:
        if order.status in (PENDING, READY) and order.expires <= self.clock():
            return INVALID
        return order.status

    def challenge_doc(self, request: Request, challenge: AcmeChallenge) -> dict[str, Any]:
        doc: dict[str, Any] = {"type": challenge.type, "url": f"{self.base(request)}/chall/{challenge.id}",
                               "status": challenge.status, "token": challenge.token}
        if challenge.validated_at is not None:
            doc["validated"] = ari.rfc3339(challenge.validated_at)
        if challenge.error:
            doc["error"] = json.loads(challenge.error)
        return doc

    def authz_doc(self, request: Request, authz: AcmeAuthorization) -> dict[str, Any]:
        value = authz.identifier.value.removeprefix("*.")
        status = authz.status
        if status in (PENDING, VALID) and authz.expires <= self.clock():
            status = "expired"
        doc: dict[str, Any] = {"identifier": {"type": authz.identifier.type, "value": value}, "status": status,
                               "expires": ari.rfc3339(authz.expires),
                               "challenges": [self.challenge_doc(request, c) for c in authz.challenges]}
        if authz.wildcard:
            doc["wildcard"] = True
        return doc

    # -- endpoints -----------------------------------------------------------------------------------------

    async def directory(self, request: Request) -> Response:
        base = self.base(request)
        return JSONResponse({
            "newNonce": f"{base}/new-nonce", "newAccount": f"{base}/new-account", "newOrder": f"{base}/new-order",
            "revokeCert": f"{base}/revoke-cert", "keyChange": f"{base}/key-change",
            "renewalInfo": f"{base}/renewal-info",
            "meta": {"externalAccountRequired": self.require_eab},
        }, headers={**self._headers(request), "Cache-Control": "public, max-age=0, no-cache"})

    async def new_nonce(self, request: Request) -> Response:
        status = 200 if request.method == "HEAD" else 204
        return Response(status_code=status, headers=self._headers(request))

    async def new_account(self, request: Request) -> Response:
        message, key, _ = await self.authenticate(request, jwk=True, kid=False)
        payload = message.payload()
        existing = await self.db(self.state.account_by_thumbprint, key.thumbprint)
        if existing is not None:
            if existing.status != VALID:
                raise unauthorized(f"account {existing.id} is {existing.status}")
            return self._json(request, self.account_doc(request, existing), 200,
                              {"Location": self._account_url(request, existing.id)})
        if payload.get("onlyReturnExisting") is True:
            raise AcmeProblem("accountDoesNotExist", "no account holds this key")
        contact = _contacts(payload.get("contact", []))
        account = AcmeAccount(id=_new_id(), jwk=key.json(), thumbprint=key.thumbprint, contact=contact,
                              created_at=self.clock())
        binding = payload.get("externalAccountBinding")
        if binding is None:
            if self.require_eab:
                raise AcmeProblem("externalAccountRequired", "this server requires an External Account Binding")
            account, created = await self.db(self.state.create_account, account)
        else:
            kid = await self._check_eab(request, binding, key)
            bound = await self.db(self.state.create_account_with_eab, replace(account, eab_kid=kid), kid)
            if bound is None:
                raise unauthorized(f"the External Account Binding key {kid!r} is bound to another account")
            account, created = bound
        return self._json(request, self.account_doc(request, account), 201 if created else 200,
                          {"Location": self._account_url(request, account.id)})

    async def _check_eab(self, request: Request, binding: Any, key: AccountKey) -> str:
        if not isinstance(binding, dict):
            raise malformed("externalAccountBinding is not a JWS object")
        eab = parse(binding, inner=True)
        if eab.alg not in ("HS256", "HS384", "HS512"):
            raise AcmeProblem("badSignatureAlgorithm", "External Account Binding must be signed with HMAC",
                              algorithms=["HS256", "HS384", "HS512"])
        if eab.kid is None:
            raise malformed("External Account Binding needs a kid")
        if eab.url != f"{self.base(request)}/new-account":
            raise unauthorized("External Account Binding url must be the newAccount URL")
        try:
            bound_key = AccountKey(json.loads(eab.raw_payload()))
        except ValueError:
            raise malformed("External Account Binding payload is not a JWK") from None
        if bound_key.thumbprint != key.thumbprint:
            raise unauthorized("External Account Binding names another key")
        stored = await self.db(self.state.eab_key, eab.kid)
        if stored is None:
            raise unauthorized(f"unknown External Account Binding key {eab.kid[:100]!r}")
        digest = {"HS256": "sha256", "HS384": "sha384", "HS512": "sha512"}[eab.alg]
        expected = hmac.new(stored.hmac_key, eab.signing_input, digest).digest()
        if not hmac.compare_digest(expected, eab.signature):
            raise unauthorized("External Account Binding signature does not verify")
        if stored.account_id is not None:
            raise unauthorized(f"the External Account Binding key {eab.kid!r} is bound to another account")
        return eab.kid

    async def account(self, request: Request) -> Response:
        message, _, account = await self.authenticate(request)
        assert account is not None
        if account.id != request.path_params["account_id"]:
            raise unauthorized("the kid is not this account")
        if message.is_post_as_get:
            return self._json(request, self.account_doc(request, account))
        payload = message.payload()
        status = payload.get("status")
        if status is not None and status != DEACTIVATED:
            raise malformed("an account can only be deactivated")
        contact = _contacts(payload["contact"]) if "contact" in payload else None
        updated = self._remember(await self.db(self.state.update_account, account.id, status=status,
                                               contact=contact))
        assert updated is not None
        return self._json(request, self.account_doc(request, updated))

    async def account_orders(self, request: Request) -> Response:
        _, _, account = await self.authenticate(request)
        assert account is not None
        if account.id != request.path_params["account_id"]:
            raise unauthorized("the kid is not this account")
        ids = await self.db(self.state.account_orders, account.id)
        return self._json(request, {"orders": [f"{self.base(request)}/order/{i}" for i in ids]})

    async def key_change(self, request: Request) -> Response:
        message, _, account = await self.authenticate(request)
        assert account is not None and message.kid is not None
        inner = parse(message.payload(), inner=True)
        if inner.alg not in _SIGNING_ALGORITHMS:
            raise AcmeProblem("badSignatureAlgorithm", f"{inner.alg} is not accepted",
                              algorithms=sorted(_SIGNING_ALGORITHMS))
        if inner.jwk is None:
            raise malformed("the inner JWS must carry the new key as jwk")
        if inner.url != message.url:
            raise malformed("the inner JWS url must be the keyChange URL")
        new_key = AccountKey(inner.jwk)
        verify(inner, new_key)
        body = inner.payload()
        if body.get("account") != message.kid:
            raise malformed("the inner payload's account is not the signing account")
        old = body.get("oldKey")
        if not isinstance(old, dict) or AccountKey(old).thumbprint != account.thumbprint:
            raise unauthorized("oldKey is not the account's current key")
        if new_key.thumbprint == account.thumbprint:
            raise malformed("the new key is the current key")
        changed = self._remember(await self.db(self.state.change_account_key, account.id, new_key.json(),
                                               new_key.thumbprint))
        if changed is None:
            holder = await self.db(self.state.account_by_thumbprint, new_key.thumbprint)
            location = {"Location": self._account_url(request, holder.id)} if holder else {}
            raise AcmeProblem("malformed", "another account already uses the new key", status=409, headers=location)
        return self._json(request, self.account_doc(request, changed))

    async def new_order(self, request: Request) -> Response:
        message, _, account = await self.authenticate(request)
        assert account is not None
        payload = message.payload()
        raw = payload.get("identifiers")
        if not isinstance(raw, list) or not raw:
            raise malformed("identifiers must be a non-empty list")
        identifiers = tuple(dict.fromkeys(normalize(i) for i in raw))
        if "notBefore" in payload or "notAfter" in payload:
            raise malformed("notBefore and notAfter are not supported: the CA sets the validity")
        self.policy.check(identifiers, account.id, account.eab_kid)
        replaces = payload.get("replaces")
        if replaces is not None:
            await self._check_replaces(replaces, account, identifiers)
        now = self.clock()
        order_id = _new_id()
        authorizations = [_authorization(account.id, order_id, identifier, now + ORDER_LIFETIME)
                          for identifier in identifiers]
        order = AcmeOrder(id=order_id, account_id=account.id, identifiers=identifiers,
                          authz_ids=tuple(a.id for a in authorizations), expires=now + ORDER_LIFETIME,
                          replaces=replaces, created_at=now)
        await self.db(self.state.create_order, order, authorizations)
        return self._json(request, self.order_doc(request, order), 201,
                          {"Location": f"{self.base(request)}/order/{order.id}"})

    async def _check_replaces(self, replaces: Any, account: AcmeAccount,
                              identifiers: Sequence[AcmeIdentifier]) -> None:
        if not isinstance(replaces, str):
            raise malformed("replaces must be a certificate identifier string")
        cert_id = ari.parse_cert_id(replaces)
        certificate = await self.db(self.state.certificate_by_serial, cert_id.serial)
        if certificate is None or certificate.aki != cert_id.aki:
            raise malformed(f"replaces names no certificate this server issued: {replaces[:100]}")
        if certificate.account_id != account.id:
            raise unauthorized("replaces names another account's certificate")
        if not set(certificate.identifiers) & set(identifiers):
            raise malformed("the replaced certificate shares no identifier with this order")
        if await self.db(self.state.order_replacing, replaces) is not None:
            raise AcmeProblem("alreadyReplaced", f"{replaces} is already being replaced")

    async def _owned(self, request: Request, lookup: Callable[[str], T | None], key: str, what: str
                     ) -> tuple[Jws, AcmeAccount, T]:
        message, _, account = await self.authenticate(request)
        assert account is not None
        found = await self.db(lookup, request.path_params[key])
        if found is None:
            raise malformed(f"no such {what}", status=404)
        if getattr(found, "account_id", None) != account.id:
            raise unauthorized(f"this {what} belongs to another account")
        return message, account, found

    async def order(self, request: Request) -> Response:
        message, _, order = await self._owned(request, self.state.order, "order_id", "order")
        if not message.is_post_as_get:
            raise malformed("an order is read with POST-as-GET")
        return self._json(request, self.order_doc(request, order))

    async def authz(self, request: Request) -> Response:
        message, _, authz = await self._owned(request, self.state.authorization, "authz_id", "authorization")
        if not message.is_post_as_get:
            if message.payload().get("status") != DEACTIVATED:
                raise malformed("an authorization can only be deactivated")
            deactivated = await self.db(self.state.deactivate_authorization, authz.id)
            assert deactivated is not None
            authz = deactivated
        return self._json(request, self.authz_doc(request, authz))

    async def challenge(self, request: Request) -> Response:
        message, account, authz = await self._owned(request, self._authz_of_challenge, "challenge_id", "challenge")
        challenge_id = request.path_params["challenge_id"]
        up = {"Link": f'<{self.base(request)}/authz/{authz.id}>;rel="up"'}
        if not message.is_post_as_get:
            message.payload()   # any JSON object (RFC 8555: "{}") asks the server to validate
            started = await self.db(self.state.start_challenge, challenge_id)
            if started is not None:
                authz, now_started = started
                if now_started:
                    chosen = next(c for c in authz.challenges if c.id == challenge_id)
                    task = asyncio.get_running_loop().create_task(self._validate(authz, chosen, account.thumbprint))
                    self.tasks.add(task)
                    task.add_done_callback(self.tasks.discard)
                    # The validation stays a background task; a fast one is answered here, which spares the client
                    # its first polls (and the server their work). A slow one goes on and the client polls.
                    done, _ = await asyncio.wait({task}, timeout=self.validation_wait_s)
                    if done and not task.cancelled() and task.exception() is None:
                        finished = task.result()
                        authz = replace(authz, challenges=tuple(finished if c.id == challenge_id else c
                                                                for c in authz.challenges))
        challenge = next(c for c in authz.challenges if c.id == challenge_id)
        headers = self._headers(request)
        headers["Link"] = f'{headers["Link"]}, {up["Link"]}'
        return JSONResponse(self.challenge_doc(request, challenge), headers=headers)

    def _authz_of_challenge(self, challenge_id: str) -> AcmeAuthorization | None:
        authz_id = challenge_id.rsplit("-", 1)[0]
        authz = self.state.authorization(authz_id)
        if authz is None or not any(c.id == challenge_id for c in authz.challenges):
            return None
        return authz

    async def _validate(self, authz: AcmeAuthorization, challenge: AcmeChallenge, thumbprint: str) -> AcmeChallenge:
        """Validate and record the outcome; returns the challenge as recorded."""
        error: str | None = None
        try:
            await self.validator.validate(challenge.type, authz.identifier, challenge.token, thumbprint)
        except AcmeProblem as problem:
            error = json.dumps({"type": problem.document()["type"], "detail": problem.detail,
                                "status": problem.status})
        except Exception as exc:   # a validation bug must still end the challenge
            log.exception("validating %s", challenge.id)
            error = json.dumps({"type": "urn:ietf:params:acme:error:serverInternal",
                                "detail": f"validation failed: {type(exc).__name__}", "status": 500})
        now = self.clock()
        try:
            await self.db(self.state.finish_challenge, challenge.id, valid=error is None, error=error, now=now)
        except Exception:
            log.exception("recording the outcome of %s", challenge.id)
            return challenge
        if error is None:
            return replace(challenge, status=VALID, validated_at=now, error=None)
        return replace(challenge, status=INVALID, error=error)

    async def finalize(self, request: Request) -> Response:
        message, account, order = await self._owned(request, self.state.order, "order_id", "order")
        status = self._order_status(order)
        if status != READY:
            raise AcmeProblem("orderNotReady", f"the order is {status}, not ready")
        csr = self._check_csr(message.payload(), order, account)
        if not await self.db(self.state.update_order, order.id, status=PROCESSING, expect=READY):
            raise AcmeProblem("orderNotReady", "the order is already being finalized")
        names = [i.value for i in order.identifiers]
        try:
            replaces = int(ari.parse_cert_id(order.replaces).serial, 16) if order.replaces else None
            issued = await self.ca(self.issuer.issue, names=names, csr=csr, requester=f"acme:{account.id}",
                                   replaces=replaces)
        except Exception as exc:
            log.exception("issuing for order %s", order.id)
            problem = AcmeProblem("serverInternal", f"the CA refused: {type(exc).__name__}: {str(exc)[:200]}")
            await self.db(self.state.update_order, order.id, status=INVALID, error=problem.json())
            raise problem from None
        leaf = issued.certificate
        pem = issued.fullchain_pem()
        cert_id = ari.cert_id_of(leaf)
        record = AcmeCertificate(id=_new_id(), account_id=account.id, order_id=order.id, serial=cert_id.serial,
                                 aki=cert_id.aki, fullchain_pem=pem.decode() if isinstance(pem, bytes) else pem,
                                 not_before=leaf.not_valid_before_utc, not_after=leaf.not_valid_after_utc,
                                 identifiers=order.identifiers)
        await self.db(self.state.store_certificate, record)
        done = replace(order, status=VALID, certificate_id=record.id)
        return self._json(request, self.order_doc(request, done), 200,
                          {"Location": f"{self.base(request)}/order/{order.id}"})

    def _check_csr(self, payload: dict[str, Any], order: AcmeOrder,
                   account: AcmeAccount) -> x509.CertificateSigningRequest:
        try:
            csr = x509.load_der_x509_csr(b64d(payload.get("csr"), "csr"))
            signature_ok = csr.is_signature_valid
            key = csr.public_key()
        except (ValueError, TypeError, x509.UnsupportedGeneralNameType) as exc:
            raise AcmeProblem("badCSR", f"the CSR does not parse: {str(exc)[:200]}") from None
        except AcmeProblem:
            raise AcmeProblem("badCSR", "csr is not base64url DER") from None
        if not signature_ok:
            raise AcmeProblem("badCSR", "the CSR's signature does not verify")
        if isinstance(key, rsa.RSAPublicKey):
            if key.key_size < MIN_CSR_RSA_BITS:
                raise AcmeProblem("badCSR", f"RSA keys need at least {MIN_CSR_RSA_BITS} bits, not {key.key_size}")
        elif isinstance(key, ec.EllipticCurvePublicKey):
            if key.curve.name not in CSR_CURVES:
                raise AcmeProblem("badCSR", f"the curve {key.curve.name} is not accepted (P-256, P-384)")
        elif not isinstance(key, ed25519.Ed25519PublicKey):
            raise AcmeProblem("badCSR", f"the key type {type(key).__name__} is not accepted")
        spki = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        if spki == self._key(account.jwk).spki():
            raise AcmeProblem("badCSR", "the certificate key must not be the account key")
        try:
            sans = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            sans = x509.SubjectAlternativeName([])
        except ValueError as exc:
            raise AcmeProblem("badCSR", f"the CSR's extensions do not parse: {str(exc)[:200]}") from None
        names: set[AcmeIdentifier] = set()
        for general in sans:
            if isinstance(general, x509.DNSName):
                names.add(AcmeIdentifier("dns", general.value.lower()))
            elif isinstance(general, x509.IPAddress):
                names.add(AcmeIdentifier("ip", str(general.value)))
            else:
                raise AcmeProblem("badCSR", f"the CSR names {type(general).__name__}, which ACME cannot validate")
        wanted = set(order.identifiers)
        for cn in csr.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME):
            value = str(cn.value).lower()
            if not any(i.value == value for i in wanted):
                raise AcmeProblem("badCSR", f"the CSR's common name {value[:100]!r} is not in the order")
            names.add(next(i for i in wanted if i.value == value))
        if names != wanted:
            missing = sorted(i.value for i in wanted - names)
            extra = sorted(i.value for i in names - wanted)
            raise AcmeProblem("badCSR", f"the CSR's names differ from the order's (missing {missing}, extra {extra})")
        return csr

    async def certificate(self, request: Request) -> Response:
        message, _, certificate = await self._owned(request, self.state.certificate, "cert_id", "certificate")
        if not message.is_post_as_get:
            raise malformed("a certificate is downloaded with POST-as-GET")
        return Response(certificate.fullchain_pem, media_type=PEM_CHAIN, headers=self._headers(request))

    async def revoke(self, request: Request) -> Response:
        message, key, account = await self.authenticate(request, jwk=True, kid=True)
        payload = message.payload()
        try:
            presented = x509.load_der_x509_certificate(b64d(payload.get("certificate"), "certificate"))
        except ValueError:
            raise malformed("certificate is not a DER certificate") from None
        reason = payload.get("reason", 0)
        if type(reason) is not int or reason not in REVOCATION_REASONS:
            raise AcmeProblem("badRevocationReason", f"reason {reason!r} is not accepted "
                              f"(allowed: {sorted(REVOCATION_REASONS)})")
        cert_id = ari.cert_id_of(presented)
        record = await self.db(self.state.certificate_by_serial, cert_id.serial)
        if record is None or record.aki != cert_id.aki or not _same_leaf(record.fullchain_pem, presented):
            raise malformed("this server did not issue that certificate", status=404)
        if account is not None:
            if account.id != record.account_id:
                raise unauthorized("the certificate belongs to another account")
        else:
            public = presented.public_key().public_bytes(serialization.Encoding.DER,
                                                         serialization.PublicFormat.SubjectPublicKeyInfo)
            if public != key.spki():
                raise unauthorized("the JWS key is neither the owning account's key nor the certificate's key")
        if record.revoked_at is not None:
            raise AcmeProblem("alreadyRevoked", "the certificate is already revoked")
        await self.ca(self.issuer.revoke, presented.serial_number, reason=REVOCATION_REASONS[reason])
        if not await self.db(self.state.revoke_certificate, record.id, reason=reason, now=self.clock()):
            raise AcmeProblem("alreadyRevoked", "the certificate is already revoked")
        return Response(status_code=200, headers=self._headers(request))

    async def renewal_info(self, request: Request) -> Response:
        cert_id = ari.parse_cert_id(request.path_params["cert_id"])
        record = await self.db(self.state.certificate_by_serial, cert_id.serial)
        if record is None or record.aki != cert_id.aki:
            raise malformed("no certificate with that identifier", status=404)
        revoked = record.revoked_at is not None or await self.ca(self.issuer.is_revoked, int(cert_id.serial, 16))
        doc = ari.renewal_info(record.not_before, record.not_after, revoked=revoked, now=self.clock())
        return JSONResponse(doc, headers={**self._headers(request), "Cache-Control": "public, max-age=21600",
                                          "Retry-After": str(ari.RETRY_AFTER_S)})

    # -- the app -------------------------------------------------------------------------------------------

    def _wrap(self, handler: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
        """Every refusal becomes a problem document; an unexpected error a serverInternal one, never a bare 500."""

        @functools.wraps(handler)
        async def endpoint(request: Request) -> Response:
            try:
                return await handler(request)
            except AcmeProblem as problem:
                return self.problem(request, problem)
            except Exception:
                log.exception("ACME %s %s", request.method, request.url.path)
                return self.problem(request, AcmeProblem("serverInternal", "internal error", status=500))

        return endpoint

    async def aclose(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        await self.validator.close()

    def app(self) -> Starlette:
        w = self._wrap
        routes = [
            Route("/directory", w(self.directory), methods=["GET"]),
            Route("/new-nonce", w(self.new_nonce), methods=["GET", "HEAD"]),
            Route("/new-account", w(self.new_account), methods=["POST"]),
            Route("/new-order", w(self.new_order), methods=["POST"]),
            Route("/key-change", w(self.key_change), methods=["POST"]),
            Route("/revoke-cert", w(self.revoke), methods=["POST"]),
            Route("/acct/{account_id}", w(self.account), methods=["POST"]),
            Route("/acct/{account_id}/orders", w(self.account_orders), methods=["POST"]),
            Route("/order/{order_id}", w(self.order), methods=["POST"]),
            Route("/order/{order_id}/finalize", w(self.finalize), methods=["POST"]),
            Route("/authz/{authz_id}", w(self.authz), methods=["POST"]),
            Route("/chall/{challenge_id}", w(self.challenge), methods=["POST"]),
            Route("/cert/{cert_id}", w(self.certificate), methods=["POST"]),
            Route("/renewal-info/{cert_id}", w(self.renewal_info), methods=["GET"]),
        ]
        import contextlib
        from collections.abc import AsyncIterator

        @contextlib.asynccontextmanager
        async def lifespan(_: Starlette) -> AsyncIterator[None]:
            yield
            await self.aclose()

        async def not_routed(request: Request, exc: Exception) -> Response:
            status = getattr(exc, "status_code", 404)
            return self.problem(request, malformed(f"{request.method} {self._relative(request)}: "
                                                   f"{'no such resource' if status == 404 else 'not allowed here'}",
                                                   status=status))

        app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={StarletteHTTPException: not_routed})
        app.state.acme = self
        return app


_SIGNING_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512",
                                 "EdDSA"})


def create_acme_app(issuer: Issuer, state: AcmeState, policy: IdentifierPolicy | None = None, *,
                    base_url: str | None = None, validation: ValidationSettings | None = None,
                    require_eab: bool = False, clock: Callable[[], dt.datetime] | None = None) -> Starlette:
    """The ACME server over a CA and a state; serve it alone or mount it (``/acme`` in ``tlsward serve``)."""
    return AcmeServer(issuer, state, policy or IdentifierPolicy(), base_url=base_url, validation=validation,
                      require_eab=require_eab, clock=clock).app()


def _new_id() -> str:
    return random_token(12).replace("-", "x")


def _authorization(account_id: str, order_id: str, identifier: AcmeIdentifier,
                   expires: dt.datetime) -> AcmeAuthorization:
    authz_id = _new_id()
    wildcard = identifier.value.startswith("*.")
    kinds: tuple[str, ...]
    if wildcard:
        kinds = ("dns-01",)
    elif identifier.type == "ip":
        kinds = ("http-01", "tls-alpn-01")
    else:
        kinds = ("http-01", "dns-01", "tls-alpn-01")
    challenges = tuple(AcmeChallenge(id=f"{authz_id}-{n}", authz_id=authz_id, type=kind,
                                     token=random_token(32)) for n, kind in enumerate(kinds))
    return AcmeAuthorization(id=authz_id, account_id=account_id, order_id=order_id, identifier=identifier,
                             expires=expires, wildcard=wildcard, challenges=challenges)


def _contacts(raw: Any) -> tuple[str, ...]:
    if not isinstance(raw, list) or not all(isinstance(c, str) for c in raw):
        raise malformed("contact must be a list of URLs")
    for contact in raw:
        if not contact.startswith("mailto:"):
            raise AcmeProblem("unsupportedContact", f"only mailto: contacts are supported, not {contact[:100]!r}")
        if "@" not in contact or "," in contact or "?" in contact or len(contact) > 320:
            raise AcmeProblem("invalidContact", f"{contact[:100]!r} is not one email address")
    return tuple(raw)


def _same_leaf(fullchain_pem: str, presented: x509.Certificate) -> bool:
    try:
        leaf = x509.load_pem_x509_certificates(fullchain_pem.encode())[0]
    except (ValueError, IndexError):
        return False
    return leaf == presented
