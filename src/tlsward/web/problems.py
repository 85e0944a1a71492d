"""Errors as RFC 9457 problem details (``application/problem+json``): a type, a title, the status and a one-line
detail naming the input. Never a stack trace, never a 500 for bad input."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_TYPE = "https://tlsward.invalid/problems/"
TITLES = {400: "Bad request", 401: "Authentication required", 403: "Forbidden", 404: "Not found",
          405: "Method not allowed", 409: "Conflict", 413: "Request body too large", 415: "Unsupported media type",
          422: "Invalid input", 429: "Too many requests", 500: "Internal error", 503: "Unavailable"}


class Problem(Exception):
    """Raise anywhere in a request to answer with a problem document."""

    def __init__(self, status: int, detail: str, *, extra: dict[str, Any] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.extra, self.headers = status, detail, extra or {}, headers or {}


def problem_response(status: int, detail: str, instance: str = "", *, extra: dict[str, Any] | None = None,
                     headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"type": f"{PROBLEM_TYPE}{status}", "title": TITLES.get(status, "Error"), "status": status,
            "detail": detail, **({"instance": instance} if instance else {}), **(extra or {})}
    return JSONResponse(body, status_code=status, media_type="application/problem+json", headers=headers)


async def on_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Problem)
    return problem_response(exc.status, exc.detail, request.url.path, extra=exc.extra, headers=exc.headers)


async def on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(getattr(exc, "headers", None) or {})
    if exc.status_code == 405:
        headers["Allow"] = allowed_methods(request)
    return problem_response(exc.status_code, str(exc.detail), request.url.path, headers=headers or None)


METHODS = ("DELETE", "GET", "HEAD", "PATCH", "POST", "PUT")


def allowed_methods(request: Request) -> str:
    """Every method some route serves at this path. Starlette's 405 names only the first route whose path
    matched, and GET and POST /api/v1/endpoints are two routes (in included routers, asked the same way)."""
    from starlette.routing import Match

    return ", ".join(method for method in METHODS
                     if any(route.matches({**request.scope, "method": method})[0] is Match.FULL
                            for route in request.app.router.routes))


async def on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {}
    where = ".".join(str(part) for part in first.get("loc", ()) if part not in ("body",))
    detail = f"{where}: {first.get('msg', 'invalid')}" if where else str(first.get("msg", "invalid input"))
    return problem_response(400, detail, request.url.path,
                            extra={"errors": [{"loc": [str(p) for p in e.get("loc", ())], "msg": e.get("msg", "")}
                                              for e in exc.errors()[:20]]})


async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    """A bug: logged with its traceback server-side, one line to the client."""
    import logging

    logging.getLogger("tlsward.web").exception("unhandled error on %s %s", request.method, request.url.path)
    return problem_response(500, "internal error (logged on the server)", request.url.path)
