"""The config readers against configs the real servers accept: nginx, Apache httpd and HAProxy check each
generated tree (``nginx -t``, ``apache2 -t``, ``haproxy -c``: they parse and load certificates but never listen),
then the reader must find exactly the listeners written. Broken variants must be rejected by the server and
reported by the reader at the same file and line.

The servers are required: a missing binary (or nginx's stream module) fails these tests, it never skips them.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from tlsward.configs import read_config
from tlsward.model.discovery import ConfigScan, ConfiguredListener

pytestmark = pytest.mark.integration

NGINX_STREAM_MODULE = Path("/usr/lib/nginx/modules/ngx_stream_module.so")
APACHE_MODULES = Path("/usr/lib/apache2/modules")
SERVERS = ("nginx", "haproxy", "apache2", "openssl")
PLAIN_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C"}


@pytest.fixture(scope="module", autouse=True)
def servers_installed() -> None:
    """Every real server is required (Debian packages nginx, libnginx-mod-stream, apache2, haproxy)."""
    missing = [tool for tool in SERVERS if shutil.which(tool, path=os.pathsep.join([os.environ.get("PATH", ""),
                                                                                     "/usr/sbin", "/sbin"])) is None]
    assert not missing, f"these tests need {missing} installed (apt-get install nginx haproxy apache2)"
    assert NGINX_STREAM_MODULE.exists(), f"{NGINX_STREAM_MODULE} missing (apt-get install libnginx-mod-stream)"
    assert (APACHE_MODULES / "mod_ssl.so").exists(), "mod_ssl missing (apt-get install apache2)"


def write(root: Path, name: str, text: str) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def make_cert(directory: Path, name: str, *, key: str = "ec") -> tuple[Path, Path]:
    """A self-signed certificate and its key, made by openssl as an admin would."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, private = directory / f"{name}.pem", directory / f"{name}.key"
    newkey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"] if key == "ec" else ["-newkey", "rsa:2048"]
    subprocess.run(["openssl", "req", "-x509", *newkey, "-nodes", "-keyout", str(private), "-out", str(cert),
                    "-days", "2", "-subj", f"/CN={name}.test", "-addext", f"subjectAltName=DNS:{name}.test"],
                   check=True, capture_output=True, timeout=60)
    return cert, private


def combined(directory: Path, name: str) -> Path:
    """An HAProxy PEM: certificate and key in one file."""
    cert, private = make_cert(directory, f"{name}-parts")
    pem = directory / f"{name}.pem"
    pem.write_bytes(cert.read_bytes() + private.read_bytes())
    cert.unlink()
    private.unlink()
    return pem


@dataclass(frozen=True)
class Check:
    ok: bool
    output: str


def run(command: list[str], cwd: Path) -> Check:
    done = subprocess.run(command, cwd=cwd, env=PLAIN_ENV, capture_output=True, text=True, timeout=60,
                          check=False)
    return Check(done.returncode == 0, done.stdout + done.stderr)


def nginx_check(conf: Path) -> Check:
    prefix = conf.parent
    (prefix / "logs").mkdir(exist_ok=True)
    return run(["nginx", "-t", "-c", str(conf), "-p", f"{prefix}/", "-e", str(prefix / "logs/error.log")], prefix)


def apache_check(conf: Path, server_root: Path) -> Check:
    return run(["/usr/sbin/apache2", "-t", "-f", str(conf), "-d", str(server_root)], server_root)


def haproxy_check(conf: Path) -> Check:
    # HAProxy resolves relative crt and crt-list paths against its working directory; tlsward against the
    # config's directory: run it from there so the two agree.
    return run(["haproxy", "-c", "-f", str(conf)], conf.parent)


def shape(listener: ConfiguredListener) -> tuple[object, ...]:
    return (listener.config_path, listener.line, listener.address, listener.port, listener.server_names,
            listener.certificate_paths, listener.key_paths, listener.chain_paths)


def assert_clean(scan: ConfigScan) -> None:
    assert scan.problems == (), "\n".join(str(problem) for problem in scan.problems)


def test_nginx_tree(tmp_path: Path) -> None:
    prefix = tmp_path / "nginx"
    certs = prefix / "certs"
    rsa, rsa_key = make_cert(certs, "default-rsa", key="rsa")
    ec, ec_key = make_cert(certs, "default-ec")
    a, a_key = make_cert(certs, "a")
    legacy, legacy_key = make_cert(tmp_path / "elsewhere", "legacy")
    db, db_key = make_cert(certs, "db")
    conf = write(prefix, "nginx.conf", f"""\
        load_module {NGINX_STREAM_MODULE};
        pid {prefix}/nginx.pid;
        error_log {prefix}/logs/error.log;
        events {{ worker_connections 64; }}
        http {{
            access_log off;
            # two certificates, RSA and ECDSA, inherited by servers without their own
            ssl_certificate certs/default-rsa.pem;
            ssl_certificate_key certs/default-rsa.key;
            ssl_certificate "certs/default-ec.pem";
            ssl_certificate_key 'certs/default-ec.key';
            include conf.d/*.conf;
            include sites-enabled/*;
            include nothing-matches-this/*.conf;
            server {{ listen 127.0.0.1:18080; server_name plain.test; return 204; }}
        }}
        stream {{
            include stream.d/*.conf;
        }}
        """)
    a_conf = write(prefix, "conf.d/a.conf", """\
        server {
            listen 127.0.0.1:18443 ssl http2;
            listen [::1]:18443 ssl;
            server_name a.test "*.a.test" ~^(?<sub>.+)\\.a\\.test$;
            include snippets/a-tls.conf;   # relative to the prefix, not to conf.d/
        }
        """)
    write(prefix, "snippets/a-tls.conf", "ssl_certificate certs/a.pem;\nssl_certificate_key certs/a.key;\n")
    b_conf = write(prefix, "conf.d/b.conf", """\
        server {
            listen 127.0.0.1:18444 ssl default_server;
            server_name b.test;
        }
        # plain "listen" on a socket another server made TLS: TLS too
        server {
            listen 127.0.0.1:18443;
            server_name c.test;
        }
        """)
    legacy_conf = write(prefix, "sites-enabled/legacy", f"""\
        server {{
            listen 127.0.0.1:18445;
            ssl on;
            server_name legacy.test;
            ssl_certificate {legacy};
            ssl_certificate_key {legacy_key};
        }}
        server {{
            listen unix:{prefix}/https.sock ssl;
            server_name unix.test;
        }}
        """)
    db_conf = write(prefix, "stream.d/db.conf", """\
        upstream db { server 127.0.0.1:15432; }
        server {
            listen 127.0.0.1:16432 ssl;
            ssl_certificate certs/db.pem;
            ssl_certificate_key certs/db.key;
            proxy_pass db;
        }
        server { listen 127.0.0.1:16433; proxy_pass db; }
        """)

    check = nginx_check(conf)
    assert check.ok, check.output

    scan = read_config(conf)
    assert (scan.server, scan.root) == ("nginx", str(conf))
    assert_clean(scan)
    a_names = ("a.test", "*.a.test", r"~^(?<sub>.+)\.a\.test$")
    defaults = ((str(rsa), str(ec)), (str(rsa_key), str(ec_key)))
    assert [shape(listener) for listener in scan.listeners] == [
        (str(a_conf), 2, "127.0.0.1", 18443, a_names, (str(a),), (str(a_key),), ()),
        (str(a_conf), 3, "::1", 18443, a_names, (str(a),), (str(a_key),), ()),
        (str(b_conf), 2, "127.0.0.1", 18444, ("b.test",), *defaults, ()),
        (str(b_conf), 7, "127.0.0.1", 18443, ("c.test",), *defaults, ()),
        (str(legacy_conf), 2, "127.0.0.1", 18445, ("legacy.test",), (str(legacy),), (str(legacy_key),), ()),
        (str(db_conf), 3, "127.0.0.1", 16432, (), (str(db),), (str(db_key),), ()),
    ]
    assert scan.files_read == (str(conf), str(a_conf), str(prefix / "snippets/a-tls.conf"), str(b_conf),
                               str(legacy_conf), str(db_conf))


def test_apache_tree(tmp_path: Path) -> None:
    root = tmp_path / "httpd"
    certs = root / "certs"
    rsa, rsa_key = make_cert(certs, "default-rsa", key="rsa")
    ec, ec_key = make_cert(certs, "default-ec")
    a, a_key = make_cert(certs, "a", key="rsa")
    chain, _ = make_cert(certs, "chain")
    for directory in ("htdocs", "logs", "run"):
        (root / directory).mkdir(parents=True)
    conf = write(root, "httpd.conf", f"""\
        # generated by tlsward's tests
        ServerRoot "{root}"
        LoadModule mpm_event_module {APACHE_MODULES}/mod_mpm_event.so
        LoadModule authz_core_module {APACHE_MODULES}/mod_authz_core.so
        LoadModule ssl_module {APACHE_MODULES}/mod_ssl.so
        PidFile run/httpd.pid
        ErrorLog logs/error.log
        ServerName main.test
        Define TLSWARD_CERTS {certs}
        Include conf/ports.conf
        IncludeOptional conf.d/*.conf
        Include sites-enabled/
        IncludeOptional nothing-matches-this/*.conf
        """)
    ports = write(root, "conf/ports.conf", """\
        Listen 127.0.0.1:18080
        <IfModule ssl_module>
            Listen 127.0.0.1:18443 https
            Listen 127.0.0.1:18444
        </IfModule>
        <IfModule !mod_ssl.c>
            Listen 127.0.0.1:18999
        </IfModule>
        """)
    global_tls = write(root, "conf.d/ssl-global.conf", """\
        # certificates every virtual host inherits unless it names its own
        SSLCertificateFile certs/default-rsa.pem
        SSLCertificateKeyFile certs/default-rsa.key
        SSLCertificateFile certs/default-ec.pem
        SSLCertificateKeyFile certs/default-ec.key
        """)
    site_a = write(root, "sites-enabled/a.conf", f"""\
        <VirtualHost 127.0.0.1:18443>
            ServerName https://a.test:18443
            ServerAlias www.a.test \\
                        *.a.test
            SSLEngine on
            SSLCertificateFile "${{TLSWARD_CERTS}}/a.pem"
            SSLCertificateKeyFile certs/a.key
            SSLCertificateChainFile certs/chain.pem
            <Directory "{root}/htdocs">
                Require all granted
            </Directory>
        </VirtualHost>
        """)
    site_b = write(root, "sites-enabled/nested/b.conf", """\
        <IfModule mod_ssl.c>
            <VirtualHost 127.0.0.1:18444 [::1]:18444>
                ServerName b.test
                SSLEngine on
            </VirtualHost>
        </IfModule>
        <VirtualHost 127.0.0.1:18080>
            ServerName plain.test
        </VirtualHost>
        """)

    check = apache_check(conf, root)
    assert check.ok, check.output

    scan = read_config(conf)
    assert (scan.server, scan.root) == ("apache", str(conf))
    assert_clean(scan)
    # mod_ssl's merge: a.test's one certificate replaces the first inherited one, the second is inherited
    assert [shape(listener) for listener in scan.listeners] == [
        (str(site_a), 1, "127.0.0.1", 18443, ("a.test", "www.a.test", "*.a.test"), (str(a), str(ec)),
         (str(a_key), str(ec_key)), (str(chain),)),
        (str(site_b), 2, "127.0.0.1", 18444, ("b.test",), (str(rsa), str(ec)), (str(rsa_key), str(ec_key)), ()),
        (str(site_b), 2, "::1", 18444, ("b.test",), (str(rsa), str(ec)), (str(rsa_key), str(ec_key)), ()),
    ]
    assert scan.files_read == (str(conf), str(ports), str(global_tls), str(site_a), str(site_b))


def test_haproxy_config(tmp_path: Path) -> None:
    home = tmp_path / "haproxy"
    certs = home / "certs"
    site = combined(certs, "site")
    admin = combined(certs, "admin")
    x = combined(certs / "dir", "x")
    y, y_key = make_cert(certs / "dir", "y")
    y_key = y_key.rename(certs / "dir/y.pem.key")
    www = combined(certs, "www")
    api = combined(certs, "api")
    crt_list = write(home, "lists/sni.crtlist", """\
        # per-name certificates; names after the options are SNI filters
        www.pem [alpn h2,http/1.1 ssl-min-ver TLSv1.2] www.example.test example.test
        api.pem *.api.example.test !legacy.api.example.test
        site.pem
        """)
    conf = write(home, "haproxy.cfg", f"""\
        global
            crt-base {certs}
            ssl-default-bind-options ssl-min-ver TLSv1.2 no-tls-tickets
            ssl-default-bind-ciphers ECDHE+AESGCM:ECDHE+CHACHA20
        defaults
            mode http
            timeout connect 1s
            timeout client 1s
            timeout server 1s
        frontend https   # the public side
            bind 127.0.0.1:18443,127.0.0.1:18444 ssl crt site.pem crt dir/
            bind "[::1]:18443" ssl crt-list lists/sni.crtlist alpn h2,http/1.1
            bind ipv6@::1:18445 ssl crt site.pem
            bind 127.0.0.1:18080
            bind unix@{home}/https.sock ssl crt site.pem
            http-request redirect scheme https unless {{ ssl_fc }}
            default_backend app
        listen admin
            bind 127.0.0.1:18446 ssl crt '{admin}'
            server s1 127.0.0.1:18081
        backend app
            server s1 127.0.0.1:18081
        """)

    check = haproxy_check(conf)
    assert check.ok, check.output

    scan = read_config(conf)
    assert (scan.server, scan.root) == ("haproxy", str(conf))
    assert_clean(scan)
    c = str(conf)
    front = ((str(site), str(x), str(y)), (str(site), str(x), str(y_key)))
    listed = ((str(www), str(api), str(site)), (str(www), str(api), str(site)))
    assert [shape(listener) for listener in scan.listeners] == [
        (c, 11, "127.0.0.1", 18443, (), *front, ()),
        (c, 11, "127.0.0.1", 18444, (), *front, ()),
        (c, 12, "::1", 18443, ("www.example.test", "example.test", "*.api.example.test"), *listed, ()),
        (c, 13, "::1", 18445, (), (str(site),), (str(site),), ()),
        (c, 19, "127.0.0.1", 18446, (), (str(admin),), (str(admin),), ()),
    ]
    assert scan.files_read == (str(conf), str(crt_list))


# Broken configs: the server rejects them and names a line; the reader must name the same file and line.

def _server_line(output: str, pattern: str) -> tuple[str, int]:
    match = re.search(pattern, output)
    assert match, output
    return match.group("file"), int(match.group("line"))


def test_nginx_and_tlsward_agree_on_broken_configs(tmp_path: Path) -> None:
    """(An unterminated quote is not here: nginx names the end of the file, tlsward the line the quote opens.)"""
    cert, key = make_cert(tmp_path / "certs", "a")
    head = f"pid {tmp_path}/nginx.pid;\nevents {{}}\n"
    server = f"    server {{ listen 127.0.0.1:18443 ssl; ssl_certificate {cert}; ssl_certificate_key {key}; }}\n"
    for name, text, finding in [
        ("brace.conf", f"{head}http {{\n{server}}}\n}}\n", "config.syntax"),
        ("semicolon.conf", f"{head}http {{\n{server}    server {{ listen 127.0.0.1:18444 ssl }}\n}}\n",
         "config.syntax"),
        ("include.conf", f"{head}http {{\n    include {tmp_path}/absent.conf;\n{server}}}\n", "file.unreadable"),
    ]:
        conf = write(tmp_path, name, text)
        check = nginx_check(conf)
        assert not check.ok, name
        file, line = _server_line(check.output, r"in (?P<file>/\S+):(?P<line>\d+)")
        scan = read_config(conf, server="nginx")
        assert [(p.finding.id, p.path, p.line) for p in scan.problems] == [(finding, file, line)], check.output
        assert len(scan.listeners) == 1, name          # the server block read before the error is kept


def test_apache_and_tlsward_agree_on_broken_configs(tmp_path: Path) -> None:
    cert, key = make_cert(tmp_path / "certs", "a")
    head = (f"ServerRoot {tmp_path}\nLoadModule mpm_event_module {APACHE_MODULES}/mod_mpm_event.so\n"
            f"LoadModule ssl_module {APACHE_MODULES}/mod_ssl.so\nErrorLog {tmp_path}/error.log\n"
            f"PidFile {tmp_path}/httpd.pid\nListen 127.0.0.1:18443\n")
    vhost = ("<VirtualHost 127.0.0.1:18443>\n    SSLEngine on\n"
             f"    SSLCertificateFile {{cert}}\n    SSLCertificateKeyFile {key}\n")
    for name, text, finding in [
        ("mismatch.conf", f"{head}{vhost.format(cert=cert)}<Directory />\n</VirtualHost>\n", "config.syntax"),
        ("missing.conf", f"{head}{vhost.format(cert=tmp_path / 'gone.pem')}</VirtualHost>\n",
         "config.missing_file"),
        ("include.conf", f"{head}Include {tmp_path}/absent/*.conf\n{vhost.format(cert=cert)}</VirtualHost>\n",
         "file.unreadable"),
    ]:
        conf = write(tmp_path, name, text)
        check = apache_check(conf, tmp_path)
        assert not check.ok, name
        file, line = _server_line(check.output, r"on line (?P<line>\d+) of (?P<file>/[^:]+):")
        scan = read_config(conf, server="apache")
        assert [(p.finding.id, p.path, p.line) for p in scan.problems] == [(finding, file, line)], check.output
        assert len(scan.listeners) == 1, name


def test_haproxy_and_tlsward_agree_on_broken_configs(tmp_path: Path) -> None:
    site = combined(tmp_path, "site")
    head = "global\n    maxconn 100\ndefaults\n    mode http\n    timeout client 1s\nfrontend fe\n"
    good = f"    bind 127.0.0.1:18443 ssl crt {site}\n"
    for name, text, finding in [
        ("quote.cfg", f'{head}{good}    bind 127.0.0.1:18444 ssl crt "open.pem\n', "config.syntax"),
        ("missing.cfg", f"{head}{good}    bind 127.0.0.1:18444 ssl crt {tmp_path}/gone.pem\n",
         "config.missing_file"),
        ("list.cfg", f"{head}{good}    bind 127.0.0.1:18444 ssl crt-list {tmp_path}/absent.list\n",
         "file.unreadable"),
        ("outside.cfg", f"bind 127.0.0.1:18444 ssl crt {site}\n{head}{good}", "config.syntax"),
    ]:
        conf = write(tmp_path, name, text)
        check = haproxy_check(conf)
        assert not check.ok, name
        file, line = _server_line(check.output, r"parsing \[(?P<file>[^:\]]+):(?P<line>\d+)\]")
        scan = read_config(conf, server="haproxy")
        assert [(p.finding.id, Path(p.path).name, p.line) for p in scan.problems] == [
            (finding, Path(file).name, line)], check.output
        assert [lst.port for lst in scan.listeners][:1] == [18443], name
