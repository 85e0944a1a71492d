"""Access-log parsers: one line in, a :class:`LogEntry` out (None for a line no parser understands).

nginx, HAProxy and Apache are configured to write the same layout, so one set of primitives reads all three::

    ADDRESS [TIME] "REQUEST" STATUS "USER AGENT" PROTOCOL CIPHER SNI PORT

* ``TIME`` is either nginx's ``$time_iso8601`` (``2026-03-01T12:34:56+00:00``) or the common-log form
  (``01/Mar/2026:12:34:56 +0000``: nginx ``$time_local``, Apache ``%t``, HAProxy ``%T``);
* the user agent is the last quoted field; everything after the last ``"`` is the TLS tail: ``PROTOCOL CIPHER
  SNI`` then, optionally, the local ``PORT`` and a ``HOST`` (used as the endpoint name when the client sent no
  SNI). Anything may stand between the time and the user agent (so the "combined" format with the TLS fields
  appended is read too);
* the time is the first `` [...]`` (a ``[`` after a space); the address is the first field (nginx, Apache), or
  the field just before the time for HAProxy, whose lines may carry a syslog prefix (``haproxy[PID]:``).

The configuration lines users copy are :data:`NGINX_LOG_FORMAT`, :data:`HAPROXY_LOG_FORMAT`,
:data:`APACHE_LOG_FORMAT` and :data:`ENVOY_LOG_FORMAT` (docs/logs.md shows them with their variants).

A request over plain HTTP (``-`` as the protocol) is a valid entry with protocol and cipher ``""``
(:data:`~tlsward.model.clientlogs.PLAIN`). Nothing here raises on any input: binary, huge lines, bad UTF-8
(already replaced by the reader), lone surrogates or NULs give None or an entry.

The functions the ingester's hot loop shares with :func:`parse_line` (:func:`resolve_tail`, :func:`parse_time`,
:func:`network_of`) are exposed so that the fast fold and the reference parser cannot disagree.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import re
from collections.abc import Callable

from tlsward.model.clientlogs import LOG_FORMATS, PLAIN, LogEntry, LogFormat

__all__ = [
    "APACHE_LOG_FORMAT",
    "ENVOY_LOG_FORMAT",
    "HAPROXY_LOG_FORMAT",
    "MAX_USER_AGENT",
    "NGINX_LOG_FORMAT",
    "PARSERS",
    "PROTOCOLS",
    "address_after_bracket",
    "network_of",
    "parse_apache",
    "parse_envoy",
    "parse_haproxy",
    "parse_line",
    "parse_nginx",
    "parse_time",
    "resolve_tail",
    "user_agent_of",
]

NGINX_LOG_FORMAT = ("log_format tlsward '$remote_addr [$time_iso8601] \"$request\" $status \"$http_user_agent\" "
                    "$ssl_protocol $ssl_cipher $ssl_server_name $server_port';")
HAPROXY_LOG_FORMAT = ("log-format \"%ci [%T] %{+Q}r %ST %{+Q}[capture.req.hdr(0)] %sslv %sslc %[ssl_fc_sni] %fp\"")
APACHE_LOG_FORMAT = ('LogFormat "%a %t \\"%r\\" %>s \\"%{User-Agent}i\\" %{SSL_PROTOCOL}x %{SSL_CIPHER}x '
                     '%{SSL_TLS_SNI}x %p" tlsward')
ENVOY_LOG_FORMAT = """json_format:
  start_time: "%START_TIME%"
  downstream_remote_address: "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%"
  downstream_tls_version: "%DOWNSTREAM_TLS_VERSION%"
  downstream_tls_cipher: "%DOWNSTREAM_TLS_CIPHER%"
  requested_server_name: "%REQUESTED_SERVER_NAME%"
  downstream_local_port: "%DOWNSTREAM_LOCAL_PORT%"
  user_agent: "%REQ(USER-AGENT)%"
  authority: "%REQ(:AUTHORITY)%\""""

# What servers log as the protocol (OpenSSL's SSL_get_version, BoringSSL's for Envoy) → tlsward's names.
PROTOCOLS = {"TLSv1.3": "TLSv1.3", "TLSv1.2": "TLSv1.2", "TLSv1.1": "TLSv1.1", "TLSv1": "TLSv1.0",
             "TLSv1.0": "TLSv1.0", "SSLv3": "SSLv3", "SSLv2": "SSLv2", "-": PLAIN}
MAX_USER_AGENT = 256            # characters kept of a user agent
MAX_NAME = 253                  # a DNS name
EARLIEST, LATEST = 0.0, 32_503_680_000.0   # 1970 to 3000: a time outside is a malformed line

_CIPHER = re.compile(r"[A-Za-z0-9_-]{1,96}", re.ASCII)
_NAME = re.compile(r"[A-Za-z0-9_*][A-Za-z0-9_.*-]*|\[[0-9A-Fa-f:.]+\]", re.ASCII)   # DNS name, IPv4 or [IPv6]
_PORT = re.compile(r"[0-9]{1,5}", re.ASCII)
_LOCAL_TIME = re.compile(r"([0-9]{2})/([A-Z][a-z]{2})/([0-9]{4}):([0-9]{2}):([0-9]{2}):([0-9]{2}) ([+-])([0-9]{2})"
                         r"([0-9]{2})", re.ASCII)
_ISO_TIME = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})[T ]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:[.,]([0-9]{1,9}))?"
                       r"(?:(Z)|([+-])([0-9]{2}):?([0-9]{2}))?", re.ASCII)
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_IPV4 = re.compile(rf"((?:{_OCTET}\.){{3}}){_OCTET}", re.ASCII)
_MONTHS = {name: number for number, name in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), start=1)}


def parse_time(text: str) -> float | None:
    """Seconds since the epoch of a logged time: the common-log form (``01/Mar/2026:12:34:56 +0000``) or ISO 8601
    (``2026-03-01T12:34:56+00:00``, ``...56.789Z``; no offset means UTC). None if it is neither, or outside
    1970-3000."""
    if (match := _LOCAL_TIME.fullmatch(text)) is not None:
        day, month, year, hour, minute, second, sign, off_h, off_m = match.groups()
        if (number := _MONTHS.get(month)) is None:
            return None
        fields = (int(year), number, int(day), int(hour), int(minute), int(second), 0)
        offset = (int(off_h) * 60 + int(off_m)) * (-1 if sign == "-" else 1)
    elif (match := _ISO_TIME.fullmatch(text)) is not None:
        year, month, day, hour, minute, second, fraction, zulu, sign, off_h, off_m = match.groups()
        fields = (int(year), int(month), int(day), int(hour), int(minute), int(second),
                  int((fraction or "0")[:6].ljust(6, "0")))
        offset = 0 if zulu or not sign else (int(off_h) * 60 + int(off_m)) * (-1 if sign == "-" else 1)
    else:
        return None
    if offset <= -24 * 60 or offset >= 24 * 60:
        return None
    try:
        moment = dt.datetime(*fields, tzinfo=dt.timezone(dt.timedelta(minutes=offset))).timestamp()
    except (ValueError, OverflowError):
        return None
    return moment if EARLIEST <= moment < LATEST else None


def _endpoint(sni: str, port: str, host: str) -> str | None:
    """``name:port`` (``name`` alone without a port): the SNI, else the host, else ``*``; None if malformed."""
    name = sni if sni not in ("-", "") else host if host not in ("-", "") else "*"
    if len(name) > MAX_NAME or _NAME.fullmatch(name) is None:
        return None
    name = name.lower().rstrip(".") or "*"
    if not port or port == "-":
        return name
    if _PORT.fullmatch(port) is None or not 0 < int(port) < 65536:
        return None
    return f"{name}:{int(port)}"


def _protocol_cipher(protocol: str, cipher: str) -> tuple[str, str] | None:
    normal = PROTOCOLS.get(protocol)
    if normal is None:
        return None
    if normal == PLAIN:
        return (PLAIN, PLAIN) if cipher in ("-", "") else None
    if cipher == "-" or _CIPHER.fullmatch(cipher) is None:
        return None
    return normal, cipher


def resolve_tail(tail: str) -> tuple[str, str, str] | None:
    """``(endpoint, protocol, cipher)`` from the fields after the user agent (``PROTOCOL CIPHER SNI [PORT
    [HOST]]``), or None when they are not that."""
    fields = tail.split()
    if not 3 <= len(fields) <= 5:
        return None
    pair = _protocol_cipher(fields[0], fields[1])
    if pair is None:
        return None
    endpoint = _endpoint(fields[2], fields[3] if len(fields) > 3 else "", fields[4] if len(fields) > 4 else "")
    return None if endpoint is None else (endpoint, *pair)


def address_after_bracket(line: str, bracket: int) -> str:
    """HAProxy: the field just before `` [`` (its lines may start with a syslog prefix)."""
    if bracket < 1 or line[bracket - 1] != " ":
        return ""
    return line[line.rfind(" ", 0, bracket - 1) + 1:bracket - 1]


def user_agent_of(line: str, quote: int) -> str:
    """The last quoted field, closed at ``quote`` (the line's last ``"``); "" when there is none."""
    start = line.rfind(' "', 0, quote)
    return line[start + 2:quote][:MAX_USER_AGENT] if start >= 0 else ""


def _bracketed(line: str, address_before_bracket: bool) -> LogEntry | None:
    """The shared layout of nginx, HAProxy and Apache (module docstring). Exactly what the ingester's fast loop
    accepts (``tlsward.logs.ingest``)."""
    quote = line.rfind('"')
    if quote < 0:
        return None
    left = line.find(" [", 0, quote) + 1
    if not left:
        return None
    right = line.find("]", left, quote)
    if right < 0:
        return None
    at = parse_time(line[left + 1:right])
    resolved = resolve_tail(line[quote + 1:])
    if at is None or resolved is None:
        return None
    endpoint, protocol, cipher = resolved
    address = address_after_bracket(line, left) if address_before_bracket else line[:max(line.find(" "), 0)]
    return LogEntry(endpoint=endpoint, at=at, protocol=protocol, cipher=cipher, client=address,
                    user_agent=user_agent_of(line, quote))


def parse_nginx(line: str) -> LogEntry | None:
    """nginx with :data:`NGINX_LOG_FORMAT` (or "combined" with the TLS fields appended)."""
    return _bracketed(line, False)


def parse_apache(line: str) -> LogEntry | None:
    """Apache httpd with :data:`APACHE_LOG_FORMAT`."""
    return _bracketed(line, False)


def parse_haproxy(line: str) -> LogEntry | None:
    """HAProxy with :data:`HAPROXY_LOG_FORMAT` (raw, or behind a syslog prefix)."""
    return _bracketed(line, True)


def _text(record: dict[str, object], *keys: str) -> str:
    for key in keys:
        value = record.get(key)
        if isinstance(value, str) and value not in ("", "-"):
            return value
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
    return ""


def _strip_port(address: str) -> str:
    """``1.2.3.4:5678`` → ``1.2.3.4``, ``[::1]:5678`` → ``::1``; anything else as it is."""
    if address.startswith("["):
        end = address.find("]")
        return address[1:end] if end > 0 else address
    if address.count(":") == 1:
        return address.partition(":")[0]
    return address


def parse_envoy(line: str) -> LogEntry | None:
    """One JSON object per line, with the keys of :data:`ENVOY_LOG_FORMAT` (``downstream_remote_address`` may
    carry the port; ``downstream_local_address`` is used for the port when ``downstream_local_port`` is absent)."""
    text = line.strip()
    if not text.startswith("{"):
        return None
    try:
        record = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(record, dict):
        return None
    at = parse_time(_text(record, "start_time"))
    protocol = _text(record, "downstream_tls_version") or "-"
    pair = _protocol_cipher(protocol, _text(record, "downstream_tls_cipher") or "-")
    port = _text(record, "downstream_local_port")
    if not port and (local := _text(record, "downstream_local_address")):
        port = local.rpartition(":")[2] if ":" in local else ""
    host = _text(record, "authority")
    host = _strip_port(host) if host else ""
    endpoint = _endpoint(_text(record, "requested_server_name"), port, host)
    if at is None or pair is None or endpoint is None:
        return None
    address = _strip_port(_text(record, "downstream_remote_address_without_port", "downstream_remote_address"))
    return LogEntry(endpoint=endpoint, at=at, protocol=pair[0], cipher=pair[1], client=address,
                    user_agent=_text(record, "user_agent")[:MAX_USER_AGENT])


PARSERS: dict[LogFormat, Callable[[str], LogEntry | None]] = {
    "nginx": parse_nginx, "haproxy": parse_haproxy, "apache": parse_apache, "envoy": parse_envoy}
assert set(PARSERS) == set(LOG_FORMATS)


def parse_line(log_format: LogFormat, line: str) -> LogEntry | None:
    """The entry one line of ``log_format`` says, or None when the line is malformed."""
    return PARSERS[log_format](line)


def network_of(address: str) -> str:
    """The client's network: ``a.b.c.0/24`` for IPv4 (also IPv4-mapped IPv6), the ``/48`` for IPv6, the address
    as logged (at most 64 characters) when it is not an IP address; ``?`` for none."""
    if (match := _IPV4.fullmatch(address)) is not None:     # the common case, 10x faster than ipaddress
        return f"{match.group(1)}0/24"
    text = _strip_port(address.strip())
    try:
        ip = ipaddress.ip_address(text.partition("%")[0])
    except ValueError:
        return text[:64] if text not in ("", "-", "*") else "?"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    prefix = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))
