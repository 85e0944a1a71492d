"""Probe orders on the wire (what the scheduler sends and workers accept) and the ``[distributed]`` settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from tlsward.distributed.settings import DistributedSettings, load_settings, parse_settings, redact
from tlsward.model.distributed import ProbeOrder, base_probe_id, decode_batch, encode_batch
from tlsward.model.errors import UsageError


def test_orders_survive_the_wire_and_reject_anything_else() -> None:
    orders = [ProbeOrder("7:1700000000000", 7, "a.test:443", 1.7e9),
              ProbeOrder("8:1700000000000:deep", 8, "smtp://b.test:25", 1.7e9, sni="b.test", connect="192.0.2.1",
                         team="mail", deep=True, links=(("nginx", "/etc/nginx/a.conf", 12, "/etc/ssl/a.pem", None),))]
    body = encode_batch("dmz", orders, 1.7e9)
    assert decode_batch(body) == ("dmz", orders)
    with pytest.raises(ValueError, match="version"):
        decode_batch({**body, "v": 2})
    with pytest.raises(ValueError, match="not a probe order"):
        decode_batch({**body, "probes": [{"id": "1:2"}]})
    with pytest.raises(ValueError, match="does not belong"):
        decode_batch({**body, "probes": [{**orders[0].to_wire(), "endpoint": 9}]})
    with pytest.raises(UsageError):
        decode_batch({**body, "zone": "Not A Zone"})


@pytest.mark.parametrize(("observed", "scheduled"), [
    ("7:1700", "7:1700"), ("7:1700:deep", "7:1700:deep"), ("7:1700:192.0.2.1", "7:1700"),
    ("7:1700:192.0.2.1:deep", "7:1700:deep"), ("7:1700:2001:db8::1", "7:1700")])
def test_observation_ids_map_back_to_the_scheduled_probe(observed: str, scheduled: str) -> None:
    assert base_probe_id(observed) == scheduled


def test_settings_from_the_config_file_then_the_environment_then_flags(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "monitor.toml"
    config.write_text('[distributed]\nbatch_size = 50\nlease_ttl = "30s"\nvisibility_timeout = "10m"\n'
                      'max_resends = 0\n')
    monkeypatch.setenv("TLSWARD_BROKER", "amqp://u:secret@mq:5672//")
    settings = load_settings(config)
    assert (settings.batch_size, settings.lease_ttl_s, settings.visibility_timeout_s, settings.max_resends) == \
        (50, 30.0, 600.0, 0)
    assert settings.broker_kind() == "amqp" and settings.broker_url() == "amqp://u:secret@mq:5672//"
    flagged = load_settings(config, broker="redis://r:6379/2", overrides={"batch_size": 5, "nonsense": 1})
    assert flagged.broker == "redis://r:6379/2" and flagged.batch_size == 5 and flagged.broker_kind() == "redis"
    config.write_text('[distributed]\nbroker = "redis://cfg:6379/0"\n')
    assert load_settings(config).broker == "redis://cfg:6379/0"          # the file wins over the environment
    yaml = tmp_path / "monitor.yaml"
    yaml.write_text("distributed:\n  heartbeat: 2s\n")
    assert load_settings(yaml).heartbeat_s == 2.0


@pytest.mark.parametrize(("table", "message"), [
    ({"brokr": "x"}, "unknown key(s) brokr"),
    ({"broker": "http://x"}, "redis://"),
    ({"broker": 5}, "expected a URL"),
    ({"batch_size": 0}, "batch_size: expected a whole number >= 1"),
    ({"batch_size": True}, "batch_size"),
    ({"max_resends": -1}, ">= 0"),
    ({"lease_ttl": "soon"}, "distributed.lease_ttl"),
])
def test_bad_settings_are_one_line_usage_errors(table: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_settings({"distributed": table}, "monitor.toml")


def test_no_broker_is_a_usage_error_and_passwords_stay_out_of_messages() -> None:
    with pytest.raises(UsageError, match="needs a broker"):
        DistributedSettings().broker_url()
    assert redact("amqp://guest:hunter2@mq:5672//") == "amqp://guest:***@mq:5672//"
    assert redact("redis://r:6379/0") == "redis://r:6379/0"
    soft, hard = DistributedSettings(probe_time_limit_s=10, deep_time_limit_s=100, write_time_limit_s=5).task_limits(
        deep=False)
    assert (soft, hard) == (15, 45)
    assert DistributedSettings(deep_time_limit_s=100, write_time_limit_s=5).task_limits(deep=True)[0] == 105


def test_the_monitor_config_accepts_the_distributed_table(tmp_path: Path) -> None:
    from tlsward.monitor.config import load_config

    config = tmp_path / "monitor.toml"
    config.write_text('[probes]\ninterval = "1m"\n[distributed]\nbroker = "redis://r:6379/0"\n')
    assert load_config(config).config.probes.interval_s == 60
