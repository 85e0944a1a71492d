"""What the benchmarks in bench/ share: measuring a process, the lab as a separate process, the sslyze peer,
py-spy profiles and the BENCHMARKS.md report, so that every benchmark measures and reports the same way.

Imported as ``common``: ``bench/run.py`` puts bench/ on ``sys.path``, and ``python bench/bench_X.py`` has it
there already (a script's directory comes first).
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import os
import platform
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

from tlsward.lab.server import find_free_plan

HOST = "127.0.0.1"            # the only address the benchmarks ever talk to
LAB_START_TIMEOUT = 60.0

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS_MD = ROOT / "BENCHMARKS.md"
RESULTS_DIR = ROOT / "bench" / "results"
PEERS_VENV = ROOT / "bench" / ".venv-peers"
WRAP = 110                    # BENCHMARKS.md prose width


class BenchError(Exception):
    """The benchmark cannot produce honest numbers (a tool failed, timed out, found the wrong thing, is missing)."""


# --- processes --------------------------------------------------------------------------------------------


@dataclass
class Measured:
    """One process, measured on itself (``wait4``): wall-clock, CPU (user+sys, reaped children included) and
    peak RSS."""

    returncode: int
    wall: float
    cpu: float
    max_rss_kib: int


def python_env(work: Path) -> dict[str, str]:
    """The environment of the Python tools measured (tlsward, sslyze): bytecode is cached, as in a normal
    install, but in the work directory (an editable tlsward would otherwise compile its sources at every start
    where PYTHONDONTWRITEBYTECODE is set; and nothing is written under src/)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
    return env


def run_measured(cmd: Sequence[str | Path], timeout: float, stdout: IO[bytes] | int = subprocess.DEVNULL,
                 stderr: IO[bytes] | int = subprocess.DEVNULL, env: dict[str, str] | None = None,
                 cwd: Path | None = None) -> Measured:
    """Run ``cmd`` in a process group of its own and measure it; the group is killed (and BenchError raised)
    after ``timeout`` seconds (testssl.sh or py-spy would leave children behind otherwise)."""
    start = time.perf_counter()
    proc = subprocess.Popen([str(c) for c in cmd], stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr, env=env,
                            cwd=cwd, start_new_session=True)
    pidfd = os.pidfd_open(proc.pid)
    try:
        ready, _, _ = select.select([pidfd], [], [], timeout)
        timed_out = not ready
        if timed_out:
            os.killpg(proc.pid, signal.SIGKILL)   # our own child's group: it is still unreaped, not recycled
        _, status, usage = os.wait4(proc.pid, 0)
    finally:
        os.close(pidfd)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if timed_out:
        raise BenchError(f"{Path(str(cmd[0])).name} did not finish within {timeout:.0f}s: {' '.join(map(str, cmd))}")
    return Measured(proc.returncode, wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss)


def quiet(cmd: Sequence[str | Path], timeout: float) -> subprocess.CompletedProcess[str]:
    """Run a short helper command (versions, installs) for its text output; not measured."""
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, check=False)


def tlsward_exe() -> Path:
    """The tlsward command of this venv (else the one on PATH): the installed CLI is what is measured."""
    beside = Path(sys.executable).parent / "tlsward"
    if beside.exists():
        return beside
    found = shutil.which("tlsward")
    if found is None:
        raise BenchError("the tlsward command is not installed (run `make install`)")
    return Path(found)


def tlsward_version() -> str:
    """``tlsward --version`` without the program name, for the report."""
    return quiet([tlsward_exe(), "--version"], timeout=60).stdout.strip().removeprefix("tlsward ")


# --- the lab ----------------------------------------------------------------------------------------------


class Lab:
    """``python -m tlsward.lab`` as a separate process on free loopback ports (so that its CPU is not the
    benchmark's); always stopped on exit. Ready once it has published lab.json (``ports`` and SNI ``names`` by
    case are read from it) and each of ``cases`` accepts connections."""

    def __init__(self, state_dir: Path, cases: Sequence[str]) -> None:
        self.state_dir = state_dir
        self.cases = tuple(cases)
        plan, sockets = find_free_plan(HOST)
        for sock in sockets.values():
            sock.close()
        self.base = plan.base
        self.ports: dict[str, int] = {}
        self.names: dict[str, str] = {}
        self.log_path = state_dir.parent / "lab.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def ca_file(self) -> Path:
        return self.state_dir / "pki" / "ca-bundle.pem"

    def __enter__(self) -> Lab:
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tlsward.lab", "--state-dir", str(self.state_dir), "--host", HOST,
                 "--base-port", str(self.base)], stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        deadline = time.monotonic() + LAB_START_TIMEOUT
        while not (self.state_dir / "lab.json").exists():
            if self.proc.poll() is not None:
                raise BenchError(f"the lab exited with status {self.proc.returncode}: {self.log_tail()}")
            if time.monotonic() > deadline:
                raise BenchError(f"the lab did not publish lab.json within {LAB_START_TIMEOUT:.0f}s")
            time.sleep(0.05)
        state = json.loads((self.state_dir / "lab.json").read_text(encoding="utf-8"))
        for endpoint in state["endpoints"]:
            self.ports[endpoint["name"]] = int(endpoint["port"])
            self.names[endpoint["name"]] = endpoint["sni"]
        for case in self.cases:
            wait_listening(self.ports[case])
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)

    def alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise BenchError(f"the lab died (status {self.proc.returncode}): {self.log_tail()}")

    def log_tail(self) -> str:
        lines = self.log_path.read_text(errors="replace").strip().splitlines()
        return lines[-1] if lines else "(empty log)"


def wait_listening(port: int) -> None:
    """Wait until something accepts connections on HOST:port (BenchError after LAB_START_TIMEOUT)."""
    deadline = time.monotonic() + LAB_START_TIMEOUT
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex((HOST, port)) == 0:
                return
        time.sleep(0.05)
    raise BenchError(f"nothing listens on {HOST}:{port}")


# --- peers ------------------------------------------------------------------------------------------------


SSLYZE = PEERS_VENV / "bin" / "sslyze"


def ensure_sslyze() -> tuple[Path, str]:
    """The latest sslyze from PyPI in bench/.venv-peers (created with the system python3 if missing), kept out
    of tlsward's venv so that neither constrains the other: (its command, its version)."""
    python = PEERS_VENV / "bin" / "python"
    if not python.exists():
        system_python = shutil.which("python3") or "/usr/bin/python3"
        print(f"creating {PEERS_VENV.relative_to(ROOT)} with {system_python}", flush=True)
        made = quiet([system_python, "-m", "venv", PEERS_VENV], timeout=180)
        if made.returncode != 0:
            raise BenchError(f"cannot create {PEERS_VENV}: {made.stderr.strip()[-500:]}")
    upgrade = quiet([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--upgrade", "sslyze"],
                    timeout=600)
    if upgrade.returncode != 0:
        if not SSLYZE.exists():
            raise BenchError(f"cannot install sslyze: {upgrade.stderr.strip()[-500:]}")
        print("warning: could not upgrade sslyze; using the installed one", flush=True)
    version = quiet([python, "-c", "import importlib.metadata as m; print(m.version('sslyze'))"], timeout=60)
    return SSLYZE, version.stdout.strip()


# --- profile ----------------------------------------------------------------------------------------------


NO_PY_SPY = "py-spy not installed: no profile (`.venv/bin/pip install py-spy`)"


class Profiled(Protocol):
    """Results that carry a py-spy profile: shares (%) by bucket, largest first, the top self-time frames, and a
    note saying how it was taken (or why there is none)."""

    profile: dict[str, float]
    profile_top: list[tuple[str, float]]
    profile_note: str


def find_py_spy() -> Path | None:
    """py-spy beside this interpreter or on PATH, None without it (an investigation tool, not a dependency)."""
    spy = Path(sys.executable).parent / "py-spy"
    if spy.exists():
        return spy
    found = shutil.which("py-spy")
    return None if found is None else Path(found)


def py_spy_profile(into: Profiled, spy: Path | None, work: Path, cmd: Sequence[str | Path], rate: int,
                   bucket: Callable[[Sequence[str]], str], name: str, what: str, ok: Collection[int] = (0,)) -> None:
    """Run ``python cmd`` once under py-spy at ``rate`` Hz (not timed): each sample goes to ``bucket(frames)``,
    the raw stacks to bench/results/NAME-profile.txt, and the profile ``into`` the results (``what``: the run,
    for the note; ``ok``: the exit statuses of a run that worked)."""
    if spy is None:
        into.profile_note = NO_PY_SPY
        return
    raw = work / "profile.txt"
    record: list[str | Path] = [spy, "record", "--format", "raw", "--rate", str(rate), "--output", raw, "--",
                                sys.executable, *cmd]
    with (work / "py-spy.stderr").open("wb") as stderr:
        m = run_measured(record, timeout=300, stderr=stderr, env=python_env(work))
    if m.returncode not in ok or not raw.exists():
        into.profile_note = f"py-spy failed (status {m.returncode}); see its stderr"
        return
    buckets: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples = int(count)
        total += samples
        frames = stack.split(";")
        buckets[bucket(frames)] += samples
        own[re.sub(r"^.*/site-packages/|^.*/src/", "", frames[-1])] += samples
    if not total:
        into.profile_note = "py-spy recorded no samples"
        return
    into.profile = {label: round(100 * n / total, 1) for label, n in buckets.most_common()}
    into.profile_top = [(frame, round(100 * n / total, 1)) for frame, n in own.most_common(12)]
    keep = RESULTS_DIR / f"{name}-profile.txt"
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(raw, keep)
    into.profile_note = f"py-spy, {total} samples at {rate} Hz over {what}; raw stacks in {keep.relative_to(ROOT)}"


# --- the run and its report -------------------------------------------------------------------------------


@dataclass
class RunInfo:
    """When and on what a benchmark ran: the first fields of every benchmark's results."""

    date: str = ""
    machine: str = ""
    load_before: float = 0.0
    load_after: float = 0.0


def measure_in(name: str, info: RunInfo, measure: Callable[[Path], None]) -> bool:
    """Fill in ``info`` around ``measure(work)``, run in a fresh work directory that is removed afterwards;
    False, once the reason is printed, when it raised BenchError (no numbers are published then)."""
    info.date, info.machine, info.load_before = dt.date.today().isoformat(), machine(), os.getloadavg()[0]
    try:
        with tempfile.TemporaryDirectory(prefix=f"tlsward-bench-{name}-") as tmp:
            measure(Path(tmp))
        info.load_after = os.getloadavg()[0]
    except BenchError as exc:
        print(f"bench_{name}: FAILED: {exc}", file=sys.stderr)
        return False
    return True


def machine() -> str:
    """Cores, CPU model, memory, distribution, OpenSSL and Python: what the numbers were measured on."""
    cpu = ""
    for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
        if line.startswith("model name"):
            cpu = " ".join(line.split(":", 1)[1].split())
            break
    distro = platform.platform(terse=True)
    os_release = Path("/etc/os-release")
    if os_release.exists():
        match = re.search(r'^PRETTY_NAME="?([^"\n]*)', os_release.read_text(), re.MULTILINE)
        distro = match.group(1) if match else distro
    memory_kib = next((int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                       if line.startswith("MemTotal:")), 0)
    openssl = quiet(["openssl", "version"], timeout=30).stdout.split(" (")[0].strip()
    return (f"{os.cpu_count()} cores ({cpu or platform.machine()}), {memory_kib / 2**20:.0f} GiB, {distro}, "
            f"{openssl}, Python {platform.python_version()}")


def measured_on(info: RunInfo, version: str, name: str, noisy: str) -> str:
    """The report's last paragraph: when, on what, how busy the machine was (``noisy``: what the load makes
    noisy, "rates" or "times"), the tlsward ``version``, and how to reproduce the benchmark NAME."""
    load = (f" The machine was shared during the run (load average {info.load_before:.1f} before, "
            f"{info.load_after:.1f} after): absolute {noisy} are noisy, the ratios come from the same run."
            if max(info.load_before, info.load_after) >= 0.5 else "")
    return (f"Measured {info.date} on {info.machine}; tlsward {version}.{load} Reproduce: `make bench` "
            f"(only this benchmark: `make bench BENCH={name}`); raw numbers in `bench/results/{name}.json`.")


Goal = tuple[str, bool, str]   # (the goal, met, the measured value)


def goal_lines(goals: Sequence[Goal]) -> list[str]:
    """The goals as BENCHMARKS.md bullets."""
    return [f"- {text}: **{'met' if ok else 'NOT met'}** ({value})" for text, ok, value in goals]


def print_goals(goals: Sequence[Goal]) -> None:
    """The goals on stdout, one line each (the same verdicts as the report)."""
    for text, ok, value in goals:
        print(f"goal {text}: {'met' if ok else 'NOT met'} ({value})")


def goals_json(goals: Sequence[Goal]) -> list[dict[str, object]]:
    """The goals for bench/results/NAME.json."""
    return [{"goal": text, "met": ok, "value": value} for text, ok, value in goals]


def wrap(block: str) -> str:
    """Wrap one paragraph or ``- `` bullet to the width of BENCHMARKS.md (tables and blanks untouched)."""
    if not block or block.startswith("|") or block.startswith("#"):
        return block
    bullet = block.startswith("- ")
    return textwrap.fill(block.removeprefix("- ") if bullet else block, WRAP, initial_indent="- " if bullet else "",
                         subsequent_indent="  " if bullet else "", break_long_words=False, break_on_hyphens=False)


def md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A Markdown table, one line a row."""
    return [f"| {' | '.join(header)} |", "|" + "---|" * len(header), *(f"| {' | '.join(row)} |" for row in rows)]


def print_rows(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """The same table for the terminal: aligned columns, Markdown emphasis and code marks dropped."""
    table = [tuple(header), *(tuple(c.replace("**", "").replace("`", "") for c in row) for row in rows)]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))


def refresh_section(title: str, text: str) -> None:
    """Replace the section of BENCHMARKS.md whose heading starts with ``title`` (up to the next ``## ``
    heading) with ``text``, or append it: each benchmark rewrites only its own section."""
    doc = BENCHMARKS_MD.read_text(encoding="utf-8") if BENCHMARKS_MD.exists() else "# Benchmarks\n"
    lines = doc.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.startswith(title)), None)
    if start is None:
        doc = doc.rstrip("\n") + "\n\n" + text
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        doc = "".join(lines[:start]) + text + ("\n" + "".join(lines[end:]) if end < len(lines) else "")
    BENCHMARKS_MD.write_text(doc, encoding="utf-8")


def publish(name: str, title: str, raw: dict[str, object], section: str) -> None:
    """Write bench/results/NAME.json and refresh the benchmark's section ``title`` of BENCHMARKS.md."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / f"{name}.json").write_text(json.dumps(raw, indent=2) + "\n")
    refresh_section(title, section)
    print(f"\nwrote the section {title[3:]!r} of {BENCHMARKS_MD.name} and bench/results/{name}.json")
