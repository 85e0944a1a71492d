"""TLS alert levels and descriptions: every value in RFC 5246 and RFC 8446 (plus RFC 7301's and RFC 7507's)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class AlertLevel(IntEnum):
    WARNING = 1
    FATAL = 2


class AlertDescription(IntEnum):
    """``rfc_name`` is the spelling of the RFCs (``handshake_failure``), which is what people search for."""

    CLOSE_NOTIFY = 0
    UNEXPECTED_MESSAGE = 10
    BAD_RECORD_MAC = 20
    DECRYPTION_FAILED = 21            # reserved in TLS 1.2+
    RECORD_OVERFLOW = 22
    DECOMPRESSION_FAILURE = 30        # reserved in TLS 1.3
    HANDSHAKE_FAILURE = 40
    NO_CERTIFICATE = 41               # SSL 3.0 only
    BAD_CERTIFICATE = 42
    UNSUPPORTED_CERTIFICATE = 43
    CERTIFICATE_REVOKED = 44
    CERTIFICATE_EXPIRED = 45
    CERTIFICATE_UNKNOWN = 46
    ILLEGAL_PARAMETER = 47
    UNKNOWN_CA = 48
    ACCESS_DENIED = 49
    DECODE_ERROR = 50
    DECRYPT_ERROR = 51
    EXPORT_RESTRICTION = 60           # reserved in TLS 1.1+
    PROTOCOL_VERSION = 70
    INSUFFICIENT_SECURITY = 71
    INTERNAL_ERROR = 80
    INAPPROPRIATE_FALLBACK = 86       # RFC 7507
    USER_CANCELED = 90
    NO_RENEGOTIATION = 100            # reserved in TLS 1.3
    MISSING_EXTENSION = 109
    UNSUPPORTED_EXTENSION = 110
    CERTIFICATE_UNOBTAINABLE = 111    # RFC 6066; reserved in TLS 1.3
    UNRECOGNIZED_NAME = 112
    BAD_CERTIFICATE_STATUS_RESPONSE = 113
    BAD_CERTIFICATE_HASH_VALUE = 114  # RFC 6066; reserved in TLS 1.3
    UNKNOWN_PSK_IDENTITY = 115
    CERTIFICATE_REQUIRED = 116
    NO_APPLICATION_PROTOCOL = 120     # RFC 7301

    @property
    def rfc_name(self) -> str:
        return self.name.lower()


def alert_name(description: int) -> str:
    """``handshake_failure`` for 40; ``alert_NNN`` for a value no RFC defines."""
    if description in AlertDescription._value2member_map_:
        return AlertDescription(description).rfc_name
    return f"alert_{description}"


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert as it came off the wire; unknown values are kept as numbers."""

    level: int
    description: int

    @property
    def fatal(self) -> bool:
        return self.level != AlertLevel.WARNING

    @property
    def name(self) -> str:
        return alert_name(self.description)

    def __str__(self) -> str:
        level = "fatal" if self.level == AlertLevel.FATAL else "warning" if self.level == AlertLevel.WARNING else (
            f"level {self.level}")
        return f"{level} alert {self.name} ({self.description})"
