"""A scan started through ``POST /api/v1/scans`` against the built-in lab, served by uvicorn on loopback and
followed over a real Server-Sent Events stream to its end: the result is the ``tlsward scan --json`` object
(valid against the committed schema, the same findings and chain as the CLI finds), and the observation lands
in the inventory, where ``GET /api/v1/endpoints/{target}`` shows it."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import uvicorn
from jsonschema import Draft202012Validator

from tlsward.lab import LabState
from tlsward.model.access import Role
from tlsward.model.target import Target
from tlsward.report import RESULT_SCHEMA, load_schema
from tlsward.storage import open_store
from tlsward.storage.access import AccessStore
from tlsward.web.app import create_app
from tlsward.web.settings import WebSettings

pytestmark = pytest.mark.integration

TLSWARD = Path(sys.executable).with_name("tlsward")
VALIDATOR = Draft202012Validator(load_schema(RESULT_SCHEMA))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def _serve(app: Any, port: int, scenario: Any) -> Any:
    """Run the app under uvicorn on 127.0.0.1:port while ``scenario(client)`` talks to it over HTTP."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on",
                                           access_log=False))
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            assert not task.done(), "uvicorn did not start"
            await asyncio.sleep(0.02)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            return await scenario(client)
    finally:
        server.should_exit = True
        await task


def _cli_scan(lab: LabState, target: str) -> dict[str, Any]:
    proc = subprocess.run([str(TLSWARD), "scan", "--json", "--connect", lab.host, "--ca-file", lab.ca_file,
                           "--timeout", "5", "--revocation", "off", target],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.stdout.strip(), proc.stderr
    result: dict[str, Any] = json.loads(proc.stdout.splitlines()[0])
    return result


@pytest.mark.parametrize("case", ["healthy-rsa", "expired"])
def test_a_scan_started_through_the_api_is_followed_to_its_end_and_recorded(lab: LabState, tmp_path: Path,
                                                                             case: str) -> None:
    db = f"sqlite:///{tmp_path / 'inventory.db'}"
    app = create_app(WebSettings(db_url=db, ca_files=(lab.ca_file,)))
    with open_store(db) as store:
        token, _ = AccessStore(store).create_token("ci", Role.OPERATOR, dt.datetime.now(dt.UTC))
    auth = {"Authorization": f"Bearer {token}"}
    endpoint = lab.endpoint(case)
    canonical = str(Target.parse(endpoint.target))

    async def scenario(client: httpx.AsyncClient) -> dict[str, Any]:
        started = await client.post("/api/v1/scans", json={"target": endpoint.target, "connect": lab.host},
                                    headers=auth)
        assert started.status_code == 202, started.text
        location = started.headers["location"]
        events: list[tuple[str, dict[str, Any]]] = []
        async with client.stream("GET", f"{location}/events", headers=auth) as stream:
            assert stream.status_code == 200 and stream.headers["content-type"].startswith("text/event-stream")
            name = None
            async for line in stream.aiter_lines():    # as the server sends them, not once it is done
                if line.startswith("event: "):
                    name = line[7:]
                elif line.startswith("data: ") and name is not None:
                    events.append((name, json.loads(line[6:])))
        job = (await client.get(location, headers=auth)).json()
        shown = await client.get(f"/api/v1/endpoints/{quote(canonical, safe='')}", headers=auth)
        listed = await client.get(f"/api/v1/endpoints?q={quote(endpoint.target.split(':')[0])}", headers=auth)
        return {"started": started.json(), "events": events, "job": job, "shown": shown, "listed": listed.json()}

    seen = asyncio.run(_serve(app, _free_port(), scenario))
    assert seen["started"]["status"] == "queued" and seen["started"]["target"] == canonical
    names = [name for name, _ in seen["events"]]
    assert names[0] == "status" and names[-1] == "done" and names.count("done") == 1, names
    statuses = [data["status"] for name, data in seen["events"] if name == "status"]
    assert (statuses[-1] == "done" and "running" in statuses) or statuses == ["done"], statuses
    final = seen["events"][-1][1]
    assert final == seen["job"], "the done event carries the job as GET /scans/{id} returns it"
    assert final["status"] == "done" and final["error"] is None
    result = final["result"]
    errors = [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in VALIDATOR.iter_errors(result)]
    assert not errors, errors

    cli = _cli_scan(lab, endpoint.target)
    assert set(result) == set(cli)
    assert result["target"] == cli["target"] and result["session"]["version"] == cli["session"]["version"]
    assert [c["sha256"] for c in result["chain"]] == [c["sha256"] for c in cli["chain"]]
    assert [f["id"] for f in result["findings"]] == [f["id"] for f in cli["findings"]]
    if case == "healthy-rsa":
        assert result["analysis"]["trusted"] is True, "the app's ca_files setting reached the engine"
        assert result["findings"] == [] and result["failure"] is None
    else:
        assert "cert.expired" in [f["id"] for f in result["findings"]]

    shown = seen["shown"]
    assert shown.status_code == 200, shown.text
    detail = shown.json()
    assert detail["observations"][0]["probe_id"] == f"api:{final['id']}"
    assert detail["observations"][0]["finding_ids"] == [f["id"] for f in result["findings"]]
    assert [c["sha256"] for c in detail["certificates"]] == [c["sha256"] for c in result["chain"]]
    assert detail["connect"] == lab.host
    assert [item["target"] for item in seen["listed"]["items"]] == [canonical]
    with open_store(db) as store:
        assert [(e.actor, e.action, e.target) for e in AccessStore(store).audit_entries()] == [
            ("ci", "scan.start", canonical)]
