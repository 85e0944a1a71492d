"""What every dashboard page shares: the route class that sends browsers to the login form and answers other
errors as an HTML page, the template filters, and the per-app cache of daily history rollups."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import quote

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute

from tlsward.model.errors import StorageError, UsageError
from tlsward.model.findings import Severity
from tlsward.model.metrics import common_name
from tlsward.storage import Store
from tlsward.storage.dashboards import RollupCache
from tlsward.web.app import render, templates
from tlsward.web.auth import identify, store_of
from tlsward.web.problems import TITLES, Problem

_CACHE_LOCK = threading.Lock()


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def login_url(request: Request) -> str:
    """Where a browser without a session goes: the login form, coming back here afterwards (GET pages only:
    a form posted without a session starts again from the home page)."""
    back = request.url.path + (f"?{request.url.query}" if request.url.query else "") \
        if request.method in ("GET", "HEAD") else "/"
    return f"/login?next={quote(back, safe='/')}"


def error_page(request: Request, status: int, detail: str) -> HTMLResponse:
    if getattr(request.state, "principal", None) is None:
        try:
            request.state.principal = identify(request)
        except Problem:
            request.state.principal = None
    return render(request, "error.html", status=status, title=TITLES.get(status, "Error"), code=status,
                  detail=detail)


class PageRoute(APIRoute):
    """Routes that answer browsers: no credentials is a redirect to the login form; any other error (a role
    too low, a bad CSRF token, an unknown endpoint, bad query parameters, the database down) is an HTML page
    naming it, with the status code the API would use."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except Problem as problem:
                if problem.status == 401:
                    return RedirectResponse(login_url(request), status_code=303)
                return error_page(request, problem.status, problem.detail)
            except RequestValidationError as exc:
                first = exc.errors()[0] if exc.errors() else {}
                where = ".".join(str(part) for part in first.get("loc", ()) if part not in ("query", "body", "path"))
                return error_page(request, 400, f"{where}: {first.get('msg', 'invalid')}" if where else
                                  str(first.get("msg", "invalid input")))
            except UsageError as exc:
                return error_page(request, 400, str(exc))
            except StorageError as exc:
                return error_page(request, 503, f"the inventory database is unavailable: {exc}")

        return page_handler


def rollups_of(request: Request) -> RollupCache:
    """The app's cache of daily history rollups, created on first use."""
    state = request.app.state
    cache: RollupCache | None = getattr(state, "dashboard_rollups", None)
    if cache is None:
        with _CACHE_LOCK:
            cache = getattr(state, "dashboard_rollups", None)
            if cache is None:
                cache = RollupCache(store_of(request))
                state.dashboard_rollups = cache
    return cache


def store(request: Request) -> Store:
    return store_of(request)


# -- template filters ----------------------------------------------------------------------------------------


def days_left(moment: dt.datetime | None) -> float | None:
    return None if moment is None else (moment - now()).total_seconds() / 86400


def _days_text(moment: dt.datetime | None) -> str:
    days = days_left(moment)
    if days is None:
        return "-"
    if days <= 0:
        return f"expired {abs(days):.1f} d ago"
    return f"{days:.1f} d"


def _expiry_class(moment: dt.datetime | None) -> str:
    days = days_left(moment)
    if days is None:
        return ""
    return "sev-critical" if days <= 7 else "sev-high" if days <= 14 else "sev-medium" if days <= 30 else "ok"


def _ago(moment: dt.datetime | None) -> str:
    if moment is None:
        return "never"
    seconds = (now() - moment).total_seconds()
    if seconds < 0:
        return "in the future"
    if seconds < 90:
        return f"{seconds:.0f} s ago"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 172800:
        return f"{seconds / 3600:.0f} h ago"
    return f"{seconds / 86400:.0f} d ago"


def _utc(moment: dt.datetime | None) -> str:
    return "-" if moment is None else f"{moment.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC"


def _pct(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f} %"


def _severity(value: Severity | int | None) -> str:
    return "-" if value is None else Severity(value).name.lower()


def anchor(finding_id: str) -> str:
    """The anchor of a finding's section in docs/findings.md (GitHub's: the heading without its dots)."""
    return finding_id.replace(".", "")


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


templates.env.filters.update({
    "days_left": _days_text, "expiry_class": _expiry_class, "ago": _ago, "utc": _utc, "pct": _pct,
    "severity": _severity, "anchor": anchor, "cn": common_name, "ms": _ms,
    "short": lambda sha: (sha or "")[:16], "segment": lambda text: quote(str(text), safe=""),
})
