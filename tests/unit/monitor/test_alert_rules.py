"""Alert rules and the alert lifecycle, table-driven and without I/O: stages, grouping, escalation, reminders,
acks, silences, routing, resolution."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest

from tlsward.model.alerts import AlertRecord, AlertStatus, Route
from tlsward.model.findings import Severity
from tlsward.model.inventory import EndpointRecord
from tlsward.model.monitor import AlertSettings, ChainCert, EndpointWatch, ExpiryAlerts, RouteRule, Silence
from tlsward.monitor.alerting import AlertEngine, group, receivers_for
from tlsward.monitor.evaluate import contributions, expiry_stage

NOW = dt.datetime(2030, 6, 1, 12, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
SETTINGS = AlertSettings()


def cert(name: str, *, days_left: float, lifetime: float = 90, issuer: str = "CN=Corp CA") -> ChainCert:
    not_after = NOW + dt.timedelta(days=days_left)
    return ChainCert(sha256=f"{name:0<64}"[:64], subject=f"CN={name}", issuer=issuer,
                     not_before=not_after - dt.timedelta(days=lifetime), not_after=not_after)


def watch(target: str, *chain: ChainCert, team: str = "web", failures: int = 0, findings: tuple[str, ...] = (),
          previous: ChainCert | None = None) -> EndpointWatch:
    host, port = target.split(":")
    return EndpointWatch(endpoint=EndpointRecord(target=target, host=host, port=int(port), owner="ana", team=team),
                         observed_at=NOW, success=failures == 0, failure_kind="refused" if failures else None,
                         finding_ids=findings, consecutive_failures=failures, chain=chain, chain_seen_at=NOW,
                         previous_leaf=previous, previous_leaf_until=NOW if previous else None)


@pytest.mark.parametrize(("days_left", "lifetime", "stage"), [
    (40, 90, None), (29, 90, 0), (20, 90, 0), (13, 90, 1), (6.5, 90, 2), (2.5, 90, 3), (-0.1, 90, 4),
    (1.5, 6, 2),          # a 6-day certificate with 1.5 days left: caps 2, 1.5, 1.5, 0.5
    (3, 6, None),         # ... with 3 days left is half-way: not news
    (14, 47, 0),          # a 47-day certificate is flagged at a third of its life (15.7 d), not at 30 d
    (10, 47, 1),          # ... and at a quarter (11.75 d) for the second threshold
    (20, 47, None),
])
def test_expiry_stage_is_capped_by_lifetime(days_left: float, lifetime: float, stage: int | None) -> None:
    assert expiry_stage(days_left, lifetime, ExpiryAlerts()) == stage


def test_effective_chain_expiry_counts_an_intermediate_that_expires_first() -> None:
    leaf = cert("leaf", days_left=80)
    intermediate = cert("intermediate", days_left=5, lifetime=1000)
    [alert] = contributions(watch("a.test:443", leaf, intermediate), SETTINGS, NOW)
    assert (alert.key, alert.stage, alert.route) == (f"cert.expiring:{leaf.sha256}", "7d", Route.PAGE)
    assert "CN=intermediate" in alert.summary and "expires before the leaf" in alert.summary


def test_failing_needs_n_in_a_row_and_chain_changes_need_a_new_issuer() -> None:
    leaf = cert("leaf", days_left=80)
    assert contributions(watch("a.test:443", leaf, failures=2), SETTINGS, NOW) == []
    [failing] = contributions(watch("a.test:443", leaf, failures=3), SETTINGS, NOW)
    assert failing.rule == "probe.failing" and "refused" in failing.summary and failing.route is Route.PAGE
    same_issuer = watch("a.test:443", leaf, previous=cert("old", days_left=2))
    assert contributions(same_issuer, SETTINGS, NOW) == []
    [changed] = contributions(watch("a.test:443", leaf, previous=cert("old", days_left=2, issuer="CN=Other")),
                              SETTINGS, NOW)
    assert changed.rule == "chain.changed" and changed.route is Route.TICKET


def test_findings_alert_while_present_and_only_on_a_successful_probe() -> None:
    leaf = cert("leaf", days_left=80)
    [tls10] = contributions(watch("a.test:443", leaf, findings=("protocol.tls10", "chain.contains_root")),
                            SETTINGS, NOW)
    assert (tls10.key, tls10.route, tls10.severity) == ("protocol.tls10:a.test:443", Route.TICKET, Severity.HIGH)


def engine() -> AlertEngine:
    return AlertEngine(SETTINGS, (), ("hook", "mail"))


def reconcile(eng: AlertEngine, stored: dict[str, AlertRecord], watches: list[EndpointWatch], now: dt.datetime,
              silences: tuple[Silence, ...] = ()) -> tuple[dict[str, AlertRecord], list[tuple[str, str]]]:
    desired = group(c for w in watches for c in contributions(w, SETTINGS, now))
    decision = eng.reconcile(stored, desired, silences, now)
    merged = {**stored, **{r.alert.key: r for r in decision.records}}
    return merged, [(str(n.kind), n.receiver) for n in decision.notifications]


def test_one_alert_per_certificate_escalation_reminder_ack_and_resolution() -> None:
    eng = engine()
    shared = cert("shared", days_left=20)
    watches = [watch("a.test:443", shared), watch("b.test:443", shared, team="api")]
    stored, sent = reconcile(eng, {}, watches, NOW)
    [record] = stored.values()
    assert sent == [("firing", "hook"), ("firing", "mail")]
    assert record.alert.endpoints == ("a.test:443", "b.test:443") and record.stage == "30d"
    assert reconcile(eng, stored, watches, NOW + dt.timedelta(hours=1))[1] == [], "nothing new within the hour"
    stored, sent = reconcile(eng, stored, watches, NOW + DAY)            # 19 days left, 24 h later: a reminder
    assert sent == [("reminder", "hook"), ("reminder", "mail")]
    key = record.alert.key
    stored[key] = replace(stored[key], acked_at=NOW + DAY, acked_by="ana")
    assert reconcile(eng, stored, watches, NOW + 3 * DAY)[1] == [], "acked: no reminders"
    stored, sent = reconcile(eng, stored, watches, NOW + 7 * DAY)        # 13 days left: escalation clears the ack
    assert sent == [("firing", "hook"), ("firing", "mail")] and stored[key].stage == "14d"
    assert stored[key].acked_at is None
    renewed = [watch("a.test:443", cert("renewed", days_left=80)), watch("b.test:443", cert("renewed", days_left=80))]
    stored, sent = reconcile(eng, stored, renewed, NOW + 7 * DAY)
    assert sent == [("resolved", "hook"), ("resolved", "mail")]
    assert stored[key].alert.status is AlertStatus.RESOLVED and len(stored) == 1, "the new certificate is fine"


def test_silence_holds_notifications_and_releases_them_when_it_ends() -> None:
    eng = engine()
    watches = [watch("a.test:443", cert("leaf", days_left=5))]
    silence = Silence((("team", "web"),), NOW - DAY, NOW + DAY)
    stored, sent = reconcile(eng, {}, watches, NOW, (silence,))
    assert sent == [] and next(iter(stored.values())).notified_stage is None
    stored, sent = reconcile(eng, stored, watches, NOW + 2 * DAY, (silence,))
    assert sent == [("firing", "hook"), ("firing", "mail")], "silence over, still firing: notify now"


def test_routes_first_match_wins_unless_continue() -> None:
    stored, _ = reconcile(engine(), {}, [watch("a.test:443", cert("leaf", days_left=5), team="payments")], NOW)
    alert = next(iter(stored.values())).alert
    routes = (RouteRule(("pd",), (("team", "payments"), ("route", "page")), continue_matching=True),
              RouteRule(("slack-payments",), (("team", "payments"),)), RouteRule(("default",)))
    assert receivers_for(alert, routes, ()) == ["pd", "slack-payments"]
    assert receivers_for(alert, (RouteRule(("x",), (("team", "web"),)),), ("y",)) == []
    assert receivers_for(alert, (), ("y", "z")) == ["y", "z"]


def test_chain_change_stays_for_the_hold_period_unless_acked() -> None:
    eng = engine()
    leaf = cert("new", days_left=80, issuer="CN=New CA")
    stored, sent = reconcile(eng, {}, [watch("a.test:443", leaf, previous=cert("old", days_left=80))], NOW)
    assert [s[0] for s in sent] == ["firing", "firing"]
    steady = [watch("a.test:443", leaf)]
    assert reconcile(eng, stored, steady, NOW + dt.timedelta(hours=2))[1] == []
    _, sent = reconcile(eng, stored, steady, NOW + dt.timedelta(hours=25))
    assert [s[0] for s in sent] == ["resolved", "resolved"]
    key = next(iter(stored))
    acked = {key: replace(stored[key], acked_at=NOW, acked_by="ana")}
    assert [s[0] for s in reconcile(eng, acked, steady, NOW + dt.timedelta(hours=2))[1]] == ["resolved", "resolved"]
