"""tlsward: keeps TLS from quietly breaking production."""

__version__ = "0.1.0"
