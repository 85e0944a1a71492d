"""JSON over the model: one stable object per scanned endpoint, described by ``schemas/scan-result-1.json``.

The conversion walks the model dataclasses generically, so a field added to the model appears in the JSON
without touching this module (and the schema test then says the schema needs it too). The rules that make
the output stable:

* datetimes are UTC, second precision, ISO-8601 with a ``Z`` suffix (``2031-05-17T12:00:00Z``);
* severities are lowercase names (``"critical"``), every other enum is its value (``"connect_timeout"``);
* fields annotated with ``bytes`` (the DER chain, raw OCSP responses) are omitted: they are evidence for
  the engine, not data for a report, and the parsed facts are already there;
* each certificate gets ``days_left`` computed at ``scanned_at``, so a stored line never changes meaning;
* ``target`` is ``{input, host, port, scheme, sni, connect}`` with ``input`` the canonical target text.

Why not pydantic's ``TypeAdapter``: over these dataclasses it dumps ``Severity`` (an IntEnum) as a number,
``bytes`` as UTF-8 text (which fails on DER) and needs a nested ``exclude`` naming every raw field; the
walker below is shorter than those workarounds and still needs no parallel JSON classes.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from enum import Enum
from importlib import resources
from typing import Any

from tlsward import __version__
from tlsward.model.findings import Severity
from tlsward.model.scan import ScanResult
from tlsward.report.runbooks import DOC_PATH, anchor

SCHEMA_VERSION = "1.2.0"            # semver of the JSON contract (docs/json-schema.md), not of the tool
RESULT_SCHEMA = "scan-result-1.json"
SUMMARY_SCHEMA = "scan-summary-1.json"
TOOL_NAME = "tlsward"
_RAW_ANNOTATION = re.compile(r"\b(bytes|bytearray|memoryview)\b")


def load_schema(name: str = RESULT_SCHEMA) -> dict[str, Any]:
    """A JSON Schema shipped in the package (``tlsward/report/schemas/NAME``)."""
    text = resources.files("tlsward.report").joinpath("schemas").joinpath(name).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def timestamp(value: dt.datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ``; a naive datetime is taken as UTC (the model stores UTC only)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).replace(microsecond=0, tzinfo=None).isoformat() + "Z"


@functools.cache
def _raw_fields(cls: type) -> frozenset[str]:
    """Fields of a model dataclass whose annotation mentions bytes: omitted from every report."""
    return frozenset(f.name for f in fields(cls) if _RAW_ANNOTATION.search(str(f.type)))


def to_jsonable(value: Any) -> Any:
    """Model value -> JSON value (dict, list, str, int, float, bool, None), by the rules above."""
    if isinstance(value, Severity):
        return value.name.lower()
    if isinstance(value, Enum):
        return to_jsonable(value.value)
    if isinstance(value, dt.datetime):
        return timestamp(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if is_dataclass(value) and not isinstance(value, type):
        raw = _raw_fields(type(value))
        return {f.name: to_jsonable(getattr(value, f.name)) for f in fields(value) if f.name not in raw}
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted(to_jsonable(v) for v in value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, str | int):
        return value
    # bytes outside a bytes-annotated field, or a type the report does not know: a bug, caught by the tests.
    raise TypeError(f"cannot represent {type(value).__name__} in a report")


def _envelope() -> dict[str, Any]:
    return {"schema_version": SCHEMA_VERSION, "tool": {"name": TOOL_NAME, "version": __version__}}


def result_to_dict(result: ScanResult) -> dict[str, Any]:
    """One endpoint's scan as a JSON object that validates against ``schemas/scan-result-1.json``."""
    body: dict[str, Any] = to_jsonable(result)
    body["target"] = {"input": str(result.target), **to_jsonable(result.target)}
    for facts, cert in zip(body["chain"], result.chain, strict=True):
        facts["days_left"] = round(cert.days_left(result.scanned_at), 2)
    if result.analysis is not None:
        body["analysis"]["trusted"] = result.analysis.trusted
    for item in body["findings"]:
        item["remediation"]["runbook"] = f"{DOC_PATH}#{anchor(item['id'])}"
    return {**_envelope(), **body}


def is_unscannable(result: ScanResult) -> bool:
    """No TLS session and no HTTP answer: nothing about the endpoint could be checked (exit code 3)."""
    return result.failure is not None and result.session is None and result.http is None


@dataclass(slots=True)
class Summary:
    """Running totals over a stream of results (the CLI adds results as they complete)."""

    endpoints: int = 0
    unscannable: int = 0
    findings: Counter[Severity] = field(default_factory=Counter)

    def add(self, result: ScanResult) -> None:
        self.endpoints += 1
        self.unscannable += is_unscannable(result)
        self.findings.update(f.severity for f in result.findings)

    @property
    def worst(self) -> Severity | None:
        return max(self.findings, default=None)

    def to_dict(self) -> dict[str, Any]:
        worst = self.worst
        return {
            **_envelope(),
            "endpoints": self.endpoints,
            "unscannable": self.unscannable,
            "findings": {s.name.lower(): self.findings[s] for s in sorted(Severity, reverse=True)},
            "worst": None if worst is None else worst.name.lower(),
        }


def summary_to_dict(results: Iterable[ScanResult]) -> dict[str, Any]:
    """End-of-run totals: endpoints, unscannable endpoints, findings per severity, the worst severity."""
    summary = Summary()
    for result in results:
        summary.add(result)
    return summary.to_dict()
