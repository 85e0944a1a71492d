"""The built-in lab: loopback TLS/STARTTLS endpoints that reproduce real failures, with a fresh PKI.

Python and pytest use it through :func:`running_lab`; the CLI through ``tlsward lab up|list|down``.
Names are imported lazily, so ``tlsward scan`` does not pay for the lab's servers at start-up.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tlsward.lab.catalogue import CASES, LabCase, case_named
    from tlsward.lab.control import running_lab, start_background, stop_background
    from tlsward.lab.state import LabState

_EXPORTS = {
    "CASES": "tlsward.lab.catalogue", "LabCase": "tlsward.lab.catalogue", "case_named": "tlsward.lab.catalogue",
    "running_lab": "tlsward.lab.control", "start_background": "tlsward.lab.control",
    "stop_background": "tlsward.lab.control", "LabState": "tlsward.lab.state",
}
__all__ = ["CASES", "LabCase", "LabState", "case_named", "running_lab", "start_background", "stop_background"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'tlsward.lab' has no attribute {name!r}")
