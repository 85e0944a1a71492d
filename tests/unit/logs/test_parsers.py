"""The access-log parsers on golden lines: real lines written by nginx 1.22, HAProxy 2.6 and Apache 2.4 with the
documented formats (captured against a loopback server with curl and openssl s_client), Envoy JSON with the
documented keys, the accepted variants, plain HTTP, and hostile lines (which give None, never an exception)."""

from __future__ import annotations

import datetime as dt

import pytest

from tlsward.logs.parsers import (
    APACHE_LOG_FORMAT,
    ENVOY_LOG_FORMAT,
    HAPROXY_LOG_FORMAT,
    NGINX_LOG_FORMAT,
    network_of,
    parse_apache,
    parse_envoy,
    parse_haproxy,
    parse_line,
    parse_nginx,
    parse_time,
    resolve_tail,
)
from tlsward.model.clientlogs import LOG_FORMATS, PLAIN, LogEntry

T = dt.datetime(2026, 11, 28, 4, 29, 35, tzinfo=dt.UTC).timestamp()
H = dt.datetime(2026, 11, 28, 4, 19, 48, tzinfo=dt.UTC).timestamp()

NGINX = {   # nginx 1.22.1 with NGINX_LOG_FORMAT (tests/integration/test_logs_real_nginx.py drives the same)
    '127.0.0.1 [2026-11-28T04:29:35+00:00] "GET / HTTP/1.1" 200 "curl-tlsward-test" TLSv1.2 '
    'ECDHE-RSA-AES256-GCM-SHA384 app.logs.test 52361':
        LogEntry("app.logs.test:52361", T, "TLSv1.2", "ECDHE-RSA-AES256-GCM-SHA384", "127.0.0.1", "curl-tlsward-test"),
    '127.0.0.1 [2026-11-28T04:29:35+00:00] "GET / HTTP/1.1" 200 "curl-tlsward-test" TLSv1.3 TLS_AES_256_GCM_SHA384 '
    'app.logs.test 52361':
        LogEntry("app.logs.test:52361", T, "TLSv1.3", "TLS_AES_256_GCM_SHA384", "127.0.0.1", "curl-tlsward-test"),
    '127.0.0.1 [2026-11-28T04:29:35+00:00] "GET / HTTP/1.1" 200 "legacy-tls10/1.0" TLSv1 ECDHE-RSA-AES256-SHA '
    'app.logs.test 52361':
        LogEntry("app.logs.test:52361", T, "TLSv1.0", "ECDHE-RSA-AES256-SHA", "127.0.0.1", "legacy-tls10/1.0"),
    '127.0.0.1 [2026-11-28T04:29:36+00:00] "GET / HTTP/1.1" 200 "legacy-tls11/1.0" TLSv1.1 ECDHE-RSA-AES256-SHA '
    'app.logs.test 52361':
        LogEntry("app.logs.test:52361", T + 1, "TLSv1.1", "ECDHE-RSA-AES256-SHA", "127.0.0.1", "legacy-tls11/1.0"),
    '127.0.0.1 [2026-11-28T04:29:36+00:00] "GET / HTTP/1.1" 200 "curl-plain" - - - 40377':
        LogEntry("*:40377", T + 1, PLAIN, PLAIN, "127.0.0.1", "curl-plain"),
}
HAPROXY = {  # HAProxy 2.6.12, HAPROXY_LOG_FORMAT, `log stdout format raw`
    '127.0.0.1 [28/Nov/2026:04:19:48 +0000] "GET /x HTTP/1.1" 200 "curl/7.88.1" TLSv1.3 TLS_AES_256_GCM_SHA384 '
    'app.example 42761':
        LogEntry("app.example:42761", H, "TLSv1.3", "TLS_AES_256_GCM_SHA384", "127.0.0.1", "curl/7.88.1"),
    '127.0.0.1 [28/Nov/2026:04:19:48 +0000] "GET /y HTTP/1.1" 200 "Mozi"lla \\x" TLSv1.2 ECDHE-RSA-AES256-GCM-SHA384 '
    '- 42761':   # HAProxy does not escape quotes inside %{+Q}: the TLS fields still come after the last one
        LogEntry("*:42761", H, "TLSv1.2", "ECDHE-RSA-AES256-GCM-SHA384", "127.0.0.1", 'Mozi"lla \\x'),
    '127.0.0.1 [28/Nov/2026:04:19:48 +0000] "GET /plain HTTP/1.1" 200 "curl/7.88.1" - - - 42762':
        LogEntry("*:42762", H, PLAIN, PLAIN, "127.0.0.1", "curl/7.88.1"),
    '127.0.0.1 [28/Nov/2026:04:19:48 +0000] "GET / HTTP/1.0" 200 "" TLSv1 ECDHE-RSA-AES256-SHA app.example 42761':
        LogEntry("app.example:42761", H, "TLSv1.0", "ECDHE-RSA-AES256-SHA", "127.0.0.1", ""),
    # the same through syslog (rsyslog's prefix): the address is the field before the time
    'Nov 28 04:19:48 lb1 haproxy[1234]: 10.1.2.3 [28/Nov/2026:04:19:48 +0000] "GET / HTTP/1.1" 200 "okhttp/3.12.1" '
    'TLSv1.1 ECDHE-RSA-AES128-SHA api.example 443':
        LogEntry("api.example:443", H, "TLSv1.1", "ECDHE-RSA-AES128-SHA", "10.1.2.3", "okhttp/3.12.1"),
}
A = dt.datetime(2026, 11, 28, 4, 20, 5, tzinfo=dt.UTC).timestamp()
APACHE = {   # Apache 2.4 (Debian), APACHE_LOG_FORMAT
    '127.0.0.1 [28/Nov/2026:04:20:05 +0000] "GET / HTTP/1.1" 404 "curl/7.88.1" TLSv1.3 TLS_AES_256_GCM_SHA384 '
    'app.example 40873':
        LogEntry("app.example:40873", A, "TLSv1.3", "TLS_AES_256_GCM_SHA384", "127.0.0.1", "curl/7.88.1"),
    '127.0.0.1 [28/Nov/2026:04:20:05 +0000] "GET /y HTTP/1.1" 404 "Mozi\\"lla \\\\x" TLSv1.2 '
    'ECDHE-RSA-AES256-GCM-SHA384 - 40873':   # Apache escapes: the user agent is kept as logged
        LogEntry("*:40873", A, "TLSv1.2", "ECDHE-RSA-AES256-GCM-SHA384", "127.0.0.1", 'Mozi\\"lla \\\\x'),
    '127.0.0.1 [28/Nov/2026:04:20:05 +0000] "GET / HTTP/1.0" 400 "-" TLSv1.1 ECDHE-RSA-AES256-SHA app.example 40873':
        LogEntry("app.example:40873", A, "TLSv1.1", "ECDHE-RSA-AES256-SHA", "127.0.0.1", "-"),
}
E = dt.datetime(2026, 3, 1, 12, 34, 56, 789000, tzinfo=dt.UTC).timestamp()
ENVOY = {
    '{"start_time":"2026-03-01T12:34:56.789Z","downstream_remote_address":"203.0.113.9",'
    '"downstream_tls_version":"TLSv1.2","downstream_tls_cipher":"ECDHE-ECDSA-AES128-GCM-SHA256",'
    '"requested_server_name":"shop.example","downstream_local_port":"443","user_agent":"Mozilla/5.0",'
    '"authority":"shop.example"}':
        LogEntry("shop.example:443", E, "TLSv1.2", "ECDHE-ECDSA-AES128-GCM-SHA256", "203.0.113.9", "Mozilla/5.0"),
    # typed JSON (a number for the port), the address with its port, no SNI (the :authority names it)
    '{"start_time":"2026-03-01T12:34:56.789Z","downstream_remote_address":"[2001:db8::7]:50123",'
    '"downstream_tls_version":"TLSv1","downstream_tls_cipher":"ECDHE-RSA-AES128-SHA",'
    '"requested_server_name":null,"downstream_local_port":8443,"user_agent":"Java/1.7","authority":"Old.Example:8443"}':
        LogEntry("old.example:8443", E, "TLSv1.0", "ECDHE-RSA-AES128-SHA", "2001:db8::7", "Java/1.7"),
    # plain HTTP: Envoy writes null (JSON) or "-"; the port from downstream_local_address
    '{"start_time":"2026-03-01T12:34:56.789Z","downstream_remote_address":"198.51.100.4:4000",'
    '"downstream_tls_version":null,"downstream_tls_cipher":"-","requested_server_name":"-",'
    '"downstream_local_address":"10.0.0.5:80","user_agent":null,"authority":"shop.example"}':
        LogEntry("shop.example:80", E, PLAIN, PLAIN, "198.51.100.4", ""),
}


@pytest.mark.parametrize(("line", "entry"), list(NGINX.items()))
def test_nginx_golden(line: str, entry: LogEntry) -> None:
    assert parse_nginx(line) == entry == parse_line("nginx", line)


@pytest.mark.parametrize(("line", "entry"), list(HAPROXY.items()))
def test_haproxy_golden(line: str, entry: LogEntry) -> None:
    assert parse_haproxy(line) == entry == parse_line("haproxy", line)


@pytest.mark.parametrize(("line", "entry"), list(APACHE.items()))
def test_apache_golden(line: str, entry: LogEntry) -> None:
    assert parse_apache(line) == entry == parse_line("apache", line)


@pytest.mark.parametrize(("line", "entry"), list(ENVOY.items()))
def test_envoy_golden(line: str, entry: LogEntry) -> None:
    assert parse_envoy(line) == entry == parse_line("envoy", line)


def test_documented_formats_carry_the_tls_fields() -> None:
    assert "$ssl_protocol $ssl_cipher $ssl_server_name $server_port" in NGINX_LOG_FORMAT
    assert "%sslv %sslc" in HAPROXY_LOG_FORMAT
    assert "%{SSL_PROTOCOL}x %{SSL_CIPHER}x %{SSL_TLS_SNI}x" in APACHE_LOG_FORMAT
    for command in ("DOWNSTREAM_TLS_VERSION", "DOWNSTREAM_TLS_CIPHER", "REQUESTED_SERVER_NAME",
                    "DOWNSTREAM_REMOTE_ADDRESS", "REQ(USER-AGENT)"):
        assert f"%{command}" in ENVOY_LOG_FORMAT


def test_nginx_variants() -> None:
    """The "combined" format with the TLS fields appended; a trailing $host names SNI-less endpoints; no port;
    CRLF line ends; a time_local time."""
    combined = ('203.0.113.7 - alice [01/Mar/2026:12:34:56 +0100] "GET /a HTTP/2.0" 200 512 "https://ref.example/" '
                '"Mozilla/5.0 (X11)" TLSv1.3 TLS_CHACHA20_POLY1305_SHA256 www.example 443')
    at = dt.datetime(2026, 3, 1, 11, 34, 56, tzinfo=dt.UTC).timestamp()
    assert parse_nginx(combined) == LogEntry("www.example:443", at, "TLSv1.3", "TLS_CHACHA20_POLY1305_SHA256",
                                             "203.0.113.7", "Mozilla/5.0 (X11)")
    with_host = '10.0.0.1 [2026-03-01T12:00:00+00:00] "GET / HTTP/1.1" 200 "ua" TLSv1.2 AES128-SHA - 443 legacy.example'
    entry = parse_nginx(with_host)
    assert entry is not None and entry.endpoint == "legacy.example:443"
    no_port = '10.0.0.1 [2026-03-01T12:00:00+00:00] "GET / HTTP/1.1" 200 "ua" TLSv1.2 AES128-SHA App.Example.'
    entry = parse_nginx(no_port)
    assert entry is not None and entry.endpoint == "app.example"
    entry = parse_nginx(with_host + "\r")
    assert entry is not None and entry.endpoint == "legacy.example:443"


@pytest.mark.parametrize("line", [
    "",
    "garbage",
    '127.0.0.1 [2026-11-28T04:29:35+00:00] "GET / HTTP/1.1" 200 "ua"',                          # no TLS fields
    '127.0.0.1 [2026-11-28T04:29:35+00:00] "GET / HTTP/1.1" 200 "ua" TLSv1.2',                  # too few
    '127.0.0.1 [2026-11-28T04:29:35+00:00] "GET / HTTP/1.1" 200 "ua" a b c d e f',              # too many
    '127.0.0.1 [2026-11-28T04:29:35+00:00] "GET / HTTP/1.1" 200 "ua" TLSv9 X a.example 443',    # unknown protocol
    '127.0.0.1 [2026-11-28T04:29:35+00:00] "GET / HTTP/1.1" 200 "ua" - AES128-SHA - 80',       # plain with a cipher
    '127.0.0.1 [2026-11-28T04:29:35+00:00] "GET / HTTP/1.1" 200 "ua" TLSv1.2 A;B a.example 443',  # bad cipher
    '127.0.0.1 [2026-11-28T04:29:35+00:00] "GET / HTTP/1.1" 200 "ua" TLSv1.2 X a.example 99999',  # bad port
    '127.0.0.1 [2026-11-28T04:29:35+00:00] "GET / HTTP/1.1" 200 "ua" TLSv1.2 X a.example http',  # not a port
    '127.0.0.1 [2026-11-28T04:29:35+00:00] "GET / HTTP/1.1" 200 "ua" TLSv1.2 X bad/name 443',   # not a name
    '127.0.0.1 [yesterday] "GET / HTTP/1.1" 200 "ua" TLSv1.2 X a.example 443',                  # bad time
    '127.0.0.1 [2026-02-30T04:29:35+00:00] "GET / HTTP/1.1" 200 "ua" TLSv1.2 X a.example 443',  # no such day
    '127.0.0.1 [1969-12-31T23:59:59+00:00] "GET / HTTP/1.1" 200 "ua" TLSv1.2 X a.example 443',  # before 1970
    '127.0.0.1 [2026-11-28T04:29:35+00:00 "GET / HTTP/1.1" 200 "ua" TLSv1.2 X a.example 443',   # unclosed [
    '127.0.0.1 2026-11-28T04:29:35 "GET / HTTP/1.1" 200 "ua" TLSv1.2 X a.example 443',         # no [time]
    "\x00\x01\x02 [\ufffd\ufffd] \"\" \udcff TLSv1.2 X y 1",                                    # binary, surrogate
    "x" * 100_000,
    "[" * 10_000 + '"' * 10_000,
])
@pytest.mark.parametrize("log_format", LOG_FORMATS)
def test_malformed_lines_give_none(log_format: str, line: str) -> None:
    assert parse_line(log_format, line) is None   # type: ignore[arg-type]


@pytest.mark.parametrize("line", [
    "{", "[]", '"x"', "{}", '{"start_time": 5}', "[" * 50_000, "{" + '"a":[' * 20_000,
    '{"start_time":"2026-03-01T12:34:56Z","downstream_tls_version":"TLSv1.2"}',               # no cipher
    '{"start_time":"2026-03-01T12:34:56Z","downstream_tls_version":"TLSv1.2","downstream_tls_cipher":"X",'
    '"requested_server_name":"a b"}',                                                        # bad name
    '{"start_time":"2026-03-01T12:34:56Z","downstream_tls_version":"TLSv1.2","downstream_tls_cipher":"X",'
    '"downstream_local_port":"eighty"}',                                                     # bad port
    '{"start_time":"1e999","downstream_tls_version":"-"}',
    '{"start_time":"2026-03-01T12:34:56Z","x":' + "9" * 5000 + "}",                          # int too long
])
def test_malformed_envoy_lines_give_none(line: str) -> None:
    assert parse_envoy(line) is None


def test_resolve_tail() -> None:
    assert resolve_tail(" TLSv1.2 AES128-SHA A.example 443\r") == ("a.example:443", "TLSv1.2", "AES128-SHA")
    assert resolve_tail(" TLSv1 X - 443 -") == ("*:443", "TLSv1.0", "X")
    assert resolve_tail(" SSLv3 RC4-MD5 a 1") == ("a:1", "SSLv3", "RC4-MD5")
    assert resolve_tail(" - - - 80") == ("*:80", PLAIN, PLAIN)
    assert resolve_tail(" TLSv1.2 X a.example 0") is None


@pytest.mark.parametrize(("text", "expected"), [
    ("01/Mar/2026:12:34:56 +0000", dt.datetime(2026, 3, 1, 12, 34, 56, tzinfo=dt.UTC)),
    ("01/Mar/2026:12:34:56 -0530", dt.datetime(2026, 3, 1, 18, 4, 56, tzinfo=dt.UTC)),
    ("2026-03-01T12:34:56+02:00", dt.datetime(2026, 3, 1, 10, 34, 56, tzinfo=dt.UTC)),
    ("2026-03-01T12:34:56.5Z", dt.datetime(2026, 3, 1, 12, 34, 56, 500000, tzinfo=dt.UTC)),
    ("2026-03-01T12:34:56", dt.datetime(2026, 3, 1, 12, 34, 56, tzinfo=dt.UTC)),
    ("2026-03-01 12:34:56.123456789+0000", dt.datetime(2026, 3, 1, 12, 34, 56, 123456, tzinfo=dt.UTC)),
])
def test_times(text: str, expected: dt.datetime) -> None:
    assert parse_time(text) == expected.timestamp()


@pytest.mark.parametrize("text", ["", "01/Foo/2026:12:34:56 +0000", "01/Mar/2026:25:00:00 +0000",
                                  "01/Mar/2026:12:34:56 +2400", "01/Mar/2026:12:34:60 +0000",
                                  "\u0660\u0661/Mar/2026:12:34:56 +0000",     # Arabic-Indic digits: int() takes them
                                  "3026-03-01T12:34:56Z", "2026-13-01T00:00:00Z", "2026-03-01T12:34:56+99:00"])
def test_bad_times(text: str) -> None:
    assert parse_time(text) is None


@pytest.mark.parametrize(("address", "network"), [
    ("203.0.113.9", "203.0.113.0/24"), ("203.0.113.9:5555", "203.0.113.0/24"), ("::ffff:203.0.113.9", "203.0.113.0/24"),
    ("2001:db8:1:2::5", "2001:db8:1::/48"), ("[2001:db8:1:2::5]:443", "2001:db8:1::/48"), ("fe80::1%eth0", "fe80::/48"),
    ("unix:", "unix"), ("", "?"), ("-", "?"), ("*", "?"), ("01.2.3.4", "01.2.3.4"), ("x" * 100, "x" * 64),
])
def test_networks(address: str, network: str) -> None:
    assert network_of(address) == network
