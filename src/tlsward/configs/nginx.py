"""nginx configs read into TLS listeners: ``http``, ``stream`` and ``mail`` servers with ``listen ... ssl``
(or the old ``ssl on;``), their ``server_name`` and their ``ssl_certificate`` / ``ssl_certificate_key`` pairs.

The tokenizer follows nginx's own (``ngx_conf_read_token``): words, quoted strings with backslash escapes,
``#`` comments at the start of a token, ``{`` ``}`` blocks and ``;``. ``include`` is expanded where it stands,
with globs, relative to the main config's directory (nginx's conf prefix), as nginx does when it reads.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from tlsward.configs._source import (
    Directive,
    MaterialRef,
    Reader,
    absolute,
    cwd_absolute,
    directory_of,
    expand_glob,
    has_glob,
    parse_port,
    split_host_port,
    unique,
)
from tlsward.model.discovery import ConfigScan, ConfiguredListener

# Deeper than this is not a real config; it also keeps the walk over the tree cheap and bounded.
MAX_NESTING = 64
DEFAULT_PORT = 80

# Whitespace and comments are skipped inside the pattern: a 10 MB config is mostly those.
_TOKEN = re.compile(
    r"""
    (?:\s+|\#[^\n]*)*
    (?:
      (?P<end>\Z)
    | (?P<dq>"(?:[^"\\]|\\.)*")
    | (?P<sq>'(?:[^'\\]|\\.)*')
    | (?P<punct>[{};])
    | (?P<word>(?:[^\s"'{};\\$]|\\.|\$\{[^}]*\}|\$)+)
    | (?P<bad>.)
    )
    """,
    re.VERBOSE | re.DOTALL,
)
_ESCAPE = re.compile(r"\\(.)", re.DOTALL)
_ESCAPES = {'"': '"', "'": "'", "\\": "\\", "t": "\t", "r": "\r", "n": "\n"}

# Contexts whose ``server`` blocks accept TLS listeners.
_CONTEXTS = ("http", "stream", "mail")


def _unescape(text: str) -> str:
    if "\\" not in text:
        return text
    return _ESCAPE.sub(lambda m: _ESCAPES.get(m.group(1), m.group(0)), text)


@dataclass(slots=True)
class _Parser:
    reader: Reader
    prefix: str                      # nginx's conf prefix: the main config's directory

    def parse_text(self, path: str, text: str, into: list[Directive]) -> None:
        """Tokens of ``text`` built into a tree in ``into``; stops at the first syntax error, keeping what it read."""
        stack: list[list[Directive]] = [into]
        openers: list[Directive] = []
        words: list[str] = []
        word_line = 0
        line = 1
        pos = 0
        for match in _TOKEN.finditer(text):
            kind = match.lastgroup
            if kind == "end" or kind is None:
                break
            start = match.start(kind)
            line += text.count("\n", pos, start)
            pos = start
            lexeme = match.group(kind)
            if kind == "word":
                if not words:
                    word_line = line
                words.append(_unescape(lexeme))
            elif kind == "dq" or kind == "sq":
                if not words:
                    word_line = line
                words.append(_unescape(lexeme[1:-1]))
            elif kind == "bad":
                what = "unterminated quoted string" if lexeme in "\"'" else f"unexpected {lexeme!r}"
                self.reader.syntax(path, line, what)
                return
            elif lexeme == ";":
                if not words:
                    self.reader.syntax(path, line, 'unexpected ";"')
                    return
                directive = Directive(words[0], tuple(words[1:]), path, word_line)
                words = []
                if directive.name == "include":
                    self.include(directive, stack[-1])
                else:
                    stack[-1].append(directive)
            elif lexeme == "{":
                if not words:
                    self.reader.syntax(path, line, 'unexpected "{"')
                    return
                if len(stack) > MAX_NESTING:
                    self.reader.syntax(path, line, f"blocks nested deeper than {MAX_NESTING}")
                    return
                block: list[Directive] = []
                directive = Directive(words[0], tuple(words[1:]), path, word_line, block)
                words = []
                stack[-1].append(directive)
                stack.append(block)
                openers.append(directive)
            else:  # "}"
                if words:
                    self.reader.syntax(path, word_line, f'directive "{words[0]}" is not terminated by ";"')
                    return
                if len(stack) == 1:
                    self.reader.syntax(path, line, 'unexpected "}" (unbalanced braces)')
                    return
                stack.pop()
                openers.pop()
        if words:
            self.reader.syntax(path, word_line, f'unexpected end of file: directive "{words[0]}" is not '
                               'terminated by ";"')
        elif openers:
            opener = openers[-1]
            self.reader.syntax(path, opener.line, f'the "{opener.name}" block opened here is never closed '
                               '(unbalanced braces)')

    def include(self, directive: Directive, into: list[Directive]) -> None:
        """``include PATTERN;`` read in place; a glob may match nothing, a plain path must exist."""
        if len(directive.args) != 1:
            self.reader.syntax(directive.path, directive.line, '"include" takes exactly one file or glob')
            return
        pattern = absolute(self.prefix, directive.args[0])
        targets = expand_glob(pattern) if has_glob(pattern) else [pattern]
        for target in targets:
            self.reader.include(target, directive.path, directive.line, "include",
                                lambda path, text: self.parse_text(path, text, into))


@dataclass(slots=True)
class _Listen:
    directive: Directive
    address: str | None
    port: int
    ssl: bool


@dataclass(slots=True)
class _Context:
    """One ``http`` / ``stream`` / ``mail`` block: its servers and what they inherit from it."""

    reader: Reader
    prefix: str
    body: list[Directive]
    refs: list[MaterialRef] = field(default_factory=list)

    def paths(self, directives: list[Directive]) -> list[str]:
        """Absolute file paths of ``ssl_certificate``-like directives; variables and inline data are not files."""
        out: list[str] = []
        for directive in directives:
            if len(directive.args) != 1:
                self.reader.syntax(directive.path, directive.line, f'"{directive.name}" takes exactly one path')
                continue
            value = directive.args[0]
            if value.startswith(("data:", "engine:", "store:")):
                continue            # inline PEM, an OpenSSL engine or store key: no file on disk
            if "$" in value:
                self.reader.variable(directive.path, directive.line,
                                     f"{directive.name} {value} uses a variable, resolved per connection")
                continue
            path = absolute(self.prefix, value)
            self.refs.append(MaterialRef(path, directive.path, directive.line, directive.name))
            out.append(path)
        return out

    def listeners(self) -> list[ConfiguredListener]:
        """Every TLS listener of this context, in config order."""
        body = self.body
        servers = [(d, d.block) for d in body if d.name == "server" and d.block is not None]
        outer_certs = [d for d in body if d.name == "ssl_certificate"]
        outer_keys = [d for d in body if d.name == "ssl_certificate_key"]
        outer_ssl = _ssl_flag(body, self.reader)

        parsed: list[tuple[list[Directive], list[_Listen]]] = []
        for server, block in servers:
            listens = [self.listen(d) for d in block if d.name == "listen"]
            found = [listen for listen in listens if listen is not None]
            if not any(d.name == "listen" for d in block):
                found = [_Listen(server, None, DEFAULT_PORT, False)]
            parsed.append((block, found))

        # nginx makes a socket TLS when any server on that address:port says ``ssl``.
        tls_sockets = {_socket(lst) for _, found in parsed for lst in found if lst.ssl}

        out: list[ConfiguredListener] = []
        for block, found in parsed:
            ssl_on = _ssl_flag(block, self.reader)
            if ssl_on is None:
                ssl_on = outer_ssl or False
            tls = [lst for lst in found if lst.ssl or ssl_on or _socket(lst) in tls_sockets]
            if not tls:
                continue
            certs = [d for d in block if d.name == "ssl_certificate"] or outer_certs
            keys = [d for d in block if d.name == "ssl_certificate_key"] or outer_keys
            cert_paths = unique(self.paths(certs))
            key_paths = unique(self.paths(keys))
            names = unique([name for d in block if d.name == "server_name" for name in d.args if name])
            for lst in tls:
                out.append(ConfiguredListener(
                    server="nginx", config_path=lst.directive.path, line=lst.directive.line,
                    address=lst.address, port=lst.port, server_names=names,
                    certificate_paths=cert_paths, key_paths=key_paths,
                ))
        return out

    def listen(self, directive: Directive) -> _Listen | None:
        """One ``listen``; None for unix sockets, QUIC/UDP (not TLS over TCP) and unreadable addresses."""
        if not directive.args:
            self.reader.syntax(directive.path, directive.line, '"listen" without an address')
            return None
        target, params = directive.args[0], directive.args[1:]
        if target.startswith("unix:") or "quic" in params or "udp" in params:
            return None
        if "$" in target:
            self.reader.syntax(directive.path, directive.line, f"listen {target}: variables are not allowed here")
            return None
        address, port_text = (None, target) if target.isdigit() else split_host_port(target)
        port = DEFAULT_PORT if port_text is None else parse_port(port_text)
        if port is None:
            self.reader.syntax(directive.path, directive.line, f"listen {target}: invalid port")
            return None
        return _Listen(directive, address, port, "ssl" in params)


def _socket(listen: _Listen) -> tuple[str, int]:
    """The socket a listen opens: ``listen 443`` and ``listen 0.0.0.0:443`` are the same one."""
    return listen.address or "0.0.0.0", listen.port  # noqa: S104 (a name for a socket, nothing binds here)


def _ssl_flag(body: list[Directive], reader: Reader) -> bool | None:
    """The old ``ssl on|off;`` of a block, None when the block does not say (it then inherits)."""
    flag: bool | None = None
    for directive in body:
        if directive.name != "ssl" or directive.block is not None:
            continue
        value = directive.args[0].lower() if len(directive.args) == 1 else ""
        if value not in ("on", "off"):
            reader.syntax(directive.path, directive.line, '"ssl" takes "on" or "off"')
            continue
        flag = value == "on"
    return flag


def read_nginx(path: str | os.PathLike[str]) -> ConfigScan:
    """The TLS listeners of an nginx config tree (``nginx.conf`` and everything it includes)."""
    root = cwd_absolute(path)
    reader = Reader("nginx", root)
    prefix = directory_of(root)
    parser = _Parser(reader, prefix)
    tree: list[Directive] = []
    text = reader.read(root)
    if text is not None:
        reader.enter_root()
        parser.parse_text(root, text, tree)
    listeners: list[ConfiguredListener] = []
    refs: list[MaterialRef] = []
    for directive in tree:
        if directive.name in _CONTEXTS and directive.block is not None:
            context = _Context(reader, prefix, directive.block)
            listeners.extend(context.listeners())
            refs.extend(context.refs)
    reader.check(refs)
    return reader.scan(listeners)
