"""Fuzzing the log parsers and the fold (hypothesis).

* No input makes a parser raise: arbitrary text (lone surrogates, NULs, control characters included), and lines
  built from the real layout with fields replaced by junk, so the fuzzer reaches deep into each parser.
* Well-formed generated lines parse to exactly what was generated.
* The ingester's fast loop counts exactly what the reference parser says, line for line, on any mix of valid and
  broken lines (it finds fields by position instead of parsing them: this is what keeps the two honest).
* The reader's line splitting does not depend on where the chunks end, keeps offsets on line boundaries, and turns
  any bytes (invalid UTF-8 included) into lines without raising.
"""

from __future__ import annotations

import collections
import datetime as dt
import itertools
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tlsward.logs.follow import MAX_LINE, _Splitter
from tlsward.logs.ingest import Fold
from tlsward.logs.parsers import PROTOCOLS, network_of, parse_envoy, parse_line, parse_time
from tlsward.model.clientlogs import LOG_FORMATS, PLAIN, LogFormat

ANY_TEXT = st.text(alphabet=st.characters(blacklist_categories=()), max_size=400)
JUNK = st.one_of(ANY_TEXT, st.sampled_from(['"', "[", "]", " [", '" ', "-", "", " ", "\t", "\x00", "\udcff",
                                           "TLSv1.2", "AES128-SHA", "443", "99999", "a b", "[2026-01-01T00:00:00Z]"]))
NAMES = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?(\.[a-z0-9]{1,10}){0,3}", fullmatch=True)
CIPHERS = st.sampled_from(["TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "ECDHE-RSA-AES128-GCM-SHA256",
                           "ECDHE-RSA-AES256-SHA", "AES128-SHA", "DES-CBC3-SHA", "RC4-MD5"])
AGENTS = st.text(alphabet=st.characters(blacklist_characters='"\n\r', blacklist_categories=("Cs",)), max_size=40)
TIMES = st.datetimes(min_value=dt.datetime(1971, 1, 1), max_value=dt.datetime(2900, 1, 1))
ADDRESSES = st.one_of(st.ip_addresses().map(str), st.sampled_from(["-", "unix:", "10.0.0.1"]))


@st.composite
def fields(draw: st.DrawFn) -> dict[str, str]:
    """The parts of one request as a server would log them."""
    protocol = draw(st.sampled_from(sorted(PROTOCOLS)))
    plain = PROTOCOLS[protocol] == PLAIN
    when = draw(TIMES).replace(microsecond=0, tzinfo=dt.UTC)
    return {"address": draw(ADDRESSES), "time_iso": when.isoformat(),
            "time_local": when.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "at": str(when.timestamp()), "agent": draw(AGENTS), "protocol": protocol,
            "cipher": "-" if plain else draw(CIPHERS), "sni": draw(st.one_of(st.just("-"), NAMES)),
            "port": str(draw(st.integers(1, 65535)))}


def render(log_format: LogFormat, f: dict[str, str]) -> str:
    if log_format == "envoy":
        return json.dumps({"start_time": f["time_iso"], "downstream_remote_address": f["address"],
                           "downstream_tls_version": f["protocol"], "downstream_tls_cipher": f["cipher"],
                           "requested_server_name": f["sni"], "downstream_local_port": f["port"],
                           "user_agent": f["agent"]})
    when = f["time_iso"] if log_format == "nginx" else f["time_local"]
    return (f'{f["address"]} [{when}] "GET / HTTP/1.1" 200 "{f["agent"]}" {f["protocol"]} {f["cipher"]} '
            f'{f["sni"]} {f["port"]}')


@st.composite
def mutated(draw: st.DrawFn, log_format: LogFormat) -> str:
    """A generated line with up to three slices replaced by junk."""
    line = render(log_format, draw(fields()))
    for _ in range(draw(st.integers(0, 3))):
        start = draw(st.integers(0, len(line)))
        end = draw(st.integers(start, min(len(line), start + 30)))
        line = line[:start] + draw(JUNK) + line[end:]
    return line


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(log_format=st.sampled_from(LOG_FORMATS), line=ANY_TEXT)
def test_no_text_makes_a_parser_raise(log_format: LogFormat, line: str) -> None:
    parse_line(log_format, line)
    parse_time(line)
    network_of(line)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), log_format=st.sampled_from(LOG_FORMATS))
def test_mutated_lines_never_raise(data: st.DataObject, log_format: LogFormat) -> None:
    parse_line(log_format, data.draw(mutated(log_format)))


@settings(max_examples=300)
@given(log_format=st.sampled_from(LOG_FORMATS), f=fields())
def test_generated_lines_parse_to_what_was_generated(log_format: LogFormat, f: dict[str, str]) -> None:
    entry = parse_line(log_format, render(log_format, f))
    assert entry is not None
    assert entry.at == float(f["at"])
    assert entry.protocol == PROTOCOLS[f["protocol"]]
    assert entry.cipher == ("" if entry.protocol == PLAIN else f["cipher"])
    name = "*" if f["sni"] == "-" else f["sni"]
    assert entry.endpoint == f"{name}:{f['port']}"
    if log_format != "envoy":
        assert entry.user_agent == f["agent"][:256]
        assert entry.client == (f["address"] if " " not in f["address"] else "")


def reference(log_format: LogFormat, lines: list[str]) -> tuple[object, ...]:
    """The fold's result computed the slow way: parse each line, add the entries."""
    fold = Fold(log_format, top_clients=3)
    malformed = 0
    for line in lines:
        if not line.strip() if log_format == "envoy" else not line:
            continue
        entry = parse_line(log_format, line)
        if entry is None:
            malformed += 1
        else:
            fold.add(entry)
    batch = fold.take()
    return batch.rows, batch.clients, malformed


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), log_format=st.sampled_from(LOG_FORMATS))
def test_fast_fold_agrees_with_the_reference_parser(data: st.DataObject, log_format: LogFormat) -> None:
    lines = data.draw(st.lists(st.one_of(fields().map(lambda f: render(log_format, f)), mutated(log_format),
                                         st.just("")), max_size=30))
    lines = [line.replace("\n", " ") for line in lines]     # the reader hands out lines without newlines
    fold = Fold(log_format, top_clients=3)
    malformed = fold.feed("fuzz", lines)
    batch = fold.take()
    assert (batch.rows, batch.clients, malformed) == reference(log_format, lines)
    assert sum(m.count for m in batch.malformed) == malformed
    assert fold.stats.requests == sum(row.requests for row in batch.rows)


@settings(max_examples=300)
@given(blob=st.binary(max_size=3000).map(lambda b: b.replace(b"\r", b"")), cuts=st.lists(st.integers(0, 3000),
                                                                                          max_size=8))
def test_splitting_does_not_depend_on_chunk_boundaries(blob: bytes, cuts: list[int]) -> None:
    whole = _Splitter()
    expected = whole.consume(blob)
    split = _Splitter()
    got: list[str] = []
    edges = sorted({0, len(blob), *(c for c in cuts if c <= len(blob))})
    for start, end in itertools.pairwise(edges):
        got += split.consume(blob[start:end])
        assert split.offset == 0 or blob[split.offset - 1:split.offset] == b"\n"
    assert got == expected
    assert split.offset == whole.offset == (blob.rfind(b"\n") + 1) and split.line == len(got)
    assert split.recent == blob[max(0, split.offset - 64):split.offset]
    rest = blob[split.offset:]
    assert split.finish() == ([rest.decode("utf-8", "replace")] if rest else [])
    assert split.offset == len(blob)


def test_an_over_long_line_is_one_placeholder_and_the_offsets_stay_exact() -> None:
    long = b"x" * (MAX_LINE * 3)
    blob = b"first\n" + long + b"\nsecond\n"
    splitter = _Splitter()
    lines: list[str] = []
    for start in range(0, len(blob), 10_000):
        lines += splitter.consume(blob[start:start + 10_000])
    assert lines[0] == "first" and lines[2] == "second" and len(lines) == 3
    assert lines[1].startswith(f"<a line of {len(long)} bytes") and '"' not in lines[1]
    assert splitter.offset == len(blob) and splitter.recent == blob[-64:]
    for log_format in LOG_FORMATS:
        assert parse_line(log_format, lines[1]) is None
    assert parse_envoy(lines[1]) is None


def test_counts_match_a_collections_counter_on_many_lines() -> None:
    """A larger, deterministic cross-check than hypothesis explores: 20,000 generated lines."""
    import random

    rng = random.Random(11)
    protocols = ["TLSv1.3", "TLSv1.2", "TLSv1.1", "TLSv1", "-"]
    lines, counter = [], collections.Counter[tuple[str, str, str]]()
    for i in range(20_000):
        protocol = rng.choice(protocols)
        cipher = "-" if protocol == "-" else rng.choice(["TLS_AES_128_GCM_SHA256", "ECDHE-RSA-AES128-SHA"])
        name = rng.choice(["a.example", "b.example", "-"])
        when = dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=i * 7)
        lines.append(f'10.{i % 7}.0.{i % 250} [{when.isoformat()}] "GET / HTTP/1.1" 200 "ua{i % 30}" {protocol} '
                     f"{cipher} {name} 443")
        counter[("*" if name == "-" else name) + ":443", PROTOCOLS[protocol], "" if protocol == "-" else cipher] += 1
    fold = Fold("nginx", top_clients=5)
    fold.feed("x", lines)
    batch = fold.take()
    summed = collections.Counter[tuple[str, str, str]]()
    for row in batch.rows:
        summed[(row.endpoint, row.protocol, row.cipher)] += row.requests
    assert summed == counter
    assert len({row.bucket for row in batch.rows}) == 39     # 20,000 x 7 s = 38.9 hours
