"""Request and response shapes of ``/api/v1/truststores`` (the style of ``tlsward.web.api.models``).

The host document is the ``tlsward.truststores/1`` object of ``tlsward truststore export``, declared with the bounds
of ``tlsward.report.truststores_json`` (and of ``schemas/truststores-1.json``): ``POST`` takes it, ``GET
/truststores/{host}`` gives it back. What a schema cannot say (every store root described in ``roots``, unique
store ids, real dates) is checked by ``host_stores_from_json``, a 400 naming the field.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from tlsward.model.truststores import StoreKind
from tlsward.report.truststores_json import (
    MAX_CLIENTS,
    MAX_HOST,
    MAX_LABEL,
    MAX_NOTE,
    MAX_NOTES,
    MAX_ORGANIZATION,
    MAX_PATH,
    MAX_PROBLEM,
    MAX_ROOTS,
    MAX_SEARCHED,
    MAX_STORE_ID,
    MAX_STORE_ROOTS,
    MAX_STORES,
    MAX_SUBJECT,
    MAX_VERSION,
    SHA256_PATTERN,
    TIME_PATTERN,
)
from tlsward.web.api.models import Out, Time

NO_CONTROLS = r"^[^\x00-\x1f\x7f]*$"
Sha256 = Annotated[str, Field(pattern=SHA256_PATTERN, description="SHA-256, lowercase hex")]
DocTime = Annotated[str, Field(pattern=TIME_PATTERN, description="ISO 8601 in UTC with Z, or with a UTC offset")]


def _text(limit: int, minimum: int = 0) -> object:
    return Field(min_length=minimum, max_length=limit, pattern=NO_CONTROLS)


class Doc(BaseModel):
    """The document, in and out: unknown fields are an error; strings are kept exactly as sent (no trimming)."""

    model_config = ConfigDict(extra="forbid")


class TrustRoot(Doc):
    spki_sha256: Sha256 = Field(description="SHA-256 of the SubjectPublicKeyInfo (the CA key)")
    subject: Annotated[str, _text(MAX_SUBJECT)] = Field(description="RFC 4514")
    not_after: DocTime
    organization: Annotated[str, _text(MAX_ORGANIZATION)] = ""


class TrustStoreDoc(Doc):
    id: Annotated[str, _text(MAX_STORE_ID, 1)] = Field(description="Stable on the host; unique in the document")
    kind: StoreKind
    path: Annotated[str, _text(MAX_PATH)]
    label: Annotated[str, _text(MAX_LABEL)]
    version: Annotated[str, _text(MAX_VERSION)] = ""
    clients: Annotated[str, _text(MAX_CLIENTS)] = ""
    modified: DocTime | None = Field(None, description="The store file's modification time")
    problem: Annotated[str, _text(MAX_PROBLEM)] = Field("", description="Why it could not be read; empty if it was")
    notes: list[Annotated[str, _text(MAX_NOTE)]] = Field(default_factory=list, max_length=MAX_NOTES)
    roots: list[Sha256] = Field(default_factory=list, max_length=MAX_STORE_ROOTS,
                                description="Fingerprints of the store's roots, each described in the document's roots")


class HostStoresDoc(Doc):
    """The ``tlsward.truststores/1`` document of one host (``schemas/truststores-1.json``)."""

    schema_: Literal["tlsward.truststores/1"] = Field(alias="schema")
    host: Annotated[str, _text(MAX_HOST, 1)]
    collected_at: DocTime
    searched: list[Annotated[str, _text(MAX_PATH)]] = Field(default_factory=list, max_length=MAX_SEARCHED)
    roots: dict[Sha256, TrustRoot] = Field(default_factory=dict, max_length=MAX_ROOTS,
                                           description="Every root held by some store, by SHA-256")
    stores: list[TrustStoreDoc] = Field(max_length=MAX_STORES)


class TrustStoreImport(Out):
    host: str
    stores: int
    roots: int = Field(description="Root entries written, over all the host's stores")
    added: list[str] = Field(description="Store ids the inventory did not hold for this host")
    removed: list[str] = Field(description="Store ids of the previous snapshot that this one has not: deleted")
    kept: list[str] = Field(description="Store ids in both, replaced by this snapshot's content")
    previous_collected_at: Time | None = Field(description="The replaced snapshot's time; null on a first import")


class TrustStoreHost(Out):
    host: str
    collected_at: Time
    imported_at: Time
    stores: int
    unreadable: int = Field(description="Stores with a problem")


class RootRef(Out):
    sha256: str
    spki_sha256: str
    subject: str
    organization: str
    not_after: Time


class StoreDrift(Out):
    host: str
    store_id: str
    label: str
    path: str
    version: str
    root_count: int
    modified: Time | None
    age_days: float | None = Field(description="Days since the store file was modified")
    collected_at: Time
    problem: str
    drifted: bool = Field(description="Missing or extra roots against the fleet reference")
    missing: list[RootRef] = Field(description="Reference roots the store lacks (by certificate and by CA key)")
    extra: list[RootRef] = Field(description="Roots outside the reference")
    expired: list[RootRef]


class KindDrift(Out):
    kind: StoreKind
    stores: int
    hosts: int
    readable: int = Field(description="Stores the reference was computed from (those without a problem)")
    drifting: int
    with_expired: int
    unreadable: int
    reference: list[RootRef] = Field(description="Roots in a strict majority of the readable stores of this kind")
    items: list[StoreDrift] = Field(description="By host, then store id")


class TrustStoreOverview(Out):
    at: Time
    hosts: list[TrustStoreHost]
    kinds: list[KindDrift]
