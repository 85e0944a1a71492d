"""``/api/v1/truststores``: the fleet's trust stores. Each host's ``tlsward truststore export`` document is
imported (operator: it is a collector's feed, like a scan, and must not need an admin token on every host) and
replaces what the inventory held for that host; the overview is every host and, per store kind, the drift of
each store against the fleet's reference. Imports and removals are audited."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from tlsward.model.access import Principal
from tlsward.model.truststores import StoreKind
from tlsward.report.truststores_json import (
    MAX_HOST,
    drift_json,
    host_json,
    host_stores_from_json,
    host_stores_to_json,
    import_json,
)
from tlsward.storage.truststores import StaleSnapshotError, TrustStoreInventory
from tlsward.web.api.common import ApiRoute, audit, now, problems
from tlsward.web.api.truststore_models import HostStoresDoc, TrustStoreImport, TrustStoreOverview
from tlsward.web.auth import admin, operator, store_of, viewer
from tlsward.web.problems import Problem

HostPath = Annotated[str, Path(max_length=MAX_HOST, description="The host's name, URL-encoded")]


def router() -> APIRouter:
    api = APIRouter(prefix="/truststores", tags=["truststores"], route_class=ApiRoute)

    @api.get("", response_model=TrustStoreOverview, responses=problems(400),
             summary="Every host's trust stores and, per store kind, each store's drift from the fleet reference")
    def list_truststores(
        request: Request,
        _: Annotated[Principal, Depends(viewer)],
        kind: Annotated[StoreKind | None, Query(description="Only this store kind")] = None,
    ) -> dict[str, Any]:
        inventory = TrustStoreInventory(store_of(request))
        drift = inventory.drift(kind, now=now())
        return {"at": drift.at.isoformat(), "hosts": [host_json(row) for row in inventory.hosts()],
                "kinds": drift_json(drift)}

    @api.get("/{host:path}", response_model=HostStoresDoc, responses=problems(404),
             summary="One host's trust stores: the tlsward.truststores/1 document it was imported from")
    def get_host_truststores(request: Request, _: Annotated[Principal, Depends(viewer)], host: HostPath
                             ) -> dict[str, Any]:
        found = TrustStoreInventory(store_of(request)).host_stores(host)
        if found is None:
            raise Problem(404, f"{host!r} has no trust-store snapshot in the inventory")
        return host_stores_to_json(found)

    @api.post("", response_model=TrustStoreImport, status_code=201, responses={200: {
        "description": "Replaced (the host had a snapshot)", "model": TrustStoreImport}, **problems(400, 409)},
        summary="Import one host's trust stores (a tlsward.truststores/1 document), replacing what the inventory "
                "held for that host (operator)")
    def import_truststores(
        request: Request, response: Response, body: HostStoresDoc,
        principal: Annotated[Principal, Depends(operator)],
        force: Annotated[bool, Query(description="Replace a snapshot collected later than this one")] = False,
    ) -> dict[str, Any]:
        snapshot = host_stores_from_json(body.model_dump(by_alias=True), "request body")
        try:
            result = TrustStoreInventory(store_of(request)).import_host(snapshot, force=force, now=now())
        except StaleSnapshotError as exc:
            raise Problem(409, f"{exc} (?force=true)") from None
        audit(request, principal, "truststore.import", result.host,
              f"{result.stores} store(s), {result.roots} root(s); added {len(result.added)}, removed "
              f"{len(result.removed)}; collected {snapshot.collected_at.isoformat()}")
        response.status_code = 201 if result.first else 200
        response.headers["Location"] = f"{request.url.path.rstrip('/')}/{quote(result.host, safe='')}"
        return import_json(result)

    @api.delete("/{host:path}", status_code=204, response_class=Response, responses=problems(404),
                summary="Forget a host's trust stores (a decommissioned host): they leave the fleet reference (admin)")
    def remove_host_truststores(request: Request, principal: Annotated[Principal, Depends(admin)], host: HostPath
                                ) -> Response:
        if not TrustStoreInventory(store_of(request)).remove_host(host):
            raise Problem(404, f"{host!r} has no trust-store snapshot in the inventory")
        audit(request, principal, "truststore.remove", host)
        return Response(status_code=204)

    return api
