"""The one error the ACME client raises, so callers catch a single type and print one line."""

from __future__ import annotations

from tlsward.model.errors import Error


class AcmeError(Error):
    """An ACME exchange failed: one line naming the server (directory URL) and the problem type.

    ``problem`` is the RFC 8555 problem type URN when the server sent one (``urn:ietf:params:acme:error:...``),
    else a short local kind (``network``, ``timeout``, ``validation``, ``account``, ``config``).
    """

    def __init__(self, server: str, problem: str, detail: str) -> None:
        super().__init__(f"{server}: {problem}: {detail}" if server else f"{problem}: {detail}")
        self.server = server
        self.problem = problem
        self.detail = detail
