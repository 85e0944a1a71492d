"""The revocation probe: is the leaf revoked? And AIA completion: can a missing issuer be downloaded?

Order of evidence for :func:`check_leaf`: a stapled OCSP response, then each OCSP responder named in the
leaf's AIA, then each CRL distribution point; the first answer that settles it (good or revoked) wins. The
issuer that answers are checked against is the one presented (or fetched from AIA caIssuers) that actually
signed the leaf. Nothing is ever reported revoked without a verified signature.

Modes: ``off`` (no check: None), ``soft`` and ``hard``. Both check the same way; the mode only decides what
"could not find out" costs (a note in soft mode, a ``cert.revocation_unknown`` finding in hard mode, which
the rules decide).

:class:`RevocationCache` is per run and in memory: answers are keyed by URL (OCSP: URL and certificate id),
reused until the answer's nextUpdate (at most ``max_age``), failures for ``failure_ttl``, and concurrent asks
for the same key share one fetch, so a thousand endpoints under one CA download its CRL once.

Time: each fetch is bounded by ``tlsward.net.fetch`` (``timeout`` per network operation, three in all), and
a whole check, or a whole AIA completion, by :data:`BUDGET_FACTOR` timeouts: a CA whose responders blackhole
costs a scan seconds, not minutes.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeVar, cast

from tlsward.model.certificate import REVOCATION_MODES, CertificateFacts, RevocationState, RevocationStatus
from tlsward.model.errors import CertificateError, Error, FetchError
from tlsward.net.fetch import MAX_CERT_BYTES, MAX_CRL_BYTES, MAX_OCSP_BYTES, http_get, http_post
from tlsward.x509.facts import facts_from_der
from tlsward.x509.revocation import (
    OCSP_REQUEST_TYPE,
    Crl,
    crl_status,
    is_ocsp_response,
    issues,
    load_crl,
    load_issuer_certificates,
    ocsp_cache_key,
    ocsp_next_update,
    ocsp_request,
    ocsp_status,
)

__all__ = ["MAX_AIA_HOPS", "RevocationCache", "check_leaf", "fetch_missing_issuers", "stapled_state"]

MAX_AIA_HOPS = 3
MAX_URLS = 3            # per kind (OCSP, CRL, caIssuers) and certificate: a certificate may list dozens
BUDGET_FACTOR = 4       # one revocation check (or one AIA completion) takes at most this many timeouts in all

T = TypeVar("T")


@dataclass
class _Entry:
    task: asyncio.Task[tuple[Any, float]]
    expires: float = float("inf")       # clock time; set when the fetch finishes


class RevocationCache:
    """Fetched CRLs, OCSP responses and issuer certificates, shared by every scan of one run."""

    def __init__(self, *, max_age: float = 3600.0, failure_ttl: float = 300.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_age = max_age
        self.failure_ttl = failure_ttl
        self.fetches = 0                # network fetches actually made (the rest were shared or reused)
        self._clock = clock
        self._entries: dict[tuple[str, ...], _Entry] = {}

    async def crl(self, url: str, timeout: float, now: dt.datetime) -> Crl:
        """The parsed CRL at ``url``; :class:`FetchError` or :class:`CertificateError` (not a CRL)."""
        async def load() -> tuple[Crl, float]:
            crl = load_crl(await self._get(url, timeout, MAX_CRL_BYTES), url)
            return crl, self._ttl(crl.next_update, now)
        return await self._shared(("crl", url), load)

    async def ocsp(self, url: str, request: bytes, certificate_id: str, timeout: float, now: dt.datetime) -> bytes:
        """The responder's DER answer to ``request`` (about ``certificate_id``); :class:`FetchError`."""
        async def load() -> tuple[bytes, float]:
            self.fetches += 1
            body = await http_post(url, request, OCSP_REQUEST_TYPE, timeout=timeout, max_bytes=MAX_OCSP_BYTES)
            return body, self._ttl(ocsp_next_update(body), now)
        return await self._shared(("ocsp", url, certificate_id), load)

    async def issuers(self, url: str, timeout: float) -> tuple[bytes, ...]:
        """The certificates (DER) an AIA caIssuers URL serves; :class:`FetchError` or :class:`CertificateError`."""
        async def load() -> tuple[tuple[bytes, ...], float]:
            return load_issuer_certificates(await self._get(url, timeout, MAX_CERT_BYTES), url), self.max_age
        return await self._shared(("aia", url), load)

    async def _get(self, url: str, timeout: float, max_bytes: int) -> bytes:
        self.fetches += 1
        return await http_get(url, timeout=timeout, max_bytes=max_bytes)

    def _ttl(self, next_update: dt.datetime | None, now: dt.datetime) -> float:
        """Reuse an answer until its nextUpdate, at most ``max_age``; a stale one only as long as a failure."""
        if next_update is None:
            return self.max_age
        left = (next_update - now).total_seconds()
        return min(self.max_age, left) if left > 0 else min(self.max_age, self.failure_ttl)

    async def _shared(self, key: tuple[str, ...], load: Callable[[], Awaitable[tuple[T, float]]]) -> T:
        loop = asyncio.get_running_loop()
        entry = self._entries.get(key)
        if entry is not None and not self._usable(entry, loop):
            entry = None
        if entry is None:
            task: asyncio.Task[tuple[Any, float]] = loop.create_task(self._run(key, load))
            task.add_done_callback(_mark_retrieved)
            entry = self._entries[key] = _Entry(task)
        # shield: a scan cancelled while waiting must not cancel the fetch other scans wait for
        value, _ = await asyncio.shield(entry.task)
        return cast(T, value)

    def _usable(self, entry: _Entry, loop: asyncio.AbstractEventLoop) -> bool:
        task = entry.task
        if not task.done():
            return task.get_loop() is loop
        return not task.cancelled() and self._clock() < entry.expires

    async def _run(self, key: tuple[str, ...], load: Callable[[], Awaitable[tuple[T, float]]]) -> tuple[T, float]:
        try:
            value, ttl = await load()
        except Error:
            self._expire(key, self.failure_ttl)
            raise
        except BaseException:   # a bug or a cancellation: never reuse it
            self._expire(key, 0.0)
            raise
        self._expire(key, ttl)
        return value, ttl

    def _expire(self, key: tuple[str, ...], ttl: float) -> None:
        entry = self._entries.get(key)
        if entry is not None and entry.task is asyncio.current_task():
            entry.expires = self._clock() + ttl


def _mark_retrieved(task: asyncio.Task[tuple[Any, float]]) -> None:
    """A failed fetch whose waiters were all cancelled must not log "exception was never retrieved"."""
    if not task.cancelled():
        task.exception()


# --- issuers ----------------------------------------------------------------------------------------------


def _presented_issuer(cert: bytes, pool: Sequence[bytes]) -> bytes | None:
    return next((candidate for candidate in pool if candidate != cert and issues(candidate, cert)), None)


async def _download_issuer(cert: bytes, facts: CertificateFacts, cache: RevocationCache, timeout: float,
                           problems: list[str]) -> bytes | None:
    """The issuer of ``cert`` from its AIA caIssuers URLs, or None (with the reasons in ``problems``)."""
    for url in facts.ca_issuers_urls[:MAX_URLS]:
        try:
            served = await cache.issuers(url, timeout)
        except FetchError as exc:
            problems.append(f"AIA caIssuers {url} unreachable: {exc.detail}")
            continue
        except CertificateError as exc:
            problems.append(str(exc))
            continue
        issuer = _presented_issuer(cert, served)
        if issuer is not None:
            return issuer
        problems.append(f"AIA caIssuers {url} served no certificate that issued {facts.subject}")
    return None


async def fetch_missing_issuers(chain_der: Sequence[bytes], cache: RevocationCache, timeout: float, *,
                                notes: list[str] | None = None) -> tuple[bytes, ...]:
    """Issuers the server did not send, downloaded from AIA caIssuers (DER, PEM or PKCS#7), at most
    :data:`MAX_AIA_HOPS` hops: start where the path from the leaf through the presented certificates stops,
    fetch its issuer, then that one's, until a self-signed certificate or a certificate without caIssuers.

    Never raises for network or parse problems: those go to ``notes`` as one line each, and what was fetched
    until then is returned (empty when the chain is complete or nothing could be fetched).
    """
    if not chain_der:
        return ()
    presented = list(chain_der)
    current = presented[0]
    path = [current]
    while (issuer := _presented_issuer(current, presented)) is not None and issuer not in path:
        path.append(issuer)
        current = issuer
    fetched: list[bytes] = []
    problems: list[str] = []
    try:
        async with asyncio.timeout(timeout * BUDGET_FACTOR):
            for _ in range(MAX_AIA_HOPS):
                try:
                    facts = facts_from_der(current)
                except CertificateError:
                    break
                if facts.self_signed or _presented_issuer(current, presented + fetched) is not None:
                    break
                issuer = await _download_issuer(current, facts, cache, timeout, problems)
                if issuer is None or issuer in fetched:
                    break
                fetched.append(issuer)
                current = issuer
    except TimeoutError:
        problems.append(f"AIA chain completion gave up after {timeout * BUDGET_FACTOR:g}s")
    if notes is not None:
        notes.extend(problems)
    return tuple(fetched)


# --- revocation -------------------------------------------------------------------------------------------


def stapled_state(chain_der: Sequence[bytes], stapled: bytes | None, now: dt.datetime,
                  extra_issuers: Sequence[bytes] = ()) -> str | None:
    """``Session.ocsp_status`` for a stapled response: good, revoked, unknown or malformed (None: nothing
    stapled). No network: when the leaf's issuer was neither presented nor fetched, the answer is unknown."""
    if not stapled:
        return None
    if not is_ocsp_response(stapled):
        return "malformed"
    if not chain_der:
        return "unknown"
    issuer = _presented_issuer(chain_der[0], [*chain_der[1:], *extra_issuers])
    if issuer is None:
        return "unknown"
    status = ocsp_status(stapled, chain_der[0], issuer, now, source="stapled-ocsp").status
    return status if status in ("good", "revoked") else "unknown"


async def check_leaf(chain_der: Sequence[bytes], mode: str, cache: RevocationCache, now: dt.datetime,
                     timeout: float, *, stapled: bytes | None = None,
                     extra_issuers: Sequence[bytes] = ()) -> RevocationStatus | None:
    """The revocation status of ``chain_der[0]``; None when ``mode`` is off or the leaf is self-signed
    (nothing can revoke it). Never raises for network or parse problems: they become the status' reason."""
    if mode not in REVOCATION_MODES:
        raise ValueError(f"unknown revocation mode {mode!r}; expected one of {', '.join(REVOCATION_MODES)}")
    if mode == "off" or not chain_der:
        return None
    leaf_der = chain_der[0]
    try:
        leaf = facts_from_der(leaf_der)
    except CertificateError as exc:
        return RevocationStatus("unknown", "", f"the leaf cannot be parsed: {exc}")
    if leaf.self_signed:
        return None
    checked: list[str] = []
    try:
        async with asyncio.timeout(timeout * BUDGET_FACTOR):
            return await _check(leaf_der, leaf, chain_der, extra_issuers, stapled, cache, now, timeout, checked)
    except TimeoutError:
        return RevocationStatus("unavailable", "", f"no revocation answer within {timeout * BUDGET_FACTOR:g}s "
                                f"(asked {', '.join(checked) or 'nothing yet'})", checked_urls=tuple(checked))


async def _check(leaf_der: bytes, leaf: CertificateFacts, chain_der: Sequence[bytes], extra_issuers: Sequence[bytes],
                 stapled: bytes | None, cache: RevocationCache, now: dt.datetime, timeout: float,
                 checked: list[str]) -> RevocationStatus:
    problems: list[str] = []
    issuer = _presented_issuer(leaf_der, [*chain_der[1:], *extra_issuers])
    if issuer is None:
        issuer = await _download_issuer(leaf_der, leaf, cache, timeout, problems)
    if issuer is None:
        why = "; ".join(problems) or "the leaf has no AIA caIssuers URL"
        return RevocationStatus("unavailable", "", f"the issuer {leaf.issuer} of the leaf is needed to verify "
                                f"revocation answers and was neither presented nor downloaded ({why})")
    outcomes: list[RevocationStatus] = []

    def settled(status: RevocationStatus) -> RevocationStatus | None:
        outcomes.append(status)
        return replace(status, checked_urls=tuple(checked)) if status.established else None

    if stapled and (answer := settled(ocsp_status(stapled, leaf_der, issuer, now, source="stapled-ocsp"))):
        return answer
    for url in leaf.ocsp_urls[:MAX_URLS]:
        checked.append(url)
        if answer := settled(await _ask_responder(url, leaf_der, issuer, cache, timeout, now)):
            return answer
    for url in leaf.crl_urls[:MAX_URLS]:
        checked.append(url)
        if answer := settled(await _read_crl(url, leaf_der, issuer, cache, timeout, now)):
            return answer
    if not outcomes:
        return RevocationStatus("unknown", "", "the certificate names no OCSP responder and no CRL distribution "
                                "point, and nothing was stapled")
    state: RevocationState = "unknown" if any(o.status == "unknown" for o in outcomes) else "unavailable"
    return RevocationStatus(state, "", "; ".join(o.reason for o in outcomes), checked_urls=tuple(checked))


async def _ask_responder(url: str, leaf: bytes, issuer: bytes, cache: RevocationCache, timeout: float,
                         now: dt.datetime) -> RevocationStatus:
    try:
        answer = await cache.ocsp(url, ocsp_request(leaf, issuer), ocsp_cache_key(leaf, issuer), timeout, now)
    except FetchError as exc:
        return RevocationStatus("unavailable", "ocsp", f"OCSP responder {url} unreachable: {exc.detail}",
                                checked_urls=(url,))
    return ocsp_status(answer, leaf, issuer, now, url=url)


async def _read_crl(url: str, leaf: bytes, issuer: bytes, cache: RevocationCache, timeout: float,
                    now: dt.datetime) -> RevocationStatus:
    try:
        crl = await cache.crl(url, timeout, now)
    except FetchError as exc:
        return RevocationStatus("unavailable", "crl", f"CRL {url} unreachable: {exc.detail}", checked_urls=(url,))
    except CertificateError as exc:
        return RevocationStatus("unknown", "crl", str(exc), checked_urls=(url,))
    return crl_status(crl, leaf, issuer, now)
