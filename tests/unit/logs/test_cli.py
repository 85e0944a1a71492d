"""``tlsward logs``: ingest (files, stdin, a missing file among others, the JSON summary, resuming), show (tables
and JSON), prune, formats, and the one-line errors with their exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tlsward.cli.exit_codes import ExitCode
from tlsward.cli.logs import app, parse_moment
from tlsward.model.errors import UsageError

runner = CliRunner()
LINES = (
    '10.0.0.1 [2026-03-01T12:00:00+00:00] "GET / HTTP/1.1" 200 "modern/1" TLSv1.3 TLS_AES_128_GCM_SHA256 '
    'a.example 443\n'
    '10.0.0.2 [2026-03-01T12:00:01+00:00] "GET / HTTP/1.1" 200 "old-java/6" TLSv1 ECDHE-RSA-AES256-SHA a.example 443\n'
    '10.0.0.3 [2026-03-01T12:00:02+00:00] "GET / HTTP/1.1" 200 "curl/8" - - - 80\n'
    "this is not a log line\n"
)


def invoke(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), input=stdin)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'inventory.db'}"


def test_ingest_then_show(tmp_path: Path, db: str) -> None:
    log = tmp_path / "access.log"
    log.write_text(LINES)
    code, stdout, _ = invoke("ingest", str(log), "--json", "--db", db)
    summary = json.loads(stdout)
    assert code == ExitCode.OK
    assert (summary["lines"], summary["requests"], summary["malformed"], summary["endpoints"]) == (4, 3, 1, 2)
    assert summary["by_protocol"] == {"TLSv1.3": 1, "TLSv1.0": 1, "plain": 1}
    assert summary["sources"][0]["checkpoint"]["line"] == 4 and summary["sources"][0]["error"] is None

    code, stdout, _ = invoke("ingest", str(log), "--db", db)          # resumed: nothing new
    assert code == ExitCode.OK and "0 lines" in stdout

    code, stdout, _ = invoke("show", "--since", "2026-03-01", "--until", "2026-03-02", "--json", "--db", db)
    data = json.loads(stdout)
    assert code == ExitCode.OK and data["requests"] == 3
    a = next(e for e in data["endpoints"] if e["endpoint"] == "a.example:443")
    assert a["protocols"] == {"TLSv1.3": 1, "TLSv1.0": 1} and a["legacy_share"] == 0.5
    assert data["legacy_clients"] == [{"endpoint": "a.example:443", "protocol": "TLSv1.0",
                                       "cipher": "ECDHE-RSA-AES256-SHA", "user_agent": "old-java/6",
                                       "network": "10.0.0.0/24", "requests": 1, "reason": "TLSv1.0"}]
    assert data["legacy_other_requests"] == 0
    assert data["malformed"][0]["samples"] == [{"line": 4, "text": "this is not a log line"}]

    code, stdout, _ = invoke("show", "--since", "2026-03-01", "--until", "2026-03-02", "--db", db)
    assert code == ExitCode.OK and "old-java/6" in stdout and "1 malformed lines" in stdout
    code, stdout, _ = invoke("show", "--db", db)                      # the last 7 days: nothing
    assert code == ExitCode.OK and "no client-log data" in stdout


def test_a_missing_file_is_one_line_and_the_others_go_on(tmp_path: Path, db: str) -> None:
    log = tmp_path / "access.log"
    log.write_text(LINES)
    code, stdout, stderr = invoke("ingest", str(tmp_path / "gone.log"), str(log), str(tmp_path), "--json",
                                  "--db", db)
    assert code == ExitCode.USAGE
    assert stderr.strip().splitlines() == [f"error: {tmp_path / 'gone.log'}: No such file or directory",
                                           f"error: {tmp_path}: is a directory, not a log file"]
    summary = json.loads(stdout)
    assert summary["lines"] == 4
    assert [(s["source"], s["error"]) for s in summary["sources"]] == [
        (str(log), None), (str(tmp_path / "gone.log"), "No such file or directory"), (str(tmp_path), "is a directory")]
    code, stdout, _ = invoke("ingest", str(tmp_path / "gone.log"), "--json", "--db", db)
    assert code == ExitCode.USAGE
    assert json.loads(stdout)["lines"] == 0 and json.loads(stdout)["sources"][0]["error"] == "No such file or directory"


def test_stdin(db: str) -> None:
    code, stdout, _ = invoke("ingest", "-", "--json", "--db", db, stdin=LINES * 3)
    summary = json.loads(stdout)
    assert code == ExitCode.OK and summary["requests"] == 9 and summary["sources"][0]["source"] == "stdin"
    assert summary["sources"][0]["checkpoint"] is None


def test_other_formats(tmp_path: Path, db: str) -> None:
    log = tmp_path / "envoy.log"
    log.write_text('{"start_time":"2026-03-01T12:00:00Z","downstream_remote_address":"10.1.1.1:5",'
                   '"downstream_tls_version":"TLSv1.2","downstream_tls_cipher":"AES128-SHA",'
                   '"requested_server_name":"e.example","downstream_local_port":443,"user_agent":"x"}\n')
    code, stdout, _ = invoke("ingest", str(log), "--format", "envoy", "--json", "--db", db)
    assert code == ExitCode.OK and json.loads(stdout)["by_protocol"] == {"TLSv1.2": 1}
    code, stdout, _ = invoke("ingest", str(log), "--format", "nginx", "--json", "--db", db)   # already read
    assert json.loads(stdout)["lines"] == 0


def test_usage_errors() -> None:
    with pytest.raises(UsageError, match="once"):
        invoke("ingest", "-", "-")
    with pytest.raises(UsageError, match="--for"):
        invoke("ingest", "x.log", "--for", "0")
    with pytest.raises(UsageError, match="--since"):
        invoke("show", "--since", "last tuesday")
    code, _, _ = invoke("ingest", "x.log", "--format", "iis")
    assert code == ExitCode.USAGE


def test_prune_and_formats(tmp_path: Path, db: str) -> None:
    log = tmp_path / "access.log"
    log.write_text(LINES)
    invoke("ingest", str(log), "--db", db)
    code, stdout, _ = invoke("prune", "--older-than", "0", "--db", db)
    assert code == ExitCode.OK and stdout.startswith("removed 3 bucket rows")
    code, stdout, _ = invoke("formats", "nginx")
    assert code == ExitCode.OK and "$ssl_protocol $ssl_cipher" in stdout and "access_log" in stdout
    code, stdout, _ = invoke("formats")
    assert all(f"# {name}" in stdout for name in ("nginx", "haproxy", "apache", "envoy"))


def test_parse_moment() -> None:
    import datetime as dt

    now = dt.datetime(2026, 3, 10, tzinfo=dt.UTC)
    assert parse_moment("7d", now, "--since") == dt.datetime(2026, 3, 3, tzinfo=dt.UTC)
    assert parse_moment("90m", now, "--since") == now - dt.timedelta(minutes=90)
    assert parse_moment("2026-03-01T05:00:00+01:00", now, "--since") == dt.datetime(2026, 3, 1, 4, tzinfo=dt.UTC)


def test_errors_are_one_line_with_their_exit_code(tmp_path: Path) -> None:
    """As a process (``python -m tlsward.cli.logs``, what ``tlsward logs`` runs): no traceback."""
    proc = subprocess.run([sys.executable, "-m", "tlsward.cli.logs", "show", "--since", "soon", "--db",
                           f"sqlite:///{tmp_path / 'x.db'}"], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == ExitCode.USAGE and proc.stderr.strip().count("\n") == 0
    assert "--since 'soon'" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "tlsward.cli.logs", "ingest", "-", "--json", "--db",
                           f"sqlite:///{tmp_path / 'x.db'}"], input=LINES, capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == ExitCode.OK and json.loads(proc.stdout)["requests"] == 3
