"""API tokens, browser sessions and the audit log in the inventory database.

Token secrets are ``tlw_`` + 32 random bytes (URL-safe base64); only their SHA-256 is stored, so a database
copy does not leak working credentials, and the secret is shown once, when created. Session ids are stored
hashed for the same reason.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets

from sqlalchemy import delete, select, update

from tlsward.model.access import ApiToken, AuditEntry, Principal, Role
from tlsward.model.errors import UsageError
from tlsward.storage.store import Store
from tlsward.storage.tables import ApiTokenRow, AuditRow, WebSession

TOKEN_PREFIX = "tlw_"   # noqa: S105 - a public marker that makes leaked tokens greppable, not a secret
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)     # write last_used_at at most once a minute per token


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class AccessStore:
    def __init__(self, store: Store) -> None:
        self.store = store

    # -- tokens ----------------------------------------------------------------------------------------------

    def create_token(self, name: str, role: Role, now: dt.datetime,
                     expires_at: dt.datetime | None = None) -> tuple[str, ApiToken]:
        """A new token: the secret (show it once) and its record."""
        if not name.strip():
            raise UsageError("a token needs a name (who or what uses it)")
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self.store._transaction() as session:
            row = ApiTokenRow(name=name.strip(), role=int(role), secret_sha256=_digest(secret),
                              prefix=secret[:12], created_at=now, expires_at=expires_at)
            session.add(row)
            session.flush()
            return secret, _token(row)

    def tokens(self) -> list[ApiToken]:
        with self.store._transaction() as session:
            return [_token(row) for row in session.scalars(select(ApiTokenRow).order_by(ApiTokenRow.id))]

    def revoke(self, token_id_or_prefix: str, now: dt.datetime) -> ApiToken:
        """Revoke by id or by the prefix shown in `token list`; its browser sessions end too."""
        with self.store._transaction() as session:
            query = select(ApiTokenRow)
            query = query.where(ApiTokenRow.id == int(token_id_or_prefix)) if token_id_or_prefix.isdigit() else \
                query.where(ApiTokenRow.prefix.startswith(token_id_or_prefix, autoescape=True))
            rows = list(session.scalars(query))
            if len(rows) != 1:
                raise UsageError(f"{token_id_or_prefix!r} names {len(rows)} tokens; give the id or a longer prefix "
                                 "(`tlsward token list`)")
            row = rows[0]
            if row.revoked_at is None:
                row.revoked_at = now
            session.execute(delete(WebSession).where(WebSession.token_id == row.id))
            return _token(row)

    def authenticate(self, secret: str, now: dt.datetime) -> ApiToken | None:
        """The token with this secret if it is usable now (not revoked, not expired), else None."""
        if not secret.startswith(TOKEN_PREFIX) or len(secret) > 128:
            return None
        digest = _digest(secret)
        with self.store._transaction() as session:
            row = session.scalars(select(ApiTokenRow).where(ApiTokenRow.secret_sha256 == digest)).one_or_none()
            if row is None or not hmac.compare_digest(row.secret_sha256, digest):
                return None
            token = _token(row)
            if not token.usable(now):
                return None
            if row.last_used_at is None or now - row.last_used_at >= LAST_USED_RESOLUTION:
                row.last_used_at = now
            return token

    # -- browser sessions --------------------------------------------------------------------------------------

    def open_session(self, token: ApiToken, now: dt.datetime, ttl: dt.timedelta) -> tuple[str, str]:
        """(session id for the cookie, CSRF token for the forms)."""
        session_id, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        expires = now + ttl
        if token.expires_at is not None:
            expires = min(expires, token.expires_at)
        with self.store._transaction() as session:
            session.add(WebSession(id_sha256=_digest(session_id), token_id=token.id, csrf_token=csrf,
                                   created_at=now, expires_at=expires))
        return session_id, csrf

    def session_principal(self, session_id: str, now: dt.datetime) -> Principal | None:
        if not session_id or len(session_id) > 128:
            return None
        with self.store._transaction() as session:
            found = session.execute(
                select(WebSession, ApiTokenRow).join(ApiTokenRow, ApiTokenRow.id == WebSession.token_id)
                .where(WebSession.id_sha256 == _digest(session_id))).one_or_none()
            if found is None:
                return None
            web, row = found
            if web.expires_at <= now or not _token(row).usable(now):
                return None
            return Principal(row.name, Role(row.role), row.id, session_id, web.csrf_token)

    def close_session(self, session_id: str) -> None:
        with self.store._transaction() as session:
            session.execute(delete(WebSession).where(WebSession.id_sha256 == _digest(session_id)))

    def purge_sessions(self, now: dt.datetime) -> int:
        with self.store._transaction() as session:
            result = session.execute(delete(WebSession).where(WebSession.expires_at <= now))
            return int(getattr(result, "rowcount", 0) or 0)

    # -- audit -------------------------------------------------------------------------------------------------

    def audit(self, actor: str, action: str, target: str, detail: str, now: dt.datetime) -> None:
        with self.store._transaction() as session:
            session.add(AuditRow(at=now, actor=actor, action=action, target=target, detail=detail))

    def audit_entries(self, limit: int = 100) -> list[AuditEntry]:
        with self.store._transaction() as session:
            return [AuditEntry(row.at, row.actor, row.action, row.target, row.detail, row.id) for row in
                    session.scalars(select(AuditRow).order_by(AuditRow.at.desc(), AuditRow.id.desc()).limit(limit))]

    def touch(self, token_id: int, now: dt.datetime) -> None:
        with self.store._transaction() as session:
            session.execute(update(ApiTokenRow).where(ApiTokenRow.id == token_id).values(last_used_at=now))


def _token(row: ApiTokenRow) -> ApiToken:
    return ApiToken(id=row.id, name=row.name, role=Role(row.role), prefix=row.prefix, created_at=row.created_at,
                    expires_at=row.expires_at, revoked_at=row.revoked_at, last_used_at=row.last_used_at)
