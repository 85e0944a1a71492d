"""Trust-store snapshots for tests: roots with made-up but well-formed fingerprints, stores and hosts."""

from __future__ import annotations

import datetime as dt
import hashlib

from tlsward.model.truststores import HostStores, RootInfo, StoreInfo, StoreKind

T0 = dt.datetime(2026, 5, 1, 12, 0, tzinfo=dt.UTC)
NOW = T0 + dt.timedelta(hours=1)


def hexdigest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def root(name: str, *, key: str | None = None, expires: dt.datetime | None = None, org: str = "") -> RootInfo:
    """A root called ``name``; ``key`` names its CA key (default: its own), so two roots may share one."""
    return RootInfo(sha256=hexdigest(f"cert:{name}"), spki_sha256=hexdigest(f"key:{key or name}"),
                    subject=f"CN={name},O={org or name + ' Org'}", not_after=expires or T0 + dt.timedelta(days=3650),
                    organization=org or f"{name} Org")


COMMON = tuple(root(f"Common Root {i}") for i in range(5))
LEGACY = root("Legacy Root")
CORP = root("Corp Internal Root", org="Corp")
EXPIRED = root("Expired Root", expires=T0 - dt.timedelta(days=30))


def store(store_id: str, *roots: RootInfo, kind: StoreKind = "system-bundle", problem: str = "",
          version: str = "", modified: dt.datetime | None = T0 - dt.timedelta(days=10)) -> StoreInfo:
    return StoreInfo(id=store_id, kind=kind, path=f"/{store_id}", label=f"{kind} at /{store_id}", version=version,
                     clients="curl, Python ssl", roots=roots, modified=modified, problem=problem,
                     notes=("counted from a test",) if kind == "nss" else ())


def host(name: str, *stores: StoreInfo, at: dt.datetime = T0, searched: tuple[str, ...] = ("/srv",)) -> HostStores:
    return HostStores(host=name, collected_at=at, stores=stores, searched=searched)


def fleet() -> list[HostStores]:
    """Three hosts: a lacks LEGACY in its system bundle, c has CORP in addition; Java everywhere the same but
    b's cacerts is unreadable; a's certifi still carries an expired root."""
    return [
        host("a.example", store("etc/ssl/certs/ca-certificates.crt", *COMMON),
             store("usr/lib/jvm/java-17/lib/security/cacerts", *COMMON[:3], kind="java", version="17.0.13"),
             store("srv/app/.venv/certifi/cacert.pem", *COMMON, LEGACY, EXPIRED, kind="certifi",
                   version="2023.7.22")),
        host("b.example", store("etc/ssl/certs/ca-certificates.crt", *COMMON, LEGACY),
             store("usr/lib/jvm/java-17/lib/security/cacerts", kind="java", version="17.0.9",
                   problem="keystore was tampered with, or password was incorrect")),
        host("c.example", store("etc/ssl/certs/ca-certificates.crt", *COMMON, LEGACY, CORP),
             store("usr/lib/jvm/java-17/lib/security/cacerts", *COMMON[:3], kind="java", version="17.0.13")),
    ]
