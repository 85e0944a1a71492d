"""One active scheduler: two ``tlsward monitor --distributed`` started at the same moment agree through the lease in
PostgreSQL, so every probe is enqueued once (an endpoint's probes stay one interval apart); SIGKILL the active
one and the standby takes over once the lease expires, without a burst."""

from __future__ import annotations

import itertools
import time
from collections import defaultdict
from pathlib import Path

import pytest

from tests.integration.distributed_support import (
    add_endpoints,
    duplicates,
    isolated_broker,
    observations,
    pg_database,
    query,
    start_scheduler,
    start_worker,
    wait_for,
    write_config,
)
from tlsward.ca.authority import CertificateAuthority
from tlsward.lab import LabState
from tlsward.storage import open_store

# The broker tests share (and the outage test stops) the machine's Redis and RabbitMQ: one process runs them all.
pytestmark = [pytest.mark.integration, pytest.mark.brokers]

CASES = ("healthy-rsa", "healthy-ecdsa", "expiring-20d", "valid-40d", "tls12-only")
INTERVAL_MS = 2000


def _due_times(db: str) -> dict[str, list[int]]:
    """Each endpoint's probe due times (ms, from the probe ids), in order."""
    found: dict[str, list[int]] = defaultdict(list)
    for target, probe_id, *_ in observations(db):
        found[target].append(int(probe_id.split(":")[1]))
    return {target: sorted(times) for target, times in found.items()}


def _closest(db: str) -> int:
    """The smallest gap between two probes of one endpoint (ms): about the interval when each was enqueued once."""
    gaps = [b - a for times in _due_times(db).values() for a, b in itertools.pairwise(times)]
    return min(gaps) if gaps else 10**9


def _managed_certificate(tmp_path: Path, db: str) -> Path:
    """A managed certificate from an internal CA, deployed to files (no endpoint to verify): what `[renewal]`
    renews; it is due at once (nothing is deployed yet)."""
    ca_dir = tmp_path / "ca"
    with open_store(db) as store:
        CertificateAuthority.init(ca_dir, store, name="tlsward distributed test", passphrase=None,
                                  root_passphrase=b"throwaway root passphrase")
    (tmp_path / "out").mkdir()
    path = tmp_path / "certificates.toml"
    path.write_text(f"""state_dir = "lifecycle"
[[certificate]]
name = "svc"
names = ["svc.tlsward.test"]
source = "ca"
[certificate.ca]
dir = "{ca_dir}"
[certificate.deploy]
fullchain = "out/fullchain.pem"
key = "out/key.pem"
reload = {{ command = ["true"] }}
""", encoding="utf-8")
    return path


def test_two_schedulers_enqueue_each_probe_once_and_the_standby_takes_over(lab: LabState, tmp_path: Path) -> None:
    with pg_database() as db, isolated_broker("redis") as broker:
        config = write_config(tmp_path / "monitor.toml", broker=broker, ca_files=[lab.ca_file], interval="2s",
                              lease_ttl="3s")
        certificates = _managed_certificate(tmp_path, db)
        with config.open("a") as extra:
            extra.write(f'[renewal]\ncertificates = "{certificates}"\ninterval = "1h"\n')
        targets = add_endpoints(db, [(lab.endpoint(name).target, "127.0.0.1", "default") for name in CASES])
        worker = start_worker(tmp_path, "w1", zone="default", config=config, db=db, concurrency=2)
        first = start_scheduler(tmp_path, "scheduler-a", config=config, db=db)
        second = start_scheduler(tmp_path, "scheduler-b", config=config, db=db)
        processes = (first, second, worker)

        def explain() -> str:
            return "\n".join(process.tail(25) for process in processes)

        try:
            def probed(times: int) -> bool:
                due = _due_times(db)
                return all(len(due.get(target, ())) >= times for target in targets)

            wait_for(lambda: probed(4), 60, "four probes of every endpoint", explain=explain)
            active = [p for p in (first, second) if "active scheduler" in p.text()]
            assert len(active) == 1, explain()
            standby = second if active[0] is first else first
            assert "standing by" in standby.text(), explain()
            assert not duplicates(db)
            assert _closest(db) >= INTERVAL_MS * 0.9, _due_times(db)

            killed_at = time.monotonic()
            active[0].kill()                        # no goodbye: the lease stays until it expires
            wait_for(lambda: "active scheduler" in standby.text(), 20, "the standby to take over", explain=explain)
            took = time.monotonic() - killed_at
            assert took >= 1.0, f"the standby took over {took:.1f} s after the kill, before the lease could expire"
            before = len(observations(db))
            wait_for(lambda: len(observations(db)) >= before + 2 * len(targets), 30, "probes from the new scheduler",
                     explain=explain)
            assert not duplicates(db)
            assert _closest(db) >= INTERVAL_MS * 0.9, _due_times(db)
            renewals = query(db, "SELECT certificate, outcome FROM certificate_renewal")
            assert renewals == [("svc", "deployed")], "[renewal] ran once, by the lease holder only"
            assert (tmp_path / "out" / "fullchain.pem").is_file()
            holder = query(db, "SELECT holder FROM scheduler_lease")
            assert holder and holder[0][0].split(":")[1] == str(standby.pid), holder
            assert standby.stop() == 0, standby.tail()
            assert query(db, "SELECT count(*) FROM scheduler_lease") == [(0,)]
        finally:
            for process in processes:
                process.stop()
