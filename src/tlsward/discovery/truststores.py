"""Find every trust store on this host and read each one: the facts behind "works with curl, fails from Java".

Why a search of its own: a host's clients do not share one store. curl and Python's ssl read the OS bundle (or
``SSL_CERT_FILE``), OpenSSL's lookups the hashed directory, each JDK its ``cacerts``, requests and pip the certifi
copy of their virtualenv, Node a list compiled into the binary (plus ``NODE_EXTRA_CA_CERTS``), Chrome and Firefox
an NSS database. Each is found where its client looks, read by :mod:`tlsward.x509.truststores`, and reported
with who uses it. An unreadable store is reported with its problem, never fatal.

The search for virtualenvs and NSS databases is a bounded walk (depth and entry caps, no symlinked directories,
no /proc or /sys) that only looks into ``site-packages`` for certifi and pip's vendored copy, so the whole
discovery stays well under two seconds on a host with many Python installs.
"""

from __future__ import annotations

import datetime as dt
import glob
import json
import os
import re
import shutil
import socket
import stat
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from tlsward.model.truststores import STORE_KINDS, HostStores
from tlsward.x509.trust import SYSTEM_BUNDLES, TrustStore, mozilla_store
from tlsward.x509.truststores import (
    LoadedStore,
    loaded_store,
    node_extra_store,
    node_store,
    read_bundle,
    read_hashed_dir,
    read_java_keystore,
    read_nss_db,
    read_store,
)

__all__ = [
    "DEFAULT_MAX_DEPTH",
    "DEFAULT_MAX_FILES",
    "DEFAULT_SEARCH",
    "JAVA_HOMES",
    "Discovered",
    "FoundEnvironments",
    "discover_stores",
    "find_environments",
]

SYSTEM_DIR = Path("/etc/ssl/certs")
DEBIAN_JAVA_CACERTS = Path("/etc/ssl/certs/java/cacerts")
JAVA_HOMES: tuple[str, ...] = ("/usr/lib/jvm/*", "/opt/java/*", "/opt/*jdk*", "/usr/java/*")
SYSTEM_NSS = (Path("/etc/pki/nssdb"),)
# Where Python environments live outside any one project: the distribution's and /usr/local's site-packages,
# and the trees where services are deployed. Home directories add their own (HOME_PLACES).
DEFAULT_SEARCH: tuple[str, ...] = ("/usr/lib/python3*/dist-packages", "/usr/lib/python3/dist-packages",
                                   "/usr/local/lib/python3*", "/opt", "/srv")
HOME_PLACES: tuple[str, ...] = (".venv", "venv", ".virtualenvs", ".local", ".pyenv", "*/.venv", "*/venv")
DEFAULT_MAX_DEPTH = 10
DEFAULT_MAX_FILES = 200_000
NODE_TIMEOUT = 10.0
_NODE_SCRIPT = ("process.stdout.write(JSON.stringify({version: process.version, "
                "roots: require('tls').rootCertificates}))")
_SKIP_TREES = frozenset({"/proc", "/sys", "/dev", "/run"})
_SKIP_NAMES = frozenset({".git", "node_modules", "__pycache__", ".cache", ".npm", ".cargo", ".rustup"})
_PYTHON_LIB = re.compile(r"python\d+(\.\d+)?t?")
_SITE_DIRS = ("site-packages", "dist-packages")
_VERSION = re.compile(r"""^__version__\s*[:=][^"'\n]*["']([^"']+)["']""", re.MULTILINE)
_TRUSTSTORE_OPTION = re.compile(r"-Djavax\.net\.ssl\.trustStore=(\S*)")
_TRUSTSTORE_PASSWORD_OPTION = re.compile(r"-Djavax\.net\.ssl\.trustStorePassword=(\S*)")
_RELEASE_LINE = re.compile(r'^([A-Z_]+)="?(.*?)"?\s*$', re.MULTILINE)


@dataclass(frozen=True)
class Discovered:
    """The host's stores as reported (``host``), and each readable store's roots for path validation."""

    host: HostStores
    loaded: Mapping[str, LoadedStore] = field(default_factory=dict)
    notes: tuple[str, ...] = ()       # e.g. the walk stopped at its entry cap: the search was not exhaustive

    def trust(self, store_id: str) -> TrustStore | None:
        store = self.loaded.get(store_id)
        return store.trust if store is not None else None

    def store(self, store_id: str) -> LoadedStore | None:
        return self.loaded.get(store_id)


def discover_stores(search: Sequence[Path | str] = (), *, extra: Sequence[Path | str] = (),
                    env: Mapping[str, str] | None = None, node: str | None = "node", home_dirs: bool = True,
                    system: bool = True, max_depth: int = DEFAULT_MAX_DEPTH,
                    max_files: int = DEFAULT_MAX_FILES) -> Discovered:
    """Every trust store on this host.

    ``search`` adds to :data:`DEFAULT_SEARCH` the roots walked for certifi copies and NSS databases (home
    directories' virtualenvs and NSS databases are added when ``home_dirs``). ``extra`` are stores the caller
    names (a CA file, a keystore, an NSS or hashed directory), their kind read from the content. ``env`` is the
    environment the clients run with (``SSL_CERT_FILE``, ``SSL_CERT_DIR``, ``JAVA_HOME``,
    ``NODE_EXTRA_CA_CERTS``); the process's own by default. ``node`` is the Node binary to ask (None: do not).
    ``system=False`` skips the host's fixed places (OS bundle and directory, JDKs, /etc/pki/nssdb, the default
    search roots): only ``extra``, ``search``, home directories and Node, for reading one named store.
    """
    environment = dict(os.environ if env is None else env)
    collected_at = dt.datetime.now(dt.UTC)
    running = _start_node(node, environment) if node else None
    stores: list[LoadedStore] = []
    try:
        if system:
            stores += _system_stores(environment)
            stores += _java_stores(environment)
        homes = _home_dirs(environment) if home_dirs else []
        roots = _search_roots([*search, *(DEFAULT_SEARCH if system else ())], homes)
        found = find_environments(roots, max_depth=max_depth, max_files=max_files)
        stores += [_certifi_store(path) for path in found.certifi]
        if running is not None:
            stores += _node_stores(running, environment)
        stores += _nss_stores(homes, found.nss, system=system)
        for named in extra:
            path = Path(named).absolute()
            stores.append(read_store(path, builtins=mozilla_store()))
    finally:
        if running is not None and running.process is not None and running.process.poll() is None:
            running.process.kill()   # only when something above failed before Node's answer was collected
            running.process.communicate()
    unique: dict[str, LoadedStore] = {}
    for store in sorted(stores, key=lambda s: STORE_KINDS.index(s.info.kind)):
        unique.setdefault(store.info.id, store)
    notes = (f"the search stopped after {max_files} directory entries: not every environment was seen",) \
        if found.truncated else ()
    host = HostStores(host=socket.gethostname(), collected_at=collected_at,
                      stores=tuple(s.info for s in unique.values()), searched=tuple(str(r) for r in roots))
    return Discovered(host, unique, notes)


# --- the OS stores ------------------------------------------------------------------------------------------------


def _system_stores(env: Mapping[str, str]) -> list[LoadedStore]:
    stores: list[LoadedStore] = []
    bundle = next((path for path in SYSTEM_BUNDLES if path.is_file()), None)
    if bundle is not None:
        stores.append(read_bundle(bundle, kind="system-bundle", label=f"system CA bundle {bundle}"))
    cert_file = env.get("SSL_CERT_FILE", "")
    if cert_file and (bundle is None or Path(cert_file) != bundle):
        stores.append(read_bundle(cert_file, kind="system-bundle", label=f"SSL_CERT_FILE={cert_file}",
                                  clients="curl, git, Python ssl run with SSL_CERT_FILE set"))
    if _has_hashed_entries(SYSTEM_DIR):
        stores.append(read_hashed_dir(SYSTEM_DIR, kind="system-dir", label=f"system CA directory {SYSTEM_DIR}"))
    for directory in filter(None, env.get("SSL_CERT_DIR", "").split(os.pathsep)):
        if Path(directory) != SYSTEM_DIR:
            stores.append(read_hashed_dir(directory, kind="system-dir", label=f"SSL_CERT_DIR={directory}",
                                          clients="OpenSSL clients run with SSL_CERT_DIR set"))
    return stores


def _has_hashed_entries(directory: Path) -> bool:
    try:
        with os.scandir(directory) as entries:
            return any(re.fullmatch(r"[0-9a-f]{8}\.[0-9]+", e.name) for e in entries)
    except OSError:
        return False


# --- Java ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Jdk:
    home: Path
    version: str
    implementor: str

    @property
    def name(self) -> str:
        if not self.version:
            return f"Java at {self.home}"
        return f"Java {self.version}" + (f" ({self.implementor})" if self.implementor else "")


def _java_stores(env: Mapping[str, str]) -> list[LoadedStore]:
    """One store per physical cacerts file, naming every JDK that reads it (on Debian, every JDK's cacerts is a
    symlink to /etc/ssl/certs/java/cacerts)."""
    homes: dict[Path, None] = {}
    for pattern in JAVA_HOMES:
        for match in _glob(pattern):
            homes.setdefault(match, None)
    if env.get("JAVA_HOME"):
        homes.setdefault(Path(env["JAVA_HOME"]), None)
    users: dict[Path, list[tuple[_Jdk, Path]]] = {}
    seen_homes: set[Path] = set()
    for home in homes:
        try:
            real_home = home.resolve()
        except OSError:
            continue
        if real_home in seen_homes or not real_home.is_dir():
            continue
        seen_homes.add(real_home)
        for security in (real_home / "lib" / "security", real_home / "jre" / "lib" / "security"):
            # Java's default truststore is jssecacerts when it exists, else cacerts. A dangling symlink is kept:
            # that JDK then has no working truststore, which is worth a problem.
            default = next((security / name for name in ("jssecacerts", "cacerts")
                            if (security / name).exists() or (security / name).is_symlink()), None)
            if default is not None:
                users.setdefault(default.resolve(), []).append((_jdk(real_home), default))
                break
    if DEBIAN_JAVA_CACERTS.exists():
        users.setdefault(DEBIAN_JAVA_CACERTS.resolve(), [])
    stores: list[LoadedStore] = []
    for physical, jdks in users.items():
        names = list(dict.fromkeys(jdk.name for jdk, _ in jdks))
        label = (", ".join(names) + f" {physical.name}") if names else f"Java {physical.name} {physical}"
        version = ", ".join(dict.fromkeys(jdk.version for jdk, _ in jdks if jdk.version))
        notes = [f"used by {jdk.name} at {jdk.home}" + (f" (its {link.relative_to(jdk.home)} is a symlink)"
                                                        if link.is_symlink() else "")
                 for jdk, link in jdks]
        if not jdks:
            notes.append("no JDK found that reads it (the ca-certificates-java copy, for JDKs installed later)")
        if physical.name == "jssecacerts":
            notes.append("jssecacerts takes precedence over cacerts in this JDK")
        store = read_java_keystore(physical, kind="java", label=label, version=version)
        stores.append(_with_notes(store, notes))
    stores += _java_options_stores(env)
    return stores


def _java_options_stores(env: Mapping[str, str]) -> list[LoadedStore]:
    """``-Djavax.net.ssl.trustStore=PATH`` in JAVA_TOOL_OPTIONS / JDK_JAVA_OPTIONS replaces the default truststore
    of every JVM started with that environment."""
    stores: list[LoadedStore] = []
    for variable in ("JAVA_TOOL_OPTIONS", "JDK_JAVA_OPTIONS"):
        options = env.get(variable, "")
        match = _TRUSTSTORE_OPTION.search(options)
        if match is None or match.group(1) in ("NONE", ""):
            continue
        password = _TRUSTSTORE_PASSWORD_OPTION.search(options)
        path = Path(match.group(1)).absolute()
        stores.append(read_java_keystore(
            path, password=password.group(1) if password else None, kind="java",
            store_id=f"java:{path}+{variable}", label=f"Java truststore from {variable} ({path})",
            clients=f"JVMs started with {variable} set"))
    return stores


def _jdk(home: Path) -> _Jdk:
    """Version and vendor from the JDK's ``release`` file (JAVA_VERSION, IMPLEMENTOR)."""
    try:
        text = (home / "release").read_text(encoding="utf-8", errors="replace")[:65536]
    except OSError:
        return _Jdk(home, "", "")
    fields = dict(_RELEASE_LINE.findall(text))
    return _Jdk(home, fields.get("JAVA_VERSION", ""), fields.get("IMPLEMENTOR", ""))


# --- certifi and NSS databases under the search roots ------------------------------------------------------------


@dataclass(frozen=True)
class FoundEnvironments:
    """What the bounded walk found: certifi package directories and NSS database directories."""

    certifi: tuple[Path, ...]
    nss: tuple[Path, ...]
    truncated: bool = False


def find_environments(roots: Sequence[Path], *, max_depth: int = DEFAULT_MAX_DEPTH,
                      max_files: int = DEFAULT_MAX_FILES) -> FoundEnvironments:
    """certifi copies (``certifi/cacert.pem``, pip's ``pip/_vendor/certifi``) and NSS databases (a cert9.db)
    under ``roots``. Never follows a symlinked directory, visits each directory once, skips /proc, /sys, /dev
    and /run, and in a ``site-packages`` looks only at the two certifi places instead of walking every package."""
    walker = _Walker(max_depth, max_files)
    for root in roots:
        walker.walk(root)
    return FoundEnvironments(tuple(walker.certifi), tuple(walker.nss), walker.truncated)


@dataclass
class _Walker:
    max_depth: int
    max_files: int
    seen_entries: int = 0
    truncated: bool = False
    visited: set[tuple[int, int]] = field(default_factory=set)
    certifi_real: set[Path] = field(default_factory=set)
    certifi: list[Path] = field(default_factory=list)
    nss: list[Path] = field(default_factory=list)

    def walk(self, root: Path) -> None:
        try:
            st = root.stat()
        except OSError:
            return
        if stat.S_ISDIR(st.st_mode) and str(root) not in _SKIP_TREES:
            self._directory(root, st, 0)

    def _directory(self, directory: Path, st: os.stat_result, depth: int) -> None:
        if (st.st_dev, st.st_ino) in self.visited:
            return
        self.visited.add((st.st_dev, st.st_ino))
        if directory.name in _SITE_DIRS:
            self._site_packages(directory)
            return
        python_lib = _PYTHON_LIB.fullmatch(directory.name) is not None and directory.parent.name in ("lib", "lib64")
        subdirs: list[tuple[Path, os.stat_result]] = []
        files: set[str] = set()
        try:
            with os.scandir(directory) as entries:
                for entry in entries:
                    self.seen_entries += 1
                    if self.seen_entries > self.max_files:
                        self.truncated = True
                        return
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            if python_lib and entry.name not in _SITE_DIRS:
                                continue   # the standard library: no certifi in it, thousands of files
                            if entry.name not in _SKIP_NAMES and entry.path not in _SKIP_TREES:
                                subdirs.append((Path(entry.path), entry.stat(follow_symlinks=False)))
                        elif entry.name in ("cert9.db", "cacert.pem"):
                            files.add(entry.name)
                    except OSError:
                        continue
        except OSError:
            return
        if "cert9.db" in files:
            self.nss.append(directory)
        if "cacert.pem" in files and directory.name == "certifi":
            self._certifi(directory)
        if depth < self.max_depth:
            for subdir, sub_st in sorted(subdirs):
                self._directory(subdir, sub_st, depth + 1)

    def _site_packages(self, directory: Path) -> None:
        for candidate in (directory / "certifi", directory / "pip" / "_vendor" / "certifi"):
            if (candidate / "cacert.pem").exists():
                self._certifi(candidate)

    def _certifi(self, directory: Path) -> None:
        try:
            real = directory.resolve()
        except OSError:
            return
        if real not in self.certifi_real:
            self.certifi_real.add(real)
            self.certifi.append(directory)


def _search_roots(search: Sequence[Path | str], homes: Sequence[Path]) -> list[Path]:
    patterns = [str(p) for p in search]
    patterns += [str(home / place) for home in homes for place in HOME_PLACES]
    roots: dict[Path, None] = {}
    for pattern in patterns:
        for path in _glob(pattern):
            if path.is_dir():
                roots.setdefault(path, None)
    return list(roots)


def _home_dirs(env: Mapping[str, str]) -> list[Path]:
    homes = [Path("/root"), *_glob("/home/*")]
    if env.get("HOME"):
        homes.append(Path(env["HOME"]))
    unique: dict[Path, None] = {}
    for home in homes:
        if home.is_dir():
            unique.setdefault(home, None)
    return list(unique)


def _certifi_store(directory: Path) -> LoadedStore:
    """``certifi 2023.7.22 (/srv/app/.venv)``: the version from ``__init__.py`` (read, never imported) and the
    environment the copy belongs to."""
    version = ""
    try:
        text = (directory / "__init__.py").read_text(encoding="utf-8", errors="replace")[:65536]
    except OSError:
        text = ""
    if match := _VERSION.search(text):
        version = match.group(1)
    vendored = directory.parent.name == "_vendor" and directory.parent.parent.name == "pip"
    environment = _environment_root(directory)
    name = "pip's vendored certifi" if vendored else "certifi"
    label = f"{name} {version or '(version unknown)'} ({environment})"
    clients = f"pip in {environment}" if vendored else f"Python requests, httpx (certifi) in {environment}"
    bundle = directory / "cacert.pem"
    store = read_bundle(bundle, kind="certifi", label=label, version=version, clients=clients)
    notes = []
    if bundle.is_symlink():
        notes.append(f"cacert.pem links to {bundle.resolve()} (a distribution's certifi reading the OS bundle)")
    return _with_notes(store, notes)


def _environment_root(directory: Path) -> Path:
    """The virtualenv or prefix: the part before ``lib/pythonX.Y/site-packages``."""
    parts = directory.parts
    for index in range(len(parts) - 1, 1, -1):
        if parts[index] in _SITE_DIRS:
            if index >= 2 and parts[index - 2] in ("lib", "lib64"):
                return Path(*parts[:index - 2])
            return Path(*parts[:index])
    return directory.parent


def _nss_stores(homes: Sequence[Path], walked: Sequence[Path], *, system: bool) -> list[LoadedStore]:
    places: list[tuple[Path, str, str]] = []   # (directory, label, clients)
    for home in homes:
        for nssdb in (home / ".pki" / "nssdb", home / "snap" / "chromium" / "current" / ".pki" / "nssdb"):
            if nssdb.is_dir():
                places.append((nssdb, f"NSS database {nssdb}", f"Chrome/Chromium of {home.name or home}"))
        for profiles in (home / ".mozilla" / "firefox", home / "snap" / "firefox" / "common" / ".mozilla" / "firefox"):
            for database in _glob(str(profiles / "*" / "cert9.db")):
                profile = database.parent
                places.append((profile, f"Firefox profile {profile.name} ({home})", f"Firefox of {home.name or home}"))
    for shared in SYSTEM_NSS if system else ():
        if shared.is_dir():
            places.append((shared, f"system NSS database {shared}", "system-wide NSS clients (RHEL/Fedora tools)"))
    for directory in walked:
        places.append((directory, f"NSS database {directory}", f"NSS clients run with -d sql:{directory}"))
    builtins = mozilla_store() if places else None
    stores: list[LoadedStore] = []
    seen: set[Path] = set()
    for directory, label, clients in places:
        real = directory.resolve()
        if real in seen:
            continue
        seen.add(real)
        stores.append(read_nss_db(directory, builtins=builtins, kind="nss", label=label, clients=clients))
    return stores


# --- Node ---------------------------------------------------------------------------------------------------------


@dataclass
class _NodeRun:
    path: str
    process: subprocess.Popen[bytes] | None
    problem: str = ""


def _start_node(node: str, env: Mapping[str, str]) -> _NodeRun | None:
    """Started first and collected last: Node's start-up (~100 ms) overlaps the rest of the discovery. It runs
    with a minimal environment: NODE_OPTIONS could make it load code, and it does not change the built-in list."""
    search_path = env.get("PATH") or os.environ.get("PATH") or os.defpath
    path = shutil.which(node, path=search_path)
    if path is None:
        return None
    try:   # PATH kept: version managers' node is a shell shim that looks the real binary up
        process = subprocess.Popen([path, "-e", _NODE_SCRIPT], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, env={"PATH": search_path, "LANG": "C"})
    except OSError as exc:
        return _NodeRun(path, None, f"{path}: cannot run ({exc.strerror or exc})")
    return _NodeRun(path, process)


def _node_stores(run: _NodeRun, env: Mapping[str, str]) -> list[LoadedStore]:
    modified = _mtime(Path(run.path))
    base = _node_builtin(run, modified)
    notes: list[str] = []
    options = env.get("NODE_OPTIONS", "")
    if "--use-openssl-ca" in options:
        notes.append("NODE_OPTIONS has --use-openssl-ca: Node programs use the OpenSSL store, not this list")
    if "--use-system-ca" in options:
        notes.append("NODE_OPTIONS has --use-system-ca: Node programs also trust the OS store")
    base = _with_notes(base, notes)
    stores = [base]
    extra = env.get("NODE_EXTRA_CA_CERTS", "")
    if extra:
        stores.append(node_extra_store(base, extra))
    return stores


def _node_builtin(run: _NodeRun, modified: dt.datetime | None) -> LoadedStore:
    def failed(problem: str) -> LoadedStore:
        return loaded_store(store_id=f"node:{run.path}", kind="node", path=run.path, label="Node built-in roots",
                            modified=modified, problem=problem)

    if run.process is None:
        return failed(run.problem)
    try:
        stdout, stderr = run.process.communicate(timeout=NODE_TIMEOUT)
    except subprocess.TimeoutExpired:
        run.process.kill()
        run.process.communicate()
        return failed(f"{run.path}: no answer within {NODE_TIMEOUT:.0f} s")
    if run.process.returncode != 0:
        reason = " ".join(stderr.decode("utf-8", "replace").split())[:160] or f"exit status {run.process.returncode}"
        return failed(f"{run.path}: failed to list its roots ({reason})")
    try:
        answer = json.loads(stdout)
        version = str(answer["version"])
        roots = [str(r) for r in answer["roots"]]
    except (ValueError, KeyError, TypeError):
        return failed(f"{run.path}: its answer is not the expected JSON")
    return node_store(roots, node_path=run.path, version=version.removeprefix("v"),
                      label=f"Node {version} built-in roots", modified=modified)


# --- helpers ------------------------------------------------------------------------------------------------------


def _glob(pattern: str) -> list[Path]:
    """Absolute shell patterns (``/usr/lib/jvm/*``), sorted; a pattern without wildcards is returned as is."""
    if not glob.has_magic(pattern):
        return [Path(pattern)]
    return sorted(Path(match) for match in glob.glob(pattern))  # noqa: PTH207 - absolute patterns: Path.glob cannot


def _with_notes(store: LoadedStore, notes: Sequence[str]) -> LoadedStore:
    if not notes:
        return store
    return LoadedStore(replace(store.info, notes=(*store.info.notes, *notes)), store.trust)


def _mtime(path: Path) -> dt.datetime | None:
    try:
        return dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC)
    except OSError:
        return None

