"""HTTP facts from a raw response head: status, HSTS, redirect target. Pure parsing, bounded."""

from __future__ import annotations

from tlsward.model.scan import HttpFacts


def request(host: str, port: int, default_port: int) -> bytes:
    authority = host if port == default_port else f"{host}:{port}"
    if ":" in host and not host.startswith("["):
        authority = f"[{host}]" if port == default_port else f"[{host}]:{port}"
    return (f"GET / HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: tlsward\r\nAccept: */*\r\n"
            "Connection: close\r\n\r\n").encode()


def parse_head(raw: bytes) -> HttpFacts | None:
    """Status line and the two headers we judge; None when it is not an HTTP response."""
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0].decode("iso-8859-1")
    lines = head.replace("\r\n", "\n").split("\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        return None
    headers: dict[str, str] = {}
    for line in lines[1:200]:
        name, sep, value = line.partition(":")
        if sep:
            headers.setdefault(name.strip().lower(), value.strip())
    return HttpFacts(status=int(parts[1]), hsts=headers.get("strict-transport-security"),
                     location=headers.get("location"))
