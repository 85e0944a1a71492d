"""ACME issuance throughput: complete orders per second (new order, http-01 answered and validated, finalize with
an ECDSA P-256 CSR, certificate downloaded) against tlsward's ACME server and Debian's pebble, in one run, by one
client: certbot's ``acme`` library, several accounts in parallel threads, polling every 5 ms (the library's own
poll loops sleep a whole second, which would measure the sleep). A tiny in-process HTTP server answers http-01
for both; pebble gets ``PEBBLE_VA_NOSLEEP=1``, ``PEBBLE_AUTHZREUSE=0`` (every order is validated, as with
tlsward) and pebble-challtestsrv as its DNS (every name is 127.0.0.1); tlsward gets ``--validation-address
127.0.0.1``. Both serve HTTPS with the same certificate and run side by side; rounds alternate between them so
that a busy moment on a shared machine hits both, and the median round counts. Goal: at least pebble's order
rate.
Reproduce: ``make bench BENCH=acme``.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import josepy
from acme import challenges, client, messages
from acme import errors as acme_errors
from common import (
    BenchError,
    RunInfo,
    goal_lines,
    goals_json,
    md_table,
    measure_in,
    measured_on,
    print_goals,
    print_rows,
    publish,
    tlsward_version,
    wrap,
)
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

WORKERS = 8
SECONDS = 5.0                 # per round
ROUNDS = 3                    # alternating tlsward, pebble; the median round counts
WARMUP_ORDERS = 2
POLL_S = 0.005
TITLE = "## ACME issuance throughput"
PASSPHRASE = "bench passphrase"  # noqa: S105 - a throwaway CA in a temporary directory


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_listening(port: int, proc: subprocess.Popen[bytes], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"{what} exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.05)
    raise BenchError(f"{what} did not listen on {port} within {timeout:g} s")


class Responder:
    """http-01 answers for every name, from memory (one threaded HTTP/1.1 server for both ACME servers)."""

    def __init__(self) -> None:
        self.tokens: dict[str, bytes] = {}
        tokens = self.tokens

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                body = tokens.get(self.path.rsplit("/", 1)[-1])
                self.send_response(200 if body else 404)
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def server_tls(work: Path) -> tuple[Path, Path, Path]:
    """The tlsward CA (also used by tlsward's ACME server) issues the HTTPS certificate both servers present."""
    from tlsward.ca.authority import CertificateAuthority
    from tlsward.storage import open_store

    with open_store(f"sqlite:///{work / 'inventory.db'}") as store:
        ca = CertificateAuthority.init(work / "ca", store, name="bench ACME", passphrase=PASSPHRASE.encode())
        key = ec.generate_private_key(ec.SECP256R1())
        issued = ca.issue(names=["localhost", "127.0.0.1"], public_key=key.public_key(), requester="bench")
    (work / "server.pem").write_bytes(issued.fullchain_pem())
    (work / "server.key").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                        serialization.PrivateFormat.PKCS8,
                                                        serialization.NoEncryption()))
    return work / "ca" / "root.pem", work / "server.pem", work / "server.key"


@contextlib.contextmanager
def tlsward_server(work: Path, http_port: int) -> Iterator[str]:
    port = free_port()
    policy = work / "policy.toml"
    policy.write_text('[default]\nsuffixes = ["bench.test"]\n')
    log = (work / "tlsward-acme.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-c", "from tlsward.cli.acme import app; app()", "serve",
                             "--ca-dir", str(work / "ca"), "--db", f"sqlite:///{work / 'inventory.db'}",
                             "--listen", f"127.0.0.1:{port}", "--tls-cert", str(work / "server.pem"),
                             "--tls-key", str(work / "server.key"), "--policy", str(policy),
                             "--http-port", str(http_port), "--validation-address", "127.0.0.1"],
                            stdout=log, stderr=subprocess.STDOUT, env={**os.environ,
                                                                       "TLSWARD_CA_PASSPHRASE": PASSPHRASE})
    try:
        wait_listening(port, proc, "tlsward acme serve")
        yield f"https://127.0.0.1:{port}/acme/directory"
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


@contextlib.contextmanager
def pebble_server(work: Path, http_port: int) -> Iterator[str]:
    port, management, dns_port, tls_port, dns_management = (free_port() for _ in range(5))
    config = {"pebble": {"listenAddress": f"127.0.0.1:{port}", "managementListenAddress": f"127.0.0.1:{management}",
                         "certificate": str(work / "server.pem"), "privateKey": str(work / "server.key"),
                         "httpPort": http_port, "tlsPort": tls_port, "ocspResponderURL": "",
                         "externalAccountBindingRequired": False}}
    (work / "pebble.json").write_text(json.dumps(config))
    log = (work / "pebble.log").open("wb")
    dns = subprocess.Popen(["pebble-challtestsrv", "-defaultIPv4", "127.0.0.1", "-defaultIPv6", "",
                            "-dns01", f"127.0.0.1:{dns_port}", "-http01", "", "-https01", "", "-tlsalpn01", "",
                            "-management", f"127.0.0.1:{dns_management}"],
                           stdout=log, stderr=subprocess.STDOUT)
    env = {**os.environ, "PEBBLE_VA_NOSLEEP": "1", "PEBBLE_AUTHZREUSE": "0", "PEBBLE_WFE_NONCEREJECT": "0"}
    proc = subprocess.Popen(["pebble", "-config", str(work / "pebble.json"), "-dnsserver", f"127.0.0.1:{dns_port}",
                             "-strict=false"], stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        wait_listening(dns_management, dns, "pebble-challtestsrv")
        wait_listening(port, proc, "pebble")
        yield f"https://127.0.0.1:{port}/dir"
    finally:
        for each in (proc, dns):
            each.terminate()
            each.wait(10)
        log.close()


def csr_pem(name: str) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    request = (x509.CertificateSigningRequestBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
               .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
               .sign(key, hashes.SHA256()))
    return request.public_bytes(serialization.Encoding.PEM)


def account(directory_url: str, root: Path) -> client.ClientV2:
    os.environ["REQUESTS_CA_BUNDLE"] = str(root)
    key = josepy.JWKEC(key=ec.generate_private_key(ec.SECP256R1()))
    net = client.ClientNetwork(key, alg=josepy.ES256, user_agent="tlsward-bench")
    acme = client.ClientV2(client.ClientV2.get_directory(directory_url, net), net)
    regr = acme.new_account(messages.NewRegistration.from_data(terms_of_service_agreed=True))
    net.account = regr
    return acme


def one_order(acme: client.ClientV2, responder: Responder, name: str) -> None:
    """One complete order, polling briskly."""
    order = acme.new_order(csr_pem(name))
    for authz in order.authorizations:
        challb = next(c for c in authz.body.challenges if isinstance(c.chall, challenges.HTTP01))
        response, validation = challb.response_and_validation(acme.net.key)
        responder.tokens[challb.chall.encode("token")] = validation.encode()
        acme.answer_challenge(challb, response)
        deadline = time.monotonic() + 30
        while True:
            polled, _ = acme.poll(authz)
            if polled.body.status != messages.STATUS_PENDING:
                break
            if time.monotonic() > deadline:
                raise BenchError(f"{name}: authorization still pending after 30 s")
            time.sleep(POLL_S)
        if polled.body.status != messages.STATUS_VALID:
            raise BenchError(f"{name}: authorization {polled.body.status}: {polled.body.challenges}")
    for _ in range(200):
        try:
            order = acme.begin_finalization(order)
            break
        except messages.Error as exc:
            if exc.code != "orderNotReady":
                raise
            time.sleep(POLL_S)
    deadline = time.monotonic() + 30
    while True:
        body = messages.Order.from_json(acme._post_as_get(order.uri).json())
        if body.status == messages.STATUS_VALID and body.certificate:
            pem = acme._post_as_get(body.certificate).text
            if "BEGIN CERTIFICATE" not in pem:
                raise BenchError(f"{name}: no certificate downloaded")
            return
        if body.status == messages.STATUS_INVALID or time.monotonic() > deadline:
            raise BenchError(f"{name}: order {body.status}: {body.error}")
        time.sleep(POLL_S)


def accounts(directory_url: str, root: Path, responder: Responder, label: str) -> list[client.ClientV2]:
    """WORKERS accounts, each warmed up with a few orders (connections, caches, the JIT-less first calls)."""
    clients = [account(directory_url, root) for _ in range(WORKERS)]
    for n, acme in enumerate(clients):
        for w in range(WARMUP_ORDERS):
            one_order(acme, responder, f"warm{w}-{n}-{label}.bench.test")
    return clients


def measure(clients: list[client.ClientV2], responder: Responder, label: str) -> tuple[float, int, list[float]]:
    """(orders per second, orders, seconds per order) with the accounts in parallel for SECONDS."""
    done: list[float] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    stop_at = time.monotonic() + SECONDS

    def work(n: int, acme: client.ClientV2) -> None:
        count = 0
        while time.monotonic() < stop_at and not errors:
            started = time.monotonic()
            try:
                one_order(acme, responder, f"o{count}-w{n}-{label}.bench.test")
            except (BenchError, messages.Error, acme_errors.Error, OSError) as exc:
                with lock:
                    errors.append(exc)
                return
            with lock:
                done.append(time.monotonic() - started)
            count += 1

    started = time.monotonic()
    threads = [threading.Thread(target=work, args=(n, c)) for n, c in enumerate(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    elapsed = time.monotonic() - started
    if errors:
        raise BenchError(f"{label}: {type(errors[0]).__name__}: {errors[0]}")
    return len(done) / elapsed, len(done), done


def main() -> None:
    info = RunInfo()
    results: dict[str, tuple[float, int, float]] = {}

    def run(work: Path) -> None:
        root, _, _ = server_tls(work)
        responder = Responder()
        rounds: dict[str, list[tuple[float, int, list[float]]]] = {"tlsward": [], "pebble": []}
        try:
            with tlsward_server(work, responder.port) as ours, pebble_server(work, responder.port) as theirs:
                clients = {"tlsward": accounts(ours, root, responder, "tlsward"),
                           "pebble": accounts(theirs, root, responder, "pebble")}
                for n in range(ROUNDS):   # alternate, so that a busy moment on the machine hits both
                    for name in ("tlsward", "pebble"):
                        rounds[name].append(measure(clients[name], responder, f"{name}{n}"))
        finally:
            responder.close()
        for name, measured in rounds.items():
            rates = sorted(rate for rate, _, _ in measured)
            latencies = sorted(t for _, _, times in measured for t in times)
            results[name] = (rates[len(rates) // 2], sum(count for _, count, _ in measured),
                             latencies[len(latencies) // 2] if latencies else 0.0)

    if not measure_in("acme", info, run):
        raise SystemExit(1)
    header = ["server", "orders/s (median round)", "orders (all rounds)", "median s/order"]
    rows = [[name, f"{rate:.1f}", str(count), f"{median:.3f}"] for name, (rate, count, median) in results.items()]
    ratio = results["tlsward"][0] / results["pebble"][0]
    goals = [("at least pebble's order rate", ratio >= 1.0, f"{ratio:.2f}x pebble")]
    print_rows(header, rows)
    print_goals(goals)
    section = "\n\n".join([
        TITLE, wrap(f"Complete ACME orders per second (http-01 on loopback, ECDSA P-256 CSRs, certificate "
                    f"downloaded), {WORKERS} accounts in parallel, {ROUNDS} rounds of {SECONDS:g} s per server "
                    "alternating (the median round counts), certbot's `acme` library as the client for both "
                    "servers, polling every 5 ms; tlsward (`tlsward acme serve`, one process) on SQLite, pebble "
                    "with PEBBLE_VA_NOSLEEP=1 and PEBBLE_AUTHZREUSE=0."),
        "\n".join(md_table(header, rows)), "\n".join(goal_lines(goals)),
        wrap(measured_on(info, tlsward_version(), "acme", "rates")),
    ]) + "\n"
    publish("acme", TITLE, {"date": info.date, "machine": info.machine, "workers": WORKERS, "seconds": SECONDS,
                            "rounds": ROUNDS,
                            "results": {k: {"orders_per_s": v[0], "orders": v[1], "median_s": v[2]}
                                        for k, v in results.items()}, "goals": goals_json(goals)}, section)


if __name__ == "__main__":
    main()
