"""Settings of distributed probing: the ``[distributed]`` table of the monitor's config file (the scheduler and
every worker read the same file), ``$TLSWARD_BROKER`` and the command-line flags, in that order of precedence
(flags win).

    [distributed]
    broker = "redis://127.0.0.1:6379/0"     # or amqp://guest:guest@127.0.0.1:5672// (RabbitMQ)
    batch_size = 20                         # probes per task: amortises the queue's per-message cost
    queue_per_slot = 2                      # backpressure: tasks waiting per live worker slot, at most
    heartbeat = "5s"                        # how often workers report (probe_worker rows)
    worker_stale_after = "20s"              # a worker silent this long is counted dead
    zone_down_after = "60s"                 # a zone with endpoints and no live worker this long: zone.down alert
    lease_ttl = "15s"                       # the scheduler lease; a standby takes over this long after a crash
    probe_time_limit = "60s"                # one quick probe (the engine call), at most
    deep_time_limit = "240s"                # one deep scan, at most
    write_time_limit = "60s"                # retrying the batched write while the database is away, at most
    visibility_timeout = "600s"             # Redis: an unacknowledged task is redelivered after this long
    resend_after = "660s"                   # a probe sent and not written this long is sent again ...
    max_resends = 3                         # ... at most this often (then it is abandoned, and counted)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tlsward.model.errors import UsageError
from tlsward.monitor.config import read_config_file

BROKER_ENV = "TLSWARD_BROKER"
BROKER_SCHEMES = ("redis", "rediss", "amqp", "amqps", "pyamqp")
_DURATIONS = ("heartbeat", "worker_stale_after", "zone_down_after", "lease_ttl", "probe_time_limit",
              "deep_time_limit", "write_time_limit", "visibility_timeout", "resend_after")
_INTEGERS = ("batch_size", "queue_per_slot", "max_resends")


@dataclass(frozen=True, slots=True)
class DistributedSettings:
    """Every knob of distributed probing, with the defaults a first deployment should keep."""

    broker: str | None = None
    batch_size: int = 20
    queue_per_slot: int = 2
    heartbeat_s: float = 5.0
    worker_stale_after_s: float = 20.0
    zone_down_after_s: float = 60.0
    lease_ttl_s: float = 15.0
    probe_time_limit_s: float = 60.0
    deep_time_limit_s: float = 240.0
    write_time_limit_s: float = 60.0
    visibility_timeout_s: float = 600.0
    resend_after_s: float = 660.0
    max_resends: int = 3
    status_every_s: float = 1.0        # queue depths, heartbeats, zone states: how often the scheduler looks
    poll_every_s: float = 1.0          # how often the scheduler looks for written probes

    def task_limits(self, deep: bool) -> tuple[float, float]:
        """(soft, hard) Celery time limits of a task: its probes' limit plus the write budget, then 30 s more."""
        soft = (self.deep_time_limit_s if deep else self.probe_time_limit_s) + self.write_time_limit_s
        return soft, soft + 30.0

    def broker_url(self) -> str:
        """The broker URL; UsageError when none is configured or its scheme is not Redis or AMQP."""
        url = self.broker
        if not url:
            raise UsageError(f"distributed probing needs a broker: --broker URL, ${BROKER_ENV} or [distributed] "
                             "broker (redis://HOST:6379/0 or amqp://USER:PASS@HOST:5672//)")
        return check_broker(url)

    def broker_kind(self) -> str:
        """``redis`` or ``amqp``."""
        return "redis" if urlsplit(self.broker_url()).scheme.startswith("redis") else "amqp"


def check_broker(url: str) -> str:
    scheme = urlsplit(url).scheme
    if scheme not in BROKER_SCHEMES:
        raise UsageError(f"broker {redact(url)!r}: expected a redis://, rediss://, amqp:// or amqps:// URL")
    return url


def redact(url: str) -> str:
    """The URL without its password, for logs and errors."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def parse_settings(data: Mapping[str, Any], where: str) -> DistributedSettings:
    """The ``[distributed]`` table (``data`` is the whole config); unknown keys and bad values are usage errors."""
    from tlsward.model.durations import parse_duration

    table = data.get("distributed", {})
    if not isinstance(table, Mapping):
        raise UsageError(f"{where}: [distributed] must be a table")
    known = {"broker", *_DURATIONS, *_INTEGERS}
    unknown = sorted(set(table) - known)
    if unknown:
        raise UsageError(f"{where}: [distributed] has unknown key(s) {', '.join(unknown)} "
                         f"(known: {', '.join(sorted(known))})")
    values: dict[str, Any] = {}
    if "broker" in table:
        if not isinstance(table["broker"], str):
            raise UsageError(f"{where}: distributed.broker: expected a URL")
        values["broker"] = check_broker(table["broker"])
    for key in _DURATIONS:
        if key in table:
            values[f"{key}_s"] = parse_duration(table[key], f"{where}: distributed.{key}")
    for key in _INTEGERS:
        if key in table:
            value = table[key]
            if isinstance(value, bool) or not isinstance(value, int) or value < (0 if key == "max_resends" else 1):
                raise UsageError(f"{where}: distributed.{key}: expected a whole number >= "
                                 f"{0 if key == 'max_resends' else 1}, got {value!r}")
            values[key] = value
    return DistributedSettings(**values)


def load_settings(config: Path | None, *, broker: str | None = None,
                  overrides: Mapping[str, Any] | None = None) -> DistributedSettings:
    """``[distributed]`` of the config file (TOML or YAML, as the monitor reads it), then ``$TLSWARD_BROKER``,
    then ``broker`` and ``overrides`` (field name -> value) from the command line."""
    settings = DistributedSettings()
    if config is not None:
        settings = parse_settings(_read(config), str(config))
    if settings.broker is None and (env := os.environ.get(BROKER_ENV)):
        settings = replace(settings, broker=check_broker(env))
    if broker is not None:
        settings = replace(settings, broker=check_broker(broker))
    if overrides:
        names = {f.name for f in fields(DistributedSettings)}
        settings = replace(settings, **{k: v for k, v in overrides.items() if k in names and v is not None})
    return settings


def _read(path: Path) -> Mapping[str, Any]:
    data = read_config_file(path)
    if not isinstance(data, Mapping):
        raise UsageError(f"{path}: expected a table at the top")
    return data
