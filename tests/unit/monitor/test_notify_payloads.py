"""Payload shapes per receiver kind: these are contracts with systems we do not control."""

from __future__ import annotations

import datetime as dt
import json

from tests.unit.monitor.builders import FINGERPRINT, make_notification
from tlsward.model.alerts import NotificationKind, Route
from tlsward.model.findings import Severity
from tlsward.monitor.notify.payloads import (
    MAX_ALERT_KEY_LABEL,
    WEBHOOK_VERSION,
    alert_key_label,
    alertmanager_alerts,
    email_message,
    endpoint_list,
    one_line,
    pagerduty_event,
    rfc3339,
    slack_message,
    status_tag,
    webhook_payload,
)

NOW = dt.datetime(2031, 5, 17, 13, 0, 0, tzinfo=dt.UTC)


def test_rfc3339_is_utc_with_z_and_takes_naive_as_utc() -> None:
    plus_two = dt.timezone(dt.timedelta(hours=2))
    assert rfc3339(dt.datetime(2031, 5, 17, 14, 0, 0, 123456, tzinfo=plus_two)) == "2031-05-17T12:00:00Z"
    assert rfc3339(dt.datetime(2031, 5, 17, 12, 0, 0)) == "2031-05-17T12:00:00Z"


def test_status_tags() -> None:
    assert status_tag(make_notification()) == "[FIRING page]"
    assert status_tag(make_notification(NotificationKind.REMINDER, route=Route.TICKET)) == "[REMINDER ticket]"
    assert status_tag(make_notification(NotificationKind.RESOLVED)) == "[RESOLVED]"


def test_endpoint_list_caps_with_and_n_more() -> None:
    assert endpoint_list(["a", "b"], 3) == "a, b"
    assert endpoint_list(["a", "b", "c", "d", "e"], 3) == "a, b, c and 2 more"


def test_one_line_names_severity_summary_endpoints_and_fix() -> None:
    line = one_line(make_notification())
    assert line == ("[FIRING page] HIGH: Certificate for api.example.test expires in 6 days"
                    " | endpoints: api.example.test:443, 10.0.0.2:443, 10.0.0.3:443 and 2 more"
                    " | fix: Renew the certificate and reload the servers listed.")
    assert line.isascii()
    resolved = one_line(make_notification(NotificationKind.RESOLVED))
    assert resolved.startswith("[RESOLVED] HIGH: ") and "fix:" not in resolved


def test_webhook_payload_shape() -> None:
    payload = webhook_payload(make_notification(receiver="ops"))
    assert payload["version"] == WEBHOOK_VERSION
    assert (payload["kind"], payload["status"], payload["receiver"]) == ("firing", "firing", "ops")
    alert = payload["alert"]
    assert set(alert) == {"key", "rule", "status", "severity", "route", "summary", "description", "fix",
                          "endpoints", "labels", "owner", "team", "starts_at", "ends_at", "runbook_url"}
    assert alert["severity"] == "high" and alert["route"] == "page"
    assert alert["starts_at"] == "2031-05-17T12:00:00Z" and alert["ends_at"] is None
    assert alert["labels"] == {"environment": "prod", "owner": "alice", "team": "payments"}
    json.dumps(payload)   # serialisable as is

    resolved = webhook_payload(make_notification(NotificationKind.RESOLVED))
    assert resolved["status"] == "resolved" and resolved["alert"]["ends_at"] == "2031-05-18T09:30:00Z"


def test_slack_message_escapes_and_caps() -> None:
    notification = make_notification(summary="a <b> & c", endpoints=tuple(f"h{i}:443" for i in range(25)))
    message = slack_message(notification)
    assert message["text"].startswith("[FIRING page] HIGH: a &lt;b&gt; &amp; c | endpoints: h0:443, h1:443, "
                                      "h2:443 and 22 more")
    texts = json.dumps(message["blocks"])
    assert "and 15 more" in texts and "<b>" not in texts
    assert message["blocks"][-1]["type"] == "context"
    assert "<https://runbooks.example.test/cert-expiring|runbook>" in texts
    long = slack_message(make_notification(description="x" * 10_000))
    assert all(len(b["text"]["text"]) <= 3000 for b in long["blocks"] if b["type"] == "section")


def test_pagerduty_trigger_and_resolve() -> None:
    trigger = pagerduty_event(make_notification(), "R0UTING")
    assert trigger["routing_key"] == "R0UTING"
    assert trigger["event_action"] == "trigger"
    assert trigger["dedup_key"] == f"cert.expiring:{FINGERPRINT}:7d"
    payload = trigger["payload"]
    assert payload["severity"] == "error"           # high -> error
    assert payload["source"] == "api.example.test:443"
    assert payload["summary"] == "Certificate for api.example.test expires in 6 days"
    assert payload["timestamp"] == "2031-05-17T12:00:00Z"
    assert payload["custom_details"]["endpoints"][0] == "api.example.test:443"
    assert payload["custom_details"]["fix"].startswith("Renew")
    assert trigger["links"] == [{"href": "https://runbooks.example.test/cert-expiring", "text": "Runbook"}]

    resolve = pagerduty_event(make_notification(NotificationKind.RESOLVED), "R0UTING")
    assert resolve == {"routing_key": "R0UTING", "event_action": "resolve", "dedup_key": trigger["dedup_key"]}


def test_pagerduty_severity_mapping() -> None:
    expected = {Severity.CRITICAL: "critical", Severity.HIGH: "error", Severity.MEDIUM: "warning",
                Severity.LOW: "warning", Severity.INFO: "info"}
    for severity, name in expected.items():
        assert pagerduty_event(make_notification(severity=severity), "k")["payload"]["severity"] == name


def test_alertmanager_alert_labels_and_annotations() -> None:
    [alert] = alertmanager_alerts(make_notification(labels=(("env-name", "prod"), ("__meta", "x"), ("9x", "y"),
                                                            ("severity", "spoofed"))), now=NOW)
    labels = alert["labels"]
    assert labels["alertname"] == "cert.expiring"
    assert labels["severity"] == "high"              # the fixed labels win over the alert's own
    assert labels["route"] == "page" and labels["owner"] == "alice" and labels["team"] == "payments"
    assert labels["alert_key"] == f"cert.expiring:{FINGERPRINT}:7d"
    assert labels["env_name"] == "prod" and labels["_9x"] == "y" and "__meta" not in labels
    assert set(alert["annotations"]) == {"summary", "description", "fix", "runbook_url", "endpoints"}
    assert alert["startsAt"] == "2031-05-17T12:00:00Z"
    assert "endsAt" not in alert and "generatorURL" not in alert


def test_alertmanager_ends_at() -> None:
    [resolved] = alertmanager_alerts(make_notification(NotificationKind.RESOLVED), now=NOW)
    assert resolved["endsAt"] == "2031-05-18T09:30:00Z"
    [no_end] = alertmanager_alerts(make_notification(NotificationKind.RESOLVED, ends_at=None), now=NOW)
    assert no_end["endsAt"] == "2031-05-17T13:00:00Z"
    [ttl] = alertmanager_alerts(make_notification(), now=NOW, firing_ttl=3600, generator_url="https://tw.test/")
    assert ttl["endsAt"] == "2031-05-17T14:00:00Z" and ttl["generatorURL"] == "https://tw.test/"


def test_alert_key_label_is_bounded_and_unique() -> None:
    short = "cert.expired:abc"
    assert alert_key_label(short) == short
    one, two = "k" * 300 + "1", "k" * 300 + "2"
    assert len(alert_key_label(one)) == MAX_ALERT_KEY_LABEL
    assert alert_key_label(one) != alert_key_label(two)


def test_email_subject_body_and_headers() -> None:
    message = email_message(make_notification(), sender="tw@example.test", recipients=["a@example.test",
                            "b@example.test"], now=NOW)
    assert message["Subject"] == "[FIRING page] Certificate for api.example.test expires in 6 days"
    assert message["To"] == "a@example.test, b@example.test"
    assert message["Auto-Submitted"] == "auto-generated"
    body = message.get_content()
    assert "Fix:\nRenew the certificate" in body
    assert "  - 10.0.0.5:443" in body and "Alert key: cert.expiring:" in body

    resolved = email_message(make_notification(NotificationKind.RESOLVED), sender="tw@example.test",
                             recipients=["a@example.test"], now=NOW)
    assert resolved["Subject"] == "[RESOLVED] Certificate for api.example.test expires in 6 days"
    assert "This alert is resolved." in resolved.get_content() and "Fix:" not in resolved.get_content()
    assert resolved["References"] == message["References"]          # one thread per incident
    assert resolved["Message-ID"] != message["Message-ID"]


def test_email_subject_cannot_carry_a_header_injection() -> None:
    message = email_message(make_notification(summary="boom\r\nBcc: evil@example.test"), sender="tw@example.test",
                            recipients=["a@example.test"], now=NOW)
    assert message["Subject"] == "[FIRING page] boom Bcc: evil@example.test"
    headers = message.as_string().split("\n\n", 1)[0]
    assert "\nBcc:" not in headers and message["Bcc"] is None
