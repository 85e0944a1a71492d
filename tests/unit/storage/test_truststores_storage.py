"""The fleet's trust stores in the inventory, on SQLite and PostgreSQL: a host's snapshot is stored and read back
exactly, re-importing replaces it as a whole (vanished stores go), a failed import leaves the previous snapshot
untouched, an older snapshot does not roll a host back, and drift computed in SQL is the model's definition."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select, text

from tests.unit.truststore_builders import COMMON, CORP, EXPIRED, LEGACY, NOW, T0, fleet, host, root
from tests.unit.truststore_builders import store as made
from tlsward.model.errors import StorageError, UsageError
from tlsward.model.truststores import HostStores, RootInfo, fleet_drift
from tlsward.report.truststores_json import host_stores_from_json, host_stores_to_json
from tlsward.storage import Store, open_store
from tlsward.storage.tables import TrustStoreHostRow, TrustStoreRootRow, TrustStoreRow
from tlsward.storage.truststores import StaleSnapshotError, TrustStoreInventory

TRUSTSTORE_TABLES = "truststore_root, truststore, truststore_host"
SYSTEM = "etc/ssl/certs/ca-certificates.crt"
JAVA = "usr/lib/jvm/java-17/lib/security/cacerts"
CERTIFI = "srv/app/.venv/certifi/cacert.pem"


@pytest.fixture
def inventory(store: Store) -> Iterator[TrustStoreInventory]:
    """The trust-store inventory of the test's store, empty (PostgreSQL's database is shared by the session)."""
    if store.engine.dialect.name == "postgresql":
        with store.engine.begin() as connection:
            connection.execute(text(f"TRUNCATE {TRUSTSTORE_TABLES} RESTART IDENTITY CASCADE"))
    yield TrustStoreInventory(store)


def row_counts(store: Store) -> tuple[int, int, int]:
    with store.engine.connect() as connection:
        return tuple(connection.execute(select(func.count()).select_from(table)).scalar_one()   # type: ignore[return-value]
                     for table in (TrustStoreHostRow, TrustStoreRow, TrustStoreRootRow))


def test_a_snapshot_is_stored_and_read_back_exactly(inventory: TrustStoreInventory, store: Store) -> None:
    a, b, c = fleet()
    result = inventory.import_host(a, now=NOW)
    assert (result.host, result.stores, result.roots, result.first) == ("a.example", 3, 15, True)
    assert result.added == (SYSTEM, JAVA, CERTIFI) and result.removed == result.kept == ()
    assert inventory.host_stores("a.example") == a
    for snapshot in (b, c):
        inventory.import_host(snapshot, now=NOW)
        assert inventory.host_stores(snapshot.host) == snapshot
    assert inventory.host_stores("nowhere.example") is None
    assert [(h.host, h.collected_at, h.imported_at, h.stores, h.unreadable) for h in inventory.hosts()] == [
        ("a.example", T0, NOW, 3, 0), ("b.example", T0, NOW, 2, 1), ("c.example", T0, NOW, 2, 0)]
    assert row_counts(store) == (3, 7, 15 + 6 + 10)


def test_a_document_round_trips_through_the_inventory(inventory: TrustStoreInventory) -> None:
    """What the lead's `truststore import` does: JSON in, snapshot stored, the same JSON out."""
    document = host_stores_to_json(fleet()[0])
    inventory.import_host(host_stores_from_json(document, "a.json"))
    stored = inventory.host_stores("a.example")
    assert stored is not None and host_stores_to_json(stored) == document


def test_reimporting_replaces_the_host_and_vanished_stores_go(inventory: TrustStoreInventory, store: Store) -> None:
    a = fleet()[0]
    inventory.import_host(a, now=NOW)
    inventory.import_host(fleet()[1], now=NOW)
    later = host("a.example", made(SYSTEM, *COMMON, LEGACY), made("opt/node/bin/node", *COMMON, kind="node"),
                 at=T0 + dt.timedelta(days=1), searched=())
    result = inventory.import_host(later, now=NOW + dt.timedelta(days=1))
    assert result.added == ("opt/node/bin/node",) and result.kept == (SYSTEM,)
    assert result.removed == tuple(sorted((JAVA, CERTIFI))) and result.previous_collected_at == T0
    assert inventory.host_stores("a.example") == later
    assert inventory.host_stores("b.example") == fleet()[1], "another host is untouched"
    with store.engine.connect() as connection:
        keys = set(connection.execute(select(TrustStoreRow.store_key).join(
            TrustStoreHostRow, TrustStoreHostRow.id == TrustStoreRow.host_id)
            .where(TrustStoreHostRow.host == "a.example")).scalars())
        orphans = connection.execute(select(func.count()).select_from(TrustStoreRootRow).where(
            TrustStoreRootRow.truststore_id.not_in(select(TrustStoreRow.id)))).scalar_one()
    assert keys == {SYSTEM, "opt/node/bin/node"} and orphans == 0
    assert row_counts(store) == (2, 4, 11 + 6)
    empty = host("a.example", at=T0 + dt.timedelta(days=2))
    assert inventory.import_host(empty).removed == tuple(sorted((SYSTEM, "opt/node/bin/node")))
    assert [(h.host, h.stores) for h in inventory.hosts()] == [("a.example", 0), ("b.example", 2)]


def test_an_older_snapshot_does_not_roll_a_host_back_unless_forced(inventory: TrustStoreInventory) -> None:
    newer = host("a.example", made(SYSTEM, *COMMON), at=T0 + dt.timedelta(hours=5))
    older = host("a.example", made(SYSTEM, *COMMON[:2]), at=T0)
    inventory.import_host(newer)
    with pytest.raises(StaleSnapshotError, match=r"^a\.example: the inventory holds a newer trust-store snapshot"):
        inventory.import_host(older)
    assert inventory.host_stores("a.example") == newer
    inventory.import_host(newer)                                   # the same snapshot again: fine
    assert inventory.import_host(older, force=True).kept == (SYSTEM,)
    assert inventory.host_stores("a.example") == older


def test_a_failed_import_leaves_the_previous_snapshot_untouched(inventory: TrustStoreInventory,
                                                                store: Store) -> None:
    for snapshot in fleet():
        inventory.import_host(snapshot, now=NOW)
    before = (row_counts(store), inventory.hosts(), [inventory.host_stores(h.host) for h in inventory.hosts()])
    # Fails in the database, after the old stores were deleted in the same transaction: a naive time.
    broken_root = dataclasses.replace(LEGACY, not_after=dt.datetime(2030, 1, 1))
    broken = host("a.example", made(SYSTEM, *COMMON), made("x", broken_root), at=T0 + dt.timedelta(days=1))
    with pytest.raises(StorageError):
        inventory.import_host(broken)
    # Refused before the database: two stores with one id; no host name.
    with pytest.raises(UsageError, match="two stores have the id"):
        inventory.import_host(host("a.example", made(SYSTEM), made(SYSTEM), at=T0 + dt.timedelta(days=1)))
    with pytest.raises(UsageError, match="needs a host name"):
        inventory.import_host(host(" "))
    # A hostile document never gets as far as the inventory.
    document = host_stores_to_json(fleet()[0]) | {"collected_at": "2027-01-01T00:00:00Z"}
    document["stores"][0]["roots"].append("00" * 32)
    with pytest.raises(UsageError, match=r"stores\[0\]\.roots\[5\]"):
        inventory.import_host(host_stores_from_json(document, "a.json"))
    assert (row_counts(store), inventory.hosts(), [inventory.host_stores(h.host) for h in inventory.hosts()]) == before


def test_drift_of_three_hosts(inventory: TrustStoreInventory) -> None:
    """a lacks LEGACY and c has CORP besides in their system bundles; b's Java store is unreadable and does not
    count towards Java's reference; a's certifi, alone of its kind, is its own reference, expired root and all."""
    for snapshot in fleet():
        inventory.import_host(snapshot, now=NOW)
    drift = inventory.drift(now=NOW)
    assert [k.kind for k in drift.kinds] == ["system-bundle", "java", "certifi"] and drift.at == NOW

    system = drift.kind("system-bundle")
    assert system is not None and system.readable == 3 and system.hosts == 3
    assert set(system.reference) == {*COMMON, LEGACY}
    assert [(s.host, s.missing, s.extra, s.expired) for s in system.stores] == [
        ("a.example", (LEGACY,), (), ()), ("b.example", (), (), ()), ("c.example", (), (CORP,), ())]
    assert system.drifting == 2 and system.stores[2].root_count == 7

    java = drift.kind("java")
    assert java is not None and java.readable == 2 and set(java.reference) == set(COMMON[:3])
    assert [(s.host, s.version, s.drifted, bool(s.problem)) for s in java.stores] == [
        ("a.example", "17.0.13", False, False), ("b.example", "17.0.9", False, True),
        ("c.example", "17.0.13", False, False)]
    assert java.unreadable == 1

    certifi = drift.kind("certifi")
    assert certifi is not None and len(certifi.reference) == 7 and certifi.stores[0].expired == (EXPIRED,)
    assert certifi.with_expired == 1 and certifi.stores[0].age_days(NOW) == pytest.approx(10 + 1 / 24)

    assert drift == fleet_drift(fleet(), NOW)
    only_java = inventory.drift("java", now=NOW)
    assert [k.kind for k in only_java.kinds] == ["java"] and only_java == fleet_drift(fleet(), NOW, "java")
    assert inventory.drift("nss", now=NOW).kinds == ()
    with pytest.raises(UsageError, match="'windows' is not a trust-store kind"):
        inventory.drift("windows")


def test_a_reissued_root_for_the_same_key_is_not_drift(inventory: TrustStoreInventory) -> None:
    """A store with another certificate for a reference root's CA key trusts the same chains: neither missing
    that root nor holding an extra one."""
    reissued = root("Common Root 0 (2038)", key="Common Root 0")
    inventory.import_host(host("a", made(SYSTEM, *COMMON)))
    inventory.import_host(host("b", made(SYSTEM, *COMMON)))
    inventory.import_host(host("c", made(SYSTEM, reissued, *COMMON[1:])))
    system = inventory.drift(now=NOW).kinds[0]
    assert [s.drifted for s in system.stores] == [False, False, False]
    assert system == fleet_drift([inventory.host_stores(h) for h in "abc"], NOW).kinds[0]   # type: ignore[misc]


def test_removing_a_host_takes_it_out_of_the_reference(inventory: TrustStoreInventory, store: Store) -> None:
    for snapshot in fleet():
        inventory.import_host(snapshot)
    assert inventory.remove_host("b.example") and not inventory.remove_host("b.example")
    system = inventory.drift(now=NOW).kind("system-bundle")
    assert system is not None and system.readable == 2 and set(system.reference) == set(COMMON), \
        "LEGACY is now in one of two stores: no longer a majority"
    assert row_counts(store) == (2, 5, 15 + 10)


def random_fleet(seed: int, hosts: int) -> list[HostStores]:
    rng = random.Random(seed)
    pool = [root(f"Root {i}", expires=T0 + dt.timedelta(days=rng.choice((-5, 30, 3000)))) for i in range(40)]
    pool += [root(f"Root {i} reissued", key=f"Root {i}") for i in range(0, 40, 7)]
    snapshots = []
    for index in range(hosts):
        stores = []
        for kind in rng.sample(["system-bundle", "java", "certifi", "nss"], rng.randint(0, 4)):
            unreadable = rng.random() < 0.1
            roots: list[RootInfo] = [] if unreadable else \
                [r for r in pool if rng.random() < (0.9 if "Root 1" in r.subject else 0.5)]
            if roots and rng.random() < 0.2:
                roots.append(roots[0])                       # a bundle that holds a certificate twice
            stores.append(made(f"{kind}-{index % 3}", *roots, kind=kind,  # type: ignore[arg-type]
                                problem="unreadable" if unreadable else "", version=str(rng.randint(1, 3)),
                                modified=None if rng.random() < 0.2 else T0 - dt.timedelta(days=rng.randint(0, 900))))
        snapshots.append(host(f"host-{index:02d}", *stores, at=T0 - dt.timedelta(minutes=index)))
    return snapshots


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_drift_in_sql_is_the_models_definition(inventory: TrustStoreInventory, seed: int) -> None:
    snapshots = random_fleet(seed, 25)
    for snapshot in snapshots:
        inventory.import_host(snapshot)
    assert inventory.drift(now=NOW) == fleet_drift(snapshots, NOW)
    for kind in ("java", "nss"):
        assert inventory.drift(kind, now=NOW) == fleet_drift(snapshots, NOW, kind)


def test_concurrent_imports_of_one_new_host_both_land(inventory: TrustStoreInventory, db_url: str) -> None:
    """Two collectors send the same host's first snapshot at once: the host row is created once, the second
    import waits for the first and replaces it; neither fails and nothing is left twice."""
    snapshots = [host("race.example", made(SYSTEM, *COMMON[:n]), at=T0) for n in range(1, 9)]
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(snapshots))

    def run(snapshot: HostStores) -> None:
        try:
            with open_store(db_url) as own:
                barrier.wait()
                TrustStoreInventory(own).import_host(snapshot)
        except BaseException as exc:   # surfaced below, on the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(snapshot,)) for snapshot in snapshots]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert [(h.host, h.stores) for h in inventory.hosts()] == [("race.example", 1)]
    assert inventory.host_stores("race.example") in snapshots
    assert row_counts(inventory.store)[1] == 1
