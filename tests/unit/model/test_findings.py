from __future__ import annotations

import re

import pytest

from tlsward.model.findings import FINDING_CATALOGUE, Severity, spec_for

ISSUE_IDS = [
    "cert.expired", "cert.not_yet_valid", "cert.expiring", "name.mismatch", "cert.self_signed", "chain.untrusted",
    "chain.incomplete", "chain.order", "chain.expired_intermediate", "cert.weak_key", "cert.weak_signature",
    "cert.revoked", "protocol.tls10", "protocol.tls11", "mtls.required", "mtls.optional", "conn.plaintext_http",
    "conn.refused", "conn.reset", "conn.timeout", "starttls.not_offered",
]


def test_severity_orders_and_parses() -> None:
    assert Severity.CRITICAL > Severity.HIGH > Severity.MEDIUM > Severity.LOW > Severity.INFO
    assert Severity.parse(" High ") is Severity.HIGH
    with pytest.raises(ValueError, match="unknown severity 'urgent'"):
        Severity.parse("urgent")


def test_catalogue_ids_are_dotted_and_documented_ones_exist() -> None:
    for fid, spec in FINDING_CATALOGUE.items():
        assert re.fullmatch(r"[a-z0-9_]+\.[a-z0-9_]+", fid), fid
        assert spec.id == fid and spec.title
    for fid in ISSUE_IDS:
        assert spec_for(fid).id == fid
    assert spec_for("mtls.optional").severity is Severity.INFO
