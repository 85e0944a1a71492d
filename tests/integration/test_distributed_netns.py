"""Zones across network namespaces: a second lab runs inside a network namespace (``ip netns``), where only a worker
started in that namespace can reach it; the namespace reaches PostgreSQL and Redis through a veth pair. Endpoints
of zone ``dmz`` (that lab) are probed, successfully, by the namespace's worker only, and the worker outside probes
only zone ``default`` (the session lab)."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.distributed_support import (
    ENV,
    TLSWARD,
    DelayProxy,
    add_endpoints,
    answers,
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
from tlsward.lab import LabState

# The broker tests share (and the outage test stops) the machine's Redis and RabbitMQ: one process runs them all.
pytestmark = [pytest.mark.integration, pytest.mark.brokers]

DMZ_CASES = ("healthy-rsa", "healthy-ecdsa", "tls12-only")
DEFAULT_CASES = ("healthy-rsa", "expired")


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, f"ip {' '.join(args)}: {done.stderr.strip()}"


@pytest.fixture
def netns() -> Iterator[tuple[str, str, str]]:
    """(namespace, host-side address, namespace-side address): a namespace joined to this one by a veth pair."""
    assert os.geteuid() == 0, "network namespaces need root (CI and make test run as root)"
    tag = uuid.uuid4().hex[:6]
    name, host_if, ns_if = f"tlsw-{tag}", f"tw{tag}h", f"tw{tag}n"
    octet = 1 + int(tag[:2], 16) % 250
    host_addr, ns_addr = f"10.231.{octet}.1", f"10.231.{octet}.2"
    _ip("netns", "add", name)
    try:
        _ip("link", "add", host_if, "type", "veth", "peer", "name", ns_if)
        _ip("link", "set", ns_if, "netns", name)
        _ip("addr", "add", f"{host_addr}/30", "dev", host_if)
        _ip("link", "set", host_if, "up")
        _ip("netns", "exec", name, "ip", "addr", "add", f"{ns_addr}/30", "dev", ns_if)
        _ip("netns", "exec", name, "ip", "link", "set", ns_if, "up")
        _ip("netns", "exec", name, "ip", "link", "set", "lo", "up")
        yield name, host_addr, ns_addr
    finally:
        subprocess.run(["ip", "link", "del", host_if], capture_output=True, timeout=30, check=False)
        subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=30, check=False)


@pytest.fixture
def namespace_lab(netns: tuple[str, str, str], tmp_path: Path) -> Iterator[LabState]:
    """The built-in lab, served on the namespace's own loopback (unreachable from here)."""
    name = netns[0]
    state_dir = tmp_path / "ns-lab"
    # Ports nothing serves out here either, so that "unreachable from here" is about the namespace.
    base = next(base for base in range(24700, 40000, 500) if not any(answers("127.0.0.1", port)
                                                                      for port in range(base, base + 50)))
    started = subprocess.run(["ip", "netns", "exec", name, str(TLSWARD), "lab", "up", "--state-dir", str(state_dir),
                              "--base-port", str(base)], capture_output=True, text=True, timeout=120, env=ENV,
                             check=False)
    assert started.returncode == 0, started.stderr
    try:
        yield LabState.read(state_dir)
    finally:
        subprocess.run([str(TLSWARD), "lab", "down", "--state-dir", str(state_dir)], capture_output=True,
                       timeout=60, env=ENV, check=False)


def test_a_zone_worker_in_a_network_namespace_probes_what_only_it_can_reach(
        lab: LabState, namespace_lab: LabState, netns: tuple[str, str, str], tmp_path: Path) -> None:
    name, host_addr, _ = netns
    dmz = {case: namespace_lab.endpoint(case).target for case in DMZ_CASES}
    # Outside the namespace, its lab is not there: the default zone's worker could not probe it.
    outside = subprocess.run([str(TLSWARD), "scan", "--json", "--connect", "127.0.0.1", "--timeout", "3",
                              dmz["healthy-rsa"]], capture_output=True, text=True, timeout=60, env=ENV, check=False)
    failure = json.loads(outside.stdout.splitlines()[0])["failure"]
    assert failure is not None and failure["kind"] == "refused", outside.stdout
    with pg_database() as db, isolated_broker("redis") as broker, \
            DelayProxy(("127.0.0.1", 5432), 0.0, host=host_addr) as pg_gate, \
            DelayProxy(("127.0.0.1", 6379), 0.0, host=host_addr) as redis_gate:
        config = write_config(tmp_path / "monitor.toml", broker=broker,
                              ca_files=[lab.ca_file, namespace_lab.ca_file], interval="2s")
        targets = add_endpoints(db, [(target, "127.0.0.1", "dmz") for target in dmz.values()] +
                                [(lab.endpoint(case).target, "127.0.0.1", "default") for case in DEFAULT_CASES])
        inside_db = db.replace("127.0.0.1:5432", f"{host_addr}:{pg_gate.port}")
        inside_broker = broker.replace("127.0.0.1:6379", f"{host_addr}:{redis_gate.port}")
        inside = start_worker(tmp_path, "w-dmz", zone="dmz", config=config, db=inside_db, concurrency=1,
                              prefix=["ip", "netns", "exec", name], extra=["--broker", inside_broker])
        here = start_worker(tmp_path, "w-default", zone="default", config=config, db=db, concurrency=1)
        scheduler = start_scheduler(tmp_path, "scheduler", config=config, db=db)
        processes = (scheduler, inside, here)

        def explain() -> str:
            return "\n".join(process.tail(25) for process in processes)

        try:
            def probed() -> bool:
                seen = Counter(target for target, *_ in observations(db))
                return all(seen[target] >= 2 for target in targets)

            wait_for(probed, 90, "two probes of every endpoint", explain=explain)
            assert scheduler.stop() == 0, scheduler.tail()
            assert inside.stop() == 0 and here.stop() == 0, explain()
        finally:
            for process in processes:
                process.stop()
        rows = observations(db)
        assert not duplicates(db)
        assert all(success for target, _, success, _, zone in rows if zone == "dmz"), rows
        by_zone = Counter(zone for *_, zone in rows)
        written = dict(query(db, "SELECT name, probes FROM probe_worker"))
        assert written == {"w-dmz": by_zone["dmz"], "w-default": by_zone["default"]}, (written, by_zone)
        hosts = dict(query(db, "SELECT name, zone FROM probe_worker"))
        assert hosts == {"w-dmz": "dmz", "w-default": "default"}
