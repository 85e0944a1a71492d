"""``tlsward logs ingest`` then ``tlsward impact``, ``/metrics`` and the dashboards, as a user runs them: the
same traffic counted once, answered as "what breaks if" by the CLI, the exporter and the endpoint/executive pages."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tlsward.model.access import Role
from tlsward.model.inventory import EndpointRecord
from tlsward.storage import open_store
from tlsward.storage.access import AccessStore
from tlsward.web.app import create_app
from tlsward.web.settings import WebSettings

pytestmark = pytest.mark.e2e

TLSWARD = Path(sys.executable).with_name("tlsward")
ENV = {k: v for k, v in os.environ.items() if not k.startswith("TLSWARD_")} | {"COLUMNS": "200"}
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
ENDPOINT = "shop.example.test:443"
# (protocol, cipher, user agent, client address, requests): nginx logs TLS 1.0 as "TLSv1"
TRAFFIC = [
    ("TLSv1.3", "TLS_AES_128_GCM_SHA256", "Mozilla/5.0 Firefox/133.0", "203.0.113.7", 70),
    ("TLSv1.2", "ECDHE-RSA-AES128-GCM-SHA256", "okhttp/4.12", "198.51.100.4", 20),
    ("TLSv1", "ECDHE-RSA-AES128-SHA", "Java/1.7.0_80", "10.1.2.3", 6),
    ("TLSv1.1", "ECDHE-RSA-AES256-SHA", "curl/7.19.7", "192.0.2.9", 4),
]


def tlsward(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(TLSWARD), *args], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=120, env=ENV, check=False)


def nginx_line(protocol: str, cipher: str, agent: str, address: str, at: dt.datetime) -> str:
    """One line of the documented log_format (docs/logs.md)."""
    return (f'{address} [{at.isoformat()}] "GET / HTTP/1.1" 200 "{agent}" {protocol} {cipher} '
            f"shop.example.test 443\n")


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> str:
    work = tmp_path_factory.mktemp("impact")
    log = work / "access.log"
    at = NOW - dt.timedelta(hours=2)
    with log.open("w") as out:
        for protocol, cipher, agent, address, n in TRAFFIC:
            for _ in range(n):
                out.write(nginx_line(protocol, cipher, agent, address, at))
        out.write("garbage that is not a log line\n")
    url = f"sqlite:///{work / 'inventory.db'}"
    with open_store(url) as store:
        store.upsert_endpoint(EndpointRecord(target=ENDPOINT, host="shop.example.test", port=443))
    proc = tlsward("logs", "ingest", "--format", "nginx", "--db", url, str(log))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return url


def test_impact_answers_what_breaks_under_each_policy(db: str) -> None:
    proc = tlsward("impact", "--policy", "mozilla-intermediate", "--endpoint", ENDPOINT, "--db", db, "--json")
    assert proc.returncode == 1, proc.stderr        # some requests would fail: exit 1
    report = json.loads(proc.stdout)
    assert report["schema"] == "tlsward.impact/1"
    assert (report["requests"], report["failing"]) == (100, 10)
    assert {r["reason"]: r["requests"] for r in report["by_reason"]} == {"TLSv1.0 not allowed": 6,
                                                                          "TLSv1.1 not allowed": 4}
    assert [(c["user_agent"], c["network"], c["requests"]) for c in report["clients"]] == [
        ("Java/1.7.0_80", "10.1.2.0/24", 6), ("curl/7.19.7", "192.0.2.0/24", 4)]
    modern = json.loads(tlsward("impact", "--policy", "mozilla-modern", "--db", db, "--json").stdout)
    assert modern["failing"] == 30 and "okhttp/4.12" in {c["user_agent"] for c in modern["clients"]}
    old = tlsward("impact", "--policy", "mozilla-old", "--db", db)
    assert old.returncode == 0 and "0 of 100 TLS requests (0.00%) would fail" in old.stdout


def test_impact_without_traffic_is_one_line(db: str) -> None:
    proc = tlsward("impact", "--policy", "mozilla-intermediate", "--endpoint", "nobody.test:443", "--db", db)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "tlsward logs ingest" in proc.stderr


def test_exporter_and_dashboards_show_the_real_clients(db: str) -> None:
    app = create_app(WebSettings(db_url=db))
    with open_store(db) as store:
        secret, _ = AccessStore(store).create_token("viewer", Role.VIEWER, NOW)
    headers = {"Authorization": f"Bearer {secret}"}

    async def pages() -> list[httpx.Response]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://tlsward.test") as client:
            return [await client.get(path, headers=headers)
                    for path in ("/metrics", f"/endpoints/{ENDPOINT}", "/executive")]

    try:
        metrics, endpoint, executive = asyncio.run(pages())
    finally:
        app.state.store.close()
    assert metrics.status_code == 200
    assert f'tlsward_client_requests_last_day{{endpoint="{ENDPOINT}",protocol="TLSv1.0"}} 6.0' in metrics.text
    assert f'tlsward_client_requests_last_day{{endpoint="{ENDPOINT}",protocol="TLSv1.3"}} 70.0' in metrics.text
    assert endpoint.status_code == 200, endpoint.text[:500]
    assert "Real clients" in endpoint.text and "Java/1.7.0_80" in endpoint.text and "10.00%" in endpoint.text
    assert executive.status_code == 200
    assert "Real clients" in executive.text and "10 of 100 TLS requests" in executive.text
