"""The scheduler's side of the broker: send probe batches to a zone's queue, read queue depths. Blocking calls,
made from one dedicated thread of the scheduler (never on its event loop)."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable
from typing import Any, cast

from celery import Celery
from kombu.exceptions import KombuError

from tlsward.distributed.app import make_app, zone_queue
from tlsward.distributed.settings import DistributedSettings
from tlsward.model.distributed import PROBE_TASK

log = logging.getLogger("tlsward.scheduler")


class BrokerError(Exception):
    """The broker could not be reached or refused the operation."""


class Publisher:
    """Sends batches and reads depths; every failure is a :class:`BrokerError` (the scheduler holds the probes
    and tries again later)."""

    def __init__(self, settings: DistributedSettings, app: Celery | None = None) -> None:
        self.settings = settings
        self.app = app or make_app(settings)
        self._declared: set[str] = set()
        self._connection: Any = None
        self._errors = self._connection_errors()

    def _connection_errors(self) -> tuple[type[BaseException], ...]:
        with self.app.connection_for_write() as connection:
            errors = tuple(connection.connection_errors) + tuple(connection.channel_errors)
        return (*errors, KombuError, OSError, TimeoutError)

    def declare(self, zones: Iterable[str]) -> None:
        """Declare the zones' queues (idempotent): on RabbitMQ a message published to a queue that does not exist
        yet would be dropped."""
        try:
            with self.app.connection_for_write() as connection:
                connection.ensure_connection(max_retries=1, timeout=5)
                channel = connection.default_channel
                for zone in zones:
                    zone_queue(zone).bind(channel).declare()
                    self._declared.add(zone)
        except self._errors as exc:
            self._declared.clear()
            raise BrokerError(str(exc) or type(exc).__name__) from exc

    def send(self, zone: str, body: dict[str, Any], *, soft_limit: float, hard_limit: float) -> None:
        """Publish one task (a batch of probe orders) to the zone's queue, through the default exchange."""
        if zone not in self._declared:
            self.declare([zone])
        try:
            # Celery publishes to a direct queue through the default exchange, routing key = the queue's name.
            self.app.send_task(PROBE_TASK, args=[body], queue=cast(Any, zone_queue(zone)),
                               soft_time_limit=math.ceil(soft_limit), time_limit=math.ceil(hard_limit), retry=True,
                               retry_policy={"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5,
                                             "interval_max": 1.0})
        except self._errors as exc:
            self._declared.clear()
            raise BrokerError(str(exc) or type(exc).__name__) from exc

    def depths(self, zones: Iterable[str]) -> dict[str, int]:
        """Tasks waiting in each zone's queue (not those reserved or running on workers). One connection is kept for
        this (the scheduler asks several times a second while the queues hold probes back)."""
        found: dict[str, int] = {}
        try:
            if self._connection is None:
                self._connection = self.app.connection_for_write()
                self._connection.ensure_connection(max_retries=1, timeout=5)
            channel = self._connection.default_channel
            for zone in zones:
                # (name, message_count, consumer_count) on both transports (the stubs say otherwise)
                declared: Any = zone_queue(zone).bind(channel).queue_declare()
                found[zone] = int(declared[1])
                self._declared.add(zone)
        except self._errors as exc:
            self._declared.clear()
            self._drop_connection()
            raise BrokerError(str(exc) or type(exc).__name__) from exc
        return found

    def _drop_connection(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.close()
            except Exception as exc:   # the broker is gone; nothing to tidy
                log.debug("closing the depth connection: %r", exc)

    def close(self) -> None:
        self._drop_connection()
        started = time.monotonic()
        try:
            cast(Any, self.app.pool).force_close_all()
        except Exception as exc:   # closing a connection to a broker that is gone may fail in many ways
            log.debug("closing the broker connections: %r (%.1f s)", exc, time.monotonic() - started)
