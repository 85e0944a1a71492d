"""``tlsward logs ingest`` against a real nginx whose ``log_format`` carries ``$ssl_protocol $ssl_cipher``, driven
by real clients: curl (``--tlsv1.2 --tls-max 1.2``, ``--tlsv1.3``, plain HTTP) and ``openssl s_client`` (``-tls1``,
``-tls1_1``, ``-tls1_2`` with a static-RSA suite, ``-tls1_3``) against a lab nginx that allows TLS 1.0. What the
clients say they negotiated is what the ingested counts say, exactly; so after a rename-and-reopen rotation and a
copytruncate while following, after rotations while no ingester ran, and after the ingester was killed mid-file
and run again."""

from __future__ import annotations

import collections
import datetime as dt
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from tests.integration.nginx_process import NginxProcess
from tlsward.logs.parsers import NGINX_LOG_FORMAT
from tlsward.model.clientlogs import PLAIN
from tlsward.storage import open_store
from tlsward.storage.clientlogs import ClientLogStore

pytestmark = pytest.mark.integration

NAME = "app.logs.test"
WEAK_OK = "DEFAULT:@SECLEVEL=0"     # OpenSSL 3 speaks TLS 1.0/1.1 only at security level 0
FAR_PAST = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
FAR_FUTURE = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)
INGEST = (sys.executable, "-m", "tlsward.cli.logs", "ingest")   # `tlsward logs ingest` (the sub-app alone)

Negotiated = tuple[str, str]        # (protocol as tlsward names it, cipher)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _certificate(directory: Path) -> None:
    """A self-signed RSA leaf for NAME (RSA: the static-RSA and ECDHE-RSA suites of TLS 1.0 work with it)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, NAME)])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(NAME)]), critical=False)
            .sign(key, hashes.SHA256()))
    (directory / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                          serialization.PrivateFormat.PKCS8,
                                                          serialization.NoEncryption()))
    (directory / "key.pem").chmod(0o600)
    (directory / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))


class Nginx(NginxProcess):
    """nginx on loopback (one process, no daemon), TLS 1.0-1.3 at security level 0 plus a plain-HTTP port,
    logging with tlsward's documented log_format."""

    def __init__(self, prefix: Path) -> None:
        self.prefix = prefix
        self.port, self.plain_port = _free_port(), _free_port()
        self.conf = prefix / "nginx.conf"
        self.log = prefix / "logs" / "tls.log"
        (prefix / "logs").mkdir(exist_ok=True)
        (prefix / "tmp").mkdir(exist_ok=True)
        _certificate(prefix)
        self.conf.write_text(f"""
master_process off;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log;
events {{ worker_connections 64; }}
http {{
    {NGINX_LOG_FORMAT}
    access_log {self.log} tlsward;
    client_body_temp_path {prefix}/tmp;
    proxy_temp_path {prefix}/tmp;
    fastcgi_temp_path {prefix}/tmp;
    uwsgi_temp_path {prefix}/tmp;
    scgi_temp_path {prefix}/tmp;
    server {{
        listen 127.0.0.1:{self.port} ssl;
        listen 127.0.0.1:{self.plain_port};
        server_name {NAME};
        ssl_certificate {prefix}/cert.pem;
        ssl_certificate_key {prefix}/key.pem;
        ssl_protocols TLSv1 TLSv1.1 TLSv1.2 TLSv1.3;
        ssl_ciphers {WEAK_OK};
        keepalive_timeout 0;
        location / {{ return 200 "ok\\n"; }}
    }}
}}
""")

    def start(self) -> None:
        self.check()
        super().start()

    def reopen(self) -> None:
        super().reopen()
        deadline = time.monotonic() + 10
        while not self.log.exists():
            assert time.monotonic() < deadline, "nginx did not reopen its log"
            time.sleep(0.02)

    # -- real clients ----------------------------------------------------------------------------------------------

    def curl(self, *flags: str, agent: str = "curl-tlsward-test") -> Negotiated:
        """One HTTPS request with curl; what curl says it negotiated."""
        proc = subprocess.run(["curl", "-sS", "-v", "-k", "-o", "/dev/null", "-A", agent, "--resolve",
                               f"{NAME}:{self.port}:127.0.0.1", *flags, f"https://{NAME}:{self.port}/"],
                              capture_output=True, text=True, timeout=30, check=False)
        assert proc.returncode == 0, proc.stderr
        match = re.search(r"SSL connection using (\S+) / (\S+)", proc.stderr)
        assert match, proc.stderr
        return _name(match.group(1)), match.group(2)

    def curl_plain(self) -> Negotiated:
        proc = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-A", "curl-plain", f"http://127.0.0.1:{self.plain_port}/"],
                              capture_output=True, text=True, timeout=30, check=False)
        assert proc.returncode == 0, proc.stderr
        return PLAIN, PLAIN

    def s_client(self, *flags: str, agent: str) -> Negotiated:
        """One HTTP/1.1 request over ``openssl s_client``; the protocol and cipher of its session."""
        request = (f"GET / HTTP/1.1\r\nHost: {NAME}\r\nUser-Agent: {agent}\r\nConnection: close\r\n\r\n").encode()
        proc = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{self.port}", "-servername", NAME,
                               "-ign_eof", *flags], input=request, capture_output=True, timeout=30, check=False)
        text = proc.stdout.decode(errors="replace")
        assert "HTTP/1.1 200" in text, f"{proc.returncode}: {text[-800:]} {proc.stderr.decode(errors='replace')}"
        protocol = re.search(r"^\s*Protocol\s*:\s*(\S+)", text, re.MULTILINE)
        cipher = re.search(r"^\s*Cipher\s*:\s*(\S+)", text, re.MULTILINE)
        assert protocol and cipher, text
        return _name(protocol.group(1)), cipher.group(1)


def _name(openssl_version: str) -> str:
    return {"TLSv1": "TLSv1.0"}.get(openssl_version, openssl_version)


@pytest.fixture
def nginx(tmp_path: Path) -> Iterator[Nginx]:
    for tool in ("curl", "openssl"):
        assert shutil.which(tool), f"{tool} is required (`make test` installs it)"
    server = Nginx(tmp_path)
    server.start()
    yield server
    server.stop()


def drive(nginx: Nginx, rounds: int = 1) -> collections.Counter[Negotiated]:
    """Every kind of client, ``rounds`` times: what each negotiated, counted."""
    seen: collections.Counter[Negotiated] = collections.Counter()
    for _ in range(rounds):
        for _ in range(3):
            seen[nginx.curl("--tlsv1.2", "--tls-max", "1.2")] += 1
        for _ in range(2):
            seen[nginx.curl("--tlsv1.3")] += 1
        for _ in range(2):
            seen[nginx.s_client("-tls1", "-cipher", WEAK_OK, agent="legacy-tls10/1.0")] += 1
        seen[nginx.s_client("-tls1_1", "-cipher", WEAK_OK, agent="legacy-tls11/1.0")] += 1
        seen[nginx.s_client("-tls1_2", "-cipher", f"AES128-SHA:{WEAK_OK}", agent="static-rsa/1.0")] += 1
        seen[nginx.s_client("-tls1_3", agent="s_client-tls13")] += 1
        seen[nginx.curl_plain()] += 1
    return seen


def ingest(db: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*INGEST, *args, "--db", db], capture_output=True, text=True, timeout=timeout,
                          check=False, stdin=subprocess.DEVNULL)


def stored(db: str) -> collections.Counter[Negotiated]:
    with open_store(db) as store:
        mix = ClientLogStore(store).mix(None, FAR_PAST, FAR_FUTURE, by_bucket=False)
    counted: collections.Counter[Negotiated] = collections.Counter()
    for row in mix.rows:
        counted[(row.protocol, row.cipher)] += row.requests
    return counted


def lines_ingested(db: str, log: Path) -> int:
    with open_store(db) as store:
        mark = ClientLogStore(store).checkpoint(str(log))
    return 0 if mark is None else mark.line


def wait_for(db: str, log: Path, lines: int, timeout: float = 30) -> None:
    """Until the ingester has committed ``lines`` lines of the file named ``log``."""
    deadline = time.monotonic() + timeout
    while lines_ingested(db, log) < lines:
        assert time.monotonic() < deadline, f"ingested {lines_ingested(db, log)} of {lines} lines"
        time.sleep(0.05)


def wait_stored(db: str, expected: collections.Counter[Negotiated], timeout: float = 30) -> None:
    """Until the follower has committed exactly ``expected`` (it never goes past it: nothing else is sent)."""
    deadline = time.monotonic() + timeout
    while (counted := stored(db)) != expected:
        assert time.monotonic() < deadline, f"stored {counted}, expected {expected}"
        time.sleep(0.05)


def count_lines(path: Path) -> int:
    return path.read_bytes().count(b"\n")


def test_real_clients_are_counted_exactly(nginx: Nginx, tmp_path: Path) -> None:
    negotiated = drive(nginx)
    assert {protocol for protocol, _ in negotiated} == {"TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3", PLAIN}
    assert ("TLSv1.2", "AES128-SHA") in negotiated
    db = f"sqlite:///{tmp_path / 'inventory.db'}"
    first = ingest(db, str(nginx.log), "--json")
    assert first.returncode == 0, first.stderr
    assert stored(db) == negotiated
    with open_store(db) as store:
        telemetry = ClientLogStore(store)
        mix = telemetry.mix(f"{NAME}:{nginx.port}", FAR_PAST, FAR_FUTURE, by_bucket=False)
        plain = telemetry.mix(f"*:{nginx.plain_port}", FAR_PAST, FAR_FUTURE, by_bucket=False)
        assert telemetry.malformed() == []
    assert mix.requests == sum(negotiated.values()) - 1 and plain.requests == 1
    legacy = {(c.protocol, c.user_agent, c.network): c.requests for c in mix.clients}
    assert legacy[("TLSv1.0", "legacy-tls10/1.0", "127.0.0.0/24")] == 2
    assert legacy[("TLSv1.1", "legacy-tls11/1.0", "127.0.0.0/24")] == 1
    assert legacy[("TLSv1.2", "static-rsa/1.0", "127.0.0.0/24")] == 1
    assert not any(c.protocol == "TLSv1.3" for c in mix.clients), "TLS 1.3 clients are not itemised"

    again = ingest(db, str(nginx.log))                      # nothing new: nothing counted twice
    assert again.returncode == 0 and stored(db) == negotiated
    more = drive(nginx)
    third = ingest(db, str(nginx.log))                      # only the new lines
    assert third.returncode == 0 and stored(db) == negotiated + more

    shown = subprocess.run([sys.executable, "-m", "tlsward.cli.logs", "show", "--since", "1d", "--json", "--db", db],
                           capture_output=True, text=True, timeout=60, check=False)
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    endpoint = next(e for e in data["endpoints"] if e["endpoint"] == f"{NAME}:{nginx.port}")
    assert endpoint["protocols"]["TLSv1.0"] == (negotiated + more)[("TLSv1.0", next(
        cipher for protocol, cipher in negotiated if protocol == "TLSv1.0"))]
    assert {(c["user_agent"], c["reason"]) for c in data["legacy_clients"]} == {
        ("legacy-tls10/1.0", "TLSv1.0"), ("legacy-tls11/1.0", "TLSv1.1"), ("static-rsa/1.0", "no forward secrecy")}


def test_rename_and_reopen_while_following(nginx: Nginx, tmp_path: Path) -> None:
    """logrotate's default: rename, then ``nginx -s reopen``; requests land in the old file before the reopen
    and in the new one after it. The follower reads both, and stops cleanly on SIGTERM."""
    db = f"sqlite:///{tmp_path / 'inventory.db'}"
    expected = drive(nginx)
    follower = subprocess.Popen([*INGEST, str(nginx.log), "--follow", "--for", "100", "--json", "--db", db],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(db, nginx.log, count_lines(nginx.log))
        nginx.log.rename(nginx.log.with_name("tls.log.1"))
        expected += drive(nginx)                            # still written to the renamed file
        nginx.reopen()
        expected += drive(nginx)                            # the new file
        wait_stored(db, expected)
        follower.send_signal(signal.SIGTERM)
        stdout, stderr = follower.communicate(timeout=30)
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()
    assert follower.returncode == 0, stderr
    assert '"rotations": 1' in stdout
    assert stored(db) == expected


def test_copytruncate_while_following(nginx: Nginx, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'inventory.db'}"
    expected = drive(nginx)
    follower = subprocess.Popen([*INGEST, str(nginx.log), "--follow", "--for", "100", "--db", db],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(db, nginx.log, count_lines(nginx.log))
        shutil.copyfile(nginx.log, nginx.log.with_name("tls.log.1"))          # logrotate copytruncate
        with nginx.log.open("r+b") as handle:
            handle.truncate(0)
        expected += drive(nginx)
        wait_stored(db, expected)
        follower.send_signal(signal.SIGTERM)
        _, stderr = follower.communicate(timeout=30)
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()
    assert follower.returncode == 0, stderr
    assert stored(db) == expected


def test_rotations_while_no_ingester_runs_lose_nothing(nginx: Nginx, tmp_path: Path) -> None:
    """The checkpoint names the old inode: the rest of the renamed file is read first, then the new file; after a
    copytruncate the unread rest comes from the copy."""
    db = f"sqlite:///{tmp_path / 'inventory.db'}"
    expected = drive(nginx)
    assert ingest(db, str(nginx.log)).returncode == 0
    expected += drive(nginx)                                 # not ingested yet ...
    nginx.log.rename(nginx.log.with_name("tls.log.1"))       # ... and rotated away
    nginx.reopen()
    expected += drive(nginx)
    renamed = ingest(db, str(nginx.log), "--json")
    assert renamed.returncode == 0, renamed.stderr
    assert "rotated since the last run" in renamed.stdout
    assert stored(db) == expected

    expected += drive(nginx)                                 # not ingested yet ...
    shutil.copyfile(nginx.log, nginx.log.with_name("tls.log.2"))
    with nginx.log.open("r+b") as handle:                    # ... and copytruncated
        handle.truncate(0)
    # Lines written within the same second as the copied ones would be byte for byte the same lines (the log has
    # second resolution and no request id): a truncated file grown back to identical bytes cannot be told apart.
    time.sleep(1.1)
    expected += drive(nginx)
    copied = ingest(db, str(nginx.log), "--json")
    assert copied.returncode == 0, copied.stderr
    assert "copytruncate" in copied.stdout
    assert stored(db) == expected


def test_killed_mid_file_and_run_again_counts_exactly(nginx: Nginx, tmp_path: Path) -> None:
    """SIGKILL while a long log is being ingested, at several points; each run resumes from the last committed
    batch, and the total is exact (no line lost, none counted twice)."""
    once = drive(nginx)
    lines = nginx.log.read_bytes()
    copies = 20_000
    big = tmp_path / "big.log"
    big.write_bytes(lines * copies)
    expected = collections.Counter({key: n * copies for key, n in once.items()})
    total = count_lines(big)
    db = f"sqlite:///{tmp_path / 'inventory.db'}"
    kills = 0                                                # while lines were left to read
    for fraction in (0.15, 0.5, 0.8):
        proc = subprocess.Popen([*INGEST, str(big), "--batch-lines", "1000", "--db", db],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 60
            while lines_ingested(db, big) < fraction * total and proc.poll() is None:
                assert time.monotonic() < deadline
                time.sleep(0.01)
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait(30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        kills += proc.returncode == -signal.SIGKILL and lines_ingested(db, big) < total
    assert kills >= 2, "the ingester finished before it could be killed mid-file: make the file bigger"
    final = ingest(db, str(big), timeout=120)
    assert final.returncode == 0, final.stderr
    assert lines_ingested(db, big) == total
    assert stored(db) == expected
