"""A rich :class:`~rich.console.Console` made on first use.

``tlsward scan --json HOST`` prints JSON with ``print`` and nothing with rich, yet the scan module's consoles
used to be made (and rich imported, ~20 ms of a ~0.3 s run) when the module loaded. A :class:`LazyConsole`
takes the same arguments and behaves as the console it stands for: the first attribute asked for makes it.
Hand :attr:`LazyConsole.console` (the real one) to rich itself (``Progress(console=...)``).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["LazyConsole"]


class LazyConsole:
    """``Console(**options)``, made when first used."""

    def __init__(self, **options: Any) -> None:
        self._options = options

    @functools.cached_property
    def console(self) -> Console:
        from rich.console import Console

        return Console(**self._options)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):   # never make the console for copy/pickle probes of private names
            raise AttributeError(name)
        return getattr(self.console, name)
