"""The internal CA's tables on SQLite and PostgreSQL: issuance, status, revocation, listing and CRL numbers."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import pytest

from tlsward.model.ca import CaError, IssuedRecord, RevocationRecord
from tlsward.storage import Store
from tlsward.storage.ca import CaStore

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
BIG = (1 << 158) + 12345      # serials are up to 159 bits: more than any integer column


def _record(serial: int, *, names: tuple[str, ...] = ("a.example.test",), days: int = 30,
            authority: str = "ab" * 20, replaces: int | None = None) -> IssuedRecord:
    return IssuedRecord(authority=authority, serial=serial, subject=f"CN={names[0]}", names=names, profile="server",
                        key_type="ecdsa-p256", not_before=NOW, not_after=NOW + dt.timedelta(days=days),
                        issued_at=NOW + dt.timedelta(seconds=serial % 1000), requester="test",
                        sha256=f"{serial:064x}"[-64:], der=b"\x30\x00" * 10, replaces=replaces)


@pytest.fixture
def cas(store: Store) -> CaStore:
    cas = CaStore(store)
    cas.ensure_authority("ab" * 20, name="Test", subject="CN=Test Intermediate", now=NOW)
    cas.ensure_authority("ab" * 20, name="Test", subject="CN=Test Intermediate", now=NOW)   # idempotent
    return cas


def test_record_get_find_status(cas: CaStore) -> None:
    cas.record_issued(_record(BIG, names=("big.example.test", "10.0.0.1")), _record(7, replaces=BIG))
    got = cas.get("ab" * 20, BIG)
    assert got is not None and got.serial == BIG and got.names == ("big.example.test", "10.0.0.1")
    assert got.not_after == NOW + dt.timedelta(days=30) and got.not_after.tzinfo is not None
    assert got.der == b"\x30\x00" * 10 and not got.revoked
    renewed = cas.get("ab" * 20, 7)
    assert renewed is not None and renewed.replaces == BIG
    found = cas.find(f"{BIG:064x}"[-64:].upper())
    assert found is not None and found.serial == BIG
    assert cas.get("ab" * 20, 8) is None and cas.get("cd" * 20, BIG) is None
    assert cas.status("ab" * 20, BIG) == (True, None)
    assert cas.status("ab" * 20, 999) == (False, None)


def test_revoke_and_publish_crl(cas: CaStore) -> None:
    cas.record_issued(_record(1), _record(2), _record(3, days=1))
    seen: list[tuple[int, Sequence[RevocationRecord]]] = []

    def build(number: int, revoked: Sequence[RevocationRecord]) -> tuple[bytes, dt.datetime, dt.datetime]:
        seen.append((number, revoked))
        return f"crl {number}".encode(), NOW, NOW + dt.timedelta(days=1)

    state = cas.publish_crl("ab" * 20, build, now=NOW)
    assert (state.number, state.der, seen[-1][1]) == (1, b"crl 1", [])
    revoked = cas.revoke("ab" * 20, 2, reason="keyCompromise", now=NOW + dt.timedelta(minutes=1))
    assert revoked.revoked and revoked.revocation_reason == "keyCompromise"
    cas.revoke("ab" * 20, 3, reason="superseded", now=NOW + dt.timedelta(minutes=2))
    with pytest.raises(CaError, match="already revoked"):
        cas.revoke("ab" * 20, 2, reason="unspecified", now=NOW)
    with pytest.raises(CaError, match="serial 63: not issued"):
        cas.revoke("ab" * 20, 99, reason="unspecified", now=NOW)
    known, revocation = cas.status("ab" * 20, 2)
    assert known and revocation == RevocationRecord(2, NOW + dt.timedelta(minutes=1), "keyCompromise")
    state = cas.publish_crl("ab" * 20, build, now=NOW + dt.timedelta(minutes=3))
    assert state.number == 2 and [r.serial for r in seen[-1][1]] == [2, 3]
    # once serial 3 has expired it leaves the CRL
    cas.publish_crl("ab" * 20, build, now=NOW + dt.timedelta(days=2))
    assert [r.serial for r in seen[-1][1]] == [2]
    assert cas.crl_state("ab" * 20).number == 3 and cas.crl_state("ab" * 20).der == b"crl 3"
    with pytest.raises(CaError, match="not in the inventory"):
        cas.crl_state("ef" * 20)


def test_listing(cas: CaStore) -> None:
    cas.record_issued(_record(10, names=("x.example.test",)), _record(11, days=1), _record(12))
    cas.revoke("ab" * 20, 12, reason="unspecified", now=NOW)
    later = NOW + dt.timedelta(days=2)
    assert [r.serial for r in cas.certificates("ab" * 20, now=NOW)] == [12, 11, 10]   # newest first
    assert [r.serial for r in cas.certificates("ab" * 20, now=later)] == [12, 10]
    assert [r.serial for r in cas.certificates("ab" * 20, now=later, include_expired=True)] == [12, 11, 10]
    assert [r.serial for r in cas.certificates("ab" * 20, now=NOW, include_revoked=False)] == [11, 10]
    assert [r.serial for r in cas.certificates("ab" * 20, now=NOW, name="x.example.test")] == [10]
    assert cas.certificates("cd" * 20, now=NOW) == []
