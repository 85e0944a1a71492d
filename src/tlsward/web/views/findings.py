"""``/findings``: the finding catalogue, each finding at the anchor docs/findings.md gives it (``#certexpired``),
with what it means, how to confirm it and how to fix it.

The texts come from docs/findings.md (the reference, kept complete by a unit test), which the package ships as
``tlsward/report/data/findings.md``: the same words as ``tlsward explain ID`` and the alerts' runbook links."""

from __future__ import annotations

import functools
import html
import re
from dataclasses import dataclass
from importlib import resources
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from tlsward.model.access import Principal
from tlsward.model.findings import FINDING_CATALOGUE, FindingSpec
from tlsward.web.app import render
from tlsward.web.auth import viewer
from tlsward.web.views.common import PageRoute, anchor

DOCS = resources.files("tlsward.report").joinpath("data/findings.md")
SECTION = re.compile(r"^### `([a-z0-9_.]+)`\s*$")
ITEM = re.compile(r"^- \*\*([^*]+?):\*\*\s*(.*)$")
CODE = re.compile(r"`([^`]+)`")
BOLD = re.compile(r"\*\*([^*]+)\*\*")
LINK = re.compile(r"\[([^\]]+)\]\([^)]+\)")


@dataclass(frozen=True, slots=True)
class FindingDoc:
    """One finding as the page shows it: the catalogue entry and the labelled paragraphs of its section."""

    spec: FindingSpec
    anchor: str
    items: tuple[tuple[str, Markup], ...] = ()

    def item(self, label: str) -> Markup | None:
        return next((text for name, text in self.items if name.lower() == label.lower()), None)


def inline(text: str) -> Markup:
    """The little Markdown these sections use, made safe: everything escaped, then `code`, **bold** and
    [links](...) (kept as their text: the targets are relative to the repository)."""
    escaped = html.escape(text, quote=False)
    escaped = LINK.sub(r"\1", escaped)
    escaped = CODE.sub(r"<code>\1</code>", escaped)
    return Markup(BOLD.sub(r"<strong>\1</strong>", escaped))  # noqa: S704 - every input character was escaped


@functools.cache
def _lines() -> tuple[str, ...]:
    try:
        return tuple(DOCS.read_text(encoding="utf-8").splitlines())
    except OSError:
        return ()


@functools.cache
def shared_fixes() -> tuple[tuple[Markup, Markup], ...]:
    """The fixes several findings share ("the renewal fix above"): each quoted block of docs/findings.md with
    the sentence that introduces it."""
    blocks: list[tuple[Markup, Markup]] = []
    lines = _lines()
    index = 0
    while index < len(lines):
        if lines[index].startswith("> "):
            start = index - 1
            while start >= 0 and not lines[start].strip():
                start -= 1
            end = start + 1
            while start >= 0 and lines[start].strip() and not lines[start].startswith(("#", ">")):
                start -= 1
            intro = " ".join(line.strip() for line in lines[start + 1:end])
            quoted = []
            while index < len(lines) and lines[index].startswith(">"):
                quoted.append(lines[index].lstrip("> ").strip())
                index += 1
            blocks.append((inline(intro.rstrip(":")), inline(" ".join(quoted))))
        index += 1
    return tuple(blocks)


@functools.cache
def documented() -> dict[str, tuple[tuple[str, Markup], ...]]:
    """Each finding id's bullet items (label, text) from docs/findings.md; empty when it is not there."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    for line in _lines():
        if match := SECTION.match(line):
            current = sections.setdefault(match[1], [])
        elif line.startswith("#"):
            current = None
        elif current is not None and (match := ITEM.match(line)):
            current.append((match[1], match[2]))
        elif current is not None and current and line.startswith("  ") and line.strip():
            label, text = current[-1]
            current[-1] = (label, f"{text} {line.strip()}")
    return {finding_id: tuple((label, inline(text)) for label, text in items)
            for finding_id, items in sections.items()}


def finding_doc(finding_id: str) -> FindingDoc | None:
    spec = FINDING_CATALOGUE.get(finding_id)
    if spec is None:
        return None
    return FindingDoc(spec, anchor(finding_id), documented().get(finding_id, ()))


def router() -> APIRouter:
    pages = APIRouter(route_class=PageRoute)

    @pages.get("/findings", response_class=HTMLResponse)
    def findings(request: Request, _: Annotated[Principal, Depends(viewer)]) -> HTMLResponse:
        docs = [doc for finding_id in FINDING_CATALOGUE if (doc := finding_doc(finding_id)) is not None]
        docs.sort(key=lambda doc: (doc.spec.id.split(".")[0], -doc.spec.severity, doc.spec.id))
        return render(request, "findings.html", docs=docs, have_docs=bool(documented()), shared=shared_fixes())

    return pages
