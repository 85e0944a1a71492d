"""``/api/v1/scans``: start a scan of one endpoint (operator), follow it (JSON or Server-Sent Events) and read
its result, the same ``tlsward scan --json`` object, recorded in the inventory like ``scan --save``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, StreamingResponse

from tlsward.model.access import Principal
from tlsward.report.json import RESULT_SCHEMA, load_schema
from tlsward.web.api.common import ApiRoute, audit, problems
from tlsward.web.api.endpoints import canonical
from tlsward.web.api.models import ScanAccepted, ScanIn, ScanJob
from tlsward.web.auth import operator, settings_of, viewer
from tlsward.web.problems import Problem
from tlsward.web.scans import QueueFull, ScanManager, job_events, scans_of
from tlsward.web.scans import ScanJob as Job

JobId = Annotated[str, Path(max_length=64, description="The id POST /scans returned")]


def _job(request: Request, job_id: str) -> tuple[ScanManager, Job]:
    manager = scans_of(request.app)
    job = manager.get(job_id)
    if job is None:
        raise Problem(404, f"no scan job {job_id[:64]!r} (jobs are kept in memory; the newest "
                           f"{settings_of(request).scan_keep} finished ones)")
    return manager, job


def router() -> APIRouter:
    api = APIRouter(tags=["scans"], route_class=ApiRoute)

    @api.post("/scans", status_code=202, response_model=ScanAccepted, responses=problems(400, 429),
              summary="Scan one endpoint now (operator); follow it at the returned location")
    async def start_scan(request: Request, body: ScanIn,
                         principal: Annotated[Principal, Depends(operator)]) -> JSONResponse:
        target = canonical(body.target, sni=body.sni or None, connect=body.connect or None)
        try:
            job = scans_of(request.app).submit(target, deep=body.deep, requested_by=principal.name)
        except QueueFull as exc:
            raise Problem(429, str(exc), headers={"Retry-After": "10"}) from None
        await run_in_threadpool(audit, request, principal, "scan.start", str(target),
                                f"job {job.id}{' deep' if body.deep else ''}"
                                f"{f' sni={target.sni}' if body.sni else ''}"
                                f"{f' connect={target.connect}' if target.connect else ''}")
        location = f"{request.url.path.rstrip('/')}/{job.id}"
        return JSONResponse({"id": job.id, "status": "queued", "target": str(target), "location": location},
                            status_code=202, headers={"Location": location})

    @api.get("/scans/{job_id}", response_model=ScanJob, responses=problems(404),
             summary="A scan job: its status and, once done, the scan result")
    async def get_scan(request: Request, _: Annotated[Principal, Depends(viewer)], job_id: JobId) -> dict[str, Any]:
        return _job(request, job_id)[1].to_json()

    @api.get("/scans/{job_id}/events", response_class=StreamingResponse, responses={
        200: {"description": "Server-Sent Events: `event: status` at each change (queued, running), then "
                             "`event: done` with the job as GET /scans/{id} returns it (or `event: timeout`); "
                             "the stream then ends. `data:` is one line of JSON.",
              "content": {"text/event-stream": {"schema": {"type": "string"}}}}, **problems(404)},
        summary="Follow a scan job as Server-Sent Events until it ends")
    async def scan_events(request: Request, _: Annotated[Principal, Depends(viewer)], job_id: JobId) -> Response:
        job = _job(request, job_id)[1]
        return StreamingResponse(job_events(job, settings_of(request).scan_events_timeout_s),
                                 media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    @api.get(f"/schemas/{RESULT_SCHEMA}", tags=["schemas"], response_model=dict[str, Any],
             summary="The JSON Schema of a scan result (`tlsward scan --json`, a scan job's result)")
    def scan_result_schema(_: Annotated[Principal, Depends(viewer)]) -> dict[str, Any]:
        return load_schema(RESULT_SCHEMA)

    return api
