"""The revocation probe and its per-run cache, against a real loopback HTTP server serving a lab PKI."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID

from tests.unit.loopback_http import LoopbackHTTP, Route, closed_port, loopback_http
from tlsward.lab.pki import DAY, Issued, LabPKI, LeafSpec, build_pki, generate_key
from tlsward.model.certificate import RevocationStatus
from tlsward.probes.revocation import RevocationCache, check_leaf, fetch_missing_issuers, stapled_state

NOW = dt.datetime(2031, 5, 17, 12, 0, tzinfo=dt.UTC)


def der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(Encoding.DER)


@dataclass
class World:
    http: LoopbackHTTP
    pki: LabPKI

    def chain(self, leaf: str) -> list[bytes]:
        return [der(c) for c in self.pki.chain_for(leaf)]


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    with loopback_http() as http:
        pki = build_pki({"good": LeafSpec(names=("good.example.test",)),
                         "revoked": LeafSpec(names=("revoked.example.test",), revoked=True),
                         "self": LeafSpec(names=("self.example.test",), self_signed=True)}, NOW, http.base)
        for name, ca in pki.cas.items():
            http.routes[f"/{name}.der"] = Route(der(ca.cert))
        for name, crl in pki.crls.items():
            http.routes[f"/{name}.crl"] = Route(crl.public_bytes(Encoding.DER), delay=0.05)
        yield World(http, pki)


@pytest.fixture(autouse=True)
def fresh_counts(world: World) -> None:
    world.http.hits.clear()


def leaf_with(ca: Issued, *, ocsp_urls: tuple[str, ...] = (), crl_urls: tuple[str, ...] = (),
              ca_issuers: tuple[str, ...] = ()) -> x509.Certificate:
    """A leaf issued by ``ca`` with exactly these revocation and AIA pointers."""
    key = generate_key("p256")
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "custom.example.test")]))
               .issuer_name(ca.cert.subject)
               .public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(NOW - DAY)
               .not_valid_after(NOW + 30 * DAY))
    access = [x509.AccessDescription(AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(u))
              for u in ocsp_urls]
    access += [x509.AccessDescription(AuthorityInformationAccessOID.CA_ISSUERS, x509.UniformResourceIdentifier(u))
               for u in ca_issuers]
    if access:
        builder = builder.add_extension(x509.AuthorityInformationAccess(access), critical=False)
    if crl_urls:
        builder = builder.add_extension(x509.CRLDistributionPoints([
            x509.DistributionPoint([x509.UniformResourceIdentifier(u) for u in crl_urls], None, None, None)]),
            critical=False)
    return builder.sign(ca.key, hashes.SHA256())


def ocsp_answer(cert: x509.Certificate, ca: Issued, status: ocsp.OCSPCertStatus) -> bytes:
    revoked = status == ocsp.OCSPCertStatus.REVOKED
    return (ocsp.OCSPResponseBuilder()
            .add_response(cert=cert, issuer=ca.cert, algorithm=hashes.SHA256(), cert_status=status,
                          this_update=NOW - DAY, next_update=NOW + DAY,
                          revocation_time=NOW - DAY if revoked else None,
                          revocation_reason=x509.ReasonFlags.key_compromise if revoked else None)
            .responder_id(ocsp.OCSPResponderEncoding.HASH, ca.cert)
            .sign(ca.key, hashes.SHA256()).public_bytes(Encoding.DER))


def check(chain: list[bytes], cache: RevocationCache | None = None, mode: str = "soft",
          stapled: bytes | None = None) -> RevocationStatus | None:
    return asyncio.run(check_leaf(chain, mode, cache or RevocationCache(), NOW, 2.0, stapled=stapled))


def status_of(chain: list[bytes], cache: RevocationCache | None = None, mode: str = "soft",
              stapled: bytes | None = None) -> RevocationStatus:
    status = check(chain, cache, mode, stapled)
    assert status is not None
    return status


# --- the cache --------------------------------------------------------------------------------------------


def test_concurrent_checks_under_one_ca_fetch_its_crl_once(world: World) -> None:
    cache = RevocationCache()
    chain = world.chain("good")

    async def many() -> list[RevocationStatus | None]:
        return await asyncio.gather(*(check_leaf(chain, "soft", cache, NOW, 2.0) for _ in range(50)))

    results = asyncio.run(many())
    assert {r.status for r in results if r is not None} == {"good"} and None not in results
    assert world.http.hits["/intermediate.crl"] == 1
    assert cache.fetches == 1


def test_a_cached_crl_is_reused_until_max_age(world: World) -> None:
    clock = [0.0]
    cache = RevocationCache(max_age=60, clock=lambda: clock[0])
    for _ in range(3):
        check(world.chain("good"), cache)
    assert world.http.hits["/intermediate.crl"] == 1
    clock[0] = 61
    check(world.chain("good"), cache)
    assert world.http.hits["/intermediate.crl"] == 2


def test_failures_are_cached_for_failure_ttl(world: World) -> None:
    clock = [0.0]
    cache = RevocationCache(failure_ttl=30, clock=lambda: clock[0])
    leaf = leaf_with(world.pki.cas["intermediate"], crl_urls=(world.http.url("/gone.crl"),))
    chain = [der(leaf), der(world.pki.cas["intermediate"].cert)]
    for _ in range(2):
        assert status_of(chain, cache).status == "unavailable"
    assert world.http.hits["/gone.crl"] == 1
    clock[0] = 31
    check(chain, cache)
    assert world.http.hits["/gone.crl"] == 2


# --- verdicts ---------------------------------------------------------------------------------------------


def test_revoked_leaf_via_crl(world: World) -> None:
    status = status_of(world.chain("revoked"))
    url = world.http.url("/intermediate.crl")
    assert status.status == "revoked" and status.source == "crl" and status.url == url
    assert status.checked_urls == (url,)
    assert status.reason.endswith("(keyCompromise)") and status.revoked_at is not None


def test_leaf_only_chain_downloads_the_issuer_to_verify_the_crl(world: World) -> None:
    status = status_of(world.chain("revoked")[:1])
    assert status.status == "revoked"
    assert world.http.hits["/intermediate.der"] == 1


def test_unreachable_crl_is_unavailable_never_revoked(world: World) -> None:
    url = f"http://127.0.0.1:{closed_port()}/intermediate.crl"
    leaf = leaf_with(world.pki.cas["intermediate"], crl_urls=(url,))
    chain = [der(leaf), der(world.pki.cas["intermediate"].cert)]
    for mode in ("soft", "hard"):
        status = status_of(chain, mode=mode)
        assert status.status == "unavailable"
        assert status.reason == f"CRL {url} unreachable: connection refused"
        assert status.checked_urls == (url,)


def test_ocsp_responder_is_asked_before_the_crl(world: World) -> None:
    ca = world.pki.cas["intermediate"]
    leaf = leaf_with(ca, ocsp_urls=(world.http.url("/ocsp"),), crl_urls=(world.http.url("/intermediate.crl"),))

    def responder(request: bytes) -> bytes:
        asked = ocsp.load_der_ocsp_request(request)
        assert asked.serial_number == leaf.serial_number
        return ocsp_answer(leaf, ca, ocsp.OCSPCertStatus.REVOKED)

    world.http.routes["/ocsp"] = Route(responder, headers={"Content-Type": "application/ocsp-response"})
    status = status_of([der(leaf), der(ca.cert)])
    assert (status.status, status.source) == ("revoked", "ocsp")
    assert world.http.hits == {"/ocsp": 1}


def test_unreachable_responder_falls_back_to_the_crl(world: World) -> None:
    ca = world.pki.cas["intermediate"]
    dead = f"http://127.0.0.1:{closed_port()}/ocsp"
    leaf = leaf_with(ca, ocsp_urls=(dead,), crl_urls=(world.http.url("/intermediate.crl"),))
    status = status_of([der(leaf), der(ca.cert)])
    assert (status.status, status.source) == ("good", "crl")
    assert status.checked_urls == (dead, world.http.url("/intermediate.crl"))


def test_a_stapled_answer_is_preferred_and_fetches_nothing(world: World) -> None:
    ca = world.pki.cas["intermediate"]
    leaf = world.pki.leaves["revoked"].cert
    stapled = ocsp_answer(leaf, ca, ocsp.OCSPCertStatus.GOOD)
    status = status_of(world.chain("revoked"), stapled=stapled)
    assert (status.status, status.source, status.checked_urls) == ("good", "stapled-ocsp", ())
    assert not world.http.hits
    assert stapled_state(world.chain("revoked"), stapled, NOW) == "good"
    assert stapled_state(world.chain("revoked"), b"junk", NOW) == "malformed"
    assert stapled_state(world.chain("revoked")[:1], stapled, NOW) == "unknown"   # no issuer to verify with
    assert stapled_state(world.chain("revoked"), None, NOW) is None


def test_no_pointers_at_all_is_unknown(world: World) -> None:
    ca = world.pki.cas["intermediate"]
    status = status_of([der(leaf_with(ca)), der(ca.cert)])
    assert status.status == "unknown" and "names no OCSP responder and no CRL" in status.reason


def test_off_and_self_signed_give_no_status(world: World) -> None:
    assert check(world.chain("good"), mode="off") is None
    assert check(world.chain("self")) is None
    assert not world.http.hits
    with pytest.raises(ValueError, match="unknown revocation mode 'strict'"):
        check(world.chain("good"), mode="strict")


# --- AIA completion ---------------------------------------------------------------------------------------


def test_missing_intermediate_is_fetched_from_aia(world: World) -> None:
    cache = RevocationCache()
    notes: list[str] = []
    chain = world.chain("good")
    fetched = asyncio.run(fetch_missing_issuers(chain[:1], cache, 2.0, notes=notes))
    assert fetched == (chain[1],) and not notes
    assert asyncio.run(fetch_missing_issuers(chain[:1], cache, 2.0)) == fetched
    assert world.http.hits["/intermediate.der"] == 1


def test_complete_chain_fetches_nothing(world: World) -> None:
    assert asyncio.run(fetch_missing_issuers(world.chain("good"), RevocationCache(), 2.0)) == ()
    assert not world.http.hits


def test_aia_problems_become_notes(world: World) -> None:
    ca = world.pki.cas["intermediate"]
    dead = f"http://127.0.0.1:{closed_port()}/ca.der"
    wrong = world.http.url("/intermediate-2.der")
    notes: list[str] = []
    leaf = leaf_with(ca, ca_issuers=(dead, wrong))
    assert asyncio.run(fetch_missing_issuers([der(leaf)], RevocationCache(), 2.0, notes=notes)) == ()
    assert notes == [f"AIA caIssuers {dead} unreachable: connection refused",
                     f"AIA caIssuers {wrong} served no certificate that issued CN=custom.example.test"]


def test_blackholed_responders_cost_a_bounded_time(world: World) -> None:
    ca = world.pki.cas["intermediate"]
    for n in range(3):
        world.http.routes[f"/slow{n}"] = Route(b"", delay=2.0)
    slow = tuple(world.http.url(f"/slow{n}") for n in range(3))
    leaf = leaf_with(ca, ocsp_urls=slow, crl_urls=slow)
    start = time.monotonic()
    status = asyncio.run(check_leaf([der(leaf), der(ca.cert)], "hard", RevocationCache(), NOW, 0.25))
    assert time.monotonic() - start < 1.4   # BUDGET_FACTOR (4) timeouts, not six slow fetches in a row (1.5 s)
    assert status is not None and status.status == "unavailable" and status.checked_urls
    assert status.reason.startswith("no revocation answer within 1s (asked http://127.0.0.1:")
