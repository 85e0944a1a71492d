"""What a worker does with a batch: the monitor's scanners and engine call, probe ids as the scheduler gave them
(one per address with all_ips), time limits recorded as failures, bad targets and bugs contained; and the batched
write retried until the database takes it."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from typing import Any

import pytest

from tests.unit.storage.builders import scan_result
from tlsward.distributed.probe import Prober, monitor_scanners, write_batch
from tlsward.distributed.settings import DistributedSettings
from tlsward.engine import Scanner
from tlsward.model.distributed import ProbeOrder
from tlsward.model.errors import StorageError
from tlsward.model.monitor import MonitorConfig, ProbeSettings
from tlsward.model.scan import FailureKind, ScanResult
from tlsward.model.target import Target


class FakeScanner:
    def __init__(self, delay: float = 0.0, addresses: tuple[str, ...] = ()) -> None:
        self.delay, self.addresses = delay, addresses
        self.calls: list[str] = []

    async def scan_one(self, target: Target) -> ScanResult:
        self.calls.append(str(target))
        await asyncio.sleep(self.delay)
        if str(target).startswith("boom"):
            raise RuntimeError("a bug")
        return scan_result(str(target))

    async def scan_backends(self, target: Target) -> list[ScanResult]:
        self.calls.append(f"backends:{target}")
        return [replace(scan_result(str(target)), address=address) for address in self.addresses]


def _prober(**probes: Any) -> Prober:
    return Prober(MonitorConfig(probes=ProbeSettings(deep_interval_s=0, **probes)),
                  DistributedSettings(probe_time_limit_s=0.2, deep_time_limit_s=0.2))


def test_the_worker_scanners_are_the_monitors() -> None:
    config = MonitorConfig(probes=ProbeSettings(timeout_s=3.0, per_host=9, deep_interval_s=0))
    quick, deep = monitor_scanners(config, deep=False)
    assert isinstance(quick, Scanner) and deep is None
    assert (quick.options.timeout, quick.options.per_host, quick.options.revocation) == (3.0, 9, "off")
    _, deep = monitor_scanners(config, deep=True)
    assert deep is not None and deep.options.deep is not None


def test_a_batch_probes_every_order_with_the_schedulers_probe_ids() -> None:
    prober = _prober()
    fake = FakeScanner()
    prober.scanner = fake  # type: ignore[assignment]
    orders = [ProbeOrder("1:1000", 1, "a.test:443", 1.0), ProbeOrder("2:1000", 2, "b.test:443", 1.0),
              ProbeOrder("3:1000", 3, "bad..name:443", 1.0), ProbeOrder("4:1000", 4, "boom.test:443", 1.0)]
    outcome = asyncio.run(prober.run(orders))
    assert [probe_id for _, probe_id in outcome.results] == ["1:1000", "2:1000"]
    assert (outcome.probes, outcome.failures, outcome.skipped) == (2, 0, 1)
    assert fake.calls == ["a.test:443", "b.test:443", "boom.test:443"]


def test_all_ips_writes_one_observation_per_address() -> None:
    prober = _prober(all_ips=True)
    prober.scanner = FakeScanner(addresses=("192.0.2.1", "192.0.2.2"))  # type: ignore[assignment]
    outcome = asyncio.run(prober.run([ProbeOrder("5:9", 5, "a.test:443", 1.0)]))
    assert [probe_id for _, probe_id in outcome.results] == ["5:9:192.0.2.1", "5:9:192.0.2.2"]


def test_a_probe_past_its_time_limit_is_recorded_as_failed() -> None:
    prober = _prober()
    prober.scanner = FakeScanner(delay=5.0)  # type: ignore[assignment]
    started = time.monotonic()
    outcome = asyncio.run(prober.run([ProbeOrder("1:1", 1, "slow.test:443", 1.0)]))
    assert time.monotonic() - started < 2
    [(result, probe_id)] = outcome.results
    assert probe_id == "1:1" and outcome.timed_out == 1 and outcome.failures == 1
    assert result.failure is not None and result.failure.kind is FailureKind.HANDSHAKE_TIMEOUT
    assert "time limit" in result.failure.message


def test_the_write_is_retried_until_the_database_takes_it_then_gives_up() -> None:
    batch = [(scan_result("a.test:443"), "1:1")]

    class Store:
        def __init__(self, failures: int) -> None:
            self.failures, self.calls = failures, 0

        def record_scans(self, rows: Any) -> int:
            self.calls += 1
            if self.calls <= self.failures:
                raise StorageError("connection refused")
            return len(rows)

    flaky = Store(2)
    assert write_batch(lambda: flaky, batch, time.monotonic() + 5) == 1 and flaky.calls == 3
    down = Store(10**6)
    with pytest.raises(StorageError):
        write_batch(lambda: down, batch, time.monotonic() + 0.3)
    assert down.calls >= 2
