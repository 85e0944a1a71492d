"""Atomic deploy of a *set* of files (cert, chain, fullchain, key) with a journal, so that a crash at any point
leaves the old set or the new set on disk, never a new certificate next to the old key.

One ``rename`` is atomic; several are not. So:

1. the journal is written (state ``staging``) naming every target, its staged file and the hard link that will
   keep its current version;
2. each new file is written beside its target (``<target>.tlsward-new``, mode and owner set before any byte is
   written, fsynced) and the current target is hard-linked to ``<target>.tlsward-old``;
3. the journal is rewritten (state ``committing``): from here on the new set is complete on disk;
4. each staged file is renamed over its target; then each ``.tlsward-old`` becomes ``<target>.prev`` (the previous
   version, kept for rollback and for people);
5. the journal is removed.

Every run first calls :func:`recover`: a ``staging`` journal is rolled back (staged files removed, targets never
touched), a ``committing`` journal is rolled forward (the remaining renames are done). Directories are fsynced
after each phase so the renames survive a power cut too.

Test hook: ``TLSWARD_LIFECYCLE_CRASH_AT=<step>`` makes the deploy code path exit the process at once (``os._exit``,
no cleanup) when it reaches that step (:data:`CRASH_POINTS` for a two-file set); only the crash-safety tests set it.
"""

from __future__ import annotations

import contextlib
import grp
import hashlib
import json
import os
import pwd
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tlsward.lifecycle.errors import LifecycleError

CRASH_ENV = "TLSWARD_LIFECYCLE_CRASH_AT"
CRASH_EXIT = 97
STAGED = ".tlsward-new"
OLD = ".tlsward-old"
PREV = ".prev"


def crash_points(count: int) -> list[str]:
    """Every step of a deploy of ``count`` files at which the crash hook can stop the process."""
    return ["journal-staging", *(f"stage-{i}" for i in range(count)), "journal-committing",
            *(f"rename-{i}" for i in range(count)), "prev", "done"]


CRASH_POINTS = crash_points(2)


@dataclass(frozen=True, slots=True)
class FileSpec:
    """One file of the set. ``content`` None removes the target (a rollback to "there was no file")."""

    target: Path
    content: bytes | None
    mode: int = 0o644
    owner: str | None = None
    group: str | None = None


def prev_path(target: Path) -> Path:
    return target.with_name(target.name + PREV)


def _staged(target: Path) -> Path:
    return target.with_name(target.name + STAGED)


def _old(target: Path) -> Path:
    return target.with_name(target.name + OLD)


def _crash(step: str) -> None:
    if os.environ.get(CRASH_ENV) == step:
        os._exit(CRASH_EXIT)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_journal(journal: Path, data: dict[str, Any]) -> None:
    tmp = journal.with_name(journal.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        json.dump(data, handle)
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(journal)
    _fsync_dir(journal.parent)


def _write_staged(spec: FileSpec, path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, spec.mode)            # before any byte: a key is never readable by others, even briefly
        if spec.owner or spec.group:
            try:
                uid = pwd.getpwnam(spec.owner).pw_uid if spec.owner else -1
                gid = grp.getgrnam(spec.group).gr_gid if spec.group else -1
                os.fchown(fd, uid, gid)
            except (KeyError, PermissionError) as exc:
                raise LifecycleError(f"{spec.target}: cannot set owner {spec.owner}:{spec.group}: {exc}") from None
        assert spec.content is not None
        os.write(fd, spec.content)
        os.fsync(fd)
    finally:
        os.close(fd)


def _keep_old(target: Path) -> bool:
    """Hard-link the current target to ``<target>.tlsward-old`` (a copy where links are not allowed)."""
    old = _old(target)
    with contextlib.suppress(FileNotFoundError):
        old.unlink()
    if not target.exists():
        return False
    try:
        os.link(target, old)
    except OSError:
        shutil.copy2(target, old)
    return True


def deploy_files(specs: Sequence[FileSpec], journal: Path, *, keep_previous: bool = True) -> None:
    """Replace every target with its new content, all or nothing (see the module docstring)."""
    recover(journal)
    for spec in specs:
        if not spec.target.parent.is_dir():
            raise LifecycleError(f"{spec.target}: directory {spec.target.parent} does not exist")
    journal.parent.mkdir(parents=True, exist_ok=True)
    entries = [{"target": str(spec.target), "new": str(_staged(spec.target)) if spec.content is not None else None,
                "sha256": hashlib.sha256(spec.content).hexdigest() if spec.content is not None else None,
                "old": str(_old(spec.target)) if keep_previous else None, "had_target": spec.target.exists()}
               for spec in specs]
    data: dict[str, Any] = {"version": 1, "state": "staging", "keep_previous": keep_previous, "files": entries}
    _write_journal(journal, data)
    _crash("journal-staging")
    try:
        for index, (spec, entry) in enumerate(zip(specs, entries, strict=True)):
            if spec.content is not None:
                _write_staged(spec, _staged(spec.target))
            if keep_previous:
                entry["had_target"] = _keep_old(spec.target)
            _crash(f"stage-{index}")
        for directory in {spec.target.parent for spec in specs}:
            _fsync_dir(directory)
        data["state"] = "committing"
        _write_journal(journal, data)
    except OSError as exc:
        recover(journal)
        raise LifecycleError(f"{exc.filename or journal}: cannot stage the new files: {exc.strerror}") from None
    _crash("journal-committing")
    _commit(data, journal)


def _commit(data: dict[str, Any], journal: Path) -> None:
    files = data["files"]
    for index, entry in enumerate(files):
        target = Path(entry["target"])
        if entry["new"] is None:
            with contextlib.suppress(FileNotFoundError):
                target.unlink()
        else:
            new = Path(entry["new"])
            if new.exists():
                new.replace(target)
            elif _sha256(target) != entry["sha256"]:
                raise LifecycleError(f"{journal}: {new} is gone but {target} does not hold the new content; "
                                     "restore the files by hand")
        _crash(f"rename-{index}")
    for directory in {Path(entry["target"]).parent for entry in files}:
        _fsync_dir(directory)
    if data.get("keep_previous"):
        for entry in files:
            target = Path(entry["target"])
            old = _old(target)
            if old.exists():
                old.replace(prev_path(target))
            elif not entry["had_target"]:
                with contextlib.suppress(FileNotFoundError):
                    prev_path(target).unlink()       # a stale .prev would "restore" something never deployed
        for directory in {Path(entry["target"]).parent for entry in files}:
            _fsync_dir(directory)
    _crash("prev")
    journal.unlink()
    _fsync_dir(journal.parent)
    _crash("done")


def _sha256(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return None


def recover(journal: Path) -> str | None:
    """Finish or undo an interrupted deploy: ``"rolled forward"``, ``"rolled back"``, or None (nothing to do)."""
    with contextlib.suppress(FileNotFoundError):
        journal.with_name(journal.name + ".tmp").unlink()
    try:
        data = json.loads(journal.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise LifecycleError(f"{journal}: unreadable deploy journal ({exc}); inspect the files it names") from None
    if data.get("state") == "committing":
        _commit(data, journal)
        return "rolled forward"
    for entry in data.get("files", []):
        for name in ("new", "old"):
            if entry.get(name):
                with contextlib.suppress(FileNotFoundError):
                    Path(entry[name]).unlink()
    journal.unlink()
    _fsync_dir(journal.parent)
    return "rolled back"


def restore_previous(targets: Sequence[Path], journal: Path, modes: dict[Path, int] | None = None) -> None:
    """Put every target's ``.prev`` back (a target without one is removed: it did not exist before), atomically
    as a set; the ``.prev`` files stay."""
    specs = []
    for target in targets:
        prev = prev_path(target)
        try:
            content: bytes | None = prev.read_bytes()
            mode = prev.stat().st_mode & 0o777
        except FileNotFoundError:
            content, mode = None, 0o600
        specs.append(FileSpec(target, content, (modes or {}).get(target, mode)))
    deploy_files(specs, journal, keep_previous=False)
