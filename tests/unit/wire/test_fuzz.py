"""Hostile input: whatever the bytes and however they are chunked, only WireError may escape, and fast."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.wire import golden
from tlsward.model.errors import WireError
from tlsward.wire import ServerFlightParser, sniff_not_tls

GOLDEN = [golden.FLIGHT_12, golden.FLIGHT_DHE, golden.FLIGHT_13, golden.FLIGHT_HRR, golden.ALERT_HANDSHAKE_FAILURE]
HELLOS = [golden.SERVER_HELLO_12, golden.SERVER_HELLO_DHE, golden.SERVER_HELLO_13]


def feed_in_chunks(data: bytes, cuts: list[int], max_buffered: int = 256 * 1024) -> ServerFlightParser:
    """Feed ``data`` split at ``cuts``; let only WireError out."""
    parser = ServerFlightParser(max_buffered=max_buffered)
    points = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    try:
        for start, end in itertools.pairwise(points):
            parser.feed(data[start:end])
        parser.feed_eof()
    except WireError as error:
        message = str(error)
        assert message and "\n" not in message
    return parser


cuts = st.lists(st.integers(min_value=0, max_value=10_000), max_size=12)


@settings(max_examples=500, deadline=1000)
@given(st.binary(max_size=600), cuts)
def test_random_bytes(data: bytes, chunking: list[int]) -> None:
    feed_in_chunks(data, chunking)


@settings(max_examples=500, deadline=1000)
@given(st.binary(max_size=600), cuts)
def test_random_records_after_a_plausible_header(data: bytes, chunking: list[int]) -> None:
    feed_in_chunks(b"\x16\x03\x03" + len(data).to_bytes(2, "big") + data, chunking)


@settings(max_examples=500, deadline=1000)
@given(
    st.sampled_from(GOLDEN),
    st.lists(st.tuples(st.integers(min_value=0, max_value=5000), st.integers(min_value=0, max_value=255)), max_size=6),
    st.integers(min_value=0, max_value=5000),
    cuts,
)
def test_mutated_golden_flights(
    flight: bytes, edits: list[tuple[int, int]], truncate: int, chunking: list[int]
) -> None:
    data = bytearray(flight)
    for position, value in edits:
        data[position % len(data)] = value
    feed_in_chunks(bytes(data[: max(1, truncate % (len(data) + 1))]), chunking)


@settings(max_examples=500, deadline=1000)
@given(
    st.sampled_from(HELLOS),
    st.lists(
        st.tuples(st.sampled_from([0, 2, 4, 11, 12, 13, 14, 20, 22, 99]), st.binary(max_size=80)), max_size=5
    ),
    st.integers(min_value=1, max_value=64),
    cuts,
)
def test_random_handshake_messages_after_a_server_hello(
    hello: bytes, messages: list[tuple[int, bytes]], record_size: int, chunking: list[int]
) -> None:
    stream = golden.handshake(2, hello) + b"".join(golden.handshake(t, body) for t, body in messages)
    records = b"".join(
        golden.record(22, stream[i:i + record_size]) for i in range(0, len(stream), record_size)
    )
    feed_in_chunks(records, chunking)
    feed_in_chunks(records, chunking, max_buffered=512)


@settings(max_examples=500, deadline=1000)
@given(st.binary(max_size=80), st.booleans())
def test_sniffing_never_raises(data: bytes, final: bool) -> None:
    verdict = sniff_not_tls(data, final=final)
    if len(data) >= 5 or (final and data):
        # Five bytes always decide; at EOF so does anything that is not a valid record-header prefix.
        assert verdict is not None or data[0] in (20, 21, 22, 23, 24)
