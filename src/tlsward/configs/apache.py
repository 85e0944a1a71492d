"""Apache httpd configs read into TLS listeners: ``<VirtualHost>`` blocks (and the main server) with
``SSLEngine on``, their ``ServerName`` / ``ServerAlias`` and ``SSLCertificate*File`` directives.

Reading follows httpd: one directive per line, ``\\`` at the end of a line continues it, ``#`` starts a comment
line, arguments may be quoted. ``Include`` / ``IncludeOptional`` (globs, directories), ``ServerRoot`` and
``Define`` take effect as the file is read, as in httpd, so later relative paths and ``${VAR}`` use them.
Certificates merge as mod_ssl merges them: a virtual host's Nth ``SSLCertificateFile`` replaces the main
server's Nth, the rest are inherited.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from tlsward.configs._source import (
    Directive,
    MaterialRef,
    Reader,
    absolute,
    cwd_absolute,
    directory_of,
    expand_glob,
    files_under,
    has_glob,
    parse_port,
    split_host_port,
    substitute,
    unique,
)
from tlsward.model.discovery import ConfigScan, ConfiguredListener

MAX_NESTING = 64

# An argument: a quoted string (only the matching quote can be escaped, as in ap_getword_conf) or a word.
_ARG = re.compile(r""""((?:\\"|[^"])*)"|'((?:\\'|[^'])*)'|(["'].*)|(\S+)""")
# Sections whose contents are never server config as written: macro bodies are templates.
_SKIPPED_SECTIONS = frozenset({"macro"})


def _args(text: str) -> tuple[list[str], bool]:
    """Arguments of one directive line, and whether a quote was left open (the rest of the line is taken)."""
    if '"' not in text and "'" not in text:
        return text.split(), False                      # the common case
    out: list[str] = []
    unterminated = False
    for match in _ARG.finditer(text):
        double, single, open_quote, word = match.groups()
        if double is not None:
            out.append(double.replace('\\"', '"'))
        elif single is not None:
            out.append(single.replace("\\'", "'"))
        elif open_quote is not None:
            out.append(open_quote[1:])
            unterminated = True
        else:
            out.append(word)
    return out, unterminated


def _split_name(line: str) -> tuple[str, str]:
    """A directive (or section) name and the text of its arguments."""
    parts = line.strip().split(None, 1)
    if not parts:
        return "", ""
    return parts[0], (parts[1] if len(parts) > 1 else "")


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """(first line number, text) per logical line: continuations joined, blank and comment lines dropped."""
    out: list[tuple[int, str]] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.split("\n"), 1):
        line = raw.rstrip("\r")
        if not pending:
            start = number
        if line.endswith("\\"):
            pending.append(line[:-1])
            continue
        pending.append(line)
        joined = " ".join(part.strip() for part in pending).strip()
        pending = []
        if joined and not joined.startswith("#"):
            out.append((start, joined))
    if pending:
        joined = " ".join(part.strip() for part in pending).strip()
        if joined and not joined.startswith("#"):
            out.append((start, joined))
    return out


@dataclass(slots=True)
class _Parser:
    reader: Reader
    config_dir: str
    server_root: str | None = None
    defined: dict[str, str] = field(default_factory=dict)

    @property
    def base(self) -> str:
        """What relative paths are relative to: ServerRoot when set, else the main config's directory."""
        return self.server_root or self.config_dir

    def parse_text(self, path: str, text: str, into: list[Directive]) -> None:
        """Directives of one file into ``into``; sections must close in the file that opens them (as in httpd)."""
        stack: list[list[Directive]] = [into]
        openers: list[Directive] = []
        for number, line in _logical_lines(text):
            line = substitute(line, self.defined)
            if line.startswith("</"):
                name = line[2:].rstrip(">").strip()
                if not openers:
                    self.reader.syntax(path, number, f"</{name}> without a matching <{name}>")
                    return
                if name.lower() != openers[-1].name.lower():
                    self.reader.syntax(path, number, f"</{name}> closes <{openers[-1].name}> opened on line "
                                       f"{openers[-1].line}")
                    return
                stack.pop()
                openers.pop()
                continue
            if line.startswith("<"):
                if not line.endswith(">"):
                    self.reader.syntax(path, number, f"section {line.split()[0]}> is missing its closing '>'")
                    return
                if len(stack) > MAX_NESTING:
                    self.reader.syntax(path, number, f"sections nested deeper than {MAX_NESTING}")
                    return
                name, rest = _split_name(line[1:-1])
                if not name:
                    self.reader.syntax(path, number, "section without a name")
                    return
                args, unterminated = _args(rest)
                if unterminated:
                    self.reader.syntax(path, number, "unterminated quoted string")
                block: list[Directive] = []
                section = Directive(name, tuple(args), path, number, block)
                stack[-1].append(section)
                stack.append(block)
                openers.append(section)
                continue
            name, rest = _split_name(line)
            args, unterminated = _args(rest)
            if unterminated:
                self.reader.syntax(path, number, "unterminated quoted string")
            directive = Directive(name, tuple(args), path, number)
            self.read_time(directive, stack[-1])
        if openers:
            opener = openers[-1]
            self.reader.syntax(path, opener.line, f"<{opener.name}> opened here is never closed")

    def read_time(self, directive: Directive, into: list[Directive]) -> None:
        """Directives httpd runs while reading (includes, ServerRoot, Define); everything else is kept."""
        name = directive.name.lower()
        if name in ("include", "includeoptional"):
            self.include(directive, into, optional=name == "includeoptional")
            return
        if name == "serverroot" and len(directive.args) == 1:
            self.server_root = absolute(self.config_dir, directive.args[0])
        elif name == "define" and directive.args:
            self.defined[directive.args[0]] = directive.args[1] if len(directive.args) > 1 else ""
        elif name == "undefine" and directive.args:
            self.defined.pop(directive.args[0], None)
        into.append(directive)

    def include(self, directive: Directive, into: list[Directive], *, optional: bool) -> None:
        """``Include`` / ``IncludeOptional``: a file, a directory (read whole) or a glob, relative to ServerRoot."""
        if len(directive.args) != 1:
            self.reader.syntax(directive.path, directive.line, f"{directive.name} takes exactly one path")
            return
        pattern = absolute(self.base, directive.args[0])
        if has_glob(pattern):
            targets = expand_glob(pattern)
            if not targets and not optional:
                self.reader.unreadable(directive.path, directive.line, pattern, "the wildcard matches no file",
                                       directive=directive.name,
                                       fix=f"Use IncludeOptional for {pattern}, or correct the pattern.")
        elif Path(pattern).is_dir():
            targets = files_under(pattern)
        elif optional and not Path(pattern).exists():
            targets = []
        else:
            targets = [pattern]
        for target in targets:
            nested = files_under(target) if Path(target).is_dir() else [target]
            for file in nested:
                self.reader.include(file, directive.path, directive.line, directive.name,
                                    lambda path, text: self.parse_text(path, text, into))


@dataclass(slots=True)
class _Server:
    """The main server or one virtual host, as far as TLS goes."""

    section: Directive | None
    name: str | None = None
    aliases: list[str] = field(default_factory=list)
    engine: bool | None = None
    certs: list[Directive] = field(default_factory=list)
    keys: list[Directive] = field(default_factory=list)
    chain: Directive | None = None


@dataclass(slots=True)
class _Listen:
    directive: Directive
    address: str | None
    port: int


@dataclass(slots=True)
class _Walker:
    reader: Reader
    main: _Server = field(default_factory=lambda: _Server(None))
    vhosts: list[tuple[Directive, _Server]] = field(default_factory=list)
    listens: list[_Listen] = field(default_factory=list)

    def visit(self, block: list[Directive], server: _Server) -> None:
        """Sections are transparent except ``<VirtualHost>``, macro bodies and ``<IfModule !mod_ssl.c>``."""
        for directive in block:
            name = directive.name.lower()
            if directive.block is not None:
                if name == "virtualhost":
                    if server.section is not None:
                        self.reader.syntax(directive.path, directive.line,
                                           "<VirtualHost> inside another <VirtualHost>")
                        continue
                    vhost = _Server(directive)
                    self.visit(directive.block, vhost)
                    self.vhosts.append((directive, vhost))
                elif name in _SKIPPED_SECTIONS or (name == "ifmodule" and _negates_ssl(directive.args)):
                    continue
                else:
                    self.visit(directive.block, server)
                continue
            self.setting(directive, name, server)

    def setting(self, directive: Directive, name: str, server: _Server) -> None:
        args = directive.args
        if name == "servername" and len(args) == 1:
            server.name = _host_of(args[0])
        elif name == "serveralias":
            server.aliases.extend(args)
        elif name == "sslengine":
            value = args[0].lower() if len(args) == 1 else ""
            if value not in ("on", "off", "optional"):
                self.reader.syntax(directive.path, directive.line, "SSLEngine takes on, off or optional")
                return
            server.engine = value == "on"
        elif name == "sslcertificatefile":
            server.certs.append(directive)
        elif name == "sslcertificatekeyfile":
            server.keys.append(directive)
        elif name == "sslcertificatechainfile":
            server.chain = directive
        elif name == "listen" and server.section is None:
            self.listen(directive)

    def listen(self, directive: Directive) -> None:
        if not directive.args:
            self.reader.syntax(directive.path, directive.line, "Listen without an address")
            return
        target = directive.args[0]
        address, port_text = (None, target) if target.isdigit() else split_host_port(target)
        port = parse_port(port_text or "")
        if port is None:
            self.reader.syntax(directive.path, directive.line, f"Listen {target}: invalid port")
            return
        self.listens.append(_Listen(directive, address, port))


def _negates_ssl(args: tuple[str, ...]) -> bool:
    """``<IfModule !mod_ssl.c>``: never TLS config, and often the plain-HTTP twin of it."""
    return bool(args) and args[0].startswith("!") and "ssl" in args[0].lower()


def _host_of(server_name: str) -> str:
    """``ServerName [scheme://]host[:port]`` reduced to the host."""
    _, _, rest = server_name.rpartition("://")
    if rest.startswith("["):
        return rest[: rest.find("]") + 1] if "]" in rest else rest
    return rest.split(":", 1)[0]


def _merge(vhost: list[Directive], main: list[Directive]) -> list[Directive]:
    """mod_ssl's merge: the virtual host's entries replace the main server's by position, the rest inherit."""
    return vhost + main[len(vhost):]


@dataclass(slots=True)
class _Builder:
    reader: Reader
    base: str
    refs: list[MaterialRef] = field(default_factory=list)

    def paths(self, directives: list[Directive]) -> tuple[str, ...]:
        out: list[str] = []
        for directive in directives:
            if len(directive.args) != 1:
                self.reader.syntax(directive.path, directive.line, f"{directive.name} takes exactly one path")
                continue
            value = directive.args[0]
            if value.startswith("pkcs11:"):
                continue                  # a token URI, not a file
            if "${" in value:
                self.reader.variable(directive.path, directive.line, f"{directive.name} {value} uses a variable "
                                     "that the config does not Define (it may come from the environment)")
                continue
            path = absolute(self.base, value)
            self.refs.append(MaterialRef(path, directive.path, directive.line, directive.name))
            out.append(path)
        return unique(out)

    def listener(self, at: Directive, address: str | None, port: int, server: _Server,
                 main: _Server) -> ConfiguredListener:
        name = server.name or main.name
        names = unique(([name] if name else []) + server.aliases)
        chain = server.chain or main.chain
        return ConfiguredListener(
            server="apache", config_path=at.path, line=at.line, address=address, port=port,
            server_names=names,
            certificate_paths=self.paths(_merge(server.certs, main.certs)),
            key_paths=self.paths(_merge(server.keys, main.keys)),
            chain_paths=self.paths([chain] if chain else []),
        )


def read_apache(path: str | os.PathLike[str], *, server_root: str | None = None) -> ConfigScan:
    """The TLS listeners of an Apache httpd config tree.

    ``server_root`` is httpd's ``-d``: where relative paths point until the config sets ``ServerRoot``.
    Without either, they are relative to the config file's directory.
    """
    root = cwd_absolute(path)
    reader = Reader("apache", root)
    config_dir = directory_of(root)
    parser = _Parser(reader, config_dir, cwd_absolute(server_root) if server_root else None)
    tree: list[Directive] = []
    text = reader.read(root)
    if text is not None:
        reader.enter_root()
        parser.parse_text(root, text, tree)
    walker = _Walker(reader)
    walker.visit(tree, walker.main)
    builder = _Builder(reader, parser.base)
    main = walker.main

    listeners: list[ConfiguredListener] = []
    vhost_ports: set[int] = set()
    for section, vhost in walker.vhosts:
        engine = vhost.engine if vhost.engine is not None else main.engine
        targets: list[tuple[str | None, int]] = []
        invalid = False
        for target in section.args:
            address, port_text = split_host_port(target)
            if address == "_default_":
                address = None
            if port_text is None or port_text == "*":
                targets.extend((address, lst.port) for lst in walker.listens)
                continue
            port = parse_port(port_text)
            if port is None:
                reader.syntax(section.path, section.line, f"<VirtualHost {target}>: invalid port")
                invalid = True
                continue
            targets.append((address, port))
            vhost_ports.add(port)
        if not engine:
            continue
        if not targets and not invalid:
            reader.syntax(section.path, section.line,
                          "<VirtualHost> with SSLEngine on has no port (no port given and no Listen)")
        for address, port in dict.fromkeys(targets):
            listeners.append(builder.listener(section, address, port, vhost, main))
    if main.engine:
        # The main server answers on the Listen ports no virtual host claims.
        for lst in walker.listens:
            if lst.port not in vhost_ports:
                listeners.append(builder.listener(lst.directive, lst.address, lst.port, main, main))
    reader.check(builder.refs)
    return reader.scan(listeners)

