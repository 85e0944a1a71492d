"""``/certificates``: every certificate, soonest-expiring first. ``/certificates/{sha256}``: one certificate,
wherever it is. Every place it is served (endpoint and chain
position) or stored (file, config), first and last seen; the chain it is presented in, drawn from leaf to root;
the alerts about it or about the endpoints that serve it; its PEM (``/certificates/{sha256}.pem``).

A fingerprint prefix (8 hex digits or more) is accepted, as ``tlsward inventory cert`` accepts it: one match
shows the certificate, several are listed."""

from __future__ import annotations

import base64
import re
import textwrap
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import HTMLResponse

from tlsward.model.access import Principal
from tlsward.storage.dashboards import alerts_about, certificate_der, presented_chain
from tlsward.web.app import render
from tlsward.web.auth import store_of, viewer
from tlsward.web.problems import Problem
from tlsward.web.views.common import PageRoute, now
from tlsward.web.views.endpoints import certificate_facts, chain_drawing
from tlsward.web.views.findings import inline

FINGERPRINT = re.compile(r"[0-9a-f]{8,64}")


def _fingerprint(text: str) -> str:
    cleaned = text.strip().lower().replace(":", "")
    if not FINGERPRINT.fullmatch(cleaned):
        raise Problem(400, f"{text[:80]!r} is not a SHA-256 fingerprint (64 hex digits, or at least the first 8)")
    return cleaned


PAGE = 50


def router() -> APIRouter:
    pages = APIRouter(route_class=PageRoute)

    @pages.get("/certificates", response_class=HTMLResponse)
    def certificates(request: Request, _: Annotated[Principal, Depends(viewer)],
                     q: Annotated[str, Query(max_length=200)] = "",
                     issuer: Annotated[str, Query(max_length=200)] = "",
                     days_left: Annotated[float | None, Query(ge=-36500, le=36500)] = None,
                     all_: Annotated[bool, Query(alias="all")] = False,
                     page: Annotated[int, Query(ge=1, le=100_000)] = 1) -> HTMLResponse:
        """Every certificate the inventory knows (seen on an endpoint or in a file), soonest-expiring first,
        with how many endpoints and files hold it."""
        listing, total = store_of(request).certificate_listing(
            q=q or None, issuer=issuer or None, days_left_max=days_left, leaf_only=not all_, limit=PAGE,
            offset=(page - 1) * PAGE, now=now())
        return render(request, "certificates.html", listing=listing, total=total, page=page,
                      pages=max(1, -(-total // PAGE)), q=q, issuer=issuer, days_left=days_left, all=all_)

    @pages.get("/certificates/{sha256}.pem")
    def certificate_pem(request: Request, _: Annotated[Principal, Depends(viewer)],
                        sha256: Annotated[str, Path(max_length=95)]) -> Response:
        fingerprint = _fingerprint(sha256)
        der = certificate_der(store_of(request), fingerprint) if len(fingerprint) == 64 else None
        if not der:
            raise Problem(404, f"no stored DER for certificate {fingerprint[:16]} (give the full fingerprint; "
                               "certificates recorded without their bytes have none)")
        body = "-----BEGIN CERTIFICATE-----\n" + "\n".join(textwrap.wrap(base64.b64encode(der).decode(), 64)) + \
            "\n-----END CERTIFICATE-----\n"
        return Response(body, media_type="application/x-pem-file",
                        headers={"Content-Disposition": f'attachment; filename="{fingerprint[:16]}.pem"'})

    @pages.get("/certificates/{sha256}", response_class=HTMLResponse)
    def certificate(request: Request, _: Annotated[Principal, Depends(viewer)],
                    sha256: Annotated[str, Path(max_length=95)]) -> HTMLResponse:
        fingerprint = _fingerprint(sha256)
        store = store_of(request)
        found = store.certificate_places(fingerprint)
        if not found:
            raise Problem(404, f"no certificate {fingerprint[:16]}... in the inventory")
        if len(found) > 1 and not any(cert.sha256 == fingerprint for cert, _ in found):
            return render(request, "certificate.html", choices=[cert for cert, _ in found], cert=None)
        cert, places = next(((c, p) for c, p in found if c.sha256 == fingerprint), found[0])
        moment = now()
        chain = presented_chain(store, cert.sha256)
        # A place is an endpoint's target, or a file's (or config's) absolute path.
        targets = sorted({place for place, _, _, _ in places if not place.startswith("/") and place != "?"})
        return render(request, "certificate.html", cert=cert, facts=certificate_facts(cert), places=places,
                      endpoints=set(targets), chain=chain, drawing=chain_drawing(chain, moment),
                      alerts=alerts_about(store, cert.sha256, targets), has_der=bool(cert.der), now=moment,
                      inline=inline, choices=[])

    return pages
