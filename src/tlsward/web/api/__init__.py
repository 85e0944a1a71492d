"""The JSON API, ``/api/v1``: one router per resource. Every route authenticates (``tlsward.web.auth``),
answers errors as RFC 9457 problem details, and is declared precisely in ``/api/v1/openapi.json``."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.routing import APIRoute

from tlsward.web.api import alerts, audit, certificates, endpoints, findings, observations, scans, sli, truststores
from tlsward.web.api.common import bearer, clean_request, problems, session_cookie


def _operation_id(route: APIRoute) -> str:
    """The handler's name (``list_endpoints``): what generated clients call the method."""
    return route.name


def api_router() -> APIRouter:
    # bearer/session_cookie only document the credentials in OpenAPI; tlsward.web.auth.require checks them.
    router = APIRouter(dependencies=[Depends(bearer), Depends(session_cookie), Depends(clean_request)],
                       responses=problems(), generate_unique_id_function=_operation_id)
    for module in (endpoints, certificates, observations, scans, findings, alerts, sli, audit, truststores):
        router.include_router(module.router())
    return router
