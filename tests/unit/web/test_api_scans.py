"""``/api/v1/scans``: jobs queue, run, finish and are forgotten in order; the SSE stream follows a job to its
end; the queue is bounded; every scan is recorded and audited. The engine is replaced by a gate the test
opens, except in the last test (the real engine against a closed loopback port)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.unit.storage.builders import scan_result
from tests.unit.web.conftest import Api, problem
from tlsward.model.access import Role
from tlsward.model.errors import UsageError
from tlsward.model.scan import ScanResult
from tlsward.model.target import Target
from tlsward.storage import Store
from tlsward.storage.access import AccessStore
from tlsward.web.scans import ScanManager

OP = {"role": Role.OPERATOR}


class GatedEngine:
    """Scans wait until the test opens the gate, then 'find' a healthy endpoint (or raise ``error``)."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.error: Exception | None = None
        self.started: list[str] = []

    async def scan_one(self, target: Target) -> ScanResult:
        self.started.append(str(target))
        await self.gate.wait()
        if self.error is not None:
            raise self.error
        return scan_result(str(target))


@pytest.fixture
def engine(monkeypatch: pytest.MonkeyPatch) -> Iterator[GatedEngine]:
    fake = GatedEngine()

    async def scanner(self: ScanManager, deep: bool) -> GatedEngine:
        return fake

    monkeypatch.setattr(ScanManager, "_scanner", scanner)
    yield fake


def events(text: str) -> list[tuple[str, dict[str, Any]]]:
    """(event name, JSON data) of a Server-Sent Events body; comments skipped."""
    import json

    found = []
    for block in text.strip().split("\n\n"):
        lines = [line for line in block.splitlines() if not line.startswith(":")]
        if lines:
            name = next(line[7:] for line in lines if line.startswith("event: "))
            data = next(line[6:] for line in lines if line.startswith("data: "))
            found.append((name, json.loads(data)))
    return found


def test_jobs_queue_run_finish_and_are_recorded(api_with: Callable[..., Api], engine: GatedEngine,
                                                 store: Store) -> None:
    api = api_with(scan_concurrency=1)
    first = api.post("/api/v1/scans", json={"target": "one.example"}, **OP)
    assert first.status_code == 202, first.text
    body = first.json()
    assert body["status"] == "queued" and body["target"] == "one.example:443"
    assert first.headers["location"] == body["location"] == f"/api/v1/scans/{body['id']}"
    second = api.post("/api/v1/scans", json={"target": "two.example", "sni": "alt.example", "deep": True},
                      **OP).json()
    api.sleep(0.05)
    assert api.get(body["location"], role=Role.VIEWER).json()["status"] == "running"
    assert api.get(second["location"], role=Role.VIEWER).json()["status"] == "queued", "one job at a time"
    assert engine.started == ["one.example:443"]
    engine.gate.set()
    api.sleep(0.2)
    done = api.get(body["location"], role=Role.VIEWER).json()
    assert done["status"] == "done" and done["error"] is None and done["finished_at"] >= done["started_at"]
    assert done["result"]["target"]["input"] == "one.example:443" and done["result"]["schema_version"]
    assert api.get(second["location"], role=Role.VIEWER).json()["deep"] is True
    recorded = store.observations("one.example:443")
    assert [o.probe_id for o in recorded] == [f"api:{body['id']}"]
    assert store.observations("two.example:443")[0].probe_id == f"api:{second['id']}:deep", \
        "deep scans are marked the way the monitor marks its own"
    entries = [(e.actor, e.action, e.target, e.detail) for e in AccessStore(api.app.state.store).audit_entries()]
    assert entries == [("operator", "scan.start", "two.example:443", f"job {second['id']} deep sni=alt.example"),
                       ("operator", "scan.start", "one.example:443", f"job {body['id']}")]


def test_the_event_stream_follows_a_job_to_its_end(api: Api, engine: GatedEngine) -> None:
    job = api.post("/api/v1/scans", json={"target": "one.example"}, **OP).json()

    async def follow() -> Any:
        async def open_gate() -> None:
            await asyncio.sleep(0.1)
            engine.gate.set()

        opener = asyncio.ensure_future(open_gate())
        response = await api.client.get(f"{job['location']}/events",
                                        headers={"Authorization": f"Bearer {api.tokens[Role.VIEWER]}"})
        await opener
        return response

    response = api.run(follow())
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-cache"
    seen = events(response.text)
    names = [name for name, _ in seen]
    assert names[-1] == "done" and set(names[:-1]) == {"status"}
    assert [data["status"] for name, data in seen if name == "status"][-2:] == ["running", "done"]
    final = seen[-1][1]
    assert final["status"] == "done" and final["result"]["target"]["input"] == "one.example:443"
    again = events(api.get(f"{job['location']}/events", role=Role.VIEWER).text)
    assert [name for name, _ in again] == ["status", "done"], "a finished job: its state, then done, at once"


def test_an_event_stream_is_bounded_in_time(api_with: Callable[..., Api], engine: GatedEngine) -> None:
    api = api_with(scan_events_timeout_s=0.3)
    job = api.post("/api/v1/scans", json={"target": "slow.example"}, **OP).json()
    seen = events(api.get(f"{job['location']}/events", role=Role.VIEWER).text)
    assert seen[-1][0] == "timeout" and seen[-1][1]["status"] in ("queued", "running")


def test_failures_timeouts_and_the_queue_bound(api_with: Callable[..., Api], engine: GatedEngine) -> None:
    api = api_with(scan_queue=2, scan_job_timeout_s=0.3)
    slow = api.post("/api/v1/scans", json={"target": "slow.example"}, **OP).json()
    api.post("/api/v1/scans", json={"target": "slow2.example"}, **OP)
    full = api.post("/api/v1/scans", json={"target": "three.example"}, **OP)
    assert "already queued or running" in problem(full, 429)["detail"] and full.headers["retry-after"]
    api.sleep(0.5)
    timed_out = api.get(slow["location"], role=Role.VIEWER).json()
    assert timed_out["status"] == "failed" and "longer than 0.3 s" in timed_out["error"]
    assert timed_out["result"] is None
    engine.gate.set()
    engine.error = UsageError("--ca-file /nope: no such file")
    failed = api.post("/api/v1/scans", json={"target": "three.example"}, **OP).json()
    api.sleep(0.1)
    assert api.get(failed["location"], role=Role.VIEWER).json()["error"] == "--ca-file /nope: no such file"


def test_only_the_newest_finished_jobs_are_kept(api_with: Callable[..., Api], engine: GatedEngine) -> None:
    api = api_with(scan_keep=2)
    engine.gate.set()
    jobs = []
    for name in ("a", "b", "c"):
        jobs.append(api.post("/api/v1/scans", json={"target": f"{name}.example"}, **OP).json())
        api.sleep(0.1)
    assert "kept in memory" in problem(api.get(jobs[0]["location"], role=Role.VIEWER), 404)["detail"]
    assert [api.get(job["location"], role=Role.VIEWER).status_code for job in jobs[1:]] == [200, 200]


@pytest.mark.parametrize(("body", "status", "detail"), [
    ({"target": "bad target"}, 400, "'bad target'"),
    ({"target": "a.example", "connect": "nowhere"}, 400, "connect 'nowhere' is not an IP address"),
    ({"target": "a.example", "sni": "bad sni"}, 400, "sni bad sni"),
    ({"target": "a.example", "deep": "very"}, 400, "deep"),
    ({"target": "a.example", "extra": 1}, 400, "extra"),
    ({}, 400, "target"),
])
def test_bad_scan_requests(api: Api, engine: GatedEngine, body: dict[str, Any], status: int, detail: str) -> None:
    assert detail in problem(api.post("/api/v1/scans", json=body, **OP), status)["detail"]
    assert engine.started == []


def test_unknown_jobs_are_404(api: Api) -> None:
    problem(api.get("/api/v1/scans/0123456789abcdef", role=Role.VIEWER), 404)
    problem(api.get("/api/v1/scans/0123456789abcdef/events", role=Role.VIEWER), 404)
    problem(api.get(f"/api/v1/scans/{'x' * 65}", role=Role.VIEWER), 400)


def test_the_real_engine_records_a_refused_connection(api: Api, store: Store, closed_port: int) -> None:
    job = api.post("/api/v1/scans", json={"target": f"127.0.0.1:{closed_port}"}, **OP).json()
    for _ in range(100):
        api.sleep(0.05)
        state = api.get(job["location"], role=Role.VIEWER).json()
        if state["status"] in ("done", "failed"):
            break
    assert state["status"] == "done", state
    assert state["result"]["failure"]["kind"] == "refused"
    assert [f["id"] for f in state["result"]["findings"]] == ["conn.refused"]
    assert store.observations(f"127.0.0.1:{closed_port}")[0].failure_kind == "refused"
    schema = api.get("/api/v1/schemas/scan-result-1.json", role=Role.VIEWER).json()
    assert schema["$id"] == "urn:tlsward:schema:scan-result:1"
