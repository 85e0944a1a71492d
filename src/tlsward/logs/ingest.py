"""The fold: access-log lines into hourly buckets per endpoint, at a few hundred thousand lines a second.

Per (endpoint, hour, protocol, cipher) it counts requests (:class:`MixRow`); for every request that is neither
TLS 1.3 nor plain HTTP it also counts (user agent, client network), and keeps the :data:`TOP_CLIENTS` busiest of
those per key plus one :data:`OTHER_CLIENTS` row for the rest (:class:`ClientRow`), so what is stored per key is
bounded whatever the traffic. Lines no parser understands are counted per source, with the first few kept as
samples (line number and first 200 characters); they never stop the fold.

Speed comes from doing per line only what differs per line. For the bracketed formats (nginx, HAProxy, Apache)
the loop finds the time and the TLS tail with ``str.find``/``rfind`` and looks both up in caches: a time text
(one per second of log) maps to its hour, a tail text (``TLSv1.2 ECDHE-RSA-AES128-GCM-SHA256 app.example
443``, a handful per endpoint) to an integer kind, and the count is one ``dict`` update keyed by an integer.
Only a cache miss parses (:func:`~tlsward.logs.parsers.parse_time`, :func:`~tlsward.logs.parsers.resolve_tail`,
the very functions :func:`~tlsward.logs.parsers.parse_line` uses, so the fast fold and the reference parser agree
line for line; a test checks it). Client address and user agent are only sliced for the non-TLS-1.3 lines.
Envoy's JSON goes through ``json.loads`` per line (slower; see docs/logs.md).

Memory is bounded by the batch: the caller takes a batch (:meth:`Fold.take`) every ``BATCH_LINES`` lines or
when :attr:`Fold.client_keys` passes ``MAX_CLIENT_KEYS``, and every cache is cleared past ``MAX_CACHE`` entries.
"""

from __future__ import annotations

import collections
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

from tlsward.logs.parsers import (
    MAX_USER_AGENT,
    address_after_bracket,
    network_of,
    parse_envoy,
    parse_time,
    resolve_tail,
)
from tlsward.model.clientlogs import (
    BUCKET_SECONDS,
    OTHER_CLIENTS,
    PLAIN,
    TOP_CLIENTS,
    ClientRow,
    IngestBatch,
    LogEntry,
    LogFormat,
    MalformedLines,
    MixRow,
)

__all__ = ["BATCH_LINES", "MALFORMED_SAMPLES", "MAX_CLIENT_KEYS", "SAMPLE_CHARS", "Fold", "FoldStats"]

BATCH_LINES = 500_000          # lines per batch (one database transaction)
MAX_CLIENT_KEYS = 100_000      # distinct (key, user agent, network) held before a batch is taken early
MAX_CACHE = 200_000            # entries per parse cache (times, tails, networks) before it is cleared
MAX_KINDS = 100_000            # distinct (endpoint, protocol, cipher) kept across batches
MALFORMED_SAMPLES = 10         # sample lines kept per source
SAMPLE_CHARS = 200
_KIND_SPACE = 1 << 24          # count key = hour * _KIND_SPACE + kind; kind = 2 * index + (client detail wanted)
_NO_DETAIL = (PLAIN, "TLSv1.3")


@dataclass
class FoldStats:
    """What a fold has seen, over every batch taken so far (``by_protocol`` counts requests, "" is plain HTTP;
    ``endpoints`` are the names seen, held for the run's summary)."""

    lines: int = 0
    requests: int = 0
    malformed: int = 0
    blank: int = 0
    by_protocol: collections.Counter[str] = field(default_factory=collections.Counter)
    endpoints: set[str] = field(default_factory=set)


def _clean(text: str) -> str:
    """Text any database stores: no NUL (PostgreSQL refuses it), no lone surrogate (not UTF-8)."""
    if text.isascii() and "\x00" not in text:
        return text
    return text.replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")


class Fold:
    """Counts lines of one log format into hourly buckets; :meth:`take` hands out what was counted and starts a
    new batch. Not thread-safe: one fold per ingesting thread."""

    def __init__(self, log_format: LogFormat, *, top_clients: int = TOP_CLIENTS,
                 samples: int = MALFORMED_SAMPLES) -> None:
        self.log_format = log_format
        self.top_clients = top_clients
        self.samples = samples
        self.stats = FoldStats()
        self.pending_lines = 0                                  # lines fed since the last take()
        self._counts: dict[int, int] = {}
        self._clients: dict[tuple[int, str, str], int] = {}
        self._bad: dict[str, tuple[list[int], list[tuple[int, str]]]] = {}
        self._hours: dict[str, int] = {}                        # time text → hour (-1: malformed)
        self._tails: dict[str, int] = {}                        # tail text → kind (-1: malformed)
        self._kinds: list[tuple[str, str, str]] = []            # kind // 2 → (endpoint, protocol, cipher)
        self._kind_ids: dict[tuple[str, str, str], int] = {}
        self._nets: dict[str, str] = {}                         # address → network
        self._buckets: dict[int, dt.datetime] = {}

    @property
    def client_keys(self) -> int:
        """Distinct (key, user agent, network) held in this batch: what bounds a batch's memory."""
        return len(self._clients)

    # -- feeding ---------------------------------------------------------------------------------------------------

    def feed(self, source: str, lines: Sequence[str], first_line: int = 1) -> int:
        """Count ``lines`` (without their newlines) read from ``source``, the first being line ``first_line`` of
        it (for the malformed samples). Empty lines are skipped. Returns how many lines were malformed."""
        if self.log_format == "envoy":
            malformed, blank = self._feed_entries(source, lines, first_line)
        else:
            malformed, blank = self._feed_bracketed(source, lines, first_line)
        self.pending_lines += len(lines)
        self.stats.lines += len(lines)
        self.stats.malformed += malformed
        self.stats.blank += blank
        return malformed

    def _feed_bracketed(self, source: str, lines: Sequence[str], number: int) -> tuple[int, int]:
        # Everything the loop touches is a local: attribute lookups cost as much as the work per line.
        counts, clients, hours, tails, nets = self._counts, self._clients, self._hours, self._tails, self._nets
        hour_of, kind_of, net_of, bad = self._hour, self._kind, self._net, self._malformed
        haproxy = self.log_format == "haproxy"
        space = _KIND_SPACE
        malformed = blank = 0
        number -= 1
        for line in lines:
            number += 1
            quote = line.rfind('"')
            if quote < 0:
                if line:
                    malformed += 1
                    bad(source, number, line)
                else:
                    blank += 1
                continue
            left = line.find(" [", 0, quote) + 1
            right = line.find("]", left, quote) if left else -1
            if right < 0:
                malformed += 1
                bad(source, number, line)
                continue
            hour = hours.get(line[left + 1:right])
            if hour is None:
                hour = hour_of(line[left + 1:right])
            kind = tails.get(line[quote + 1:])
            if kind is None:
                kind = kind_of(line[quote + 1:])
            if hour < 0 or kind < 0:
                malformed += 1
                bad(source, number, line)
                continue
            key = hour * space + kind
            counts[key] = counts.get(key, 0) + 1
            if kind & 1:                                          # neither TLS 1.3 nor plain: who is it?
                if haproxy:
                    address = address_after_bracket(line, left)
                else:
                    first = line.find(" ")
                    address = line[:first] if first > 0 else ""
                network = nets.get(address)
                if network is None:
                    network = net_of(address)
                start = line.rfind(' "', 0, quote)
                agent = line[start + 2:quote][:MAX_USER_AGENT] if start >= 0 else ""
                client = (key, agent, network)
                clients[client] = clients.get(client, 0) + 1
        return malformed, blank

    def _feed_entries(self, source: str, lines: Sequence[str], number: int) -> tuple[int, int]:
        malformed = blank = 0
        for offset, line in enumerate(lines):
            if not line.strip():
                blank += 1
                continue
            entry = parse_envoy(line)
            if entry is None:
                malformed += 1
                self._malformed(source, number + offset, line)
            else:
                self.add(entry)
        return malformed, blank

    def add(self, entry: LogEntry) -> None:
        """Count one parsed entry (what :meth:`feed` does per line, the slow way)."""
        kind = self._kind_id((entry.endpoint, entry.protocol, entry.cipher))
        key = int(entry.at // BUCKET_SECONDS) * _KIND_SPACE + kind
        self._counts[key] = self._counts.get(key, 0) + 1
        if kind & 1:
            client = (key, entry.user_agent[:MAX_USER_AGENT], self._net(entry.client))
            self._clients[client] = self._clients.get(client, 0) + 1

    def reject(self, source: str, number: int, line: str) -> None:
        """Count a line as malformed without parsing it (the reader's over-long lines)."""
        self._malformed(source, number, line)
        self.stats.malformed += 1

    # -- cache misses ----------------------------------------------------------------------------------------------

    def _hour(self, text: str) -> int:
        if len(self._hours) >= MAX_CACHE:
            self._hours.clear()
        at = parse_time(text)
        hour = -1 if at is None else int(at // BUCKET_SECONDS)
        self._hours[text] = hour
        return hour

    def _kind(self, tail: str) -> int:
        if len(self._tails) >= MAX_CACHE:
            self._tails.clear()
        resolved = resolve_tail(tail)
        kind = -1 if resolved is None else self._kind_id(resolved)
        self._tails[tail] = kind
        return kind

    def _kind_id(self, resolved: tuple[str, str, str]) -> int:
        kind = self._kind_ids.get(resolved)
        if kind is None:
            kind = 2 * len(self._kinds) + (resolved[1] not in _NO_DETAIL)
            self._kinds.append(resolved)
            self._kind_ids[resolved] = kind
        return kind

    def _net(self, address: str) -> str:
        if len(self._nets) >= MAX_CACHE:
            self._nets.clear()
        network = self._nets[address] = network_of(address)
        return network

    def _malformed(self, source: str, number: int, line: str) -> None:
        held = self._bad.get(source)
        if held is None:
            held = self._bad[source] = ([0], [])
        held[0][0] += 1
        if len(held[1]) < self.samples:
            held[1].append((number, _clean(line[:SAMPLE_CHARS])))

    # -- taking a batch --------------------------------------------------------------------------------------------

    def _bucket(self, hour: int) -> dt.datetime:
        bucket = self._buckets.get(hour)
        if bucket is None:
            if len(self._buckets) >= MAX_CACHE:
                self._buckets.clear()
            bucket = self._buckets[hour] = dt.datetime.fromtimestamp(hour * BUCKET_SECONDS, dt.UTC)
        return bucket

    def take(self) -> IngestBatch:
        """What was counted since the last take, and a fresh batch. Rows come sorted (endpoint, bucket,
        protocol, cipher); per key the named clients come busiest first, then the OTHER_CLIENTS row."""
        rows: list[MixRow] = []
        by_protocol = self.stats.by_protocol
        for key, requests in self._counts.items():
            hour, kind = divmod(key, _KIND_SPACE)
            endpoint, protocol, cipher = self._kinds[kind >> 1]
            rows.append(MixRow(endpoint, self._bucket(hour), protocol, cipher, requests))
            by_protocol[protocol] += requests
            self.stats.requests += requests
            self.stats.endpoints.add(endpoint)
        rows.sort(key=lambda row: (row.endpoint, row.bucket, row.protocol, row.cipher))

        grouped: dict[int, dict[tuple[str, str], int]] = {}
        for (key, agent, network), requests in self._clients.items():
            group = grouped.setdefault(key, {})
            client = (_clean(agent), _clean(network))
            group[client] = group.get(client, 0) + requests
        clients: list[ClientRow] = []
        for key in sorted(grouped, key=lambda k: self._kinds[(k % _KIND_SPACE) >> 1] + (k // _KIND_SPACE,)):
            hour, kind = divmod(key, _KIND_SPACE)
            endpoint, protocol, cipher = self._kinds[kind >> 1]
            bucket = self._bucket(hour)
            ranked = sorted(grouped[key].items(), key=lambda item: (-item[1], item[0]))
            for (agent, network), requests in ranked[:self.top_clients]:
                clients.append(ClientRow(endpoint, bucket, protocol, cipher, agent, network, requests))
            rest = sum(requests for _, requests in ranked[self.top_clients:])
            if rest:
                clients.append(ClientRow(endpoint, bucket, protocol, cipher, OTHER_CLIENTS, OTHER_CLIENTS, rest))

        malformed = tuple(MalformedLines(source, held[0][0], tuple(held[1])) for source, held in self._bad.items())
        self._counts, self._clients, self._bad = {}, {}, {}
        self.pending_lines = 0
        if len(self._kinds) > MAX_KINDS:
            self._kinds, self._kind_ids, self._tails = [], {}, {}
        return IngestBatch(rows=tuple(rows), clients=tuple(clients), malformed=malformed)
