"""The dashboards: server-rendered pages, one router per view.

- ``/executive``: health, expiry, the handshake SLI against its SLO, the TLS version mix, the worst owners;
- ``/oncall``: firing alerts by certificate (ack, silence), failing endpoints, what changed in 24 hours;
- ``/inventory``: every endpoint, searched, filtered, sorted and paged (``/inventory.csv`` exports it);
- ``/endpoints/{target}``: one endpoint in depth, with its history and a "Rescan now" button;
- ``/certificates/{sha256}``: where a certificate is served or stored, its chain, its alerts;
- ``/findings``: the finding catalogue with what to do about each;
- ``/truststores``: the fleet's trust stores per kind, and how each drifts from the fleet's reference.

Every page needs a login (the viewer role; acting on alerts the operator role): a browser without a session
is sent to ``/login?next=...``. Pages carry no inline script or style (the CSP forbids both): charts are
drawn by ``static/dashboards.js`` with the vendored Chart.js, from JSON in ``<script type="application/json">``
blocks, which browsers never execute.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from tlsward.web.auth import identify
from tlsward.web.views import certificates, endpoints, executive, findings, inventory, oncall, truststores


def views_router() -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/")
    def home(request: Request) -> Response:
        if identify(request) is None:
            return RedirectResponse("/login?next=/", status_code=303)
        return RedirectResponse("/oncall", status_code=303)

    for module in (executive, oncall, inventory, endpoints, certificates, findings, truststores):
        router.include_router(module.router())
    return router
