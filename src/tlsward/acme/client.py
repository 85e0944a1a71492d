"""The ACME (RFC 8555) client tlsward uses to obtain, renew and revoke certificates.

Built on certbot's ``acme`` package (JWS, messages, order flow) rather than our own JWS code. What this module adds
is what an operations tool needs around it: an account kept on disk, solvers with a start/stop life cycle, bounded
retries (badNonce, HTTP 429/503 with Retry-After, connection errors on idempotent requests), a deadline on polling,
ARI (RFC 9773) lookups with ``replaces``, and one error type whose message names the server and the problem.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import email.utils
import ipaddress
import json
import logging
import os
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from acme import challenges, crypto_util, messages
from acme import client as acme_client
from acme import errors as acme_errors
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from josepy import errors as jose_errors
from josepy import json_util, jwa, jwk

from tlsward.acme.errors import AcmeError
from tlsward.acme.renewal import ari_cert_id
from tlsward.acme.solvers import ChallengeSolver, ChallengeTask

__all__ = [
    "KEY_TYPES",
    "AcmeAccountSettings",
    "AcmeClient",
    "AcmeError",
    "ObtainedCertificate",
    "RetryPolicy",
]

log = logging.getLogger(__name__)

KEY_TYPES = ("ecdsa-p256", "ecdsa-p384", "rsa-2048", "rsa-3072", "rsa-4096")
RETRYABLE_STATUS = frozenset({429, 503})
ACCOUNT_FILE = "account.json"
ACCOUNT_KEY_FILE = "account.key"


@dataclass(frozen=True)
class AcmeAccountSettings:
    """Where the ACME server is and who we are there. ``eab_hmac_key`` is base64url, as CAs hand it out."""

    directory_url: str
    account_dir: Path
    email: str | None = None
    ca_bundle: Path | None = None
    eab_kid: str | None = None
    eab_hmac_key: str | None = None
    user_agent: str = "tlsward"


@dataclass(frozen=True)
class ObtainedCertificate:
    """A freshly issued certificate: the leaf, its chain as served, both together, and the private key (PKCS#8)."""

    key_pem: bytes
    cert_pem: bytes
    chain_pem: bytes
    fullchain_pem: bytes
    not_before: dt.datetime
    not_after: dt.datetime


@dataclass(frozen=True)
class RetryPolicy:
    """Bounds on retrying one request, so a struggling CA slows us down but never hangs a renewal run.

    ``max_attempts`` counts tries of one request for 429/503/connection errors; ``max_wait`` bounds the total sleep
    for one request (a Retry-After beyond what is left gives up at once with the server's error); delays without
    Retry-After are exponential with full jitter, ``base_delay * 2**n`` capped at ``max_delay``. badNonce is retried
    up to ``bad_nonce_attempts`` times with a fresh nonce (cheap, and RFC 8555 §6.5 asks clients to retry).
    """

    max_attempts: int = 5
    max_wait: float = 60.0
    base_delay: float = 0.5
    max_delay: float = 10.0
    bad_nonce_attempts: int = 10


class _Budget:
    """The retries left for one request."""

    def __init__(self, policy: RetryPolicy, rng: random.Random) -> None:
        self.policy = policy
        self.rng = rng
        self.attempts = 1
        self.waited = 0.0

    def next_delay(self, retry_after: float | None) -> float | None:
        """The sleep before the next attempt, or None when the attempts or the wait budget are spent."""
        if self.attempts >= self.policy.max_attempts:
            return None
        if retry_after is not None:
            delay = max(0.0, retry_after)
        else:
            delay = self.rng.uniform(0, min(self.policy.max_delay, self.policy.base_delay * 2 ** (self.attempts - 1)))
        if self.waited + delay > self.policy.max_wait:
            return None
        self.attempts += 1
        self.waited += delay
        return delay


def retry_after_seconds(value: str | None, now: dt.datetime) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return max(0.0, (when - now).total_seconds())


class _RetryPost(Exception):
    """A POST answered 429/503: it must be signed again with a fresh nonce, so ``post`` retries, not the sender."""

    def __init__(self, response: requests.Response, retry_after: float | None) -> None:
        super().__init__(response.status_code)
        self.response = response
        self.retry_after = retry_after


class _RetryingNetwork(acme_client.ClientNetwork):
    """acme's ClientNetwork with a CA bundle as trust, and bounded retries around every request."""

    def __init__(
        self,
        key: jwk.JWK,
        alg: jwa.JWASignature,
        *,
        verify: bool | str,
        user_agent: str,
        timeout: float,
        retry: RetryPolicy,
        sleep: Callable[[float], None],
        rng: random.Random,
    ) -> None:
        super().__init__(key, alg=alg, user_agent=user_agent)
        self._verify = verify
        self._timeout = timeout
        self._retry = retry
        self._sleep = sleep
        self._rng = rng

    def _send_request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:
        """Send with our trust and timeout; retry 429/503 and connection errors for GET/HEAD here, hand POSTs up."""
        headers = kwargs.setdefault("headers", {})
        headers.setdefault("User-Agent", self.user_agent)
        kwargs.setdefault("timeout", self._timeout)
        kwargs["verify"] = self._verify
        budget = _Budget(self._retry, self._rng)
        while True:
            try:
                response = self.session.request(method, url, *args, **kwargs)
            except (requests.ConnectionError, requests.Timeout) as exc:
                delay = None if method == "POST" else budget.next_delay(None)
                if delay is None:
                    raise
                log.debug("%s %s failed (%s); retrying in %.2fs", method, url, exc, delay)
                self._sleep(delay)
                continue
            if "Accept" not in headers:
                response.encoding = "utf-8"
            if response.status_code not in RETRYABLE_STATUS:
                return response
            retry_after = retry_after_seconds(response.headers.get("Retry-After"), dt.datetime.now(dt.UTC))
            if method == "POST":
                raise _RetryPost(response, retry_after)
            delay = budget.next_delay(retry_after)
            if delay is None:
                return response
            log.debug("%s %s answered %d; retrying in %.2fs", method, url, response.status_code, delay)
            self._sleep(delay)

    def post(self, *args: Any, **kwargs: Any) -> requests.Response:
        """POST, signing again with a fresh nonce after badNonce or a 429/503 (Retry-After honoured, bounded)."""
        budget = _Budget(self._retry, self._rng)
        nonce_retries = 0
        while True:
            try:
                return self._post_once(*args, **kwargs)
            except _RetryPost as retry:
                delay = budget.next_delay(retry.retry_after)
                if delay is None:
                    # Out of budget: surface the server's own problem document (rateLimited, ...).
                    return self._check_response(retry.response, content_type=self.JSON_CONTENT_TYPE)
                log.debug("POST answered %d; retrying in %.2fs", retry.response.status_code, delay)
                self._sleep(delay)
            except messages.Error as error:
                if error.code != "badNonce" or nonce_retries >= self._retry.bad_nonce_attempts:
                    raise
                nonce_retries += 1
                log.debug("badNonce (%d of %d); retrying with a fresh nonce", nonce_retries,
                          self._retry.bad_nonce_attempts)


class _NewOrderReplacing(messages.NewOrder):
    """newOrder with the RFC 9773 ``replaces`` field, which acme's NewOrder does not carry."""

    replaces: str | None = json_util.field("replaces", omitempty=True)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _generate_key(key_type: str) -> bytes:
    """A new private key in unencrypted PKCS#8 PEM."""
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    if key_type == "ecdsa-p256":
        key = ec.generate_private_key(ec.SECP256R1())
    elif key_type == "ecdsa-p384":
        key = ec.generate_private_key(ec.SECP384R1())
    elif key_type.startswith("rsa-") and key_type in KEY_TYPES:
        key = rsa.generate_private_key(public_exponent=65537, key_size=int(key_type[4:]))
    else:
        raise AcmeError("", "config", f"unknown key type {key_type!r}; expected one of {', '.join(KEY_TYPES)}")
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _jwk_and_alg(pem: bytes, path: Path) -> tuple[jwk.JWK, jwa.JWASignature]:
    """The account key and its JWS algorithm (ES256/ES384 for P-256/P-384, RS256 for RSA)."""
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise AcmeError("", "account", f"cannot read account key {path}: {exc}") from exc
    if isinstance(key, ec.EllipticCurvePrivateKey):
        algs = {"secp256r1": jwa.ES256, "secp384r1": jwa.ES384, "secp521r1": jwa.ES512}
        if key.curve.name not in algs:
            raise AcmeError("", "account", f"account key {path}: unsupported curve {key.curve.name}")
        return jwk.JWKEC(key=key), algs[key.curve.name]
    if isinstance(key, rsa.RSAPrivateKey):
        return jwk.JWKRSA(key=key), jwa.RS256
    raise AcmeError("", "account", f"account key {path}: unsupported key type {type(key).__name__}")


def _write_private(path: Path, data: bytes) -> None:
    """Write a file only its owner can read, replacing it atomically."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    tmp.replace(path)


def _split_pem(fullchain: str) -> list[bytes]:
    marker = "-----END CERTIFICATE-----"
    blocks = [part.strip() + "\n" + marker + "\n" for part in fullchain.split(marker) if part.strip()]
    return [block.encode("ascii") for block in blocks]


@dataclass
class _Session:
    net: _RetryingNetwork
    client: acme_client.ClientV2
    key: jwk.JWK
    account_url: str | None = None


class AcmeClient:
    """One ACME account at one directory: register, obtain, ask ARI, revoke.

    Not thread-safe (one nonce pool, one session); use one client per thread. ``sleep`` and ``rng`` are
    parameters so tests can observe the retry waits.
    """

    def __init__(
        self,
        settings: AcmeAccountSettings,
        *,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        order_timeout: float = 120.0,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.order_timeout = order_timeout
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._session: _Session | None = None

    def close(self) -> None:
        """Close the HTTP session (the client reconnects if used again)."""
        if self._session is not None:
            self._session.net.session.close()
            self._session = None

    def __enter__(self) -> AcmeClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- errors ------------------------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        """Translate everything the acme package, requests and josepy raise into one-line AcmeErrors."""
        server = self.settings.directory_url
        try:
            yield
        except AcmeError as exc:
            if exc.server:
                raise
            raise AcmeError(server, exc.problem, exc.detail) from exc
        except messages.Error as exc:
            raise AcmeError(server, exc.typ, f"{action}: {self._problem_detail(exc)}") from exc
        except acme_errors.ValidationError as exc:
            problem, detail = self._validation_detail(exc)
            raise AcmeError(server, problem, f"{action}: {detail}") from exc
        except acme_errors.IssuanceError as exc:
            raise AcmeError(server, exc.error.typ, f"{action}: {self._problem_detail(exc.error)}") from exc
        except acme_errors.TimeoutError as exc:
            raise AcmeError(server, "timeout", f"{action}: not finished within {self.order_timeout:g}s") from exc
        except requests.exceptions.SSLError as exc:
            hint = "" if self.settings.ca_bundle else " (pass the CA bundle that signs the server's certificate)"
            raise AcmeError(server, "tls", f"{action}: TLS verification failed{hint}: {_one_line(str(exc))}") from exc
        except requests.RequestException as exc:
            raise AcmeError(server, "network", f"{action}: {type(exc).__name__}: {_one_line(str(exc))}") from exc
        except acme_errors.ClientError as exc:
            raise AcmeError(server, "http", f"{action}: {self._client_error_detail(exc)}") from exc
        except (acme_errors.Error, jose_errors.Error) as exc:
            raise AcmeError(server, "malformed", f"{action}: {_one_line(str(exc)) or type(exc).__name__}") from exc
        except (ValueError, KeyError) as exc:
            raise AcmeError(server, "malformed", f"{action}: unexpected server response: {exc}") from exc

    @staticmethod
    def _problem_detail(problem: messages.Error) -> str:
        text = problem.detail or problem.title or problem.description or "no detail"
        if problem.identifier is not None:
            text = f"{problem.identifier.value}: {text}"
        for sub in problem.subproblems or ():
            who = sub.identifier.value if sub.identifier is not None else "?"
            text += f"; {who}: {sub.typ}: {sub.detail or ''}"
        return _one_line(text)

    @staticmethod
    def _client_error_detail(exc: acme_errors.ClientError) -> str:
        """acme raises ClientError(response) for a non-problem error answer: say the status and the URL instead."""
        first = exc.args[0] if exc.args else None
        if isinstance(first, tuple) and first:
            first = first[0]
        if isinstance(first, requests.Response):
            return f"HTTP {first.status_code} {first.reason} from {first.url}"
        return _one_line(str(exc)) or type(exc).__name__

    @staticmethod
    def _validation_detail(exc: acme_errors.ValidationError) -> tuple[str, str]:
        for authzr in exc.failed_authzrs:
            for challb in authzr.body.challenges:
                if challb.error is not None:
                    detail = f"{authzr.body.identifier.value}: {challb.chall.typ}: {challb.error.detail or ''}"
                    return str(challb.error.typ), _one_line(detail)
        return "validation", "authorization failed without a challenge error"

    # -- account -----------------------------------------------------------------------------------------------
    def _account_key(self) -> tuple[jwk.JWK, jwa.JWASignature]:
        """Load the account key, or create a P-256 key (0600) on first use."""
        directory = self.settings.account_dir
        path = directory / ACCOUNT_KEY_FILE
        try:
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            if not path.exists():
                _write_private(path, _generate_key("ecdsa-p256"))
            pem = path.read_bytes()
        except OSError as exc:
            raise AcmeError("", "account", f"cannot use account directory {directory}: {exc.strerror or exc}") from exc
        return _jwk_and_alg(pem, path)

    def _connect(self) -> _Session:
        if self._session is not None:
            return self._session
        key, alg = self._account_key()
        verify: bool | str = str(self.settings.ca_bundle) if self.settings.ca_bundle else True
        net = _RetryingNetwork(key, alg, verify=verify, user_agent=self.settings.user_agent, timeout=self.timeout,
                               retry=self.retry, sleep=self._sleep, rng=self._rng)
        with self._errors("directory"):
            directory = acme_client.ClientV2.get_directory(self.settings.directory_url, net)
        self._session = _Session(net=net, client=acme_client.ClientV2(directory, net), key=key)
        return self._session

    def _has(self, session: _Session, resource: str) -> bool:
        try:
            session.client.directory[resource]
        except KeyError:
            return False
        return True

    @property
    def account_url(self) -> str | None:
        """The account URL once registered in this process."""
        return self._session.account_url if self._session else None

    def register(self) -> str:
        """Create the account, or find it again by its key (RFC 8555 §7.3.1), and record it in ``account.json``.

        Always asking the server (one request) keeps a stale ``account.json`` from a reset test CA harmless.
        """
        session = self._connect()
        if session.account_url is not None:
            return session.account_url
        settings = self.settings
        with self._errors("newAccount"):
            eab = None
            if settings.eab_kid and settings.eab_hmac_key:
                eab = messages.ExternalAccountBinding.from_data(
                    account_public_key=session.key.public_key(), kid=settings.eab_kid,
                    hmac_key=settings.eab_hmac_key, directory=session.client.directory)
            elif session.client.external_account_required():
                raise AcmeError("", "config", "the server requires external account binding (eab_kid, eab_hmac_key)")
            registration = messages.NewRegistration.from_data(
                email=settings.email, terms_of_service_agreed=True, external_account_binding=eab)
            try:
                regr = session.client.new_account(registration)
                url = regr.uri
            except acme_errors.ConflictError as exc:
                url = exc.location
                session.net.account = messages.RegistrationResource(uri=url, body=messages.Registration())
        if not url:
            raise AcmeError(settings.directory_url, "malformed", "newAccount: no account URL (Location) returned")
        session.account_url = url
        record = {"directory_url": settings.directory_url, "account_url": url, "email": settings.email}
        try:
            _write_private(settings.account_dir / ACCOUNT_FILE, (json.dumps(record, indent=2) + "\n").encode())
        except OSError as exc:
            raise AcmeError(settings.directory_url, "account",
                            f"cannot write {settings.account_dir / ACCOUNT_FILE}: {exc.strerror or exc}") from exc
        return url

    # -- orders ------------------------------------------------------------------------------------------------
    def _new_order(self, session: _Session, csr_pem: bytes, names: Sequence[str],
                   replaces: str | None) -> messages.OrderResource:
        if replaces is None:
            return session.client.new_order(csr_pem)
        identifiers = []
        for name in names:
            try:
                identifiers.append(messages.Identifier(typ=messages.IDENTIFIER_IP,
                                                       value=str(ipaddress.ip_address(name))))
            except ValueError:
                identifiers.append(messages.Identifier(typ=messages.IDENTIFIER_FQDN, value=name))
        order = _NewOrderReplacing(identifiers=identifiers, replaces=replaces)
        response = session.client._post(session.client.directory["newOrder"], order)
        body = messages.Order.from_json(response.json())
        authorizations = [
            messages.AuthorizationResource(body=messages.Authorization.from_json(
                session.client._post_as_get(url).json()), uri=url)
            for url in body.authorizations
        ]
        return messages.OrderResource(body=body, uri=response.headers.get("Location"),
                                      authorizations=authorizations, csr_pem=csr_pem)

    def _tasks(self, session: _Session, order: messages.OrderResource, solver: ChallengeSolver
               ) -> list[tuple[ChallengeTask, messages.ChallengeBody, challenges.ChallengeResponse]]:
        tasks = []
        for authzr in order.authorizations:
            if authzr.body.status == messages.STATUS_VALID:
                continue  # reused authorization
            name = authzr.body.identifier.value
            offered = [challb for challb in authzr.body.challenges if challb.chall.typ == solver.challenge_type]
            if not offered:
                types = ", ".join(challb.chall.typ for challb in authzr.body.challenges) or "none"
                raise AcmeError("", "unsupported-challenge",
                                f"{name}: the server offers {types}, the solver answers {solver.challenge_type}")
            challb = offered[0]
            chall = challb.chall
            if not isinstance(chall, challenges.KeyAuthorizationChallenge):
                raise AcmeError("", "unsupported-challenge", f"{name}: {chall.typ} has no key authorization")
            response, validation = chall.response_and_validation(session.key)
            task = ChallengeTask(domain=name, token=str(chall.encode("token")),
                                 key_authorization=chall.key_authorization(session.key), validation=str(validation))
            tasks.append((task, challb, response))
        return tasks

    def obtain(
        self,
        names: Sequence[str],
        solver: ChallengeSolver,
        *,
        key_type: str = "ecdsa-p256",
        key_pem: bytes | None = None,
        replaces: x509.Certificate | None = None,
    ) -> ObtainedCertificate:
        """Order, answer the challenges with ``solver``, finalize and download a certificate for ``names``.

        ``key_pem`` keeps an existing key (key pinning, HPKP-era setups); otherwise a new ``key_type`` key is made.
        ``replaces`` is sent as the ARI ``replaces`` field when the server offers renewalInfo, so the CA can exempt
        the renewal from rate limits and revoke-on-replace policies.
        """
        unique = list(dict.fromkeys(n.strip().lower().rstrip(".") for n in names if n.strip()))
        if not unique:
            raise AcmeError(self.settings.directory_url, "config", "no names to order a certificate for")
        pem = key_pem if key_pem is not None else _generate_key(key_type)
        with self._errors("order"):
            ips = []
            dns_names = []
            for name in unique:
                try:
                    ips.append(ipaddress.ip_address(name))
                except ValueError:
                    dns_names.append(name)
            try:
                csr_pem = crypto_util.make_csr(pem, dns_names or None, ipaddrs=ips or None)
            except (ValueError, TypeError) as exc:
                raise AcmeError("", "config", f"cannot build a CSR for {', '.join(unique)}: {exc}") from exc
        self.register()
        session = self._connect()
        replaces_id = None
        if replaces is not None and self._has(session, "renewalInfo"):
            try:
                replaces_id = ari_cert_id(replaces)
            except AcmeError as exc:
                log.info("not sending replaces: %s", exc.detail)  # the order itself does not need it
        with self._errors("newOrder"):
            try:
                order = self._new_order(session, csr_pem, unique, replaces_id)
            except (messages.Error, acme_errors.ConflictError) as exc:
                # A CA may refuse ``replaces`` (already replaced, another account's certificate): the renewal
                # matters more than the hint, so order again without it. Rate limits are not worked around.
                if replaces_id is None or (isinstance(exc, messages.Error) and exc.code == "rateLimited"):
                    raise
                log.info("newOrder with replaces=%s refused (%s); ordering without it", replaces_id, exc)
                order = self._new_order(session, csr_pem, unique, None)
        deadline = dt.datetime.now() + dt.timedelta(seconds=self.order_timeout)  # acme compares naive local times
        with self._errors("authorization"):
            tasks = self._tasks(session, order, solver)
            presented: list[ChallengeTask] = []
            solver.start()
            try:
                for task, _, _ in tasks:
                    presented.append(task)  # before present: a half-done present (record added, not seen) is undone
                    solver.present(task)
                for _, challb, response in tasks:
                    session.client.answer_challenge(challb, response)
                order = session.client.poll_authorizations(order, deadline)
            finally:
                for task in presented:
                    try:
                        solver.cleanup(task)
                    except AcmeError as exc:
                        log.warning("challenge cleanup for %s failed: %s", task.domain, exc)
                solver.stop()
        with self._errors("finalize"):
            order = session.client.finalize_order(order, deadline)
            blocks = _split_pem(order.fullchain_pem)
            if not blocks:
                raise AcmeError("", "malformed", "finalize: the certificate URL returned no PEM certificate")
            leaf = x509.load_pem_x509_certificate(blocks[0])
            key = serialization.load_pem_private_key(pem, password=None)
            if leaf.public_key() != key.public_key():
                raise AcmeError("", "malformed", f"finalize: the certificate (serial {leaf.serial_number:x}) is not "
                                                 "for the key of the request")
        return ObtainedCertificate(
            key_pem=pem,
            cert_pem=blocks[0],
            chain_pem=b"".join(blocks[1:]),
            fullchain_pem=b"".join(blocks),
            not_before=leaf.not_valid_before_utc,
            not_after=leaf.not_valid_after_utc,
        )

    # -- ARI and revocation ------------------------------------------------------------------------------------
    def renewal_info(self, cert: x509.Certificate) -> tuple[dt.datetime, dt.datetime] | None:
        """The CA's suggested renewal window (RFC 9773), or None when the directory has no renewalInfo.

        An unauthenticated GET, so it needs no account. Feed the window to ``renewal.renewal_due``.
        """
        session = self._connect()
        if not self._has(session, "renewalInfo") or cert.not_valid_after_utc <= dt.datetime.now(dt.UTC):
            return None  # RFC 9773 §4.3: no ARI lookups for an expired certificate; it is simply due
        with self._errors("renewalInfo"):
            url = str(session.client.directory["renewalInfo"]).rstrip("/") + "/" + ari_cert_id(cert)
            info = messages.RenewalInfo.from_json(session.net.get(url).json())
            start, end = info.suggested_window.start, info.suggested_window.end
            if start is None or end is None:
                raise AcmeError("", "malformed", f"renewalInfo {url}: suggestedWindow without start/end")
            return start.astimezone(dt.UTC), end.astimezone(dt.UTC)

    def revoke(self, cert: x509.Certificate, *, reason: int = 0) -> None:
        """Revoke ``cert`` with the account that ordered it (RFC 5280 reason code, 0 = unspecified)."""
        self.register()
        session = self._connect()
        with self._errors("revokeCert"):
            session.client.revoke(cert, reason)
