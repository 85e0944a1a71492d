"""Real clients, each reading one trust store, asked to connect to a lab endpoint: the ground truth that
``scan --all-stores`` and ``truststore plan`` are checked against.

curl (OpenSSL, ``--cacert``/``--capath``), Python ``ssl`` (``cafile``), Java (``SSLSocket`` with HTTPS endpoint
identification, ``-Djavax.net.ssl.trustStore``), Node (``https.get`` with its built-in roots and
``NODE_EXTRA_CA_CERTS``) and NSS (``tstclnt`` from libnss3-tools against an NSS database). Every client connects
to 127.0.0.1 with the case's SNI name and checks the certificate against that name; every run has a timeout and
no stdin. A client "succeeds" when its TLS handshake and certificate verification pass.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

TIMEOUT = 30.0

JAVA_PROBE = """
import javax.net.ssl.*;
import java.net.*;

public class Probe {
    public static void main(String[] args) throws Exception {
        String sni = args[0];
        int port = Integer.parseInt(args[1]);
        Socket raw = new Socket();
        raw.connect(new InetSocketAddress("127.0.0.1", port), 10000);
        raw.setSoTimeout(10000);
        SSLSocket s = (SSLSocket) ((SSLSocketFactory) SSLSocketFactory.getDefault()).createSocket(raw, sni, port, true);
        SSLParameters p = s.getSSLParameters();
        p.setEndpointIdentificationAlgorithm("HTTPS");
        s.setSSLParameters(p);
        try {
            s.startHandshake();
            System.out.println("OK " + s.getSession().getProtocol());
        } catch (SSLException e) {
            System.out.println("FAIL " + e.getMessage());
            System.exit(1);
        } finally {
            s.close();
        }
    }
}
"""

NODE_PROBE = """
const https = require('https');
const [sni, port] = process.argv.slice(1);
const req = https.get({host: '127.0.0.1', port: Number(port), servername: sni, path: '/', timeout: 10000,
                       checkServerIdentity: (h, cert) => require('tls').checkServerIdentity(sni, cert)}, res => {
  console.log('OK ' + res.socket.getProtocol()); res.resume(); req.destroy(); process.exit(0);
});
req.on('timeout', () => { console.log('FAIL timeout'); process.exit(1); });
req.on('error', e => { console.log('FAIL ' + (e.code || '') + ' ' + e.message); process.exit(1); });
"""

PYTHON_PROBE = """
import socket, ssl, sys
sni, port, cafile = sys.argv[1], int(sys.argv[2]), sys.argv[3]
ctx = ssl.create_default_context(cafile=cafile)
try:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=sni) as s:
            print("OK", s.version())
except ssl.SSLError as exc:
    print("FAIL", exc)
    sys.exit(1)
"""


@dataclass(frozen=True)
class Outcome:
    client: str
    ok: bool
    detail: str


def _run(client: str, cmd: Sequence[str], env: Mapping[str, str] | None = None) -> Outcome:
    proc = subprocess.run(list(cmd), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=TIMEOUT,
                          check=False, env=None if env is None else {**os.environ, **env})
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    said = next((line for line in lines if line.startswith(("curl:", "OK", "FAIL"))), lines[-1] if lines else "")
    return Outcome(client, proc.returncode == 0, said or f"exit {proc.returncode}")


def curl(sni: str, port: int, *, cafile: Path | None = None, capath: Path | None = None) -> Outcome:
    cmd = ["curl", "-sS", "-o", "/dev/null", "--max-time", "10", "--resolve", f"{sni}:{port}:127.0.0.1"]
    if cafile is not None:
        cmd += ["--cacert", str(cafile)]
    if capath is not None:
        cmd += ["--capath", str(capath)]
    return _run("curl", [*cmd, f"https://{sni}:{port}/"])


def python_ssl(sni: str, port: int, cafile: Path, python: str = sys.executable) -> Outcome:
    """Python's ``ssl`` module with one CA file: how requests uses certifi (``verify=certifi.where()``)."""
    return _run("python", [python, "-c", PYTHON_PROBE, sni, str(port), str(cafile)])


@functools.cache
def _java_classes(directory: str) -> Path:
    """Compile the probe once per directory (javac from the JDK the tests install)."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    source = out / "Probe.java"
    source.write_text(JAVA_PROBE)
    javac = shutil.which("javac")
    assert javac, "javac is needed for the Java client (make test installs openjdk-17-jdk-headless)"
    subprocess.run([javac, "-d", str(out), str(source)], check=True, timeout=120, stdin=subprocess.DEVNULL,
                   capture_output=True)
    return out


def java(sni: str, port: int, keystore: Path, work: Path, *, password: str = "changeit",  # noqa: S107 - the JDK's well-known default
         store_type: str | None = None) -> Outcome:
    classes = _java_classes(str(work / "java-probe"))
    cmd = ["java", f"-Djavax.net.ssl.trustStore={keystore}", f"-Djavax.net.ssl.trustStorePassword={password}"]
    if store_type:
        cmd.append(f"-Djavax.net.ssl.trustStoreType={store_type}")
    return _run("java", [*cmd, "-cp", str(classes), "Probe", sni, str(port)])


def node(sni: str, port: int, *, extra_ca: Path | None = None) -> Outcome:
    env = {"NODE_EXTRA_CA_CERTS": str(extra_ca)} if extra_ca is not None else {}
    base = {k: v for k, v in os.environ.items() if k != "NODE_EXTRA_CA_CERTS"}
    proc = subprocess.run(["node", "-e", NODE_PROBE, sni, str(port)], stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=TIMEOUT, check=False, env={**base, **env})
    text = (proc.stdout + proc.stderr).strip().splitlines()
    return Outcome("node", proc.returncode == 0, text[-1] if text else f"exit {proc.returncode}")


def nss(sni: str, port: int, db: Path) -> Outcome:
    """``tstclnt``: NSS's own client, validating against the database's trust anchors."""
    tstclnt = shutil.which("tstclnt")
    assert tstclnt, "tstclnt (libnss3-tools) is needed for the NSS client"
    proc = subprocess.run([tstclnt, "-h", "127.0.0.1", "-p", str(port), "-a", sni, "-d", f"sql:{db}", "-Q"],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=TIMEOUT, check=False)
    text = (proc.stdout + proc.stderr).strip().splitlines()
    return Outcome("nss", proc.returncode == 0, text[-1] if text else f"exit {proc.returncode}")
