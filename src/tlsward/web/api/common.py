"""What every API router shares: the route class that turns tlsward errors into problem details, the
documented error responses, input hygiene, pagination cursors and the audit log."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from fastapi.security import APIKeyCookie, HTTPBearer
from pydantic import BaseModel, ConfigDict, model_validator

from tlsward.model.access import Principal
from tlsward.model.errors import StorageError, UsageError
from tlsward.storage.access import AccessStore
from tlsward.web.auth import SESSION_COOKIE, store_of
from tlsward.web.problems import TITLES, Problem

# Declared only so that the OpenAPI document says how to authenticate; `tlsward.web.auth.require` enforces it.
bearer = HTTPBearer(auto_error=False, scheme_name="token",
                    description="An API token: `tlsward token create NAME --role viewer|operator|admin`.")
session_cookie = APIKeyCookie(name=SESSION_COOKIE, auto_error=False, scheme_name="session",
                              description="The browser session opened by POST /login; unsafe methods also need "
                                          "the X-CSRF-Token header.")

MAX_TEXT = 512            # longest free-text query parameter or body string (targets, owners, keys)
MAX_OFFSET = 10_000_000
MAX_ID = 2**63 - 1        # database integer ids: anything larger cannot name a row (and overflows SQLite)
CURSOR_PREFIX = "t1:"     # cursors are base64url("t1:" + the last target of the page), opaque to clients


class ApiRoute(APIRoute):
    """Routes whose handlers may raise tlsward's own errors: a UsageError (bad input the domain caught, such
    as an unparseable target) is a 400 problem naming it, a StorageError (database unreachable or locked)
    a 503. Everything else keeps the app's handling."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route_handler(request: Request) -> Response:
            # Every query parameter of this API is a single value: a repeated one is an error, not "the last
            # one wins" (which would silently ignore what the caller meant by the others).
            keys = request.query_params.keys()
            repeated = sorted({key for key in keys if len(request.query_params.getlist(key)) > 1})
            if repeated:
                raise Problem(400, f"query parameter {repeated[0]!r} is given more than once; give it once")
            try:
                return await handler(request)
            except UsageError as exc:
                raise Problem(400, str(exc)) from None
            except StorageError as exc:
                raise Problem(503, f"the inventory database is unavailable: {exc}",
                              headers={"Retry-After": "5"}) from None

        return route_handler


PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object", "title": "Problem",
    "description": "RFC 9457 problem details: the status and one line naming the input at fault.",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "format": "uri"}, "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599}, "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {"type": "array", "description": "For malformed parameters or bodies: each error and where.",
                   "items": {"type": "object", "properties": {"loc": {"type": "array", "items": {"type": "string"}},
                                                              "msg": {"type": "string"}}}},
    },
}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI responses for these problem statuses, plus what any API route may answer: 400 (a malformed
    parameter or body), 503 (the database is unavailable) and ``4XX`` for the rest (401, 403, 405, 413 ...).
    Every error is ``application/problem+json``; declaring 4XX also keeps FastAPI from documenting the 422 it
    never sends (the app answers validation errors with 400)."""
    described: dict[int | str, dict[str, Any]] = {
        status: {"description": TITLES.get(status, "Error"),
                 "content": {"application/problem+json": {"schema": PROBLEM_SCHEMA}}}
        for status in sorted({400, 503, *statuses})}
    described["4XX"] = {"description": "Any other client error (401 unauthenticated, 403 forbidden, "
                                       "413 body too large ...)",
                        "content": {"application/problem+json": {"schema": PROBLEM_SCHEMA}}}
    return described


def unclean(text: str) -> bool:
    """Text that cannot be stored or shown as given: control characters (NUL breaks PostgreSQL text, the rest
    breaks logs and terminals) and lone surrogates (not encodable as UTF-8)."""
    return any(ord(ch) < 0x20 or ord(ch) == 0x7F or 0xD800 <= ord(ch) <= 0xDFFF for ch in text)


def clean(value: str, what: str) -> str:
    if unclean(value):
        raise Problem(400, f"{what}: control characters are not allowed")
    return value


class Body(BaseModel):
    """Request bodies: unknown fields are an error (a typo must not be ignored), and no string may carry
    control characters."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @model_validator(mode="after")
    def _no_control_characters(self) -> Body:
        for name in type(self).model_fields:
            value = getattr(self, name)
            if any(unclean(text) for text in _strings(value)):
                raise ValueError(f"{name}: control characters are not allowed")
        return self


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for key, item in value.items() for text in (*_strings(key), *_strings(item))]
    if isinstance(value, list | tuple):
        return [text for item in value for text in _strings(item)]
    return []


async def clean_request(request: Request) -> None:
    """A router dependency: query and path parameters with control characters are a 400 before any handler
    or database sees them."""
    for name, value in request.query_params.multi_items():
        clean(value, name)
        clean(name, "query parameter name")
    for name, value in request.path_params.items():
        if isinstance(value, str):
            clean(value, name)


def encode_cursor(last_target: str) -> str:
    return base64.urlsafe_b64encode((CURSOR_PREFIX + last_target).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    """The target a page ended with; a 400 for anything this API did not hand out."""
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = ""
    if not text.startswith(CURSOR_PREFIX):
        raise Problem(400, f"cursor {cursor[:40]!r} is not one this API returned (use the 'next' of a page)")
    return text[len(CURSOR_PREFIX):]


def audit(request: Request, principal: Principal, action: str, target: str, detail: str = "") -> None:
    """One audit-log line for a change made through the API (read with GET /api/v1/audit)."""
    AccessStore(store_of(request)).audit(principal.name, action, target, detail[:1000], dt.datetime.now(dt.UTC))


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
