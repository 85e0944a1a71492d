"""What the three config readers share: reading files (size-capped, never raising), includes with globs and a
loop guard, absolute paths, and problems as catalogue findings located to a file and line.

Every reader keeps going after a problem: a config that nginx would reject still tells an inventory where
certificates live, so a problem is recorded and the rest of the tree is read.
"""

from __future__ import annotations

import glob
import os
import re
import shlex
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tlsward.model.discovery import ConfigScan, ConfiguredListener, FileProblem, ServerKind
from tlsward.model.findings import Finding, Remediation, spec_for

# A config bigger than this is not a config: refuse it rather than hold it in memory.
MAX_FILE_BYTES = 64 * 1024 * 1024
# nginx and Apache have no loop guard of their own; these bound a hostile or broken include tree.
MAX_INCLUDE_DEPTH = 32
MAX_INCLUDED_FILES = 10_000
# Apache follows an included directory into its subdirectories; bound that walk too.
MAX_DIRECTORY_FILES = 10_000

_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_.]*)\}")


@dataclass(slots=True)
class Directive:
    """One directive (or, with ``block``, one section) as written, with where it was written."""

    name: str
    args: tuple[str, ...]
    path: str
    line: int
    block: list[Directive] | None = None


@dataclass(frozen=True, slots=True)
class MaterialRef:
    """A certificate, key or chain path named by a directive, to be checked on disk once."""

    path: str
    config_path: str
    line: int
    directive: str


def absolute(base_dir: str, path: str) -> str:
    """``path`` made absolute against ``base_dir`` and normalized; symlinks are kept as the config names them."""
    # Plain strings, not pathlib: a 10 MB config names a hundred thousand paths, and Path() costs ~10 us each.
    return os.path.normpath(path if path.startswith("/") else f"{base_dir}/{path}")


def file_kind(path: str) -> str | None:
    """``"dir"``, ``"file"`` (anything else that exists) or None when ``path`` does not exist or cannot be looked at.

    ``os.stat`` rather than pathlib for the same reason as ``absolute``.
    """
    try:
        mode = os.stat(path).st_mode  # noqa: PTH116
    except (OSError, ValueError):
        return None
    return "dir" if stat.S_ISDIR(mode) else "file"


def has_glob(pattern: str) -> bool:
    """Whether ``pattern`` has wildcards: then matching nothing is no error (nginx), or a different one (Apache)."""
    return glob.has_magic(pattern)


def expand_glob(pattern: str) -> list[str]:
    """Matches of an absolute ``pattern`` in the sorted order nginx and Apache use (glob(3) sorts)."""
    try:
        # glob.glob, not Path.glob: the pattern is absolute and may have wildcards in any component.
        return sorted(glob.glob(pattern))  # noqa: PTH207
    except (OSError, ValueError, RecursionError):
        return []


def files_under(directory: str) -> list[str]:
    """Every file below ``directory`` in the order Apache reads an included directory: entries sorted, a
    subdirectory read where it sorts. Bounded, and a directory reached twice (a symlink loop) is read once."""
    found: list[str] = []
    seen: set[tuple[int, int]] = set()
    stack: list[Iterator[Path]] = []

    def enter(path: Path) -> None:
        try:
            info = path.stat()
            if (info.st_dev, info.st_ino) not in seen:
                seen.add((info.st_dev, info.st_ino))
                stack.append(iter(sorted(path.iterdir())))
        except OSError:
            pass

    enter(Path(directory))
    while stack and len(found) < MAX_DIRECTORY_FILES:
        entry = next(stack[-1], None)
        if entry is None:
            stack.pop()
        elif entry.is_dir():
            enter(entry)
        else:
            found.append(str(entry))
    return found


def substitute(text: str, defined: dict[str, str]) -> str:
    """``${NAME}`` replaced from ``defined``; unknown names stay as written (the caller reports them if used)."""
    if "${" not in text:
        return text
    return _VARIABLE.sub(lambda m: defined.get(m.group(1), m.group(0)), text)


def confirm_command(server: ServerKind, root: str) -> str:
    """The command that makes the server itself say what is wrong with this config."""
    quoted = shlex.quote(root)
    if server == "nginx":
        return f"nginx -t -c {quoted}"
    if server == "haproxy":
        return f"haproxy -c -f {quoted}"
    if root.startswith("/etc/apache2/"):
        return "apache2ctl -t"          # Debian: the wrapper sets the environment apache2.conf needs
    return f"apachectl -t -f {quoted}"


def where(path: str, line: int | None) -> str:
    """A location in plain words, as evidence reads it."""
    return f"{path} line {line}" if line is not None else path


@dataclass(slots=True)
class Reader:
    """The state of reading one config tree: files read, the include stack, and the problems so far."""

    server: ServerKind
    root: str
    files_read: list[str] = field(default_factory=list)
    problems: list[FileProblem] = field(default_factory=list)
    _problem_keys: set[tuple[str, str, int | None, str]] = field(default_factory=set)
    _read_set: set[str] = field(default_factory=set)
    _stack: list[str] = field(default_factory=list)
    _included: int = 0

    # problems ---------------------------------------------------------------------------------

    def _add(self, finding_id: str, path: str, line: int | None, evidence: str, fix: str) -> None:
        key = (finding_id, path, line, evidence)
        if key in self._problem_keys:
            return
        self._problem_keys.add(key)
        spec = spec_for(finding_id)
        remediation = Remediation(confirm=confirm_command(self.server, self.root), fix=fix)
        finding = Finding(spec.id, spec.severity, spec.title, evidence, remediation)
        self.problems.append(FileProblem(path=path, line=line, finding=finding))

    def syntax(self, path: str, line: int | None, what: str, fix: str | None = None) -> None:
        """The config cannot be read past this point, or this directive cannot be understood."""
        self._add("config.syntax", path, line, f"{where(path, line)}: {what}",
                  fix or f"Correct {where(path, line)} so that `{confirm_command(self.server, self.root)}` passes.")

    def variable(self, path: str, line: int, what: str) -> None:
        """A path built from a variable: valid for the server, unknowable for a reader of the config alone."""
        self.syntax(path, line, f"{what}; tlsward cannot tell which file it names, so it is left out",
                    "Nothing may be wrong with the server: scan the directory the variable's files live in "
                    "(tlsward discovers certificate files on disk) to inventory them.")

    def missing(self, ref: MaterialRef) -> None:
        """A certificate, key or chain file named by the config does not exist."""
        self._add("config.missing_file", ref.config_path, ref.line,
                  f"{where(ref.config_path, ref.line)}: {ref.directive} names {ref.path}, which does not exist",
                  f"Put the file back at {ref.path}, or point {ref.directive} at the file that replaced it, "
                  "then reload the server.")

    def unreadable(self, path: str, line: int | None, target: str, reason: str, *, directive: str | None = None,
                   fix: str | None = None) -> None:
        """A file the config needs (the config itself, an include, a certificate) cannot be read."""
        if line is None and target == path:
            evidence = f"{path}: the config cannot be read ({reason})"
        else:
            evidence = (f"{where(path, line)}: {directive or 'the config'} names {target}, "
                        f"which cannot be read ({reason})")
        self._add("file.unreadable", path, line, evidence,
                  fix or f"Make {target} readable by the user running tlsward (check that it exists, its owner "
                  "and its mode), or correct the path in the config.")

    # files ------------------------------------------------------------------------------------

    def read(self, path: str, *, from_path: str | None = None, from_line: int | None = None,
             directive: str | None = None) -> str | None:
        """The text of ``path``, or None with a problem located at the directive naming it (or at the root)."""
        at_path = from_path if from_path is not None else path
        too_big = f"{path} is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB; not read"
        try:
            with Path(path).open("rb") as handle:
                if os.fstat(handle.fileno()).st_size > MAX_FILE_BYTES:
                    self.syntax(at_path, from_line, too_big)
                    return None
                data = handle.read(MAX_FILE_BYTES + 1)
        except OSError as exc:
            reason = lower_first(exc.strerror or type(exc).__name__)
            self.unreadable(at_path, from_line, path, reason, directive=directive)
            return None
        if len(data) > MAX_FILE_BYTES:      # grew while being read, or a pipe
            self.syntax(at_path, from_line, too_big)
            return None
        if path not in self._read_set:
            self._read_set.add(path)
            self.files_read.append(path)
        text = data.decode("utf-8", errors="replace")
        return text.removeprefix("\ufeff")

    def enter(self, path: str, from_path: str, from_line: int) -> bool:
        """Whether an include of ``path`` may be followed: not a loop, not too deep, not too many files."""
        real = os.path.realpath(path)
        if real in self._stack:
            self.syntax(from_path, from_line, f"include of {path} loops back to a file that is already being read; "
                        "not followed", f"Remove the include at {where(from_path, from_line)}: the server would "
                        "recurse until it runs out of file descriptors or memory.")
            return False
        if len(self._stack) >= MAX_INCLUDE_DEPTH:
            self.syntax(from_path, from_line, f"includes nested deeper than {MAX_INCLUDE_DEPTH}; {path} not read")
            return False
        if self._included >= MAX_INCLUDED_FILES:
            self.syntax(from_path, from_line, f"more than {MAX_INCLUDED_FILES} includes; {path} not read")
            return False
        self._included += 1
        self._stack.append(real)
        return True

    def include(self, path: str, from_path: str, from_line: int, directive: str,
                parse: Callable[[str, str], None]) -> None:
        """Follow one include: guard against loops and runaway nesting, read the file, ``parse(path, text)``,
        and pop it off the include stack whatever happens."""
        if not self.enter(path, from_path, from_line):
            return
        try:
            text = self.read(path, from_path=from_path, from_line=from_line, directive=directive)
            if text is not None:
                parse(path, text)
        finally:
            self.leave()

    def enter_root(self) -> None:
        """The root config is the bottom of the include stack, so including it again is a loop."""
        self._stack.append(os.path.realpath(self.root))

    def leave(self) -> None:
        """Done reading the file most recently entered."""
        if self._stack:
            self._stack.pop()

    # results ----------------------------------------------------------------------------------

    def check(self, refs: list[MaterialRef]) -> None:
        """One problem per certificate/key/chain path that is missing or unreadable (a directory is fine)."""
        for ref in dict.fromkeys(refs):
            try:
                os.stat(ref.path)  # noqa: PTH116 (hot path, see ``absolute``)
            except FileNotFoundError:
                self.missing(ref)
                continue
            except (OSError, ValueError) as exc:
                reason = (exc.strerror if isinstance(exc, OSError) else None) or str(exc)
                self.unreadable(ref.config_path, ref.line, ref.path, lower_first(reason), directive=ref.directive)
                continue
            if not os.access(ref.path, os.R_OK):
                self.unreadable(ref.config_path, ref.line, ref.path, "permission denied", directive=ref.directive)

    def scan(self, listeners: list[ConfiguredListener]) -> ConfigScan:
        """The finished result."""
        return ConfigScan(server=self.server, root=self.root, listeners=tuple(listeners),
                          files_read=tuple(self.files_read), problems=tuple(self.problems))


def lower_first(reason: str) -> str:
    """An OS error message as it reads mid-sentence: "No such file" becomes "no such file"."""
    return reason[:1].lower() + reason[1:]


def cwd_absolute(path: str | os.PathLike[str]) -> str:
    """A path given by the caller, absolute against the working directory and normalized."""
    return absolute(str(Path.cwd()), os.fspath(path))


def directory_of(path: str) -> str:
    """The directory holding ``path``."""
    return str(Path(path).parent)


def unique(items: list[str]) -> tuple[str, ...]:
    """Items once each, first occurrence first."""
    return tuple(dict.fromkeys(items))


def parse_port(text: str) -> int | None:
    """A TCP port number, or None when ``text`` is not one."""
    if not text.isdigit() or len(text) > 5:
        return None
    port = int(text)
    return port if 0 < port <= 65535 else None


def split_host_port(text: str) -> tuple[str | None, str | None]:
    """``[v6]:port``, ``host:port``, ``*:port``, ``host`` or ``port``-less forms split into (host, port text).

    The host is None when the text names every address (``*`` or nothing). IPv6 hosts lose their brackets.
    A bare IPv6 address (``::1``) has no port; callers that allow ``:::443`` pass the port separately.
    """
    if text.startswith("["):
        close = text.find("]")
        if close < 0:
            return text, None
        host = text[1:close]
        rest = text[close + 1:]
        port = rest[1:] if rest.startswith(":") else None
        return host or None, port
    if text.count(":") == 1:
        host, port = text.split(":", 1)
        return (None if host in ("", "*") else host), port
    if text in ("", "*"):
        return None, None
    return text, None
