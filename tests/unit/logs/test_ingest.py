"""The fold: hourly buckets per endpoint, client detail only for non-TLS-1.3 requests, the top-K bound with an
"other clients" row that keeps the sums exact, malformed lines counted and sampled per source."""

from __future__ import annotations

import datetime as dt

from tlsward.logs.ingest import SAMPLE_CHARS, Fold
from tlsward.model.clientlogs import OTHER_CLIENTS, PLAIN, ClientRow, LogEntry, MixRow

H12 = dt.datetime(2026, 3, 1, 12, tzinfo=dt.UTC)
H13 = dt.datetime(2026, 3, 1, 13, tzinfo=dt.UTC)


def line(when: str, protocol: str = "TLSv1.2", cipher: str = "ECDHE-RSA-AES128-GCM-SHA256", name: str = "a.example",
         address: str = "10.0.0.1", agent: str = "ua/1", port: int = 443) -> str:
    return f'{address} [{when}] "GET / HTTP/1.1" 200 "{agent}" {protocol} {cipher} {name} {port}'


def test_requests_are_bucketed_by_hour_in_utc() -> None:
    fold = Fold("nginx")
    fold.feed("s", [line("2026-03-01T12:00:00+00:00"), line("2026-03-01T12:59:59+00:00"),
                    line("2026-03-01T13:00:00+00:00"), line("2026-03-01T14:30:00+01:00"),   # 13:30 UTC
                    line("01/Mar/2026:13:10:00 +0000")])
    batch = fold.take()
    assert batch.rows == (MixRow("a.example:443", H12, "TLSv1.2", "ECDHE-RSA-AES128-GCM-SHA256", 2),
                          MixRow("a.example:443", H13, "TLSv1.2", "ECDHE-RSA-AES128-GCM-SHA256", 3))
    assert batch.requests == 5 and fold.stats.requests == 5 and fold.stats.lines == 5


def test_only_legacy_candidates_are_itemised_by_client() -> None:
    fold = Fold("nginx")
    fold.feed("s", [line("2026-03-01T12:00:00Z", "TLSv1.3", "TLS_AES_128_GCM_SHA256"),
                    line("2026-03-01T12:00:00Z", "-", "-", "-", port=80),
                    line("2026-03-01T12:00:00Z", "TLSv1", "ECDHE-RSA-AES256-SHA", address="192.0.2.10", agent="Java/6"),
                    line("2026-03-01T12:00:01Z", "TLSv1", "ECDHE-RSA-AES256-SHA", address="192.0.2.77", agent="Java/6"),
                    line("2026-03-01T12:00:01Z", "TLSv1.2", address="2001:db8:5:1::9", agent="okhttp")])
    batch = fold.take()
    assert {(row.protocol, row.requests) for row in batch.rows} == {("TLSv1.3", 1), (PLAIN, 1), ("TLSv1.0", 2),
                                                                   ("TLSv1.2", 1)}
    assert batch.clients == (
        ClientRow("a.example:443", H12, "TLSv1.0", "ECDHE-RSA-AES256-SHA", "Java/6", "192.0.2.0/24", 2),
        ClientRow("a.example:443", H12, "TLSv1.2", "ECDHE-RSA-AES128-GCM-SHA256", "okhttp", "2001:db8:5::/48", 1))
    assert fold.stats.by_protocol == {"TLSv1.3": 1, PLAIN: 1, "TLSv1.0": 2, "TLSv1.2": 1}
    assert fold.stats.endpoints == {"a.example:443", "*:80"}


def test_top_k_clients_and_an_other_row_keep_the_sums_exact() -> None:
    fold = Fold("nginx", top_clients=5)
    lines = []
    for client in range(40):            # client i makes i+1 requests: the busiest are 39, 38, 37, 36, 35
        lines += [line("2026-03-01T12:00:00Z", "TLSv1.1", "ECDHE-RSA-AES128-SHA", address=f"10.{client}.0.1")] * (
            client + 1)
    fold.feed("s", lines)
    assert fold.client_keys == 40
    batch = fold.take()
    assert fold.client_keys == 0
    named = [(c.network, c.requests) for c in batch.clients if c.network != OTHER_CLIENTS]
    assert named == [(f"10.{i}.0.0/24", i + 1) for i in (39, 38, 37, 36, 35)]
    other = [c for c in batch.clients if c.network == OTHER_CLIENTS]
    assert len(other) == 1 and other[0].user_agent == OTHER_CLIENTS
    assert other[0].requests == sum(range(1, 36))
    assert sum(c.requests for c in batch.clients) == batch.rows[0].requests == len(lines)


def test_client_rows_stay_bounded_per_key_whatever_the_traffic() -> None:
    fold = Fold("nginx", top_clients=3)
    fold.feed("s", [line("2026-03-01T12:00:00Z", "TLSv1", "AES128-SHA", name=f"n{i % 4}.example",
                         address=f"10.{i // 256 % 256}.{i % 256}.1", agent=f"agent {i % 97}") for i in range(20_000)])
    batch = fold.take()
    per_key: dict[str, int] = {}
    for client in batch.clients:
        per_key[client.endpoint] = per_key.get(client.endpoint, 0) + 1
    assert per_key == {f"n{i}.example:443": 4 for i in range(4)}          # 3 named + other
    assert sum(c.requests for c in batch.clients) == 20_000


def test_malformed_lines_are_counted_and_sampled_per_source_with_line_numbers() -> None:
    fold = Fold("nginx", samples=3)
    good = line("2026-03-01T12:00:00Z")
    assert fold.feed("a.log", [good, "garbage 1", "", good, "x" * 1000, "garbage 3", "garbage 4"], 101) == 4
    assert fold.feed("b.log", ['bad "line" \x00 TLSv1.2 x y 1'], 7) == 1
    batch = fold.take()
    by_source = {m.source: m for m in batch.malformed}
    assert by_source["a.log"].count == 4
    assert by_source["a.log"].samples == ((102, "garbage 1"), (105, "x" * SAMPLE_CHARS), (106, "garbage 3"))
    assert by_source["b.log"].samples == ((7, 'bad "line" \ufffd TLSv1.2 x y 1'),)    # NUL: not storable in PostgreSQL
    assert fold.stats.malformed == 5 and fold.stats.blank == 1 and fold.stats.requests == 2
    assert fold.take().malformed == (), "a batch starts empty"


def test_user_agents_are_cut_and_cleaned() -> None:
    fold = Fold("nginx")
    fold.feed("s", [line("2026-03-01T12:00:00Z", "TLSv1", "AES128-SHA", agent="z" * 1000),
                    line("2026-03-01T12:00:00Z", "TLSv1", "AES128-SHA", agent="nul\x00here")])
    agents = {c.user_agent for c in fold.take().clients}
    assert agents == {"z" * 256, "nul\ufffdhere"}


def test_haproxy_addresses_come_from_before_the_time() -> None:
    fold = Fold("haproxy")
    fold.feed("s", ['Mar  1 12:00:00 lb haproxy[77]: 198.51.100.20 [01/Mar/2026:12:00:00 +0000] "GET / HTTP/1.1" '
                    '200 "curl/8" TLSv1.1 ECDHE-RSA-AES128-SHA api.example 443'])
    assert [c.network for c in fold.take().clients] == ["198.51.100.0/24"]


def test_envoy_lines_and_added_entries() -> None:
    fold = Fold("envoy")
    fold.feed("s", ['{"start_time":"2026-03-01T12:10:00Z","downstream_remote_address":"203.0.113.5:999",'
                    '"downstream_tls_version":"TLSv1.2","downstream_tls_cipher":"AES128-SHA",'
                    '"requested_server_name":"e.example","downstream_local_port":"443","user_agent":"ua"}',
                    "   ", "not json"])
    fold.add(LogEntry("e.example:443", H12.timestamp() + 5, "TLSv1.2", "AES128-SHA", "203.0.113.99", "ua"))
    batch = fold.take()
    assert batch.rows == (MixRow("e.example:443", H12, "TLSv1.2", "AES128-SHA", 2),)
    assert batch.clients == (ClientRow("e.example:443", H12, "TLSv1.2", "AES128-SHA", "ua", "203.0.113.0/24", 2),)
    assert batch.malformed[0].count == 1 and fold.stats.blank == 1


def test_caches_do_not_change_results_after_many_kinds() -> None:
    """More distinct endpoints than the kind cache keeps across batches: taking a batch resets the kinds, and
    counts stay right."""
    from tlsward.logs import ingest

    fold = Fold("nginx")
    original = ingest.MAX_KINDS
    ingest.MAX_KINDS = 10
    try:
        for round_ in range(3):
            fold.feed("s", [line("2026-03-01T12:00:00Z", "TLSv1.3", "TLS_AES_128_GCM_SHA256", name=f"h{i}.example")
                            for i in range(25)])
            batch = fold.take()
            assert len(batch.rows) == 25 and batch.requests == 25, round_
    finally:
        ingest.MAX_KINDS = original
