"""``/api/v1/audit``: who changed what through the web (logins, inventory edits, scans, acks, silences);
admins only, since it names every token holder."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from tlsward.model.access import Principal
from tlsward.storage.access import AccessStore
from tlsward.web.api.common import ApiRoute
from tlsward.web.api.models import AuditList
from tlsward.web.auth import admin, store_of


def router() -> APIRouter:
    api = APIRouter(prefix="/audit", tags=["audit"], route_class=ApiRoute)

    @api.get("", response_model=AuditList, summary="The audit log, newest first (admin)")
    def audit_log(request: Request, _: Annotated[Principal, Depends(admin)],
                  limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, Any]:
        entries = AccessStore(store_of(request)).audit_entries(limit=limit)
        return {"items": [{"id": e.id, "at": e.at.isoformat(), "actor": e.actor, "action": e.action,
                           "target": e.target, "detail": e.detail} for e in entries]}

    return api
