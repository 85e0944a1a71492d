"""API tokens, sessions and the audit log, on SQLite and PostgreSQL: secrets never stored, expiry and
revocation honoured, sessions end with their token."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from tests.unit.storage.builders import NOW
from tlsward.model.access import Role
from tlsward.model.errors import UsageError
from tlsward.storage import Store
from tlsward.storage.access import AccessStore
from tlsward.storage.tables import ApiTokenRow

HOUR = dt.timedelta(hours=1)


def test_a_token_authenticates_until_revoked_and_its_secret_is_not_stored(store: Store) -> None:
    access = AccessStore(store)
    secret, token = access.create_token("ana", Role.OPERATOR, NOW)
    assert secret.startswith("tlw_") and len(secret) > 40 and token.prefix == secret[:12]
    with store.engine.connect() as connection:
        stored = connection.execute(select(ApiTokenRow.secret_sha256)).scalars().all()
    assert secret not in stored and all(len(value) == 64 for value in stored)
    found = access.authenticate(secret, NOW)
    assert found is not None and (found.name, found.role) == ("ana", Role.OPERATOR)
    assert access.authenticate(secret + "x", NOW) is None and access.authenticate("garbage", NOW) is None
    access.revoke(str(token.id), NOW + HOUR)
    assert access.authenticate(secret, NOW + 2 * HOUR) is None


def test_expired_tokens_and_their_sessions_stop_working(store: Store) -> None:
    access = AccessStore(store)
    secret, token = access.create_token("ci", Role.VIEWER, NOW, expires_at=NOW + HOUR)
    session_id, csrf = access.open_session(token, NOW, dt.timedelta(hours=12))
    principal = access.session_principal(session_id, NOW + dt.timedelta(minutes=30))
    assert principal is not None and principal.csrf_token == csrf and principal.role is Role.VIEWER
    assert access.session_principal(session_id, NOW + 2 * HOUR) is None, "a session never outlives its token"
    assert access.authenticate(secret, NOW + 2 * HOUR) is None


def test_revoking_ends_sessions_and_prefixes_must_be_unambiguous(store: Store) -> None:
    access = AccessStore(store)
    _, first = access.create_token("a", Role.ADMIN, NOW)
    access.create_token("b", Role.ADMIN, NOW)
    session_id, _ = access.open_session(first, NOW, HOUR)
    with pytest.raises(UsageError, match="names 2 tokens"):
        access.revoke("tlw_", NOW)
    access.revoke(first.prefix, NOW)
    assert access.session_principal(session_id, NOW) is None
    assert [t.revoked_at is not None for t in access.tokens()] == [True, False]


def test_audit_entries_newest_first(store: Store) -> None:
    access = AccessStore(store)
    access.audit("ana", "alert.ack", "cert.expiring:ab", "", NOW)
    access.audit("bo", "silence.create", "team=web", "2h", NOW + HOUR)
    assert [(e.actor, e.action) for e in access.audit_entries()] == [("bo", "silence.create"), ("ana", "alert.ack")]
