"""The dashboards: server-rendered pages, one router per view."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from tlsward.web.auth import identify


def views_router() -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/")
    def home(request: Request) -> Response:
        if identify(request) is None:
            return RedirectResponse("/login?next=/", status_code=303)
        return RedirectResponse("/oncall", status_code=303)

    return router
