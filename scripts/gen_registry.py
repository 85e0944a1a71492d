#!/usr/bin/env python3
"""Regenerate the cipher-suite and named-group tables in src/tlsward/model/registry/ from the registry data.

Inputs (all under scripts/data/, each with a header saying where it came from):
  iana-tls-cipher-suites.csv    IANA tls-parameters-4 (TLS Cipher Suites), assigned rows
  iana-tls-supported-groups.csv IANA tls-parameters-8 (TLS Supported Groups), assigned rows
  openssl-ciphers.txt           `openssl ciphers -V -stdname ...` of the system OpenSSL (IANA <-> OpenSSL names)
plus LEGACY_OPENSSL_NAMES below: the names OpenSSL 1.0.2/1.1.1 gave suites that OpenSSL 3 no longer builds
(taken from those releases' `openssl ciphers -V` output, cross-checked against testssl.sh's cipher mapping).

Usage:
  python scripts/gen_registry.py                   rewrite the generated regions
  python scripts/gen_registry.py --check           exit 1 if the generated regions are stale
  python scripts/gen_registry.py --refresh-openssl rerun the local openssl first, then rewrite
"""

from __future__ import annotations

import argparse
import csv
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "scripts" / "data"
SUITES_CSV = DATA / "iana-tls-cipher-suites.csv"
GROUPS_CSV = DATA / "iana-tls-supported-groups.csv"
OPENSSL_TXT = DATA / "openssl-ciphers.txt"
CIPHER_MODULE = ROOT / "src" / "tlsward" / "model" / "registry" / "cipher_suites.py"
GROUP_MODULE = ROOT / "src" / "tlsward" / "model" / "registry" / "groups.py"

TLS13_SUITES = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:" \
    "TLS_AES_128_CCM_SHA256:TLS_AES_128_CCM_8_SHA256"
OPENSSL_CMD = ["openssl", "ciphers", "-V", "-stdname", "-ciphersuites", TLS13_SUITES, "ALL:COMPLEMENTOFALL:@SECLEVEL=0"]

# OpenSSL names of suites that OpenSSL 3 dropped (export, RC4, single DES, 3DES in some builds, static DH/ECDH,
# KRB5, SEED, IDEA...). Only names a mainline OpenSSL release shipped; suites no release had stay None.
LEGACY_OPENSSL_NAMES: dict[int, str] = {
    0x0003: "EXP-RC4-MD5", 0x0004: "RC4-MD5", 0x0005: "RC4-SHA", 0x0006: "EXP-RC2-CBC-MD5",
    0x0007: "IDEA-CBC-SHA", 0x0008: "EXP-DES-CBC-SHA", 0x0009: "DES-CBC-SHA", 0x000A: "DES-CBC3-SHA",
    0x000B: "EXP-DH-DSS-DES-CBC-SHA", 0x000C: "DH-DSS-DES-CBC-SHA", 0x000D: "DH-DSS-DES-CBC3-SHA",
    0x000E: "EXP-DH-RSA-DES-CBC-SHA", 0x000F: "DH-RSA-DES-CBC-SHA", 0x0010: "DH-RSA-DES-CBC3-SHA",
    0x0011: "EXP-EDH-DSS-DES-CBC-SHA", 0x0012: "EDH-DSS-DES-CBC-SHA", 0x0013: "EDH-DSS-DES-CBC3-SHA",
    0x0014: "EXP-EDH-RSA-DES-CBC-SHA", 0x0015: "EDH-RSA-DES-CBC-SHA", 0x0016: "EDH-RSA-DES-CBC3-SHA",
    0x0017: "EXP-ADH-RC4-MD5", 0x0018: "ADH-RC4-MD5", 0x0019: "EXP-ADH-DES-CBC-SHA", 0x001A: "ADH-DES-CBC-SHA",
    0x001B: "ADH-DES-CBC3-SHA",
    0x001E: "KRB5-DES-CBC-SHA", 0x001F: "KRB5-DES-CBC3-SHA", 0x0020: "KRB5-RC4-SHA", 0x0021: "KRB5-IDEA-CBC-SHA",
    0x0022: "KRB5-DES-CBC-MD5", 0x0023: "KRB5-DES-CBC3-MD5", 0x0024: "KRB5-RC4-MD5", 0x0025: "KRB5-IDEA-CBC-MD5",
    0x0026: "EXP-KRB5-DES-CBC-SHA", 0x0027: "EXP-KRB5-RC2-CBC-SHA", 0x0028: "EXP-KRB5-RC4-SHA",
    0x0029: "EXP-KRB5-DES-CBC-MD5", 0x002A: "EXP-KRB5-RC2-CBC-MD5", 0x002B: "EXP-KRB5-RC4-MD5",
    0x0030: "DH-DSS-AES128-SHA", 0x0031: "DH-RSA-AES128-SHA", 0x0036: "DH-DSS-AES256-SHA",
    0x0037: "DH-RSA-AES256-SHA", 0x003E: "DH-DSS-AES128-SHA256", 0x003F: "DH-RSA-AES128-SHA256",
    0x0042: "DH-DSS-CAMELLIA128-SHA", 0x0043: "DH-RSA-CAMELLIA128-SHA", 0x0068: "DH-DSS-AES256-SHA256",
    0x0069: "DH-RSA-AES256-SHA256", 0x0085: "DH-DSS-CAMELLIA256-SHA", 0x0086: "DH-RSA-CAMELLIA256-SHA",
    0x008A: "PSK-RC4-SHA", 0x008B: "PSK-3DES-EDE-CBC-SHA", 0x008E: "DHE-PSK-RC4-SHA",
    0x008F: "DHE-PSK-3DES-EDE-CBC-SHA", 0x0092: "RSA-PSK-RC4-SHA", 0x0093: "RSA-PSK-3DES-EDE-CBC-SHA",
    0x0096: "SEED-SHA", 0x0097: "DH-DSS-SEED-SHA", 0x0098: "DH-RSA-SEED-SHA", 0x0099: "DHE-DSS-SEED-SHA",
    0x009A: "DHE-RSA-SEED-SHA", 0x009B: "ADH-SEED-SHA",
    0x00A0: "DH-RSA-AES128-GCM-SHA256", 0x00A1: "DH-RSA-AES256-GCM-SHA384",
    0x00A4: "DH-DSS-AES128-GCM-SHA256", 0x00A5: "DH-DSS-AES256-GCM-SHA384",
    0x00BB: "DH-DSS-CAMELLIA128-SHA256", 0x00BC: "DH-RSA-CAMELLIA128-SHA256",
    0x00C1: "DH-DSS-CAMELLIA256-SHA256", 0x00C2: "DH-RSA-CAMELLIA256-SHA256",
    0xC001: "ECDH-ECDSA-NULL-SHA", 0xC002: "ECDH-ECDSA-RC4-SHA", 0xC003: "ECDH-ECDSA-DES-CBC3-SHA",
    0xC004: "ECDH-ECDSA-AES128-SHA", 0xC005: "ECDH-ECDSA-AES256-SHA", 0xC007: "ECDHE-ECDSA-RC4-SHA",
    0xC008: "ECDHE-ECDSA-DES-CBC3-SHA", 0xC00B: "ECDH-RSA-NULL-SHA", 0xC00C: "ECDH-RSA-RC4-SHA",
    0xC00D: "ECDH-RSA-DES-CBC3-SHA", 0xC00E: "ECDH-RSA-AES128-SHA", 0xC00F: "ECDH-RSA-AES256-SHA",
    0xC011: "ECDHE-RSA-RC4-SHA", 0xC012: "ECDHE-RSA-DES-CBC3-SHA", 0xC016: "AECDH-RC4-SHA",
    0xC017: "AECDH-DES-CBC3-SHA", 0xC01A: "SRP-3DES-EDE-CBC-SHA", 0xC01B: "SRP-RSA-3DES-EDE-CBC-SHA",
    0xC01C: "SRP-DSS-3DES-EDE-CBC-SHA",
    0xC025: "ECDH-ECDSA-AES128-SHA256", 0xC026: "ECDH-ECDSA-AES256-SHA384", 0xC029: "ECDH-RSA-AES128-SHA256",
    0xC02A: "ECDH-RSA-AES256-SHA384", 0xC02D: "ECDH-ECDSA-AES128-GCM-SHA256", 0xC02E: "ECDH-ECDSA-AES256-GCM-SHA384",
    0xC031: "ECDH-RSA-AES128-GCM-SHA256", 0xC032: "ECDH-RSA-AES256-GCM-SHA384",
    0xC033: "ECDHE-PSK-RC4-SHA", 0xC034: "ECDHE-PSK-3DES-EDE-CBC-SHA",
    0xC074: "ECDH-ECDSA-CAMELLIA128-SHA256", 0xC075: "ECDH-ECDSA-CAMELLIA256-SHA384",
    0xC078: "ECDH-RSA-CAMELLIA128-SHA256", 0xC079: "ECDH-RSA-CAMELLIA256-SHA384",
}

# Key-exchange part of a pre-1.3 IANA name (between TLS_ and _WITH_, _EXPORT removed) -> (kx, auth).
# DH_anon/ECDH_anon send ephemeral parameters in ServerKeyExchange, so they are DHE/ECDHE on the wire.
KX_AUTH: dict[str, tuple[str, str]] = {
    "NULL": ("NULL", "NULL"),
    "RSA": ("RSA", "RSA"),
    "DH_DSS": ("DH", "DSS"), "DH_RSA": ("DH", "RSA"),
    "DHE_DSS": ("DHE", "DSS"), "DHE_RSA": ("DHE", "RSA"),
    "DH_anon": ("DHE", "anon"),
    "KRB5": ("KRB5", "KRB5"),
    "PSK": ("PSK", "PSK"), "DHE_PSK": ("DHE_PSK", "PSK"), "PSK_DHE": ("DHE_PSK", "PSK"),
    "RSA_PSK": ("RSA_PSK", "RSA"), "ECDHE_PSK": ("ECDHE_PSK", "PSK"),
    "ECDH_ECDSA": ("ECDH", "ECDSA"), "ECDH_RSA": ("ECDH", "RSA"),
    "ECDHE_ECDSA": ("ECDHE", "ECDSA"), "ECDHE_RSA": ("ECDHE", "RSA"),
    "ECDH_anon": ("ECDHE", "anon"),
    "SRP_SHA": ("SRP", "SRP"), "SRP_SHA_RSA": ("SRP", "RSA"), "SRP_SHA_DSS": ("SRP", "DSS"),
    "ECCPWD": ("ECCPWD", "ECCPWD"),
    "GOSTR341112_256": ("GOST", "GOST"),
}
FORWARD_SECRET_KX = {"DHE", "ECDHE", "DHE_PSK", "ECDHE_PSK", "SRP", "ECCPWD", "any"}
MAC_NAMES = {
    "NULL": "NULL", "MD5": "MD5", "SHA": "SHA1", "SHA256": "SHA256", "SHA384": "SHA384", "SHA512": "SHA512",
    "SM3": "SM3", "OMAC": "OMAC", "IMIT": "IMIT",
}
AEAD_MARKERS = ("_GCM", "_CCM", "POLY1305", "AEGIS", "_MGM")
# Effective strength in bits by cipher prefix (first match wins).
STRENGTH: tuple[tuple[str, int], ...] = (
    ("NULL", 0), ("RC4_40", 40), ("RC2_CBC_40", 40), ("DES40", 40), ("DES_CBC_40", 40), ("DES_CBC", 56),
    ("3DES", 112), ("RC4_128", 128), ("IDEA", 128), ("SEED", 128), ("SM4", 128), ("AEGIS_128L", 128),
    ("AEGIS_256", 256), ("CHACHA20", 256), ("KUZNYECHIK", 256), ("MAGMA", 256), ("28147", 256),
    ("AES_128", 128), ("AES_256", 256), ("CAMELLIA_128", 128), ("CAMELLIA_256", 256),
    ("ARIA_128", 128), ("ARIA_256", 256),
)
WEAK_CIPHER_PREFIXES = ("NULL", "RC4", "DES", "3DES", "IDEA", "RC2")

GROUP_ALIASES: dict[str, tuple[str, ...]] = {
    "secp192r1": ("P-192", "prime192v1"), "secp224r1": ("P-224",), "secp256r1": ("P-256", "prime256v1"),
    "secp384r1": ("P-384",), "secp521r1": ("P-521",), "x25519": ("X25519", "curve25519"), "x448": ("X448",),
    "X25519MLKEM768": ("x25519_mlkem768",), "SecP256r1MLKEM768": ("p256_mlkem768",),
    "SecP384r1MLKEM1024": ("p384_mlkem1024",), "MLKEM512": ("ML-KEM-512",), "MLKEM768": ("ML-KEM-768",),
    "MLKEM1024": ("ML-KEM-1024",), "X25519Kyber768Draft00": ("x25519_kyber768",),
}


@dataclass(frozen=True)
class Row:
    code: int
    name: str
    openssl_name: str | None
    kx: str
    auth: str
    enc: str
    mac: str
    bits: int
    flags: str


def read_csv(path: Path) -> list[dict[str, str]]:
    lines = [line for line in path.read_text().splitlines() if not line.startswith("#")]
    return list(csv.DictReader(lines))


def iana_suites() -> dict[int, tuple[str, bool]]:
    """Assigned suites: code -> (IANA name, recommended). Skips ranges, unassigned and reserved rows."""
    out: dict[int, tuple[str, bool]] = {}
    for row in read_csv(SUITES_CSV):
        value, name = row["Value"], row["Description"].strip()
        match = re.fullmatch(r"0x([0-9A-Fa-f]{2}),0x([0-9A-Fa-f]{2})", value.strip())
        if match is None or not name.startswith("TLS_"):
            continue
        code = int(match[1], 16) << 8 | int(match[2], 16)
        if code in out:
            raise SystemExit(f"duplicate code 0x{code:04X} in {SUITES_CSV.name}")
        out[code] = (name, row.get("Recommended", "").strip() == "Y")
    return out


def openssl_names(iana: dict[int, tuple[str, bool]]) -> dict[int, str]:
    names: dict[int, str] = {}
    for line in OPENSSL_TXT.read_text().splitlines():
        match = re.match(r"\s*0x([0-9A-F]{2}),0x([0-9A-F]{2}) - (\S+)\s+- (\S+)", line)
        if match is None:
            continue
        code = int(match[1], 16) << 8 | int(match[2], 16)
        if code in iana and iana[code][0] != match[3]:
            raise SystemExit(f"OpenSSL calls 0x{code:04X} {match[3]}, IANA calls it {iana[code][0]}")
        names[code] = match[4]
    for code, name in LEGACY_OPENSSL_NAMES.items():
        if code in names and names[code] != name:
            raise SystemExit(f"legacy name {name} for 0x{code:04X} disagrees with local OpenSSL {names[code]}")
        names.setdefault(code, name)
    return names


def describe(code: int, name: str, openssl_name: str | None, recommended: bool) -> Row:
    body = name.removeprefix("TLS_")
    export = signaling = tls13 = False
    if body.endswith("_SCSV"):
        kx = auth = "SCSV"
        enc, mac, signaling = "NULL", "NULL", True
    elif "_WITH_" not in body:  # TLS 1.3: TLS_<AEAD>_<HASH>, or integrity-only TLS_<HASH>_<HASH> (RFC 9150)
        tls13, kx, auth = True, "any", "any"
        enc, hash_name = body.rsplit("_", 1)
        mac = "AEAD"
        if enc in MAC_NAMES:
            enc, mac = "NULL", MAC_NAMES[hash_name]
    else:
        kx_part, cipher_part = body.split("_WITH_")
        export = "_EXPORT" in kx_part
        kx, auth = KX_AUTH[kx_part.replace("_EXPORT", "")]
        if kx == "GOST" and "_MGM_" in cipher_part:  # RFC 9367: TLS 1.3 GOST suites keep the 1.2-style name
            tls13, kx, auth, enc, mac = True, "any", "any", cipher_part, "AEAD"
        else:
            enc, _, last = cipher_part.rpartition("_")
            if last in MAC_NAMES and enc:
                mac = MAC_NAMES[last]
            else:  # TLS_RSA_WITH_AES_128_CCM: no hash in the name
                enc, mac = cipher_part, "AEAD"
            if kx == "GOST" and enc == "28147_CNT":
                enc = "GOST28147_CNT"
    aead = any(marker in f"_{enc}" for marker in AEAD_MARKERS)
    if aead:
        mac = "AEAD"
    bits = next((b for prefix, b in STRENGTH if enc.removeprefix("GOST").startswith(prefix)), None)
    if bits is None:
        raise SystemExit(f"no strength known for {name} (cipher {enc})")
    if export:
        bits = min(bits, 40)
    weak = not signaling and (
        export or auth == "anon" or kx == "NULL" or mac == "MD5" or enc.startswith(WEAK_CIPHER_PREFIXES)
    )
    forward_secrecy = not signaling and kx in FORWARD_SECRET_KX
    flags = "".join(
        letter
        for letter, on in (
            ("F", forward_secrecy), ("A", aead), ("3", tls13), ("E", export), ("W", weak), ("R", recommended),
            ("S", signaling),
        )
        if on
    )
    return Row(code, name, openssl_name, kx, auth, enc, mac, bits, flags)


def cipher_rows() -> list[Row]:
    iana = iana_suites()
    names = openssl_names(iana)
    return [describe(code, name, names.get(code), rec) for code, (name, rec) in sorted(iana.items())]


def render_ciphers(rows: list[Row]) -> str:
    out = ["CIPHER_SUITES: tuple[CipherSuite, ...] = ("]
    for r in rows:
        ossl = "None" if r.openssl_name is None else f'"{r.openssl_name}"'
        out.append(f'    _s(0x{r.code:04X}, "{r.name}", {ossl},')
        out.append(f'       "{r.kx}", "{r.auth}", "{r.enc}", "{r.mac}", {r.bits}, "{r.flags}"),')
    out.append(")")
    return "\n".join(out)


def group_kind(name: str) -> tuple[str, bool]:
    if "MLKEM" in name or "Kyber" in name:
        return ("kem", True) if name.startswith("MLKEM") else ("hybrid", True)
    if name.startswith("ffdhe"):
        return "ffdhe", False
    if name.startswith("arbitrary_explicit"):
        return "explicit", False
    return "ecdhe", False


def render_groups() -> str:
    out = ["NAMED_GROUPS: tuple[NamedGroup, ...] = ("]
    seen: set[int] = set()
    for row in read_csv(GROUPS_CSV):
        value, name = row["Value"].strip(), row["Description"].strip()
        if not value.isdigit() or name in {"Reserved", "Unassigned"} or name.startswith("Reserved"):
            continue
        code = int(value)
        if code in seen:
            raise SystemExit(f"duplicate group {code}")
        seen.add(code)
        name = name.removesuffix(" (OBSOLETE)")
        kind, pq = group_kind(name)
        rec = row.get("Recommended", "").strip()
        aliases = GROUP_ALIASES.get(name, ())
        alias_src = "(" + ", ".join(f'"{a}"' for a in aliases) + ("," if len(aliases) == 1 else "") + ")"
        out.append(f'    NamedGroup(0x{code:04X}, "{name}", "{kind}", {pq}, {rec == "Y"}, {rec == "D"}, {alias_src}),')
    out.append(")")
    return "\n".join(out)


def splice(path: Path, marker: str, body: str) -> str:
    text = path.read_text()
    begin = f"# BEGIN GENERATED {marker} (scripts/gen_registry.py)\n"
    end = f"# END GENERATED {marker}\n"
    head, sep, rest = text.partition(begin)
    _, sep2, tail = rest.partition(end)
    if not sep or not sep2:
        raise SystemExit(f"{path}: generated-region markers for {marker} not found")
    return f"{head}{begin}{body}\n{end}{tail}"


def refresh_openssl() -> None:
    result = subprocess.run(OPENSSL_CMD, capture_output=True, text=True, check=True)
    version = subprocess.run(["openssl", "version"], capture_output=True, text=True, check=True).stdout.strip()
    header = (
        "# `openssl ciphers -V -stdname -ciphersuites <all five TLS 1.3 suites> 'ALL:COMPLEMENTOFALL:@SECLEVEL=0'`"
        f" from {version}.\n# Rewritten by `python scripts/gen_registry.py --refresh-openssl`.\n"
    )
    OPENSSL_TXT.write_text(header + result.stdout)


def generated() -> dict[Path, str]:
    return {
        CIPHER_MODULE: splice(CIPHER_MODULE, "CIPHER SUITES", render_ciphers(cipher_rows())),
        GROUP_MODULE: splice(GROUP_MODULE, "NAMED GROUPS", render_groups()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="exit 1 if the tables are out of date")
    parser.add_argument("--refresh-openssl", action="store_true", help="rerun the local openssl first")
    args = parser.parse_args(argv)
    if args.refresh_openssl:
        refresh_openssl()
    stale = [path for path, text in generated().items() if path.read_text() != text]
    if args.check:
        for path in stale:
            print(f"stale: {path.relative_to(ROOT)} (run python scripts/gen_registry.py)", file=sys.stderr)
        return 1 if stale else 0
    for path, text in generated().items():
        path.write_text(text)
    print(f"wrote {len(stale)} file(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
