"""Start-up of a ``tlsward scan`` process: the cyclic garbage collector waits until the imports are done.

Start-up makes ~100,000 objects (modules, classes, functions, the methods dataclasses generate) that all live
until the process exits; the collector's passes over them while they are made find nothing and cost ~25 ms
of a one-host scan (one pass is a full collection). :func:`pause_gc` stops the collector before the imports
(``tlsward.cli.main.run``, for ``tlsward scan``); :func:`resume_gc` freezes what start-up made (later full
collections skip it) and starts the collector again when the first result is out (``tlsward.cli.scan``; the
first result comes after the last lazy import: httpx, for the first revocation check), so a long scan of many
targets collects as usual.
"""

from __future__ import annotations

import gc

__all__ = ["pause_gc", "resume_gc"]

_paused = False


def pause_gc() -> None:
    """Stop the collector (if it runs) until :func:`resume_gc`."""
    global _paused
    if gc.isenabled():
        gc.disable()
        _paused = True


def resume_gc() -> None:
    """Freeze what exists and restart the collector, if :func:`pause_gc` stopped it; otherwise nothing."""
    global _paused
    if _paused:
        _paused = False
        gc.freeze()
        gc.enable()
