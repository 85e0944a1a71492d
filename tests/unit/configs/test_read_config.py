"""read_config: server detection, the problem format shared by the three readers, and never raising."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.configs.helpers import addresses, write
from tlsward.configs import detect_server, read_apache, read_config, read_haproxy, read_nginx
from tlsward.model.discovery import ServerKind
from tlsward.model.findings import FINDING_CATALOGUE

NGINX = "events {}\nhttp {\n    server { listen 443 ssl; }\n}\n"
APACHE = "Listen 443\n<VirtualHost *:443>\n    SSLEngine on\n</VirtualHost>\n"
HAPROXY = "global\n    maxconn 100\nfrontend fe\n    bind :443 ssl\n    default_backend be\n"


@pytest.mark.parametrize(("name", "text", "kind"), [
    ("nginx.conf", APACHE, "nginx"),            # the name wins
    ("haproxy.cfg", NGINX, "haproxy"),
    ("httpd.conf", NGINX, "apache"),
    ("apache2.conf", NGINX, "apache"),
    ("site.conf", NGINX, "nginx"),
    ("site.conf", APACHE, "apache"),
    ("site.conf", HAPROXY, "haproxy"),
    ("etc/nginx/sites-enabled/default", "# nothing\n", "nginx"),
    ("etc/apache2/sites-enabled/000-default.conf", "# nothing\n", "apache"),
    ("etc/haproxy/conf.d/x", "# nothing\n", "haproxy"),
    ("site.conf", "# nothing\n", None),
])
def test_detect_server(tmp_path: Path, name: str, text: str, kind: ServerKind | None) -> None:
    assert detect_server(write(tmp_path, name, text)) == kind


def test_detect_server_of_a_missing_file(tmp_path: Path) -> None:
    assert detect_server(tmp_path / "nothing.conf") is None
    assert detect_server(tmp_path / "haproxy.cfg") == "haproxy"


@pytest.mark.parametrize(("text", "kind"), [(NGINX, "nginx"), (APACHE, "apache"), (HAPROXY, "haproxy")])
def test_read_config_detects_and_reads(tmp_path: Path, text: str, kind: ServerKind) -> None:
    scan = read_config(write(tmp_path, "site.conf", text))
    assert scan.server == kind
    assert addresses(scan) == [(None, 443)]
    assert scan.problems == ()


def test_read_config_with_explicit_server(tmp_path: Path) -> None:
    path = write(tmp_path, "nginx.conf", APACHE)
    scan = read_config(path, server="apache")
    assert (scan.server, addresses(scan)) == ("apache", [(None, 443)])


def test_undetectable_config_is_read_as_nginx_with_a_problem(tmp_path: Path) -> None:
    path = write(tmp_path, "site.conf", "# nothing here\n")
    scan = read_config(path)
    assert scan.server == "nginx"
    assert [(p.finding.id, p.line) for p in scan.problems] == [("config.syntax", None)]
    assert "pass the server kind" in scan.problems[0].finding.evidence


def test_unknown_server_kind_is_a_programming_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown server"):
        read_config(tmp_path / "x.conf", server="caddy")  # type: ignore[arg-type]


@pytest.mark.parametrize(("kind", "name", "confirm"), [
    ("nginx", "nginx.conf", "nginx -t -c {root}"),
    ("apache", "httpd.conf", "apachectl -t -f {root}"),
    ("haproxy", "haproxy.cfg", "haproxy -c -f {root}"),
])
def test_every_problem_is_a_catalogue_finding_with_a_remediation(tmp_path: Path, kind: ServerKind, name: str,
                                                                 confirm: str) -> None:
    root = tmp_path / name
    scan = read_config(root, server=kind)
    (problem,) = scan.problems
    spec = FINDING_CATALOGUE["file.unreadable"]
    assert (problem.finding.id, problem.finding.severity, problem.finding.title) == (spec.id, spec.severity,
                                                                                     spec.title)
    assert problem.finding.remediation.confirm == confirm.format(root=root)
    assert str(root) in problem.finding.remediation.fix
    assert str(root) in problem.finding.evidence


def test_debian_apache_confirm_command() -> None:
    scan = read_apache("/etc/apache2/nonexistent-for-tlsward-tests.conf")
    assert scan.problems[0].finding.remediation.confirm == "apache2ctl -t"


_WORDS = ["listen", "server", "http", "ssl", "443", "include", "bind", "crt", "frontend", "<VirtualHost",
          "</VirtualHost>", "SSLEngine on", "Include", "crt-list", "stream", "127.0.0.1:8443", "[::]:443", "${X}",
          "ssl on"]
_ALPHABET = st.sampled_from([*"{};\"'\\#$ \t\n<>/:*[]@,!-_.=~", *_WORDS])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pieces=st.lists(_ALPHABET, max_size=80))
def test_arbitrary_input_never_raises(pieces: list[str]) -> None:
    text = "".join(pieces)
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "input.conf"
        path.write_text(text)
        for reader in (read_nginx, read_apache, read_haproxy):
            scan = reader(path)
            assert scan.root == str(path)
            for listener in scan.listeners:
                assert 0 < listener.port <= 65535
            for problem in scan.problems:
                assert problem.finding.id in FINDING_CATALOGUE


@settings(max_examples=100, deadline=None)
@given(data=st.binary(max_size=400))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "input.conf"
        path.write_bytes(data)
        for reader in (read_nginx, read_apache, read_haproxy):
            reader(path)
        read_config(path)
