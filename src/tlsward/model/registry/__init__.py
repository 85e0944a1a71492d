"""TLS registries as data: IANA cipher suites, named groups, protocol versions, alert descriptions.

They live in the model (ring 0) because every ring reads them: the wire codec, the rules, the report.
Regenerate the tables with ``scripts/gen_registry.py``.
"""

from tlsward.model.registry.alerts import Alert, AlertDescription, AlertLevel, alert_name
from tlsward.model.registry.cipher_suites import (
    CIPHER_SUITES,
    CipherSuite,
    cipher_by_code,
    cipher_by_name,
    cipher_name,
)
from tlsward.model.registry.groups import NAMED_GROUPS, NamedGroup, group_by_code, group_by_name, group_name
from tlsward.model.registry.versions import TlsVersion, is_tls13, version_name

__all__ = [
    "CIPHER_SUITES", "NAMED_GROUPS", "Alert", "AlertDescription", "AlertLevel", "CipherSuite", "NamedGroup",
    "TlsVersion", "alert_name", "cipher_by_code", "cipher_by_name", "cipher_name", "group_by_code",
    "group_by_name", "group_name", "is_tls13", "version_name",
]
