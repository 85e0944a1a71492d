"""The monitor config: defaults, every section, and one-line errors that name the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from tlsward.model.alerts import Route
from tlsward.model.durations import parse_duration
from tlsward.model.errors import UsageError
from tlsward.monitor.config import load_config, parse_config

FULL = """
[probes]
interval = "2m"
jitter = 0.2
concurrency = 50
timeout = "3s"
ca_files = ["ca.pem"]
all_ips = true

[alerts]
failing_after = 2
renotify_page = "1h"

[alerts.expiry]
thresholds = [21, 7]
routes = ["ticket", "page"]

[alerts.findings]
"protocol.tls10" = "page"

[retention]
raw_days = 7
hourly_days = 30
daily_days = 365

[[routes]]
match = { team = "payments" }
receivers = ["hook"]
continue = true

[[routes]]
receivers = ["hook"]

[receivers.hook]
kind = "webhook"
url = "http://127.0.0.1:9/hook"
"""


def test_defaults_without_a_file() -> None:
    loaded = load_config(None)
    assert loaded.receivers == () and loaded.config.probes.interval_s == 300
    assert loaded.config.alerts.expiry.thresholds == (30, 14, 7, 3)


def test_every_section_is_read(tmp_path: Path) -> None:
    path = tmp_path / "monitor.toml"
    path.write_text(FULL)
    config = load_config(path).config
    assert (config.probes.interval_s, config.probes.jitter, config.probes.concurrency, config.probes.timeout_s,
            config.probes.all_ips) == (120, 0.2, 50, 3, True)
    assert config.alerts.failing_after == 2 and config.alerts.renotify_page_s == 3600
    assert config.alerts.expiry.thresholds == (21, 7) and config.alerts.expiry.routes == (Route.TICKET, Route.PAGE)
    assert config.alerts.finding_routes == (("protocol.tls10", Route.PAGE),)
    assert (config.retention.raw_days, config.retention.daily_days) == (7, 365)
    assert [r.receivers for r in config.routes] == [("hook",), ("hook",)] and config.routes[0].continue_matching


def test_yaml_works_too(tmp_path: Path) -> None:
    path = tmp_path / "monitor.yaml"
    path.write_text("probes:\n  interval: 90s\nreceivers:\n  hook:\n    kind: webhook\n    url: http://127.0.0.1:9/\n")
    loaded = load_config(path)
    assert loaded.config.probes.interval_s == 90 and [r.name for r in loaded.receivers] == ["hook"]


@pytest.mark.parametrize(("text", "message"), [
    ("[probez]\n", "unknown section(s) probez"),
    ("[probes]\nintervall = '5m'\n", "[probes] has unknown key(s) intervall"),
    ("[probes]\ninterval = 'soon'\n", "probes.interval: expected a duration"),
    ("[probes]\ninterval = '-5m'\n", "probes.interval: expected a duration"),
    ("[probes]\njitter = 2\n", "probes.jitter is a fraction"),
    ("[probes]\nconcurrency = 0\n", "probes.concurrency: must be >= 1"),
    ("[alerts]\nfailing_route = 'sms'\n", "expected 'page' or 'ticket'"),
    ("[alerts.expiry]\nthresholds = [7, 30]\n", "decreasing order"),
    ("[alerts.expiry]\nthresholds = [30, 7]\nroutes = ['page']\n", "one route per threshold"),
    ("[alerts.findings]\n'protocol.tls9' = 'page'\n", "unknown finding id 'protocol.tls9'"),
    ("[[routes]]\nreceivers = ['nobody']\n", "unknown receiver(s) nobody"),
    ("[retention]\nraw_days = 30\nhourly_days = 7\n", "retention must satisfy"),
    ("[receivers.x]\nkind = 'fax'\n", "receiver 'x'"),
    ("this is = = not toml", "not TOML"),
])
def test_bad_configs_are_one_line_errors_naming_the_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "monitor.toml"
    path.write_text(text)
    with pytest.raises(UsageError) as info:
        load_config(path)
    assert message in str(info.value) and str(path) in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(("value", "seconds"), [(90, 90.0), ("90", 90.0), ("90s", 90.0), ("5m", 300.0),
                                                ("4h", 14400.0), ("1.5d", 129600.0), ("250ms", 0.25)])
def test_durations(value: object, seconds: float) -> None:
    assert parse_duration(value, "x") == seconds


def test_unreadable_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot read"):
        load_config(tmp_path / "missing.toml")
    with pytest.raises(UsageError, match="expected a table"):
        parse_config([], "list.yaml")  # type: ignore[arg-type]
