"""certificates.toml: a full file parses into what the renewal run needs; every malformed one is a one-line
error naming the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from tlsward.lifecycle.config import load_lifecycle_config
from tlsward.model.errors import UsageError

GOOD = """
state_dir = "state"

[[certificate]]
name = "www"
names = ["www.example.test", "127.0.0.1"]
key_type = "ecdsa-p384"
source = "ca"
[certificate.ca]
dir = "ca"
lifetime = "30d"
[certificate.deploy]
cert = "tls/www.crt"
chain = "tls/chain.pem"
fullchain = "tls/www-full.pem"
key = "tls/www.key"
mode = "0640"
reload = { nginx = true, config = "nginx.conf", prefix = "." }
[certificate.verify]
endpoints = ["127.0.0.1:8443", { target = "127.0.0.1:8444", sni = "www.example.test" }]
trust = "ca.pem"
timeout = "5s"

[[certificate]]
name = "api"
names = ["api.example.test"]
source = "acme"
renew_before = "10d"
[certificate.acme]
directory = "https://127.0.0.1:14000/dir"
challenge = "dns-01"
dns = { server = "127.0.0.1", port = 8053, tsig_name = "k", tsig_secret = "c2VjcmV0" }
[certificate.deploy]
fullchain = "/etc/haproxy/api.pem"
key = "/etc/haproxy/api.pem.key"
reload = { command = "systemctl reload haproxy" }
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "certificates.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_full_file(tmp_path: Path) -> None:
    config = load_lifecycle_config(write(tmp_path, GOOD))
    assert config.state_dir == tmp_path / "state"
    www, api = config.certificates
    assert www.names == ("www.example.test", "127.0.0.1") and www.key_type == "ecdsa-p384"
    assert www.ca is not None and www.ca.directory == tmp_path / "ca" and www.ca.lifetime_s == 30 * 86400
    assert www.deploy.key == tmp_path / "tls/www.key" and www.deploy.mode == 0o640
    assert www.deploy.reload.kind == "nginx" and www.deploy.reload.config == tmp_path / "nginx.conf"
    assert [str(e) for e in www.verify.endpoints] == ["127.0.0.1:8443", "127.0.0.1:8444 (sni www.example.test)"]
    assert www.verify.timeout_s == 5
    assert api.acme is not None and api.acme.dns is not None and api.acme.dns.port == 8053
    assert api.renew_before_s == 10 * 86400
    assert api.deploy.reload.argv == ("systemctl", "reload", "haproxy")
    assert api.deploy.leaf_file == Path("/etc/haproxy/api.pem")
    assert config.named("api") is api


BAD = [
    ("[[certificate]\n", "not TOML"),
    ("colour = 1\n", "unknown key(s) colour"),
    ('[[certificate]]\nname = "x"\n', "certificate[0]: missing names"),
    ('[[certificate]]\nname = "a b"\nnames=["a"]\nsource="ca"\ndeploy={}\n', "certificate[0].name"),
    ('[[certificate]]\nname = "x"\nnames=[]\nsource="ca"\ndeploy={}\n', "certificate[0] (x).names"),
    ('[[certificate]]\nname = "x"\nnames=["a"]\nsource="vault"\ndeploy={}\n', "certificate[0] (x).source"),
    ('[[certificate]]\nname = "x"\nnames=["a"]\nsource="ca"\ndeploy={}\n', "needs a [certificate.ca] table"),
    ('[[certificate]]\nname = "x"\nnames=["a"]\nsource="ca"\nkey_type="dsa"\nca={dir="d"}\ndeploy={}\n',
     "certificate[0] (x).key_type"),
    ('[[certificate]]\nname = "x"\nnames=["a"]\nsource="ca"\nca={dir="d"}\ndeploy={cert="c"}\n',
     "certificate[0] (x).deploy: missing key"),
    ('[[certificate]]\nname = "x"\nnames=["a"]\nsource="ca"\nca={dir="d"}\ndeploy={cert="c", key="c"}\n',
     "must be different files"),
    ('[[certificate]]\nname = "x"\nnames=["a"]\nsource="ca"\nca={dir="d"}\n'
     'deploy={cert="c", key="k", reload={nginx=true, systemd="x"}}\n', "certificate[0] (x).deploy.reload: expected"),
    ('[[certificate]]\nname = "x"\nnames=["a"]\nsource="ca"\nca={dir="d"}\n'
     'deploy={cert="c", key="k", mode="999"}\n', "certificate[0] (x).deploy.mode"),
    ('[[certificate]]\nname = "x"\nnames=["a"]\nsource="ca"\nca={dir="d", lifetime="soon"}\n'
     'deploy={cert="c", key="k"}\n', "certificate[0] (x).ca.lifetime"),
    ('[[certificate]]\nname = "x"\nnames=["a"]\nsource="acme"\nacme={directory="ftp://x"}\n'
     'deploy={cert="c", key="k"}\n', "certificate[0] (x).acme.directory"),
    ('[[certificate]]\nname = "x"\nnames=["a"]\nsource="ca"\nca={dir="d"}\n'
     'deploy={cert="c", key="k"}\nverify={endpoints=[{sni="a"}]}\n', "verify.endpoints[0]: missing target"),
    ('[[certificate]]\nname = "x"\nnames=["a"]\nsource="ca"\nca={dir="d"}\ndeploy={cert="c", key="k"}\n'
     '[[certificate]]\nname = "x"\nnames=["a"]\nsource="ca"\nca={dir="d"}\ndeploy={cert="c2", key="k2"}\n',
     "'x' is used twice"),
    ('[[certificate]]\nname = "x"\nnames=["a"]\nsource="ca"\nca={dir="d"}\ndeploy={cert="c", key="k"}\n'
     '[[certificate]]\nname = "y"\nnames=["a"]\nsource="ca"\nca={dir="d"}\ndeploy={cert="c", key="k2"}\n',
     "is also written by 'x'"),
]


@pytest.mark.parametrize(("text", "expected"), BAD)
def test_malformed_files_fail_with_one_line_naming_file_and_key(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(UsageError) as info:
        load_lifecycle_config(path)
    message = str(info.value)
    assert message.startswith(str(path)) and expected in message and "\n" not in message.strip(), message


def test_missing_file_and_unknown_name(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot read"):
        load_lifecycle_config(tmp_path / "nope.toml")
    config = load_lifecycle_config(write(tmp_path, GOOD))
    with pytest.raises(UsageError, match=r"no managed certificate named 'db' .known: www, api."):
        config.named("db")
