"""HAProxy: bind address forms, crt files / directories / crt-lists, crt-base, line syntax, broken configs."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.unit.configs.helpers import addresses, problem_ids, touch, write
from tlsward.configs import read_haproxy
from tlsward.configs.haproxy import tokenize
from tlsward.model.findings import FINDING_CATALOGUE

HEAD = """\
global
    ssl-default-bind-ciphers ECDHE+AESGCM
    ssl-default-bind-options ssl-min-ver TLSv1.2 no-tls-tickets
defaults
    mode http
    timeout client 5s
"""


def frontend(tmp_path: Path, *binds: str, head: str = HEAD) -> Path:
    touch(tmp_path, "site.pem")
    lines = "".join(f"    {bind}\n" for bind in binds)
    return write(tmp_path, "haproxy.cfg", f"{head}frontend fe\n{lines}    default_backend be\nbackend be\n"
                                          "    server s1 127.0.0.1:8080\n")


@pytest.mark.parametrize(("bind", "expected"), [
    ("bind :443 ssl crt site.pem", [(None, 443)]),
    ("bind *:443 ssl crt site.pem", [(None, 443)]),
    ("bind 0.0.0.0:443 ssl crt site.pem", [("0.0.0.0", 443)]),
    ("bind 127.0.0.1:8443 ssl crt site.pem alpn h2,http/1.1", [("127.0.0.1", 8443)]),
    ("bind :::443 v4v6 ssl crt site.pem", [("::", 443)]),
    ("bind [::1]:443 ssl crt site.pem", [("::1", 443)]),
    ("bind ipv6@:443 ssl crt site.pem", [(None, 443)]),
    ("bind ipv4@127.0.0.1:443 ssl crt site.pem", [("127.0.0.1", 443)]),
    ("bind ipv6@::1:443 ssl crt site.pem", [("::1", 443)]),
    ("bind :443,:8443 ssl crt site.pem", [(None, 443), (None, 8443)]),
    ("bind 127.0.0.1:443,[::1]:443 ssl crt site.pem", [("127.0.0.1", 443), ("::1", 443)]),
    ("bind 127.0.0.1:8443-8445 ssl crt site.pem", [("127.0.0.1", 8443), ("127.0.0.1", 8444),
                                                   ("127.0.0.1", 8445)]),
    ('bind "127.0.0.1:8443" ssl crt "site.pem"', [("127.0.0.1", 8443)]),
    ("bind :80", []),
    ("bind :443 crt site.pem", []),                          # crt without ssl: not TLS
    ("bind :443 name ssl", []),                              # "ssl" is the value of name here
    ("bind unix@/run/haproxy.sock ssl crt site.pem", []),
    ("bind /run/haproxy.sock ssl crt site.pem", []),
    ("bind abns@internal ssl crt site.pem", []),
    ("bind quic4@:443 ssl crt site.pem alpn h3", []),
    ("bind fd@${FD_HTTPS} ssl crt site.pem", []),
])
def test_bind_forms(tmp_path: Path, bind: str, expected: list[tuple[str | None, int]]) -> None:
    scan = read_haproxy(frontend(tmp_path, bind))
    assert addresses(scan) == expected
    assert scan.problems == ()


def test_listener_fields_and_listen_sections(tmp_path: Path) -> None:
    touch(tmp_path, "a.pem", "b.pem")
    root = write(tmp_path, "haproxy.cfg", f"""\
{HEAD}frontend fe
    bind 127.0.0.1:443 ssl crt a.pem crt {tmp_path}/b.pem
listen li
    bind 127.0.0.1:8443 ssl crt a.pem
    server s1 127.0.0.1:8080
peers mypeers
    bind 127.0.0.1:10000 ssl crt a.pem
backend be
    server s1 127.0.0.1:8080 ssl crt a.pem
""")
    scan = read_haproxy(root)
    assert scan.server == "haproxy"
    assert scan.problems == ()
    first = scan.listeners[0]
    assert (first.config_path, first.line, first.server) == (str(root), 8, "haproxy")
    assert first.certificate_paths == (str(tmp_path / "a.pem"), str(tmp_path / "b.pem"))
    assert first.key_paths == first.certificate_paths              # combined PEMs
    assert first.server_names == ()
    assert addresses(scan) == [("127.0.0.1", 443), ("127.0.0.1", 8443), ("127.0.0.1", 10000)]


def test_crt_directory_and_key_files(tmp_path: Path) -> None:
    touch(tmp_path, "certs/b.pem", "certs/a.pem", "certs/a.pem.key", "certs/a.pem.ocsp", "certs/a.pem.issuer",
          "certs/a.pem.sctl", "certs/.hidden.pem", "certs/sub/ignored.pem")
    root = frontend(tmp_path, "bind :443 ssl crt certs/")
    (listener,) = read_haproxy(root).listeners
    assert listener.certificate_paths == (str(tmp_path / "certs/a.pem"), str(tmp_path / "certs/b.pem"))
    assert listener.key_paths == (str(tmp_path / "certs/a.pem.key"), str(tmp_path / "certs/b.pem"))


def test_crt_base_and_key_base(tmp_path: Path) -> None:
    touch(tmp_path, "base/site.pem", "keys/site.pem.key", "base/other.pem", "abs.pem")
    head = HEAD.replace("global\n", f"global\n    crt-base {tmp_path}/base\n    key-base {tmp_path}/keys\n")
    root = frontend(tmp_path, f"bind :443 ssl crt site.pem crt other.pem crt {tmp_path}/abs.pem", head=head)
    (listener,) = read_haproxy(root).listeners
    assert listener.certificate_paths == (str(tmp_path / "base/site.pem"), str(tmp_path / "base/other.pem"),
                                          str(tmp_path / "abs.pem"))
    assert listener.key_paths == (str(tmp_path / "keys/site.pem.key"), str(tmp_path / "base/other.pem"),
                                  str(tmp_path / "abs.pem"))


def test_crt_list_names_come_from_sni_filters(tmp_path: Path) -> None:
    touch(tmp_path, "certs/www.pem", "certs/api.pem", "certs/default.pem", "certs/dir/x.pem")
    write(tmp_path, "lists/sites.crtlist", """\
        # certificates per name
        certs/www.pem [alpn h2,http/1.1 ssl-min-ver TLSv1.2] www.example.test example.test
        certs/api.pem [ ocsp-update on ] *.api.example.test !old.api.example.test

        certs/default.pem   # no filter: names come from the certificate
        "certs/www.pem" www.example.test
        """)
    head = HEAD.replace("global\n", f"global\n    crt-base {tmp_path}\n")
    root = frontend(tmp_path, "bind :443 ssl crt-list lists/sites.crtlist crt certs/default.pem", head=head)
    scan = read_haproxy(root)
    assert scan.problems == ()
    (listener,) = scan.listeners
    assert listener.server_names == ("www.example.test", "example.test", "*.api.example.test")
    assert listener.certificate_paths == tuple(str(tmp_path / f"certs/{name}.pem")
                                               for name in ("default", "www", "api"))
    assert scan.files_read == (str(root), str(tmp_path / "lists/sites.crtlist"))


def test_crt_list_problems(tmp_path: Path) -> None:
    write(tmp_path, "list.txt", """\
        missing.pem www.example.test
        bad.pem [alpn h2 name.example.test
        "unterminated.pem
        """)
    root = frontend(tmp_path, "bind :443 ssl crt-list list.txt", "bind :8443 ssl crt-list absent.txt")
    scan = read_haproxy(root)
    assert addresses(scan) == [(None, 443), (None, 8443)]
    assert problem_ids(scan) == [("config.syntax", "list.txt", 2), ("config.syntax", "list.txt", 3),
                                 ("file.unreadable", "haproxy.cfg", 9), ("config.missing_file", "list.txt", 1)]
    assert scan.listeners[0].server_names == ("www.example.test",)


@pytest.mark.parametrize(("line", "words"), [
    ("bind :443 ssl crt site.pem", ["bind", ":443", "ssl", "crt", "site.pem"]),
    ("bind :443 ssl crt site.pem # comment", ["bind", ":443", "ssl", "crt", "site.pem"]),
    ("bind :443 ssl crt site.pem#comment", ["bind", ":443", "ssl", "crt", "site.pem"]),
    ('bind "127.0.0.1:443" crt "/a b/c.pem"', ["bind", "127.0.0.1:443", "crt", "/a b/c.pem"]),
    ("crt '/a b/c.pem'", ["crt", "/a b/c.pem"]),
    (r"crt /a\ b/c\#d.pem", ["crt", "/a b/c#d.pem"]),
    (r'crt "/a \"q\" b"', ["crt", '/a "q" b']),
    ("""crt "/a"'/b'/c""", ["crt", "/a/b/c"]),
    ('crt "# not a comment"', ["crt", "# not a comment"]),
    (r"crt \x41.pem", ["crt", "A.pem"]),
    ("# only a comment", []),
    ("", []),
])
def test_tokenize(line: str, words: list[str]) -> None:
    assert tokenize(line) == (words, None)


@pytest.mark.parametrize("line", ['crt "open', "crt 'open", "crt trailing\\"])
def test_tokenize_errors(line: str) -> None:
    assert tokenize(line)[1] is not None


def test_quoted_crt_path_with_spaces(tmp_path: Path) -> None:
    touch(tmp_path, "dir with space/site.pem")
    root = frontend(tmp_path, 'bind :443 ssl crt "dir with space/site.pem"  # the site')
    (listener,) = read_haproxy(root).listeners
    assert listener.certificate_paths == (str(tmp_path / "dir with space/site.pem"),)


@pytest.mark.parametrize(("text", "line", "words", "kept"), [
    ("bind :443 ssl crt site.pem\nfrontend fe\n    bind :443 ssl crt site.pem\n", 1, "outside any section", 1),
    ("frontend fe\n    bind :443 ssl crt site.pem\n    bind :8443 ssl crt \"site.pem\n    bind :9443 ssl\n", 3,
     "unterminated", 2),
    ("frontend fe\n    bind :443 ssl crt site.pem\n    bind :8443 ssl crt\n", 3, "without a file", 2),
    ("frontend fe\n    bind :443 ssl crt site.pem\n    bind\n", 3, "without an address", 1),
    ("frontend fe\n    bind :443 ssl crt site.pem\n    bind 127.0.0.1 ssl\n", 3, "no port", 1),
    ("frontend fe\n    bind :443 ssl crt site.pem\n    bind :http ssl\n", 3, "invalid port", 1),
    ("frontend fe\n    bind :443 ssl crt site.pem\n    bind :9000-1 ssl\n", 3, "invalid port", 1),
    ("frontend fe\n    bind :443 ssl crt site.pem\n    bind :1-65535 ssl\n", 3, "invalid port", 1),
    ("frontend fe\n    bind :443 ssl crt site.pem\n    bind ${ADDR}:443 ssl\n", 3, "environment", 1),
    ("frontend fe\n    bind :443 ssl crt site.pem crt ${CERT}\n", 2, "environment", 1),
    ("frontend\n    bind :443 ssl crt site.pem\n", 1, "without a name", 1),
])
def test_syntax_errors_keep_what_was_read(tmp_path: Path, text: str, line: int, words: str, kept: int) -> None:
    touch(tmp_path, "site.pem")
    root = write(tmp_path, "haproxy.cfg", text)
    scan = read_haproxy(root)
    assert len(scan.listeners) == kept
    assert problem_ids(scan) == [("config.syntax", "haproxy.cfg", line)]
    assert words in scan.problems[0].finding.evidence


def test_missing_certificate(tmp_path: Path) -> None:
    root = frontend(tmp_path, "bind :443 ssl crt site.pem crt gone.pem")
    scan = read_haproxy(root)
    (listener,) = scan.listeners
    assert listener.certificate_paths == (str(tmp_path / "site.pem"), str(tmp_path / "gone.pem"))
    (problem,) = scan.problems
    spec = FINDING_CATALOGUE["config.missing_file"]
    assert (problem.finding.id, problem.finding.severity, problem.finding.title) == (spec.id, spec.severity,
                                                                                     spec.title)
    assert (problem.path, problem.line) == (str(root), 8)
    assert problem.finding.evidence == f"{root} line 8: crt names {tmp_path / 'gone.pem'}, which does not exist"
    assert problem.finding.remediation.confirm == f"haproxy -c -f {root}"


def test_unreadable_root(tmp_path: Path) -> None:
    scan = read_haproxy(tmp_path / "absent.cfg")
    assert scan.listeners == ()
    assert problem_ids(scan) == [("file.unreadable", "absent.cfg", None)]


def test_ten_megabyte_config_is_quick(tmp_path: Path) -> None:
    touch(tmp_path, "site.pem")
    block = "frontend f%d\n    bind 127.0.0.1:%d ssl crt site.pem alpn h2 # c\n    default_backend b\n"
    count = 10_000_000 // len(block % (0, 1024)) + 1
    root = write(tmp_path, "haproxy.cfg")
    root.write_text("".join(block % (i, 1024 + i % 60000) for i in range(count)))
    started = time.monotonic()
    scan = read_haproxy(root)
    assert time.monotonic() - started < 20
    assert len(scan.listeners) == count
    assert scan.problems == ()
