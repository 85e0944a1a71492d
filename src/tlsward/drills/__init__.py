"""Failure drills (``tlsward drill``): break something on purpose, against the built-in lab or a staging target,
and check that tlsward detected it and alerted the right people, with the time each took.

Python callers: :func:`run_lab_drill` and :func:`run_staging_drill` return a
:class:`~tlsward.model.drills.DrillReport`; :data:`DRILLS` lists the drills. Names are imported lazily.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tlsward.drills.catalogue import DRILLS, drill_named
    from tlsward.drills.runner import StagingOptions, run_lab_drill, run_staging_drill

_EXPORTS = {
    "DRILLS": "tlsward.drills.catalogue", "drill_named": "tlsward.drills.catalogue",
    "StagingOptions": "tlsward.drills.runner", "run_lab_drill": "tlsward.drills.runner",
    "run_staging_drill": "tlsward.drills.runner",
}
__all__ = ["DRILLS", "StagingOptions", "drill_named", "run_lab_drill", "run_staging_drill"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'tlsward.drills' has no attribute {name!r}")
