"""The ``tlsward serve`` application: security headers, problem details, login, the API and views routers,
static assets (all served locally: it must work air-gapped) and ``/metrics``."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Form, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tlsward import __version__
from tlsward.model.access import Role
from tlsward.storage import Store, open_store
from tlsward.storage.access import AccessStore
from tlsward.web.auth import SESSION_COOKIE, check_csrf, identify, settings_of, store_of
from tlsward.web.problems import (
    Problem,
    on_http_error,
    on_problem,
    on_unexpected,
    on_validation_error,
    problem_response,
)
from tlsward.web.settings import WebSettings

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'")


class SecurityHeaders:
    """Headers on every response, and a cap on request bodies (413 before reading more)."""

    def __init__(self, app: ASGIApp, settings: WebSettings) -> None:
        self.app, self.settings = app, settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.settings.max_body_bytes):
            response = problem_response(413, f"request bodies are limited to {self.settings.max_body_bytes} bytes")
            await response(scope, receive, send)
            return
        if length is None:
            receive = self._capped(receive)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                extra = [(b"content-security-policy", CSP.encode()), (b"x-content-type-options", b"nosniff"),
                         (b"referrer-policy", b"no-referrer"), (b"x-frame-options", b"DENY"),
                         (b"cross-origin-opener-policy", b"same-origin")]
                if self.settings.https:
                    extra.append((b"strict-transport-security", b"max-age=31536000; includeSubDomains"))
                headers.extend((name, value) for name, value in extra if name not in names)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _capped(self, receive: Receive) -> Receive:
        """A body without Content-Length (chunked) is counted as it arrives: past the cap, reading it raises a
        413, which the app answers as a problem like any other HTTP error."""
        limit, seen = self.settings.max_body_bytes, 0

        async def capped_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise StarletteHTTPException(413, f"request bodies are limited to {limit} bytes")
            return message

        return capped_receive


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """A page, with what every page needs: the caller (for the nav and the CSRF token) and the version."""
    principal = getattr(request.state, "principal", None)
    return templates.TemplateResponse(request, template, {"principal": principal, "version": __version__,
                                                          "Role": Role, **context}, status_code=status)


def create_app(settings: WebSettings, store: Store | None = None,
               mounts: Sequence[tuple[str, ASGIApp]] = ()) -> FastAPI:
    """The app over the inventory at ``settings.db_url`` (or an already open ``store``, which the caller keeps);
    ``mounts`` are other ASGI apps served under a path prefix (``/acme``, ``/ca``), with their own auth."""
    owned = store is None
    opened = store if store is not None else open_store(settings.db_url)

    @contextlib.asynccontextmanager
    async def lifespan(application: FastAPI) -> AsyncIterator[None]:
        yield
        scans = getattr(application.state, "scans", None)   # created by the first POST /api/v1/scans
        if scans is not None:
            await scans.close()
        if owned:
            opened.close()

    app = FastAPI(title="tlsward", version=__version__, openapi_url="/api/v1/openapi.json", docs_url=None,
                  redoc_url=None, lifespan=lifespan,
                  description="The tlsward JSON API: endpoints, certificates, observations, scans, findings, "
                  "alerts, SLIs. Authenticate with `Authorization: Bearer <token>`; errors are RFC 9457 problems.")
    app.state.settings = settings
    app.state.store = opened

    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(Exception, on_unexpected)
    app.add_middleware(SecurityHeaders, settings=settings)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    for prefix, mounted in mounts:
        app.mount(prefix, mounted)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    @app.get("/login", include_in_schema=False, response_class=HTMLResponse)
    def login_form(request: Request, error: str = "") -> HTMLResponse:
        return render(request, "login.html", error=error[:200])

    @app.post("/login", include_in_schema=False)
    def login(request: Request, token: str = Form(..., max_length=128), next: str = Form("/")) -> Response:
        now = dt.datetime.now(dt.UTC)
        access = AccessStore(store_of(request))
        found = access.authenticate(token.strip(), now)
        if found is None:
            return render(request, "login.html", status=401, error="That token is unknown, expired or revoked.")
        session_id, _ = access.open_session(found, now, settings_of(request).session_ttl)
        access.audit(found.name, "login", "web", "", now)
        target = next if next.startswith("/") and not next.startswith("//") else "/"
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(SESSION_COOKIE, session_id, httponly=True, samesite="strict",
                            secure=settings_of(request).https, max_age=int(settings_of(request).session_ttl
                                                                           .total_seconds()), path="/")
        return response

    @app.post("/logout", include_in_schema=False)
    def logout(request: Request, csrf_token: str = Form("")) -> Response:
        principal = identify(request)
        if principal is not None and principal.session_id is not None:
            check_csrf(request, principal, csrf_token)
            AccessStore(store_of(request)).close_session(principal.session_id)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    from tlsward.web.api import api_router
    from tlsward.web.views import views_router

    app.include_router(api_router(), prefix="/api/v1")
    app.include_router(views_router())
    if settings.metrics:
        from tlsward.exporter.app import MetricsApp

        # A route, not a mount (a mount redirects /metrics to /metrics/); an ASGI instance as the endpoint is
        # called as an app by Starlette.
        app.router.routes.append(Route("/metrics", MetricsApp(app.state.store), methods=["GET", "HEAD"],
                                       include_in_schema=False))
    return app
