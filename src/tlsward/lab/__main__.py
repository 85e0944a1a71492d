"""``python -m tlsward.lab``: the lab process itself (what ``tlsward lab up`` starts in the background)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tlsward.lab.control import serve_foreground
from tlsward.lab.state import DEFAULT_HOST, default_base_port, default_state_dir
from tlsward.model.errors import Error


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tlsward.lab", description=__doc__)
    parser.add_argument("--state-dir", type=Path, default=None)
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument("--base-port", type=int, default=None)
    args = parser.parse_args(argv)
    try:
        serve_foreground(args.state_dir or default_state_dir(), args.host,
                         args.base_port if args.base_port is not None else default_base_port())
    except Error as exc:
        print(exc, file=sys.stderr)  # `tlsward lab up` relays this line
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
