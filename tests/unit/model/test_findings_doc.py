"""docs/findings.md documents every catalogue id, exactly once, with its catalogue severity, and nothing else."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tlsward.model.findings import FINDING_CATALOGUE

DOC = Path(__file__).resolve().parents[3] / "docs" / "findings.md"
SECTION = re.compile(r"^### `([^`]+)`\s*$", re.MULTILINE)
PARTS = ("**Severity:**", "**What it means:**", "**Why it matters on call:**", "**How tlsward detects it:**",
         "**Confirm:**", "**Fix:**")


def sections() -> dict[str, str]:
    text = DOC.read_text(encoding="utf-8")
    heads = list(SECTION.finditer(text))
    ids = [m.group(1) for m in heads]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    assert not duplicates, f"{DOC.name} documents these ids twice: {duplicates}"
    ends = [m.start() for m in heads[1:]] + [len(text)]
    return {m.group(1): text[m.end():end] for m, end in zip(heads, ends, strict=True)}


def test_every_catalogue_id_has_a_section_and_no_section_is_unknown() -> None:
    documented = set(sections())
    missing = sorted(set(FINDING_CATALOGUE) - documented)
    unknown = sorted(documented - set(FINDING_CATALOGUE))
    assert not missing, f"add a `### \\`id\\`` section to docs/findings.md for {missing}"
    assert not unknown, f"docs/findings.md documents ids that are not in FINDING_CATALOGUE: {unknown}"


@pytest.mark.parametrize("fid", sorted(FINDING_CATALOGUE))
def test_section_is_complete_and_states_the_catalogue_severity(fid: str) -> None:
    body = sections().get(fid)
    if body is None:
        pytest.fail(f"docs/findings.md has no section for {fid}")
    absent = [part for part in PARTS if part not in body]
    assert not absent, f"{fid}: section lacks {absent}"
    severity = FINDING_CATALOGUE[fid].severity.name.lower()
    assert f"**Severity:** {severity}" in body, f"{fid}: catalogue severity is {severity}"


def test_index_table_lists_every_id() -> None:
    text = DOC.read_text(encoding="utf-8")
    listed = set(re.findall(r"^\| \[`([^`]+)`\]", text, re.MULTILINE))
    catalogue = set(FINDING_CATALOGUE)
    assert listed == catalogue, f"index: missing {sorted(catalogue - listed)}, unknown {sorted(listed - catalogue)}"
