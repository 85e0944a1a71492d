"""The fleet's trust stores in the inventory database: each host's newest snapshot (a
:class:`~tlsward.model.truststores.HostStores`), and the drift of every store kind across hosts.

Importing a host replaces what the inventory held for it, in one transaction: stores that vanished from the host
are removed, and an error leaves the previous snapshot exactly as it was. A snapshot older than the one held is
refused (:class:`StaleSnapshotError`) unless forced, so that a delayed upload cannot roll a host back.

Drift is :func:`tlsward.model.truststores.fleet_drift` computed in SQL: the per-kind reference comes from one
aggregate over the roots, and only the stores that differ from it are read in detail, so a fleet of a thousand
hosts does not mean a million rows through Python.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import case, delete, distinct, func, insert, select
from sqlalchemy.orm import Session

from tlsward.model.errors import UsageError
from tlsward.model.truststores import (
    STORE_KINDS,
    FleetDrift,
    HostStores,
    KindDrift,
    RootInfo,
    StoreDrift,
    StoreInfo,
    StoreKind,
    TrustStoreHost,
    TrustStoreImport,
    reference_threshold,
)
from tlsward.storage.store import IMPORT_CHUNK, Store
from tlsward.storage.tables import TrustStoreHostRow, TrustStoreRootRow, TrustStoreRow


class StaleSnapshotError(UsageError):
    """The inventory holds a newer snapshot of the host than the one being imported."""

    def __init__(self, host: str, held: dt.datetime, given: dt.datetime) -> None:
        super().__init__(f"{host}: the inventory holds a newer trust-store snapshot (collected {held.isoformat()}) "
                         f"than this one (collected {given.isoformat()}); force the import to replace it anyway")
        self.host, self.held, self.given = host, held, given


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _chunks(items: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), IMPORT_CHUNK):
        yield items[start:start + IMPORT_CHUNK]


def _root_order(root: RootInfo) -> tuple[str, str]:
    return (root.subject, root.sha256)


class TrustStoreInventory:
    """Trust-store snapshots over an open :class:`Store` (same database, same transactions)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- writing -----------------------------------------------------------------------------------------------------

    def import_host(self, h: HostStores, *, force: bool = False, now: dt.datetime | None = None) -> TrustStoreImport:
        """Replace the host's stores with this snapshot's, atomically. Raises :class:`StaleSnapshotError` (a
        UsageError) when the inventory holds a snapshot collected later, unless ``force``; UsageError for a
        snapshot that cannot be stored as given (no host name, two stores with one id)."""
        if not h.host.strip():
            raise UsageError("a trust-store snapshot needs a host name")
        ids = [store.id for store in h.stores]
        if len(set(ids)) != len(ids):
            twice = next(store_id for store_id in ids if ids.count(store_id) > 1)
            raise UsageError(f"{h.host}: two stores have the id {twice!r}; store ids are unique on a host")
        moment = now or _now()
        with self.store._transaction() as session:
            row, created = self._lock_host(session, h, moment)
            previous = None if created else row.collected_at
            if previous is not None and previous > h.collected_at and not force:
                raise StaleSnapshotError(h.host, previous, h.collected_at)
            before = set(session.scalars(select(TrustStoreRow.store_key).where(TrustStoreRow.host_id == row.id)))
            session.execute(delete(TrustStoreRootRow).where(TrustStoreRootRow.truststore_id.in_(
                select(TrustStoreRow.id).where(TrustStoreRow.host_id == row.id))))
            session.execute(delete(TrustStoreRow).where(TrustStoreRow.host_id == row.id))
            row.collected_at, row.imported_at, row.searched = h.collected_at, moment, list(h.searched)
            self._insert_stores(session, row.id, h.stores)
        return TrustStoreImport(
            host=h.host, stores=len(h.stores), roots=sum(len(store.roots) for store in h.stores),
            added=tuple(store_id for store_id in ids if store_id not in before),
            removed=tuple(sorted(before - set(ids))),
            kept=tuple(store_id for store_id in ids if store_id in before),
            previous_collected_at=previous)

    def _lock_host(self, session: Session, h: HostStores, moment: dt.datetime) -> tuple[TrustStoreHostRow, bool]:
        """The host's row, locked for this transaction (PostgreSQL; SQLite's writers queue anyway), created with
        this snapshot's values if the host is new. Concurrent first imports of one host do not collide."""
        query = select(TrustStoreHostRow).where(TrustStoreHostRow.host == h.host).with_for_update()
        row = session.scalars(query).one_or_none()
        if row is not None:
            return row, False
        result = session.execute(self.store._insert(TrustStoreHostRow).values(
            host=h.host, collected_at=h.collected_at, imported_at=moment, searched=list(h.searched))
            .on_conflict_do_nothing(index_elements=["host"]))
        created = bool(getattr(result, "rowcount", 0))
        return session.scalars(query.execution_options(populate_existing=True)).one(), created

    @staticmethod
    def _insert_stores(session: Session, host_id: int, stores: Sequence[StoreInfo]) -> None:
        if not stores:
            return
        values = [{"host_id": host_id, "store_key": store.id, "kind": store.kind, "path": store.path,
                   "label": store.label, "version": store.version, "clients": store.clients,
                   "root_count": len(store.roots), "modified_at": store.modified, "problem": store.problem,
                   "notes": list(store.notes)} for store in stores]
        store_ids: list[int] = []
        for chunk in _chunks(values):
            store_ids.extend(session.scalars(
                insert(TrustStoreRow).returning(TrustStoreRow.id, sort_by_parameter_order=True), chunk))
        roots = [{"truststore_id": store_id, "sha256": root.sha256, "spki_sha256": root.spki_sha256,
                  "subject": root.subject, "not_after": root.not_after, "organization": root.organization}
                 for store_id, store in zip(store_ids, stores, strict=True) for root in store.roots]
        for chunk in _chunks(roots):
            session.execute(insert(TrustStoreRootRow), chunk)

    def remove_host(self, host: str) -> bool:
        """Forget a host (decommissioned): its stores no longer count towards the fleet reference."""
        with self.store._transaction() as session:
            row = session.scalars(select(TrustStoreHostRow).where(TrustStoreHostRow.host == host)).one_or_none()
            if row is None:
                return False
            session.execute(delete(TrustStoreRootRow).where(TrustStoreRootRow.truststore_id.in_(
                select(TrustStoreRow.id).where(TrustStoreRow.host_id == row.id))))
            session.execute(delete(TrustStoreRow).where(TrustStoreRow.host_id == row.id))
            session.delete(row)
            return True

    # -- reading -----------------------------------------------------------------------------------------------------

    def hosts(self) -> list[TrustStoreHost]:
        """Every host with a snapshot, by name: when it was collected and imported, how many stores it has."""
        with self.store._transaction() as session:
            rows = session.execute(
                select(TrustStoreHostRow.host, TrustStoreHostRow.collected_at, TrustStoreHostRow.imported_at,
                       func.count(TrustStoreRow.id),
                       func.count(case((TrustStoreRow.problem != "", TrustStoreRow.id))))
                .outerjoin(TrustStoreRow, TrustStoreRow.host_id == TrustStoreHostRow.id)
                .group_by(TrustStoreHostRow.id, TrustStoreHostRow.host, TrustStoreHostRow.collected_at,
                          TrustStoreHostRow.imported_at)
                .order_by(TrustStoreHostRow.host)).all()
            return [TrustStoreHost(host=host, collected_at=collected, imported_at=imported, stores=stores,
                                   unreadable=unreadable)
                    for host, collected, imported, stores, unreadable in rows]

    def host_stores(self, host: str) -> HostStores | None:
        """The host's snapshot as it was imported (stores and roots in their order), or None."""
        with self.store._transaction() as session:
            row = session.scalars(select(TrustStoreHostRow).where(TrustStoreHostRow.host == host)).one_or_none()
            if row is None:
                return None
            stores = list(session.scalars(select(TrustStoreRow).where(TrustStoreRow.host_id == row.id)
                                          .order_by(TrustStoreRow.id)))
            held: dict[int, list[RootInfo]] = {store.id: [] for store in stores}
            for root in session.scalars(select(TrustStoreRootRow).join(
                    TrustStoreRow, TrustStoreRow.id == TrustStoreRootRow.truststore_id)
                    .where(TrustStoreRow.host_id == row.id).order_by(TrustStoreRootRow.id)):
                held[root.truststore_id].append(RootInfo(sha256=root.sha256, spki_sha256=root.spki_sha256,
                                                         subject=root.subject, not_after=root.not_after,
                                                         organization=root.organization))
            return HostStores(
                host=row.host, collected_at=row.collected_at, searched=tuple(row.searched or ()),
                stores=tuple(StoreInfo(id=store.store_key, kind=_kind(store.kind), path=store.path,
                                       label=store.label, version=store.version, clients=store.clients,
                                       roots=tuple(held[store.id]), modified=store.modified_at,
                                       problem=store.problem, notes=tuple(store.notes or ()))
                             for store in stores))

    def drift(self, kind: str | None = None, *, now: dt.datetime | None = None) -> FleetDrift:
        """How the stores of each kind (or of ``kind``) differ across hosts, at ``now``: the definition is
        :func:`tlsward.model.truststores.fleet_drift` over every host's snapshot."""
        if kind is not None and kind not in STORE_KINDS:
            raise UsageError(f"{kind!r} is not a trust-store kind ({', '.join(STORE_KINDS)})")
        moment = now or _now()
        kinds = [kind] if kind is not None else list(STORE_KINDS)
        with self.store._transaction() as session:
            stores = session.execute(
                select(TrustStoreRow.id, TrustStoreRow.kind, TrustStoreRow.store_key, TrustStoreRow.label,
                       TrustStoreRow.path, TrustStoreRow.version, TrustStoreRow.root_count,
                       TrustStoreRow.modified_at, TrustStoreRow.problem, TrustStoreHostRow.host,
                       TrustStoreHostRow.collected_at)
                .join(TrustStoreHostRow, TrustStoreHostRow.id == TrustStoreRow.host_id)
                .where(TrustStoreRow.kind.in_(kinds))).all()
            if not stores:
                return FleetDrift(at=moment, kinds=())
            catalogue, counts = self._catalogue(session, kinds)
            expired: dict[int, set[str]] = {}
            for store_id, sha in session.execute(
                    select(TrustStoreRootRow.truststore_id, TrustStoreRootRow.sha256)
                    .join(TrustStoreRow, TrustStoreRow.id == TrustStoreRootRow.truststore_id)
                    .where(TrustStoreRow.kind.in_(kinds), TrustStoreRootRow.not_after <= moment)):
                expired.setdefault(store_id, set()).add(sha)
            result: list[KindDrift] = []
            for name in STORE_KINDS:
                members = [row for row in stores if row.kind == name]
                if members:
                    result.append(self._kind_drift(session, name, members, catalogue, counts.get(name, {}),
                                                   expired))
        return FleetDrift(at=moment, kinds=tuple(result))

    @staticmethod
    def _catalogue(session: Session, kinds: Sequence[str]) -> tuple[dict[str, RootInfo], dict[str, dict[str, int]]]:
        """Every root of these kinds' stores, one description per fingerprint (the smallest, as the model's
        definition picks), and per kind how many readable stores hold each fingerprint."""
        held_by = func.count(distinct(case((TrustStoreRow.problem == "", TrustStoreRootRow.truststore_id))))
        columns = (TrustStoreRow.kind, TrustStoreRootRow.sha256, TrustStoreRootRow.spki_sha256,
                   TrustStoreRootRow.subject, TrustStoreRootRow.not_after, TrustStoreRootRow.organization)
        catalogue: dict[str, RootInfo] = {}
        counts: dict[str, dict[str, int]] = {}
        for kind, sha, spki, subject, not_after, organization, count in session.execute(
                select(*columns, held_by).join(TrustStoreRow, TrustStoreRow.id == TrustStoreRootRow.truststore_id)
                .where(TrustStoreRow.kind.in_(kinds)).group_by(*columns)):
            per_kind = counts.setdefault(kind, {})
            per_kind[sha] = per_kind.get(sha, 0) + count
            known = catalogue.get(sha)
            if known is None or (spki, subject, not_after, organization) < (
                    known.spki_sha256, known.subject, known.not_after, known.organization):
                catalogue[sha] = RootInfo(sha256=sha, spki_sha256=spki, subject=subject, not_after=not_after,
                                          organization=organization)
        return catalogue, counts

    @staticmethod
    def _kind_drift(session: Session, kind: str, members: Sequence[Any], catalogue: dict[str, RootInfo],
                    counts: dict[str, int], expired: dict[int, set[str]]) -> KindDrift:
        readable_ids = [row.id for row in members if not row.problem]
        need = reference_threshold(len(readable_ids))
        reference = sorted((catalogue[sha] for sha, count in counts.items() if count >= need), key=_root_order)
        ref_fps = {root.sha256 for root in reference}
        ref_keys = {root.spki_sha256 for root in reference}
        readable = TrustStoreRow.kind == kind, TrustStoreRow.problem == ""
        joined = select(TrustStoreRootRow.truststore_id, TrustStoreRootRow.sha256) \
            .join(TrustStoreRow, TrustStoreRow.id == TrustStoreRootRow.truststore_id).where(*readable)

        # Stores holding every reference root are the rule: count, and read in detail only the others.
        holding: dict[int, int] = {}
        for chunk in _chunks(sorted(ref_fps)):
            for store_id, count in session.execute(
                    select(TrustStoreRootRow.truststore_id, func.count(distinct(TrustStoreRootRow.sha256)))
                    .join(TrustStoreRow, TrustStoreRow.id == TrustStoreRootRow.truststore_id)
                    .where(*readable, TrustStoreRootRow.sha256.in_(chunk))
                    .group_by(TrustStoreRootRow.truststore_id)):
                holding[store_id] = holding.get(store_id, 0) + count
        short = [store_id for store_id in readable_ids if holding.get(store_id, 0) < len(reference)]
        fps: dict[int, set[str]] = {store_id: set() for store_id in short}
        keys: dict[int, set[str]] = {store_id: set() for store_id in short}
        for chunk in _chunks(short):
            for store_id, sha, spki in session.execute(
                    select(TrustStoreRootRow.truststore_id, TrustStoreRootRow.sha256, TrustStoreRootRow.spki_sha256)
                    .where(TrustStoreRootRow.truststore_id.in_(chunk))):
                fps[store_id].add(sha)
                keys[store_id].add(spki)

        # Roots outside the reference (and not a reference CA key in another certificate): few, by definition.
        outside = sorted(sha for sha in counts if sha not in ref_fps and catalogue[sha].spki_sha256 not in ref_keys)
        extra: dict[int, set[str]] = {}
        for chunk in _chunks(outside):
            for store_id, sha in session.execute(joined.where(TrustStoreRootRow.sha256.in_(chunk))):
                extra.setdefault(store_id, set()).add(sha)

        def roots(shas: Iterable[str]) -> tuple[RootInfo, ...]:
            return tuple(sorted((catalogue[sha] for sha in set(shas)), key=_root_order))

        rows = []
        for row in members:
            missing: tuple[RootInfo, ...] = ()
            if row.id in fps:
                missing = tuple(root for root in reference
                                if root.sha256 not in fps[row.id] and root.spki_sha256 not in keys[row.id])
            rows.append(StoreDrift(
                host=row.host, store_id=row.store_key, label=row.label, path=row.path, version=row.version,
                root_count=row.root_count, modified=row.modified_at, collected_at=row.collected_at,
                problem=row.problem, missing=missing, extra=roots(extra.get(row.id, ())),
                expired=roots(expired.get(row.id, ()))))
        rows.sort(key=lambda drift: (drift.host, drift.store_id))
        return KindDrift(kind=_kind(kind), reference=tuple(reference), readable=len(readable_ids),
                         stores=tuple(rows))


def _kind(text: str) -> StoreKind:
    for kind in STORE_KINDS:
        if kind == text:
            return kind
    raise UsageError(f"the inventory holds a trust store of unknown kind {text!r}")
