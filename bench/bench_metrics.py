"""Render time of the Prometheus exporter's ``/metrics`` at 10,000 endpoints and 10,000 certificates, on SQLite.

The inventory: 10,000 enabled endpoints (owner, team, environment set); each probed one presents its own leaf
under one of three intermediates (9,903 certificates in use) and has ``HISTORY`` observations (history the
snapshot must not pay for); 5% of endpoints fail at their newest probe after earlier successes, 1% were never
probed, a third have findings. Endpoints are added through ``Store.import_endpoints``
and probes through ``Store.record_scans``, as the monitor writes them (so the current-state columns the
snapshot joins through are the store's own). The monitor's live statistics hold 100,000 probes over 20 teams.

Measured, each the median of ``REPEATS`` runs after one warm-up, in this process: the snapshot read alone
(``metrics_snapshot``), the text rendering of the whole registry (read + render, what a scrape costs), and a
full HTTP scrape through the ASGI app (``httpx.ASGITransport``) as Prometheus does it (``Accept-Encoding:
gzip``). Goal: a scrape under 1 s.

Results on stdout and in ``bench/results/metrics.json``; the section "Prometheus exporter" of BENCHMARKS.md
is refreshed unless ``--no-publish`` is given. Reproduce: ``make bench BENCH=metrics``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import gzip
import hashlib
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import common
import httpx
from sqlalchemy import func, select

from tlsward.exporter.app import metrics_app
from tlsward.model.certificate import CertificateFacts
from tlsward.model.findings import Finding, Severity
from tlsward.model.inventory import EndpointRecord
from tlsward.model.metrics import ProbeStats
from tlsward.model.scan import Failure, FailureKind, ScanResult, Session, Timings
from tlsward.model.target import Target
from tlsward.storage import Store, open_store
from tlsward.storage.snapshot import metrics_snapshot
from tlsward.storage.tables import Certificate, Observation

NAME = "metrics"
SECTION_TITLE = "## Prometheus exporter"
ENDPOINTS = 10_000
HISTORY = 10                  # observations per endpoint
REPEATS = 7
GOAL_SECONDS = 1.0
NOW = dt.datetime(2030, 6, 1, 12, 0, tzinfo=dt.UTC)
TEAMS = 20
# What Prometheus 2.x sends: OpenMetrics first, the text format as a fallback.
PROMETHEUS_ACCEPT = ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
                     "text/plain;version=0.0.4;q=0.5,*/*;q=0.1")


@dataclass
class Results(common.RunInfo):
    endpoints: int = ENDPOINTS
    certificates: int = 0
    observations: int = 0
    snapshot_s: list[float] = field(default_factory=list)
    render_s: list[float] = field(default_factory=list)
    scrape_s: list[float] = field(default_factory=list)
    body_bytes: int = 0
    gzip_bytes: int = 0
    samples: int = 0

    def median(self, name: str) -> float:
        values: list[float] = getattr(self, name)
        return statistics.median(values)


def facts(name: str, issuer: str, days_left: float, *, is_ca: bool = False) -> tuple[CertificateFacts, bytes]:
    """A certificate's facts and stand-in DER bytes (the store needs only consistent fingerprints)."""
    der = f"DER of {name} by {issuer}".encode()
    return CertificateFacts(
        subject=f"CN={name},O=Example", issuer=issuer, serial=hashlib.sha256(der).hexdigest()[:16],
        not_before=NOW - dt.timedelta(days=30), not_after=NOW + dt.timedelta(days=days_left), dns_names=(name,),
        ip_addresses=(), key_type="RSA" if is_ca else "EC", key_bits=4096 if is_ca else 256,
        curve=None if is_ca else "secp256r1", signature_algorithm="sha256WithRSAEncryption",
        signature_hash="sha256", sha256=hashlib.sha256(der).hexdigest(), spki_sha256="x", is_ca=is_ca,
        path_length=None, key_usage=(), extended_key_usage=() if is_ca else ("serverAuth",), ocsp_urls=(),
        ca_issuers_urls=(), crl_urls=(), sct_count=0, must_staple=False, self_issued=False, self_signed=False), der


def populate(store: Store) -> tuple[int, int]:
    """The inventory described in the module docstring, written as the monitor writes it (``record_scans``,
    which also keeps each endpoint's current-state columns): (certificates, observations) written."""
    targets = [f"service-{i:05d}.prod.example.internal:443" for i in range(ENDPOINTS)]
    store.import_endpoints([EndpointRecord(target=t, host=t[:-4], port=443, owner=f"owner{i % 300}",
                                           team=f"team-{i % TEAMS}", environment=("prod", "staging")[i % 2])
                            for i, t in enumerate(targets)])
    intermediates = [facts(f"Example Issuing CA {k}", "CN=Example Root,O=Example", 500 + k, is_ca=True)
                     for k in range(3)]
    batch: list[tuple[ScanResult, str | None]] = []
    for i, text in enumerate(targets):
        if i % 100 == 99:
            continue                                         # never probed
        target = Target.parse(text)
        leaf, leaf_der = facts(target.host, intermediates[i % 3][0].subject, 1 + i % 90)
        intermediate, intermediate_der = intermediates[i % 3]
        legacy = i % 4 == 0
        session = Session("TLSv1.2" if legacy else "TLSv1.3",
                          "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" if legacy else "TLS_AES_128_GCM_SHA256",
                          0xC02F if legacy else 0x1301, "x25519", None, False, None, (leaf_der, intermediate_der))
        findings = (Finding("cert.expiring", Severity.HIGH, "expiring", "evidence"),
                    Finding("chain.order", Severity.LOW, "order", "evidence")) if i % 3 == 0 else ()
        for h in range(HISTORY):
            at = NOW - dt.timedelta(minutes=5 * (HISTORY - h))
            if i % 20 == 0 and h == HISTORY - 1:             # failing at its newest probe
                batch.append((ScanResult(target=target, address="10.0.0.1", scanned_at=at, timings=Timings(),
                                         failure=Failure(FailureKind.CONNECT_TIMEOUT, "timed out", "connect"),
                                         findings=(Finding("conn.timeout", Severity.CRITICAL, "t", "e"),)), None))
            else:
                batch.append((ScanResult(target=target, address="10.0.0.1", scanned_at=at,
                                         timings=Timings(handshake_ms=12.5), session=session,
                                         chain=(leaf, intermediate), findings=findings), None))
    for start in range(0, len(batch), 20_000):
        store.record_scans(batch[start:start + 20_000])
    with store.engine.connect() as connection:
        certificates = connection.scalar(select(func.count()).select_from(Certificate)) or 0
        observations = connection.scalar(select(func.count()).select_from(Observation)) or 0
    return certificates, observations


def probe_stats() -> ProbeStats:
    stats = ProbeStats()
    for i in range(100_000):
        stats.record(team=f"team-{i % TEAMS}", failure_kind="connect_timeout" if i % 50 == 0 else None,
                     handshake_seconds=0.002 * (1 + i % 400))
    return stats


def timed(repeats: int, run: Callable[[], object]) -> list[float]:
    run()                                                        # warm-up: caches, compiled statements
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return times


def measure(work: Path, r: Results) -> None:
    with open_store(f"sqlite:///{work / 'inventory.db'}") as store:
        start = time.perf_counter()
        r.certificates, r.observations = populate(store)
        print(f"populated {ENDPOINTS:,} endpoints, {r.certificates:,} certificates, {r.observations:,} observations "
              f"in {time.perf_counter() - start:.1f}s", flush=True)
        app = metrics_app(store, probe_stats())
        r.snapshot_s = timed(REPEATS, lambda: metrics_snapshot(store, NOW))
        r.render_s = timed(REPEATS, lambda: app.render())
        body = app.render()[2]
        r.body_bytes = len(body)
        r.gzip_bytes = len(gzip.compress(body, 6))
        r.samples = sum(1 for line in body.splitlines() if line and not line.startswith(b"#"))

        async def scrape() -> None:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://exporter") as client:
                response = await client.get("/metrics", headers={"Accept": PROMETHEUS_ACCEPT,
                                                                 "Accept-Encoding": "gzip"})
                response.raise_for_status()
                if response.headers.get("content-encoding") != "gzip":
                    raise common.BenchError("the exporter did not gzip its answer to Accept-Encoding: gzip")

        r.scrape_s = timed(REPEATS, lambda: asyncio.run(scrape()))


Goal = common.Goal


def goals(r: Results) -> list[Goal]:
    scrape = r.median("scrape_s")
    return [(f"a gzip-encoded /metrics scrape at {ENDPOINTS:,} endpoints in < {GOAL_SECONDS:.0f} s",
             scrape < GOAL_SECONDS, f"{scrape * 1000:.0f} ms")]


def rows(r: Results) -> list[list[str]]:
    def cell(name: str) -> list[str]:
        values: list[float] = getattr(r, name)
        return [f"**{r.median(name) * 1000:.0f}**", f"{min(values) * 1000:.0f}-{max(values) * 1000:.0f}"]

    return [["inventory read (`metrics_snapshot`)", *cell("snapshot_s")],
            ["read + text rendering (`MetricsApp.render`)", *cell("render_s")],
            ["HTTP scrape through the ASGI app, gzip", *cell("scrape_s")]]


HEADER = ["step", "median ms", f"range ms ({REPEATS} runs)"]


def markdown(r: Results) -> str:
    blocks = [
        f"{SECTION_TITLE} (`bench/bench_metrics.py`)", "",
        f"`/metrics` over an SQLite inventory of {r.endpoints:,} enabled endpoints, {r.certificates:,} certificates "
        f"and {r.observations:,} observations ({HISTORY} per endpoint; 5% failing at their newest probe, 1% never "
        "probed), with the monitor's live statistics (100,000 probes over 20 teams). Each step is timed in one "
        f"process, median of {REPEATS} runs after a warm-up.", "",
        *common.md_table(HEADER, rows(r)), "",
        f"- {r.samples:,} samples, {r.body_bytes / 2**20:.1f} MiB of text, {r.gzip_bytes / 2**10:.0f} KiB gzipped.",
        *common.goal_lines(goals(r)), "",
        common.measured_on(r, common.tlsward_version(), NAME, "times"), "",
    ]
    return "\n".join(common.wrap(block) for block in blocks)


def main(argv: list[str]) -> int:
    r = Results()
    if not common.measure_in(NAME, r, lambda work: measure(work, r)):
        return 1
    print()
    print(f"{r.samples:,} samples, {r.body_bytes / 2**20:.1f} MiB, {r.gzip_bytes / 2**10:.0f} KiB gzipped")
    common.print_rows(HEADER, rows(r))
    common.print_goals(goals(r))
    if "--no-publish" in argv:
        return 0
    common.publish(NAME, SECTION_TITLE, {**asdict(r), "goals": common.goals_json(goals(r))}, markdown(r))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
