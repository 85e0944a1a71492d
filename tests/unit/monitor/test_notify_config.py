"""Receiver config: every mistake is one line naming the receiver and the key; secrets stay out of repr."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tlsward.model.errors import UsageError
from tlsward.monitor.notify.config import (
    PAGERDUTY_EVENTS_URL,
    ReceiverKind,
    SmtpSecurity,
    receivers_from_mapping,
)


def load(receivers: Any, **kwargs: Any) -> list[Any]:
    return receivers_from_mapping({"receivers": receivers}, **kwargs)


def error(receivers: Any, **kwargs: Any) -> str:
    with pytest.raises(UsageError) as info:
        load(receivers, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_table_form_and_defaults(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    hook, pd, mail = load({
        "hook": {"kind": "webhook", "url": "https://hooks.example.test/tlsward",
                 "headers": {"Authorization": "env:HOOK_TOKEN"}},
        "pd": {"kind": "pagerduty", "routing_key": "env:PD_KEY", "timeout": 5},
        "mail": {"kind": "email", "host": "smtp.example.test", "from": "tw@example.test", "to": "ops@example.test",
                 "username": "tw", "password": "env:SMTP_PASSWORD", "ca_file": "ca.pem"},
    }, environ={"HOOK_TOKEN": "Bearer t0ken", "PD_KEY": "pdkey", "SMTP_PASSWORD": "pw"}, base_dir=tmp_path)
    assert hook.kind is ReceiverKind.WEBHOOK and hook.headers == (("Authorization", "Bearer t0ken"),)
    assert hook.timeout == 10.0 and hook.target == "https://hooks.example.test:443"
    assert pd.url == PAGERDUTY_EVENTS_URL and pd.routing_key == "pdkey" and pd.timeout == 5.0
    assert mail.smtp is not None
    assert (mail.smtp.port, mail.smtp.security, mail.smtp.recipients) == (587, SmtpSecurity.STARTTLS,
                                                                          ("ops@example.test",))
    assert mail.ca_file == ca and mail.target == "smtp://smtp.example.test:587"
    shown = repr([hook, pd, mail])
    assert "t0ken" not in shown and "pdkey" not in shown and "'pw'" not in shown


def test_list_form_and_missing_section() -> None:
    [am] = load([{"name": "am", "kind": "alertmanager", "url": "http://127.0.0.1:9093", "firing_ttl": 600}])
    assert am.name == "am" and am.firing_ttl == 600.0
    assert receivers_from_mapping({}) == []


@pytest.mark.parametrize(("receivers", "expected"), [
    ({"x": {"kind": "sms"}}, "receiver 'x': key 'kind': unknown kind 'sms'"),
    ({"x": {"url": "http://a"}}, "receiver 'x': key 'kind': missing"),
    ({"x": {"kind": "webhook"}}, "receiver 'x': key 'url': missing"),
    ({"x": {"kind": "webhook", "url": "ftp://a"}}, "receiver 'x': key 'url': the URL is not an http:// or https://"),
    ({"x": {"kind": "webhook", "url": "http://a", "host": "b"}}, "receiver 'x': key 'host': not a key of kind"),
    ({"x": {"kind": "webhook", "url": "http://a", "timeout": 0}}, "receiver 'x': key 'timeout': 0 is out of range"),
    ({"x": {"kind": "webhook", "url": "http://a", "timeout": True}}, "key 'timeout': expected a number"),
    ({"x": {"kind": "webhook", "url": "http://a", "headers": {"Content-Length": "1"}}},
     "key 'headers.Content-Length': set by the HTTP client"),
    ({"x": {"kind": "webhook", "url": "http://a", "headers": {"X-A": "a\nb"}}}, "key 'headers.X-A': contains a line"),
    ({"x": {"kind": "pagerduty"}}, "receiver 'x': key 'routing_key': missing"),
    ({"x": {"kind": "pagerduty", "routing_key": "env:NOPE"}},
     "receiver 'x': key 'routing_key': environment variable NOPE is not set"),
    ({"x": {"kind": "email", "host": "smtp.example.test", "from": "a@b.test"}}, "receiver 'x': key 'to': missing"),
    ({"x": {"kind": "email", "host": "smtp.example.test", "from": "a@b.test", "to": ["nope"]}},
     "key 'to': 'nope' is not a plain mail address"),
    ({"x": {"kind": "email", "host": "smtp.example.test", "from": "a@b.test", "to": "c@d.test", "security": "plain"}},
     "key 'security': plain SMTP is only allowed to localhost"),
    ({"x": {"kind": "email", "host": "smtp.example.test", "from": "a@b.test", "to": "c@d.test", "username": "u"}},
     "key 'password': missing: username and password come together"),
    ({"x": {"kind": "email", "host": "h", "from": "a@b.test", "to": "c@d.test", "port": 70000}},
     "key 'port': 70000 is not a port number"),
    ({"x": {"kind": "email", "host": "h", "from": "a@b.test", "to": "c@d.test", "ca_file": "/nonexistent/ca.pem"}},
     "key 'ca_file': /nonexistent/ca.pem: no such file"),
    ({"bad name": {"kind": "webhook", "url": "http://a"}}, "receiver 'bad name': key 'name'"),
    ([{"kind": "webhook"}], "receivers[0]: key 'name': missing"),
    ([{"name": "a", "kind": "webhook", "url": "http://a"}, {"name": "a", "kind": "webhook", "url": "http://a"}],
     "receiver 'a': defined twice"),
    ("nope", "key 'receivers': expected a table of receivers or a list of tables, got a string"),
])
def test_one_line_errors(receivers: Any, expected: str) -> None:
    assert expected in error(receivers, environ={})


def test_plain_smtp_to_localhost_is_allowed() -> None:
    [mail] = load({"m": {"kind": "email", "host": "127.0.0.1", "security": "plain", "from": "a@b.test",
                         "to": ["c@d.test", "e@f.test"]}})
    assert mail.smtp is not None and mail.smtp.port == 25 and mail.smtp.security is SmtpSecurity.PLAIN


def test_secret_url_is_never_echoed() -> None:
    message = error({"s": {"kind": "slack", "url": "env:SLACK"}}, environ={"SLACK": "ftp://hooks/T000/SECRET"})
    assert "SECRET" not in message and "receiver 's': key 'url'" in message
