"""``metrics_snapshot(store, now)``: what the Prometheus exporter renders, read from the inventory in one
transaction with a fixed number of set-based queries, whatever the number of endpoints (never one query per
endpoint: at 10,000 endpoints a scrape must stay well under a second).

1. Enabled endpoints, each with its newest observation and its newest *successful* one (primary-key joins
   through the current-state ids the store keeps on each endpoint row).
2. The certificates of those successful chains, by primary key, the fingerprints passed as one JSON array.
3. Alert counts by status, route and severity, only when a table named ``alert`` exists (the monitor creates
   it; until then the snapshot says "no alert table", not "no alerts").

One transaction, so the three agree. On SQLite the store begins every transaction ``IMMEDIATE``: the read
holds the write lock while the rows are fetched (about 0.15 s at 10,000 endpoints), and writers wait for it
(busy timeout), they do not fail. The rows become model records after the transaction ends.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Sequence
from typing import Any, Protocol

from sqlalchemy import JSON, Connection, Engine, Text, bindparam, cast, column, func, inspect, select, table, union
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import aliased

from tlsward.model.errors import StorageError
from tlsward.model.findings import FINDING_CATALOGUE, Severity
from tlsward.model.metrics import (
    AlertCount,
    CertificateMetrics,
    ClientRequests,
    EndpointMetrics,
    FindingCount,
    MetricsSnapshot,
    RenewalMetrics,
)
from tlsward.storage.tables import Certificate, CertificateRenewalRow, ClientLogMixRow, Endpoint, Observation

ALERT_TABLE = "alert"
GOOD_OUTCOMES = ("verified", "deployed")      # a renewal that ended with its certificate in service
_SEVERITY = {int(severity): severity for severity in Severity}   # a dict lookup: Severity(n) is slow at 10,000
_ALERT = table(ALERT_TABLE, column("status"), column("route"), column("severity"))


class HasEngine(Protocol):
    """What the snapshot needs of a :class:`tlsward.storage.Store`: its engine (this module reads the tables
    directly, in one transaction, rather than through the repository's per-endpoint methods)."""

    @property
    def engine(self) -> Engine: ...


CLIENT_WINDOW = dt.timedelta(hours=24)


def metrics_snapshot(store: HasEngine, now: dt.datetime) -> MetricsSnapshot:
    """The inventory as the exporter renders it at ``now`` (recorded as ``taken_at``). Raises StorageError."""
    engine = store.engine
    try:
        with engine.connect() as connection, connection.begin():
            rows = _endpoint_rows(connection)
            certificates = _certificates(connection, {fp for row in rows for fp in row[-1] or ()},
                                         engine.dialect.name)
            alerts = _alerts(connection)
            clients = _client_requests(connection, now)
            renewals = _renewals(connection)
    except SQLAlchemyError as exc:
        raise StorageError(f"{engine.url.render_as_string(hide_password=True)}: {_first_line(exc)}") from exc
    not_after = {cert.sha256: cert.not_after for cert in certificates}
    endpoints = []
    for (target, owner, team, environment, last_at, success, failure_kind, handshake_ms, finding_ids, worst,
         ok_at, version, cipher, chain) in rows:
        fingerprints = tuple(chain) if chain else ()
        # The chain expires when its first certificate does, which may well be an intermediate (the leaf is
        # then unusable too, whatever its own date says).
        dates = [not_after[fp] for fp in fingerprints if fp in not_after]
        endpoints.append(EndpointMetrics(
            target, owner, team, environment, last_at, success, failure_kind, handshake_ms,
            tuple(finding_ids) if finding_ids else (), _SEVERITY[worst] if worst is not None else None, ok_at,
            version, cipher, fingerprints, not_after.get(fingerprints[0]) if fingerprints else None,
            min(dates) if dates else None))
    return MetricsSnapshot(taken_at=now, endpoints=tuple(endpoints), certificates=tuple(certificates),
                           findings=_finding_counts(endpoints), alerts=alerts, client_requests=clients,
                           renewals=renewals)


def _endpoint_rows(connection: Connection) -> list[Any]:
    """One row per enabled endpoint, by target: ownership, the newest observation's outcome, and the newest
    successful observation's session and chain (the last column). The store keeps both observations' ids on
    the endpoint row after every write (``last_observation_id``, ``last_success_id``), so these are primary-key
    joins: the cost grows with endpoints, never with history."""
    last = aliased(Observation)
    ok = aliased(Observation)
    query = (select(Endpoint.target, Endpoint.owner, Endpoint.team, Endpoint.environment,
                    last.observed_at, last.success, last.failure_kind, last.handshake_ms, last.finding_ids,
                    last.worst_severity, ok.observed_at, ok.version, ok.cipher, ok.chain)
             .select_from(Endpoint)
             .outerjoin(last, last.id == Endpoint.last_observation_id)
             .outerjoin(ok, ok.id == Endpoint.last_success_id)
             .where(Endpoint.enabled.is_(True))
             .order_by(Endpoint.target))
    return list(connection.execute(query))


def _certificates(connection: Connection, fingerprints: set[str], dialect: str) -> list[CertificateMetrics]:
    """The certificates with these fingerprints, in one query: the set travels as a single JSON parameter,
    so neither SQLite's nor PostgreSQL's bound-parameter limits apply at any inventory size."""
    if not fingerprints:
        return []
    wanted = bindparam("fingerprints", json.dumps(sorted(fingerprints)), type_=Text)
    elements = (func.json_each(wanted) if dialect == "sqlite"
                else func.json_array_elements_text(cast(wanted, JSON))).table_valued("value")
    query = (select(Certificate.sha256, Certificate.subject, Certificate.issuer, Certificate.not_after)
             .where(Certificate.sha256.in_(select(elements.c.value)))
             .order_by(Certificate.not_after, Certificate.sha256))
    return [CertificateMetrics(sha256, subject, issuer, not_after)
            for sha256, subject, issuer, not_after in connection.execute(query)]


def _alerts(connection: Connection) -> tuple[AlertCount, ...] | None:
    if not inspect(connection).has_table(ALERT_TABLE):
        return None
    query = (select(_ALERT.c.status, _ALERT.c.route, _ALERT.c.severity, func.count())
             .group_by(_ALERT.c.status, _ALERT.c.route, _ALERT.c.severity)
             .order_by(_ALERT.c.status, _ALERT.c.route, _ALERT.c.severity))
    return tuple(AlertCount(str(status), str(route), int(severity), int(n))
                 for status, route, severity, n in connection.execute(query))


def _renewals(connection: Connection) -> tuple[RenewalMetrics, ...]:
    """Each managed certificate's newest attempt, and the expiry of its newest successfully served certificate
    (one statement: the rows that are either)."""
    renewal = CertificateRenewalRow.__table__
    newest = select(func.max(renewal.c.id)).group_by(renewal.c.certificate)
    newest_good = (select(func.max(renewal.c.id)).where(renewal.c.outcome.in_(GOOD_OUTCOMES))
                   .group_by(renewal.c.certificate))
    query = (select(renewal.c.certificate, renewal.c.outcome, renewal.c.finished_at, renewal.c.new_not_after)
             .where(renewal.c.id.in_(union(newest, newest_good))).order_by(renewal.c.id))
    last: dict[str, tuple[str, dt.datetime]] = {}
    served: dict[str, dt.datetime | None] = {}
    for name, outcome, finished, not_after in connection.execute(query):     # oldest first: the newest wins
        last[str(name)] = (str(outcome), finished)
        if outcome in GOOD_OUTCOMES:
            served[str(name)] = not_after
    return tuple(RenewalMetrics(name, outcome, finished, served.get(name))
                 for name, (outcome, finished) in sorted(last.items()))


def _client_requests(connection: Connection, now: dt.datetime) -> tuple[ClientRequests, ...]:
    """Logged requests per endpoint and protocol over the last 24 hourly buckets (``tlsward logs ingest``)."""
    mix = ClientLogMixRow.__table__
    query = (select(mix.c.endpoint, mix.c.protocol, func.sum(mix.c.requests))
             .where(mix.c.bucket_start >= now - CLIENT_WINDOW)
             .group_by(mix.c.endpoint, mix.c.protocol).order_by(mix.c.endpoint, mix.c.protocol))
    return tuple(ClientRequests(str(endpoint), str(protocol), int(n)) for endpoint, protocol, n in
                 connection.execute(query))


def finding_severities(finding_ids: Sequence[str], worst: Severity | None) -> list[Severity]:
    """A severity for each stored finding id. Observations keep the ids (worst first) and only the worst
    severity, since rules may raise a finding above its catalogue default (``cert.expiring`` is critical in
    its last days): the first id gets the stored worst severity, each other id its catalogue default capped
    at that worst (it cannot have been worse)."""
    severities = []
    for index, finding_id in enumerate(finding_ids):
        spec = FINDING_CATALOGUE.get(finding_id)
        default = spec.severity if spec is not None else (worst if worst is not None else Severity.INFO)
        if worst is None:
            severities.append(default)
        else:
            severities.append(worst if index == 0 else min(default, worst))
    return severities


def _finding_counts(endpoints: Sequence[EndpointMetrics]) -> tuple[FindingCount, ...]:
    counts: Counter[tuple[str, Severity]] = Counter()
    for endpoint in endpoints:
        seen = set()
        for finding_id, severity in zip(endpoint.finding_ids,
                                        finding_severities(endpoint.finding_ids, endpoint.worst_severity),
                                        strict=True):
            if finding_id not in seen:           # one endpoint counts once per finding id
                seen.add(finding_id)
                counts[finding_id, severity] += 1
    return tuple(FindingCount(finding_id, severity, n)
                 for (finding_id, severity), n in sorted(counts.items(), key=lambda item: (-item[0][1], item[0][0])))


def _first_line(exc: BaseException) -> str:
    inner = getattr(exc, "orig", None) or exc
    lines = str(inner).strip().splitlines()
    return lines[0] if lines else type(inner).__name__
