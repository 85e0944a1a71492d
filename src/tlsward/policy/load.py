"""``load_policy(name_or_path)``: a shipped profile by name, or a user's TOML / YAML file.

A file is a flat mapping of the ``PolicyProfile`` rule names (``-`` may stand for ``_``), plus ``name``,
``description`` and ``extends`` (a shipped profile name, or another policy file relative to this one). Keys in
the file replace the inherited value whole. Everything is validated up front: an unknown key, a wrong type or an
unknown version / suite / group / key type / curve / signature name is one ``UsageError`` line naming the file
and the key (docs/policy.md).
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from tlsward.model.errors import UsageError
from tlsward.model.policy import PolicyProfile
from tlsward.policy.mozilla import mozilla_profiles
from tlsward.policy.names import (
    canonical_curve,
    canonical_group,
    canonical_key_type,
    canonical_signature,
    canonical_suite,
    canonical_version,
)

SHIPPED: tuple[str, ...] = ("mozilla-modern", "mozilla-intermediate", "mozilla-old")
SUFFIXES = (".toml", ".yaml", ".yml")
MAX_EXTENDS_DEPTH = 8


def shipped_profiles() -> dict[str, PolicyProfile]:
    """Every profile tlsward ships, by name."""
    profiles = mozilla_profiles()
    return {name: profiles[name] for name in SHIPPED}


def load_policy(name_or_path: str | os.PathLike[str]) -> PolicyProfile:
    """A shipped profile (``mozilla-intermediate``) or a ``.toml`` / ``.yaml`` / ``.yml`` policy file."""
    text = os.fspath(name_or_path)
    shipped = shipped_profiles()
    if text in shipped:
        return shipped[text]
    path = Path(text)
    if path.suffix.lower() in SUFFIXES or path.exists():
        return _load_file(path, ())
    raise UsageError(f"policy {text!r}: not a shipped profile ({', '.join(SHIPPED)}) "
                     f"nor a policy file ({', '.join(SUFFIXES)})")


# How each rule's value is read: a list of names (with the function that canonicalises one and what it is),
# a non-negative integer, a boolean, or days.
Canonical = Callable[[str], str | None]
NAME_RULES: dict[str, tuple[Canonical, str]] = {
    "versions": (canonical_version, "protocol version (SSLv3, TLSv1.0 ... TLSv1.3)"),
    "suites": (canonical_suite, "cipher suite (IANA or OpenSSL name)"),
    "forbidden_suites": (canonical_suite, "cipher suite (IANA or OpenSSL name)"),
    "groups": (canonical_group, "group (IANA name or alias: x25519, secp256r1, prime256v1, ffdhe2048 ...)"),
    "key_types": (canonical_key_type, "key type (RSA, EC, Ed25519, Ed448, DSA)"),
    "curves": (canonical_curve, "curve (secp256r1, prime256v1, P-384 ...)"),
    "signature_algorithms": (canonical_signature, "signature algorithm (X.509 name such as "
                                                  "sha256WithRSAEncryption, or a TLS scheme such as "
                                                  "rsa_pss_rsae_sha256)"),
    "allowed_issuers": (lambda text: text.strip() or None, "issuer (a substring or RFC 4514 attributes)"),
}
INT_RULES = ("min_rsa_bits", "min_ec_bits", "min_dh_bits", "max_cert_lifetime_days", "hsts_min_max_age")
BOOL_RULES = ("hsts_required", "ocsp_stapling_required", "server_preference_required", "forward_secrecy_required",
              "aead_required")
META_KEYS = ("name", "description", "extends")
KNOWN_KEYS = (*META_KEYS, *PolicyProfile.rule_names())


def _kind(value: object) -> str:
    return "null" if value is None else {"str": "string", "int": "integer", "float": "number", "bool": "boolean",
                                         "list": "list", "dict": "table"}.get(type(value).__name__,
                                                                               type(value).__name__)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _parse(path: Path) -> dict[str, Any]:
    try:
        content = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"policy file {path}: not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"policy file {path}: cannot read ({_one_line(str(exc))})") from None
    suffix = path.suffix.lower()
    document: object
    # Imported here, not at the top: `tlsward scan` without --policy should not pay for the parsers at start-up.
    import tomllib

    import yaml

    if suffix == ".toml":
        try:
            document = tomllib.loads(content)
        except tomllib.TOMLDecodeError as exc:
            raise UsageError(f"{path}: not valid TOML: {_one_line(str(exc))}") from None
    elif suffix in (".yaml", ".yml"):
        try:
            document = yaml.safe_load(content)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"line {mark.line + 1}: " if mark is not None else ""
            problem = getattr(exc, "problem", None) or str(exc)
            raise UsageError(f"{path}: not valid YAML: {where}{_one_line(problem)}") from None
        if document is None:  # an empty YAML file: no rules
            document = {}
    else:
        raise UsageError(f"{path}: a policy file ends in {', '.join(SUFFIXES)}")
    if not isinstance(document, dict):
        raise UsageError(f"{path}: expected a mapping of policy keys at the top level, got a {_kind(document)}")
    return document


def _load_file(path: Path, seen: tuple[Path, ...]) -> PolicyProfile:
    resolved = path.resolve()
    if resolved in seen:
        cycle = " -> ".join(p.name for p in (*seen, resolved))
        raise UsageError(f"{path}: key 'extends': circular ({cycle})")
    if len(seen) >= MAX_EXTENDS_DEPTH:
        raise UsageError(f"{path}: key 'extends': more than {MAX_EXTENDS_DEPTH} levels")
    document = _parse(path)
    values: dict[str, Any] = {}
    for raw_key, value in document.items():
        key = str(raw_key).replace("-", "_")
        if key not in KNOWN_KEYS:
            close = difflib.get_close_matches(key, KNOWN_KEYS, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f" (known: {', '.join(KNOWN_KEYS)})"
            raise UsageError(f"{path}: unknown key {raw_key!r}{hint}")
        if key in values:
            raise UsageError(f"{path}: key {raw_key!r} given twice")
        values[key] = _convert(path, str(raw_key), key, value)
    base = PolicyProfile(name=path.stem)
    if "extends" in values:
        parent = values.pop("extends")
        shipped = shipped_profiles()
        if parent in shipped:
            base = shipped[parent]
        else:
            parent_path = Path(parent)
            if not parent_path.is_absolute():
                parent_path = path.parent / parent_path
            if parent_path.suffix.lower() not in SUFFIXES:
                raise UsageError(f"{path}: key 'extends': {parent!r} is not a shipped profile "
                                 f"({', '.join(SHIPPED)}) nor a policy file ({', '.join(SUFFIXES)})")
            base = _load_file(parent_path, (*seen, resolved))
        values.setdefault("description", f"{base.name} with the overrides in {path.name}")
    values.setdefault("name", path.stem)
    values["source"] = str(path)
    return replace(base, **values)


def _convert(path: Path, raw_key: str, key: str, value: object) -> object:
    where = f"{path}: key {raw_key!r}"
    if key in ("name", "description", "extends"):
        if not isinstance(value, str) or (key != "description" and not value.strip()):
            raise UsageError(f"{where}: expected a non-empty string, got {_kind(value)} {value!r}")
        return value.strip()
    if key in NAME_RULES:
        canonical, what = NAME_RULES[key]
        if not isinstance(value, list):
            raise UsageError(f"{where}: expected a list of strings, got {_kind(value)} {value!r}")
        names: list[str] = []
        for item in value:
            if not isinstance(item, str):
                raise UsageError(f"{where}: expected a list of strings, got {_kind(item)} {item!r} in it")
            name = canonical(item)
            if name is None:
                raise UsageError(f"{where}: unknown {what}: {item!r}")
            if name not in names:
                names.append(name)
        return tuple(names)
    if key in INT_RULES:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise UsageError(f"{where}: expected a non-negative integer (0: no rule), got {_kind(value)} {value!r}")
        return value
    if key in BOOL_RULES:
        if not isinstance(value, bool):
            raise UsageError(f"{where}: expected true or false, got {_kind(value)} {value!r}")
        return value
    if key == "expiry_thresholds":
        if not isinstance(value, list) or not all(isinstance(v, int | float) and not isinstance(v, bool)
                                                  for v in value):
            raise UsageError(f"{where}: expected a list of days, e.g. [30, 14, 7, 3], got {_kind(value)} {value!r}")
        days = tuple(float(v) for v in value)
        if days and (any(d <= 0 for d in days) or list(days) != sorted(set(days), reverse=True)):
            raise UsageError(f"{where}: expected positive days in decreasing order, e.g. [30, 14, 7, 3], "
                             f"got {value!r}")
        return days
    raise AssertionError(f"no converter for policy key {key}")  # pragma: no cover - KNOWN_KEYS and converters agree


def profile_as_dict(profile: PolicyProfile) -> Mapping[str, object]:
    """The profile as plain JSON-able data (tuples as lists), in declaration order."""
    return {"name": profile.name, "description": profile.description, "source": profile.source,
            **{rule: (list(v) if isinstance(v := getattr(profile, rule), tuple) else v)
               for rule in PolicyProfile.rule_names()}}
