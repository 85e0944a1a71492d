"""Authentication and authorization for every route: a Bearer token, or a browser session cookie opened by
logging in with a token; roles viewer < operator < admin; CSRF tokens on state-changing browser requests.

API clients send ``Authorization: Bearer tlw_...``; browsers log in once and then carry the ``tlsward_session``
cookie (HttpOnly, SameSite=Strict, Secure under HTTPS). A cookie-authenticated POST/PUT/PATCH/DELETE must
carry the session's CSRF token (``X-CSRF-Token`` header or ``csrf_token`` form field). Bearer requests need
none: a browser never attaches that header by itself.
"""

from __future__ import annotations

import datetime as dt
import hmac
from collections.abc import Awaitable, Callable

from fastapi import Request

from tlsward.model.access import Principal, Role
from tlsward.storage import Store
from tlsward.storage.access import AccessStore
from tlsward.web.problems import Problem
from tlsward.web.settings import WebSettings

SESSION_COOKIE = "tlsward_session"
CSRF_HEADER = "x-csrf-token"
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


def store_of(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def settings_of(request: Request) -> WebSettings:
    settings: WebSettings = request.app.state.settings
    return settings


def identify(request: Request) -> Principal | None:
    """Who sent this request, or None (no usable credentials). Does not enforce anything."""
    now = dt.datetime.now(dt.UTC)
    access = AccessStore(store_of(request))
    header = request.headers.get("authorization", "")
    if header:
        scheme, _, secret = header.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise Problem(401, "the Authorization header must be 'Bearer <token>'",
                          headers={"WWW-Authenticate": "Bearer"})
        token = access.authenticate(secret.strip(), now)
        if token is None:
            raise Problem(401, "the token is unknown, expired or revoked", headers={"WWW-Authenticate": "Bearer"})
        return Principal(token.name, token.role, token.id)
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        principal = access.session_principal(cookie, now)
        if principal is not None:
            return principal
    if settings_of(request).anonymous_read:
        return Principal("anonymous", Role.VIEWER)
    return None


def check_csrf(request: Request, principal: Principal, form_token: str | None = None) -> None:
    if principal.session_id is None or request.method not in UNSAFE:
        return
    sent = request.headers.get(CSRF_HEADER) or form_token or ""
    if not principal.csrf_token or not hmac.compare_digest(sent, principal.csrf_token):
        raise Problem(403, "missing or wrong CSRF token (reload the page and try again)")


def require(role: Role) -> Callable[[Request], Awaitable[Principal]]:
    """A FastAPI dependency: the caller, who must hold at least ``role``; 401 without credentials, 403 with too
    little. Cookie-authenticated unsafe requests must also pass the CSRF check (JSON clients: the header;
    forms post ``csrf_token``, checked by the form handler through :func:`check_csrf`)."""

    async def dependency(request: Request) -> Principal:
        principal = identify(request)
        if principal is None:
            raise Problem(401, "log in or send 'Authorization: Bearer <token>' (`tlsward token create`)",
                          headers={"WWW-Authenticate": "Bearer"})
        if principal.role < role:
            raise Problem(403, f"this needs the {role.label} role; {principal.name} is {principal.role.label}")
        if request.method in UNSAFE and principal.session_id is not None and \
                "application/x-www-form-urlencoded" not in request.headers.get("content-type", "") and \
                "multipart/form-data" not in request.headers.get("content-type", ""):
            check_csrf(request, principal)
        request.state.principal = principal
        return principal

    return dependency


viewer = require(Role.VIEWER)
operator = require(Role.OPERATOR)
admin = require(Role.ADMIN)
