"""Ring 4: distributed probing on Celery (docs/distributed.md). The scheduler (``tlsward monitor --distributed``)
sends due probes to per-zone queues on Redis or RabbitMQ; workers (``tlsward worker --zone``) run the monitor's
engine call and write the results to the shared PostgreSQL inventory; ``tlsward workers`` shows the fleet.

Celery is imported only by the modules that need it, never by single-machine ``tlsward monitor``."""
