"""``/api/v1/observations``: one endpoint's scan history, newest first."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from tlsward.model.access import Principal
from tlsward.model.errors import UsageError
from tlsward.model.target import Target
from tlsward.report.inventory_json import observation_json
from tlsward.web.api.common import MAX_TEXT, ApiRoute, problems
from tlsward.web.api.models import ObservationList
from tlsward.web.auth import store_of, viewer
from tlsward.web.problems import Problem


def router() -> APIRouter:
    api = APIRouter(prefix="/observations", tags=["observations"], route_class=ApiRoute)

    @api.get("", response_model=ObservationList, responses=problems(400, 404),
             summary="An endpoint's observations, newest first")
    def list_observations(
        request: Request,
        _: Annotated[Principal, Depends(viewer)],
        target: Annotated[str, Query(min_length=1, max_length=MAX_TEXT, description="The endpoint")],
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> dict[str, Any]:
        try:
            key = str(Target.parse(target))
        except UsageError:
            key = target
        store = store_of(request)
        if store.get_endpoint(key) is None:
            raise Problem(404, f"{target!r} is not in the inventory")
        return {"items": [observation_json(row) for row in store.observations(key, limit=limit)]}

    return api
