"""HAProxy configs read into TLS listeners: ``bind ... ssl crt ...`` lines of ``frontend``, ``listen`` and
``peers`` sections, with ``crt`` files, ``crt`` directories and ``crt-list`` files (whose SNI filters name
the server names).

Lines are tokenized as HAProxy does: words, ``"..."`` (backslash escapes) and ``'...'`` (literal) quoting that
may join into one word, backslash escapes, and ``#`` comments. Relative ``crt`` paths use ``crt-base`` from
``global``; without it HAProxy uses its working directory, which tlsward takes to be the config's directory.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from tlsward.configs._source import (
    MaterialRef,
    Reader,
    absolute,
    cwd_absolute,
    directory_of,
    file_kind,
    lower_first,
    parse_port,
    unique,
)
from tlsward.model.discovery import ConfigScan, ConfiguredListener

SECTIONS = frozenset({
    "global", "defaults", "frontend", "backend", "listen", "peers", "resolvers", "userlist", "mailers",
    "program", "http-errors", "ring", "cache", "log-forward", "fcgi-app", "crt-store", "traces", "acme",
})
# Sections whose ``bind`` lines accept connections (peers may speak TLS to each other).
_BINDING = frozenset({"frontend", "listen", "peers"})
# bind options that take a value, so that a value is never mistaken for ``crt`` or ``ssl``.
_VALUED = frozenset({
    "accept-netscaler-cip", "alpn", "backlog", "ca-file", "ca-ignore-err", "ca-sign-file", "ca-sign-pass",
    "ca-verify-file", "ciphers", "ciphersuites", "client-sigalgs", "crl-file", "crt-ignore-err", "curves",
    "ecdhe", "expose-fd", "gid", "group", "id", "interface", "label", "level", "maxconn", "mode", "mss",
    "name", "namespace", "nice", "npn", "proto", "process", "severity-output", "sigalgs", "ssl-max-ver",
    "ssl-min-ver", "tcp-ut", "thread", "uid", "user", "verify", "quic-cc-algo", "quic-socket", "shards",
    "guid-prefix", "ocsp-update", "idle-ping", "default-crt",
})
# Address prefixes that are not TCP (unix sockets, inherited fds, UDP/QUIC): no TLS-over-TCP listener.
_NOT_TCP = ("unix@", "abns@", "abnsz@", "fd@", "sockpair@", "udp@", "udp4@", "udp6@", "quic4@", "quic6@",
            "rhttp@", "uxst@", "uxdg@")
# Files a crt directory holds beside certificates, which HAProxy does not load as certificates.
_SIDE_FILES = (".key", ".ocsp", ".issuer", ".sctl")
MAX_PORTS_PER_RANGE = 1024

_WORD = re.compile(r"""(?P<word>(?:"(?:[^"\\]|\\.)*"|'[^']*'|\\.|[^\s"'\\#])+)|(?P<comment>\#.*)|(?P<space>\s+)"""
                   r"""|(?P<bad>.)""", re.DOTALL)
_PIECE = re.compile(r""""((?:[^"\\]|\\.)*)"|'([^']*)'|\\(x[0-9A-Fa-f]{2}|.)|([^"'\\]+)""", re.DOTALL)
_ESCAPED = {"r": "\r", "n": "\n", "t": "\t"}


def _escape(code: str) -> str:
    if code.startswith("x") and len(code) == 3:
        return chr(int(code[1:], 16))
    return _ESCAPED.get(code, code)


def _unquote(word: str) -> str:
    out: list[str] = []
    for match in _PIECE.finditer(word):
        double, single, escape, plain = match.groups()
        if double is not None:
            out.append(re.sub(r"\\(x[0-9A-Fa-f]{2}|.)", lambda m: _escape(m.group(1)), double))
        elif single is not None:
            out.append(single)
        elif escape is not None:
            out.append(_escape(escape))
        else:
            out.append(plain)
    return "".join(out)


def tokenize(line: str) -> tuple[list[str], str | None]:
    """The words of one line, and what is wrong with it (unterminated quote, trailing backslash) if anything."""
    if '"' not in line and "'" not in line and "\\" not in line:
        return line.split("#", 1)[0].split(), None      # the common case, ten times faster
    words: list[str] = []
    for match in _WORD.finditer(line):
        kind = match.lastgroup
        if kind == "word":
            words.append(_unquote(match.group()))
        elif kind == "comment":
            break
        elif kind == "bad":
            return words, "unterminated quoted string" if match.group() in "\"'" else "stray backslash"
    return words, None


@dataclass(slots=True)
class _State:
    reader: Reader
    config_dir: str
    crt_base: str | None = None
    key_base: str | None = None
    refs: list[MaterialRef] = field(default_factory=list)
    listeners: list[ConfiguredListener] = field(default_factory=list)

    def bind(self, path: str, line: int, words: list[str]) -> None:
        """One ``bind`` line: a listener per address when it says ``ssl``."""
        if len(words) < 2:
            self.reader.syntax(path, line, "bind without an address")
            return
        params = words[2:]
        crts: list[str] = []
        crt_lists: list[str] = []
        ssl = False
        index = 0
        while index < len(params):
            option = params[index]
            if option == "ssl":
                ssl = True
            elif option in ("crt", "crt-list"):
                if index + 1 >= len(params):
                    self.reader.syntax(path, line, f"bind option {option} without a file")
                    break
                (crts if option == "crt" else crt_lists).append(params[index + 1])
                index += 1
            elif option in _VALUED:
                index += 1
            index += 1
        if not ssl:
            return
        cert_paths: list[str] = []
        key_paths: list[str] = []
        names: list[str] = []
        for crt in crts:
            self.crt(crt, path, line, "crt", cert_paths, key_paths)
        for crt_list in crt_lists:
            self.crt_list(crt_list, path, line, cert_paths, key_paths, names)
        for address, port in self.addresses(words[1], path, line):
            self.listeners.append(ConfiguredListener(
                server="haproxy", config_path=path, line=line, address=address, port=port,
                server_names=unique(names), certificate_paths=unique(cert_paths), key_paths=unique(key_paths),
            ))

    def addresses(self, text: str, path: str, line: int) -> list[tuple[str | None, int]]:
        """``[proto@]host:port[-port][,...]`` as (address, port) pairs; non-TCP addresses are left out."""
        out: list[tuple[str | None, int]] = []
        for item in text.split(","):
            if not item or item.startswith(_NOT_TCP) or item.startswith("/"):
                continue
            if "$" in item:
                self.reader.syntax(path, line, f"bind {item} uses an environment variable; tlsward cannot "
                                   "tell which address it names, so it is left out",
                                   "Nothing may be wrong with HAProxy: add this listener to the inventory by hand.")
                continue
            address_text = item.split("@", 1)[1] if "@" in item else item
            host, sep, ports = address_text.rpartition(":")
            if not sep:
                self.reader.syntax(path, line, f"bind {item}: no port")
                continue
            if host.startswith("[") and host.endswith("]"):
                host = host[1:-1]
            address = None if host in ("", "*") else host
            first_text, _, last_text = ports.partition("-")
            first = parse_port(first_text)
            last = parse_port(last_text) if last_text else first
            if first is None or last is None or last < first or last - first >= MAX_PORTS_PER_RANGE:
                self.reader.syntax(path, line, f"bind {item}: invalid port or port range")
                continue
            out.extend((address, port) for port in range(first, last + 1))
        return out

    def crt(self, value: str, path: str, line: int, what: str, certs: list[str], keys: list[str]) -> None:
        """A ``crt`` file or directory into certificate and key paths (a PEM may hold both)."""
        if "$" in value:
            self.reader.variable(path, line, f"{what} {value} uses an environment variable")
            return
        full = absolute(self.crt_base or self.config_dir, value)
        if file_kind(full) == "dir":
            try:
                entries = sorted(Path(full).iterdir())
            except OSError as exc:
                self.reader.unreadable(path, line, full, lower_first(exc.strerror or type(exc).__name__),
                                       directive=what)
                return
            for entry in entries:
                if entry.name.startswith(".") or entry.name.endswith(_SIDE_FILES) or not entry.is_file():
                    continue
                certs.append(str(entry))
                keys.append(self.key_for(str(entry), f"{value.rstrip('/')}/{entry.name}"))
            return
        self.refs.append(MaterialRef(full, path, line, what))
        certs.append(full)
        keys.append(self.key_for(full, value))

    def key_for(self, cert: str, written: str) -> str:
        """The key beside a certificate: ``<crt>.key`` (under ``key-base`` for relative paths) or the PEM itself."""
        candidates = []
        if self.key_base and not Path(written).is_absolute():
            candidates.append(absolute(self.key_base, written + ".key"))
        candidates.append(cert + ".key")
        return next((candidate for candidate in candidates if file_kind(candidate) == "file"), cert)

    def crt_list(self, value: str, path: str, line: int, certs: list[str], keys: list[str],
                 names: list[str]) -> None:
        """A ``crt-list`` file: ``cert [ssl options] [!]sni-filter...`` per line."""
        full = absolute(self.config_dir, value)
        text = self.reader.read(full, from_path=path, from_line=line, directive="crt-list")
        if text is None:
            return
        for number, raw in enumerate(text.split("\n"), 1):
            words, error = tokenize(raw)
            if error:
                self.reader.syntax(full, number, error)
                continue
            if not words:
                continue
            rest = words[1:]
            if rest and rest[0].startswith("["):
                closing = next((i for i, word in enumerate(rest) if word.endswith("]")), None)
                if closing is None:
                    self.reader.syntax(full, number, "ssl options '[' are not closed by ']'")
                    continue
                rest = rest[closing + 1:]
            self.crt(words[0], full, number, "crt-list entry", certs, keys)
            names.extend(word for word in rest if not word.startswith("!"))


def read_haproxy(path: str | os.PathLike[str]) -> ConfigScan:
    """The TLS listeners of an HAProxy config file (and the crt-list files it names)."""
    root = cwd_absolute(path)
    reader = Reader("haproxy", root)
    state = _State(reader, directory_of(root))
    text = reader.read(root)
    section: str | None = None
    for number, raw in enumerate((text or "").split("\n"), 1):
        words, error = tokenize(raw)
        if error:
            reader.syntax(root, number, error)
            continue
        if not words:
            continue
        keyword = words[0]
        if keyword in SECTIONS:
            section = keyword
            if keyword not in ("global", "defaults", "traces") and len(words) < 2:
                reader.syntax(root, number, f'"{keyword}" section without a name')
            continue
        if keyword.startswith("."):
            continue                 # .if/.else/.endif and .notice/.warning/.alert: kept transparent
        if section is None:
            reader.syntax(root, number, f'"{keyword}" outside any section (unknown section keyword?)')
            continue
        if section == "global" and keyword in ("crt-base", "key-base") and len(words) == 2:
            base = absolute(state.config_dir, words[1])
            if keyword == "crt-base":
                state.crt_base = base
            else:
                state.key_base = base
        elif section in _BINDING and keyword == "bind":
            state.bind(root, number, words)
    reader.check(state.refs)
    return reader.scan(state.listeners)
