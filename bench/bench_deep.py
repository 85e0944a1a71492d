"""Deep scan (versions, suites, groups) of a handful of lab endpoints: ``tlsward scan --deep`` next to sslyze,
sslscan, testssl.sh and ``nmap --script ssl-enum-ciphers``, in one run, against one lab process on 127.0.0.1.

Every tool scans every endpoint through a counting TCP proxy written here (asyncio, in a thread of this process:
a fresh listener on a free loopback port per tool run, forwarding to the lab case's port, counting the TCP
connections it accepts), so the connection counts are exact and measured the same way for every tool. Each tool
sends the case's SNI name and connects to 127.0.0.1; each must find the versions the lab serves on that case
(``versions`` in the lab catalogue, e.g. tls10-11: TLSv1.0 and TLSv1.1 and nothing else), or the run fails.

* tlsward: ``tlsward scan --deep --json --connect 127.0.0.1 --ca-file CA NAME:PORT``.
* sslyze (latest from PyPI, in ``bench/.venv-peers``): every version / suite / group scan command,
  ``--sslv2 --sslv3 --tlsv1 --tlsv1_1 --tlsv1_2 --tlsv1_3 --elliptic_curves --mozilla_config disable`` with
  ``NAME:PORT{127.0.0.1}``.
* sslscan (Debian): its default run, ``sslscan --no-colour --sni-name=NAME --xml=OUT 127.0.0.1:PORT``.
* nmap (Debian): ``nmap -Pn -n -p PORT --script +ssl-enum-ciphers --script-args tls.servername=NAME 127.0.0.1``
  (``+`` runs the script on a port nmap does not know as TLS; no group enumeration in this script).
* testssl.sh (Debian, ``testssl``): ``-p -E -f`` (protocols, every suite per protocol, forward secrecy with the
  curves and FFDHE groups), the subset of its checks that matches a deep scan, with ``--ip 127.0.0.1 -n none``;
  it is slow, so it scans only :data:`TESTSSL_CASES` and its ratios compare tlsward on the same hosts.

Per host: wall-clock of the tool's process (median of 3 runs for every tool whose first pass took less than
:data:`FAST_SECONDS` a host, one run otherwise) and connections; per tool: the median over its hosts. Where
tlsward's time goes is measured too: ``tlsward --version`` (start-up), a quick scan without ``--deep``, ``--deep
--revocation off``, every host in one ``-f LIST`` run (start-up paid once), ``-X importtime``, and a py-spy profile
of one deep scan when py-spy is installed (``.venv/bin/pip install py-spy``; investigation only).
Results: a table on stdout, raw numbers in ``bench/results/deep.json``, and the section "Deep scan (versions,
suites, groups)" of BENCHMARKS.md refreshed. Reproduce: ``make bench`` (just this one: ``make bench BENCH=deep``).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import common
from common import HOST, BenchError, Lab, Measured

from tlsward.lab.catalogue import case_named

CASES = ("healthy-rsa", "healthy-ecdsa", "tls12-only", "tls10-11", "static-rsa")
TESTSSL_CASES = ("healthy-rsa", "tls10-11")   # testssl.sh is slow: a modern and a legacy host
REPEATS = 3                    # runs per host for the fast tools
PROXY_CHECK_CASE = "tls10-11"  # sslscan straight to the lab and through the proxy, alternating: the proxy's cost
PROXY_CHECK_RUNS = 5
FAST_SECONDS = 5.0             # a tool whose first pass took less than this per host (median) is run REPEATS times
GOAL_FEWER_THAN_SSLYZE = 5.0   # tlsward opens at least 5x fewer connections per host than sslyze
TIMEOUTS = {"tlsward": 120.0, "sslyze": 180.0, "sslscan": 120.0, "nmap": 300.0, "testssl": 600.0}
PROXY_CONNECT_TIMEOUT = 5.0    # the proxy's connect to the lab
PROXY_IDLE_TIMEOUT = 60.0      # a proxied connection silent this long in one direction is closed
PROXY_SETTLE = 0.3             # after a tool exits: time for the proxy to accept what is still in its backlog
PROXY_GRACE = 5.0              # then: time for its connections to finish before they are aborted
FAR_RTT = 0.020                # the "farther network" pass: this round trip added by the proxy to every exchange
FAR_TOOLS = ("tlsward", "sslyze", "sslscan", "nmap")   # testssl.sh takes minutes a host at this distance

# What any `tlsward scan` process must load before it scans, whatever tlsward does: the CLI library, the X.509
# library, the TLS library that gives the presented chain, and the event loop.
FLOOR_IMPORTS = "import typer, cryptography.x509, OpenSSL.SSL, asyncio"
SECTION_TITLE = "## Deep scan (versions, suites, groups)"
VERSIONS = ("SSLv2", "SSLv3", "TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3")
PEERS = ("sslyze", "sslscan", "nmap", "testssl")


@dataclass
class Found:
    """What a tool reported about one endpoint, normalised: accepted versions, suites per version, groups."""

    versions: list[str]
    suites: dict[str, int]
    groups: list[str] | None     # None: the tool does not enumerate groups
    extra: dict[str, Any] = field(default_factory=dict)   # tool-specific facts kept in the raw results

    def summary(self) -> str:
        versions = "+".join(v.removeprefix("TLSv").removeprefix("SSLv") for v in self.versions) or "none"
        groups = "no groups listed" if self.groups is None else plural(len(self.groups), "group")
        return f"{versions}, {plural(sum(self.suites.values()), 'suite')}, {groups}"


@dataclass
class Run:
    tool: str
    case: str
    wall: float
    cpu: float
    connections: int
    returncode: int
    found: Found


@dataclass
class FleetRun:
    """Every case in one invocation of a tool (start-up paid once), each case through its own proxy listener."""

    tool: str
    wall: float
    cpu: float
    connections: int


@dataclass
class Results(common.RunInfo):
    versions: dict[str, str] = field(default_factory=dict)    # tool -> version
    commands: dict[str, str] = field(default_factory=dict)    # tool -> command line (placeholders)
    hosts: dict[str, list[str]] = field(default_factory=dict)  # tool -> cases it scanned
    runs: list[Run] = field(default_factory=list)
    nmap_root: bool = False
    tlsward_version_s: float = 0.0      # `tlsward --version`: interpreter + CLI start-up
    floor_s: float = 0.0                # python importing only the libraries every scan needs (FLOOR_IMPORTS)
    tlsward_quick: list[Run] = field(default_factory=list)   # `tlsward scan` without --deep, same hosts
    no_revocation_s: float = 0.0        # `--deep --revocation off` on the first case (median of REPEATS)
    deep_first_s: float = 0.0           # `--deep` on the first case (median of its REPEATS runs), to compare
    imports: list[tuple[str, float]] = field(default_factory=list)   # -X importtime self ms by package
    imports_total_ms: float = 0.0
    fleet: list[FleetRun] = field(default_factory=list)   # all CASES in one run of each FLEET_TOOLS tool
    far: list[Run] = field(default_factory=list)           # one process per host, FAR_RTT added by the proxy
    sslscan_direct_s: float = 0.0       # sslscan straight to the lab, first case (proxy overhead check)
    sslscan_proxied_s: float = 0.0
    sslscan_proxied_connections: float = 0.0
    profile: dict[str, float] = field(default_factory=dict)
    profile_top: list[tuple[str, float]] = field(default_factory=list)
    profile_note: str = ""

    def of(self, tool: str, case: str) -> list[Run]:
        return [run for run in self.runs if run.tool == tool and run.case == case]

    def wall(self, tool: str, cases: Sequence[str]) -> float:
        """Median over ``cases`` of the tool's per-host median wall-clock."""
        return statistics.median(statistics.median(x.wall for x in self.of(tool, c)) for c in cases)

    def connections(self, tool: str, cases: Sequence[str]) -> float:
        return statistics.median(statistics.median(x.connections for x in self.of(tool, c)) for c in cases)

    def repeats(self, tool: str) -> int:
        return min(len(self.of(tool, c)) for c in self.hosts[tool])

    def far_wall(self, tool: str) -> float:
        """Median over the hosts of the tool's per-host median wall-clock at FAR_RTT."""
        return statistics.median(statistics.median(x.wall for x in self.far if x.tool == tool and x.case == c)
                                 for c in CASES)

    def far_connections(self, tool: str) -> float:
        return statistics.median(statistics.median(x.connections for x in self.far if x.tool == tool and x.case == c)
                                 for c in CASES)

    def fleet_wall(self, tool: str) -> float:
        """Seconds per host when the tool scans every case in one run (median run / number of cases)."""
        return statistics.median(x.wall for x in self.fleet if x.tool == tool) / len(CASES)

    def fleet_connections(self, tool: str) -> float:
        return statistics.median(x.connections for x in self.fleet if x.tool == tool) / len(CASES)


# --- text -------------------------------------------------------------------------------------------------


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def strip_ansi(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


# --- the counting proxy -----------------------------------------------------------------------------------


@dataclass
class Listener:
    """One proxy listener: a free loopback port forwarding to ``upstream``; ``accepted`` counts connections."""

    upstream: int
    port: int = 0
    accepted: int = 0
    upstream_failures: int = 0
    aborted: int = 0               # still open PROXY_GRACE after the tool exited
    delay: float = 0.0             # seconds added to every hop one way (a network farther away than loopback)
    server: asyncio.Server | None = None
    tasks: set[asyncio.Task[None]] = field(default_factory=set)


class CountingProxy:
    """An asyncio TCP forwarder in a thread of its own. ``listen(port)`` opens a listener for one tool run and
    closes it afterwards (then its count is final); everything is stopped when the context exits."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="counting-proxy", daemon=True)

    def __enter__(self) -> CountingProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        if not self.thread.is_alive():
            self.loop.close()

    def _call(self, coro: Any, timeout: float = 30.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    @contextlib.contextmanager
    def listen(self, upstream: int, delay: float = 0.0) -> Iterator[Listener]:
        listener = Listener(upstream, delay=delay)
        self._call(self._open(listener))
        try:
            yield listener
        finally:
            self._call(self._close(listener), timeout=PROXY_SETTLE + PROXY_GRACE + 30)

    async def _open(self, listener: Listener) -> None:
        listener.server = await asyncio.start_server(
            lambda r, w: self._handle(listener, r, w), HOST, 0, backlog=1024, reuse_address=True)
        listener.port = int(listener.server.sockets[0].getsockname()[1])

    async def _close(self, listener: Listener) -> None:
        await asyncio.sleep(PROXY_SETTLE)     # accept what the tool left in the backlog before closing it
        assert listener.server is not None
        listener.server.close()
        if listener.tasks:
            _, pending = await asyncio.wait(listener.tasks, timeout=PROXY_GRACE)
            listener.aborted = len(pending)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=5)

    async def _handle(self, listener: Listener, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        listener.accepted += 1
        task = asyncio.current_task()
        assert task is not None
        listener.tasks.add(task)
        upstream_writer: asyncio.StreamWriter | None = None
        try:
            try:
                upstream_reader, upstream_writer = await asyncio.wait_for(
                    asyncio.open_connection(HOST, listener.upstream), PROXY_CONNECT_TIMEOUT)
            except (OSError, TimeoutError):
                listener.upstream_failures += 1
                return
            # With a delay, the client's first bytes also wait out the TCP handshake's round trip, which the
            # client's connect to this local listener did not pay.
            await asyncio.gather(self._pump(reader, upstream_writer, listener.delay, 2 * listener.delay),
                                 self._pump(upstream_reader, writer, listener.delay))
        finally:
            for w in (writer, upstream_writer):
                if w is not None:
                    w.transport.abort()
            listener.tasks.discard(task)

    @staticmethod
    async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float = 0.0,
                    first_extra: float = 0.0) -> None:
        """Copy one direction until EOF (then half-close the other side) or an error (then drop both). With a
        ``delay``, every chunk (and the EOF) is passed on ``delay`` seconds after it arrived, in order, as a
        farther network would (toxiproxy's latency toxic does the same)."""
        loop = asyncio.get_running_loop()
        due: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            while True:
                when, data = await due.get()
                if (wait := when - loop.time()) > 0:
                    await asyncio.sleep(wait)
                if not data:
                    if writer.can_write_eof() and not writer.is_closing():
                        writer.write_eof()
                    return
                writer.write(data)
                await writer.drain()

        sender = asyncio.ensure_future(deliver())
        try:
            extra = first_extra
            while data := await asyncio.wait_for(reader.read(65536), PROXY_IDLE_TIMEOUT):
                due.put_nowait((loop.time() + delay + extra, data))
                extra = 0.0
            due.put_nowait((loop.time() + delay, b""))
            await sender
        except (OSError, TimeoutError):
            writer.transport.abort()
        finally:
            sender.cancel()


def expected_versions(case: str) -> list[str]:
    """The versions the lab serves on ``case``, in this benchmark's names (the catalogue says TLSv1)."""
    return sorted({"TLSv1": "TLSv1.0"}.get(v, v) for v in case_named(case).versions)


# --- the tools --------------------------------------------------------------------------------------------


@dataclass
class Target:
    case: str
    name: str      # SNI
    port: int      # the proxy's port for this run
    ca: Path
    work: Path     # a fresh directory for this run's output files


@dataclass
class Tool:
    name: str
    label: str                                       # for the tables
    command: Callable[[Target], list[str | Path]]
    parse: Callable[[Target, Measured], Found]       # raises BenchError when the run did not succeed
    python: bool = False                             # gets python_env()
    template: str = ""                               # the command line as documented


def tlsward_command(t: Target) -> list[str | Path]:
    return [common.tlsward_exe(), "scan", "--deep", "--json", "--connect", HOST, "--ca-file", t.ca,
            f"{t.name}:{t.port}"]


def tlsward_quick_command(t: Target) -> list[str | Path]:
    return [common.tlsward_exe(), "scan", "--json", "--connect", HOST, "--ca-file", t.ca, f"{t.name}:{t.port}"]


def tlsward_no_revocation_command(t: Target) -> list[str | Path]:
    return [*tlsward_command(t)[:-1], "--revocation", "off", f"{t.name}:{t.port}"]


def import_costs(lab: Lab, work: Path) -> tuple[float, list[tuple[str, float]]]:
    """``python -X importtime`` of one ``tlsward scan --deep`` of the first case, straight to the lab: everything
    the scan imports (each command loads only its own modules; httpx comes with the revocation fetch). Total
    self time and the heaviest packages (tlsward's own by subpackage). Inflated by the measurement; shares
    matter."""
    case = CASES[0]
    cmd = [sys.executable, "-X", "importtime",
           *tlsward_command(Target(case, lab.names[case], lab.ports[case], lab.ca_file, work))]
    runs = [subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=common.python_env(work), check=False)
            for _ in range(2)]   # the second one has the bytecode cached
    by_package: collections.Counter[str] = collections.Counter()
    for line in runs[-1].stderr.splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+\d+ \|\s*(\S+)", line)
        if match:
            parts = match.group(2).split(".")
            by_package[".".join(parts[:2]) if parts[0] == "tlsward" else parts[0]] += int(match.group(1))
    return sum(by_package.values()) / 1000, [(name, us / 1000) for name, us in by_package.most_common(10)]


def tlsward_result(t: Target, m: Measured) -> dict[str, Any]:
    """The one JSON result of a tlsward scan, which must have scanned (exit 0, or 1 for findings)."""
    text = (t.work / "stdout").read_text(encoding="utf-8", errors="replace")
    results = []
    for line in text.splitlines():
        if line.strip():
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise BenchError(f"tlsward on {t.case}: not JSON ({exc}): {line[:120]!r}") from None
            if isinstance(obj, dict) and "target" in obj:
                results.append(obj)
    if m.returncode not in (0, 1) or len(results) != 1:
        raise BenchError(f"tlsward on {t.case}: exit status {m.returncode}, {len(results)} results "
                         f"(stderr: {tail(t.work / 'stderr')})")
    result = results[0]
    if result.get("failure") or not result.get("session"):
        raise BenchError(f"tlsward on {t.case}: the scan failed: {result.get('failure')}")
    return result


def parse_tlsward(t: Target, m: Measured) -> Found:
    return tlsward_found(tlsward_result(t, m), t.case)


def tlsward_found(result: dict[str, Any], case: str) -> Found:
    deep = result.get("deep")
    if not isinstance(deep, dict):
        raise BenchError(f"tlsward on {case}: no `deep` object in its --json output")
    versions = [v["version"] for v in deep.get("versions") or () if v.get("accepted")]
    inconclusive = [v["version"] for v in deep.get("versions") or () if v.get("accepted") is None]
    suites = {v["version"]: len(v.get("suites") or ()) for v in deep.get("versions") or () if v.get("accepted")}
    groups = [g["name"] for g in deep.get("groups") or () if g.get("accepted")]
    extra = {"connections": deep.get("connections"), "elapsed_ms": deep.get("elapsed_ms"),
             "inconclusive": inconclusive, "notes": deep.get("notes") or [],
             "rate_limited": deep.get("rate_limited") or ""}
    return Found(sorted(versions), suites, sorted(groups), extra)


def parse_tlsward_quick(t: Target, m: Measured) -> Found:
    session = tlsward_result(t, m)["session"]
    version = str(session.get("version") or session.get("protocol") or "")
    return Found([version] if version else [], {}, None)


SSLYZE_COMMANDS = ("--sslv2", "--sslv3", "--tlsv1", "--tlsv1_1", "--tlsv1_2", "--tlsv1_3", "--elliptic_curves")
SSLYZE_VERSIONS = {"ssl_2_0_cipher_suites": "SSLv2", "ssl_3_0_cipher_suites": "SSLv3",
                   "tls_1_0_cipher_suites": "TLSv1.0", "tls_1_1_cipher_suites": "TLSv1.1",
                   "tls_1_2_cipher_suites": "TLSv1.2", "tls_1_3_cipher_suites": "TLSv1.3"}


def sslyze_command(t: Target) -> list[str | Path]:
    return [common.SSLYZE, "--quiet", "--mozilla_config", "disable", *SSLYZE_COMMANDS,
            "--json_out", t.work / "out.json", f"{t.name}:{t.port}{{{HOST}}}"]


def parse_sslyze(t: Target, m: Measured) -> Found:
    out = t.work / "out.json"
    if m.returncode != 0 or not out.exists():
        raise BenchError(f"sslyze on {t.case}: exit status {m.returncode} (stderr: {tail(t.work / 'stderr')})")
    data: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    results = data.get("server_scan_results") or []
    if len(results) != 1:
        raise BenchError(f"sslyze on {t.case}: {len(results)} results")
    return sslyze_found(results[0], t.case)


def sslyze_found(result: dict[str, Any], case: str) -> Found:
    """One of sslyze's ``server_scan_results``, normalised; BenchError unless every scan command completed."""
    if result.get("scan_status") != "COMPLETED":
        raise BenchError(f"sslyze on {case}: {result.get('scan_status')}: {result.get('connectivity_error_trace')}")
    scan = result.get("scan_result") or {}
    versions, suites = [], {}
    for key, version in SSLYZE_VERSIONS.items():
        attempt = scan.get(key) or {}
        if attempt.get("status") != "COMPLETED":
            raise BenchError(f"sslyze on {case}: {key} {attempt.get('status')}: {attempt.get('error_trace')}")
        accepted = (attempt.get("result") or {}).get("accepted_cipher_suites") or []
        if accepted:
            versions.append(version)
            suites[version] = len(accepted)
    curves = scan.get("elliptic_curves") or {}
    if curves.get("status") != "COMPLETED":
        raise BenchError(f"sslyze on {case}: elliptic_curves {curves.get('status')}: {curves.get('error_trace')}")
    groups = [c["name"] for c in (curves.get("result") or {}).get("supported_curves") or ()]
    return Found(sorted(versions), suites, sorted(groups))


def sslscan_command(t: Target) -> list[str | Path]:
    return ["sslscan", "--no-colour", f"--sni-name={t.name}", f"--xml={t.work / 'out.xml'}", f"{HOST}:{t.port}"]


def xml_root(path: Path, who: str) -> ET.Element:
    """Parse a tool's XML report (our own peers' output about loopback lab servers, not untrusted input)."""
    try:
        return ET.parse(path).getroot()  # noqa: S314
    except (OSError, ET.ParseError) as exc:
        raise BenchError(f"{who}: cannot read its XML report {path.name}: {exc}") from None


def parse_sslscan(t: Target, m: Measured) -> Found:
    root = xml_root(t.work / "out.xml", f"sslscan on {t.case}")
    test = root.find("ssltest")
    if m.returncode != 0 or test is None:
        raise BenchError(f"sslscan on {t.case}: exit status {m.returncode}, no <ssltest> "
                         f"(stdout: {tail(t.work / 'stdout')})")
    return sslscan_found(test)


def sslscan_found(test: ET.Element) -> Found:
    """One ``<ssltest>`` of sslscan's XML report, normalised."""
    versions = []
    for proto in test.iter("protocol"):
        if proto.get("enabled") == "1":
            kind, number = proto.get("type"), proto.get("version", "")
            versions.append(f"SSLv{number}" if kind == "ssl" else f"TLSv{number}")
    suites = collections.Counter(c.get("sslversion", "?") for c in test.iter("cipher"))
    groups = sorted({g.get("name", "?").split(" ")[0] for g in test.iter("group")})
    return Found(sorted(versions), dict(suites), groups)


def nmap_command(t: Target) -> list[str | Path]:
    return ["nmap", "-Pn", "-n", "-p", str(t.port), "--script", "+ssl-enum-ciphers", "--script-args",
            f"tls.servername={t.name}", "-oX", t.work / "out.xml", HOST]


def parse_nmap(t: Target, m: Measured) -> Found:
    root = xml_root(t.work / "out.xml", f"nmap on {t.case}")
    script = next((s for s in root.iter("script") if s.get("id") == "ssl-enum-ciphers"), None)
    if m.returncode != 0 or script is None:
        raise BenchError(f"nmap on {t.case}: exit status {m.returncode}, no ssl-enum-ciphers output "
                         f"(stdout: {tail(t.work / 'stdout')})")
    return nmap_found(script)


def nmap_found(script: ET.Element) -> Found:
    """One ``ssl-enum-ciphers`` ``<script>`` element of nmap's XML report, normalised."""
    versions, suites = [], {}
    for table in script.findall("table"):
        key = table.get("key", "")
        if key in VERSIONS or key == "TLSv1.0":
            ciphers = table.find("table[@key='ciphers']")
            versions.append(key)
            suites[key] = 0 if ciphers is None else len(ciphers.findall("table"))
    return Found(sorted(versions), suites, None)


TESTSSL_OPTIONS = ("-p", "-E", "-f")
TESTSSL_VERSIONS = {"SSLv2": "SSLv2", "SSLv3": "SSLv3", "TLS1": "TLSv1.0", "TLS1_1": "TLSv1.1", "TLS1_2": "TLSv1.2",
                    "TLS1_3": "TLSv1.3"}
TESTSSL_SUITE = re.compile(r"^cipher-(ssl2|ssl3|tls1|tls1_1|tls1_2|tls1_3)_x[0-9a-f]+$")
TESTSSL_SUITE_VERSIONS = {"ssl2": "SSLv2", "ssl3": "SSLv3", "tls1": "TLSv1.0", "tls1_1": "TLSv1.1",
                          "tls1_2": "TLSv1.2", "tls1_3": "TLSv1.3"}


def testssl_command(t: Target) -> list[str | Path]:
    return ["testssl", "--quiet", "--color", "0", "--warnings", "off", "-n", "none", "--ip", HOST,
            *TESTSSL_OPTIONS, "--jsonfile", t.work / "out.json", f"{t.name}:{t.port}"]


def parse_testssl(t: Target, m: Measured) -> Found:
    out = t.work / "out.json"
    try:
        entries: list[dict[str, Any]] = json.loads(out.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise BenchError(f"testssl on {t.case}: exit status {m.returncode}, no JSON report ({exc}); "
                         f"stdout: {tail(t.work / 'stdout')}") from None
    fatal = [e for e in entries if e.get("severity") == "FATAL" or e.get("id") == "scanProblem"]
    if fatal:
        raise BenchError(f"testssl on {t.case}: {fatal[0].get('id')}: {fatal[0].get('finding')}")
    found = {e["id"]: str(e.get("finding", "")) for e in entries}
    if not set(TESTSSL_VERSIONS) <= set(found):
        raise BenchError(f"testssl on {t.case}: no protocol verdicts in its report (exit status {m.returncode})")
    versions = [v for key, v in TESTSSL_VERSIONS.items() if found[key].startswith("offered")]
    suites: collections.Counter[str] = collections.Counter()
    for entry in entries:
        match = TESTSSL_SUITE.match(entry["id"])
        if match:
            suites[TESTSSL_SUITE_VERSIONS[match.group(1)]] += 1
    curves = found.get("FS_ECDHE_curves") or found.get("PFS_ECDHE_curves") or ""
    groups = sorted({*curves.split(), *found.get("DH_groups", "").split()})
    return Found(sorted(versions), dict(suites), groups)


def tail(path: Path, chars: int = 300) -> str:
    if not path.exists():
        return "(none)"
    text = strip_ansi(path.read_text(errors="replace")).strip()
    return text[-chars:] if text else "(empty)"


TOOLS: dict[str, Tool] = {
    "tlsward": Tool("tlsward", "**tlsward** `scan --deep`", tlsward_command, parse_tlsward, python=True,
                    template="tlsward scan --deep --json --connect 127.0.0.1 --ca-file CA NAME:PORT"),
    "sslyze": Tool("sslyze", "sslyze", sslyze_command, parse_sslyze, python=True,
                   template=f"sslyze --mozilla_config disable {' '.join(SSLYZE_COMMANDS)} NAME:PORT{{127.0.0.1}}"),
    "sslscan": Tool("sslscan", "sslscan", sslscan_command, parse_sslscan,
                    template="sslscan --no-colour --sni-name=NAME --xml=OUT 127.0.0.1:PORT"),
    "nmap": Tool("nmap", "nmap", nmap_command, parse_nmap,
                 template="nmap -Pn -n -p PORT --script +ssl-enum-ciphers --script-args tls.servername=NAME "
                          "127.0.0.1"),
    "testssl": Tool("testssl", "testssl.sh", testssl_command, parse_testssl,
                    template=f"testssl --ip 127.0.0.1 -n none {' '.join(TESTSSL_OPTIONS)} NAME:PORT"),
}


def run_tool(tool: Tool, case: str, lab: Lab, proxy: CountingProxy | None, work: Path, rtt: float = 0.0) -> Run:
    """One run of ``tool`` on ``case`` through a fresh proxy listener (straight to the lab when ``proxy`` is
    None; ``rtt`` seconds added to every round trip); checks it found the versions the lab serves there."""
    run_dir = Path(tempfile.mkdtemp(prefix=f"{tool.name}-{case}-", dir=work))
    with contextlib.ExitStack() as stack:
        listener = None if proxy is None else stack.enter_context(proxy.listen(lab.ports[case], rtt / 2))
        target = Target(case, lab.names[case], lab.ports[case] if listener is None else listener.port, lab.ca_file,
                        run_dir)
        with (run_dir / "stdout").open("wb") as stdout, (run_dir / "stderr").open("wb") as stderr:
            m = common.run_measured(tool.command(target), timeout=TIMEOUTS[tool.name.split("-")[0]], stdout=stdout,
                                    stderr=stderr, env=common.python_env(work) if tool.python else None, cwd=run_dir)
    if listener is not None and listener.upstream_failures:
        raise BenchError(f"the proxy could not reach the lab for {listener.upstream_failures} of {tool.name}'s "
                         f"connections on {case}")
    found = tool.parse(target, m)
    expected = expected_versions(case)
    if tool.name != "tlsward-quick" and found.versions != expected:
        raise BenchError(f"{tool.name} on {case}: found versions {found.versions}, the lab serves {expected} "
                         f"(stdout: {tail(run_dir / 'stdout')}; stderr: {tail(run_dir / 'stderr')})")
    shutil.rmtree(run_dir)
    return Run(tool.name.removesuffix("-norev"), case, m.wall, m.cpu, -1 if listener is None else listener.accepted,
               m.returncode, found)


FLEET_TOOLS = ("tlsward", "sslyze", "sslscan", "nmap")   # testssl.sh's mass mode is sequential and ~11 s a host


def fleet_command(tool: str, ports: dict[str, int], lab: Lab, run_dir: Path) -> list[str | Path]:
    """The tool's own way of scanning several endpoints in one run. sslscan's ``--targets`` and nmap's port list
    take no name per endpoint, so those two send no SNI here (the lab's cases do not need it)."""
    names = {case: f"{lab.names[case]}:{port}" for case, port in ports.items()}
    if tool == "tlsward":
        (run_dir / "targets.txt").write_text("".join(f"{name}\n" for name in names.values()))
        return [common.tlsward_exe(), "scan", "--deep", "--json", "--connect", HOST, "--ca-file", lab.ca_file,
                "-f", run_dir / "targets.txt"]
    if tool == "sslyze":
        return [common.SSLYZE, "--quiet", "--mozilla_config", "disable", *SSLYZE_COMMANDS,
                "--json_out", run_dir / "out.json", *(f"{name}{{{HOST}}}" for name in names.values())]
    if tool == "sslscan":
        (run_dir / "targets.txt").write_text("".join(f"{HOST}:{port}\n" for port in ports.values()))
        return ["sslscan", "--no-colour", f"--targets={run_dir / 'targets.txt'}", f"--xml={run_dir / 'out.xml'}"]
    if tool == "nmap":
        return ["nmap", "-Pn", "-n", "-p", ",".join(str(p) for p in ports.values()), "--script",
                "+ssl-enum-ciphers", "-oX", run_dir / "out.xml", HOST]
    raise BenchError(f"no fleet mode for {tool}")


def fleet_found(tool: str, run_dir: Path) -> dict[int, Found]:
    """What the tool reported, by the port it scanned."""
    found: dict[int, Found] = {}
    if tool == "tlsward":
        for line in (run_dir / "stdout").read_text(encoding="utf-8", errors="replace").splitlines():
            obj = json.loads(line) if line.strip().startswith("{") else None
            if isinstance(obj, dict) and "target" in obj:
                port = int(obj["target"]["port"])
                found[port] = tlsward_found(obj, str(port))
    elif tool == "sslyze":
        data: dict[str, Any] = json.loads((run_dir / "out.json").read_text(encoding="utf-8"))
        for result in data.get("server_scan_results") or ():
            port = int((result.get("server_location") or {}).get("port", 0))
            found[port] = sslyze_found(result, str(port))
    elif tool == "sslscan":
        for test in xml_root(run_dir / "out.xml", "sslscan").iter("ssltest"):
            found[int(test.get("port", "0"))] = sslscan_found(test)
    else:
        for element in xml_root(run_dir / "out.xml", "nmap").iter("port"):
            script = next((x for x in element.iter("script") if x.get("id") == "ssl-enum-ciphers"), None)
            if script is not None:
                found[int(element.get("portid", "0"))] = nmap_found(script)
    return found


def fleet_run(tool: str, lab: Lab, proxy: CountingProxy, work: Path) -> FleetRun:
    """Every case in one run of ``tool``; BenchError unless it found the versions the lab serves on each."""
    run_dir = Path(tempfile.mkdtemp(prefix=f"{tool}-fleet-", dir=work))
    with contextlib.ExitStack() as stack:
        listeners = {case: stack.enter_context(proxy.listen(lab.ports[case])) for case in CASES}
        cmd = fleet_command(tool, {case: x.port for case, x in listeners.items()}, lab, run_dir)
        with (run_dir / "stdout").open("wb") as stdout, (run_dir / "stderr").open("wb") as stderr:
            m = common.run_measured(cmd, timeout=TIMEOUTS[tool] * len(CASES), stdout=stdout, stderr=stderr,
                                    env=common.python_env(work) if TOOLS[tool].python else None, cwd=run_dir)
    ok = (0, 1) if tool == "tlsward" else (0,)
    try:
        found = fleet_found(tool, run_dir)
    except (OSError, ValueError, BenchError) as exc:
        raise BenchError(f"{tool} on all {len(CASES)} hosts: exit status {m.returncode}, no usable report ({exc}); "
                         f"stderr: {tail(run_dir / 'stderr')}") from None
    wrong = {case: found[x.port].versions if x.port in found else None for case, x in listeners.items()
             if x.port not in found or found[x.port].versions != expected_versions(case)}
    if m.returncode not in ok or wrong:
        raise BenchError(f"{tool} on all {len(CASES)} hosts: exit status {m.returncode}, wrong or missing versions "
                         f"{wrong} (stderr: {tail(run_dir / 'stderr')})")
    shutil.rmtree(run_dir)
    return FleetRun(tool, m.wall, m.cpu, sum(x.accepted for x in listeners.values()))


# --- peers ------------------------------------------------------------------------------------------------


def peer_versions() -> dict[str, str]:
    """Each Debian peer's version; BenchError when one is missing (``make bench`` installs them)."""
    missing = [exe for exe in ("sslscan", "nmap", "testssl") if shutil.which(exe) is None]
    if missing:
        raise BenchError(f"not installed: {', '.join(missing)} (`make bench` installs them: "
                         "scripts/install-system-deps.sh sslscan nmap testssl.sh)")
    sslscan = re.search(r"\d+\.\d+\.\d+\S*", strip_ansi(common.quiet(["sslscan", "--version"], 30).stdout))
    nmap = re.search(r"Nmap version (\S+)", common.quiet(["nmap", "--version"], 30).stdout)
    testssl = re.search(r"testssl\S*\s+(\d\S*)", strip_ansi(common.quiet(["testssl", "--version"], 60).stdout))
    return {"sslscan": sslscan.group(0) if sslscan else "?", "nmap": nmap.group(1) if nmap else "?",
            "testssl": testssl.group(1) if testssl else "?"}


# --- profile ----------------------------------------------------------------------------------------------


def profile_tlsward(case: str, lab: Lab, proxy: CountingProxy, work: Path, r: Results) -> None:
    """One py-spy run of a deep scan (not timed): where tlsward's CPU goes, by tlsward module."""
    spy = common.find_py_spy()
    if spy is None:   # known before a proxy listener is opened for nothing
        r.profile_note = common.NO_PY_SPY
        return
    with proxy.listen(lab.ports[case]) as listener:
        target = Target(case, lab.names[case], listener.port, lab.ca_file, work)
        common.py_spy_profile(r, spy, work, tlsward_command(target), 500, profile_bucket, "deep",
                              f"one `--deep` scan of {case}", ok=(0, 1))


def profile_bucket(frames: Sequence[str]) -> str:
    """Start-up when an import is on the stack; else the innermost tlsward module; else 'other'."""
    if any("<frozen importlib" in f for f in frames):
        return "start-up (imports)"
    for frame in reversed(frames):
        match = re.search(r"tlsward/([\w/]+)\.py", frame)
        if match:
            return f"tlsward/{match.group(1)}.py"
    return "interpreter, event loop, other"


# --- report -----------------------------------------------------------------------------------------------


def fmt_conns(value: float) -> str:
    return f"{value:.0f}" if value == int(value) else f"{value:.1f}"


def ratios(r: Results, peer: str) -> tuple[float, float, float, float]:
    """(tlsward wall, peer wall, tlsward connections, peer connections), medians over the peer's hosts."""
    hosts = r.hosts[peer]
    return (r.wall("tlsward", hosts), r.wall(peer, hosts), r.connections("tlsward", hosts),
            r.connections(peer, hosts))


def goals(r: Results) -> list[common.Goal]:
    out = []
    for peer in PEERS:
        tw, pw, _, _ = ratios(r, peer)
        hosts = "" if r.hosts[peer] == list(CASES) else f" (on its hosts: {', '.join(r.hosts[peer])})"
        out.append((f"tlsward faster per host than {TOOLS[peer].label}{hosts}, one process per host", tw < pw,
                    f"{pw / tw:.2f}x: {tw:.2f} s vs {pw:.2f} s"))
    for peer in FLEET_TOOLS[1:]:
        tw, pw = r.fleet_wall("tlsward"), r.fleet_wall(peer)
        out.append((f"tlsward faster per host than {TOOLS[peer].label}, all {len(CASES)} hosts in one run of each",
                    tw < pw, f"{pw / tw:.2f}x: {tw:.3f} s vs {pw:.3f} s"))
    for peer in FAR_TOOLS[1:]:
        tw, pw = r.far_wall("tlsward"), r.far_wall(peer)
        out.append((f"tlsward faster per host than {TOOLS[peer].label}, one process per host, "
                    f"{1000 * FAR_RTT:.0f} ms round trip", tw < pw, f"{pw / tw:.2f}x: {tw:.2f} s vs {pw:.2f} s"))
    _, _, tc, sc = ratios(r, "sslyze")
    out.append((f"tlsward >= {GOAL_FEWER_THAN_SSLYZE:.0f}x fewer connections per host than sslyze",
                sc / tc >= GOAL_FEWER_THAN_SSLYZE, f"{sc / tc:.1f}x: {fmt_conns(tc)} vs {fmt_conns(sc)}"))
    _, _, tc, cc = ratios(r, "sslscan")
    out.append(("tlsward no more connections per host than sslscan (stretch)", tc <= cc,
                f"{fmt_conns(tc)} vs {fmt_conns(cc)}"))
    return out


def table_rows(r: Results) -> list[tuple[str, ...]]:
    """(tool, hosts, runs per host, wall s per host, connections per host, speed ratio, connections ratio)"""
    rows = []
    for tool in ("tlsward", *PEERS):
        hosts = r.hosts[tool]
        wall, conns = r.wall(tool, hosts), r.connections(tool, hosts)
        if tool == "tlsward":
            speed, fewer = "1.00", "1.00"
        else:
            tw, pw, tc, pc = ratios(r, tool)
            same = "" if hosts == list(CASES) else " (same hosts)"
            speed, fewer = f"**{pw / tw:.2f}x**{same}", f"**{pc / tc:.1f}x**{same}"
        rows.append((f"{TOOLS[tool].label} {r.versions[tool]}", str(len(hosts)), str(r.repeats(tool)),
                     f"{wall:.2f}", fmt_conns(conns), speed, fewer))
    return rows


FLEET_HEADER = ("tool", "how it takes several hosts", "wall s per host", "connections per host",
                "speed: tlsward / tool", "connections: tool / tlsward")
FLEET_HOW = {"tlsward": "`scan --deep -f LIST`", "sslyze": "every `NAME:PORT{127.0.0.1}` on one command line",
             "sslscan": "`--targets=LIST` (no SNI)", "nmap": "`-p P1,P2,...` (no SNI)"}


def fleet_rows(r: Results) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    tw, tc = r.fleet_wall("tlsward"), r.fleet_connections("tlsward")
    for tool in FLEET_TOOLS:
        wall, conns = r.fleet_wall(tool), r.fleet_connections(tool)
        speed = "1.00" if tool == "tlsward" else f"**{wall / tw:.2f}x**"
        fewer = "1.00" if tool == "tlsward" else f"**{conns / tc:.1f}x**"
        rows.append((f"{TOOLS[tool].label} {r.versions[tool]}", FLEET_HOW[tool], f"{wall:.3f}", fmt_conns(conns),
                     speed, fewer))
    return rows


FAR_HEADER = ("tool", "wall s per host", "connections per host", "speed: tlsward / tool")


def far_rows(r: Results) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    tw = r.far_wall("tlsward")
    for tool in FAR_TOOLS:
        wall = r.far_wall(tool)
        label = f"{TOOLS[tool].label} {r.versions[tool]}" + (" `--revocation off`" if tool == "tlsward" else "")
        rows.append((label, f"{wall:.2f}", fmt_conns(r.far_connections(tool)),
                     "1.00" if tool == "tlsward" else f"**{wall / tw:.2f}x**"))
    return rows


def per_host_rows(r: Results, what: Callable[[list[Run]], str]) -> list[tuple[str, ...]]:
    rows = []
    for case in CASES:
        cells = [case, " ".join(v.removeprefix("TLSv") for v in expected_versions(case))]
        for tool in ("tlsward", *PEERS):
            runs = r.of(tool, case)
            cells.append(what(runs) if runs else "-")
        rows.append(tuple(cells))
    return rows


def wall_and_conns(runs: list[Run]) -> str:
    conns = sorted({x.connections for x in runs})
    spread = fmt_conns(statistics.median(x.connections for x in runs)) + (
        f" ({conns[0]}-{conns[-1]})" if len(conns) > 1 else "")
    return f"{statistics.median(x.wall for x in runs):.2f} s, {spread}"


def found_summary(runs: list[Run]) -> str:
    return runs[0].found.summary()


GROUP_ALIASES = {"prime256v1": "secp256r1"}


def group_set(found: Found) -> set[str]:
    return {GROUP_ALIASES.get(g.lower(), g.lower()) for g in found.groups or ()}


def disagreements(r: Results) -> list[str]:
    """Where tlsward's findings differ from the peers' (informational: only the versions are ground truth), and
    where a tool's own findings varied between runs."""
    lines = []
    for case in CASES:
        mine = r.of("tlsward", case)[0].found
        peers = {p: r.of(p, case)[0].found for p in PEERS if r.of(p, case)}
        others = {p: f.suites for p, f in peers.items() if f.suites != mine.suites}
        if others:
            theirs = "; ".join(f"{p} {f}" for p, f in others.items())
            lines.append(f"{case}: tlsward's accepted suites per version {mine.suites}, but {theirs}.")
        for peer in ("sslscan", "testssl"):
            if peer not in peers or peers[peer].groups is None:
                continue
            extra, missing = group_set(mine) - group_set(peers[peer]), group_set(peers[peer]) - group_set(mine)
            if extra or missing:
                lines.append(f"{case}: groups only tlsward reports: {', '.join(sorted(extra)) or '-'}; only {peer} "
                             f"reports: {', '.join(sorted(missing)) or '-'}.")
        for tool in ("tlsward", *PEERS):
            summaries = {x.found.summary() for x in r.of(tool, case)}
            if len(summaries) > 1:
                lines.append(f"{case}: {tool}'s findings varied between runs: {' / '.join(sorted(summaries))}.")
    return lines


def tlsward_limits(r: Results) -> list[str]:
    """What bounds tlsward's time per host and its connection count, from its own numbers."""
    deep = [x for x in r.runs if x.tool == "tlsward"]
    wall = r.wall("tlsward", CASES)
    quick = statistics.median(x.wall for x in r.tlsward_quick)
    quick_conns = statistics.median(x.connections for x in r.tlsward_quick)
    elapsed = statistics.median(float(x.found.extra.get("elapsed_ms") or 0) for x in deep) / 1000
    own = [c for c in (x.found.extra.get("connections") for x in deep) if isinstance(c, int)]
    own_conns = statistics.median(own) if own else None
    cpu = statistics.median(x.cpu for x in deep)
    proxied = r.connections("tlsward", CASES)
    per_connection = "" if not own_conns else (
        f", {1000 * elapsed / own_conns:.1f} ms per connection (its {fmt_conns(own_conns)} connections are opened "
        "one after another)")
    sslscan_wall, sslscan_conns = r.wall("sslscan", CASES), r.connections("sslscan", CASES)
    lines = [
        f"tlsward takes {wall:.2f} s per host (median; {cpu:.2f} s of CPU, user+sys, for the whole process). "
        f"Interpreter and CLI start-up alone (`tlsward --version`) take {r.tlsward_version_s:.2f} s; a quick "
        f"`tlsward scan` without `--deep` of the same hosts (start-up, handshake, chain validation, revocation) "
        f"{quick:.2f} s; the deep enumeration as tlsward times it (`deep.elapsed_ms`) {elapsed:.2f} s{per_connection}.",
        f"With the start-up paid once (all {len(CASES)} hosts in one `tlsward scan --deep -f LIST`): "
        f"{r.fleet_wall('tlsward'):.2f} s and {fmt_conns(r.fleet_connections('tlsward'))} connections per host "
        "(the fleet table above).",
        f"Imports: `python -X importtime` of one `tlsward scan --deep` of {CASES[0]} (everything the scan loads, "
        f"h11 for its revocation fetch included) spends {r.imports_total_ms:.0f} ms (inflated by the "
        "measurement); the heaviest: "
        + ", ".join(f"{name} {ms:.0f} ms" for name, ms in r.imports[:8]) + ".",
        f"Revocation: on {CASES[0]}, `--deep --revocation off` takes {r.no_revocation_s:.2f} s against "
        f"{r.deep_first_s:.2f} s with the default (`soft`: the leaf's CRL is fetched over HTTP from the lab).",
        f"sslscan, for comparison: {sslscan_wall:.2f} s for {fmt_conns(sslscan_conns)} connections per host, its "
        "whole process included (C, no interpreter start-up).",
        f"The floor for any one-host Python process built on this stack: `python -c \"{FLOOR_IMPORTS}\"` (the CLI, "
        f"X.509, TLS and event-loop libraries every scan loads, nothing of tlsward's, no network) takes "
        f"{r.floor_s:.2f} s, against sslscan's {sslscan_wall:.2f} s and nmap's {r.wall('nmap', CASES):.2f} s for a "
        "whole scan.",
        f"Connections: the proxy counted {fmt_conns(proxied)} per host for tlsward (median); its own "
        f"`deep.connections` says {'-' if own_conns is None else fmt_conns(own_conns)}, and a quick scan opens "
        f"{fmt_conns(quick_conns)}.",
        f"The proxy's own cost: sslscan on {PROXY_CHECK_CASE} straight to the lab {r.sslscan_direct_s:.3f} s, through "
        f"the proxy {r.sslscan_proxied_s:.3f} s for {fmt_conns(r.sslscan_proxied_connections)} connections (median "
        f"of {PROXY_CHECK_RUNS}, alternating): "
        f"{1000 * (r.sslscan_proxied_s - r.sslscan_direct_s) / max(r.sslscan_proxied_connections, 1):.2f} ms per "
        "connection, paid by every tool (most by sslyze).",
    ]
    if r.profile:
        parts = ", ".join(f"{name} {share:.0f}%" for name, share in list(r.profile.items())[:8])
        lines.append(f"Where tlsward's CPU goes ({r.profile_note}): {parts}.")
        top = ", ".join(f"`{frame}` {share:.1f}%" for frame, share in r.profile_top[:6])
        lines.append(f"Top self-time frames: {top}" + (
            " (`_compile_bytecode` unmarshals the cached .pyc files: nothing is compiled)." if any(
                frame.startswith("_compile_bytecode") for frame, _ in r.profile_top[:6]) else "."))
    elif r.profile_note:
        lines.append(r.profile_note + ".")
    notes = sorted({note for x in deep for note in x.found.extra.get("notes") or ()})
    inconclusive = sorted({f"{x.case}: {v}" for x in deep for v in x.found.extra.get("inconclusive") or ()})
    if inconclusive:
        lines.append(f"tlsward left versions inconclusive: {', '.join(inconclusive)}.")
    if notes:
        lines.append(f"tlsward's deep notes: {'; '.join(notes[:5])}.")
    return lines


def limits_header(r: Results) -> str:
    slower = [TOOLS[p].label for p in PEERS if ratios(r, p)[0] >= ratios(r, p)[1]]
    wall = r.wall("tlsward", CASES)
    fixed = statistics.median(x.wall for x in r.tlsward_quick)
    verdict = (f"tlsward is slower per host than {' and '.join(slower)}, and" if slower else "")
    return (f"What bounds tlsward here: {verdict} {min(fixed / wall, 1):.0%} of its time per host is what any "
            "tlsward process costs (a quick scan without `--deep` of the same host), the deep enumeration the "
            "rest:").replace("  ", " ")


MAIN_HEADER = ("tool", "hosts", "runs per host", "wall s per host", "connections per host", "speed: tlsward / tool",
               "connections: tool / tlsward")
HOST_HEADER = ("host", "versions served", "tlsward", "sslyze", "sslscan", "nmap", "testssl.sh")


def markdown(r: Results) -> str:
    commands = "; ".join(f"{TOOLS[t].label.replace('**', '')}: `{r.commands[t]}`" for t in ("tlsward", *PEERS))
    blocks = [
        f"{SECTION_TITLE} (`bench/bench_deep.py`)",
        "",
        f"Version, cipher-suite and group enumeration of {len(CASES)} lab endpoints ({', '.join(CASES)}; each its own "
        "port on 127.0.0.1 with its SNI name), one tool at a time, one host at a time. Every tool connects through a "
        "counting TCP proxy in the benchmark (a fresh loopback listener per run, forwarding to the lab port), so "
        "connections are counted the same way for all; every tool must report exactly the versions the lab serves "
        "on each host, or the run fails. Wall-clock is the tool's whole process (start-up included; Python tools "
        f"with their bytecode cached), the median over hosts of each host's median of {REPEATS} runs (one run for "
        f"a tool slower than {FAST_SECONDS:.0f} s a host). testssl.sh is slow: it scans only "
        f"{' and '.join(TESTSSL_CASES)}, and its ratios compare tlsward on those same hosts; `-p -E -f` is the subset "
        "of its checks that matches a deep scan (protocols, every suite per protocol, forward secrecy with curves "
        "and FFDHE groups), its default run does much more. Ratios: speed = the tool's wall-clock / tlsward's (above "
        "1: tlsward is faster), connections = the tool's / tlsward's (above 1: tlsward opens fewer). "
        + ("nmap ran as root: its port check is a SYN scan, which the proxy never accepts. " if r.nmap_root else
           "nmap ran unprivileged: its port check is one TCP connect, counted. ")
        + f"Commands: {commands}.",
        "",
        *common.md_table(MAIN_HEADER, table_rows(r)),
        "",
        "Per host (median wall-clock, median connections with the range across runs when they differ):",
        "",
        *common.md_table(HOST_HEADER, per_host_rows(r, wall_and_conns)),
        "",
        "What each tool found (accepted versions, accepted suites summed over versions, groups; nmap's script does "
        "not enumerate groups):",
        "",
        *common.md_table(HOST_HEADER, per_host_rows(r, found_summary)),
        "",
        *([f"- {line}" for line in disagreements(r)] + [""] if disagreements(r) else []),
        f"Fleet: each tool given all {len(CASES)} hosts in one run (its start-up paid once; the way a team scans "
        f"its endpoints), each host through its own proxy listener, median of {REPEATS} interleaved runs, wall "
        "divided by the number of hosts; every tool must report every host's versions. sslscan's `--targets` and "
        "nmap's port list take no name per endpoint, so those two send no SNI here (the lab's cases do not need it). "
        "nmap runs its script on the ports in parallel, sslyze scans servers concurrently, sslscan one after "
        "another, tlsward concurrently within its per-address limits.",
        "",
        *common.md_table(FLEET_HEADER, fleet_rows(r)),
        "",
        f"Farther away: the same one-process-per-host runs with the proxy holding every chunk {500 * FAR_RTT:.0f} ms "
        f"each way ({1000 * FAR_RTT:.0f} ms round trip, a server in another region; the client's first bytes also "
        "wait one round trip more, the TCP handshake the local listener did not pay), median over hosts of each "
        f"host's median of up to {REPEATS} runs. Servers are rarely on loopback: here the number of round trips a "
        "tool waits for one after another counts, not its start-up. tlsward runs with `--revocation off` in this "
        "pass (the lab's CRL is served on loopback, not through the proxy, and no peer checks revocation); its "
        "independent questions (each version, the groups, the features) run side by side within `--per-host` "
        "(4) connections at once.",
        "",
        *common.md_table(FAR_HEADER, far_rows(r)),
        "",
        *common.goal_lines(goals(r)),
        "",
        limits_header(r),
        "",
        *(f"- {line}" for line in tlsward_limits(r)),
        "",
        common.measured_on(r, r.versions['tlsward'], "deep", "times"),
        "",
    ]
    return "\n".join(common.wrap(block) for block in blocks)


def print_report(r: Results) -> None:
    common.print_rows(MAIN_HEADER, table_rows(r))
    print()
    common.print_rows(HOST_HEADER, per_host_rows(r, wall_and_conns))
    print()
    common.print_rows(HOST_HEADER, per_host_rows(r, found_summary))
    print()
    common.print_rows(FLEET_HEADER, fleet_rows(r))
    print()
    common.print_rows(FAR_HEADER, far_rows(r))
    for line in disagreements(r):
        print(f"  {line}")
    print()
    common.print_goals(goals(r))
    print(limits_header(r))
    for line in tlsward_limits(r):
        print(f"  {line}")


# --- the run ----------------------------------------------------------------------------------------------


def check_deep_option() -> None:
    help_text = common.quiet([common.tlsward_exe(), "scan", "--help"], timeout=60).stdout
    if "--deep" not in help_text:
        raise BenchError("this tlsward has no `scan --deep` yet")


def one_pass(tools: Sequence[str], lab: Lab, proxy: CountingProxy, work: Path, r: Results, label: str) -> None:
    for case in CASES:
        for name in tools:
            if case not in r.hosts[name]:
                continue
            run = run_tool(TOOLS[name], case, lab, proxy, work)
            r.runs.append(run)
            print(f"{label} {name:8} {case:14} {run.wall:7.2f} s {run.connections:5d} connections  "
                  f"{run.found.summary()}", flush=True)
            lab.alive()


def measure(work: Path, r: Results) -> None:
    check_deep_option()
    _, r.versions["sslyze"] = common.ensure_sslyze()
    r.versions.update(peer_versions())
    r.versions["tlsward"] = common.tlsward_version()
    r.commands = {name: tool.template for name, tool in TOOLS.items()}
    r.nmap_root = os.geteuid() == 0
    r.hosts = {name: list(TESTSSL_CASES if name == "testssl" else CASES) for name in TOOLS}
    quick = Tool("tlsward-quick", "tlsward scan", tlsward_quick_command, parse_tlsward_quick, python=True)
    no_revocation = Tool("tlsward-norev", "tlsward", tlsward_no_revocation_command, parse_tlsward, python=True)
    with Lab(work / "lab", CASES) as lab, CountingProxy() as proxy:
        print(f"lab on {HOST}, ports {', '.join(f'{c} {lab.ports[c]}' for c in CASES)}; warming up", flush=True)
        for name in ("tlsward", "sslyze", "sslscan", "nmap"):
            run_tool(TOOLS[name], CASES[0], lab, proxy, work)
        one_pass(list(TOOLS), lab, proxy, work, r, "pass 1")
        fast = [t for t in TOOLS if r.wall(t, r.hosts[t]) < FAST_SECONDS]
        for repeat in range(2, REPEATS + 1):
            one_pass(fast, lab, proxy, work, r, f"pass {repeat}")

        versions = [common.run_measured([common.tlsward_exe(), "--version"], timeout=60,
                                        env=common.python_env(work)).wall for _ in range(REPEATS)]
        r.tlsward_version_s = statistics.median(versions)
        r.floor_s = statistics.median(common.run_measured([sys.executable, "-c", FLOOR_IMPORTS], timeout=60,
                                                          env=common.python_env(work)).wall for _ in range(REPEATS))
        for _ in range(REPEATS):
            r.tlsward_quick += [run_tool(quick, case, lab, proxy, work) for case in CASES]
        for _ in range(REPEATS):   # interleaved, so that every tool sees the same machine
            for name in FLEET_TOOLS:
                r.fleet.append(fleet_run(name, lab, proxy, work))
        print("fleet (all hosts in one run), s per host: " + ", ".join(
            f"{name} {r.fleet_wall(name):.3f}" for name in FLEET_TOOLS), flush=True)
        far_tools = {name: no_revocation if name == "tlsward" else TOOLS[name] for name in FAR_TOOLS}
        for repeat in range(REPEATS):
            for case in CASES:
                for name, far_tool in far_tools.items():
                    if repeat and statistics.median(x.wall for x in r.far if x.tool == name) >= FAST_SECONDS:
                        continue
                    r.far.append(run_tool(far_tool, case, lab, proxy, work, FAR_RTT))
            print(f"far pass {repeat + 1} ({1000 * FAR_RTT:.0f} ms round trip), s per host: " + ", ".join(
                f"{name} {r.far_wall(name):.2f}" for name in FAR_TOOLS), flush=True)
        r.no_revocation_s = statistics.median(
            run_tool(no_revocation, CASES[0], lab, proxy, work).wall for _ in range(REPEATS))
        r.deep_first_s = statistics.median(x.wall for x in r.of("tlsward", CASES[0]))
        r.imports_total_ms, r.imports = import_costs(lab, work)
        direct, proxied = [], []
        for _ in range(PROXY_CHECK_RUNS):   # alternating, so that both see the same machine
            direct.append(run_tool(TOOLS["sslscan"], PROXY_CHECK_CASE, lab, None, work).wall)
            proxied.append(run_tool(TOOLS["sslscan"], PROXY_CHECK_CASE, lab, proxy, work))
        r.sslscan_direct_s = statistics.median(direct)
        r.sslscan_proxied_s = statistics.median(x.wall for x in proxied)
        r.sslscan_proxied_connections = statistics.median(x.connections for x in proxied)
        print(f"tlsward --version {r.tlsward_version_s:.2f} s; quick scan "
              f"{statistics.median(x.wall for x in r.tlsward_quick):.2f} s; sslscan direct {r.sslscan_direct_s:.2f} s "
              f"vs proxied {r.sslscan_proxied_s:.2f} s", flush=True)
        # one more run first: sources edited during the benchmark are recompiled now, not in the profile
        run_tool(TOOLS["tlsward"], CASES[0], lab, proxy, work)
        profile_tlsward(CASES[0], lab, proxy, work, r)
        lab.alive()


def main() -> int:
    r = Results()
    if not common.measure_in("deep", r, lambda work: measure(work, r)):
        return 1
    print()
    print_report(r)
    common.publish("deep", SECTION_TITLE, {**asdict(r), "goals": common.goals_json(goals(r))}, markdown(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
