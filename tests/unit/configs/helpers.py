"""Small builders for the config reader tests: files written under tmp_path, listeners as comparable tuples."""

from __future__ import annotations

import textwrap
from pathlib import Path

from tlsward.model.discovery import ConfigScan, ConfiguredListener


def write(root: Path, name: str, text: str = "") -> Path:
    """``text`` (dedented) at ``root/name``, parents created; returns the path."""
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def touch(root: Path, *names: str) -> None:
    """Placeholder certificate/key files: the readers only check that they exist."""
    for name in names:
        write(root, name, "-----BEGIN CERTIFICATE-----\n")


def where(listener: ConfiguredListener) -> tuple[str | None, int]:
    return listener.address, listener.port


def addresses(scan: ConfigScan) -> list[tuple[str | None, int]]:
    return [where(listener) for listener in scan.listeners]


def problem_ids(scan: ConfigScan) -> list[tuple[str, str, int | None]]:
    """(finding id, file name, line) per problem: enough to say what and where."""
    return [(p.finding.id, Path(p.path).name, p.line) for p in scan.problems]
