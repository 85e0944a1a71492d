"""The dashboard pages through the ASGI app (no browser, no socket): a login is required and browsers are sent
to the form, every page renders with no inline script, style or event handler (the CSP forbids them), roles
and CSRF tokens guard the on-call buttons, acknowledging is exact (never a key prefix), errors are HTML pages
with the right status, and the CSV export escapes cells a spreadsheet would run."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import re
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from tests.unit.storage.builders import failed_result, finding, scan_result
from tlsward.model.access import Role
from tlsward.model.alerts import Alert, AlertRecord, AlertStatus, Route
from tlsward.model.findings import Severity
from tlsward.model.inventory import EndpointRecord
from tlsward.storage import open_store
from tlsward.storage.access import AccessStore
from tlsward.storage.alerts import AlertStore
from tlsward.web.app import create_app
from tlsward.web.settings import WebSettings

T = TypeVar("T")
NOW = dt.datetime.now(dt.UTC)


@pytest.fixture
def db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'inventory.db'}"
    with open_store(url) as store:
        store.upsert_endpoint(EndpointRecord(target="a.test:443", host="a.test", port=443, owner="=HYPERLINK(1)",
                                             team="web"))
        store.record_scans([
            (scan_result("a.test:443", at=NOW - dt.timedelta(hours=2), days_left=5,
                         findings=(finding("cert.expiring", Severity.HIGH),)), None),
            (scan_result("a.test:44", leaf="other.test", at=NOW - dt.timedelta(hours=1)), None),
            (failed_result("down.test:443", at=NOW - dt.timedelta(minutes=5)), None)])
        alerts = [AlertRecord(Alert(key=key, rule=key.split(":")[0], status=AlertStatus.FIRING,
                                    severity=Severity.CRITICAL, route=Route.PAGE, summary=f"summary of {key}",
                                    description="", fix="Run `tlsward scan a.test:443`.", endpoints=(target,),
                                    starts_at=NOW - dt.timedelta(hours=1)))
                  for key, target in (("probe.failing:a.test:44", "a.test:44"),
                                      ("probe.failing:a.test:443", "a.test:443"))]
        AlertStore(store).save(alerts, NOW)
    return url


@pytest.fixture
def app(db: str) -> Iterator[Any]:
    application = create_app(WebSettings(db_url=db))
    yield application
    application.state.store.close()


def token(db: str, role: Role) -> str:
    with open_store(db) as store:
        secret, _ = AccessStore(store).create_token(f"{role.label}-user", role, NOW)
    return secret


def run(app: Any, scenario: Callable[[httpx.AsyncClient], Awaitable[T]]) -> T:
    async def main() -> T:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://tlsward.test") as client:
            return await scenario(client)

    return asyncio.run(main())


async def login(client: httpx.AsyncClient, secret: str) -> str:
    """Log in through the form; the CSRF token of the session (from a page's meta tag)."""
    response = await client.post("/login", data={"token": secret, "next": "/oncall"})
    assert response.status_code == 303, response.text
    page = await client.get("/oncall")
    match = re.search(r'<meta name="csrf-token" content="([^"]+)">', page.text)
    assert match, page.text[:500]
    return match[1]


def sha_of(db: str, target: str) -> str:
    with open_store(db) as store:
        record = store.get_endpoint(target)
        assert record is not None
        (_, leaf) = store.latest(target)
        assert leaf is not None
        return leaf.sha256


def test_browsers_without_a_session_are_sent_to_the_login_form(app: Any) -> None:
    async def scenario(client: httpx.AsyncClient) -> list[httpx.Response]:
        return [await client.get("/executive"), await client.get("/inventory?q=a&sort=days_left"),
                await client.get("/endpoints/a.test:443"), await client.post("/oncall/ack", data={"key": "x"})]

    executive, inventory, endpoint, ack = run(app, scenario)
    assert (executive.status_code, executive.headers["location"]) == (303, "/login?next=/executive")
    assert inventory.headers["location"] == "/login?next=/inventory%3Fq%3Da%26sort%3Ddays_left"
    assert endpoint.headers["location"] == "/login?next=/endpoints/a.test%3A443"
    assert (ack.status_code, ack.headers["location"]) == (303, "/login?next=/")


INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", re.I)
INLINE_STYLE = re.compile(r"<style|\sstyle=", re.I)
INLINE_HANDLER = re.compile(r"\son[a-z]+\s*=", re.I)
EXTERNAL = re.compile(r"""(src|href)=["'](https?:)?//""", re.I)


def test_every_page_renders_without_inline_script_or_style(app: Any, db: str) -> None:
    secret = token(db, Role.VIEWER)
    sha = sha_of(db, "a.test:443")
    paths = ["/executive", "/executive?by=team&days=7&target=99.5", "/oncall", "/inventory",
             "/inventory?sort=last_probe&dir=desc&limit=25", "/inventory?failing=1&days_left=&owner=&q=",
             "/findings", "/endpoints/a.test:443", "/endpoints/down.test%3A443", f"/certificates/{sha}",
             f"/certificates/{sha[:12]}"]

    async def scenario(client: httpx.AsyncClient) -> list[httpx.Response]:
        return [await client.get(path, headers={"Authorization": f"Bearer {secret}"}) for path in paths]

    for path, response in zip(paths, run(app, scenario), strict=True):
        assert response.status_code == 200, (path, response.text[:300])
        assert response.headers["content-type"].startswith("text/html")
        assert "script-src 'self'" in response.headers["content-security-policy"]
        body = response.text
        assert not INLINE_SCRIPT.search(body), (path, INLINE_SCRIPT.search(body))
        assert not INLINE_STYLE.search(body), path
        assert not INLINE_HANDLER.search(body), (path, INLINE_HANDLER.search(body))
        assert not EXTERNAL.search(body), (path, EXTERNAL.search(body))   # air-gapped: every asset is ours
    executive = dict(zip(paths, run(app, scenario), strict=True))["/executive"].text
    assert '<script type="application/json" id="chart-versions">' in executive
    assert 'src="/static/vendor/chartjs/chart.umd.min.js"' in executive


def test_a_viewer_sees_no_buttons_and_cannot_ack(app: Any, db: str) -> None:
    secret = token(db, Role.VIEWER)

    async def scenario(client: httpx.AsyncClient) -> tuple[httpx.Response, httpx.Response, httpx.Response]:
        csrf = await login(client, secret)
        return (await client.get("/oncall"), await client.get("/endpoints/a.test:443"),
                await client.post("/oncall/ack", data={"key": "probe.failing:a.test:443", "csrf_token": csrf}))

    oncall, endpoint, ack = run(app, scenario)
    assert "summary of probe.failing:a.test:443" in oncall.text and 'action="/oncall/ack"' not in oncall.text
    assert 'id="rescan"' not in endpoint.text
    assert ack.status_code == 403 and "operator role" in ack.text
    assert ack.headers["content-type"].startswith("text/html")


def test_ack_needs_the_csrf_token_and_is_exact(app: Any, db: str) -> None:
    secret = token(db, Role.OPERATOR)

    async def scenario(client: httpx.AsyncClient) -> tuple[httpx.Response, ...]:
        csrf = await login(client, secret)
        forged = await client.post("/oncall/ack", data={"key": "probe.failing:a.test:44", "csrf_token": "guess"})
        missing = await client.post("/oncall/ack", data={"key": "probe.failing:a.test:44"})
        done = await client.post("/oncall/ack", data={"key": "probe.failing:a.test:44", "csrf_token": csrf})
        unknown = await client.post("/oncall/ack", data={"key": "probe.failing:a.test", "csrf_token": csrf})
        page = await client.get(done.headers["location"])
        return forged, missing, done, unknown, page

    forged, missing, done, unknown, page = run(app, scenario)
    assert forged.status_code == missing.status_code == 403 and "CSRF" in forged.text
    assert (done.status_code, done.headers["location"]) == (303, "/oncall?notice=acked")
    assert unknown.status_code == 404 and "no firing alert" in unknown.text
    assert "Acknowledged" in page.text and "acked by operator-user" in page.text
    with open_store(db) as store:
        acked = {r.alert.key: r.acked_by for r in AlertStore(store).load()}
        audit = [(e.actor, e.action, e.target) for e in AccessStore(store).audit_entries()]
    assert acked == {"probe.failing:a.test:44": "operator-user", "probe.failing:a.test:443": None}
    assert ("operator-user", "alert.ack", "probe.failing:a.test:44") in audit


def test_silence_from_the_oncall_page(app: Any, db: str) -> None:
    secret = token(db, Role.OPERATOR)

    async def scenario(client: httpx.AsyncClient) -> tuple[httpx.Response, httpx.Response, httpx.Response]:
        csrf = await login(client, secret)
        bad = await client.post("/oncall/silence", data={"key": "k", "duration": "forever", "csrf_token": csrf})
        good = await client.post("/oncall/silence", data={"key": "probe.failing:a.test:443", "duration": "12h",
                                                          "comment": "deploy", "csrf_token": csrf})
        return bad, good, await client.get("/oncall")

    bad, good, page = run(app, scenario)
    assert bad.status_code == 400 and "forever" in bad.text
    assert good.headers["location"] == "/oncall?notice=silenced"
    assert "silenced" in page.text and "alert_key=probe.failing:a.test:443" in page.text
    with open_store(db) as store:
        silences = AlertStore(store).silences(active_at=dt.datetime.now(dt.UTC))
    assert [(s.matchers, s.created_by, s.comment) for s in silences] == [
        ((("alert_key", "probe.failing:a.test:443"),), "operator-user", "deploy")]
    assert dt.timedelta(hours=11) < silences[0].ends_at - silences[0].starts_at <= dt.timedelta(hours=12)


def test_bad_input_is_an_html_page_naming_it(app: Any, db: str) -> None:
    secret = token(db, Role.VIEWER)
    cases = {"/inventory?days_left=soon": (400, "days_left"), "/inventory?after=garbage": (400, "cursor"),
             "/inventory?sort=colour": (400, "sort"), "/executive?target=101": (400, "target"),
             "/endpoints/nothing.test:443": (404, "no endpoint"), "/certificates/xyz": (400, "fingerprint"),
             f"/certificates/{'0' * 64}": (404, "no certificate"), f"/certificates/{'0' * 64}.pem": (404, "DER")}

    async def scenario(client: httpx.AsyncClient) -> list[httpx.Response]:
        return [await client.get(path, headers={"Authorization": f"Bearer {secret}"}) for path in cases]

    for (path, (status, words)), response in zip(cases.items(), run(app, scenario), strict=True):
        assert response.status_code == status, (path, response.text[:300])
        assert response.headers["content-type"].startswith("text/html"), path
        assert words in response.text, (path, response.text[:2000])


def test_csv_export_has_the_filters_and_escapes_formulas(app: Any, db: str) -> None:
    secret = token(db, Role.VIEWER)

    async def scenario(client: httpx.AsyncClient) -> tuple[httpx.Response, httpx.Response]:
        headers = {"Authorization": f"Bearer {secret}"}
        return (await client.get("/inventory.csv?sort=days_left", headers=headers),
                await client.get("/inventory.csv?failing=1", headers=headers))

    everything, failing = run(app, scenario)
    assert everything.headers["content-type"].startswith("text/csv")
    assert "attachment" in everything.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(everything.text)))
    assert [row["target"] for row in rows] == ["a.test:443", "a.test:44", "down.test:443"]
    assert rows[0]["owner"] == "'=HYPERLINK(1)" and rows[0]["findings"] == "cert.expiring"
    assert rows[0]["leaf_not_after"].startswith("2030-06-06T12:00")     # the builders' NOW + 5 days
    assert float(rows[0]["days_left"]) > 5 and rows[2]["days_left"] == ""    # counted from today; no leaf
    assert [row["target"] for row in csv.DictReader(io.StringIO(failing.text))] == ["down.test:443"]
