"""Receiver configuration: where notifications go, validated once at load time so sending never meets a typo.

The input is the parsed config document (TOML or YAML); receivers live under its ``receivers`` key, either as a
table keyed by receiver name (TOML ``[receivers.oncall]``) or as a list of tables each with a ``name``::

    [receivers.oncall]
    kind = "pagerduty"
    url = "https://events.pagerduty.com/v2/enqueue"   # the default for kind pagerduty
    routing_key = "env:TLSWARD_PD_KEY"

    [receivers.mail]
    kind = "email"
    host = "smtp.example.com"     # port defaults to 587 (starttls), 465 (tls), 25 (plain)
    security = "starttls"         # "starttls" (default), "tls" (implicit TLS), "plain" (localhost only)
    username = "tlsward"          # optional; username and password come together
    password = "env:SMTP_PASSWORD"
    from = "tlsward@example.com"
    to = ["oncall@example.com"]
    ca_file = "/etc/ssl/internal-ca.pem"   # optional: verify the server against this CA only

Keys per kind (``timeout`` in seconds, default 10, and ``ca_file`` are accepted by every kind):

* ``webhook``, ``slack``: ``url`` (required), ``headers`` (table of strings);
* ``pagerduty``: ``routing_key`` (required), ``url``, ``headers``;
* ``alertmanager``: ``url`` (base URL, ``/api/v2/alerts`` is appended), ``headers``, ``generator_url``,
  ``firing_ttl`` (seconds, default 7 days: firing alerts carry ``endsAt = now + ttl``, so Alertmanager's
  ``resolve_timeout`` never resolves an alert that still fires; tlsward sends the resolve itself);
* ``email``: ``host``, ``from``, ``to`` (required), ``port``, ``security``, ``username``, ``password``.

Secrets (``url``, header values, ``routing_key``, ``username``, ``password``) may be written ``env:VAR`` and are
read from the environment at load time. Every error is one :class:`~tlsward.model.errors.UsageError` line naming
the receiver and the key. Secrets never appear in ``repr()``: a config object is safe to log.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tlsward.model.errors import UsageError

__all__ = [
    "DEFAULT_TIMEOUT",
    "PAGERDUTY_EVENTS_URL",
    "ReceiverConfig",
    "ReceiverKind",
    "SmtpConfig",
    "SmtpSecurity",
    "is_loopback_host",
    "receivers_from_mapping",
]

DEFAULT_TIMEOUT = 10.0
ALERTMANAGER_FIRING_TTL = 7 * 86400.0
MAX_TIMEOUT = 300.0
PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
ENV_PREFIX = "env:"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_FORBIDDEN_HEADERS = frozenset({"content-length", "host", "transfer-encoding", "connection"})
_ADDRESS = re.compile(r"^[^\s<>,;\"@]+@[^\s<>,;\"@]+$")


class ReceiverKind(StrEnum):
    WEBHOOK = "webhook"
    SLACK = "slack"
    EMAIL = "email"
    PAGERDUTY = "pagerduty"
    ALERTMANAGER = "alertmanager"


class SmtpSecurity(StrEnum):
    """STARTTLS never falls back to plain text; ``plain`` exists only for a relay on the same host."""

    STARTTLS = "starttls"
    TLS = "tls"
    PLAIN = "plain"


_DEFAULT_SMTP_PORT = {SmtpSecurity.STARTTLS: 587, SmtpSecurity.TLS: 465, SmtpSecurity.PLAIN: 25}


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    host: str
    port: int
    sender: str
    recipients: tuple[str, ...]
    security: SmtpSecurity = SmtpSecurity.STARTTLS
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class ReceiverConfig:
    """One named receiver. ``url`` and header values may hold secrets (a Slack URL is one): see :attr:`target`."""

    name: str
    kind: ReceiverKind
    url: str | None = field(default=None, repr=False)
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    timeout: float = DEFAULT_TIMEOUT
    ca_file: Path | None = None
    routing_key: str | None = field(default=None, repr=False)
    smtp: SmtpConfig | None = None
    generator_url: str | None = None
    firing_ttl: float | None = None

    @property
    def target(self) -> str:
        """Where this receiver sends, without secrets: ``scheme://host:port`` or ``smtp://host:port``."""
        if self.smtp is not None:
            scheme = "smtps" if self.smtp.security is SmtpSecurity.TLS else "smtp"
            return f"{scheme}://{_host_port(self.smtp.host, self.smtp.port)}"
        if self.url is None:
            return "(no url)"
        parts = urlsplit(self.url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return f"{parts.scheme}://{_host_port(parts.hostname or '', port)}"


def is_loopback_host(host: str) -> bool:
    """``localhost`` or a loopback address: the only place plain SMTP may go."""
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# Keys each kind accepts, besides "name" and "kind".
_COMMON = frozenset({"timeout", "ca_file"})
_HTTP = _COMMON | {"url", "headers"}
_KEYS: dict[ReceiverKind, frozenset[str]] = {
    ReceiverKind.WEBHOOK: _HTTP,
    ReceiverKind.SLACK: _HTTP,
    ReceiverKind.PAGERDUTY: _HTTP | {"routing_key"},
    ReceiverKind.ALERTMANAGER: _HTTP | {"generator_url", "firing_ttl"},
    ReceiverKind.EMAIL: _COMMON | {"host", "port", "security", "username", "password", "from", "to"},
}


def receivers_from_mapping(
    data: Mapping[str, Any],
    *,
    environ: Mapping[str, str] | None = None,
    base_dir: Path | None = None,
) -> list[ReceiverConfig]:
    """The receivers under ``data["receivers"]`` (none if the key is absent), validated.

    ``environ`` resolves ``env:VAR`` secrets (default: ``os.environ``); ``base_dir`` anchors a relative
    ``ca_file`` (pass the config file's directory; default: the working directory).
    """
    if not isinstance(data, Mapping):
        raise UsageError(f"receivers config: expected a table, got {_type(data)}")
    raw = data.get("receivers")
    if raw is None:
        return []
    entries: list[tuple[str, Any]] = []
    if isinstance(raw, Mapping):
        entries = [(str(name), table) for name, table in raw.items()]
        for name, table in entries:
            if isinstance(table, Mapping) and "name" in table and table["name"] != name:
                raise UsageError(f"receiver {name!r}: key 'name': {table['name']!r} differs from the table name")
    elif isinstance(raw, list):
        for index, table in enumerate(raw):
            if not isinstance(table, Mapping):
                raise UsageError(f"receivers[{index}]: expected a table, got {_type(table)}")
            given = table.get("name")
            if not isinstance(given, str):
                problem = "missing" if given is None else f"expected a string, got {_type(given)}"
                raise UsageError(f"receivers[{index}]: key 'name': {problem}")
            entries.append((given, table))
    else:
        raise UsageError(f"key 'receivers': expected a table of receivers or a list of tables, got {_type(raw)}")
    env = os.environ if environ is None else environ
    seen: set[str] = set()
    receivers: list[ReceiverConfig] = []
    for name, table in entries:
        if not _NAME.match(name):
            raise UsageError(f"receiver {name!r}: key 'name': use 1-64 letters, digits, '_', '.' or '-'")
        if name in seen:
            raise UsageError(f"receiver {name!r}: defined twice")
        seen.add(name)
        if not isinstance(table, Mapping):
            raise UsageError(f"receiver {name!r}: expected a table, got {_type(table)}")
        receivers.append(_Reader(name, table, env, base_dir).receiver())
    return receivers


class _Reader:
    """Reads one receiver table; every error names the receiver and the key."""

    def __init__(self, name: str, table: Mapping[str, Any], environ: Mapping[str, str], base_dir: Path | None):
        self.name = name
        self.table = table
        self.environ = environ
        self.base_dir = base_dir

    def fail(self, key: str, problem: str) -> UsageError:
        return UsageError(f"receiver {self.name!r}: key {key!r}: {problem}")

    def receiver(self) -> ReceiverConfig:
        kind_text = self.required("kind")
        try:
            kind = ReceiverKind(kind_text)
        except ValueError:
            kinds = ", ".join(k.value for k in ReceiverKind)
            raise self.fail("kind", f"unknown kind {kind_text!r}; expected one of {kinds}") from None
        allowed = _KEYS[kind] | {"name", "kind"}
        for key in self.table:
            if key not in allowed:
                expected = ", ".join(sorted(_KEYS[kind]))
                raise self.fail(str(key), f"not a key of kind {kind.value!r} (expected one of: {expected})")
        timeout = self.number("timeout", maximum=MAX_TIMEOUT) or DEFAULT_TIMEOUT
        ca_file = self.path("ca_file")
        if kind is ReceiverKind.EMAIL:
            return ReceiverConfig(self.name, kind, timeout=timeout, ca_file=ca_file, smtp=self.smtp())
        default_url = PAGERDUTY_EVENTS_URL if kind is ReceiverKind.PAGERDUTY else None
        url = self.url("url", secret=True, default=default_url)
        routing_key = self.required("routing_key", secret=True) if kind is ReceiverKind.PAGERDUTY else None
        generator_url = self.url("generator_url", secret=False, default=None, required=False)
        firing_ttl = self.number("firing_ttl", maximum=365 * 86400.0)
        if kind is ReceiverKind.ALERTMANAGER and firing_ttl is None:
            # The monitor re-sends a firing alert only every few hours (and never once acked): without an
            # endsAt, Alertmanager's resolve_timeout (5 min) would resolve it behind our back.
            firing_ttl = ALERTMANAGER_FIRING_TTL
        return ReceiverConfig(self.name, kind, url=url, headers=self.headers(), timeout=timeout, ca_file=ca_file,
                              routing_key=routing_key, generator_url=generator_url, firing_ttl=firing_ttl)

    def smtp(self) -> SmtpConfig:
        host = self.required("host")
        if any(c.isspace() for c in host) or "/" in host:
            raise self.fail("host", f"{host!r} is not a host name or address")
        security_text = self.string("security") or SmtpSecurity.STARTTLS.value
        try:
            security = SmtpSecurity(security_text)
        except ValueError:
            choices = ", ".join(s.value for s in SmtpSecurity)
            raise self.fail("security", f"unknown value {security_text!r}; expected one of {choices}") from None
        if security is SmtpSecurity.PLAIN and not is_loopback_host(host):
            raise self.fail("security", f"plain SMTP is only allowed to localhost, not {host!r}; use starttls or tls")
        port = self.integer("port", _DEFAULT_SMTP_PORT[security])
        username = self.string("username", secret=True)
        password = self.string("password", secret=True)
        if (username is None) != (password is None):
            missing = "password" if password is None else "username"
            raise self.fail(missing, "missing: username and password come together")
        sender = self.address("from")
        recipients = self.addresses("to")
        return SmtpConfig(host, port, sender, recipients, security, username, password)

    # -- typed readers -------------------------------------------------------------------------------------------

    def required(self, key: str, *, secret: bool = False) -> str:
        value = self.string(key, secret=secret)
        if value is None:
            raise self.fail(key, "missing")
        return value

    def string(self, key: str, *, secret: bool = False) -> str | None:
        value = self.table.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.fail(key, f"expected a string, got {_type(value)}")
        if secret:
            value = self.secret(key, value)
        if not value.strip():
            raise self.fail(key, "empty")
        if "\r" in value or "\n" in value:
            raise self.fail(key, "contains a line break")
        return value

    def secret(self, key: str, value: str) -> str:
        if not value.startswith(ENV_PREFIX):
            return value
        var = value[len(ENV_PREFIX):]
        if not var:
            raise self.fail(key, "'env:' names no environment variable")
        resolved = self.environ.get(var)
        if not resolved:
            raise self.fail(key, f"environment variable {var} is not set")
        return resolved

    def url(self, key: str, *, secret: bool, default: str | None, required: bool = True) -> str | None:
        value = self.string(key, secret=secret)
        if value is None:
            if default is None and required:
                raise self.fail(key, "missing")
            return default
        shown = "the URL" if secret else repr(value)   # a Slack URL is a credential: never echo it
        try:
            parts = urlsplit(value)
            _ = parts.port
        except ValueError:
            raise self.fail(key, f"{shown} is malformed") from None
        if parts.scheme not in ("http", "https"):
            raise self.fail(key, f"{shown} is not an http:// or https:// URL")
        if not parts.hostname:
            raise self.fail(key, f"{shown} has no host")
        return value

    def headers(self) -> tuple[tuple[str, str], ...]:
        raw = self.table.get("headers")
        if raw is None:
            return ()
        if not isinstance(raw, Mapping):
            raise self.fail("headers", f"expected a table of strings, got {_type(raw)}")
        pairs: list[tuple[str, str]] = []
        for header, value in raw.items():
            key = f"headers.{header}"
            if not isinstance(header, str) or not _HEADER_NAME.match(header):
                raise self.fail(key, "not a valid HTTP header name")
            if header.lower() in _FORBIDDEN_HEADERS:
                raise self.fail(key, "set by the HTTP client; it cannot be configured")
            if not isinstance(value, str):
                raise self.fail(key, f"expected a string, got {_type(value)}")
            value = self.secret(key, value)
            if "\r" in value or "\n" in value:
                raise self.fail(key, "contains a line break")
            pairs.append((header, value))
        return tuple(pairs)

    def number(self, key: str, *, maximum: float) -> float | None:
        value = self.table.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(key, f"expected a number of seconds, got {_type(value)}")
        if not 0 < value <= maximum:
            raise self.fail(key, f"{value} is out of range (0 < seconds <= {maximum:g})")
        return float(value)

    def integer(self, key: str, default: int) -> int:
        value = self.table.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, f"expected an integer, got {_type(value)}")
        if not 1 <= value <= 65535:
            raise self.fail(key, f"{value} is not a port number (1-65535)")
        return value

    def path(self, key: str) -> Path | None:
        value = self.string(key)
        if value is None:
            return None
        path = Path(value).expanduser()
        if not path.is_absolute() and self.base_dir is not None:
            path = self.base_dir / path
        if not path.is_file():
            raise self.fail(key, f"{path}: no such file")
        return path

    def address(self, key: str) -> str:
        value = self.required(key)
        if not _ADDRESS.match(value):
            raise self.fail(key, f"{value!r} is not a plain mail address (user@domain)")
        return value

    def addresses(self, key: str) -> tuple[str, ...]:
        raw = self.table.get(key)
        if isinstance(raw, str):
            raw = [raw]
        if raw is None:
            raise self.fail(key, "missing")
        if not isinstance(raw, list) or not raw:
            raise self.fail(key, f"expected a mail address or a non-empty list of them, got {_type(raw)}")
        addresses: list[str] = []
        for value in raw:
            if not isinstance(value, str) or not _ADDRESS.match(value):
                raise self.fail(key, f"{value!r} is not a plain mail address (user@domain)")
            addresses.append(value)
        return tuple(addresses)


def _type(value: object) -> str:
    if value is None:
        return "nothing"
    names = {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "a list"}
    for cls, name in names.items():
        if isinstance(value, cls):
            return name
    return "a table" if isinstance(value, Mapping) else type(value).__name__
