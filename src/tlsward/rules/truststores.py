"""Trust stores compared, audited and planned for a root rotation: pure functions over :mod:`tlsward.model.truststores`.

Why pure: the same answers are computed for this host (``tlsward truststore``), for a host's exported JSON and
for the fleet in the inventory, so nothing here reads a file. A root is matched by its key (subject + SPKI),
not by the certificate's bytes: a CA that re-issues its root with a new expiry is the same anchor to every
client. Fix commands are the exact ones for the store's kind, since the point of the report is what to type.
"""

from __future__ import annotations

import datetime as dt
import shlex
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from tlsward.model.certificate import ChainAnalysis
from tlsward.model.findings import Finding
from tlsward.model.truststores import (
    RootInfo,
    RotationBreak,
    RotationPlan,
    RotationStep,
    StoreDiff,
    StoreInfo,
)
from tlsward.rules.base import Context, finding

__all__ = [
    "DISTRUSTED",
    "EXPIRING_DAYS",
    "PUBLIC_KINDS",
    "Distrust",
    "StoreSummary",
    "add_root_command",
    "audit_store",
    "diff_stores",
    "distrust_of",
    "holds",
    "rotation_plan",
    "stores_fail_finding",
    "summarize",
]

EXPIRING_DAYS = 180            # a root this close to its end is flagged: chains anchored on it need a new path
PUBLIC_KINDS = frozenset({"system-bundle", "system-dir", "java", "certifi", "node", "nss"})
_MAX_NAMED = 5                 # roots named in one evidence line; the rest are counted


@dataclass(frozen=True, slots=True)
class Distrust:
    """A CA operator the browser root programs distrusted for TLS, matched by the subject O of its roots."""

    organizations: tuple[str, ...]
    who: str
    since: str
    why: str


# Public decisions of the Mozilla and Chrome root programs (CCADB incident reports, root program blog posts).
# A store still holding these accepts certificates that browsers reject, and hides that a server's certificate
# from such a CA already fails for most users.
DISTRUSTED: tuple[Distrust, ...] = (
    Distrust(("DigiNotar",), "every root program", "2011-09", "CA compromise, fraudulent certificates"),
    Distrust(("China Internet Network Information Center",), "Mozilla and Chrome", "2015-04",
             "issued an unconstrained intermediate used for interception"),
    Distrust(("WoSign CA Limited", "StartCom Ltd.", "StartCom Ltd"), "Mozilla and Chrome", "2016-10",
             "backdated SHA-1 certificates, undisclosed acquisition"),
    Distrust(("Symantec Corporation", "VeriSign, Inc.", "GeoTrust Inc.", "thawte, Inc.", "Thawte Consulting cc"),
             "Chrome and Mozilla", "2018-10", "Symantec PKI mis-issuance (legacy roots; DigiCert re-issued)"),
    Distrust(("AC Camerfirma S.A.", "AC CAMERFIRMA S.A."), "Mozilla and Chrome", "2021-05",
             "long series of compliance failures"),
    Distrust(("TrustCor Systems S. de R.L.",), "Mozilla and Chrome", "2022-11",
             "ties to a surveillance contractor"),
    Distrust(("E-Tugra EBG Bilisim Teknolojileri ve Hizmetleri A.S.", "E-Tugra EBG A.S."), "Mozilla", "2023-02",
             "security failures at the CA"),
    Distrust(("Entrust, Inc.", "Entrust.net", "AffirmTrust"), "Chrome (2024-11-11) and Mozilla (2024-11-30)",
             "2024-11", "TLS certificates issued after the date are distrusted after compliance failures"),
    Distrust(("Chunghwa Telecom Co., Ltd.", "NetLock Kft."), "Chrome", "2025-08",
             "TLS certificates issued after 2025-07-31 are distrusted"),
)
_DISTRUST_BY_ORG = {org.casefold(): entry for entry in DISTRUSTED for org in entry.organizations}


def distrust_of(root: RootInfo) -> Distrust | None:
    return _DISTRUST_BY_ORG.get(root.organization.casefold()) if root.organization else None


def _anchor_key(root: RootInfo) -> tuple[str, str]:
    return (root.subject, root.spki_sha256)


def holds(store: StoreInfo, root: RootInfo) -> bool:
    """Whether the store anchors chains that end at ``root`` (same subject and key, whichever certificate)."""
    key = _anchor_key(root)
    return any(_anchor_key(r) == key for r in store.roots)


def diff_stores(a: StoreInfo, b: StoreInfo) -> StoreDiff:
    """Roots in one store and not the other, matching roots by subject and key."""
    keys_a = {_anchor_key(r): r for r in a.roots}
    keys_b = {_anchor_key(r): r for r in b.roots}
    only_a = tuple(sorted((r for k, r in keys_a.items() if k not in keys_b), key=_sort_key))
    only_b = tuple(sorted((r for k, r in keys_b.items() if k not in keys_a), key=_sort_key))
    pairs = tuple((keys_a[k], keys_b[k]) for k in sorted(keys_a.keys() & keys_b.keys())
                  if keys_a[k].sha256 != keys_b[k].sha256)
    return StoreDiff(a=a.id, b=b.id, only_a=only_a, only_b=only_b, common=len(keys_a.keys() & keys_b.keys()),
                     same_key_other_cert=pairs)


def _sort_key(root: RootInfo) -> tuple[str, str]:
    return (root.subject.casefold(), root.sha256)


@dataclass(frozen=True, slots=True)
class StoreSummary:
    """One row of the host matrix: a store's counts against the reference list and the internal CAs."""

    store: StoreInfo
    missing_vs_reference: tuple[RootInfo, ...]    # in the reference (Mozilla's current list), not in this store
    extra_vs_reference: tuple[RootInfo, ...]      # in this store, not in the reference
    expired: tuple[RootInfo, ...]
    expiring: tuple[RootInfo, ...]
    distrusted: tuple[tuple[RootInfo, Distrust], ...]
    internal_missing: tuple[RootInfo, ...]         # given internal CAs this store does not hold


def summarize(store: StoreInfo, *, now: dt.datetime, reference: StoreInfo | None = None,
              internal: Sequence[RootInfo] = (), expiring_days: int = EXPIRING_DAYS) -> StoreSummary:
    soon = now + dt.timedelta(days=expiring_days)
    compare = reference is not None and store.kind in PUBLIC_KINDS and store.readable
    diff = diff_stores(store, reference) if compare and reference is not None else None
    return StoreSummary(
        store=store,
        missing_vs_reference=diff.only_b if diff else (),
        extra_vs_reference=diff.only_a if diff else (),
        expired=tuple(r for r in store.roots if r.expired(now)),
        expiring=tuple(r for r in store.roots if now < r.not_after <= soon),
        distrusted=tuple((r, d) for r in store.roots if (d := distrust_of(r)) is not None),
        internal_missing=tuple(ca for ca in internal if store.readable and not holds(store, ca)),
    )


def audit_store(summary: StoreSummary, *, now: dt.datetime, reference_label: str = "") -> Iterator[Finding]:
    """The findings for one store: unreadable, expired / expiring / distrusted roots, behind the reference
    list, internal CA missing. Evidence names the store; the fix is the command for that store's kind."""
    store = summary.store
    where = f"{store.label} ({store.path})"
    if not store.readable:
        yield finding("truststore.unreadable", f"{where}: {store.problem}",
                      fix="fix the file's permissions or restore it from the package that owns it "
                          f"(`dpkg -S {shlex.quote(store.path)}` then `apt-get install --reinstall PACKAGE`)",
                      confirm=_list_command(store))
        return
    for ca in summary.internal_missing:
        yield finding("truststore.internal_ca_missing",
                      f"{where} does not hold the internal CA {ca.subject}: {store.clients or 'its clients'} "
                      "cannot connect to services with certificates from it",
                      fix=add_root_command(store, "INTERNAL-CA.pem", "internal-ca"), confirm=_list_command(store))
    if summary.distrusted:
        names = _names(r for r, _ in summary.distrusted)
        reasons = "; ".join(sorted({f"{d.organizations[0]}: distrusted by {d.who} since {d.since} ({d.why})"
                                    for _, d in summary.distrusted}))
        yield finding("truststore.distrusted_root",
                      f"{where} still trusts {len(summary.distrusted)} root(s) the browsers distrust: {names}. "
                      f"{reasons}",
                      fix=_refresh_command(store), confirm=_list_command(store))
    if summary.expired:
        yield finding("truststore.root_expired",
                      f"{where} holds {len(summary.expired)} expired root(s): {_names(summary.expired)}",
                      fix=_refresh_command(store), confirm=_list_command(store))
    if summary.expiring:
        first = min(summary.expiring, key=lambda r: r.not_after)
        yield finding("truststore.root_expiring",
                      f"{where}: {len(summary.expiring)} root(s) expire within {EXPIRING_DAYS} days, first "
                      f"{first.subject} on {first.not_after:%Y-%m-%d}: chains anchored only on them fail then",
                      fix="check which of your endpoints chain to these roots (`tlsward inventory list --issuer "
                          "NAME`) and move them to a CA with a newer root; refresh the store: "
                          + _refresh_command(store), confirm=_list_command(store))
    if summary.missing_vs_reference:
        age = store.age_days(now)
        aged = f", last changed {age:.0f} days ago" if age is not None else ""
        yield finding("truststore.stale",
                      f"{where} lacks {len(summary.missing_vs_reference)} root(s) of the current Mozilla list"
                      f"{' (' + reference_label + ')' if reference_label else ''}{aged}: "
                      f"{_names(summary.missing_vs_reference)}; sites with certificates from those CAs fail here",
                      fix=_refresh_command(store), confirm=_list_command(store))


def _names(roots: Iterable[RootInfo]) -> str:
    roots = list(roots)
    named = ", ".join(_short(r.subject) for r in roots[:_MAX_NAMED])
    return named + (f" and {len(roots) - _MAX_NAMED} more" if len(roots) > _MAX_NAMED else "")


def _short(subject: str) -> str:
    """The CN (or the whole name when it has none): what people call a root."""
    for part in subject.split(","):
        if part.strip().upper().startswith("CN="):
            return part.strip()[3:]
    return subject


def _rhel(path: str) -> bool:
    return path.startswith("/etc/pki/")


def add_root_command(store: StoreInfo, pem: str, alias: str) -> str:
    """The exact command that makes this store trust the root in ``pem``."""
    q_pem, q_path, q_alias = shlex.quote(pem), shlex.quote(store.path), shlex.quote(alias)
    if store.kind in ("system-bundle", "system-dir"):
        if _rhel(store.path):
            return f"cp {q_pem} /etc/pki/ca-trust/source/anchors/{alias}.pem && update-ca-trust"
        return f"cp {q_pem} /usr/local/share/ca-certificates/{alias}.crt && update-ca-certificates"
    if store.kind == "java":
        debian = "" if store.path != "/etc/ssl/certs/java/cacerts" else (
            " (Debian regenerates this file from the system store: `update-ca-certificates` with the root in "
            "/usr/local/share/ca-certificates/ does the same)")
        return (f"keytool -importcert -noprompt -alias {q_alias} -file {q_pem} -keystore {q_path} "
                f"-storepass changeit{debian}")
    if store.kind == "certifi":
        return ("certifi's bundle is replaced on every upgrade: point this environment's clients at a bundle "
                f"that holds the root instead, `export REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt "
                f"SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt` after `{add_root_command(_system(), pem, alias)}`"
                " (or `pip install truststore` and call `truststore.inject_into_ssl()`)")
    if store.kind == "node":
        return (f"export NODE_EXTRA_CA_CERTS={q_pem} for the node process (systemd: `Environment=NODE_EXTRA_CA_CERTS="
                f"{pem}`), or start node with `--use-openssl-ca` after adding the root to the system store")
    if store.kind == "nss":
        return f"certutil -A -d sql:{q_path} -n {q_alias} -t C,, -i {q_pem}"
    return f"cat {q_pem} >> {q_path}"


def _system() -> StoreInfo:
    return StoreInfo(id="system-bundle:/etc/ssl/certs/ca-certificates.crt", kind="system-bundle",
                     path="/etc/ssl/certs/ca-certificates.crt", label="system bundle")


def _refresh_command(store: StoreInfo) -> str:
    if store.kind in ("system-bundle", "system-dir"):
        if _rhel(store.path):
            return "dnf upgrade ca-certificates && update-ca-trust"
        return "apt-get install --only-upgrade ca-certificates && update-ca-certificates"
    if store.kind == "java":
        return ("upgrade the JDK (its cacerts follows the release), or on Debian `apt-get install --only-upgrade "
                "ca-certificates-java`")
    if store.kind == "certifi":
        return f"upgrade certifi in that environment: `pip install --upgrade certifi` ({store.path})"
    if store.kind == "node":
        return "upgrade Node.js (its root list is compiled in), or run it with `--use-openssl-ca`"
    if store.kind == "nss":
        return f"certutil -L -d sql:{shlex.quote(store.path)} then remove what you do not want with certutil -D -n NAME"
    return f"rebuild {store.path} from a current bundle"


def _list_command(store: StoreInfo) -> str:
    q = shlex.quote(store.path)
    if store.kind == "java":
        return f"keytool -list -keystore {q} -storepass changeit | grep -c trustedCertEntry"
    if store.kind == "nss":
        return f"certutil -L -d sql:{q}"
    if store.kind == "node":
        return "node -p \"require('tls').rootCertificates.length\""
    if store.kind == "system-dir":
        return f"ls {q}/*.0 | wc -l"
    return f"grep -c 'BEGIN CERTIFICATE' {q}"


def rotation_plan(stores: Sequence[StoreInfo], old: Sequence[RootInfo], new: Sequence[RootInfo], *,
                  new_pem: str = "NEW-ROOT.pem", cross_signed: bool = False) -> RotationPlan:
    """Who breaks at each step of moving from the old CA to the new one, predicted from the stores' contents.

    ``old`` and ``new`` are the anchors of each CA (the first is the root named in the plan; a CA with several
    roots or re-issued roots is trusted when any of them is held). ``cross_signed``: the new issuer's chain as
    served during the switch includes a certificate for it signed by the old root, so clients holding only the
    old root keep working until the cross-sign is dropped with the old root.
    Steps: (1) add the new root: adding never breaks, but a store without the old root fails already today;
    (2) switch the issuer: stores holding neither the new root nor (with a cross-sign) the old one break;
    (3) remove the old root (and the cross-sign): every store without the new root breaks.
    """
    if not old or not new:
        raise ValueError("both the old and the new CA need at least one root")
    readable = [s for s in stores if s.readable]
    has_old = {s.id: any(holds(s, r) for r in old) for s in readable}
    has_new = {s.id: any(holds(s, r) for r in new) for s in readable}
    old_name, new_name = _short(old[0].subject), _short(new[0].subject)

    def step(name: str, description: str, broken: Sequence[tuple[StoreInfo, str]]) -> RotationStep:
        ids = {s.id for s, _ in broken}
        return RotationStep(
            name=name,  # type: ignore[arg-type]
            description=description,
            breaks=tuple(RotationBreak(s.id, s.label, reason, add_root_command(s, new_pem, "new-root"))
                         for s, reason in broken),
            safe=tuple(s.id for s in readable if s.id not in ids),
        )

    already = [(s, f"does not hold the old root {old_name}: its clients already fail today")
               for s in readable if not has_old[s.id]]
    at_switch = [(s, f"holds neither the new root {new_name} nor the old one to reach it through the cross-sign"
                  if cross_signed else f"root {new_name} is not in this store")
                 for s in readable if not has_new[s.id] and not (cross_signed and has_old[s.id])]
    at_removal = [(s, f"root {new_name} is not in this store, and the old root {old_name} is gone")
                  for s in readable if not has_new[s.id]]
    return RotationPlan(
        old_root=old[0],
        new_root=new[0],
        steps=(
            step("add-new-root", f"add {new_name} to every store next to {old_name}; servers still use the old "
                 "issuer, so nothing new breaks (stores listed fail already)", already),
            step("switch-issuer", f"servers switch to certificates issued under {new_name}"
                 + (" (serving the cross-sign by the old root)" if cross_signed else ""), at_switch),
            step("remove-old-root", f"remove {old_name} from the stores"
                 + (" and stop serving the cross-sign" if cross_signed else ""), at_removal),
        ),
        unreadable=tuple(s.id for s in stores if not s.readable),
    )


def stores_fail_finding(analysis: ChainAnalysis, host_stores: set[str], ctx: Context) -> Finding | None:
    """``trust.store_fails`` when some trust stores of this host accept the served chain and some do not:
    "works with curl, fails from Java". When none accepts it, ``chain.untrusted`` already says so. Stores that
    fail for the same reason are named together ("Java 17 and certifi 2023.7.22 will fail: root X ...")."""
    failing = [v for v in analysis.verdicts if v.store in host_stores and not v.trusted]
    if not failing or not any(v.trusted for v in analysis.verdicts):
        return None
    by_reason: dict[str, list[str]] = {}
    for verdict in failing:
        by_reason.setdefault(verdict.reason, []).append(verdict.store)
    parts = [f"{_and(stores)} will fail: {reason}" for reason, stores in by_reason.items()]
    trusted = ", ".join(v.store for v in analysis.verdicts if v.trusted)
    return finding("trust.store_fails",
                   f"{'; '.join(parts)} (trusted by {trusted})",
                   fix="add the missing root to each failing store with the command `tlsward truststore matrix "
                       "--internal-ca ROOT.pem` prints for it (keytool -importcert for Java, update-ca-certificates "
                       "for the system bundle, NODE_EXTRA_CA_CERTS for Node, REQUESTS_CA_BUNDLE for a certifi "
                       "environment, certutil -A for NSS), or serve a chain to a root every store holds",
                   confirm=f"tlsward truststore list; {ctx.s_client} -showcerts 2>/dev/null | grep -E '^ *[si]:'")


def _and(names: Sequence[str], most: int = 8) -> str:
    """"A", "A and B", "A, B and C", or "A, B, ... and 12 more"."""
    if len(names) > most:
        return ", ".join(names[:most]) + f" and {len(names) - most} more"
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + f" and {names[-1]}"

