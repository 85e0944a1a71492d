"""``/api/v1/alerts`` and ``/api/v1/silences``: what the monitor raised, acknowledging it, and muting it on
purpose (silences and maintenance windows), as ``tlsward alerts``. Changes are audited."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from tlsward.model.access import Principal
from tlsward.model.alerts import AlertStatus
from tlsward.model.durations import parse_duration
from tlsward.model.monitor import Silence
from tlsward.report.alerts_json import alert_json, silence_json
from tlsward.storage.alerts import AlertStore
from tlsward.web.api.common import MAX_ID, ApiRoute, audit, now, problems
from tlsward.web.api.models import AckIn, AckResult, AlertList, SilenceIn, SilenceList
from tlsward.web.api.models import Silence as SilenceOut
from tlsward.web.auth import operator, store_of, viewer
from tlsward.web.problems import Problem

MAX_SILENCE = dt.timedelta(days=3660)    # ten years: longer is a typo, not a maintenance window


def _utc(value: dt.datetime | None, what: str) -> dt.datetime | None:
    """An aware time in UTC; naive times are refused (a silence an hour off is worse than none)."""
    if value is None:
        return None
    if value.tzinfo is None or value.utcoffset() is None:
        raise Problem(400, f"{what} {value.isoformat()!r}: give a UTC offset (e.g. +00:00 or Z)")
    try:
        return value.astimezone(dt.UTC)
    except (OverflowError, ValueError):
        raise Problem(400, f"{what} {value.isoformat()!r} is out of range") from None


def window(body: SilenceIn, moment: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """(starts, ends) of a requested silence, or a 400 naming what is wrong with it."""
    starts = _utc(body.starts_at, "starts_at") or moment
    if (body.duration is None) == (body.ends_at is None):
        raise Problem(400, "give duration or ends_at (one of the two)")
    if body.duration is not None:
        seconds = parse_duration(body.duration, "duration")
        if seconds > MAX_SILENCE.total_seconds():
            raise Problem(400, f"duration {body.duration!r}: at most {MAX_SILENCE.days}d")
        try:
            ends = starts + dt.timedelta(seconds=seconds)
        except OverflowError:
            raise Problem(400, f"duration {body.duration!r} ends past the year 9999") from None
    else:
        given = _utc(body.ends_at, "ends_at")
        assert given is not None
        ends = given
    if ends <= starts:
        raise Problem(400, "the silence ends before it starts")
    if ends - starts > MAX_SILENCE:
        raise Problem(400, f"a silence lasts at most {MAX_SILENCE.days} days")
    if ends <= moment:
        raise Problem(400, "the silence would already be over")
    return starts, ends


def router() -> APIRouter:
    api = APIRouter(tags=["alerts"], route_class=ApiRoute)

    @api.get("/alerts", response_model=AlertList, responses=problems(400),
             summary="Alerts raised by the monitor: firing (worst first), resolved, or all")
    def list_alerts(
        request: Request,
        _: Annotated[Principal, Depends(viewer)],
        status: Annotated[Literal["firing", "resolved", "all"], Query()] = "firing",
        limit: Annotated[int, Query(ge=1, le=1000)] = 500,
    ) -> dict[str, Any]:
        records = AlertStore(store_of(request)).load(status=None if status == "all" else AlertStatus(status),
                                                     limit=limit)
        records.sort(key=lambda r: (r.alert.status is not AlertStatus.FIRING, -r.alert.severity))
        return {"items": [alert_json(record) for record in records]}

    @api.post("/alerts/ack", response_model=AckResult, responses=problems(400, 404),
              summary="Acknowledge firing alerts by key or key prefix: no reminders until resolved or escalated "
                      "(operator)")
    def ack_alerts(request: Request, body: AckIn, principal: Annotated[Principal, Depends(operator)]) -> dict[str, Any]:
        count = AlertStore(store_of(request)).ack(body.key, principal.name, now())
        if not count:
            raise Problem(404, f"no firing alert has a key starting with {body.key!r}")
        audit(request, principal, "alert.ack", body.key, f"{count} alert(s)")
        return {"acknowledged": count}

    @api.get("/silences", response_model=SilenceList, summary="Silences and maintenance windows")
    def list_silences(
        request: Request,
        _: Annotated[Principal, Depends(viewer)],
        include_expired: Annotated[bool, Query(description="Those already over too")] = False,
    ) -> dict[str, Any]:
        moment = now()
        found = AlertStore(store_of(request)).silences(active_at=moment, include_expired=include_expired)
        return {"items": [silence_json(silence, moment) for silence in found]}

    @api.post("/silences", status_code=201, response_model=SilenceOut, responses=problems(400),
              summary="Hold back notifications of matching alerts for a while, or during a window (operator)")
    def add_silence(request: Request, response: Response, body: SilenceIn,
                    principal: Annotated[Principal, Depends(operator)]) -> dict[str, Any]:
        moment = now()
        starts, ends = window(body, moment)
        matchers = tuple(sorted((name, value) for name, value in body.matchers.items()))
        if any(not name or not value for name, value in matchers):
            raise Problem(400, "matchers: every label and value must be non-empty")
        saved = AlertStore(store_of(request)).add_silence(
            Silence(matchers, starts, ends, principal.name, body.comment), moment)
        audit(request, principal, "silence.add", f"silence {saved.id}",
              f"{', '.join(f'{k}={v}' for k, v in saved.matchers)} {starts.isoformat()} .. {ends.isoformat()}")
        response.headers["Location"] = f"{request.url.path.rstrip('/')}/{saved.id}"
        return silence_json(saved, moment)

    @api.delete("/silences/{silence_id}", status_code=204, response_class=Response, responses=problems(404),
                summary="End a silence now (operator)")
    def end_silence(request: Request, principal: Annotated[Principal, Depends(operator)],
                    silence_id: Annotated[int, Path(ge=1, le=MAX_ID)]) -> Response:
        if not AlertStore(store_of(request)).expire_silence(silence_id, now()):
            raise Problem(404, f"no active or scheduled silence {silence_id}")
        audit(request, principal, "silence.end", f"silence {silence_id}")
        return Response(status_code=204)

    return api
