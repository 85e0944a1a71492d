"""The dashboards of ``tlsward serve`` in a real browser (Debian's chromium driven by Playwright), against an
inventory filled the way a user fills one: the built-in lab imported with owners and teams, scanned with
``tlsward scan --save``, then one ``tlsward monitor --once`` round so that alerts exist.

Every number checked on a page is checked against what the CLI says about the same database; the on-call
page's Ack and Silence buttons and the endpoint page's "Rescan now" (the JSON API and its event stream) are
clicked, and their effect is read back from the database. Each view is saved as a full-page screenshot, 1280
pixels wide, under docs/screenshots/ (README.md shows them). No view may trip the Content-Security-Policy.

Chromium missing is a failure naming what to install, never a skip."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_scan_cli import ENV, TLSWARD, explain, tlsward
from tlsward.cli.exit_codes import ExitCode
from tlsward.lab import LabState
from tlsward.storage import open_store
from tlsward.storage.access import AccessStore
from tlsward.storage.alerts import AlertStore

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
WIDTH = 1280
TOKEN_NAME = "e2e-operator"
TEAMS = ("payments", "web", "platform", "mail")


@dataclass
class Served:
    url: str
    db: str
    token: str
    lab: LabState
    process: subprocess.Popen[bytes]
    log: Path
    problems: list[str] = field(default_factory=list)   # CSP violations, script and server errors in any page

    def cli_json(self, *args: str) -> Any:
        proc = tlsward(*args, "--db", self.db)
        assert proc.returncode == ExitCode.OK, explain(proc)
        return json.loads(proc.stdout)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"tlsward serve exited with {process.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:   # noqa: S310 - our own loopback
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"tlsward serve did not answer /healthz within 60 s:\n{log.read_text()}")


@pytest.fixture(scope="module")
def served(lab: LabState, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    work = tmp_path_factory.mktemp("web")
    db = f"sqlite:///{work / 'inventory.db'}"
    # Owners, teams and tags first (as an inventory import), so the dashboards have something to group by.
    with (work / "endpoints.csv").open("w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["target", "sni", "connect", "owner", "team", "environment", "tags"])
        for index, endpoint in enumerate(lab.endpoints):
            writer.writerow([endpoint.target, endpoint.sni, lab.host, f"owner-{index % 3}", TEAMS[index % 4],
                             "prod" if index % 2 else "staging", "lab;e2e" if index % 5 == 0 else "lab"])
    imported = tlsward("inventory", "import", str(work / "endpoints.csv"), "--db", db)
    assert imported.returncode == ExitCode.OK, explain(imported)
    scanned = tlsward("scan", "-", "--connect", lab.host, "--ca-file", lab.ca_file, "--timeout", "2", "--save",
                      "--db", db, stdin_text="\n".join(endpoint.target for endpoint in lab.endpoints))
    assert scanned.returncode in (ExitCode.FINDINGS, ExitCode.UNSCANNABLE), explain(scanned)   # the lab is broken
    config = work / "monitor.toml"
    config.write_text(f'[probes]\nca_files = ["{lab.ca_file}"]\ntimeout = "2s"\n')
    monitored = tlsward("monitor", "--once", "--config", str(config), "--db", db, "--log-level", "warning")
    assert monitored.returncode == ExitCode.OK, explain(monitored)
    created = tlsward("token", "create", "--name", TOKEN_NAME, "--role", "operator", "--json", "--db", db)
    assert created.returncode == ExitCode.OK, explain(created)
    token = json.loads(created.stdout)["token"]

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = work / "serve.log"
    with log.open("wb") as sink:
        process = subprocess.Popen([str(TLSWARD), "serve", "--listen", f"127.0.0.1:{port}", "--db", db,
                                    "--ca-file", lab.ca_file], stdout=sink, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, env=ENV)
    try:
        _wait_healthy(url, process, log)
        yield Served(url, db, token, lab, process, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} is missing: the browser tests need Debian's chromium "
                    "(`make system-deps`, or `apt-get install chromium`)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the Python package playwright is missing: `make install` installs the dev dependencies")
    with sync_playwright() as playwright:
        try:
            launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"])
        except Exception as exc:   # Playwright raises its own Error for a browser that does not start
            pytest.fail(f"chromium at {CHROMIUM} did not start under Playwright: {exc}")
        yield launched
        launched.close()


def watch(page: Any, served: Served) -> Any:
    """Record CSP violations, script errors and failed requests of a page in ``served.problems``."""
    def console(message: Any) -> None:
        if "Content Security Policy" in message.text or "Refused to" in message.text:
            served.problems.append(f"{page.url}: {message.text}")

    def response(answer: Any) -> None:
        if answer.status >= 500 or (answer.status == 404 and "/static/" in answer.url):
            served.problems.append(f"{answer.url}: HTTP {answer.status}")

    page.on("console", console)
    page.on("pageerror", lambda error: served.problems.append(f"{page.url}: script error: {error}"))
    page.on("response", response)
    return page


@pytest.fixture(scope="module")
def page(browser: Any, served: Served) -> Iterator[Any]:
    """A logged-in page: the login form, reached by being sent there from a dashboard."""
    context = browser.new_context(viewport={"width": WIDTH, "height": 900})
    opened = watch(context.new_page(), served)
    opened.goto(f"{served.url}/executive?days=7")
    assert "/login?next=" in opened.url, opened.url
    opened.fill("#token", served.token)
    opened.click("button[type=submit]")
    opened.wait_for_url(f"{served.url}/executive?days=7")
    yield opened
    context.close()


def shoot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": WIDTH, "height": 900})
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def number(page: Any, selector: str) -> float:
    text = page.text_content(selector) or ""
    match = re.search(r"-?[0-9][0-9,]*(\.[0-9]+)?", text)
    assert match, f"{selector}: no number in {text!r}"
    return float(match[0].replace(",", ""))


def targets_shown(page: Any) -> list[str]:
    shown: list[str] = page.eval_on_selector_all("#inventory tbody tr td:first-child a",
                                                 "links => links.map(a => a.textContent)")
    return shown


def charts_drawn(page: Any) -> int:
    count: int = page.evaluate("""() => [...document.querySelectorAll('canvas[data-chart]')]
        .filter(c => window.Chart && Chart.getChart(c) && c.width > 0).length""")
    return count


def test_a_browser_without_a_session_is_sent_to_the_login_form(browser: Any, served: Served) -> None:
    context = browser.new_context()
    anonymous = watch(context.new_page(), served)
    for path in ("/executive", "/oncall", "/inventory?q=lab", "/findings"):
        anonymous.goto(served.url + path)
        assert anonymous.url.startswith(f"{served.url}/login?next="), anonymous.url
        assert anonymous.is_visible("#token")
    anonymous.fill("#token", "tlw_not-a-real-token")
    anonymous.click("button[type=submit]")
    assert "unknown, expired or revoked" in (anonymous.text_content("[role=alert]") or "")
    context.close()


def test_executive_numbers_match_the_cli(page: Any, served: Served) -> None:
    page.goto(f"{served.url}/executive")
    for days in (7, 14, 30):
        listed = served.cli_json("inventory", "list", "--days-left", str(days), "--json")
        assert number(page, f"#expiring-{days}-endpoints") == len(listed), days
        assert number(page, f"#expiring-{days}-certificates") == len({row["leaf"]["sha256"] for row in listed})
    failing = served.cli_json("inventory", "list", "--failing", "--json")
    assert number(page, "#failing-count") == len(failing) > 0
    everything = served.cli_json("inventory", "list", "--json")
    probed = [row for row in everything if row["last_observation"] is not None]
    healthy = [row for row in probed if row["last_observation"]["success"]
               and row["last_observation"]["worst_severity"] not in ("high", "critical")]
    assert number(page, "#healthy-count") == len(healthy)
    slo = served.cli_json("report", "slo", "--json", "--window", "30d")
    assert number(page, "#sli") == pytest.approx(slo["overall"]["success_pct"], abs=0.001)
    assert charts_drawn(page) == 3
    assert page.locator("#worst-groups tbody tr").count() == 3          # owner-0, owner-1, owner-2
    page.goto(f"{served.url}/executive?by=team&target=99.5")
    assert page.locator("#worst-groups tbody tr").count() == len(TEAMS)
    page.goto(f"{served.url}/executive")
    shoot(page, "executive")


def test_oncall_lists_every_firing_alert_and_acks_and_silences(page: Any, served: Served) -> None:
    firing = served.cli_json("alerts", "list", "--json")
    assert firing, "the monitor round raised no alert"
    page.goto(f"{served.url}/oncall")
    shown = page.eval_on_selector_all("tr[data-alert-key]", "rows => rows.map(r => r.dataset.alertKey)")
    assert sorted(shown) == sorted(alert["key"] for alert in firing)
    failing = served.cli_json("inventory", "list", "--failing", "--json")
    assert page.locator("#failing tbody tr").count() == len(failing)
    for row in failing:
        assert page.locator("#failing").get_by_text(f"tlsward scan {row['target']}", exact=True).count() == 1
    assert page.locator("#failing a.finding").count() > 0          # finding ids link to the catalogue
    shoot(page, "oncall")

    expiring = served.lab.endpoint("expiring-5d").target
    key = next(a["key"] for a in firing if a["rule"] == "cert.expiring" and expiring in a["endpoints"])
    row = page.locator(f"tr[data-alert-key='{key}']")
    with page.expect_navigation():
        row.locator("button.ack").click()
    assert page.url.endswith("/oncall?notice=acked")
    assert "acked by " + TOKEN_NAME in (page.locator(f"tr[data-alert-key='{key}']").text_content() or "")
    acked = {a["key"]: a for a in served.cli_json("alerts", "list", "--json")}
    assert acked[key]["acked_by"] == TOKEN_NAME
    assert sum(a["acked_by"] is not None for a in acked.values()) == 1

    other = next(a["key"] for a in firing if a["key"] != key)
    form = page.locator(f"tr[data-alert-key='{other}'] form.silence")
    form.locator("select[name=duration]").select_option("1d")
    form.locator("input[name=comment]").fill("e2e maintenance")
    with page.expect_navigation():
        form.locator("button").click()
    assert page.url.endswith("/oncall?notice=silenced")
    assert page.locator(f"tr[data-alert-key='{other}'] .silenced").count() == 1
    with open_store(served.db) as store:
        now = dt.datetime.now(dt.UTC)
        silences = AlertStore(store).silences(active_at=now)
        audit = AccessStore(store).audit_entries()
    assert [(s.matchers, s.created_by, s.comment) for s in silences] == [
        ((("alert_key", other),), TOKEN_NAME, "e2e maintenance")]
    assert dt.timedelta(hours=23) < silences[0].ends_at - now <= dt.timedelta(days=1)
    assert {(e.actor, e.action, e.target) for e in audit} >= {(TOKEN_NAME, "alert.ack", key),
                                                            (TOKEN_NAME, "silence.add", f"silence {silences[0].id}")}


def test_inventory_search_sort_pages_and_csv(page: Any, served: Served) -> None:
    everything = served.cli_json("inventory", "list", "--json")
    page.goto(f"{served.url}/inventory")
    assert number(page, "#inventory-total") == len(everything)
    assert page.locator("#inventory tbody tr").count() == min(50, len(everything))
    shoot(page, "inventory")

    page.fill("input[name=q]", "expiring")
    with page.expect_navigation():
        page.click(".filters button[type=submit]")
    expected = sorted(row["target"] for row in everything if "expiring" in row["target"])
    assert number(page, "#inventory-total") == len(expected)
    assert targets_shown(page) == expected

    page.goto(f"{served.url}/inventory?sort=days_left&dir=asc&limit=10")
    with_leaf = sorted((row for row in everything if row["leaf"]), key=lambda row: (row["leaf"]["days_left"],
                                                                                     row["target"]))
    first_page = targets_shown(page)
    assert first_page == [row["target"] for row in with_leaf[:10]]
    with page.expect_navigation():
        page.click("#next-page")
    second_page = targets_shown(page)
    assert second_page == [row["target"] for row in with_leaf[10:20]]
    with page.expect_navigation():
        page.click("a[rel=prev]")
    assert targets_shown(page) == first_page

    page.goto(f"{served.url}/inventory?team=web&failing=1")
    csv_url = page.get_attribute("#csv-link", "href")
    assert csv_url is not None and "team=web" in csv_url and "failing=1" in csv_url
    response = page.request.get(served.url + csv_url)
    assert response.ok and response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text())))
    expected_rows = served.cli_json("inventory", "list", "--team", "web", "--failing", "--json")
    assert sorted(row["target"] for row in rows) == sorted(row["target"] for row in expected_rows)
    assert all(row["result"] == "failed" and row["team"] == "web" for row in rows)


def test_endpoint_page_and_rescan_through_the_api(page: Any, served: Served) -> None:
    target = served.lab.endpoint("expiring-5d").target
    with open_store(served.db) as store:
        before = store.observations(target, limit=1000)
    page.goto(f"{served.url}/endpoints/{target}")
    assert page.text_content("h1") == target
    assert page.locator("svg.chain rect.chain-box").count() >= 2          # leaf and intermediate at least
    assert page.locator("#findings").get_by_text("cert.expiring").count() >= 1
    assert page.locator("#history tbody tr").count() == len(before)
    assert charts_drawn(page) == 1
    connect = page.text_content("[data-stored=connect_ms]") or ""
    assert connect.endswith(" ms"), connect                 # the stored probe's own phases
    verdicts = page.locator("table.verdicts tbody tr")
    rows = [verdicts.nth(i).inner_text() for i in range(verdicts.count())]
    assert any("ca-file" in row and "not trusted" not in row for row in rows), rows   # the lab CA given to serve
    assert any("mozilla" in row and "not trusted" in row for row in rows), rows       # public roots: no

    with page.expect_navigation(timeout=90_000):
        page.click("#rescan")            # POST /api/v1/scans, then its event stream; the page reloads when done
    page.wait_for_selector("#history tbody tr")
    assert page.locator("#history tbody tr").count() == len(before) + 1
    handshake = page.text_content("[data-live=handshake_ms]") or ""
    assert handshake.endswith(" ms"), handshake          # the rescan's own per-phase timings
    with open_store(served.db) as store:
        after = store.observations(target, limit=1000)
    assert len(after) == len(before) + 1 and (after[0].probe_id or "").startswith("api:"), after[0]
    assert after[0].success
    shoot(page, "endpoint")


def test_an_untrusted_root_is_untrusted_in_every_store(page: Any, served: Served) -> None:
    page.goto(f"{served.url}/endpoints/{served.lab.endpoint('untrusted-root').target}")
    verdicts = page.locator("table.verdicts tbody tr")
    rows = [verdicts.nth(i).inner_text() for i in range(verdicts.count())]
    assert len(rows) == 3 and all("not trusted" in row for row in rows), rows


def test_certificate_page_shows_every_place_and_its_alerts(page: Any, served: Served) -> None:
    target = served.lab.endpoint("expiring-5d").target
    page.goto(f"{served.url}/endpoints/{target}")
    with page.expect_navigation():
        page.locator("svg.chain a").first.click()     # the leaf's box
    assert "/certificates/" in page.url
    sha = page.url.rsplit("/", 1)[1]
    with open_store(served.db) as store:
        (cert, places), = store.certificate_places(sha)
    assert page.locator("#places tbody tr").count() == len(places) >= 1
    assert page.locator("#places").get_by_text(target).count() == 1
    assert page.locator("#alerts").get_by_text(cert.subject.split(",")[0].removeprefix("CN=")).count() >= 1
    assert page.locator("svg.chain rect.chain-box").count() >= 2
    pem = page.request.get(f"{served.url}/certificates/{sha}.pem")
    assert pem.ok and pem.text().startswith("-----BEGIN CERTIFICATE-----")
    shoot(page, "certificate")


def test_findings_catalogue_and_no_policy_violation_anywhere(page: Any, served: Served) -> None:
    page.goto(f"{served.url}/findings#certexpired")
    assert page.locator("tr#certexpired").count() == 1
    assert "renew" in (page.text_content("tr#certexpiring") or "").lower()
    page.goto(f"{served.url}/endpoints/no-such-endpoint.test:443")
    assert "404" in (page.text_content("h1") or "") and "no endpoint" in (page.text_content("[role=alert]") or "")
    assert served.problems == []      # no CSP violation, script error, server error or missing asset on any page
