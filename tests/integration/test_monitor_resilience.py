"""`tlsward monitor` as a process against a real PostgreSQL that we stop and start under it: the monitor logs
the outage, keeps probing, recovers by itself, writes what it buffered; SIGKILL then restart loses nothing
and duplicates nothing; SIGTERM exits cleanly."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from tests.e2e.test_scan_cli import TLSWARD
from tlsward.lab import LabState

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Cluster:
    """A throwaway PostgreSQL cluster (Debian's server binaries) that the test can stop and start."""

    def __init__(self, root: Path) -> None:
        found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
        assert found, "PostgreSQL server binaries are required (`make test` installs postgresql)"
        self.bin = found[-1].parent
        self.root, self.port = root, _free_port()
        self.data = root / "data"
        self.as_owner: list[str] = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_owner:
            shutil.chown(root, "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")

    def _run(self, tool: str, *args: str) -> None:
        proc = subprocess.run([*self.as_owner, str(self.bin / tool), *args], capture_output=True, text=True,
                              timeout=120, check=False)
        assert proc.returncode == 0, f"{tool} failed: {proc.stderr or proc.stdout}"

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "server.log"), "-w", "-t", "60", "-o",
                  f"-h 127.0.0.1 -p {self.port} -k {self.root} -c fsync=off", "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def observations(self) -> tuple[int, int]:
        """(rows, distinct probe ids)."""
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{self.port}/postgres", connect_timeout=5) as conn:
            row = conn.execute("SELECT count(*), count(DISTINCT probe_id) FROM observation").fetchone()
            assert row is not None
            return int(row[0]), int(row[1])


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    # Not under pytest's tmp dir: that one is private to root, and PostgreSQL runs as postgres.
    root = Path(tempfile.mkdtemp(prefix="tlsward-pg-"))
    try:
        pg = Cluster(root)
        pg.start()
        yield pg
        subprocess.run([*pg.as_owner, str(pg.bin / "pg_ctl"), "-D", str(pg.data), "-m", "immediate", "stop"],
                       capture_output=True, timeout=60, check=False)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _wait(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out after {timeout:g}s waiting for {what}"
        time.sleep(0.2)


def _count(cluster: Cluster) -> int:
    try:
        return cluster.observations()[0]
    except psycopg.OperationalError:
        return -1


def _monitor(cluster: Cluster, config: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as handle:
        return subprocess.Popen([str(TLSWARD), "monitor", "--config", str(config), "--db", cluster.url],
                                stdin=subprocess.DEVNULL, stdout=handle, stderr=subprocess.STDOUT)


def test_monitor_survives_a_database_outage_sigkill_and_stops_on_sigterm(lab: LabState, cluster: Cluster,
                                                                         tmp_path: Path) -> None:
    names = ("healthy-rsa", "healthy-ecdsa", "expiring-20d", "closed")
    add = [str(TLSWARD), "inventory", "add", "--db", cluster.url, "--connect", "127.0.0.1"]
    for name in names:
        subprocess.run([*add, lab.endpoint(name).target], check=True, capture_output=True, timeout=60)
    config = tmp_path / "monitor.toml"
    config.write_text(f'[probes]\ninterval = "1s"\njitter = 0.0\nrefresh = "1s"\nca_files = ["{lab.ca_file}"]\n'
                      '[alerts]\nfailing_after = 2\n')
    log = tmp_path / "monitor.log"
    process = _monitor(cluster, config, log)
    try:
        _wait(lambda: _count(cluster) >= 8, 30, "the first observations")
        cluster.stop()
        time.sleep(3)                                     # ~3 probe rounds while the database is down
        assert process.poll() is None, f"the monitor died with the database:\n{log.read_text()[-2000:]}"
        assert "database unavailable" in log.read_text()
        cluster.start()
        _wait(lambda: "database back" in log.read_text(), 45, "the monitor to notice the database is back")
        before = _count(cluster)
        _wait(lambda: _count(cluster) > before + 8, 30, "writes to resume")

        process.send_signal(signal.SIGKILL)               # no goodbye: nothing may be half-written
        process.wait(10)
        rows, distinct = cluster.observations()
        assert rows == distinct, "an observation was stored twice"
        process = _monitor(cluster, config, log)
        _wait(lambda: _count(cluster) > rows + 8, 30, "the restarted monitor to write")
        process.send_signal(signal.SIGTERM)
        assert process.wait(20) == 0, log.read_text()[-2000:]
        assert "stopped:" in log.read_text().splitlines()[-1]
        rows, distinct = cluster.observations()
        assert rows == distinct
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{cluster.port}/postgres") as conn:
            firing = conn.execute("SELECT key FROM alert WHERE status = 'firing'").fetchall()
        # The endpoint that is down, and the certificate with 20 days left: nothing else, nothing twice.
        assert sorted(key.split(":")[0] for (key,) in firing) == ["cert.expiring", "probe.failing"], firing
        assert f"probe.failing:{lab.endpoint('closed').target}" in {key for (key,) in firing}
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
