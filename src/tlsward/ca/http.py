"""The CA's HTTP face, mounted at ``/ca`` by ``tlsward serve``: the CRL (DER and PEM), the OCSP responder (RFC 6960
appendix A: POST, and GET with the request base64 in the path) and the CA certificates.

The CRL is republished when half of its validity has passed: by a background task every ``refresh_seconds``
(started with the app's lifespan, or by the first request when the app is mounted inside another one, whose
lifespan Starlette does not pass down) and, whatever the schedule, whenever a request finds it stale.
Revocations made by another process (``tlsward ca revoke``) are visible at once: the CRL and the OCSP status are
read from the inventory.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import datetime as dt
import logging
from collections.abc import AsyncIterator
from urllib.parse import unquote

from cryptography.hazmat.primitives import serialization
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp

from tlsward.ca.authority import CertificateAuthority
from tlsward.ca.ocsp import MAX_REQUEST_BYTES, unsuccessful
from tlsward.model.errors import Error

log = logging.getLogger(__name__)

OCSP_REQUEST = "application/ocsp-request"
OCSP_RESPONSE = "application/ocsp-response"
PKIX_CRL = "application/pkix-crl"
PEM_FILE = "application/x-pem-file"


class CrlRefresher:
    """Republishes a stale CRL on a schedule; at most one task per app, started once."""

    def __init__(self, ca: CertificateAuthority, refresh_seconds: float) -> None:
        self.ca, self.refresh_seconds = ca, refresh_seconds
        self._task: asyncio.Task[None] | None = None
        self.runs = 0

    def ensure_started(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="tlsward-ca-crl")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await asyncio.to_thread(self.ca.crl)
                self.runs += 1
            except Error as exc:   # the database was away: try again next round, keep serving
                log.warning("CA CRL refresh failed: %s", exc)
            await asyncio.sleep(self.refresh_seconds)


def create_ca_app(ca: CertificateAuthority, *, refresh_seconds: float | None = None) -> ASGIApp:
    """The ASGI app (Starlette). ``refresh_seconds``: how often to check the CRL (default: an eighth of its
    validity, at most 15 minutes)."""
    validity = dt.timedelta(hours=ca.config.crl_validity_hours).total_seconds()
    refresher = CrlRefresher(ca, refresh_seconds or min(validity / 8, 900.0))

    async def crl_der(request: Request) -> Response:
        refresher.ensure_started()
        crl = await asyncio.to_thread(ca.crl)
        return Response(crl.public_bytes(serialization.Encoding.DER), media_type=PKIX_CRL,
                        headers=_crl_cache(crl.next_update_utc))

    async def crl_pem(request: Request) -> Response:
        refresher.ensure_started()
        crl = await asyncio.to_thread(ca.crl)
        return Response(crl.public_bytes(serialization.Encoding.PEM), media_type=PEM_FILE,
                        headers=_crl_cache(crl.next_update_utc))

    async def root_crl(request: Request) -> Response:
        crl = ca.root_crl()
        return Response(crl.public_bytes(serialization.Encoding.DER), media_type=PKIX_CRL)

    async def ocsp_post(request: Request) -> Response:
        refresher.ensure_started()
        body = await request.body()
        return await _ocsp(ca, body)

    async def ocsp_get(request: Request) -> Response:
        refresher.ensure_started()
        encoded = unquote(request.path_params["encoded"])
        try:
            der = base64.b64decode(encoded + "=" * (-len(encoded) % 4), altchars=b"-_" if "-" in encoded
                                   or "_" in encoded else None, validate=True)
        except (binascii.Error, ValueError):
            der = b""
        response = await _ocsp(ca, der)
        response.headers["cache-control"] = "max-age=300, public"
        return response

    def pem(data: bytes) -> Response:
        return Response(data, media_type=PEM_FILE)

    async def root_pem(request: Request) -> Response:
        return pem(ca.ca_bundle_pem())

    async def intermediate_pem(request: Request) -> Response:
        return pem(ca.intermediate.public_bytes(serialization.Encoding.PEM))

    async def chain_pem(request: Request) -> Response:
        return pem(ca.chain_pem())

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        refresher.ensure_started()
        try:
            yield
        finally:
            await refresher.stop()

    app = Starlette(routes=[
        Route("/crl", crl_der, methods=["GET"]),
        Route("/crl.pem", crl_pem, methods=["GET"]),
        Route("/root.crl", root_crl, methods=["GET"]),
        Route("/ocsp", ocsp_post, methods=["POST"]),
        Route("/ocsp/{encoded:path}", ocsp_get, methods=["GET"]),
        Route("/root.pem", root_pem, methods=["GET"]),
        Route("/intermediate.pem", intermediate_pem, methods=["GET"]),
        Route("/chain.pem", chain_pem, methods=["GET"]),
    ], lifespan=lifespan)
    app.state.crl_refresher = refresher
    return app


async def _ocsp(ca: CertificateAuthority, der: bytes) -> Response:
    if len(der) > MAX_REQUEST_BYTES:
        from cryptography.x509 import ocsp

        return Response(unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST), media_type=OCSP_RESPONSE)
    answer = await asyncio.to_thread(ca.ocsp_response, der)
    return Response(answer, media_type=OCSP_RESPONSE)


def _crl_cache(next_update: dt.datetime | None) -> dict[str, str]:
    if next_update is None:
        return {}
    seconds = max(0, int((next_update - dt.datetime.now(dt.UTC)).total_seconds()))
    return {"cache-control": f"max-age={min(seconds, 3600)}, public"}
