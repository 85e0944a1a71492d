"""Server configs (nginx, Apache, HAProxy) read into the TLS listeners they declare, includes followed.

``read_config`` never raises for a bad config: what cannot be read becomes a ``FileProblem`` (``config.syntax``,
``config.missing_file``, ``file.unreadable``) and everything readable is still returned, because an inventory
wants to know where certificates live even on a server whose config is broken.
"""

from __future__ import annotations

import os
import re
from dataclasses import replace
from pathlib import Path

from tlsward.configs._source import Reader
from tlsward.configs.apache import read_apache
from tlsward.configs.haproxy import read_haproxy
from tlsward.configs.nginx import read_nginx
from tlsward.model.discovery import ConfigScan, ServerKind

__all__ = ["detect_server", "read_apache", "read_config", "read_haproxy", "read_nginx"]

SERVER_KINDS: tuple[ServerKind, ...] = ("nginx", "apache", "haproxy")

# Only the head of a file is sniffed: enough to see its first directives, cheap on a huge file.
_SNIFF_BYTES = 64 * 1024
_NAME_HINTS: tuple[tuple[str, ServerKind], ...] = (
    ("haproxy", "haproxy"), ("nginx", "nginx"), ("apache", "apache"), ("httpd", "apache"),
)
_CONTENT_HINTS: dict[ServerKind, tuple[re.Pattern[str], ...]] = {
    "nginx": (
        re.compile(r"^\s*(http|events|stream|server|location|upstream)\s*\{", re.M),
        re.compile(r"^\s*(listen|server_name|ssl_certificate|worker_processes|include)\s[^\n#]*;", re.M),
    ),
    "apache": (
        re.compile(r"^\s*</?(VirtualHost|IfModule|Directory|Location)\b", re.M | re.I),
        re.compile(r"^\s*(ServerRoot|LoadModule|SSLEngine|SSLCertificateFile|DocumentRoot|ServerName)\s",
                   re.M | re.I),
    ),
    "haproxy": (
        re.compile(r"^(global|defaults|frontend|backend|listen)\b", re.M),
        re.compile(r"^\s+(bind|default_backend|use_backend|mode|balance|timeout)\s", re.M),
    ),
}


def detect_server(path: str | os.PathLike[str]) -> ServerKind | None:
    """Which server a config is for: from its file name (``nginx.conf``, ``haproxy.cfg``, ``httpd.conf``),
    else from its first 64 KiB, else from a directory named for the server (``/etc/nginx/...``); None when
    nothing tells."""
    full = Path(path).absolute()
    base = full.name.lower()
    for hint, kind in _NAME_HINTS:
        if hint in base:
            return kind
    by_content = _sniff(full)
    if by_content is not None:
        return by_content
    for part in reversed([part.lower() for part in full.parent.parts]):
        for hint, kind in _NAME_HINTS:
            if part in (hint, hint + "2"):
                return kind
    return None


def _sniff(path: Path) -> ServerKind | None:
    try:
        with path.open("rb") as handle:
            head = handle.read(_SNIFF_BYTES).decode("utf-8", errors="replace")
    except OSError:
        return None
    scores = {kind: sum(len(pattern.findall(head)) for pattern in patterns)
              for kind, patterns in _CONTENT_HINTS.items()}
    ranked = sorted(scores.items(), key=lambda item: item[1], reverse=True)
    if ranked[0][1] == 0 or ranked[0][1] == ranked[1][1]:
        return None
    return ranked[0][0]


def read_config(path: str | os.PathLike[str], *, server: ServerKind | None = None) -> ConfigScan:
    """The TLS listeners a config declares; ``server`` says which server it is for, else it is detected.

    A config whose server cannot be detected is read as nginx, with a ``config.syntax`` problem saying so.
    """
    if server is not None and server not in SERVER_KINDS:
        raise ValueError(f"unknown server {server!r}; expected one of {', '.join(SERVER_KINDS)}")
    kind = server or detect_server(path)
    if kind == "apache":
        return read_apache(path)
    if kind == "haproxy":
        return read_haproxy(path)
    scan = read_nginx(path)
    if kind is None and Path(path).is_file():
        return _with_detection_problem(scan)
    return scan


def _with_detection_problem(scan: ConfigScan) -> ConfigScan:
    reader = Reader("nginx", scan.root)
    reader.syntax(scan.root, None, "cannot tell whether this is an nginx, Apache or HAProxy config; read as "
                  "nginx (pass the server kind to be sure)",
                  "Say which server the config is for (nginx, apache or haproxy) when reading it.")
    return replace(scan, problems=(*reader.problems, *scan.problems))
