"""ACME problem documents (RFC 8555 section 6.7, RFC 7807): one exception type carries the error type, the HTTP
status and optional fields; the app turns it into ``application/problem+json``."""

from __future__ import annotations

import json
from typing import Any

NS = "urn:ietf:params:acme:error:"

# error type -> HTTP status when it is a response (challenge errors are documents inside a challenge object)
STATUS: dict[str, int] = {
    "malformed": 400, "badNonce": 400, "badSignatureAlgorithm": 400, "badPublicKey": 400, "badCSR": 400,
    "badRevocationReason": 400, "alreadyRevoked": 400, "rejectedIdentifier": 400, "unsupportedIdentifier": 400,
    "invalidContact": 400, "unsupportedContact": 400, "accountDoesNotExist": 400, "externalAccountRequired": 400,
    "unauthorized": 403, "orderNotReady": 403, "userActionRequired": 403, "serverInternal": 500,
    "rateLimited": 429, "alreadyReplaced": 409, "conflict": 409,
    "incorrectResponse": 403, "connection": 400, "dns": 400, "tls": 400, "caa": 403,
}


class AcmeProblem(Exception):
    """A refusal: ``kind`` is the part after ``urn:ietf:params:acme:error:``."""

    def __init__(self, kind: str, detail: str, *, status: int | None = None, headers: dict[str, str] | None = None,
                 **extra: Any) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail
        self.status = status if status is not None else STATUS.get(kind, 400)
        self.headers = headers or {}
        self.extra = extra

    def document(self) -> dict[str, Any]:
        return {"type": NS + self.kind, "detail": self.detail, "status": self.status, **self.extra}

    def json(self) -> str:
        return json.dumps(self.document())


def malformed(detail: str, **kw: Any) -> AcmeProblem:
    return AcmeProblem("malformed", detail, **kw)


def unauthorized(detail: str) -> AcmeProblem:
    return AcmeProblem("unauthorized", detail)
