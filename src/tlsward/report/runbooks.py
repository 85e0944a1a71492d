"""Runbooks: the text of docs/findings.md, per finding id, for ``tlsward explain``, alerts and the dashboards.

Why read the documentation instead of keeping a second copy: an on-call engineer must see the same words
wherever they look (the docs, the terminal, a Slack alert, the web view), and a test already holds every
catalogue id to a complete section there. The package ships the file as ``report/data/findings.md`` (a link to
docs/findings.md in the source tree, a copy in a wheel).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from importlib import resources

__all__ = ["DOC_PATH", "Runbook", "anchor", "runbook", "runbooks"]

DOC_PATH = "docs/findings.md"
_SECTION = re.compile(r"^### `([^`]+)`\s*$", re.MULTILINE)
_FIELD = re.compile(r"^- \*\*(What it means|Why it matters on call|How tlsward detects it|Confirm|Fix):\*\*\s*",
                    re.MULTILINE)
_SEVERITY = re.compile(r"^\*\*Severity:\*\*\s*(.+?)\s*$", re.MULTILINE)
_SHARED = re.compile(r"^The (renewal|full-chain) fix shared by .*?:\n\n((?:>.*\n?)+)", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Runbook:
    """One finding's runbook: symptoms, why it matters, how it is detected, the confirm command and the fix."""

    id: str
    severity: str
    what: str
    why: str
    how: str
    confirm: str
    fix: str

    @property
    def link(self) -> str:
        return f"{DOC_PATH}#{anchor(self.id)}"

    def as_text(self) -> str:
        return (f"{self.id} ({self.severity})\n\nWhat it means: {self.what}\n\nWhy it matters on call: {self.why}\n\n"
                f"How tlsward detects it: {self.how}\n\nConfirm: {self.confirm}\n\nFix: {self.fix}\n\n"
                f"Runbook: {self.link}")


def anchor(finding_id: str) -> str:
    """The GitHub-style anchor of a finding's section (dots dropped): ``chain.incomplete`` → ``chainincomplete``."""
    return re.sub(r"[^a-z0-9_-]", "", finding_id.lower())


def _join(text: str) -> str:
    return " ".join(line.strip() for line in text.strip().splitlines())


@functools.cache
def runbooks() -> dict[str, Runbook]:
    """Every section of the findings documentation, by id (parsed once per process)."""
    text = resources.files("tlsward.report").joinpath("data/findings.md").read_text(encoding="utf-8")
    shared = {m.group(1): _join(re.sub(r"^>\s?", "", m.group(2), flags=re.MULTILINE)) for m in _SHARED.finditer(text)}
    heads = list(_SECTION.finditer(text))
    ends = [m.start() for m in heads[1:]] + [len(text)]
    found: dict[str, Runbook] = {}
    for head, end in zip(heads, ends, strict=True):
        body = text[head.end():end].split("\n## ", 1)[0]
        severity = _SEVERITY.search(body)
        marks = list(_FIELD.finditer(body))
        fields = {m.group(1): _join(body[m.end():(marks[i + 1].start() if i + 1 < len(marks) else len(body))])
                  for i, m in enumerate(marks)}
        fix = fields.get("Fix", "")
        for name, block in shared.items():
            if f"{name} fix above" in fix:
                fix = f"{fix} ({name} fix: {block})"
        found[head.group(1)] = Runbook(
            id=head.group(1), severity=severity.group(1) if severity else "", what=fields.get("What it means", ""),
            why=fields.get("Why it matters on call", ""), how=fields.get("How tlsward detects it", ""),
            confirm=fields.get("Confirm", ""), fix=fix)
    return found


def runbook(finding_id: str) -> Runbook | None:
    return runbooks().get(finding_id)
