"""``policy.impact``: which requests and clients a policy would refuse, from a hand-built traffic mix."""

from __future__ import annotations

import datetime as dt

from tlsward.model.clientlogs import ClientMix, ClientRow, MixRow
from tlsward.policy import load_policy
from tlsward.policy.impact import UNKNOWN_CIPHER, impact, refusal

T0 = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
T1 = T0 + dt.timedelta(days=7)
EP = "shop.example.test:443"


def row(protocol: str, cipher: str, n: int) -> MixRow:
    return MixRow(EP, T0, protocol, cipher, n)


def client(protocol: str, cipher: str, ua: str, network: str, n: int) -> ClientRow:
    return ClientRow(EP, T0, protocol, cipher, ua, network, n)


MIX = ClientMix(EP, T0, T1, rows=(
    row("TLSv1.3", "TLS_AES_128_GCM_SHA256", 900),
    row("TLSv1.2", "ECDHE-RSA-AES128-GCM-SHA256", 60),
    row("TLSv1.2", "ECDHE-RSA-AES128-SHA", 15),          # CBC: refused by intermediate (not in its suites)
    row("TLSv1", "ECDHE-RSA-AES128-SHA", 20),
    row("TLSv1.1", "ECDHE-RSA-AES256-SHA", 5),
    row("", "", 1000),                                    # plain HTTP: no TLS policy applies
    row("TLSv1.2", "SOME-NEW-CIPHER", 3),
), clients=(
    client("TLSv1", "ECDHE-RSA-AES128-SHA", "Java/1.7.0_80", "10.1.2.0/24", 20),
    client("TLSv1.1", "ECDHE-RSA-AES256-SHA", "curl/7.19", "192.0.2.0/24", 5),
    client("TLSv1.2", "ECDHE-RSA-AES128-SHA", "okhttp/3.12", "198.51.100.0/24", 15),
    client("TLSv1.2", "ECDHE-RSA-AES128-GCM-SHA256", "Firefox", "203.0.113.0/24", 60),
))


def test_intermediate_refuses_old_versions_and_cbc_suites() -> None:
    report = impact(MIX, load_policy("mozilla-intermediate"))
    assert report.requests == 1003 and report.failing == 40
    assert dict(report.by_reason) == {"TLSv1.0 not allowed": 20, "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA not allowed": 15,
                                      "TLSv1.1 not allowed": 5, UNKNOWN_CIPHER: 3}
    assert [(c.user_agent, c.requests) for c in report.clients] == [("Java/1.7.0_80", 20), ("okhttp/3.12", 15),
                                                                     ("curl/7.19", 5)]
    assert round(report.share, 4) == round(40 / 1003, 4)


def test_modern_refuses_everything_but_tls13() -> None:
    report = impact(MIX, load_policy("mozilla-modern"))
    assert report.failing == 103
    assert "Firefox" in {c.user_agent for c in report.clients}


def test_old_refuses_nothing_here() -> None:
    report = impact(MIX, load_policy("mozilla-old"))
    assert report.failing == 0 and report.clients == ()


def test_refusal_reasons() -> None:
    intermediate = load_policy("mozilla-intermediate")
    assert refusal("TLSv1.3", "TLS_AES_256_GCM_SHA384", intermediate) is None
    assert refusal("TLSv1.2", "ECDHE-ECDSA-CHACHA20-POLY1305", intermediate) is None
    assert refusal("SSLv3", "RC4-SHA", intermediate) == "SSLv3 not allowed"
    assert refusal("TLSv1.2", "no-such", intermediate) == UNKNOWN_CIPHER


def test_an_empty_mix_is_no_impact() -> None:
    report = impact(ClientMix(None, T0, T1, (), ()), load_policy("mozilla-intermediate"))
    assert report.requests == 0 and report.share == 0.0
