"""What to scan: a host, a port, how to reach TLS there (direct or STARTTLS), and what name to send."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlsplit

from tlsward.model.errors import UsageError


class StartTLS(StrEnum):
    """Plain-text dialogues that upgrade a connection to TLS."""

    SMTP = "smtp"
    IMAP = "imap"
    POP3 = "pop3"
    FTP = "ftp"
    LDAP = "ldap"
    XMPP = "xmpp"
    POSTGRES = "postgres"
    MYSQL = "mysql"


@dataclass(frozen=True, slots=True)
class Scheme:
    port: int
    starttls: StartTLS | None = None
    http: bool = False   # an HTTP check runs after the handshake (HSTS) or instead of it (plain http)
    tls: bool = True


SCHEMES: dict[str, Scheme] = {
    "tls": Scheme(443),
    "https": Scheme(443, http=True),
    "http": Scheme(80, http=True, tls=False),
    "smtp": Scheme(25, StartTLS.SMTP),
    "submission": Scheme(587, StartTLS.SMTP),
    "smtps": Scheme(465),
    "imap": Scheme(143, StartTLS.IMAP),
    "imaps": Scheme(993),
    "pop3": Scheme(110, StartTLS.POP3),
    "pop3s": Scheme(995),
    "ftp": Scheme(21, StartTLS.FTP),
    "ldap": Scheme(389, StartTLS.LDAP),
    "ldaps": Scheme(636),
    "xmpp": Scheme(5222, StartTLS.XMPP),
    "postgres": Scheme(5432, StartTLS.POSTGRES),
    "postgresql": Scheme(5432, StartTLS.POSTGRES),
    "mysql": Scheme(3306, StartTLS.MYSQL),
}


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class Target:
    """One endpoint. ``host`` is a name or an IP literal (no brackets); ``sni`` is what the client asks
    for (None for an IP literal unless overridden); ``connect`` reaches a given address instead of DNS."""

    host: str
    port: int
    scheme: str = "tls"
    sni: str | None = None
    connect: str | None = None

    @property
    def starttls(self) -> StartTLS | None:
        return SCHEMES[self.scheme].starttls

    @property
    def speaks_tls(self) -> bool:
        return SCHEMES[self.scheme].tls

    @property
    def checks_http(self) -> bool:
        return SCHEMES[self.scheme].http

    @property
    def name(self) -> str:
        """The name certificates are checked against: the SNI name, else the host."""
        return self.sni or self.host

    @property
    def is_ip(self) -> bool:
        return _is_ip(self.host)

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        text = f"{host}:{self.port}"
        return text if self.scheme == "tls" else f"{self.scheme}://{text}"

    @classmethod
    def parse(cls, text: str, *, sni: str | None = None, connect: str | None = None) -> Target:
        """Parse ``host``, ``host:port``, ``[v6]:port``, ``v6``, or ``scheme://host[:port][/path]``.

        Raises :class:`UsageError` naming the input for anything else.
        """
        raw = text.strip()
        if not raw:
            raise UsageError("empty target")
        scheme = "tls"
        if "://" in raw:
            scheme = raw.split("://", 1)[0].lower()
            if scheme not in SCHEMES:
                known = ", ".join(sorted(SCHEMES))
                raise UsageError(f"target {text!r}: unknown scheme {scheme!r} (known: {known})")
            parts = urlsplit(raw)
            if parts.username or parts.password:
                raise UsageError(f"target {text!r}: credentials in the URL are not supported")
            try:
                host, port = parts.hostname, parts.port
            except ValueError as exc:
                raise UsageError(f"target {text!r}: {exc}") from None
            if not host:
                raise UsageError(f"target {text!r}: no host")
        else:
            host, port = cls._split_hostport(raw, text)
        if port is None:
            port = SCHEMES[scheme].port
        if not 0 < port < 65536:
            raise UsageError(f"target {text!r}: port {port} is out of range (1-65535)")
        host = host.rstrip(".").lower() if not _is_ip(host) else str(ipaddress.ip_address(host))
        if not _is_ip(host):
            cls._check_hostname(host, text)
        if connect is not None and not _is_ip(connect):
            raise UsageError(f"--connect {connect!r} is not an IP address")
        if sni is not None:
            cls._check_hostname(sni.rstrip(".").lower(), f"--sni {sni}")
        name = (sni.rstrip(".").lower() if sni else None) or (None if _is_ip(host) else host)
        return cls(host=host, port=port, scheme=scheme, sni=name, connect=connect)

    @staticmethod
    def _split_hostport(raw: str, text: str) -> tuple[str, int | None]:
        if raw.startswith("["):
            end = raw.find("]")
            if end < 0:
                raise UsageError(f"target {text!r}: missing ']' after IPv6 address")
            host, rest = raw[1:end], raw[end + 1:]
            if not _is_ip(host):
                raise UsageError(f"target {text!r}: {host!r} is not an IPv6 address")
            if not rest:
                return host, None
            if not rest.startswith(":"):
                raise UsageError(f"target {text!r}: expected ':port' after ']'")
            port_text = rest[1:]
        elif raw.count(":") > 1:
            if not _is_ip(raw):
                raise UsageError(f"target {text!r}: write IPv6 with a port as [addr]:port")
            return raw, None
        elif ":" in raw:
            host, port_text = raw.rsplit(":", 1)
        else:
            return raw, None
        if not port_text.isdigit():
            raise UsageError(f"target {text!r}: port {port_text!r} is not a number")
        return host, int(port_text)

    @staticmethod
    def _check_hostname(host: str, text: str) -> None:
        labels = host.split(".")
        if len(host) > 253 or not all(0 < len(label) <= 63 for label in labels) or not all(
            ch.isalnum() or ch in "-_*" for ch in host.replace(".", "")
        ):
            raise UsageError(f"target {text!r}: {host!r} is not a valid host name")
