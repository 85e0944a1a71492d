"""The Celery application shared by the scheduler (which only sends) and the workers (which only consume).

Delivery is at-least-once: a task is acknowledged after it returns (``acks_late``), a worker process that dies
mid-task has its task put back (``reject_on_worker_lost``; RabbitMQ also requeues everything a lost connection
held, Redis redelivers what stayed unacknowledged for ``visibility_timeout``), each worker process reserves one
task at a time (prefetch 1), and every task carries soft and hard time limits. No result backend: workers write
observations to the database themselves, idempotently by probe id, so a redelivered probe counts once.

Zones are queues: ``tlsward.zone.<zone>``. The scheduler publishes through the broker's default exchange with
the queue's name as routing key, which RabbitMQ and Redis both deliver to the queue of that name without any
binding (a Redis restarted without persistence forgets bindings, and a message published to an exchange with
no binding is silently dropped).
"""

from __future__ import annotations

from typing import Any

from celery import Celery
from kombu import Exchange, Queue

from tlsward.distributed.settings import DistributedSettings
from tlsward.model.distributed import queue_name


def zone_queue(zone: str) -> Queue:
    """The queue of a zone, declared identically by workers (consuming) and the scheduler (publishing): durable,
    bound to a direct exchange of the same name (Celery's own convention for a queue named on the command line)."""
    name = queue_name(zone)
    return Queue(name, Exchange(name, type="direct", durable=True), routing_key=name, durable=True,
                 auto_delete=False)


def transport_options(settings: DistributedSettings) -> dict[str, Any]:
    """Broker transport options: for Redis, how soon unacknowledged tasks of a dead worker come back and how
    long a command may wait on a broker that went away; ignored by the AMQP transport."""
    if settings.broker_kind() != "redis":
        return {"confirm_publish": True}
    return {"visibility_timeout": settings.visibility_timeout_s,
            "unacked_restore_interval": max(1, min(10, int(settings.visibility_timeout_s / 4))),
            "unacked_restore_throttle": 1,
            "socket_timeout": 10.0, "socket_connect_timeout": 5.0, "socket_keepalive": True,
            "health_check_interval": 10}


def make_app(settings: DistributedSettings, *, zone: str | None = None) -> Celery:
    """A Celery app on the configured broker; with ``zone``, one that consumes that zone's queue."""
    app = Celery("tlsward", broker=settings.broker_url(), set_as_current=False)
    app.conf.update(
        task_ignore_result=True,
        result_backend=None,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_acks_on_failure_or_timeout=True,   # a task that failed or hit its hard limit is not retried by the
                                                # broker: the scheduler sends its probes again (bounded)
        worker_prefetch_multiplier=1,
        task_serializer="json",
        accept_content=["json"],
        task_default_queue=queue_name(zone) if zone else "tlsward.zone.default",
        task_create_missing_queues=True,
        task_queues=[zone_queue(zone)] if zone else [],
        broker_connection_retry=True,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,      # a worker waits for the broker forever, never exits on its own
        broker_channel_error_retry=True,
        broker_heartbeat=10,
        broker_transport_options=transport_options(settings),
        broker_pool_limit=4,
        worker_enable_remote_control=False,      # tlsward workers report through the database (probe_worker)
        worker_send_task_events=False,
        task_send_sent_event=False,
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        worker_cancel_long_running_tasks_on_connection_loss=False,
        enable_utc=True,
    )
    return app


def harden_redis_ack() -> None:
    """Make a failed acknowledgement on Redis release the worker's prefetch slot (kombu 5.7).

    kombu's Redis QoS forgets a delivered message only after the acknowledgement reached Redis. When Redis goes
    away while a task runs, the ack fails, the message stays "delivered" in the worker's local state, and with a
    prefetch of one per process the worker never asks Redis for another task again: it does not even notice the
    outage, since it only watches the connection while it waits for a task. Here the local state forgets the
    message either way, so the worker polls again, sees the connection is gone and reconnects. The message is not
    lost: if Redis kept it, it is redelivered after the visibility timeout (and written once, by probe id); if it
    did not, the scheduler sends the probe again."""
    from kombu.transport import redis as kombu_redis
    from kombu.transport.virtual import base

    qos: Any = kombu_redis.QoS
    if getattr(qos, "_tlsward_hardened", False):
        return
    ack, reject = qos.ack, qos.reject

    def safe_ack(self: Any, delivery_tag: Any) -> None:
        try:
            ack(self, delivery_tag)
        except Exception:
            base.QoS.ack(self, delivery_tag)
            raise

    def safe_reject(self: Any, delivery_tag: Any, requeue: bool = False) -> None:
        try:
            reject(self, delivery_tag, requeue=requeue)
        except Exception:
            base.QoS.ack(self, delivery_tag)
            raise

    qos.ack, qos.reject, qos._tlsward_hardened = safe_ack, safe_reject, True
