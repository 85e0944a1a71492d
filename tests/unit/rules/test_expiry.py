"""Expiry thresholds: 30/14/7/3-style days for long certificates, a share of the lifetime for short ones."""

from __future__ import annotations

import pytest

from tlsward.model.findings import Severity
from tlsward.rules.certificate import ExpiryPolicy

POLICY = ExpiryPolicy()


@pytest.mark.parametrize(("left", "lifetime", "expected"), [
    (89, 90, None),
    (40, 90, None),                 # the example: a 90-day certificate with 40 days left is fine
    (30, 90, Severity.MEDIUM),
    (20, 90, Severity.MEDIUM),      # a ticket
    (7, 90, Severity.HIGH),
    (5, 90, Severity.HIGH),         # a page
    (3, 90, Severity.CRITICAL),
    (0.5, 90, Severity.CRITICAL),
    (60, 398, None),
    (29, 398, Severity.MEDIUM),
    (1.5, 6, Severity.HIGH),        # the example: 6-day certificate with 1.5 days left is flagged
    (2.5, 6, None),                 # more than a third left: renewal is not due yet
    (0.4, 6, Severity.CRITICAL),
    (20, 47, None),                 # 47-day certificate: the 30-day rule would cry wolf for half its life
    (15, 47, Severity.MEDIUM),
    (7, 47, Severity.HIGH),
])
def test_expiry_severity(left: float, lifetime: float, expected: Severity | None) -> None:
    assert POLICY.severity(left, lifetime) == expected


def test_thresholds_are_configurable() -> None:
    strict = ExpiryPolicy.parse("60,21,10")
    assert strict.severity(40, 365) is Severity.MEDIUM
    assert strict.severity(15, 365) is Severity.HIGH
    assert strict.severity(9, 365) is Severity.CRITICAL
    assert strict.severity(70, 365) is None


@pytest.mark.parametrize("text", ["", "30,x", "3,7,14", "30,-1", "0"])
def test_bad_thresholds_are_rejected(text: str) -> None:
    with pytest.raises(ValueError, match=r"expiry thresholds|could not convert"):
        ExpiryPolicy.parse(text)
