"""Durations as people write them in config files and options (``90``, ``"250ms"``, ``"90s"``, ``"5m"``,
``"4h"``, ``"30d"``): one parser for the monitor config, the certificates file, tokens and silences."""

from __future__ import annotations

import re

from tlsward.model.errors import UsageError

__all__ = ["parse_duration"]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


def parse_duration(value: object, where: str) -> float:
    """``value`` in seconds (a bare number is seconds; it must be positive). Raises UsageError naming ``where``."""
    if isinstance(value, bool):
        raise UsageError(f"{where}: expected a duration like '5m', got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    else:
        raise UsageError(f"{where}: expected a duration like '90s', '5m', '4h' or '30d', got {value!r}")
    if seconds <= 0:
        raise UsageError(f"{where}: must be positive, got {value!r}")
    return seconds
