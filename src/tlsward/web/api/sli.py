"""``/api/v1/sli``: handshake SLIs over a window of probe history, per owner or team: the ``tlsward.slo/1``
object of ``tlsward report slo --json`` (docs/slo.md)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request

from tlsward.model.access import Principal
from tlsward.model.slo import parse_target, parse_window
from tlsward.report.slo_json import report_json
from tlsward.storage.reports import slo_report
from tlsward.web.api.common import ApiRoute, now, problems
from tlsward.web.api.models import SloReport
from tlsward.web.auth import store_of, viewer


def router() -> APIRouter:
    api = APIRouter(prefix="/sli", tags=["sli"], route_class=ApiRoute)

    @api.get("", response_model=SloReport, responses=problems(400),
             summary="Handshake success, valid certificates, versions, ciphers and latency per owner or team")
    def get_sli(
        request: Request,
        _: Annotated[Principal, Depends(viewer)],
        window: Annotated[str, Query(max_length=16, json_schema_extra={"pattern": "^[1-9][0-9]{0,6}[dhm]$"},
                                     description="How far back from now: 30d, 12h or 90m (at most 3660d)")]
        = "30d",
        by: Annotated[Literal["owner", "team"], Query(description="Group endpoints by")] = "owner",
        target: Annotated[str | None, Query(max_length=32, json_schema_extra={"pattern": r"^[0-9]{1,3}(\.[0-9]+)?$"},
                                            description="Handshake success target in %, above 0 and at most 100, "
                                                        "such as 99.9")] = None,
    ) -> dict[str, Any]:
        span = parse_window(window, "window")
        target_pct = parse_target(target, "target") if target is not None else None
        until = now()
        report = slo_report(store_of(request), until - span, until, by=by, target=target_pct)
        return report_json(report, window)

    return api
