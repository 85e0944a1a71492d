"""The internal CA's inventory: issued certificates, revocations and each authority's current CRL.

Every issuance is one INSERT in one short transaction (the CA signs thousands a second and must not wait on the
database more than on the signature). The CRL lives in the database with its number, so that the process that
revokes and the process that serves (``tlsward serve``) hand out the same CRL and the number never goes back.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from tlsward.model.ca import CaError, CrlState, IssuedRecord, RevocationRecord
from tlsward.model.errors import StorageError
from tlsward.storage.store import Store
from tlsward.storage.tables import CaAuthorityRow, CaCertificateRow

# build(number, revocations) -> (der, this_update, next_update): the CA signs inside the CRL transaction.
CrlBuilder = Callable[[int, Sequence[RevocationRecord]], tuple[bytes, dt.datetime, dt.datetime]]


_INSERT = insert(CaCertificateRow)


def serial_text(serial: int) -> str:
    """The serial as the database keys it: lower-case hex without a prefix (what ``openssl x509 -serial`` prints,
    lower-cased)."""
    return f"{serial:x}"


def _record(row: CaCertificateRow) -> IssuedRecord:
    return IssuedRecord(
        authority=row.authority, serial=int(row.serial, 16), subject=row.subject, names=tuple(row.names),
        profile=row.profile, key_type=row.key_type, not_before=row.not_before, not_after=row.not_after,
        issued_at=row.issued_at, requester=row.requester, sha256=row.sha256, der=bytes(row.der),
        replaces=None if row.replaces is None else int(row.replaces, 16), revoked_at=row.revoked_at,
        revocation_reason=row.revocation_reason)


class CaStore:
    """The CA tables over an open :class:`Store` (same database, same transactions)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- authorities ---------------------------------------------------------------------------------------------

    def ensure_authority(self, key_id: str, *, name: str, subject: str, now: dt.datetime) -> None:
        """Register an intermediate (idempotent: opening a CA twice, or on a second host, is harmless)."""
        with self.store._transaction() as session:
            session.execute(self.store._insert(CaAuthorityRow).values(
                key_id=key_id, name=name, subject=subject, created_at=now, crl_number=0)
                .on_conflict_do_nothing(index_elements=["key_id"]))

    def crl_state(self, key_id: str) -> CrlState:
        with self.store._transaction() as session:
            row = session.get(CaAuthorityRow, key_id)
            if row is None:
                raise CaError(f"CA {key_id}: not in the inventory {self.store.url} (was it initialised with "
                              "another --db?)")
            return CrlState(number=row.crl_number, this_update=row.crl_this_update,
                            next_update=row.crl_next_update, der=None if row.crl_der is None else bytes(row.crl_der))

    def publish_crl(self, key_id: str, build: CrlBuilder, *, now: dt.datetime) -> CrlState:
        """Sign the next CRL (``build`` gets its number and the revocations of unexpired certificates) and keep it,
        in one transaction that holds the authority's row: two publishers never sign the same number."""
        with self.store._transaction() as session:
            row = session.scalars(select(CaAuthorityRow).where(CaAuthorityRow.key_id == key_id)
                                  .with_for_update()).one_or_none()
            if row is None:
                raise CaError(f"CA {key_id}: not in the inventory {self.store.url}")
            revoked = [RevocationRecord(serial=int(serial, 16), revoked_at=at or now, reason=reason or "unspecified")
                       for serial, at, reason in session.execute(
                           select(CaCertificateRow.serial, CaCertificateRow.revoked_at,
                                  CaCertificateRow.revocation_reason)
                           .where(CaCertificateRow.authority == key_id, CaCertificateRow.revoked_at.is_not(None),
                                  CaCertificateRow.not_after > now)
                           .order_by(CaCertificateRow.revoked_at, CaCertificateRow.serial))]
            number = row.crl_number + 1
            der, this_update, next_update = build(number, revoked)
            row.crl_number, row.crl_der = number, der
            row.crl_this_update, row.crl_next_update = this_update, next_update
            return CrlState(number=number, this_update=this_update, next_update=next_update, der=der)

    # -- certificates --------------------------------------------------------------------------------------------

    def record_issued(self, *records: IssuedRecord) -> None:
        """One INSERT (executemany for a batch) in one transaction, through Core rather than an ORM session: the
        session's bookkeeping costs more than the signature this follows."""
        if not records:
            return
        try:
            with self.store.engine.begin() as connection:
                connection.execute(_INSERT, [_values(record) for record in records])
        except SQLAlchemyError as exc:
            raise StorageError(f"{self.store.url}: {str(exc).strip().splitlines()[0]}") from exc

    def get(self, key_id: str, serial: int) -> IssuedRecord | None:
        with self.store._transaction() as session:
            row = session.get(CaCertificateRow, (key_id, serial_text(serial)))
            return None if row is None else _record(row)

    def find(self, sha256: str) -> IssuedRecord | None:
        """A certificate by its SHA-256 fingerprint (``renew --cert FILE``)."""
        with self.store._transaction() as session:
            row = session.scalars(select(CaCertificateRow).where(CaCertificateRow.sha256 == sha256.lower())
                                  ).first()
            return None if row is None else _record(row)

    def status(self, key_id: str, serial: int) -> tuple[bool, RevocationRecord | None]:
        """(issued by this authority?, its revocation if revoked): what an OCSP answer needs, in one SELECT."""
        with self.store._transaction() as session:
            found = session.execute(select(CaCertificateRow.revoked_at, CaCertificateRow.revocation_reason)
                                    .where(CaCertificateRow.authority == key_id,
                                           CaCertificateRow.serial == serial_text(serial))).one_or_none()
        if found is None:
            return False, None
        revoked_at, reason = found
        if revoked_at is None:
            return True, None
        return True, RevocationRecord(serial=serial, revoked_at=revoked_at, reason=reason or "unspecified")

    def revoke(self, key_id: str, serial: int, *, reason: str, now: dt.datetime) -> IssuedRecord:
        """Mark a certificate revoked. CaError for a serial this authority never issued or already revoked."""
        with self.store._transaction() as session:
            row = session.scalars(select(CaCertificateRow).where(
                CaCertificateRow.authority == key_id, CaCertificateRow.serial == serial_text(serial))
                .with_for_update()).one_or_none()
            if row is None:
                raise CaError(f"serial {serial_text(serial)}: not issued by this CA (see `tlsward ca list`)")
            if row.revoked_at is not None:
                raise CaError(f"serial {serial_text(serial)}: already revoked on {row.revoked_at:%Y-%m-%d %H:%M}Z "
                              f"({row.revocation_reason})")
            session.execute(update(CaCertificateRow).where(
                CaCertificateRow.authority == key_id, CaCertificateRow.serial == row.serial)
                .values(revoked_at=now, revocation_reason=reason))
            session.refresh(row)
            return _record(row)

    def certificates(self, key_id: str | None = None, *, include_revoked: bool = True, include_expired: bool = False,
                     name: str | None = None, now: dt.datetime | None = None, limit: int | None = None
                     ) -> list[IssuedRecord]:
        """Issued certificates, newest first; expired ones only when asked."""
        query = select(CaCertificateRow).order_by(CaCertificateRow.issued_at.desc(), CaCertificateRow.serial)
        if key_id is not None:
            query = query.where(CaCertificateRow.authority == key_id)
        if not include_revoked:
            query = query.where(CaCertificateRow.revoked_at.is_(None))
        if not include_expired:
            query = query.where(CaCertificateRow.not_after > (now or dt.datetime.now(dt.UTC)))
        if limit is not None:
            query = query.limit(limit)
        with self.store._transaction() as session:
            records = [_record(row) for row in session.scalars(query)]
        if name is not None:
            records = [r for r in records if name in r.names]
        return records


def _values(record: IssuedRecord) -> dict[str, Any]:
    return {"authority": record.authority, "serial": serial_text(record.serial), "subject": record.subject,
            "names": list(record.names), "profile": record.profile, "key_type": record.key_type,
            "not_before": record.not_before, "not_after": record.not_after, "issued_at": record.issued_at,
            "requester": record.requester, "sha256": record.sha256, "der": record.der,
            "replaces": None if record.replaces is None else serial_text(record.replaces),
            "revoked_at": record.revoked_at, "revocation_reason": record.revocation_reason}
