"""``/api/v1/alerts`` and ``/api/v1/silences``: listing by status, acknowledging by key prefix, silences with
their times checked (400 problems naming what is wrong), ending them, and the audit trail of each change."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from tests.unit.web.conftest import Api, problem
from tlsward.model.access import Role
from tlsward.model.alerts import Alert, AlertRecord, AlertStatus, Route
from tlsward.model.findings import Severity
from tlsward.storage import Store
from tlsward.storage.access import AccessStore
from tlsward.storage.alerts import AlertStore

V = {"role": Role.VIEWER}
OP = {"role": Role.OPERATOR}


def alert(key: str, status: AlertStatus = AlertStatus.FIRING, severity: Severity = Severity.HIGH) -> AlertRecord:
    now = dt.datetime.now(dt.UTC)
    return AlertRecord(Alert(key=key, rule=key.split(":")[0], status=status, severity=severity, route=Route.TICKET,
                             summary=f"{key} summary", description="evidence", fix="renew it",
                             endpoints=("a.example:443",), labels=(("rule", key.split(":")[0]), ("team", "web")),
                             owner="ana", team="web", starts_at=now,
                             ends_at=now if status is AlertStatus.RESOLVED else None), stage="7d")


@pytest.fixture
def alerts(store: Store) -> None:
    AlertStore(store).save([alert("cert.expiring:aaaa:7d"), alert("cert.expiring:bbbb:7d", severity=Severity.CRITICAL),
                            alert("chain.untrusted:cccc", AlertStatus.RESOLVED)], dt.datetime.now(dt.UTC))


def test_alerts_by_status_worst_first(api: Api, alerts: None) -> None:
    firing = api.get("/api/v1/alerts", **V).json()["items"]
    assert [a["key"] for a in firing] == ["cert.expiring:bbbb:7d", "cert.expiring:aaaa:7d"]
    assert firing[0]["severity"] == "critical" and firing[0]["labels"] == {"rule": "cert.expiring", "team": "web"}
    assert [a["key"] for a in api.get("/api/v1/alerts?status=resolved", **V).json()["items"]] == [
        "chain.untrusted:cccc"]
    assert len(api.get("/api/v1/alerts?status=all", **V).json()["items"]) == 3
    problem(api.get("/api/v1/alerts?status=burning", **V), 400)


def test_ack_by_prefix_is_audited_and_an_unknown_key_is_404(api: Api, alerts: None, store: Store) -> None:
    acked = api.post("/api/v1/alerts/ack", json={"key": "cert.expiring:"}, **OP)
    assert acked.status_code == 200 and acked.json() == {"acknowledged": 2}
    assert {a["acked_by"] for a in api.get("/api/v1/alerts", **V).json()["items"]} == {"operator"}
    assert "no firing alert" in problem(api.post("/api/v1/alerts/ack", json={"key": "chain."}, **OP), 404)["detail"]
    problem(api.post("/api/v1/alerts/ack", json={"key": "  "}, **OP), 400)    # an empty prefix would ack all
    problem(api.post("/api/v1/alerts/ack", json={}, **OP), 400)
    entries = [(e.actor, e.action, e.target, e.detail) for e in AccessStore(store).audit_entries()]
    assert entries == [("operator", "alert.ack", "cert.expiring:", "2 alert(s)")]


def test_silences_are_added_listed_and_ended(api: Api, store: Store) -> None:
    added = api.post("/api/v1/silences", json={"matchers": {"team": "web", "rule": "cert.expiring"},
                                               "duration": "2h", "comment": "renewal in progress"}, **OP)
    assert added.status_code == 201, added.text
    silence = added.json()
    assert silence["matchers"] == {"rule": "cert.expiring", "team": "web"} and silence["active"] is True
    assert silence["created_by"] == "operator"
    ends = dt.datetime.fromisoformat(silence["ends_at"]) - dt.datetime.fromisoformat(silence["starts_at"])
    assert ends == dt.timedelta(hours=2) and added.headers["location"] == f"/api/v1/silences/{silence['id']}"
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=3)
    window = api.post("/api/v1/silences", json={"matchers": {"environment": "staging"},
                                                "starts_at": later.isoformat(),
                                                "ends_at": (later + dt.timedelta(hours=4)).isoformat()}, **OP)
    assert window.status_code == 201 and window.json()["active"] is False, "a maintenance window, scheduled"
    assert len(api.get("/api/v1/silences", **V).json()["items"]) == 2
    assert api.delete(f"/api/v1/silences/{silence['id']}", **OP).status_code == 204
    problem(api.delete(f"/api/v1/silences/{silence['id']}", **OP), 404)
    assert [s["id"] for s in api.get("/api/v1/silences", **V).json()["items"]] == [window.json()["id"]]
    assert len(api.get("/api/v1/silences?include_expired=true", **V).json()["items"]) == 2
    assert [e.action for e in AccessStore(store).audit_entries()] == ["silence.end", "silence.add", "silence.add"]


NOW = dt.datetime.now(dt.UTC)


@pytest.mark.parametrize(("body", "detail"), [
    ({"matchers": {}, "duration": "1h"}, "matchers"),
    ({"matchers": {"team": ""}, "duration": "1h"}, "matchers"),
    ({"matchers": {"": "web"}, "duration": "1h"}, "matchers"),
    ({"matchers": {"team": "web"}}, "give duration or ends_at"),
    ({"matchers": {"team": "web"}, "duration": "1h", "ends_at": (NOW + dt.timedelta(hours=2)).isoformat()},
     "give duration or ends_at"),
    ({"matchers": {"team": "web"}, "duration": "soon"}, "duration: expected a duration"),
    ({"matchers": {"team": "web"}, "duration": "-1h"}, "duration"),
    ({"matchers": {"team": "web"}, "duration": "99999999999d"}, "at most 3660d"),
    ({"matchers": {"team": "web"}, "ends_at": "2031-01-01T00:00:00"}, "give a UTC offset"),
    ({"matchers": {"team": "web"}, "ends_at": "tomorrow"}, "ends_at"),
    ({"matchers": {"team": "web"}, "starts_at": (NOW + dt.timedelta(hours=2)).isoformat(),
      "ends_at": (NOW + dt.timedelta(hours=1)).isoformat()}, "ends before it starts"),
    ({"matchers": {"team": "web"}, "starts_at": "2020-01-01T00:00:00Z", "ends_at": "2020-01-02T00:00:00Z"},
     "already be over"),
    ({"matchers": {"team": "web"}, "starts_at": "9999-12-31T23:00:00-05:00", "duration": "1d"}, "out of range"),
    ({"matchers": {"team": "web"}, "starts_at": "9999-12-31T23:00:00Z", "duration": "2h"}, "past the year 9999"),
    ({"matchers": {"team": "web\u0007"}, "duration": "1h"}, "control characters"),
    ({"matchers": {"team": "web"}, "duration": "1h", "until": "x"}, "until"),
])
def test_bad_silences_are_400_problems_naming_what_is_wrong(api: Api, body: dict[str, Any], detail: str) -> None:
    assert detail in problem(api.post("/api/v1/silences", json=body, **OP), 400)["detail"]


@pytest.mark.parametrize("silence_id", ["0", "-1", "x", str(2**63), "9" * 40])
def test_bad_silence_ids_are_400(api: Api, silence_id: str) -> None:
    problem(api.delete(f"/api/v1/silences/{silence_id}", **OP), 400)
