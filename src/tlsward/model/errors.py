"""The error tree. Every failure tlsward reports is one of these, translated at one boundary.

The CLI maps them to exit codes and prints ``str(error)``, so each message is one line
that names the input it is about.
"""

from __future__ import annotations


class Error(Exception):
    """Root of every error tlsward raises on purpose."""


class UsageError(Error):
    """The user asked for something malformed (a bad flag value, a bad target, a bad file)."""


class CertificateError(Error):
    """Certificate bytes that did not come from the user (a server, an AIA fetch) cannot be parsed."""


class LabError(Error):
    """The built-in lab could not start, stop or be found."""


class PortInUseError(LabError):
    """A port the lab needs is taken by another process."""


class LabAlreadyRunningError(LabError):
    """A lab is already running from the same state directory."""


class LabNotRunningError(LabError):
    """A command needs a running lab and there is none."""


class WireError(Error):
    """Bytes from the peer are not the TLS they claim to be: truncated, malformed or over a size limit."""


class FetchError(Error):
    """An HTTP fetch of a CRL, an OCSP response or an AIA issuer certificate failed.

    ``str(error)`` is one line naming the URL; ``kind`` classifies the cause (``scheme``, ``url``, ``refused``,
    ``dns``, ``timeout``, ``tls``, ``too_large``, ``redirects``, ``http_status``, ``network``) and ``detail``
    is the cause without the URL, for callers that phrase their own line.
    """

    def __init__(self, url: str, detail: str, *, kind: str = "network") -> None:
        super().__init__(f"{url}: {detail}")
        self.url = url
        self.detail = detail
        self.kind = kind


class StorageError(Error):
    """The inventory database cannot be opened, migrated, read or written (one line, password hidden)."""


class NotifyError(Error):
    """A notification could not be delivered: one line naming the receiver and the cause (HTTP status, SMTP reply)."""
