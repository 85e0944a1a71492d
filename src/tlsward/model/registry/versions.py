"""Protocol version code points (the two bytes in records, hellos and supported_versions)."""

from __future__ import annotations

from enum import IntEnum


class TlsVersion(IntEnum):
    """SSL 3.0 to TLS 1.3. ``label`` is the name tlsward prints: ``SSLv3``, ``TLSv1.0`` ... ``TLSv1.3``."""

    SSLv3 = 0x0300
    TLSv1_0 = 0x0301
    TLSv1_1 = 0x0302
    TLSv1_2 = 0x0303
    TLSv1_3 = 0x0304

    @property
    def label(self) -> str:
        return self.name.replace("_", ".")


SSLV2 = 0x0002  # the version an SSL 2.0 hello carries; not a TlsVersion because it has no TLS record layer


def version_name(code: int) -> str:
    """``TLSv1.2`` for 0x0303; TLS 1.3 drafts as ``TLSv1.3-draft23``; anything else as ``0xNNNN``."""
    if code in TlsVersion._value2member_map_:
        return TlsVersion(code).label
    if code == SSLV2:
        return "SSLv2"
    if code >> 8 == 0x7F:
        return f"TLSv1.3-draft{code & 0xFF}"
    return f"0x{code:04X}"


def is_tls13(code: int) -> bool:
    """True for TLS 1.3 and its pre-RFC drafts (0x7Fnn), which a ServerHello's supported_versions may carry."""
    return code == TlsVersion.TLSv1_3 or code >> 8 == 0x7F
