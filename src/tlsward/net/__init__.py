"""Ring 1: getting bytes to and from an endpoint: DNS, TCP, STARTTLS dialogues, the TLS handshake.

OS and OpenSSL exceptions are translated into :class:`tlsward.model.scan.ProbeFailure` here and only here.
"""
