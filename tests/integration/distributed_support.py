"""What the distributed-probing integration tests share: a throwaway PostgreSQL database, an isolated broker
(a Redis database number, or a RabbitMQ vhost), worker and scheduler processes with their logs, a TCP proxy that
holds connections (a slow endpoint, to kill a worker mid-probe), and waiting with a useful failure message.

Real peers only: the machine's PostgreSQL (127.0.0.1:5432), Redis (127.0.0.1:6379) and RabbitMQ (127.0.0.1:5672,
guest/guest), started by ``make test`` / CI; a missing one is a failure, never a skip.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tlsward.model.inventory import EndpointRecord
from tlsward.model.target import Target
from tlsward.storage import open_store

PG_ADMIN = os.environ.get("TLSWARD_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
AMQP_HOST, AMQP_PORT = "127.0.0.1", 5672
TLSWARD = Path(sys.executable).with_name("tlsward")
ENV = {k: v for k, v in os.environ.items() if not k.startswith("TLSWARD_")} | {"PYTHONUNBUFFERED": "1"}
# The commands that (re)start the machine's brokers (as CI starts them), for tests that stop one.
REDIS_START = ["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "-::1", "--port", str(REDIS_PORT),
               "--save", "", "--appendonly", "no", "--dir", "/var/lib/redis", "--logfile", "/var/log/redis/ci.log"]


def wait_for(check: Callable[[], Any], timeout: float, what: str, *, every: float = 0.25,
             explain: Callable[[], str] | None = None) -> Any:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` (and ``explain()``) on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            detail = f"\n{explain()}" if explain is not None else ""
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}{detail}")
        time.sleep(every)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def answers(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1):
        return True
    return False


# --- PostgreSQL ---------------------------------------------------------------------------------------------------


def _admin() -> psycopg.Connection[tuple[Any, ...]]:
    try:
        return psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN}: {str(exc).strip().splitlines()[0]}")


@contextlib.contextmanager
def pg_database() -> Iterator[str]:
    """A fresh database (SQLAlchemy URL), dropped afterwards."""
    name = f"tlsward_dist_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with _admin() as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with _admin() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def query(db_url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(db_url.replace("postgresql+psycopg://", "postgresql://"), connect_timeout=5) as conn:
        return list(conn.execute(sql, params).fetchall())


def execute(db_url: str, sql: str, *params: Any) -> None:
    with psycopg.connect(db_url.replace("postgresql+psycopg://", "postgresql://"), connect_timeout=5) as conn:
        conn.execute(sql, params)


def add_endpoints(db_url: str, rows: Sequence[tuple[str, str | None, str]]) -> list[str]:
    """(target, connect, zone) rows into the inventory; the canonical targets."""
    records = []
    for raw, connect, zone in rows:
        target = Target.parse(raw, connect=connect)
        records.append(EndpointRecord(target=str(target), host=target.host, port=target.port, scheme=target.scheme,
                                      sni=target.sni, connect=target.connect, zone=zone))
    with open_store(db_url) as store:
        store.import_endpoints(records)
    return [record.target for record in records]


def observations(db_url: str) -> list[tuple[str, str, bool, list[str], str]]:
    """(target, probe id, success, finding ids, zone) of every observation, oldest first."""
    return [(row[0], row[1], row[2], list(row[3] or ()), row[4]) for row in query(
        db_url, "SELECT e.target, o.probe_id, o.success, o.finding_ids, e.zone FROM observation o "
                "JOIN endpoint e ON e.id = o.endpoint_id ORDER BY o.id")]


def duplicates(db_url: str) -> list[tuple[Any, ...]]:
    """Probe ids stored more than once (there must be none): the unique index, checked from outside."""
    return query(db_url, "SELECT probe_id, count(*) FROM observation GROUP BY probe_id HAVING count(*) > 1")


# --- brokers -------------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def isolated_broker(kind: str) -> Iterator[str]:
    """A broker URL nobody else uses: a flushed Redis database number, or a fresh RabbitMQ vhost."""
    if kind == "redis":
        import redis

        assert answers(REDIS_HOST, REDIS_PORT), f"Redis is required on {REDIS_HOST}:{REDIS_PORT} (make test starts it)"
        number = 1 + (os.getpid() + int(uuid.uuid4().hex[:4], 16)) % 15
        client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=number)
        client.flushdb()
        try:
            yield f"redis://{REDIS_HOST}:{REDIS_PORT}/{number}"
        finally:
            with contextlib.suppress(Exception):
                client.flushdb()
            client.close()
        return
    assert answers(AMQP_HOST, AMQP_PORT), f"RabbitMQ is required on {AMQP_HOST}:{AMQP_PORT} (make test starts it)"
    vhost = f"tlsward-test-{uuid.uuid4().hex[:8]}"
    rabbitmqctl("add_vhost", vhost)
    rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    try:
        yield f"amqp://guest:guest@{AMQP_HOST}:{AMQP_PORT}/{vhost}"
    finally:
        with contextlib.suppress(Exception):
            rabbitmqctl("delete_vhost", vhost)


def rabbitmqctl(*args: str, timeout: float = 120) -> str:
    done = subprocess.run(["rabbitmqctl", *args], capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, f"rabbitmqctl {' '.join(args)} failed: {done.stderr or done.stdout}"
    return done.stdout


def redis_up() -> bool:
    try:
        import redis

        return bool(redis.Redis(host=REDIS_HOST, port=REDIS_PORT, socket_timeout=2).ping())
    except Exception:
        return False


def ensure_redis() -> None:
    """Start the machine's Redis again (as CI does) unless it answers; wait until it does."""
    if not redis_up():
        subprocess.run(REDIS_START, check=False, capture_output=True, timeout=60)
    wait_for(redis_up, 60, "Redis to answer again")


def ensure_rabbitmq() -> None:
    """Start RabbitMQ's application (or the whole server) again unless it answers; wait until it does."""
    if answers(AMQP_HOST, AMQP_PORT):
        return
    done = subprocess.run(["rabbitmqctl", "start_app"], capture_output=True, timeout=120, check=False)
    if done.returncode != 0:
        subprocess.run(["rabbitmq-server", "-detached"], capture_output=True, timeout=120, check=False)
    wait_for(lambda: answers(AMQP_HOST, AMQP_PORT), 120, "RabbitMQ to answer again", every=1.0)


# --- processes -----------------------------------------------------------------------------------------------------


class Proc:
    """A tlsward process in its own process group (so SIGKILL takes its pool processes too), logging to a file."""

    def __init__(self, name: str, command: Sequence[str], log: Path, *, prefix: Sequence[str] = ()) -> None:
        self.name, self.log = name, log
        with log.open("ab") as handle:
            self.popen = subprocess.Popen([*prefix, *command], stdin=subprocess.DEVNULL, stdout=handle,
                                          stderr=subprocess.STDOUT, env=ENV, start_new_session=True)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def tail(self, lines: int = 40) -> str:
        return f"--- {self.name} ({self.log}) ---\n" + "\n".join(self.text().splitlines()[-lines:])

    def signal(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signum)

    def stop(self, timeout: float = 30) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout``; the exit status (None when it had to be killed)."""
        if self.popen.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                return self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.signal(signal.SIGKILL)
                self.popen.wait(30)
                return None
        self.signal(signal.SIGKILL)      # pool processes left behind by a killed main process
        return self.popen.returncode

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(30)


def start_worker(tmp: Path, name: str, *, zone: str, config: Path, db: str, concurrency: int = 2,
                 prefix: Sequence[str] = (), extra: Sequence[str] = ()) -> Proc:
    return Proc(name, [sys.executable, "-m", "tlsward.cli.worker", "worker", "--zone", zone, "--concurrency",
                       str(concurrency), "--config", str(config), "--db", db, "--name", name, *extra],
                tmp / f"{name}.log", prefix=prefix)


def start_scheduler(tmp: Path, name: str, *, config: Path, db: str, listen: str | None = None,
                    extra: Sequence[str] = ()) -> Proc:
    command = [str(TLSWARD), "monitor", "--distributed", "--config", str(config), "--db", db, *extra]
    if listen is not None:
        command += ["--listen", listen]
    return Proc(name, command, tmp / f"{name}.log")


def workers_status(db: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tlsward.cli.worker", "workers", "--db", db, *extra],
                          capture_output=True, text=True, timeout=60, env=ENV | {"COLUMNS": "250"}, check=False)


def write_config(path: Path, *, broker: str, ca_files: Sequence[str], interval: str = "2s", refresh: str = "1s",
                 probes: str = "", **distributed: object) -> Path:
    """A monitor config with [probes] and [distributed] for tests: fast heartbeats, short grace periods."""
    settings: dict[str, object] = {"heartbeat": "1s", "worker_stale_after": "4s", "zone_down_after": "5s",
                                   "lease_ttl": "3s", "probe_time_limit": "20s", "write_time_limit": "20s",
                                   "visibility_timeout": "30s", "resend_after": "40s", **distributed}
    lines = ["[probes]", f'interval = "{interval}"', "jitter = 0.0", f'refresh = "{refresh}"',
             'deep_interval = "off"',
             f"ca_files = {list(ca_files)!r}".replace("'", '"'), probes, "[alerts]", "failing_after = 2",
             "[distributed]", f'broker = "{broker}"']
    for key, value in settings.items():
        lines.append(f'{key} = "{value}"' if isinstance(value, str) else f"{key} = {value}")
    path.write_text("\n".join(line for line in lines if line) + "\n")
    return path


# --- a slow endpoint -------------------------------------------------------------------------------------------------


class DelayProxy:
    """A loopback TCP proxy that waits ``delay`` seconds after accepting a connection before it connects upstream
    and relays: an endpoint whose handshake takes that long (a probe to kill a worker in the middle of)."""

    def __init__(self, upstream: tuple[str, int], delay: float, host: str = "127.0.0.1") -> None:
        self.upstream, self.delay, self.host = upstream, delay, host
        self.accepted = 0
        self.relayed = 0
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="delay-proxy", daemon=True)
        self._server: asyncio.AbstractServer | None = None

    def __enter__(self) -> DelayProxy:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._handle, self.host, 0), self._loop).result(10)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    def __exit__(self, *exc: object) -> None:
        async def close() -> None:
            assert self._server is not None
            self._server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        try:
            await asyncio.sleep(self.delay)
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except (OSError, asyncio.CancelledError):
            writer.close()
            return
        self.relayed += 1

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            with contextlib.suppress(OSError):
                sink.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
