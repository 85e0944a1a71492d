"""Crash safety of the file-set deploy: a real subprocess is killed (os._exit, no cleanup) at every step; after
recovery the set on disk is entirely the old one or entirely the new one, and the previous version is kept."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tlsward.lifecycle.files import (
    CRASH_ENV,
    CRASH_EXIT,
    CRASH_POINTS,
    FileSpec,
    deploy_files,
    prev_path,
    recover,
    restore_previous,
)

SCRIPT = """
import sys
from pathlib import Path
from tlsward.lifecycle.files import FileSpec, deploy_files
d = Path(sys.argv[1])
deploy_files([FileSpec(d / "www.crt", b"NEW CERT", 0o644), FileSpec(d / "www.key", b"NEW KEY", 0o600)],
             d / "state" / "www.journal")
"""


def old_set(directory: Path) -> None:
    (directory / "www.crt").write_bytes(b"OLD CERT")
    (directory / "www.key").write_bytes(b"OLD KEY")
    (directory / "www.key").chmod(0o600)


def contents(directory: Path) -> tuple[bytes, bytes]:
    return (directory / "www.crt").read_bytes(), (directory / "www.key").read_bytes()


def run_deploy(directory: Path, crash_at: str | None) -> int:
    env = {**os.environ, CRASH_ENV: crash_at} if crash_at else {k: v for k, v in os.environ.items() if k != CRASH_ENV}
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(directory)], env=env, capture_output=True, text=True,
                          timeout=30, check=False)
    assert proc.returncode in (0, CRASH_EXIT), proc.stderr
    return proc.returncode


@pytest.mark.parametrize("step", CRASH_POINTS)
def test_a_crash_at_any_step_leaves_the_old_or_the_new_set(tmp_path: Path, step: str) -> None:
    old_set(tmp_path)
    assert run_deploy(tmp_path, step) == CRASH_EXIT
    journal = tmp_path / "state" / "www.journal"
    committed = CRASH_POINTS.index(step) >= CRASH_POINTS.index("journal-committing")
    outcome = recover(journal)
    assert outcome == ("rolled forward" if committed and step != "done" else
                       None if step == "done" else "rolled back")
    assert contents(tmp_path) == ((b"NEW CERT", b"NEW KEY") if committed else (b"OLD CERT", b"OLD KEY"))
    assert not journal.exists()
    leftovers = sorted(p.name for p in tmp_path.iterdir() if ".tlsward-" in p.name)
    assert leftovers == []
    if committed:
        assert prev_path(tmp_path / "www.crt").read_bytes() == b"OLD CERT"
        assert prev_path(tmp_path / "www.key").read_bytes() == b"OLD KEY"
    assert (tmp_path / "www.key").stat().st_mode & 0o777 == 0o600
    # The next deploy after recovery works as usual.
    assert run_deploy(tmp_path, None) == 0 and contents(tmp_path) == (b"NEW CERT", b"NEW KEY")


def test_between_renames_the_disk_is_mixed_until_recovery(tmp_path: Path) -> None:
    old_set(tmp_path)
    run_deploy(tmp_path, "rename-0")
    assert contents(tmp_path) == (b"NEW CERT", b"OLD KEY"), "the crash really happened mid-set"
    journal = json.loads((tmp_path / "state" / "www.journal").read_text())
    assert journal["state"] == "committing"
    assert recover(tmp_path / "state" / "www.journal") == "rolled forward"
    assert contents(tmp_path) == (b"NEW CERT", b"NEW KEY")


def test_key_mode_is_set_before_content_and_restore_brings_back_the_previous_set(tmp_path: Path) -> None:
    old_set(tmp_path)
    journal = tmp_path / "state" / "j"
    deploy_files([FileSpec(tmp_path / "www.crt", b"NEW CERT", 0o644), FileSpec(tmp_path / "www.key", b"NEW KEY",
                                                                                0o600)], journal)
    assert (tmp_path / "www.key").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "www.crt").stat().st_mode & 0o777 == 0o644
    restore_previous([tmp_path / "www.crt", tmp_path / "www.key"], journal)
    assert contents(tmp_path) == (b"OLD CERT", b"OLD KEY")
    assert prev_path(tmp_path / "www.crt").read_bytes() == b"OLD CERT", "the previous version stays"


def test_first_deploy_has_no_previous_and_a_rollback_removes_it(tmp_path: Path) -> None:
    journal = tmp_path / "state" / "j"
    prev_path(tmp_path / "www.crt").write_bytes(b"STALE")
    deploy_files([FileSpec(tmp_path / "www.crt", b"NEW", 0o644)], journal)
    assert not prev_path(tmp_path / "www.crt").exists(), "a stale .prev would restore something never deployed"
    restore_previous([tmp_path / "www.crt"], journal)
    assert not (tmp_path / "www.crt").exists()


def test_a_missing_directory_fails_before_anything_is_written(tmp_path: Path) -> None:
    from tlsward.lifecycle.errors import LifecycleError

    old_set(tmp_path)
    with pytest.raises(LifecycleError, match="does not exist"):
        deploy_files([FileSpec(tmp_path / "www.crt", b"NEW", 0o644), FileSpec(tmp_path / "no" / "k", b"K", 0o600)],
                     tmp_path / "state" / "j")
    assert contents(tmp_path) == (b"OLD CERT", b"OLD KEY")
