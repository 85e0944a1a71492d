"""Documented exit codes (docs/exit-codes.md). CI pipelines depend on these numbers; never renumber."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FINDINGS = 1          # findings at or above --fail-on
    USAGE = 2             # bad flags, targets or input files
    UNSCANNABLE = 3       # some targets could not be scanned at all
    ENVIRONMENT = 4       # tlsward itself could not run (lab, ports, state files)
    INTERRUPTED = 130     # Ctrl-C
