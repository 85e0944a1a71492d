"""``/api/v1/endpoints``: the inventory, a page at a time (keyset pagination by target, so the last page of
100,000 endpoints is as fast as the first), one endpoint in full, and adding or removing one (admin)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from tlsward.model.access import Principal
from tlsward.model.errors import UsageError
from tlsward.model.inventory import EndpointRecord, clean_tags
from tlsward.model.target import Target
from tlsward.report.inventory_json import (
    certificate_json,
    endpoint_json,
    observation_json,
    summary_json,
    summary_of,
)
from tlsward.storage import Store
from tlsward.web.api.common import MAX_OFFSET, MAX_TEXT, ApiRoute, audit, decode_cursor, encode_cursor, now, problems
from tlsward.web.api.models import EndpointDetail, EndpointIn, EndpointPage
from tlsward.web.auth import admin, store_of, viewer
from tlsward.web.problems import Problem

DEFAULT_PAGE = 50
MAX_PAGE = 500
DETAIL_OBSERVATIONS = 10
Filter = Annotated[str | None, Query(max_length=MAX_TEXT)]


def canonical(text: str, *, sni: str | None = None, connect: str | None = None) -> Target:
    """The target as the inventory keys it; a 400 naming the input when it is not a target."""
    try:
        return Target.parse(text, sni=sni, connect=connect)
    except UsageError as exc:
        # The parser names the CLI's flags; here they are body fields.
        raise Problem(400, str(exc).replace("--sni ", "sni ").replace("--connect ", "connect ")) from None


def detail(store: Store, target: str, observations: int = DETAIL_OBSERVATIONS) -> dict[str, Any] | None:
    """One endpoint in full: the list line, how it is reached, its certificates and newest observations."""
    record = store.get_endpoint(target)
    if record is None:
        return None
    moment = now()
    chain = store.certificates(record.target)
    history = store.observations(record.target, limit=observations)
    latest, leaf = store.latest(record.target)
    return {**summary_json(summary_of(record, latest, leaf), moment), **endpoint_json(record),
            "certificates": [{**certificate_json(cert, moment), "position": position} for position, cert in chain],
            "observations": [observation_json(row) for row in history]}


def router() -> APIRouter:
    api = APIRouter(prefix="/endpoints", tags=["endpoints"], route_class=ApiRoute)

    @api.get("", response_model=EndpointPage, responses=problems(400),
             summary="List endpoints, a page at a time, with their last result and leaf")
    def list_endpoints(
        request: Request,
        _: Annotated[Principal, Depends(viewer)],
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Endpoints per page")] = DEFAULT_PAGE,
        cursor: Annotated[str | None, Query(max_length=2 * MAX_TEXT,
                                            description="The 'next' of the previous page")] = None,
        offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Skip this many first (instead of a "
                                     "cursor; slower deep into a large inventory)")] = 0,
        owner: Filter = None,
        team: Filter = None,
        tag: Filter = None,
        issuer: Annotated[str | None, Query(max_length=MAX_TEXT, description="Leaf issuer contains this "
                                            "(case-insensitive)")] = None,
        days_left: Annotated[float | None, Query(ge=-36600, le=36600, description="Leaf expires within this "
                                                 "many days")] = None,
        failing: Annotated[bool | None, Query(description="true: the last scan failed; false: it did not")]
        = None,
        q: Annotated[str | None, Query(max_length=MAX_TEXT, description="Target contains this")] = None,
    ) -> dict[str, Any]:
        if cursor is not None and offset:
            raise Problem(400, "give cursor or offset, not both")
        after = decode_cursor(cursor) if cursor is not None else None
        store = store_of(request)
        moment = now()
        filters: dict[str, Any] = {"owner": owner, "team": team, "tag": tag, "issuer": issuer,
                                   "days_left_max": days_left, "failing": failing, "q": q, "now": moment}
        rows = store.endpoint_summaries(**filters, after=after, offset=offset, limit=limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        return {"items": [summary_json(row, moment) for row in rows],
                "next": encode_cursor(rows[-1].endpoint.target) if more else None,
                "total": store.count_endpoints(**filters)}

    @api.get("/{target:path}", response_model=EndpointDetail, responses=problems(404),
             summary="One endpoint: its last result, certificates and newest observations")
    def get_endpoint(
        request: Request,
        _: Annotated[Principal, Depends(viewer)],
        target: Annotated[str, Path(max_length=MAX_TEXT, description="The target, URL-encoded")],
        observations: Annotated[int, Query(ge=1, le=100, description="How many newest observations")]
        = DETAIL_OBSERVATIONS,
    ) -> dict[str, Any]:
        try:
            key = str(Target.parse(target))
        except UsageError:
            key = target    # not a target at all: certainly not in the inventory
        found = detail(store_of(request), key, observations)
        if found is None:
            raise Problem(404, f"{target!r} is not in the inventory")
        return found

    @api.post("", response_model=EndpointDetail, status_code=201, responses={200: {
        "description": "Updated (the target was already in the inventory)", "model": EndpointDetail},
        **problems(400)}, summary="Add an endpoint, or update the one with the same target (admin)")
    def add_endpoint(request: Request, response: Response, body: EndpointIn,
                     principal: Annotated[Principal, Depends(admin)]) -> dict[str, Any]:
        parsed = canonical(body.target, sni=body.sni or None, connect=body.connect or None)
        store = store_of(request)
        existed = store.get_endpoint(str(parsed)) is not None
        record = store.upsert_endpoint(EndpointRecord(
            target=str(parsed), host=parsed.host, port=parsed.port, scheme=parsed.scheme, sni=parsed.sni,
            connect=parsed.connect, owner=body.owner or None, team=body.team or None,
            environment=body.environment or None, tags=clean_tags(body.tags), probe_interval_s=body.probe_interval_s,
            enabled=body.enabled))
        audit(request, principal, "endpoint.update" if existed else "endpoint.add", record.target,
              f"owner={record.owner or '-'} team={record.team or '-'} tags={','.join(record.tags) or '-'}")
        response.status_code = 200 if existed else 201
        response.headers["Location"] = f"{request.url.path.rstrip('/')}/{quote(record.target, safe='')}"
        found = detail(store, record.target)
        assert found is not None
        return found

    @api.delete("/{target:path}", status_code=204, response_class=Response, responses=problems(400, 404),
                summary="Remove an endpoint and its history; certificates stay (admin)")
    def remove_endpoint(request: Request, principal: Annotated[Principal, Depends(admin)],
                        target: Annotated[str, Path(max_length=MAX_TEXT, description="The target, URL-encoded")]
                        ) -> Response:
        key = str(canonical(target))
        if not store_of(request).remove_endpoint(key):
            raise Problem(404, f"{target!r} is not in the inventory")
        audit(request, principal, "endpoint.remove", key)
        return Response(status_code=204)

    return api
