"""The pure parts: ProbeStats (buckets, the team cap, thread safety), common names, label clipping and the
severity each stored finding id is reported at."""

from __future__ import annotations

import threading

import pytest

from tlsward.exporter.collector import MAX_LABEL_LENGTH, clip, severity_label
from tlsward.model.findings import Severity
from tlsward.model.metrics import HANDSHAKE_BUCKETS_S, OTHER_TEAM, ProbeStats, common_name
from tlsward.storage.snapshot import finding_severities


def test_a_value_on_a_bucket_bound_counts_in_that_bucket() -> None:
    stats = ProbeStats()
    stats.record(team="t", failure_kind=None, handshake_seconds=0.01)     # le="0.01" is inclusive
    stats.record(team="t", failure_kind=None, handshake_seconds=0.0100001)
    stats.record(team="t", failure_kind=None, handshake_seconds=60.0)     # only +Inf
    ((team, histogram),) = stats.snapshot().handshakes
    assert team == "t" and histogram.bounds == HANDSHAKE_BUCKETS_S
    assert dict(zip(histogram.bounds, histogram.cumulative, strict=True))[0.01] == 1
    assert dict(zip(histogram.bounds, histogram.cumulative, strict=True))[0.025] == 2
    assert histogram.cumulative[-1] == 2 and histogram.count == 3
    assert histogram.sum == pytest.approx(60.0200001)


def test_a_probe_without_a_handshake_is_counted_but_not_timed() -> None:
    stats = ProbeStats()
    stats.record(team=None, failure_kind="dns", handshake_seconds=None)
    snapshot = stats.snapshot()
    assert [(c.team, c.result, c.reason, c.probes) for c in snapshot.probes] == [("", "failure", "dns", 1)]
    assert snapshot.handshakes == ()


def test_teams_beyond_the_cap_are_counted_together() -> None:
    stats = ProbeStats(max_teams=2)
    for team in ("a", "b", "c", "d", "a"):
        stats.record(team=team, failure_kind=None, handshake_seconds=0.1)
    counts = {c.team: c.probes for c in stats.snapshot().probes}
    assert counts == {"a": 2, "b": 1, OTHER_TEAM: 2}
    assert [team for team, _ in stats.snapshot().handshakes] == [OTHER_TEAM, "a", "b"]


def test_buckets_must_ascend() -> None:
    with pytest.raises(ValueError, match="ascending"):
        ProbeStats(buckets=(1.0, 0.5))


def test_recording_from_many_threads_loses_nothing() -> None:
    stats = ProbeStats()

    def work() -> None:
        for _ in range(2000):
            stats.record(team="t", failure_kind=None, handshake_seconds=0.02)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for _ in range(50):
        snapshot = stats.snapshot()                       # reading while writing never raises
        for _, histogram in snapshot.handshakes:
            assert histogram.cumulative[-1] <= histogram.count
    for thread in threads:
        thread.join()
    ((_, histogram),) = stats.snapshot().handshakes
    assert histogram.count == 8000 and stats.snapshot().probes[0].probes == 8000


@pytest.mark.parametrize(("name", "expected"), [
    ("CN=a.test", "a.test"),
    ("CN=a.test,O=Example,C=DE", "a.test"),
    ("O=Example,CN=b.test", "b.test"),
    ("CN=Acme\\, Inc. CA,O=Acme", "Acme, Inc. CA"),
    ("CN=x+UID=1", "x"),
    ("2.5.4.3=oid.test", "oid.test"),
    ("O=No Common Name", "O=No Common Name"),
])
def test_common_name(name: str, expected: str) -> None:
    assert common_name(name) == expected


def test_clip_keeps_short_values_and_distinguishes_long_ones() -> None:
    assert clip(None) == "" and clip("short") == "short"
    exact = "x" * MAX_LABEL_LENGTH
    assert clip(exact) == exact
    a, b = clip("y" * 200 + "a"), clip("y" * 200 + "b")
    assert len(a) == len(b) == MAX_LABEL_LENGTH and a != b and a.startswith("y" * 119 + "~")


def test_severity_labels() -> None:
    assert [severity_label(s) for s in Severity] == ["info", "low", "medium", "high", "critical"]
    assert severity_label(9) == "9"


def test_stored_finding_ids_get_the_worst_severity_first_and_capped_defaults_after() -> None:
    # cert.expiring raised to critical by its rule; chain.order (low) and cert.weak_key (high) after it.
    assert finding_severities(["cert.expiring", "chain.order", "cert.weak_key"], Severity.CRITICAL) == [
        Severity.CRITICAL, Severity.LOW, Severity.HIGH]
    # A rule that lowered its finding: the defaults after it cannot be worse than the stored worst.
    assert finding_severities(["cert.expiring", "cert.weak_key"], Severity.MEDIUM) == [Severity.MEDIUM,
                                                                                        Severity.MEDIUM]
    assert finding_severities(["no.such.id"], None) == [Severity.INFO]
