"""STARTTLS against the real PostgreSQL and MariaDB servers of this machine (127.0.0.1:5432 and :3306).

Whether the server has TLS on is asked from the server itself (``SHOW ssl`` / ``have_ssl``), and the scan
must agree: a completed handshake when it is on, ``starttls.not_offered`` when it is off.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from urllib.parse import urlsplit

import pytest

from tlsward.engine import Scanner, ScanOptions
from tlsward.model.scan import ScanResult
from tlsward.model.target import Target

# make test runs pytest under scripts/with-postgres.sh, which says where PostgreSQL answers.
_PG = urlsplit(os.environ.get("TLSWARD_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres"))
PG_HOST, PG_PORT = _PG.hostname or "127.0.0.1", _PG.port or 5432


def _ask(cmd: list[str]) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL, check=False)
    assert proc.returncode == 0, f"{cmd[0]} cannot reach the local server: {proc.stderr.strip()}"
    return proc.stdout.strip()


def _scan(text: str) -> ScanResult:
    async def run() -> ScanResult:
        return await Scanner(ScanOptions(timeout=5.0, mozilla=False)).scan_one(Target.parse(text))

    return asyncio.run(run())


@pytest.mark.parametrize(("url", "ssl_enabled"), [
    (f"postgres://{PG_HOST}:{PG_PORT}",
     lambda: _ask(["psql", "-h", PG_HOST, "-p", str(PG_PORT), "-U", "postgres", "-Atc", "SHOW ssl"]) == "on"),
    ("mysql://127.0.0.1:3306",
     lambda: _ask(["mysql", "-h127.0.0.1", "-uroot", "-N", "-e", "SELECT @@have_ssl"]) == "YES"),
], ids=["postgresql", "mariadb"])
def test_scan_agrees_with_the_server_about_tls(url: str, ssl_enabled: object) -> None:
    assert callable(ssl_enabled)
    result = _scan(url)
    ids = {f.id for f in result.findings}
    if ssl_enabled():
        assert result.session is not None and result.session.completed, ids
    else:
        assert result.session is None
        assert "starttls.not_offered" in ids, ids
