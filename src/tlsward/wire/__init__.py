"""Ring 1: TLS bytes, sans I/O. Registries (cipher suites, groups, versions, alerts), the record layer and a
passive parser for a server's plaintext flight. Never touches a socket; imports only the stdlib and
``tlsward.model``."""

from __future__ import annotations

from tlsward.model.registry.alerts import Alert, AlertDescription, AlertLevel, alert_name
from tlsward.model.registry.cipher_suites import CIPHER_SUITES, CipherSuite, cipher_by_code, cipher_by_name, cipher_name
from tlsward.model.registry.groups import NAMED_GROUPS, NamedGroup, group_by_code, group_by_name, group_name
from tlsward.model.registry.versions import TlsVersion, is_tls13, version_name
from tlsward.wire.records import ContentType, NotTls, Record, RecordReader, sniff_not_tls
from tlsward.wire.server_messages import (
    CertificateRequest,
    HandshakeType,
    ServerFlightParser,
    ServerHello,
    ServerKeyExchange,
    parse_server_flight,
)

__all__ = [
    "CIPHER_SUITES",
    "NAMED_GROUPS",
    "Alert",
    "AlertDescription",
    "AlertLevel",
    "CertificateRequest",
    "CipherSuite",
    "ContentType",
    "HandshakeType",
    "NamedGroup",
    "NotTls",
    "Record",
    "RecordReader",
    "ServerFlightParser",
    "ServerHello",
    "ServerKeyExchange",
    "TlsVersion",
    "alert_name",
    "cipher_by_code",
    "cipher_by_name",
    "cipher_name",
    "group_by_code",
    "group_by_name",
    "group_name",
    "is_tls13",
    "parse_server_flight",
    "sniff_not_tls",
    "version_name",
]
