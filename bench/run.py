"""``make bench``: run ``bench/bench_*.py`` and print their results (each writes its own section).

``python bench/run.py [NAME ...]`` (``make bench BENCH=NAME``) runs only the benchmarks named NAME (``scan`` for
``bench_scan.py``), or, for a NAME that is no benchmark's name, those whose file name contains it. Every benchmark
runs even if one fails; the exit status is 1 when any failed.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    # The benchmarks import their shared helpers as ``common`` (bench/common.py): make that work whatever the
    # current directory and however this script was started (runpy does not add a script's folder to sys.path).
    if str(BENCH_DIR) not in sys.path:
        sys.path.insert(0, str(BENCH_DIR))
    benches = sorted(BENCH_DIR.glob("bench_*.py"))
    if argv:
        # A NAME that is exactly a benchmark's name picks that one only (`ca` is bench_ca.py, not also bench_scan.py).
        exact = {bench.stem.removeprefix("bench_") for bench in benches}
        benches = [bench for bench in benches
                   if any(name == bench.stem.removeprefix("bench_") if name in exact else name in bench.stem
                          for name in argv)]
        if not benches:
            known = ", ".join(b.stem.removeprefix("bench_") for b in sorted(BENCH_DIR.glob("bench_*.py")))
            print(f"no benchmark matches {' '.join(argv)!r}; known: {known}", file=sys.stderr)
            return 2
    failed: list[str] = []
    for bench in benches:
        print(f"== {bench.name}", flush=True)
        try:
            runpy.run_path(str(bench), run_name="__main__")
        except SystemExit as exc:
            if exc.code not in (None, 0):
                failed.append(bench.name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
