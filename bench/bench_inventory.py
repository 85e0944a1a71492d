"""Inventory at scale: import 100,000 endpoints from CSV, record 100,000 observations in batches (what the
monitor writes), discover 100,000 certificate files on disk, and the latency of ``inventory list --days-left 30``
at that size. Goals (issue 6): import and discovery under 60 s and 500 MB peak RSS each; list under 1 s.

Everything runs on the default embedded database (an SQLite file), as a user would start.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

from common import (
    Goal,
    Measured,
    RunInfo,
    goal_lines,
    goals_json,
    md_table,
    measure_in,
    measured_on,
    print_goals,
    print_rows,
    publish,
    python_env,
    run_measured,
    tlsward_exe,
    tlsward_version,
)

from tlsward.model.certificate import CertificateFacts
from tlsward.model.scan import ScanResult, Session, Timings
from tlsward.model.target import Target
from tlsward.storage import open_store

NAME = "inventory"
TITLE = "## Inventory at 100,000 endpoints and certificate files"
ENDPOINTS = 100_000
CERT_FILES = 100_000
BATCH = 2_000
NOW = dt.datetime.now(dt.UTC)


def write_csv(path: Path) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["target", "owner", "team", "environment", "tags", "probe_interval", "enabled"])
        for i in range(ENDPOINTS):
            writer.writerow([f"svc{i}.corp.example:{443 + i % 3}", f"owner{i % 500}", f"team{i % 40}",
                             ("prod", "staging")[i % 2], f"pci;zone{i % 7}", 300, "true"])


def facts(i: int) -> CertificateFacts:
    """A leaf per endpoint, expiring 1-400 days from now (so ~7% within 30 days)."""
    sha = hashlib.sha256(f"leaf {i}".encode()).hexdigest()
    return CertificateFacts(
        subject=f"CN=svc{i}.corp.example", issuer=f"CN=Corp Issuing CA {i % 4}", serial=sha[:16],
        not_before=NOW - dt.timedelta(days=30), not_after=NOW + dt.timedelta(days=1 + (i * 7919) % 400),
        dns_names=(f"svc{i}.corp.example",), ip_addresses=(), key_type="EC", key_bits=256, curve="secp256r1",
        signature_algorithm="ecdsa-with-SHA256", signature_hash="sha256", sha256=sha, spki_sha256=sha[:44],
        is_ca=False, path_length=None, key_usage=(), extended_key_usage=("serverAuth",), ocsp_urls=(),
        ca_issuers_urls=(), crl_urls=(), sct_count=0, must_staple=False, self_issued=False, self_signed=False)


def record_observations(db: str) -> float:
    """Observations per second written with ``Store.record_scans`` (one leaf each, batches of BATCH)."""
    started = time.perf_counter()
    with open_store(db) as store:
        for start in range(0, ENDPOINTS, BATCH):
            batch = []
            for i in range(start, min(start + BATCH, ENDPOINTS)):
                target = Target.parse(f"svc{i}.corp.example:{443 + i % 3}")
                session = Session("TLSv1.3", "TLS_AES_128_GCM_SHA256", 0x1301, "x25519", None, False, None, ())
                batch.append((ScanResult(target=target, address="10.0.0.1", scanned_at=NOW,
                                         timings=Timings(handshake_ms=4.2), session=session, chain=(facts(i),)),
                              f"bench-{i}"))
            store.record_scans(batch)
    return ENDPOINTS / (time.perf_counter() - started)


def write_cert_files(root: Path) -> None:
    """CERT_FILES real PEM certificates (one key, many leaves) in 1,000 directories, generated out of process."""
    script = f"""
import datetime as dt, pathlib
from cryptography import x509
from cryptography.x509.oid import NameOID
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
key = ec.generate_private_key(ec.SECP256R1())
issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Bench CA")])
now = dt.datetime.now(dt.timezone.utc)
root = pathlib.Path({str(root)!r})
for d in range({CERT_FILES} // 100):
    folder = root / f"d{{d:04d}}"
    folder.mkdir(parents=True)
    for j in range(100):
        i = d * 100 + j
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"svc{{i}}.corp.example")])
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(issuer).public_key(key.public_key())
                .serial_number(i + 1).not_valid_before(now - dt.timedelta(days=1))
                .not_valid_after(now + dt.timedelta(days=1 + i % 400)).sign(key, hashes.SHA256()))
        (folder / f"svc{{i}}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
"""
    subprocess.run([sys.executable, "-c", script], check=True, timeout=1800)


def timed(cmd: list[str | Path], work: Path, out: Path) -> Measured:
    with out.open("wb") as handle:
        return run_measured(cmd, timeout=600, stdout=handle, env=python_env(work))


def main() -> None:
    info = RunInfo()
    results: dict[str, float] = {}

    def measure(work: Path) -> None:
        exe = tlsward_exe()
        db = f"sqlite:///{work / 'inventory.db'}"
        csv_path = work / "endpoints.csv"
        write_csv(csv_path)
        imported = timed([exe, "inventory", "import", str(csv_path), "--db", db], work, work / "import.out")
        if imported.returncode != 0:
            raise SystemExit(f"import failed: {(work / 'import.out').read_text()[-500:]}")
        results.update(import_s=imported.wall, import_rss_mib=imported.max_rss_kib / 1024)
        results["observations_per_s"] = record_observations(db)
        timed([exe, "inventory", "list", "--days-left", "30", "--json", "--db", db], work, work / "warm.out")
        listed = timed([exe, "inventory", "list", "--days-left", "30", "--json", "--db", db], work,
                       work / "list.out")
        matches = len(json.loads((work / "list.out").read_text()))
        if listed.returncode != 0 or not 0 < matches < ENDPOINTS:
            raise SystemExit(f"list failed or matched {matches}")
        results.update(list_s=listed.wall, list_matches=matches)
        files = work / "certs"
        write_cert_files(files)
        discovered = timed([exe, "inventory", "discover", "files", str(files), "--db", db], work,
                           work / "discover.out")
        if discovered.returncode not in (0, 1):
            raise SystemExit(f"discover files failed: {(work / 'discover.out').read_text()[-500:]}")
        results.update(discover_s=discovered.wall, discover_rss_mib=discovered.max_rss_kib / 1024)

    if not measure_in(NAME, info, measure):
        raise SystemExit(1)
    goals: list[Goal] = [
        (f"import {ENDPOINTS:,} endpoints in under 60 s", results["import_s"] < 60, f"{results['import_s']:.1f} s"),
        ("import peak RSS under 500 MB", results["import_rss_mib"] < 500, f"{results['import_rss_mib']:.0f} MiB"),
        (f"discover {CERT_FILES:,} certificate files in under 60 s", results["discover_s"] < 60,
         f"{results['discover_s']:.1f} s"),
        ("discovery peak RSS under 500 MB", results["discover_rss_mib"] < 500,
         f"{results['discover_rss_mib']:.0f} MiB"),
        (f"`inventory list --days-left 30` at {ENDPOINTS:,} endpoints under 1 s", results["list_s"] < 1,
         f"{results['list_s']:.2f} s, {results['list_matches']:,.0f} matches"),
    ]
    rows = [["`tlsward inventory import` (CSV)", f"{results['import_s']:.1f} s",
             f"{results['import_rss_mib']:.0f} MiB"],
            ["`Store.record_scans` (monitor writes)", f"{results['observations_per_s']:,.0f} observations/s", "-"],
            ["`tlsward inventory list --days-left 30`", f"{results['list_s']:.2f} s", "-"],
            ["`tlsward inventory discover files`", f"{results['discover_s']:.1f} s",
             f"{results['discover_rss_mib']:.0f} MiB"]]
    print_rows(["step", "time", "peak RSS"], rows)
    print_goals(goals)
    section = "\n\n".join([
        TITLE,
        f"{ENDPOINTS:,} endpoints imported from CSV, one observation each recorded in batches of {BATCH:,}, "
        f"{CERT_FILES:,} PEM certificate files walked, on the default SQLite inventory. Each command is a "
        "fresh process, measured with wait4 (wall clock, peak RSS).",
        "\n".join(md_table(["step", "time", "peak RSS"], rows)),
        "\n".join(goal_lines(goals)),
        measured_on(info, tlsward_version(), NAME, "times"),
    ]) + "\n"
    publish(NAME, TITLE, {"info": info.__dict__, "results": results, "goals": goals_json(goals)}, section)


if __name__ == "__main__":
    main()
