"""`tlsward monitor` with a [renewal] section runs the renewals itself (before probing, with --once), and the
renewal history reaches the normal alert pipeline: a failed certificate fires cert.renewal_failed, routed and
notified like every other alert."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from tlsward.ca.authority import CertificateAuthority
from tlsward.model.alerts import AlertStatus, Notification
from tlsward.model.errors import UsageError
from tlsward.model.lifecycle import Outcome
from tlsward.monitor.config import parse_config
from tlsward.monitor.scheduler import Monitor
from tlsward.storage import open_store
from tlsward.storage.alerts import AlertStore
from tlsward.storage.lifecycle import LifecycleStore

CERTS = """
[[certificate]]
name = "www"
names = ["www.monitor.test"]
source = "ca"
ca = {{ dir = "ca" }}
deploy = {{ fullchain = "www.pem", key = "www.key", reload = {{ command = ["{python}", "-c", "pass"] }} }}

[[certificate]]
name = "gone"
names = ["gone.monitor.test"]
source = "ca"
ca = {{ dir = "no-such-ca" }}
deploy = {{ fullchain = "gone.pem", key = "gone.key" }}
"""


def test_renewal_section(tmp_path: Path) -> None:
    loaded = parse_config({"renewal": {"certificates": "certs.toml", "interval": "6h"}}, "m.toml", base_dir=tmp_path)
    assert loaded.config.renewal is not None
    assert loaded.config.renewal.certificates == str(tmp_path / "certs.toml")
    assert loaded.config.renewal.interval_s == 6 * 3600
    with pytest.raises(UsageError, match=r"m\.toml: renewal\.certificates must be"):
        parse_config({"renewal": {"interval": "1h"}}, "m.toml")
    with pytest.raises(UsageError, match=r"m.toml: \[renewal\] has unknown key\(s\) every"):
        parse_config({"renewal": {"certificates": "c.toml", "every": "1h"}}, "m.toml")


def test_the_monitor_renews_and_alerts_on_a_failed_certificate(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'inventory.db'}"
    with open_store(db) as store:
        CertificateAuthority.init(tmp_path / "ca", store, name="Monitor CA", passphrase=None, root_passphrase=b"r")
    (tmp_path / "certs.toml").write_text(CERTS.format(python=sys.executable), encoding="utf-8")
    loaded = parse_config({"renewal": {"certificates": "certs.toml"}}, "m.toml", base_dir=tmp_path)
    sent: list[Notification] = []
    monitor = Monitor(db, loaded.config, submit=sent.append, receivers=["oncall"])
    asyncio.run(monitor.run(asyncio.Event(), once=True))
    assert (tmp_path / "www.pem").exists() and not (tmp_path / "gone.pem").exists()
    with open_store(db) as store:
        latest = LifecycleStore(store).latest()
        assert latest["www"].outcome is Outcome.DEPLOYED and latest["gone"].outcome is Outcome.FAILED
        firing = {r.alert.key: r.alert for r in AlertStore(store).load(status=AlertStatus.FIRING)}
    assert set(firing) == {"cert.renewal_failed:gone"}
    assert "obtain:" in firing["cert.renewal_failed:gone"].description
    assert [(n.alert.key, n.receiver) for n in sent] == [("cert.renewal_failed:gone", "oncall")]
