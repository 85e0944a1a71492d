"""``/truststores``: the fleet's trust stores, per store kind: every host's store of that kind with its root
count, version and age, and what sets it apart from the fleet's reference (the roots in a strict majority of
that kind's readable stores): reference roots it lacks and extra roots, by name; its expired roots; why it could
not be read. Filled by ``tlsward truststore import`` or ``POST /api/v1/truststores``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from tlsward.model.access import Principal
from tlsward.model.truststores import STORE_KINDS, StoreKind
from tlsward.storage.truststores import TrustStoreInventory
from tlsward.web.app import render
from tlsward.web.auth import store_of, viewer
from tlsward.web.views.common import PageRoute, now


def router() -> APIRouter:
    pages = APIRouter(route_class=PageRoute)

    @pages.get("/truststores", response_class=HTMLResponse)
    def truststores(
        request: Request,
        _: Annotated[Principal, Depends(viewer)],
        kind: Annotated[StoreKind | None, Query()] = None,
        host: Annotated[str, Query(max_length=255)] = "",
        drifting: Annotated[bool, Query()] = False,
    ) -> HTMLResponse:
        inventory = TrustStoreInventory(store_of(request))
        drift = inventory.drift(kind, now=now())
        wanted = host.strip().lower()
        sections = []
        for group in drift.kinds:
            rows = [row for row in group.stores if (not wanted or wanted in row.host.lower())
                    and (not drifting or row.drifted or row.expired or row.problem)]
            sections.append((group, rows))
        return render(request, "truststores.html", drift=drift, sections=sections, hosts=inventory.hosts(),
                      kinds=STORE_KINDS, filters={"kind": kind or "", "host": host, "drifting": drifting},
                      filtered=bool(kind or wanted or drifting))

    return pages
