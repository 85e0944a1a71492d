"""``make bench``: run every ``bench/bench_*.py`` and print its results (each writes its own section)."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path


def main() -> int:
    benches = sorted(Path(__file__).parent.glob("bench_*.py"))
    for bench in benches:
        print(f"== {bench.name}", flush=True)
        runpy.run_path(str(bench), run_name="__main__")
    return 0


if __name__ == "__main__":
    sys.exit(main())
