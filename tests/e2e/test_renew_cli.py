"""``tlsward renew`` and ``tlsward cert`` as cron runs them: one line per certificate, exit 0 when all is well or
nothing is due, exit 1 when any certificate failed (the others still renew), exit 2 for a malformed file, and a
certificate another run is renewing is skipped with the holder's pid."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.test_scan_cli import explain, tlsward
from tlsward.ca.authority import CertificateAuthority
from tlsward.storage import open_store

pytestmark = pytest.mark.e2e

CONFIG = """
state_dir = "state"

[[certificate]]
name = "www"
names = ["www.renew.test"]
source = "ca"
ca = {{ dir = "ca", lifetime = "9d" }}
[certificate.deploy]
fullchain = "tls/www.pem"
key = "tls/www.key"
reload = {{ command = ["{python}", "-c", "open('reloaded', 'a').write('x')"] }}

[[certificate]]
name = "broken"
names = ["broken.renew.test"]
source = "ca"
ca = {{ dir = "ca" }}
[certificate.deploy]
fullchain = "no-such-dir/broken.pem"
key = "no-such-dir/broken.key"
"""

HOLD = """
import sys, time
from pathlib import Path
from tlsward.lifecycle.lock import certificate_lock
with certificate_lock(Path(sys.argv[1]), "www"):
    print("held", flush=True)
    time.sleep(30)
"""


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, str]:
    db = f"sqlite:///{tmp_path / 'inventory.db'}"
    with open_store(db) as store:
        CertificateAuthority.init(tmp_path / "ca", store, name="Renew CLI CA", passphrase=None,
                                  root_passphrase=b"root secret")
    (tmp_path / "tls").mkdir()
    config = tmp_path / "certificates.toml"
    config.write_text(CONFIG.format(python=sys.executable), encoding="utf-8")
    return config, db


def test_renew_all_from_cron(setup: tuple[Path, str], tmp_path: Path) -> None:
    config, db = setup
    first = tlsward("renew", "--all", "--config", str(config), "--db", db)
    assert first.returncode == 1, explain(first)
    assert "www: renewed (no certificate deployed yet: " in first.stdout and ", deployed, `" in first.stdout
    assert "broken: FAILED to deploy; the previous files are untouched: " in first.stderr, explain(first)
    assert "no-such-dir does not exist" in first.stderr
    assert (tmp_path / "tls" / "www.pem").exists() and (tmp_path / "reloaded").read_text() == "x"
    assert (tmp_path / "tls" / "www.key").stat().st_mode & 0o777 == 0o600

    again = tlsward("renew", "www", "--config", str(config), "--db", db)
    assert again.returncode == 0, explain(again)
    assert "www: not due (renews " in again.stdout and "2/3 of its lifetime has passed" in again.stdout

    listed = tlsward("cert", "list", "--json", "--config", str(config), "--db", db)
    assert listed.returncode == 0, explain(listed)
    rows = {row["name"]: row for row in json.loads(listed.stdout)}
    assert rows["www"]["last_outcome"] == "deployed" and rows["www"]["sha256"] and not rows["www"]["due"]
    assert rows["broken"]["last_outcome"] == "failed" and rows["broken"]["due"]

    dry = tlsward("renew", "--all", "--dry-run", "--config", str(config), "--db", db)
    assert dry.returncode == 0 and "broken: due (" in dry.stdout and "dry run" in dry.stdout, explain(dry)


def test_a_busy_certificate_and_bad_input(setup: tuple[Path, str], tmp_path: Path) -> None:
    config, db = setup
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path / "state")], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        busy = tlsward("cert", "renew", "www", "--config", str(config), "--db", db)
        assert busy.returncode == 1, explain(busy)
        assert f"www: skipped, renewal of www already running (pid {holder.pid})" in busy.stderr
    finally:
        holder.kill()
        holder.wait(10)
    assert not (tmp_path / "tls" / "www.pem").exists()

    config.write_text('[[certificate]]\nname = "x"\n', encoding="utf-8")
    bad = tlsward("renew", "--all", "--config", str(config), "--db", db)
    assert bad.returncode == 2 and "certificate[0]: missing names" in bad.stderr, explain(bad)
    assert len(bad.stderr.strip().splitlines()) == 1
    unknown = tlsward("renew", "nope", "--config", str(tmp_path / "missing.toml"), "--db", db)
    assert unknown.returncode == 2 and "missing.toml: cannot read" in unknown.stderr, explain(unknown)
