"""The JSON report: hand-built results validate against the committed schema, and the output is stable."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import typing
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from tlsward import __version__
from tlsward.model.certificate import (
    CertificateFacts,
    ChainAnalysis,
    RevocationSource,
    RevocationState,
    RevocationStatus,
    TrustVerdict,
)
from tlsward.model.deep import AcceptedSuite, DeepScan, Features, GroupSupport, VersionSupport
from tlsward.model.findings import Finding, Remediation, Severity
from tlsward.model.grade import Grade
from tlsward.model.scan import ClientAuth, Failure, FailureKind, HttpFacts, ScanResult, Session, Timings
from tlsward.model.target import SCHEMES, Target
from tlsward.report import (
    RESULT_SCHEMA,
    SCHEMA_VERSION,
    SUMMARY_SCHEMA,
    Summary,
    is_unscannable,
    load_schema,
    result_to_dict,
    summary_to_dict,
)
from tlsward.report.json import timestamp, to_jsonable

NOW = dt.datetime(2031, 5, 17, 12, 0, 30, 123456, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")


@pytest.fixture(scope="module")
def validator() -> Draft202012Validator:
    schema = load_schema(RESULT_SCHEMA)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def valid(validator: Draft202012Validator, data: dict[str, Any]) -> dict[str, Any]:
    """Validate ``data`` and its JSON round trip (what a consumer actually reads); return the latter."""
    errors = [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in validator.iter_errors(data)]
    assert not errors, "\n".join(errors)
    decoded: dict[str, Any] = json.loads(json.dumps(data))
    assert decoded == data
    return decoded


def cert(subject: str, issuer: str, *, not_before: dt.datetime, not_after: dt.datetime, is_ca: bool = False,
         names: tuple[str, ...] = ()) -> CertificateFacts:
    return CertificateFacts(
        subject=f"CN={subject}", issuer=f"CN={issuer}", serial="0a1b2c", not_before=not_before, not_after=not_after,
        dns_names=names, ip_addresses=(), key_type="EC", key_bits=256, curve="secp256r1",
        signature_algorithm="ecdsa-with-SHA256", signature_hash="sha256", sha256="ab" * 32,
        spki_sha256="q83vEjRWeJA=", is_ca=is_ca, path_length=0 if is_ca else None,
        key_usage=("digitalSignature",), extended_key_usage=() if is_ca else ("serverAuth",),
        ocsp_urls=("http://ocsp.example.test",), ca_issuers_urls=(), crl_urls=("http://crl.example.test/ca.crl",),
        sct_count=0, must_staple=False, self_issued=subject == issuer, self_signed=subject == issuer)


def find(fid: str, severity: Severity) -> Finding:
    return Finding(fid, severity, f"title of {fid}", f"evidence of {fid}",
                   Remediation(confirm="openssl s_client -connect 127.0.0.1:443 </dev/null", fix="do the thing"))


def success_result() -> ScanResult:
    target = Target.parse("https://www.example.test:8443", connect="127.0.0.1")
    leaf = cert("www.example.test", "Example CA", not_before=NOW - 70 * DAY, not_after=NOW + 20 * DAY,
                names=("www.example.test",))
    intermediate = cert("Example CA", "Example Root", not_before=NOW - 900 * DAY, not_after=NOW + 900 * DAY,
                        is_ca=True)
    session = Session(version="TLSv1.3", cipher="TLS_AES_128_GCM_SHA256", cipher_code=0x1301, group="x25519",
                      alpn="http/1.1", ocsp_stapled=True, ocsp_status="good", chain_der=(b"\x30\x82leaf", b"\x30\xff"),
                      ocsp_response=b"\x30\x82\x01\xff")
    analysis = ChainAnalysis(
        hostname="www.example.test", hostname_matches=True, leaf_self_signed=False, in_order=True, incomplete=False,
        contains_root=False, expired_intermediates=(), weak_keys=(), weak_signatures=(),
        verdicts=(TrustVerdict("ca-file lab.pem", True, "", ("ab" * 32, "cd" * 32), NOW + 20 * DAY),
                  TrustVerdict("mozilla (certifi 2026.10.19)", False, "unable to get local issuer certificate")))
    return ScanResult(target, "127.0.0.1", NOW, Timings(None, 0.4, None, 3.25), session=session,
                      chain=(leaf, intermediate), analysis=analysis,
                      http=HttpFacts(200, None, None), revocation=RevocationStatus("good", "stapled-ocsp"),
                      findings=(find("cert.expiring", Severity.MEDIUM), find("http.no_hsts", Severity.LOW)),
                      notes=("OCSP responder unreachable",))


def failure_result() -> ScanResult:
    target = Target.parse("closed.example.test:18437", connect="127.0.0.1")
    failure = Failure(FailureKind.REFUSED, "127.0.0.1:18437: connection refused", "connect")
    return ScanResult(target, "127.0.0.1", NOW, Timings(connect_ms=0.2), failure=failure,
                      findings=(find("conn.refused", Severity.CRITICAL),))


def mtls_result() -> ScanResult:
    target = Target.parse("mtls.example.test:443")
    auth = ClientAuth(requested=True, required=True, acceptable_cas=("CN=Example Client CA,O=Example",),
                      presented_accepted=True)
    session = Session(version="TLSv1.2", cipher="TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", cipher_code=0xC02B,
                      group="secp256r1", alpn=None, ocsp_stapled=False, ocsp_status=None, chain_der=(),
                      client_auth=auth)
    return ScanResult(target, "192.0.2.7", NOW, Timings(1.0, 2.0, None, 9.5), session=session,
                      findings=(find("mtls.required", Severity.INFO),))


def legacy_result() -> ScanResult:
    """A handshake that failed, with the server's choice learned from a hand-made ClientHello."""
    target = Target.parse("smtp://mail.example.test")
    session = Session(version="TLSv1.0", cipher="TLS_RSA_WITH_3DES_EDE_CBC_SHA", cipher_code=0x000A, group=None,
                      alpn=None, ocsp_stapled=False, ocsp_status=None, chain_der=(), completed=False)
    failure = Failure(FailureKind.TLS_ALERT, "the server sent a fatal handshake_failure alert", "handshake",
                      "handshake_failure")
    return ScanResult(target, "192.0.2.25", NOW, Timings(), session=session, failure=failure,
                      findings=(find("cipher.weak", Severity.HIGH),))


ALL = {"success": success_result, "failure": failure_result, "mtls": mtls_result, "legacy": legacy_result}


@pytest.mark.parametrize("build", ALL.values(), ids=ALL.keys())
def test_every_result_validates(validator: Draft202012Validator, build: Any) -> None:
    data = valid(validator, result_to_dict(build()))
    assert data["schema_version"] == SCHEMA_VERSION
    assert data["tool"] == {"name": "tlsward", "version": __version__}
    assert list(data)[:2] == ["schema_version", "tool"], "envelope first, so `head -c` shows the version"


def test_success_result_fields(validator: Draft202012Validator) -> None:
    data = valid(validator, result_to_dict(success_result()))
    assert data["target"] == {"input": "https://www.example.test:8443", "host": "www.example.test", "port": 8443,
                              "scheme": "https", "sni": "www.example.test", "connect": "127.0.0.1"}
    assert data["scanned_at"] == "2031-05-17T12:00:30Z"
    assert "chain_der" not in data["session"] and "ocsp_response" not in data["session"]
    assert data["revocation"] == {"status": "good", "source": "stapled-ocsp", "reason": "", "revoked_at": None,
                                  "checked_urls": [], "url": ""}
    assert data["session"]["cipher_code"] == 0x1301 and data["session"]["completed"] is True
    leaf, intermediate = data["chain"]
    assert leaf["not_after"] == "2031-06-06T12:00:30Z"
    assert leaf["days_left"] == 20.0 and intermediate["days_left"] == 900.0
    assert leaf["dns_names"] == ["www.example.test"] and leaf["path_length"] is None
    assert data["analysis"]["trusted"] is True
    assert data["analysis"]["verdicts"][0]["effective_expiry"] == "2031-06-06T12:00:30Z"
    assert data["analysis"]["verdicts"][1]["effective_expiry"] is None
    assert [(f["id"], f["severity"]) for f in data["findings"]] == [("cert.expiring", "medium"),
                                                                   ("http.no_hsts", "low")]
    assert data["http"] == {"status": 200, "hsts": None, "location": None}
    assert data["failure"] is None and data["notes"] == ["OCSP responder unreachable"]


def test_days_left_is_computed_at_scan_time_not_now() -> None:
    later = dataclasses.replace(success_result(), scanned_at=NOW + 25 * DAY)
    assert result_to_dict(later)["chain"][0]["days_left"] == -5.0


def test_failure_result_is_exactly_this() -> None:
    """The whole object for a refused connection: a change here is a change of the public contract."""
    assert result_to_dict(failure_result()) == {
        "schema_version": SCHEMA_VERSION,
        "tool": {"name": "tlsward", "version": __version__},
        "target": {"input": "closed.example.test:18437", "host": "closed.example.test", "port": 18437,
                   "scheme": "tls", "sni": "closed.example.test", "connect": "127.0.0.1"},
        "address": "127.0.0.1",
        "scanned_at": "2031-05-17T12:00:30Z",
        "timings": {"dns_ms": None, "connect_ms": 0.2, "starttls_ms": None, "handshake_ms": None},
        "session": None,
        "failure": {"kind": "refused", "message": "127.0.0.1:18437: connection refused", "phase": "connect",
                    "alert": None},
        "chain": [],
        "analysis": None,
        "http": None,
        "revocation": None,
        "findings": [{"id": "conn.refused", "severity": "critical", "title": "title of conn.refused",
                      "evidence": "evidence of conn.refused",
                      "remediation": {"confirm": "openssl s_client -connect 127.0.0.1:443 </dev/null",
                                      "fix": "do the thing", "runbook": "docs/findings.md#connrefused"}}],
        "notes": [],
        "deep": None,
        "grade": None,
        "policy": None,
    }


def test_mtls_and_legacy_sessions(validator: Draft202012Validator) -> None:
    mtls = valid(validator, result_to_dict(mtls_result()))
    assert mtls["session"]["client_auth"] == {"requested": True, "required": True,
                                              "acceptable_cas": ["CN=Example Client CA,O=Example"],
                                              "presented_accepted": True}
    assert mtls["target"]["sni"] == "mtls.example.test" and mtls["target"]["connect"] is None
    legacy = valid(validator, result_to_dict(legacy_result()))
    assert legacy["session"]["completed"] is False and legacy["failure"]["alert"] == "handshake_failure"
    assert legacy["target"]["input"] == "smtp://mail.example.test:25"


def test_revoked_leaf(validator: Draft202012Validator) -> None:
    revocation = RevocationStatus("revoked", "crl", "http://crl.example.test/ca.crl: serial 0a1b2c is listed",
                                  NOW - 3 * DAY, ("http://ocsp.example.test", "http://crl.example.test/ca.crl"),
                                  "http://crl.example.test/ca.crl")
    result = dataclasses.replace(success_result(), revocation=revocation,
                                 findings=(find("cert.revoked", Severity.CRITICAL),))
    data = valid(validator, result_to_dict(result))
    assert data["revocation"]["revoked_at"] == "2031-05-14T12:00:30Z"
    assert data["revocation"]["checked_urls"] == ["http://ocsp.example.test", "http://crl.example.test/ca.crl"]


def test_ip_target_has_no_sni(validator: Draft202012Validator) -> None:
    result = dataclasses.replace(failure_result(), target=Target.parse("[2001:db8::1]:8443"))
    data = valid(validator, result_to_dict(result))
    assert data["target"] == {"input": "[2001:db8::1]:8443", "host": "2001:db8::1", "port": 8443, "scheme": "tls",
                              "sni": None, "connect": None}


@pytest.mark.parametrize("value", [
    dt.datetime(2031, 5, 17, 14, 0, 30, tzinfo=dt.timezone(dt.timedelta(hours=2))),
    dt.datetime(2031, 5, 17, 12, 0, 30, 999999),   # naive: the model stores UTC
    dt.datetime(2031, 5, 17, 12, 0, 30, tzinfo=dt.UTC),
])
def test_timestamps_are_utc_seconds_with_z(value: dt.datetime) -> None:
    assert timestamp(value) == "2031-05-17T12:00:30Z"


def test_bytes_annotated_fields_are_omitted_and_stray_bytes_are_a_bug() -> None:
    @dataclasses.dataclass(frozen=True)
    class WithRaw:
        status: str
        ocsp_response: bytes | None
        chain_der: tuple[bytes, ...]
        when: dt.datetime

    raw = WithRaw("good", b"\x30\x82\xff", (b"\x00",), NOW)
    assert to_jsonable(raw) == {"status": "good", "when": "2031-05-17T12:00:30Z"}
    with pytest.raises(TypeError, match="bytes"):
        to_jsonable({"x": b"\xff"})
    with pytest.raises(TypeError, match="object"):
        to_jsonable(object())


def test_enums_by_value_and_severity_by_lowercase_name() -> None:
    assert to_jsonable(FailureKind.CONNECT_TIMEOUT) == "connect_timeout"
    assert to_jsonable([Severity.CRITICAL, Severity.INFO]) == ["critical", "info"]
    assert to_jsonable(frozenset({"b", "a"})) == ["a", "b"]
    assert to_jsonable(float("nan")) is None


# --- the schema agrees with the model: a new or renamed model field fails here with a clear message ---

def _schema_object(schema: dict[str, Any], pointer: str) -> dict[str, Any]:
    node: dict[str, Any] = schema
    for part in pointer.strip("/").split("/"):
        node = node[part] if part else node
    return node


def _fields(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls) if not re.search(r"\bbytes\b", str(f.type))}


SCHEMA_OBJECTS: dict[str, tuple[type, set[str]]] = {
    "/": (ScanResult, {"schema_version", "tool"}),
    "/properties/target": (Target, {"input"}),
    "/properties/timings": (Timings, set()),
    "/$defs/session": (Session, set()),
    "/$defs/session/properties/client_auth": (ClientAuth, set()),
    "/$defs/failure": (Failure, set()),
    "/$defs/certificate": (CertificateFacts, {"days_left"}),
    "/$defs/analysis": (ChainAnalysis, {"trusted"}),
    "/$defs/verdict": (TrustVerdict, set()),
    "/$defs/http": (HttpFacts, set()),
    "/$defs/revocation": (RevocationStatus, set()),
    "/$defs/finding": (Finding, set()),
    "/$defs/finding/properties/remediation": (Remediation, {"runbook"}),
    "/$defs/deep": (DeepScan, set()),
    "/$defs/version_support": (VersionSupport, set()),
    "/$defs/accepted_suite": (AcceptedSuite, set()),
    "/$defs/group_support": (GroupSupport, set()),
    "/$defs/features": (Features, set()),
    "/$defs/grade": (Grade, set()),
}


@pytest.mark.parametrize("pointer", SCHEMA_OBJECTS)
def test_schema_objects_list_exactly_the_model_fields(pointer: str) -> None:
    cls, extra = SCHEMA_OBJECTS[pointer]
    node = _schema_object(load_schema(RESULT_SCHEMA), pointer)
    expected = _fields(cls) | extra
    listed = set(node["properties"])
    assert node["additionalProperties"] is False
    assert listed == expected, (
        f"{cls.__name__} and {RESULT_SCHEMA} {pointer} disagree: model-only {sorted(expected - listed)}, "
        f"schema-only {sorted(listed - expected)}. Update the schema and docs/json-schema.md "
        "(a new field is a minor version bump of SCHEMA_VERSION; a rename or removal is a major one)")
    assert set(node["required"]) == expected, f"{pointer}: every emitted field is required"


def test_schema_enums_match_the_model() -> None:
    schema = load_schema(RESULT_SCHEMA)
    assert set(schema["$defs"]["failure"]["properties"]["kind"]["enum"]) == {k.value for k in FailureKind}
    assert set(schema["properties"]["target"]["properties"]["scheme"]["enum"]) == set(SCHEMES)
    assert schema["$defs"]["severity"]["enum"] == [s.name.lower() for s in sorted(Severity, reverse=True)]
    revocation = schema["$defs"]["revocation"]["properties"]
    assert set(revocation["status"]["enum"]) == set(typing.get_args(RevocationState))
    assert set(revocation["source"]["enum"]) == set(typing.get_args(RevocationSource))


def test_schema_version_is_semver_within_the_schema_major() -> None:
    major = RESULT_SCHEMA.removesuffix(".json").rsplit("-", 1)[1]
    assert re.fullmatch(rf"{major}\.\d+\.\d+", SCHEMA_VERSION)


# --- summary ---

def test_summary_counts_and_validates() -> None:
    schema = load_schema(SUMMARY_SCHEMA)
    Draft202012Validator.check_schema(schema)
    data = summary_to_dict([success_result(), failure_result(), mtls_result(), legacy_result()])
    assert not list(Draft202012Validator(schema).iter_errors(data))
    assert data["endpoints"] == 4 and data["unscannable"] == 1
    assert data["findings"] == {"critical": 1, "high": 1, "medium": 1, "low": 1, "info": 1}
    assert data["worst"] == "critical"
    empty = summary_to_dict([])
    assert not list(Draft202012Validator(schema).iter_errors(empty))
    assert empty["worst"] is None and empty["endpoints"] == 0


def test_unscannable_means_nothing_could_be_checked() -> None:
    assert is_unscannable(failure_result())
    assert not is_unscannable(legacy_result()), "the server's choice is known: a finding, not unscannable"
    assert not is_unscannable(success_result())
    summary = Summary()
    summary.add(mtls_result())
    assert summary.worst is Severity.INFO and summary.unscannable == 0
