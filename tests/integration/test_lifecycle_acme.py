"""Managed certificates from an ACME CA (Debian's pebble, validating http-01 through the client's own listener and
resolving names through a real BIND): obtained, deployed, nginx reloaded, and verified against pebble's root;
the next run finds it not due (pebble has no ARI: the 2/3 rule decides)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.integration.acme_peers import Named, Pebble, make_server_tls, running_named, running_pebble
from tests.integration.lifecycle_support import Nginx, self_signed
from tlsward.lifecycle.config import load_lifecycle_config
from tlsward.lifecycle.renew import renew_certificates
from tlsward.storage import open_store
from tlsward.storage.lifecycle import LifecycleStore

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]


@pytest.fixture(scope="module")
def pebble(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pebble]:
    named_dir, pebble_dir = tmp_path_factory.mktemp("named"), tmp_path_factory.mktemp("pebble")
    named: Named
    with running_named(named_dir) as named, running_pebble(pebble_dir, make_server_tls(pebble_dir), named.port) as p:
        yield p


def test_acme_certificate_is_obtained_deployed_and_verified(pebble: Pebble, tmp_path: Path) -> None:
    root = requests.get(f"{pebble.management_url}/roots/0", verify=str(pebble.ca_bundle), timeout=5)
    root.raise_for_status()
    (tmp_path / "pebble-root.pem").write_text(root.text)
    (tmp_path / "tls").mkdir()
    self_signed(tmp_path, "boot")
    (tmp_path / "boot.pem").rename(tmp_path / "tls" / "fullchain.pem")
    (tmp_path / "boot.key").rename(tmp_path / "tls" / "www.key")
    self_signed(tmp_path, "other")
    nginx = Nginx(tmp_path)
    nginx.check()
    nginx.start()
    try:
        (tmp_path / "certificates.toml").write_text(f"""
state_dir = "state"
[[certificate]]
name = "www"
names = ["www.example.test"]
source = "acme"
[certificate.acme]
directory = "{pebble.directory_url}"
ca_bundle = "{pebble.ca_bundle}"
email = "ops@example.test"
challenge = "http-01-listener"
listen = "127.0.0.1:{pebble.http_port}"
[certificate.deploy]
fullchain = "tls/fullchain.pem"
key = "tls/www.key"
reload = {{ nginx = true, config = "nginx.conf", prefix = "." }}
[certificate.verify]
endpoints = [{{ target = "127.0.0.1:{nginx.port}", sni = "www.example.test" }}]
trust = "pebble-root.pem"
timeout = "10s"
""", encoding="utf-8")
        config = load_lifecycle_config(tmp_path / "certificates.toml")
        with open_store(f"sqlite:///{tmp_path / 'inventory.db'}") as store:
            [result] = renew_certificates(config, store=store)
            assert result.status == "verified", result.lines
            assert result.event is not None and result.event.new_sha256 == nginx.served()
            assert "deployed, nginx reloaded, verified 127.0.0.1:" in result.lines[-1]
            [again] = renew_certificates(config, store=store, now=dt.datetime.now(dt.UTC))
            assert again.status == "not_due" and "2/3 of its lifetime has passed" in again.lines[-1], again.lines
            assert [e.outcome.value for e in LifecycleStore(store).history("www")] == ["verified"]
    finally:
        nginx.stop()
