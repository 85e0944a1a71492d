"""nginx: the tokenizer, listen forms, ssl inheritance, includes (globs, loops) and broken configs."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.unit.configs.helpers import addresses, problem_ids, touch, write
from tlsward.configs import read_nginx
from tlsward.model.findings import FINDING_CATALOGUE


def one_server(tmp_path: Path, body: str, *, context: str = "http") -> Path:
    touch(tmp_path, "cert.pem", "key.pem")
    return write(tmp_path, "nginx.conf", f"""\
        events {{}}
        {context} {{
            server {{
                {body}
                ssl_certificate cert.pem;
                ssl_certificate_key key.pem;
            }}
        }}
        """)


@pytest.mark.parametrize(("listen", "expected"), [
    ("listen 443 ssl;", [(None, 443)]),
    ("listen [::]:443 ssl;", [("::", 443)]),
    ("listen [::1] ssl;", [("::1", 80)]),
    ("listen 127.0.0.1:8443 ssl http2;", [("127.0.0.1", 8443)]),
    ("listen *:443 ssl default_server;", [(None, 443)]),
    ("listen 0.0.0.0:443 ssl;", [("0.0.0.0", 443)]),
    ("listen localhost ssl;", [("localhost", 80)]),
    ("listen www.example.test:8443 ssl;", [("www.example.test", 8443)]),
    ("listen 443 ssl; listen [::]:443 ssl;", [(None, 443), ("::", 443)]),
    ("listen 443 ssl; listen 80;", [(None, 443)]),
    ("listen 80;", []),
    ("listen unix:/run/nginx.sock ssl;", []),
    ("listen 443 quic reuseport; listen 443 ssl;", [(None, 443)]),
    ("listen 443 quic;", []),
    ('listen "127.0.0.1:8443" ssl;', [("127.0.0.1", 8443)]),
])
def test_listen_forms(tmp_path: Path, listen: str, expected: list[tuple[str | None, int]]) -> None:
    scan = read_nginx(one_server(tmp_path, listen))
    assert addresses(scan) == expected
    assert scan.problems == ()


def test_listener_fields(tmp_path: Path) -> None:
    path = one_server(tmp_path, "listen 127.0.0.1:8443 ssl;\n server_name example.test www.example.test;")
    scan = read_nginx(path)
    (listener,) = scan.listeners
    assert listener.server == "nginx"
    assert listener.config_path == str(path)
    assert listener.line == 4
    assert listener.server_names == ("example.test", "www.example.test")
    assert listener.certificate_paths == (str(tmp_path / "cert.pem"),)
    assert listener.key_paths == (str(tmp_path / "key.pem"),)
    assert listener.chain_paths == ()
    assert scan.server == "nginx"
    assert scan.root == str(path)
    assert scan.files_read == (str(path),)


@pytest.mark.parametrize(("names", "expected"), [
    ("server_name example.test;", ("example.test",)),
    ('server_name "*.example.test" .example.org;', ("*.example.test", ".example.org")),
    (r"server_name ~^(?<user>\w+)\.example\.test$;", (r"~^(?<user>\w+)\.example\.test$",)),
    ('server_name "" _;', ("_",)),
    ("server_name a.test; server_name b.test a.test;", ("a.test", "b.test")),
    ("", ()),
])
def test_server_names_kept_as_text(tmp_path: Path, names: str, expected: tuple[str, ...]) -> None:
    scan = read_nginx(one_server(tmp_path, f"listen 443 ssl; {names}"))
    assert scan.listeners[0].server_names == expected


def test_tokenizer_quotes_escapes_and_comments(tmp_path: Path) -> None:
    touch(tmp_path, "dir with space/c.pem", "k'ey.pem", "h#ash.pem")
    path = write(tmp_path, "nginx.conf", r"""
        # a comment { with braces } and ; semicolons
        http { # trailing comment
            server {
                listen 443 ssl;   # the TLS port
                server_name "quoted name" 'single;quoted' esc\"aped;
                ssl_certificate "dir with space/c.pem";
                ssl_certificate 'k\'ey.pem';
                ssl_certificate h#ash.pem;
                ssl_certificate_key
                    "dir with space/c.pem";
            }
        }
        """)
    scan = read_nginx(path)
    (listener,) = scan.listeners
    assert listener.server_names == ("quoted name", "single;quoted", 'esc"aped')
    assert listener.certificate_paths == (str(tmp_path / "dir with space/c.pem"), str(tmp_path / "k'ey.pem"),
                                          str(tmp_path / "h#ash.pem"))
    assert listener.key_paths == (str(tmp_path / "dir with space/c.pem"),)
    assert scan.problems == ()


def test_old_ssl_on_directive(tmp_path: Path) -> None:
    scan = read_nginx(one_server(tmp_path, "listen 8443; ssl on;"))
    assert addresses(scan) == [(None, 8443)]
    scan = read_nginx(one_server(tmp_path, "listen 8443; ssl off;"))
    assert addresses(scan) == []


def test_ssl_on_in_http_block_is_inherited_and_can_be_turned_off(tmp_path: Path) -> None:
    touch(tmp_path, "c.pem", "k.pem")
    path = write(tmp_path, "nginx.conf", """
        http {
            ssl on;
            ssl_certificate c.pem;
            ssl_certificate_key k.pem;
            server { listen 8443; }
            server { listen 8080; ssl off; }
        }
        """)
    assert addresses(read_nginx(path)) == [(None, 8443)]


def test_server_without_listen_uses_port_80(tmp_path: Path) -> None:
    scan = read_nginx(one_server(tmp_path, "ssl on;"))
    assert addresses(scan) == [(None, 80)]
    assert scan.listeners[0].line == 3      # the server block itself


def test_ssl_is_a_property_of_the_socket(tmp_path: Path) -> None:
    """``listen 443`` in one server is TLS when another server on 443 says ``ssl`` (nginx shares the socket)."""
    touch(tmp_path, "c.pem", "k.pem")
    path = write(tmp_path, "nginx.conf", """
        http {
            ssl_certificate c.pem;
            ssl_certificate_key k.pem;
            server { listen 443 ssl; server_name a.test; }
            server { listen 443; server_name b.test; }
            server { listen 127.0.0.1:443; server_name c.test; }
        }
        """)
    scan = read_nginx(path)
    assert [(lst.port, lst.server_names) for lst in scan.listeners] == [(443, ("a.test",)), (443, ("b.test",))]


def test_listen_443_and_listen_0_0_0_0_443_are_one_socket(tmp_path: Path) -> None:
    path = write(tmp_path, "nginx.conf", """
        http {
            server { listen 0.0.0.0:443 ssl; server_name a.test; }
            server { listen 443; server_name b.test; }
            server { listen *:443; server_name c.test; }
        }
        """)
    assert addresses(read_nginx(path)) == [("0.0.0.0", 443), (None, 443), (None, 443)]


def test_certificates_inherited_from_http_unless_the_server_has_its_own(tmp_path: Path) -> None:
    touch(tmp_path, "rsa.pem", "rsa.key", "ec.pem", "ec.key", "own.pem", "own.key")
    path = write(tmp_path, "nginx.conf", """
        http {
            ssl_certificate rsa.pem;
            ssl_certificate_key rsa.key;
            ssl_certificate ec.pem;
            ssl_certificate_key ec.key;
            server { listen 443 ssl; server_name inherit.test; }
            server {
                listen 8443 ssl;
                server_name own.test;
                ssl_certificate own.pem;
                ssl_certificate_key own.key;
            }
        }
        """)
    inherit, own = read_nginx(path).listeners
    assert inherit.certificate_paths == (str(tmp_path / "rsa.pem"), str(tmp_path / "ec.pem"))
    assert inherit.key_paths == (str(tmp_path / "rsa.key"), str(tmp_path / "ec.key"))
    assert own.certificate_paths == (str(tmp_path / "own.pem"),)
    assert own.key_paths == (str(tmp_path / "own.key"),)


def test_paths_are_absolute_and_normalized(tmp_path: Path) -> None:
    touch(tmp_path, "certs/a.pem", "certs/a.key")
    path = write(tmp_path, "conf/nginx.conf", """
        http { server {
            listen 443 ssl;
            ssl_certificate ../certs/./a.pem;
            ssl_certificate_key conf/../../certs//a.key;
        } }
        """)
    (listener,) = read_nginx(path).listeners
    assert listener.certificate_paths == (str(tmp_path / "certs/a.pem"),)
    assert listener.key_paths == (str(tmp_path / "certs/a.key"),)


def test_variables_in_certificate_paths_are_a_problem_not_a_crash(tmp_path: Path) -> None:
    touch(tmp_path, "default.pem", "default.key")
    path = write(tmp_path, "nginx.conf", """
        http { server {
            listen 443 ssl;
            ssl_certificate /etc/ssl/$ssl_server_name.crt;
            ssl_certificate_key /etc/ssl/${ssl_server_name}.key;
            ssl_certificate default.pem;
            ssl_certificate_key default.key;
        } }
        """)
    scan = read_nginx(path)
    (listener,) = scan.listeners
    assert listener.certificate_paths == (str(tmp_path / "default.pem"),)
    assert listener.key_paths == (str(tmp_path / "default.key"),)
    assert problem_ids(scan) == [("config.syntax", "nginx.conf", 4), ("config.syntax", "nginx.conf", 5)]
    assert "$ssl_server_name" in scan.problems[0].finding.evidence


def test_inline_data_and_engine_keys_are_not_files(tmp_path: Path) -> None:
    touch(tmp_path, "c.pem")
    path = write(tmp_path, "nginx.conf", """
        http { server {
            listen 443 ssl;
            ssl_certificate c.pem;
            ssl_certificate_key engine:pkcs11:id_45;
        } }
        """)
    scan = read_nginx(path)
    assert scan.listeners[0].key_paths == ()
    assert scan.problems == ()


def test_stream_and_mail_servers(tmp_path: Path) -> None:
    touch(tmp_path, "c.pem", "k.pem")
    path = write(tmp_path, "nginx.conf", """
        stream {
            ssl_certificate c.pem;
            ssl_certificate_key k.pem;
            upstream db { server 127.0.0.1:5432; }
            server { listen 127.0.0.1:15432 ssl; proxy_pass db; }
            server { listen 127.0.0.1:15433; proxy_pass db; }
            server { listen 127.0.0.1:53 udp; proxy_pass db; }
        }
        mail {
            server { listen 993 ssl; protocol imap; ssl_certificate c.pem; ssl_certificate_key k.pem; }
            server { listen 143; protocol imap; starttls on; }
        }
        """)
    scan = read_nginx(path)
    assert addresses(scan) == [("127.0.0.1", 15432), (None, 993)]
    assert scan.listeners[0].certificate_paths == (str(tmp_path / "c.pem"),)


def test_servers_outside_a_context_and_upstream_servers_are_not_listeners(tmp_path: Path) -> None:
    path = write(tmp_path, "nginx.conf", """
        server { listen 443 ssl; }
        http {
            upstream app { server 127.0.0.1:8443; }
            server { listen 80; location / { proxy_pass https://app; } }
        }
        """)
    assert read_nginx(path).listeners == ()


def test_includes_with_globs_are_relative_to_the_main_config_directory(tmp_path: Path) -> None:
    touch(tmp_path, "certs/a.pem", "certs/a.key", "certs/b.pem", "certs/b.key")
    write(tmp_path, "conf.d/a.conf", "server { listen 443 ssl; server_name a.test; include snippets/a-tls.conf; }")
    write(tmp_path, "conf.d/b.conf", "server { listen 8443 ssl; server_name b.test; include snippets/b-tls.conf; }")
    write(tmp_path, "conf.d/ignored.txt", "this is not included {")
    # relative to the main config's directory, not to conf.d/ where the include is written
    write(tmp_path, "snippets/a-tls.conf", "ssl_certificate certs/a.pem; ssl_certificate_key certs/a.key;")
    write(tmp_path, "snippets/b-tls.conf", "ssl_certificate certs/b.pem;\nssl_certificate_key certs/b.key;\n")
    root = write(tmp_path, "nginx.conf", """
        events {}
        http {
            include conf.d/*.conf;
            include nothing-matches/*.conf;
        }
        """)
    scan = read_nginx(root)
    assert scan.problems == ()
    a, b = scan.listeners
    assert (a.server_names, a.config_path, a.line) == (("a.test",), str(tmp_path / "conf.d/a.conf"), 1)
    assert a.certificate_paths == (str(tmp_path / "certs/a.pem"),)
    assert b.key_paths == (str(tmp_path / "certs/b.key"),)
    assert scan.files_read == tuple(str(tmp_path / name) for name in (
        "nginx.conf", "conf.d/a.conf", "snippets/a-tls.conf", "conf.d/b.conf", "snippets/b-tls.conf"))


def test_missing_include_is_unreadable_at_the_include_line(tmp_path: Path) -> None:
    root = write(tmp_path, "nginx.conf", """\
        http {
            include missing.conf;
            server { listen 443 ssl; }
        }
        """)
    scan = read_nginx(root)
    assert problem_ids(scan) == [("file.unreadable", "nginx.conf", 2)]
    assert str(tmp_path / "missing.conf") in scan.problems[0].finding.evidence
    assert addresses(scan) == [(None, 443)]


def test_include_loop_is_reported_and_finishes(tmp_path: Path) -> None:
    write(tmp_path, "a.conf", "include b.conf;\nserver { listen 443 ssl; }\n")
    write(tmp_path, "b.conf", "include a.conf;\ninclude nginx.conf;\n")
    root = write(tmp_path, "nginx.conf", "http { include a.conf; }\n")
    scan = read_nginx(root)
    assert addresses(scan) == [(None, 443)]
    assert sorted(problem_ids(scan)) == [("config.syntax", "b.conf", 1), ("config.syntax", "b.conf", 2)]
    assert "loops" in scan.problems[0].finding.evidence


def test_self_include_via_glob(tmp_path: Path) -> None:
    root = write(tmp_path, "nginx.conf", "http { include *.conf; server { listen 443 ssl; } }\n")
    scan = read_nginx(root)
    assert addresses(scan) == [(None, 443)]
    assert problem_ids(scan) == [("config.syntax", "nginx.conf", 1)]


def test_deep_include_chain_stops_at_the_depth_limit(tmp_path: Path) -> None:
    for level in range(200):
        write(tmp_path, f"level{level}.conf", f"include level{level + 1}.conf;\n")
    root = write(tmp_path, "nginx.conf", "include level0.conf;\nhttp { server { listen 443 ssl; } }\n")
    scan = read_nginx(root)
    assert addresses(scan) == [(None, 443)]
    assert [p.finding.id for p in scan.problems] == ["config.syntax"]
    assert "deeper than" in scan.problems[0].finding.evidence


def test_include_fan_out_is_bounded(tmp_path: Path) -> None:
    """Ten includes of the next file, ten levels deep, would be 10**10 reads: the budget stops it quickly."""
    for level in range(10):
        write(tmp_path, f"f{level}.conf", f"include f{level + 1}.conf;\n" * 10)
    write(tmp_path, "f10.conf", "# leaf\n")
    root = write(tmp_path, "nginx.conf", "include f0.conf;\nhttp { server { listen 443 ssl; } }\n")
    started = time.monotonic()
    scan = read_nginx(root)
    assert time.monotonic() - started < 10
    assert addresses(scan) == [(None, 443)]
    assert any("more than" in p.finding.evidence for p in scan.problems)


def test_the_same_snippet_may_be_included_many_times(tmp_path: Path) -> None:
    touch(tmp_path, "c.pem", "k.pem")
    write(tmp_path, "tls.conf", "ssl_certificate c.pem; ssl_certificate_key k.pem;")
    root = write(tmp_path, "nginx.conf", """
        http {
            server { listen 443 ssl; include tls.conf; }
            server { listen 8443 ssl; include tls.conf; }
        }
        """)
    scan = read_nginx(root)
    assert scan.problems == ()
    assert [lst.certificate_paths for lst in scan.listeners] == [(str(tmp_path / "c.pem"),)] * 2


@pytest.mark.parametrize(("text", "line", "words", "kept"), [
    ("http {\n server { listen 443 ssl; }\n}\n}\nhttp { server { listen 8443 ssl; } }\n", 4, "unbalanced",
     [(None, 443)]),
    ("http {\n server { listen 443 ssl; }\n server { listen 8443 ssl;\n", 3, "never closed",
     [(None, 443), (None, 8443)]),
    ("http {\n server { listen 443 ssl; }\n server { listen 8443 ssl }\n}\n", 3, "not terminated",
     [(None, 443)]),
    ('http {\n server { listen 443 ssl; }\n server { server_name "open;\n', 3, "unterminated", [(None, 443)]),
    ("http {\n server { listen 443 ssl; }\n ;\n}\n", 3, "unexpected", [(None, 443)]),
    ("http {\n server { listen 443 ssl; }\n { }\n}\n", 3, "unexpected", [(None, 443)]),
    ("http {\n server { listen 443 ssl; }\n server { listen 8443 ssl; } server_name x\n", 3,
     "end of file", [(None, 443), (None, 8443)]),
    ("http {\n server { listen 443 ssl; }\n server { listen 99999 ssl; }\n}\n", 3, "invalid port", [(None, 443)]),
    ("http {\n server { listen 443 ssl; ssl maybe; }\n}\n", 2, "on", [(None, 443)]),
])
def test_syntax_errors_keep_what_was_read(tmp_path: Path, text: str, line: int, words: str,
                                          kept: list[tuple[str | None, int]]) -> None:
    root = write(tmp_path, "nginx.conf", text)
    scan = read_nginx(root)
    assert addresses(scan) == kept
    assert problem_ids(scan) == [("config.syntax", "nginx.conf", line)]
    finding = scan.problems[0].finding
    assert words in finding.evidence
    assert f"{root} line {line}" in finding.evidence


def test_missing_certificate_is_a_problem_and_the_listener_stays(tmp_path: Path) -> None:
    touch(tmp_path, "key.pem")
    root = write(tmp_path, "nginx.conf", """\
        http {
            ssl_certificate /nonexistent/inherited.pem;
            server {
                listen 443 ssl;
                ssl_certificate_key key.pem;
            }
            server {
                listen 8443 ssl;
                ssl_certificate_key key.pem;
            }
        }
        """)
    scan = read_nginx(root)
    assert addresses(scan) == [(None, 443), (None, 8443)]
    assert scan.listeners[0].certificate_paths == ("/nonexistent/inherited.pem",)
    (problem,) = scan.problems
    spec = FINDING_CATALOGUE["config.missing_file"]
    assert (problem.path, problem.line) == (str(root), 2)
    assert (problem.finding.id, problem.finding.severity, problem.finding.title) == (spec.id, spec.severity,
                                                                                     spec.title)
    assert problem.finding.evidence == (f"{root} line 2: ssl_certificate names /nonexistent/inherited.pem, "
                                        "which does not exist")
    assert problem.finding.remediation.confirm == f"nginx -t -c {root}"
    assert "/nonexistent/inherited.pem" in problem.finding.remediation.fix
    assert str(problem) == f"{root}:2: config.missing_file: {problem.finding.evidence}"


def test_unreadable_root(tmp_path: Path) -> None:
    scan = read_nginx(tmp_path / "absent.conf")
    assert scan.listeners == ()
    assert scan.files_read == ()
    assert problem_ids(scan) == [("file.unreadable", "absent.conf", None)]
    assert scan.problems[0].finding.evidence == f"{tmp_path / 'absent.conf'}: the config cannot be read " \
                                                "(no such file or directory)"
    scan = read_nginx(tmp_path)
    assert [p.finding.id for p in scan.problems] == ["file.unreadable"]


def test_relative_root_is_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    one_server(tmp_path, "listen 443 ssl;")
    monkeypatch.chdir(tmp_path)
    scan = read_nginx("nginx.conf")
    assert scan.root == str(tmp_path / "nginx.conf")
    assert scan.listeners[0].certificate_paths == (str(tmp_path / "cert.pem"),)


def test_ten_megabyte_config_is_quick(tmp_path: Path) -> None:
    touch(tmp_path, "c.pem", "k.pem")
    server = ("server {\n  listen 127.0.0.1:%d ssl; # comment\n  server_name a%d.test \"b.test\";\n"
              "  ssl_certificate c.pem;\n  ssl_certificate_key k.pem;\n  location / { return 200 'ok'; }\n}\n")
    count = 10_000_000 // len(server % (1024, 0)) + 1
    body = "".join(server % (1024 + i % 60000, i) for i in range(count))
    root = write(tmp_path, "nginx.conf", "")
    root.write_text(f"http {{\n{body}}}\n")
    assert root.stat().st_size >= 10_000_000
    started = time.monotonic()
    scan = read_nginx(root)
    assert time.monotonic() - started < 20
    assert len(scan.listeners) == count
    assert scan.problems == ()
    assert scan.listeners[-1].line == 1 + 7 * (count - 1) + 2
