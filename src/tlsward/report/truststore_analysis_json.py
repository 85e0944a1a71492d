"""JSON for the trust-store answers: a diff of two stores, the host matrix with its findings, a rotation plan.

Why versioned like the scan output: these documents feed CI gates ("fail the image build when the JDK lacks our
CA") and fleet tooling, so their shape is a contract (docs/truststores.md documents the fields).
"""

from __future__ import annotations

from typing import Any

from tlsward.model.findings import Finding
from tlsward.model.truststores import RootInfo, RotationPlan, StoreDiff

__all__ = ["ANALYSIS_SCHEMA", "diff_json", "finding_json", "matrix_row_json", "plan_json", "root_json"]

ANALYSIS_SCHEMA = "tlsward.truststore-analysis/1"


def root_json(root: RootInfo) -> dict[str, Any]:
    return {"sha256": root.sha256, "spki_sha256": root.spki_sha256, "subject": root.subject,
            "organization": root.organization, "not_after": root.not_after.isoformat()}


def diff_json(diff: StoreDiff, label_a: str, label_b: str) -> dict[str, Any]:
    return {
        "schema": ANALYSIS_SCHEMA,
        "kind": "diff",
        "a": {"id": diff.a, "label": label_a},
        "b": {"id": diff.b, "label": label_b},
        "common": diff.common,
        "only_a": [root_json(r) for r in diff.only_a],
        "only_b": [root_json(r) for r in diff.only_b],
        "same_key_other_cert": [{"a": root_json(a), "b": root_json(b)} for a, b in diff.same_key_other_cert],
        "identical": diff.identical,
    }


def finding_json(item: Finding) -> dict[str, Any]:
    return {"id": item.id, "severity": item.severity.name.lower(), "title": item.title, "evidence": item.evidence,
            "fix": item.remediation.fix, "confirm": item.remediation.confirm}


def matrix_row_json(row: dict[str, Any]) -> dict[str, Any]:
    """A matrix row is already plain data (built by the CLI from StoreSummary); roots become objects."""
    return {key: [root_json(r) for r in value] if isinstance(value, tuple) and value and isinstance(
        value[0], RootInfo) else value for key, value in row.items()}


def plan_json(plan: RotationPlan) -> dict[str, Any]:
    return {
        "schema": ANALYSIS_SCHEMA,
        "kind": "rotation-plan",
        "old_root": root_json(plan.old_root),
        "new_root": root_json(plan.new_root),
        "steps": [{"name": step.name, "description": step.description,
                   "breaks": [{"store": b.store_id, "label": b.store_label, "reason": b.reason, "fix": b.fix}
                              for b in step.breaks],
                   "safe": list(step.safe)} for step in plan.steps],
        "unreadable": list(plan.unreadable),
    }
