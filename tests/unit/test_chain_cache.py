"""The chain cache: one validation per chain, but the hostname verdict is always the asked name's."""

from __future__ import annotations

import datetime as dt

from cryptography.hazmat.primitives.serialization import Encoding

from tlsward.engine import ChainCache
from tlsward.lab.pki import LeafSpec, build_pki
from tlsward.x509.trust import TrustStore

NOW = dt.datetime(2031, 1, 1, tzinfo=dt.UTC)


def test_cached_verdicts_keep_per_name_hostname_checks() -> None:
    pki = build_pki({"w": LeafSpec(names=("*.wild.test",))}, NOW, "http://127.0.0.1:9")
    chain = [c.public_bytes(Encoding.DER) for c in pki.chain_for("w")]
    stores = [TrustStore("lab", (pki.cas["root"].cert,))]
    cache = ChainCache(ttl=60)
    first = cache.analysis(chain, "a.wild.test", stores, NOW)
    second = cache.analysis(chain, "a.b.wild.test", stores, NOW + dt.timedelta(seconds=1))
    third = cache.analysis(chain, "c.wild.test", stores, NOW + dt.timedelta(seconds=2))
    assert first.trusted and second.trusted and third.trusted
    assert second.verdicts is first.verdicts            # validated once
    assert (first.hostname_matches, second.hostname_matches, third.hostname_matches) == (True, False, True)
    assert second.hostname == "a.b.wild.test"
    later = cache.analysis(chain, "a.wild.test", stores, NOW + dt.timedelta(seconds=61))
    assert later.verdicts is not first.verdicts         # expired: validated again at the new time
