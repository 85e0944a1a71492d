"""``/api/v1/findings``: what is wrong right now, across the inventory: one item per finding of each
endpoint's newest observation, worst first.

Observations store finding ids (worst first) and the worst severity, not every finding's severity: the
worst finding gets the stored severity, the others their catalogue severity (docs/findings.md), which is what
the rules assign unless a policy profile raised one."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from tlsward.model.access import Principal
from tlsward.model.findings import FINDING_CATALOGUE, Severity
from tlsward.web.api.common import MAX_OFFSET, ApiRoute, problems
from tlsward.web.api.models import FindingPage, SeverityName
from tlsward.web.auth import store_of, viewer


def router() -> APIRouter:
    api = APIRouter(prefix="/findings", tags=["findings"], route_class=ApiRoute)

    @api.get("", response_model=FindingPage, responses=problems(400),
             summary="Current findings across endpoints (from each one's newest observation), worst first")
    def list_findings(
        request: Request,
        _: Annotated[Principal, Depends(viewer)],
        severity: Annotated[SeverityName | None, Query(description="Only this severity")] = None,
        min_severity: Annotated[SeverityName | None, Query(description="Only this severity or worse")] = None,
        id: Annotated[str | None, Query(max_length=64, description="Only this finding id (cert.expiring ...)")]
        = None,
        owner: Annotated[str | None, Query(max_length=512)] = None,
        team: Annotated[str | None, Query(max_length=512)] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
        offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    ) -> dict[str, Any]:
        exact = Severity.parse(severity) if severity else None
        floor = Severity.parse(min_severity) if min_severity else None
        items: list[tuple[Severity, dict[str, Any]]] = []
        for row in store_of(request).endpoint_summaries(owner=owner, team=team, with_findings=True):
            if row.observed_at is None:
                continue
            for position, finding_id in enumerate(row.finding_ids):
                if id is not None and finding_id != id:
                    continue
                spec = FINDING_CATALOGUE.get(finding_id)
                level = row.worst_severity if position == 0 and row.worst_severity is not None else \
                    spec.severity if spec is not None else row.worst_severity or Severity.INFO
                if (exact is not None and level != exact) or (floor is not None and level < floor):
                    continue
                items.append((level, {
                    "id": finding_id, "severity": level.name.lower(), "title": spec.title if spec else finding_id,
                    "endpoint": row.endpoint.target, "owner": row.endpoint.owner, "team": row.endpoint.team,
                    "observed_at": row.observed_at.isoformat()}))
        items.sort(key=lambda item: (-item[0], item[1]["endpoint"], item[1]["id"]))
        page = [item for _, item in items[offset:offset + limit]]
        return {"items": page, "total": len(items),
                "next_offset": offset + limit if offset + limit < len(items) else None}

    return api
