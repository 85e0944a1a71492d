"""The ACME server's state in the inventory database (``tlsward.model.acme`` records in and out).

Implements ``tlsward.acme.server.state.AcmeState`` structurally (storage does not import acme). Every method is
one short transaction; the ones that change several rows (a validation's outcome, a certificate and its order, an
account bound to its EAB key) change them together."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Table, insert, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from tlsward.model.acme import (
    DEACTIVATED,
    INVALID,
    PENDING,
    PROCESSING,
    READY,
    VALID,
    AcmeAccount,
    AcmeAuthorization,
    AcmeCertificate,
    AcmeChallenge,
    AcmeEabKey,
    AcmeIdentifier,
    AcmeOrder,
)
from tlsward.model.errors import StorageError
from tlsward.storage.store import Store
from tlsward.storage.tables import (
    AcmeAccountRow,
    AcmeAuthorizationRow,
    AcmeCertificateRow,
    AcmeChallengeRow,
    AcmeEabKeyRow,
    AcmeOrderRow,
)


def _table(row_class: Any) -> Table:
    table: Table = row_class.__table__
    return table


ACCOUNT, ORDER, AUTHZ = _table(AcmeAccountRow), _table(AcmeOrderRow), _table(AcmeAuthorizationRow)
CHALLENGE, CERTIFICATE, EAB = _table(AcmeChallengeRow), _table(AcmeCertificateRow), _table(AcmeEabKeyRow)


class AcmeStore:
    """ACME server persistence over an open :class:`Store` (same database).

    SQLAlchemy Core rather than the ORM: every ACME request runs one of these, and loading ORM objects cost
    several times the query itself (``bench/bench_acme.py``)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    @contextmanager
    def _begin(self) -> Iterator[Connection]:
        try:
            with self.store.engine.begin() as connection:
                yield connection
        except SQLAlchemyError as exc:
            raise StorageError(f"{self.store.url}: {str(exc).strip().splitlines()[0][:300]}") from exc

    # -- accounts -----------------------------------------------------------------------------------------

    def create_account(self, account: AcmeAccount) -> tuple[AcmeAccount, bool]:
        with self._begin() as connection:
            return self._create_account(connection, account)

    def _create_account(self, connection: Connection, account: AcmeAccount) -> tuple[AcmeAccount, bool]:
        statement = self.store._insert(ACCOUNT).values(
            id=account.id, jwk=account.jwk, thumbprint=account.thumbprint, status=account.status,
            contact=list(account.contact), eab_kid=account.eab_kid, created_at=account.created_at)
        inserted = connection.execute(statement.on_conflict_do_nothing(index_elements=["thumbprint"])
                                      .returning(ACCOUNT.c.id)).first() is not None
        row = connection.execute(select(ACCOUNT).where(ACCOUNT.c.thumbprint == account.thumbprint)).one()
        return _account(row), bool(inserted)

    def create_account_with_eab(self, account: AcmeAccount, kid: str) -> tuple[AcmeAccount, bool] | None:
        with self._begin() as connection:
            key = connection.execute(select(EAB).where(EAB.c.kid == kid).with_for_update()).first()
            if key is None or key.account_id is not None:
                return None
            created, is_new = self._create_account(connection, account)
            if not is_new:
                return created, False
            connection.execute(update(EAB).where(EAB.c.kid == kid).values(account_id=created.id))
            return created, True

    def account(self, account_id: str) -> AcmeAccount | None:
        with self._begin() as connection:
            row = connection.execute(select(ACCOUNT).where(ACCOUNT.c.id == account_id)).first()
            return _account(row) if row is not None else None

    def account_by_thumbprint(self, thumbprint: str) -> AcmeAccount | None:
        with self._begin() as connection:
            row = connection.execute(select(ACCOUNT).where(ACCOUNT.c.thumbprint == thumbprint)).first()
            return _account(row) if row is not None else None

    def update_account(self, account_id: str, *, status: str | None = None,
                       contact: tuple[str, ...] | None = None) -> AcmeAccount | None:
        values: dict[str, object] = {}
        if status is not None:
            values["status"] = status
        if contact is not None:
            values["contact"] = list(contact)
        with self._begin() as connection:
            if values:
                connection.execute(update(ACCOUNT).where(ACCOUNT.c.id == account_id).values(**values))
            row = connection.execute(select(ACCOUNT).where(ACCOUNT.c.id == account_id)).first()
            return _account(row) if row is not None else None

    def change_account_key(self, account_id: str, jwk: str, thumbprint: str) -> AcmeAccount | None:
        try:
            with self._begin() as connection:
                taken = connection.execute(select(ACCOUNT.c.id).where(ACCOUNT.c.thumbprint == thumbprint)).first()
                if taken is not None:
                    return None
                connection.execute(update(ACCOUNT).where(ACCOUNT.c.id == account_id)
                                   .values(jwk=jwk, thumbprint=thumbprint))
                row = connection.execute(select(ACCOUNT).where(ACCOUNT.c.id == account_id)).first()
                return _account(row) if row is not None else None
        except StorageError as exc:   # a concurrent rollover to the same key: the unique constraint decides
            if isinstance(exc.__cause__, IntegrityError):
                return None
            raise

    def account_orders(self, account_id: str, *, limit: int = 1000) -> list[str]:
        with self._begin() as connection:
            query = (select(ORDER.c.id).where(ORDER.c.account_id == account_id)
                     .order_by(ORDER.c.created_at.desc()).limit(limit))
            return list(connection.execute(query).scalars())

    # -- orders, authorizations, challenges -----------------------------------------------------------------

    def create_order(self, order: AcmeOrder, authorizations: Sequence[AcmeAuthorization]) -> None:
        with self._begin() as connection:
            connection.execute(insert(ORDER).values(
                id=order.id, account_id=order.account_id, status=order.status,
                identifiers=[[i.type, i.value] for i in order.identifiers], authz_ids=list(order.authz_ids),
                expires=order.expires, not_before=order.not_before, not_after=order.not_after,
                certificate_id=order.certificate_id, error=order.error, replaces=order.replaces,
                created_at=order.created_at))
            connection.execute(insert(AUTHZ), [
                {"id": a.id, "account_id": a.account_id, "order_id": a.order_id, "identifier_type": a.identifier.type,
                 "identifier_value": a.identifier.value, "wildcard": a.wildcard, "status": a.status,
                 "expires": a.expires} for a in authorizations])
            connection.execute(insert(CHALLENGE), [
                {"id": c.id, "authz_id": a.id, "position": n, "type": c.type, "token": c.token, "status": c.status,
                 "validated_at": c.validated_at, "error": c.error}
                for a in authorizations for n, c in enumerate(a.challenges)])

    def order(self, order_id: str) -> AcmeOrder | None:
        with self._begin() as connection:
            row = connection.execute(select(ORDER).where(ORDER.c.id == order_id)).first()
            return _order(row) if row is not None else None

    def update_order(self, order_id: str, *, status: str, certificate_id: str | None = None,
                     error: str | None = None, expect: str | None = None) -> bool:
        query = update(ORDER).where(ORDER.c.id == order_id)
        if expect is not None:
            query = query.where(ORDER.c.status == expect)
        values: dict[str, object] = {"status": status}
        if certificate_id is not None:
            values["certificate_id"] = certificate_id
        if error is not None:
            values["error"] = error
        with self._begin() as connection:
            return bool(_rows(connection.execute(query.values(**values))))

    def order_replacing(self, certificate_id: str) -> str | None:
        with self._begin() as connection:
            found: str | None = connection.execute(
                select(ORDER.c.id).where(ORDER.c.replaces == certificate_id, ORDER.c.status != INVALID)).scalar()
            return found

    def authorization(self, authz_id: str) -> AcmeAuthorization | None:
        with self._begin() as connection:
            return self._authorization(connection, authz_id)

    @staticmethod
    def _authorization(connection: Connection, authz_id: str) -> AcmeAuthorization | None:
        """One query: the authorization's columns ride along on each of its challenges (clients poll this)."""
        rows = connection.execute(
            select(AUTHZ, CHALLENGE.c.id.label("c_id"), CHALLENGE.c.type.label("c_type"),
                   CHALLENGE.c.token.label("c_token"), CHALLENGE.c.status.label("c_status"),
                   CHALLENGE.c.validated_at.label("c_validated_at"), CHALLENGE.c.error.label("c_error"))
            .join(CHALLENGE, CHALLENGE.c.authz_id == AUTHZ.c.id).where(AUTHZ.c.id == authz_id)
            .order_by(CHALLENGE.c.position)).all()
        if not rows:
            return None
        row = rows[0]
        return AcmeAuthorization(
            id=row.id, account_id=row.account_id, order_id=row.order_id,
            identifier=AcmeIdentifier(row.identifier_type, row.identifier_value), expires=row.expires,
            wildcard=row.wildcard, status=row.status,
            challenges=tuple(AcmeChallenge(id=c.c_id, authz_id=authz_id, type=c.c_type, token=c.c_token,
                                           status=c.c_status, validated_at=c.c_validated_at, error=c.c_error)
                             for c in rows))

    def deactivate_authorization(self, authz_id: str) -> AcmeAuthorization | None:
        with self._begin() as connection:
            row = connection.execute(select(AUTHZ.c.status, AUTHZ.c.order_id).where(AUTHZ.c.id == authz_id)).first()
            if row is None:
                return None
            if row.status in (PENDING, VALID):
                connection.execute(update(AUTHZ).where(AUTHZ.c.id == authz_id).values(status=DEACTIVATED))
                connection.execute(update(ORDER).where(ORDER.c.id == row.order_id,
                                                       ORDER.c.status.in_((PENDING, READY))).values(status=INVALID))
            return self._authorization(connection, authz_id)

    def start_challenge(self, challenge_id: str) -> tuple[AcmeAuthorization, bool] | None:
        with self._begin() as connection:
            authz_id = connection.execute(select(CHALLENGE.c.authz_id).where(CHALLENGE.c.id == challenge_id)).scalar()
            if authz_id is None:
                return None
            pending = connection.execute(select(AUTHZ.c.status).where(AUTHZ.c.id == authz_id)).scalar() == PENDING
            started = pending and bool(_rows(connection.execute(
                update(CHALLENGE).where(CHALLENGE.c.id == challenge_id, CHALLENGE.c.status == PENDING)
                .values(status=PROCESSING))))
            found = self._authorization(connection, authz_id)
            return (found, started) if found is not None else None

    def finish_challenge(self, challenge_id: str, *, valid: bool, error: str | None, now: dt.datetime) -> None:
        status = VALID if valid else INVALID
        with self._begin() as connection:
            changed = _rows(connection.execute(
                update(CHALLENGE).where(CHALLENGE.c.id == challenge_id, CHALLENGE.c.status == PROCESSING)
                .values(status=status, error=None if valid else error, validated_at=now if valid else None)))
            if not changed:
                return
            authz = connection.execute(select(AUTHZ.c.id, AUTHZ.c.order_id).join(
                CHALLENGE, CHALLENGE.c.authz_id == AUTHZ.c.id).where(CHALLENGE.c.id == challenge_id,
                                                                    AUTHZ.c.status == PENDING)).first()
            if authz is None:
                return
            connection.execute(update(AUTHZ).where(AUTHZ.c.id == authz.id).values(status=status))
            if not valid:
                connection.execute(update(ORDER).where(ORDER.c.id == authz.order_id, ORDER.c.status == PENDING)
                                   .values(status=INVALID, error=error))
                return
            unfinished = connection.execute(select(AUTHZ.c.id).where(AUTHZ.c.order_id == authz.order_id,
                                                                     AUTHZ.c.status != VALID).limit(1)).first()
            if unfinished is None:
                connection.execute(update(ORDER).where(ORDER.c.id == authz.order_id, ORDER.c.status == PENDING)
                                   .values(status=READY))

    # -- certificates -------------------------------------------------------------------------------------

    def store_certificate(self, certificate: AcmeCertificate) -> None:
        with self._begin() as connection:
            connection.execute(insert(CERTIFICATE).values(
                id=certificate.id, account_id=certificate.account_id, order_id=certificate.order_id,
                serial=certificate.serial, aki=certificate.aki, fullchain_pem=certificate.fullchain_pem,
                not_before=certificate.not_before, not_after=certificate.not_after,
                identifiers=[[i.type, i.value] for i in certificate.identifiers],
                revoked_at=certificate.revoked_at, revocation_reason=certificate.revocation_reason))
            connection.execute(update(ORDER).where(ORDER.c.id == certificate.order_id)
                               .values(status=VALID, certificate_id=certificate.id))

    def certificate(self, certificate_id: str) -> AcmeCertificate | None:
        with self._begin() as connection:
            row = connection.execute(select(CERTIFICATE).where(CERTIFICATE.c.id == certificate_id)).first()
            return _certificate(row) if row is not None else None

    def certificate_by_serial(self, serial: str) -> AcmeCertificate | None:
        with self._begin() as connection:
            row = connection.execute(select(CERTIFICATE).where(CERTIFICATE.c.serial == serial)).first()
            return _certificate(row) if row is not None else None

    def revoke_certificate(self, certificate_id: str, *, reason: int, now: dt.datetime) -> bool:
        with self._begin() as connection:
            return bool(_rows(connection.execute(
                update(CERTIFICATE).where(CERTIFICATE.c.id == certificate_id, CERTIFICATE.c.revoked_at.is_(None))
                .values(revoked_at=now, revocation_reason=reason))))

    # -- External Account Binding -------------------------------------------------------------------------

    def add_eab_key(self, key: AcmeEabKey) -> None:
        with self._begin() as connection:
            connection.execute(insert(EAB).values(kid=key.kid, hmac_key=key.hmac_key, label=key.label,
                                                  created_at=key.created_at, account_id=key.account_id))

    def eab_key(self, kid: str) -> AcmeEabKey | None:
        with self._begin() as connection:
            row = connection.execute(select(EAB).where(EAB.c.kid == kid)).first()
            return _eab(row) if row is not None else None

    def eab_keys(self) -> list[AcmeEabKey]:
        with self._begin() as connection:
            return [_eab(row) for row in connection.execute(select(EAB).order_by(EAB.c.created_at))]


def _rows(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


def _account(row: Any) -> AcmeAccount:
    return AcmeAccount(id=row.id, jwk=row.jwk, thumbprint=row.thumbprint, status=row.status,
                       contact=tuple(row.contact or ()), eab_kid=row.eab_kid, created_at=row.created_at)


def _identifiers(raw: list[list[str]] | None) -> tuple[AcmeIdentifier, ...]:
    return tuple(AcmeIdentifier(kind, value) for kind, value in raw or ())


def _order(row: Any) -> AcmeOrder:
    return AcmeOrder(id=row.id, account_id=row.account_id, identifiers=_identifiers(row.identifiers),
                     authz_ids=tuple(row.authz_ids or ()), expires=row.expires, status=row.status,
                     not_before=row.not_before, not_after=row.not_after, certificate_id=row.certificate_id,
                     error=row.error, replaces=row.replaces, created_at=row.created_at)


def _certificate(row: Any) -> AcmeCertificate:
    return AcmeCertificate(id=row.id, account_id=row.account_id, order_id=row.order_id, serial=row.serial,
                           aki=row.aki, fullchain_pem=row.fullchain_pem, not_before=row.not_before,
                           not_after=row.not_after, identifiers=_identifiers(row.identifiers),
                           revoked_at=row.revoked_at, revocation_reason=row.revocation_reason)


def _eab(row: Any) -> AcmeEabKey:
    return AcmeEabKey(kid=row.kid, hmac_key=bytes(row.hmac_key), label=row.label, created_at=row.created_at,
                      account_id=row.account_id)
