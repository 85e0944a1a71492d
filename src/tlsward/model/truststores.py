"""Trust stores found on a host, what is in them, and how they differ: the facts behind "works with curl,
fails from Java".

Why a model of its own: a host carries many stores (the OS bundle and its hashed directory, each JDK's
``cacerts``, certifi in every virtualenv, Node's compiled-in list, NSS databases), each read by different
clients. Discovery (``tlsward.discovery.truststores``) fills these records; comparison, audit and the
rotation plan (``tlsward.rules.truststores``) read them; the inventory stores the JSON form
(:data:`SCHEMA`) so drift can be compared across hosts. Roots are identified by the SHA-256 of their DER;
``spki_sha256`` recognises the same CA key re-issued in another certificate.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

__all__ = [
    "SCHEMA",
    "STORE_KINDS",
    "ClientCheck",
    "HostStores",
    "RootInfo",
    "RotationBreak",
    "RotationPlan",
    "RotationStep",
    "StoreDiff",
    "StoreInfo",
    "StoreKind",
]

SCHEMA = "tlsward.truststores/1"

StoreKind = Literal["system-bundle", "system-dir", "java", "certifi", "node", "nss", "file"]
STORE_KINDS: tuple[StoreKind, ...] = ("system-bundle", "system-dir", "java", "certifi", "node", "nss", "file")


@dataclass(frozen=True, slots=True)
class RootInfo:
    """One trust anchor as a report needs it (the DER stays with the reader)."""

    sha256: str                    # hex, lowercase, of the certificate's DER
    spki_sha256: str               # hex of the SubjectPublicKeyInfo: the CA key, whatever certificate carries it
    subject: str                   # RFC 4514
    not_after: dt.datetime         # UTC
    organization: str = ""         # subject O, for distrust rules keyed by the CA operator

    def expired(self, now: dt.datetime) -> bool:
        return self.not_after <= now


@dataclass(frozen=True, slots=True)
class StoreInfo:
    """A trust store on one host: where it is, which clients read it, and its roots (or why it could not be read).

    ``id`` is stable across runs on a host (kind + path, plus a suffix for a variant such as Node with
    ``NODE_EXTRA_CA_CERTS``), so ``tlsward truststore diff`` can name it. ``clients`` says in plain words who
    uses the store ("curl, wget, Python ssl, OpenSSL s_client"). ``problem`` is non-empty when the store exists
    but cannot be read or parsed; then ``roots`` is empty and the store is reported, never fatal.
    """

    id: str
    kind: StoreKind
    path: str
    label: str                              # "Java 17.0.13 (Debian) cacerts", "certifi 2023.7.22 in /srv/app/.venv"
    version: str = ""                       # certifi / JDK / Node version when known
    clients: str = ""
    roots: tuple[RootInfo, ...] = ()
    modified: dt.datetime | None = None     # the store file's modification time (its age)
    problem: str = ""
    notes: tuple[str, ...] = ()             # e.g. "NSS built-in roots (libnssckbi) counted from Mozilla's list"

    @property
    def readable(self) -> bool:
        return not self.problem

    def fingerprints(self) -> frozenset[str]:
        return frozenset(root.sha256 for root in self.roots)

    def keys(self) -> frozenset[str]:
        return frozenset(root.spki_sha256 for root in self.roots)

    def age_days(self, now: dt.datetime) -> float | None:
        return None if self.modified is None else (now - self.modified).total_seconds() / 86400


@dataclass(frozen=True, slots=True)
class HostStores:
    """Every store found on one host at one time: the unit exported as JSON and imported into the inventory."""

    host: str
    collected_at: dt.datetime
    stores: tuple[StoreInfo, ...]
    searched: tuple[str, ...] = ()          # the search roots used for certifi / NSS, so a reader knows the scope

    def store(self, store_id: str) -> StoreInfo | None:
        return next((s for s in self.stores if s.id == store_id), None)


@dataclass(frozen=True, slots=True)
class StoreDiff:
    """Roots in one store and not the other. Two certificates for one CA key count as the same root, since
    a client anchored on either accepts the same chains (``same_key_other_cert`` lists those pairs)."""

    a: str
    b: str
    only_a: tuple[RootInfo, ...]
    only_b: tuple[RootInfo, ...]
    common: int
    same_key_other_cert: tuple[tuple[RootInfo, RootInfo], ...] = ()

    @property
    def identical(self) -> bool:
        return not self.only_a and not self.only_b


@dataclass(frozen=True, slots=True)
class RotationBreak:
    """One store that fails at one step, and the exact command that prevents it."""

    store_id: str
    store_label: str
    reason: str
    fix: str


@dataclass(frozen=True, slots=True)
class RotationStep:
    name: Literal["add-new-root", "switch-issuer", "remove-old-root"]
    description: str
    breaks: tuple[RotationBreak, ...]
    safe: tuple[str, ...]                   # store ids that keep working at this step


@dataclass(frozen=True, slots=True)
class RotationPlan:
    """From the old CA to the new one, step by step, per store: who breaks when, and the fix for each."""

    old_root: RootInfo
    new_root: RootInfo
    steps: tuple[RotationStep, ...]
    unreadable: tuple[str, ...] = ()        # stores that could not be read: no prediction for them


@dataclass(frozen=True, slots=True)
class ClientCheck:
    """The served chain validated against one store: will the clients reading that store connect?"""

    store_id: str
    store_label: str
    clients: str
    trusted: bool
    reason: str = ""
    extra: dict[str, str] = field(default_factory=dict)


# -- the fleet: snapshots imported from many hosts, and how their stores drift --------------------------------------
#
# Each host's newest snapshot (a :class:`HostStores`, exported as ``tlsward.truststores/1`` JSON) is imported into
# the inventory; drift compares the stores of one kind across hosts. The fleet's *reference* for a kind is the set
# of roots present in a strict majority of that kind's readable stores; each store is then described by the
# reference roots it lacks, the roots it has beyond the reference and its expired roots. As in
# :class:`StoreDiff`, a certificate for the same CA key (``spki_sha256``) as a reference root counts as that root.

__all__ += ["FleetDrift", "KindDrift", "StoreDrift", "TrustStoreHost", "TrustStoreImport", "fleet_drift",
            "reference_threshold"]


@dataclass(frozen=True, slots=True)
class TrustStoreHost:
    """One host of the trust-store inventory, as its newest imported snapshot describes it."""

    host: str
    collected_at: dt.datetime               # when the host's stores were read (the snapshot's time)
    imported_at: dt.datetime                # when that snapshot reached the inventory
    stores: int
    unreadable: int = 0                     # stores with a problem


@dataclass(frozen=True, slots=True)
class TrustStoreImport:
    """What importing one host's snapshot changed: it replaces every store the inventory held for the host."""

    host: str
    stores: int
    roots: int                              # root entries written, over all the host's stores
    added: tuple[str, ...]                  # store ids the inventory did not hold for this host
    removed: tuple[str, ...]                # store ids the previous snapshot had and this one has not
    kept: tuple[str, ...]                   # store ids in both (replaced by this snapshot's content)
    previous_collected_at: dt.datetime | None = None    # None: the host's first snapshot

    @property
    def first(self) -> bool:
        return self.previous_collected_at is None


@dataclass(frozen=True, slots=True)
class StoreDrift:
    """One store on one host against its kind's fleet reference."""

    host: str
    store_id: str
    label: str
    path: str
    version: str
    root_count: int
    modified: dt.datetime | None
    collected_at: dt.datetime
    problem: str
    missing: tuple[RootInfo, ...]           # reference roots absent (by certificate and by CA key)
    extra: tuple[RootInfo, ...]             # roots neither in the reference nor sharing a reference CA key
    expired: tuple[RootInfo, ...]           # roots past their notAfter at the drift's time

    @property
    def drifted(self) -> bool:
        return bool(self.missing or self.extra)

    def age_days(self, now: dt.datetime) -> float | None:
        """Days since the store file was last modified, at ``now`` (None when the snapshot did not say)."""
        return None if self.modified is None else (now - self.modified).total_seconds() / 86400


@dataclass(frozen=True, slots=True)
class KindDrift:
    """Every store of one kind across the fleet, with the reference they are compared with."""

    kind: StoreKind
    reference: tuple[RootInfo, ...]         # roots in a strict majority of the readable stores, by subject
    readable: int                           # stores the reference was computed from
    stores: tuple[StoreDrift, ...]          # by host, then store id

    @property
    def hosts(self) -> int:
        return len({store.host for store in self.stores})

    @property
    def drifting(self) -> int:
        return sum(store.drifted for store in self.stores)

    @property
    def with_expired(self) -> int:
        return sum(bool(store.expired) for store in self.stores)

    @property
    def unreadable(self) -> int:
        return sum(bool(store.problem) for store in self.stores)


@dataclass(frozen=True, slots=True)
class FleetDrift:
    """Drift of every store kind found in the inventory (in :data:`STORE_KINDS` order), at ``at``."""

    at: dt.datetime
    kinds: tuple[KindDrift, ...]

    def kind(self, kind: str) -> KindDrift | None:
        return next((k for k in self.kinds if k.kind == kind), None)


def reference_threshold(readable: int) -> int:
    """How many of ``readable`` stores must hold a root for it to be in the reference: a strict majority."""
    return readable // 2 + 1


def _root_order(root: RootInfo) -> tuple[str, str]:
    return (root.subject, root.sha256)


def _canonical_root(seen: dict[str, RootInfo], root: RootInfo) -> None:
    """One description per fingerprint: the smallest, so every reader picks the same one."""
    known = seen.get(root.sha256)
    key = (root.spki_sha256, root.subject, root.not_after, root.organization)
    if known is None or key < (known.spki_sha256, known.subject, known.not_after, known.organization):
        seen[root.sha256] = root


def fleet_drift(snapshots: Iterable[HostStores], now: dt.datetime, kind: str | None = None) -> FleetDrift:
    """The drift of the stores in ``snapshots`` (one per host), of every kind or of ``kind`` only.

    This is the definition; the inventory computes the same thing in SQL (``tlsward.storage.truststores``),
    and a test holds the two to each other."""
    by_kind: dict[str, list[tuple[HostStores, StoreInfo]]] = {}
    catalogue: dict[str, RootInfo] = {}
    for snapshot in snapshots:
        for store in snapshot.stores:
            if kind is None or store.kind == kind:
                by_kind.setdefault(store.kind, []).append((snapshot, store))
                for root in store.roots:
                    _canonical_root(catalogue, root)
    kinds: list[KindDrift] = []
    for name in STORE_KINDS:
        members = by_kind.get(name)
        if not members:
            continue
        readable = [store for _, store in members if store.readable]
        counts: dict[str, int] = {}
        for store in readable:
            for sha in store.fingerprints():
                counts[sha] = counts.get(sha, 0) + 1
        need = reference_threshold(len(readable))
        reference = tuple(sorted((catalogue[sha] for sha, count in counts.items() if count >= need), key=_root_order))
        ref_fps = frozenset(root.sha256 for root in reference)
        ref_keys = frozenset(root.spki_sha256 for root in reference)
        rows: list[StoreDrift] = []
        for snapshot, store in members:
            own = sorted({catalogue[root.sha256] for root in store.roots}, key=_root_order)
            fps, keys = store.fingerprints(), store.keys()
            missing = tuple(root for root in reference if root.sha256 not in fps and root.spki_sha256 not in keys) \
                if store.readable else ()
            extra = tuple(root for root in own if root.sha256 not in ref_fps and root.spki_sha256 not in ref_keys) \
                if store.readable else ()
            rows.append(StoreDrift(
                host=snapshot.host, store_id=store.id, label=store.label, path=store.path, version=store.version,
                root_count=len(store.roots), modified=store.modified, collected_at=snapshot.collected_at,
                problem=store.problem, missing=missing, extra=extra,
                expired=tuple(root for root in own if root.expired(now))))
        rows.sort(key=lambda row: (row.host, row.store_id))
        kinds.append(KindDrift(kind=name, reference=reference, readable=len(readable), stores=tuple(rows)))
    return FleetDrift(at=now, kinds=tuple(kinds))
