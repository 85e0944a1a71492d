"""Apache: virtual host addresses, SSLEngine and certificate inheritance, includes, sections, line syntax."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.unit.configs.helpers import addresses, problem_ids, touch, write
from tlsward.configs import read_apache
from tlsward.model.findings import FINDING_CATALOGUE


def vhost(tmp_path: Path, address: str, body: str = "", *, head: str = "Listen 443\n") -> Path:
    touch(tmp_path, "c.pem", "k.pem")
    return write(tmp_path, "httpd.conf", f"""\
{head}<VirtualHost {address}>
    ServerName example.test
    SSLEngine on
    SSLCertificateFile c.pem
    SSLCertificateKeyFile k.pem
{body}</VirtualHost>
""")


@pytest.mark.parametrize(("address", "expected"), [
    ("*:443", [(None, 443)]),
    ("_default_:443", [(None, 443)]),
    ("127.0.0.1:8443", [("127.0.0.1", 8443)]),
    ("[2001:db8::1]:443", [("2001:db8::1", 443)]),
    ("192.0.2.1:443 [2001:db8::1]:443", [("192.0.2.1", 443), ("2001:db8::1", 443)]),
    ("www.example.test:443", [("www.example.test", 443)]),
    ("*", [(None, 443)]),                  # no port: every Listen port
    ("127.0.0.1:*", [("127.0.0.1", 443)]),
])
def test_virtual_host_addresses(tmp_path: Path, address: str, expected: list[tuple[str | None, int]]) -> None:
    scan = read_apache(vhost(tmp_path, address))
    assert addresses(scan) == expected
    assert scan.problems == ()


def test_listener_fields(tmp_path: Path) -> None:
    touch(tmp_path, "chain.pem")
    root = vhost(tmp_path, "*:443", "    ServerAlias www.example.test *.example.test\n"
                                    "    ServerAlias alt.example.test\n    SSLCertificateChainFile chain.pem\n")
    scan = read_apache(root)
    (listener,) = scan.listeners
    assert listener.server == "apache"
    assert (listener.config_path, listener.line) == (str(root), 2)
    assert listener.server_names == ("example.test", "www.example.test", "*.example.test", "alt.example.test")
    assert listener.certificate_paths == (str(tmp_path / "c.pem"),)
    assert listener.key_paths == (str(tmp_path / "k.pem"),)
    assert listener.chain_paths == (str(tmp_path / "chain.pem"),)
    assert scan.server == "apache"
    assert scan.files_read == (str(root),)


@pytest.mark.parametrize(("engine", "tls"), [("on", True), ("On", True), ("off", False), ("optional", False)])
def test_sslengine(tmp_path: Path, engine: str, tls: bool) -> None:
    root = write(tmp_path, "httpd.conf", f"<VirtualHost *:443>\n  SSLEngine {engine}\n</VirtualHost>\n")
    assert bool(read_apache(root).listeners) is tls


def test_vhost_without_sslengine_is_plain(tmp_path: Path) -> None:
    root = write(tmp_path, "httpd.conf", "Listen 80\n<VirtualHost *:80>\n  ServerName plain.test\n</VirtualHost>\n")
    assert read_apache(root).listeners == ()


@pytest.mark.parametrize(("server_name", "expected"), [
    ("example.test", "example.test"),
    ("https://example.test:443", "example.test"),
    ("example.test:8443", "example.test"),
])
def test_server_name_forms(tmp_path: Path, server_name: str, expected: str) -> None:
    root = write(tmp_path, "httpd.conf", f"<VirtualHost *:443>\nServerName {server_name}\nSSLEngine on\n"
                                         "</VirtualHost>\n")
    assert read_apache(root).listeners[0].server_names == (expected,)


def test_main_server_settings_are_inherited(tmp_path: Path) -> None:
    """SSLEngine, ServerName and certificates of the main server apply to a vhost that does not set them;
    a vhost's Nth SSLCertificateFile replaces the main server's Nth (mod_ssl's merge)."""
    touch(tmp_path, "rsa.pem", "rsa.key", "ec.pem", "ec.key", "own.pem", "own.key", "chain.pem")
    root = write(tmp_path, "httpd.conf", """\
        ServerName main.test
        SSLEngine on
        SSLCertificateFile rsa.pem
        SSLCertificateKeyFile rsa.key
        SSLCertificateFile ec.pem
        SSLCertificateKeyFile ec.key
        SSLCertificateChainFile chain.pem
        Listen 443
        Listen 8443
        <VirtualHost *:443>
        </VirtualHost>
        <VirtualHost *:8443>
            ServerName own.test
            SSLCertificateFile own.pem
            SSLCertificateKeyFile own.key
        </VirtualHost>
        <VirtualHost *:8080>
            SSLEngine off
        </VirtualHost>
        """)
    inherit, own = read_apache(root).listeners
    assert inherit.server_names == ("main.test",)
    assert inherit.certificate_paths == (str(tmp_path / "rsa.pem"), str(tmp_path / "ec.pem"))
    assert inherit.key_paths == (str(tmp_path / "rsa.key"), str(tmp_path / "ec.key"))
    assert inherit.chain_paths == (str(tmp_path / "chain.pem"),)
    assert own.server_names == ("own.test",)
    assert own.certificate_paths == (str(tmp_path / "own.pem"), str(tmp_path / "ec.pem"))
    assert own.key_paths == (str(tmp_path / "own.key"), str(tmp_path / "ec.key"))


def test_main_server_with_sslengine_listens_on_unclaimed_ports(tmp_path: Path) -> None:
    touch(tmp_path, "c.pem", "k.pem")
    root = write(tmp_path, "httpd.conf", """\
        Listen 127.0.0.1:443 https
        Listen [::1]:8443
        Listen 9443
        ServerName main.test
        SSLEngine on
        SSLCertificateFile c.pem
        SSLCertificateKeyFile k.pem
        <VirtualHost *:9443>
            ServerName vhost.test
        </VirtualHost>
        """)
    scan = read_apache(root)
    assert [(lst.address, lst.port, lst.server_names, lst.line) for lst in scan.listeners] == [
        (None, 9443, ("vhost.test",), 8),
        ("127.0.0.1", 443, ("main.test",), 1),
        ("::1", 8443, ("main.test",), 2),
    ]


def test_sections_nest_and_negated_ssl_ifmodule_is_skipped(tmp_path: Path) -> None:
    touch(tmp_path, "c.pem", "k.pem")
    root = write(tmp_path, "httpd.conf", """\
        <IfModule mod_ssl.c>
          <IfDefine !NOSSL>
            <VirtualHost *:443>
                ServerName nested.test
                <Directory "/var/www/html">
                    Options None
                    <IfModule mod_rewrite.c>
                        RewriteEngine on
                    </IfModule>
                </Directory>
                <Location /status>
                    Require local
                </Location>
                <IfModule mod_ssl.c>
                    SSLEngine on
                    SSLCertificateFile c.pem
                </IfModule>
                SSLCertificateKeyFile k.pem
            </VirtualHost>
          </IfDefine>
        </IfModule>
        <IfModule !mod_ssl.c>
            <VirtualHost *:443>
                SSLEngine on
            </VirtualHost>
        </IfModule>
        <Macro SSLHost $name>
            <VirtualHost *:443>
                ServerName $name
                SSLEngine on
            </VirtualHost>
        </Macro>
        """)
    scan = read_apache(root)
    assert scan.problems == ()
    (listener,) = scan.listeners
    assert listener.server_names == ("nested.test",)
    assert listener.certificate_paths == (str(tmp_path / "c.pem"),)
    assert listener.key_paths == (str(tmp_path / "k.pem"),)


def test_line_syntax_continuations_quotes_comments(tmp_path: Path) -> None:
    touch(tmp_path, "dir with space/c.pem", "k.pem")
    root = write(tmp_path, "httpd.conf", r"""
        # <VirtualHost *:9999> in a comment is not a section
        # and a comment that goes on \
        <VirtualHost *:8443> is still a comment line
        <VirtualHost \
            127.0.0.1:443>
            ServerName \
                one.test
            ServerAlias "quoted alias.test" 'single.test' "with \"escaped\" quotes"
            SSLEngine	on
            SSLCertificateFile "dir with space/c.pem"
            sslcertificatekeyfile k.pem
        </virtualhost>
        """)
    scan = read_apache(root)
    assert scan.problems == ()
    (listener,) = scan.listeners
    assert (listener.address, listener.port, listener.line) == ("127.0.0.1", 443, 5)
    assert listener.server_names == ("one.test", "quoted alias.test", "single.test", 'with "escaped" quotes')
    assert listener.certificate_paths == (str(tmp_path / "dir with space/c.pem"),)


def test_includes_globs_directories_and_server_root(tmp_path: Path) -> None:
    server_root = tmp_path / "srv"
    touch(server_root, "ssl/a.pem", "ssl/a.key", "ssl/b.pem", "ssl/b.key")
    write(server_root, "sites/a.conf", """\
        <VirtualHost *:443>
            ServerName a.test
            SSLEngine on
            SSLCertificateFile ssl/a.pem
            SSLCertificateKeyFile ssl/a.key
        </VirtualHost>
        """)
    write(server_root, "sites/b.conf", "IncludeOptional snippets/b-*.conf\n")
    write(server_root, "snippets/b-vhost.conf", """\
        <VirtualHost *:8443>
            ServerName b.test
            SSLEngine on
            SSLCertificateFile ssl/b.pem
            SSLCertificateKeyFile ssl/b.key
        </VirtualHost>
        """)
    write(server_root, "conf.d/ports.conf", "Listen 443\n")
    write(server_root, "conf.d/00-sub/more-ports.conf", "Listen 8443\n")   # read where it sorts
    root = write(tmp_path, "etc/httpd.conf", f"""\
        ServerRoot "{server_root}"
        Include conf.d
        Include sites/*.conf
        IncludeOptional optional/*.conf
        IncludeOptional optional-missing.conf
        """)
    scan = read_apache(root)
    assert scan.problems == ()
    assert [(lst.server_names, lst.port) for lst in scan.listeners] == [(("a.test",), 443), (("b.test",), 8443)]
    assert scan.listeners[0].certificate_paths == (str(server_root / "ssl/a.pem"),)
    assert scan.listeners[0].config_path == str(server_root / "sites/a.conf")
    assert scan.files_read == (str(root), str(server_root / "conf.d/00-sub/more-ports.conf"),
                               str(server_root / "conf.d/ports.conf"), str(server_root / "sites/a.conf"),
                               str(server_root / "sites/b.conf"), str(server_root / "snippets/b-vhost.conf"))


def test_without_server_root_paths_are_relative_to_the_config_or_the_given_root(tmp_path: Path) -> None:
    touch(tmp_path, "conf/c.pem", "d/c.pem")
    root = write(tmp_path, "conf/httpd.conf", "<VirtualHost *:443>\nSSLEngine on\nSSLCertificateFile c.pem\n"
                                              "</VirtualHost>\n")
    assert read_apache(root).listeners[0].certificate_paths == (str(tmp_path / "conf/c.pem"),)
    given = read_apache(root, server_root=str(tmp_path / "d"))
    assert given.listeners[0].certificate_paths == (str(tmp_path / "d/c.pem"),)


def test_missing_includes(tmp_path: Path) -> None:
    root = write(tmp_path, "httpd.conf", """\
        Include missing.conf
        Include missing-dir/*.conf
        <VirtualHost *:443>
            SSLEngine on
        </VirtualHost>
        """)
    scan = read_apache(root)
    assert problem_ids(scan) == [("file.unreadable", "httpd.conf", 1), ("file.unreadable", "httpd.conf", 2)]
    assert "matches no file" in scan.problems[1].finding.evidence
    assert addresses(scan) == [(None, 443)]


def test_include_loop(tmp_path: Path) -> None:
    write(tmp_path, "a.conf", "Include b.conf\n<VirtualHost *:443>\nSSLEngine on\n</VirtualHost>\n")
    write(tmp_path, "b.conf", "Include a.conf\nInclude httpd.conf\n")
    root = write(tmp_path, "httpd.conf", "Include a.conf\n")
    scan = read_apache(root)
    assert addresses(scan) == [(None, 443)]
    assert sorted(problem_ids(scan)) == [("config.syntax", "b.conf", 1), ("config.syntax", "b.conf", 2)]


def test_define_variables(tmp_path: Path) -> None:
    touch(tmp_path, "certs/site.pem")
    root = write(tmp_path, "httpd.conf", f"""\
        Define CERTS {tmp_path}/certs
        Define PORT 8443
        <VirtualHost *:${{PORT}}>
            SSLEngine on
            SSLCertificateFile ${{CERTS}}/site.pem
            SSLCertificateKeyFile ${{UNDEFINED}}/site.key
        </VirtualHost>
        """)
    scan = read_apache(root)
    (listener,) = scan.listeners
    assert listener.port == 8443
    assert listener.certificate_paths == (str(tmp_path / "certs/site.pem"),)
    assert listener.key_paths == ()
    assert problem_ids(scan) == [("config.syntax", "httpd.conf", 6)]
    assert "${UNDEFINED}" in scan.problems[0].finding.evidence


@pytest.mark.parametrize(("text", "line", "words", "kept"), [
    ("<VirtualHost *:443>\nSSLEngine on\n</VirtualHost>\n</VirtualHost>\n", 4, "without a matching", 1),
    ("<VirtualHost *:443>\nSSLEngine on\n</VirtualHost>\n<VirtualHost *:8443>\nSSLEngine on\n", 4,
     "never closed", 2),
    ("<VirtualHost *:443>\nSSLEngine on\n<Directory />\n</VirtualHost>\n", 4, "closes <Directory>", 1),
    ("<VirtualHost *:443>\nSSLEngine on\n</VirtualHost>\n<VirtualHost *:8443\n", 4, "closing '>'", 1),
    ('<VirtualHost *:443>\nSSLEngine on\nServerName "open\n</VirtualHost>\n', 3, "unterminated", 1),
    ("<VirtualHost *:443>\nSSLEngine maybe\n</VirtualHost>\n", 2, "SSLEngine", 0),
    ("<VirtualHost *:443>\nSSLEngine on\n</VirtualHost>\n<VirtualHost *:99999>\nSSLEngine on\n</VirtualHost>\n",
     4, "invalid port", 1),
    ("<VirtualHost *:443>\nSSLEngine on\n<VirtualHost *:8443>\n</VirtualHost>\n</VirtualHost>\n", 3,
     "inside another", 1),
    ("Listen http\n<VirtualHost *:443>\nSSLEngine on\n</VirtualHost>\n", 1, "invalid port", 1),
    ("<VirtualHost *>\nSSLEngine on\n</VirtualHost>\n", 1, "no port", 0),
])
def test_syntax_errors_keep_what_was_read(tmp_path: Path, text: str, line: int, words: str, kept: int) -> None:
    root = write(tmp_path, "httpd.conf", text)
    scan = read_apache(root)
    assert len(scan.listeners) == kept
    assert problem_ids(scan) == [("config.syntax", "httpd.conf", line)]
    assert words in scan.problems[0].finding.evidence


def test_missing_certificate_files(tmp_path: Path) -> None:
    root = vhost(tmp_path, "*:443", "    SSLCertificateChainFile /nonexistent/chain.pem\n")
    (tmp_path / "k.pem").unlink()
    scan = read_apache(root)
    assert len(scan.listeners) == 1
    assert problem_ids(scan) == [("config.missing_file", "httpd.conf", 6), ("config.missing_file", "httpd.conf", 7)]
    problem = scan.problems[0]
    spec = FINDING_CATALOGUE["config.missing_file"]
    assert (problem.finding.severity, problem.finding.title) == (spec.severity, spec.title)
    assert problem.finding.evidence == (f"{root} line 6: SSLCertificateKeyFile names {tmp_path / 'k.pem'}, "
                                        "which does not exist")
    assert problem.finding.remediation.confirm == f"apachectl -t -f {root}"


def test_ten_megabyte_config_is_quick(tmp_path: Path) -> None:
    touch(tmp_path, "c.pem", "k.pem")
    block = ("<VirtualHost 127.0.0.1:%d>\n  ServerName a%d.test\n  SSLEngine on\n  SSLCertificateFile c.pem\n"
             "  SSLCertificateKeyFile \"k.pem\"\n  # comment\n</VirtualHost>\n")
    count = 10_000_000 // len(block % (1024, 0)) + 1
    root = write(tmp_path, "httpd.conf")
    root.write_text("".join(block % (1024 + i % 60000, i) for i in range(count)))
    started = time.monotonic()
    scan = read_apache(root)
    assert time.monotonic() - started < 20
    assert len(scan.listeners) == count
    assert scan.problems == ()
