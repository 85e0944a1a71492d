"""JSON over a host's trust stores: the ``tlsward.truststores/1`` document that ``tlsward truststore export``
writes on a host and the inventory imports (``tlsward truststore import``, ``POST /api/v1/truststores``), so the
dashboards compare stores across the fleet. ``schemas/truststores-1.json`` describes it.

A root in several stores (the Mozilla roots are in nearly every one) is written once, in ``roots``, keyed by
its SHA-256; each store lists the fingerprints it holds. That keeps a host with a dozen certifi copies well
under the API's 1 MiB body cap. Times are ISO 8601 in UTC with a ``Z`` (``2026-05-01T12:00:00Z``; microseconds
when there are any), so a round trip gives back the same instants.

Reading is strict, because the document crosses a trust boundary (any host may send one): anything that is not
exactly this shape is a :class:`~tlsward.model.errors.UsageError` whose one-line message names the source and
the field (``host.json: stores[2].roots[5]: 'abc' is not a SHA-256 fingerprint ...``). Unknown fields are errors
(a typo must not be ignored), strings may not carry control characters (NUL breaks PostgreSQL, the rest breaks
logs and terminals), and every string and list has a bound.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any, NoReturn

from tlsward.model.errors import UsageError
from tlsward.model.truststores import (
    SCHEMA,
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
)

SCHEMA_FILE = "truststores-1.json"

# Bounds on what an imported document may hold (the JSON Schema and the API's request model say the same).
MAX_HOST = 255
MAX_STORE_ID = 1024
MAX_PATH = 4096
MAX_LABEL = 1024
MAX_VERSION = 128
MAX_CLIENTS = 1024
MAX_PROBLEM = 2048
MAX_NOTE = 2048
MAX_NOTES = 100
MAX_SUBJECT = 2048
MAX_ORGANIZATION = 512
MAX_SEARCHED = 1000
MAX_STORES = 2000
MAX_STORE_ROOTS = 10_000
MAX_ROOTS = 50_000

SHA256_PATTERN = "^[0-9a-f]{64}$"
TIME_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?(Z|[+-][0-9]{2}:[0-9]{2})$"
_SHA256 = re.compile(SHA256_PATTERN)
_TIME = re.compile(TIME_PATTERN)

_TOP = {"schema", "host", "collected_at", "searched", "roots", "stores"}
_STORE = {"id", "kind", "path", "label", "version", "clients", "modified", "problem", "notes", "roots"}
_ROOT = {"spki_sha256", "subject", "not_after", "organization"}


def timestamp(value: dt.datetime) -> str:
    """UTC, ``Z``-suffixed ISO 8601; a naive datetime is taken as UTC (the model holds UTC only)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _safe(text: str) -> str:
    """Text the reader accepts: a control character or a lone surrogate (an undecodable byte in a file name,
    as Python's ``surrogateescape`` hands it over) is written as a visible escape instead, so that every export
    imports."""
    if _bad_character(text) is None:
        return text
    return "".join((f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}") if _bad_character(ch) else ch
                   for ch in text)


def _canonical(roots: dict[str, RootInfo], root: RootInfo) -> None:
    """One description per fingerprint (the same DER has the same facts; if two readers ever disagree, the
    smallest description is kept, as ``tlsward.model.truststores.fleet_drift`` does)."""
    known = roots.get(root.sha256)
    if known is None or (root.spki_sha256, root.subject, root.not_after, root.organization) < (
            known.spki_sha256, known.subject, known.not_after, known.organization):
        roots[root.sha256] = root


def host_stores_to_json(h: HostStores) -> dict[str, Any]:
    """The ``tlsward.truststores/1`` document of one host's stores (``schemas/truststores-1.json``)."""
    roots: dict[str, RootInfo] = {}
    for store in h.stores:
        for root in store.roots:
            _canonical(roots, root)
    return {
        "schema": SCHEMA,
        "host": _safe(h.host),
        "collected_at": timestamp(h.collected_at),
        "searched": [_safe(path) for path in h.searched],
        "roots": {sha: {"spki_sha256": root.spki_sha256, "subject": _safe(root.subject),
                        "not_after": timestamp(root.not_after), "organization": _safe(root.organization)}
                  for sha, root in sorted(roots.items())},
        "stores": [{
            "id": _safe(store.id), "kind": store.kind, "path": _safe(store.path), "label": _safe(store.label),
            "version": _safe(store.version), "clients": _safe(store.clients),
            "modified": timestamp(store.modified) if store.modified is not None else None,
            "problem": _safe(store.problem), "notes": [_safe(note) for note in store.notes],
            "roots": [root.sha256 for root in store.roots],
        } for store in h.stores],
    }


def host_json(row: TrustStoreHost) -> dict[str, Any]:
    """One host of the trust-store inventory (``GET /api/v1/truststores``: ``hosts``)."""
    return {"host": row.host, "collected_at": row.collected_at.isoformat(), "imported_at": row.imported_at.isoformat(),
            "stores": row.stores, "unreadable": row.unreadable}


def import_json(result: TrustStoreImport) -> dict[str, Any]:
    """What an import changed (``POST /api/v1/truststores``)."""
    return {"host": result.host, "stores": result.stores, "roots": result.roots, "added": list(result.added),
            "removed": list(result.removed), "kept": list(result.kept),
            "previous_collected_at": result.previous_collected_at.isoformat()
            if result.previous_collected_at is not None else None}


def root_ref_json(root: RootInfo) -> dict[str, Any]:
    """A root as drift names it."""
    return {"sha256": root.sha256, "spki_sha256": root.spki_sha256, "subject": root.subject,
            "organization": root.organization, "not_after": root.not_after.isoformat()}


def store_drift_json(row: StoreDrift, now: dt.datetime) -> dict[str, Any]:
    age = row.age_days(now)
    return {"host": row.host, "store_id": row.store_id, "label": row.label, "path": row.path, "version": row.version,
            "root_count": row.root_count, "modified": row.modified.isoformat() if row.modified is not None else None,
            "age_days": round(age, 2) if age is not None else None, "collected_at": row.collected_at.isoformat(),
            "problem": row.problem, "drifted": row.drifted,
            "missing": [root_ref_json(root) for root in row.missing],
            "extra": [root_ref_json(root) for root in row.extra],
            "expired": [root_ref_json(root) for root in row.expired]}


def kind_drift_json(kind: KindDrift, now: dt.datetime) -> dict[str, Any]:
    return {"kind": kind.kind, "stores": len(kind.stores), "hosts": kind.hosts, "readable": kind.readable,
            "drifting": kind.drifting, "with_expired": kind.with_expired, "unreadable": kind.unreadable,
            "reference": [root_ref_json(root) for root in kind.reference],
            "items": [store_drift_json(row, now) for row in kind.stores]}


def drift_json(drift: FleetDrift) -> list[dict[str, Any]]:
    """Drift per store kind (``GET /api/v1/truststores``: ``kinds``); ages are at ``drift.at``."""
    return [kind_drift_json(kind, drift.at) for kind in drift.kinds]


def host_stores_from_json(data: object, source: str) -> HostStores:
    """The host's stores from a ``tlsward.truststores/1`` document (already parsed from JSON), checked field by
    field. Raises UsageError with one line naming ``source`` and the field at fault."""
    return _Reader(source).host(data)


def _show(value: object) -> str:
    """A value for an error message: its repr (control characters escaped, so one line), cut short."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


def _bad_character(text: str) -> str | None:
    for ch in text:
        code = ord(ch)
        if code < 0x20 or code == 0x7F:
            return f"control character U+{code:04X}"
        if 0xD800 <= code <= 0xDFFF:
            return f"lone surrogate U+{code:04X} (not UTF-8)"
    return None


class _Reader:
    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, where: str, what: str) -> NoReturn:
        raise UsageError(f"{self.source}: {where}: {what}" if where else f"{self.source}: {what}")

    # -- shapes --------------------------------------------------------------------------------------------------

    def mapping(self, value: object, where: str, allowed: set[str], required: tuple[str, ...]) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            self.fail(where, f"expected an object, got {_type(value)}")
        for key in value:
            if not isinstance(key, str):
                self.fail(where, f"key {_show(key)} is not a string")
        unknown = sorted(set(value) - allowed)
        if unknown:
            self.fail(where, f"unknown field {_show(unknown[0])} (known: {', '.join(sorted(allowed))})")
        for key in required:
            if key not in value:
                self.fail(where, f"missing field {key!r}")
        return value

    def array(self, value: object, where: str, limit: int) -> list[Any] | tuple[Any, ...]:
        if not isinstance(value, list | tuple):
            self.fail(where, f"expected an array, got {_type(value)}")
        if len(value) > limit:
            self.fail(where, f"{len(value)} items; at most {limit}")
        return value

    def string(self, value: object, where: str, limit: int, *, nonempty: bool = False, trimmed: bool = False) -> str:
        if not isinstance(value, str):
            self.fail(where, f"expected a string, got {_type(value)}")
        if len(value) > limit:
            self.fail(where, f"{len(value)} characters; at most {limit}")
        problem = _bad_character(value)
        if problem is not None:
            self.fail(where, f"{problem} in {_show(value)}")
        if nonempty and not value.strip():
            self.fail(where, "must not be empty")
        if trimmed and value != value.strip():
            self.fail(where, f"{_show(value)} has leading or trailing whitespace")
        return value

    def sha256(self, value: object, where: str) -> str:
        if not isinstance(value, str) or not _SHA256.fullmatch(value):
            self.fail(where, f"{_show(value)} is not a SHA-256 fingerprint (64 lowercase hex digits)")
        return value

    def time(self, value: object, where: str) -> dt.datetime:
        if not isinstance(value, str) or not _TIME.fullmatch(value):
            self.fail(where, f"{_show(value)} is not a time such as 2026-05-01T12:00:00Z "
                             "(ISO 8601 with Z or a UTC offset)")
        try:
            return dt.datetime.fromisoformat(value).astimezone(dt.UTC)
        except (ValueError, OverflowError) as exc:
            self.fail(where, f"{_show(value)} is not a valid time ({exc})")

    def optional(self, data: Mapping[str, Any], key: str, where: str, limit: int) -> str:
        return self.string(data[key], f"{where}.{key}" if where else key, limit) if key in data else ""

    # -- the document ---------------------------------------------------------------------------------------------

    def host(self, data: object) -> HostStores:
        if not isinstance(data, Mapping):
            self.fail("", f"expected a JSON object (a {SCHEMA} document), got {_type(data)}")
        if "schema" not in data:
            self.fail("schema", f"missing: not a tlsward trust-store document (expected {SCHEMA!r}, as written by "
                                "`tlsward truststore export`)")
        if data["schema"] != SCHEMA:
            self.fail("schema", f"{_show(data['schema'])} is not {SCHEMA!r}: not a tlsward trust-store document, or "
                                "one of a version this tlsward does not read")
        doc = self.mapping(data, "", _TOP, ("schema", "host", "collected_at", "stores"))
        host = self.string(doc["host"], "host", MAX_HOST, nonempty=True, trimmed=True)
        collected_at = self.time(doc["collected_at"], "collected_at")
        searched = tuple(self.string(item, f"searched[{i}]", MAX_PATH)
                         for i, item in enumerate(self.array(doc.get("searched", []), "searched", MAX_SEARCHED)))
        roots = self.roots(doc.get("roots", {}))
        stores = self.array(doc["stores"], "stores", MAX_STORES)
        seen: dict[str, int] = {}
        read: list[StoreInfo] = []
        for i, item in enumerate(stores):
            store = self.store(item, f"stores[{i}]", roots)
            if store.id in seen:
                self.fail(f"stores[{i}].id", f"{_show(store.id)} is also the id of stores[{seen[store.id]}]; "
                                             "store ids are unique on a host")
            seen[store.id] = i
            read.append(store)
        return HostStores(host=host, collected_at=collected_at, stores=tuple(read), searched=searched)

    def roots(self, value: object) -> dict[str, RootInfo]:
        if not isinstance(value, Mapping):
            self.fail("roots", f"expected an object keyed by SHA-256, got {_type(value)}")
        if len(value) > MAX_ROOTS:
            self.fail("roots", f"{len(value)} roots; at most {MAX_ROOTS}")
        roots: dict[str, RootInfo] = {}
        for sha, item in value.items():
            where = f"roots[{_show(sha)}]"
            self.sha256(sha, f"roots key {_show(sha)}")
            root = self.mapping(item, where, _ROOT, ("spki_sha256", "subject", "not_after"))
            roots[sha] = RootInfo(sha256=sha, spki_sha256=self.sha256(root["spki_sha256"], f"{where}.spki_sha256"),
                                  subject=self.string(root["subject"], f"{where}.subject", MAX_SUBJECT),
                                  not_after=self.time(root["not_after"], f"{where}.not_after"),
                                  organization=self.optional(root, "organization", where, MAX_ORGANIZATION))
        return roots

    def store(self, value: object, where: str, roots: Mapping[str, RootInfo]) -> StoreInfo:
        data = self.mapping(value, where, _STORE, ("id", "kind", "path", "label"))
        kind = data["kind"]
        if kind not in STORE_KINDS:
            self.fail(f"{where}.kind", f"{_show(kind)} is not a store kind ({', '.join(STORE_KINDS)})")
        store_kind: StoreKind = kind
        modified = data.get("modified")
        held: list[RootInfo] = []
        for i, sha in enumerate(self.array(data.get("roots", []), f"{where}.roots", MAX_STORE_ROOTS)):
            self.sha256(sha, f"{where}.roots[{i}]")
            found = roots.get(sha)
            if found is None:
                self.fail(f"{where}.roots[{i}]", f"{sha} is not described in the document's roots")
            held.append(found)
        return StoreInfo(
            id=self.string(data["id"], f"{where}.id", MAX_STORE_ID, nonempty=True),
            kind=store_kind,
            path=self.string(data["path"], f"{where}.path", MAX_PATH),
            label=self.string(data["label"], f"{where}.label", MAX_LABEL),
            version=self.optional(data, "version", where, MAX_VERSION),
            clients=self.optional(data, "clients", where, MAX_CLIENTS),
            roots=tuple(held),
            modified=None if modified is None else self.time(modified, f"{where}.modified"),
            problem=self.optional(data, "problem", where, MAX_PROBLEM),
            notes=tuple(self.string(note, f"{where}.notes[{i}]", MAX_NOTE)
                        for i, note in enumerate(self.array(data.get("notes", []), f"{where}.notes", MAX_NOTES))))
