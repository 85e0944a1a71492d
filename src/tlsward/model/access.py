"""Who may do what in ``tlsward serve``: API tokens with roles, browser sessions, and the audit log."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import IntEnum


class Role(IntEnum):
    """Ordered, so "at least operator" is a comparison. viewer: read; operator: scan, ack, silence; admin: tokens
    and inventory edits."""

    VIEWER = 1
    OPERATOR = 2
    ADMIN = 3

    @classmethod
    def parse(cls, text: str) -> Role:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            raise ValueError(f"unknown role {text!r}; expected viewer, operator or admin") from None

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class ApiToken:
    """A token as stored: never the secret itself, only its hash; ``prefix`` identifies it to people."""

    id: int
    name: str
    role: Role
    prefix: str
    created_at: dt.datetime
    expires_at: dt.datetime | None = None
    revoked_at: dt.datetime | None = None
    last_used_at: dt.datetime | None = None

    def usable(self, now: dt.datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is asking: a token (directly or through a browser session), or anonymous read-only access."""

    name: str
    role: Role
    token_id: int | None = None
    session_id: str | None = None
    csrf_token: str | None = None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    at: dt.datetime
    actor: str
    action: str
    target: str
    detail: str = ""
    id: int | None = None
