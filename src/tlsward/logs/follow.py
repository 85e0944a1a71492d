"""Reading access logs: files from a checkpoint and across rotation, or a stream (stdin), into a :class:`Fold`.

A file is read in 1 MiB chunks; only complete lines are folded, so a :class:`Checkpoint` (inode, the byte offset
after the last complete line, the line number, and a fingerprint of the 64 bytes before the offset) always names
a line boundary. :func:`run` hands every batch to a ``commit`` callback together with the sources' checkpoints;
the caller writes both in one transaction (``tlsward.storage.clientlogs``), so a crash or a restart neither
loses nor counts twice a line.

Rotation, while following and between runs:

* **rename and create** (logrotate's default, ``nginx -s reopen``): the path names a new inode. The old file is
  read to its end and then the new one from its start, once the new one has content (the server writes there
  only after it reopened its log, so the old one is complete by then).
* **copytruncate**: the same inode shrinks below the offset, or the bytes before the offset change. The lines
  not yet read are in the copy: a sibling (``access.log.1``, ``access.log-20260301`` ...; compressed ones are
  skipped) whose bytes before the offset match the fingerprint is read from the offset first, then the file
  from its start. Lines the server wrote between the copy and the truncation are lost: that is copytruncate.
* **after a restart**, a checkpoint naming another inode than the path's is looked up among the siblings the
  same way (the file was rotated while nothing read it), so the rest of the old file is not lost either.

Lines longer than :data:`MAX_LINE` bytes are not held in memory: they are counted as malformed (a placeholder
naming their size is what the fold sees) and skipped up to their newline. Invalid UTF-8 is replaced, never
fatal. Every loop is bounded: without ``follow`` a file is read to its end (a stream to EOF) and :func:`run`
returns; with it, :func:`run` returns when ``stop`` is set (the CLI sets it on SIGTERM and Ctrl-C) or after
``seconds``.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import select
import stat
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Protocol

from tlsward.logs.ingest import BATCH_LINES, MAX_CLIENT_KEYS, Fold
from tlsward.model.clientlogs import Checkpoint, IngestBatch

__all__ = ["CHUNK", "MAX_LINE", "Commit", "FileSource", "IngestReport", "Source", "SourceReport", "StreamSource",
           "fingerprint", "run"]

CHUNK = 1 << 20                 # bytes per read
MAX_LINE = 64 * 1024            # bytes: a longer line is malformed and skipped without being held
FINGERPRINT_BYTES = 64
POLL_SECONDS = 0.2              # idle wait between looks at the files (follow mode)
FLUSH_SECONDS = 2.0             # while following, what was read is committed at least this often
COMPRESSED = (".gz", ".bz2", ".xz", ".zst", ".lz4", ".z", ".zip")
STDIN = "stdin"

Commit = Callable[[IngestBatch, Sequence[Checkpoint], Mapping[str, Checkpoint | None]], None]
"""``commit(batch, checkpoints, previous)``: store the batch and the checkpoints in one transaction; ``previous``
is what each source's checkpoint was when this run last wrote (or read) it, to notice a second ingester."""


def fingerprint(recent: bytes) -> str:
    """What a checkpoint keeps of the bytes just before its offset."""
    return hashlib.sha256(recent).hexdigest()[:32] if recent else ""


class _Splitter:
    """Bytes in, complete lines out; tracks the offset after the last complete line, the number of lines up to
    there and the bytes just before it. Over-long lines are replaced by a placeholder (see the module)."""

    def __init__(self, offset: int = 0, line: int = 0, recent: bytes = b"") -> None:
        self.offset, self.line, self.recent = offset, line, recent
        self.pending = b""                       # an incomplete line after ``offset``
        self.skipped = 0                         # bytes of an over-long line dropped so far
        self.skipped_head = b""
        self.skipped_tail = b""

    @property
    def position(self) -> int:
        """Where the next byte comes from in the file."""
        return self.offset + len(self.pending) + self.skipped

    @staticmethod
    def _placeholder(size: int, head: bytes) -> str:
        text = head[:150].decode("utf-8", "replace").replace('"', "'")
        return f"<a line of {size} bytes, over the {MAX_LINE}-byte limit> {text}"

    def consume(self, data: bytes) -> list[str]:
        first: list[str] = []
        if self.skipped:
            newline = data.find(b"\n")
            if newline < 0:
                self.skipped += len(data)
                self.skipped_tail = (self.skipped_tail + data)[-FINGERPRINT_BYTES:]
                return []
            size = self.skipped + newline
            self.offset += size + 1
            self.recent = (self.skipped_tail + data[:newline + 1])[-FINGERPRINT_BYTES:]
            self.line += 1
            first.append(self._placeholder(size, self.skipped_head))
            self.skipped, self.skipped_head, self.skipped_tail = 0, b"", b""
            data = data[newline + 1:]
        buffer = self.pending + data if self.pending else data
        end = buffer.rfind(b"\n")
        lines: list[str] = []
        if end >= 0:
            complete = buffer[:end + 1]
            self.pending = buffer[end + 1:]
            lines = complete.decode("utf-8", "replace").split("\n")
            lines.pop()
            if len(complete) > MAX_LINE and max(map(len, lines)) > MAX_LINE:
                lines = [self._placeholder(len(line.encode("utf-8", "replace")), line[:150].encode(
                    "utf-8", "replace")) if len(line) > MAX_LINE else line for line in lines]
            self.offset += end + 1
            self.line += len(lines)
            self.recent = (self.recent + complete[-FINGERPRINT_BYTES:])[-FINGERPRINT_BYTES:]
        else:
            self.pending = buffer
        if len(self.pending) > MAX_LINE:
            self.skipped, self.skipped_head = len(self.pending), self.pending[:150]
            self.skipped_tail = self.pending[-FINGERPRINT_BYTES:]
            self.pending = b""
        return first + lines if first else lines

    def finish(self) -> list[str]:
        """The last line of a file that will not grow any more, complete or not (and an over-long one)."""
        lines: list[str] = []
        if self.skipped:
            lines.append(self._placeholder(self.skipped, self.skipped_head))
            self.offset += self.skipped
            self.recent = self.skipped_tail
            self.skipped, self.skipped_head, self.skipped_tail = 0, b"", b""
        elif self.pending:
            lines.append(self.pending.decode("utf-8", "replace"))
            self.offset += len(self.pending)
            self.recent = (self.recent + self.pending)[-FINGERPRINT_BYTES:]
            self.pending = b""
        self.line += len(lines)
        return lines


class _Cursor:
    """An open log file and how far it was read."""

    def __init__(self, path: Path, offset: int = 0, line: int = 0) -> None:
        self.path = path
        self.fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)   # (a FIFO must not block the open)
        try:
            status = os.fstat(self.fd)
            if not stat.S_ISREG(status.st_mode):
                raise OSError(errno.EINVAL, "not a regular file (read a pipe or a device as stdin: -)")
            self.inode = status.st_ino
            size = min(offset, FINGERPRINT_BYTES)
            recent = os.pread(self.fd, size, offset - size) if size else b""
        except OSError:
            os.close(self.fd)
            raise
        self.splitter = _Splitter(offset, line, recent)

    def size(self) -> int:
        return os.fstat(self.fd).st_size

    def matches(self, offset: int, expected: str) -> bool:
        """The file holds at least ``offset`` bytes and the ones before it have this fingerprint ("" matches)."""
        if self.size() < offset:
            return False
        size = min(offset, FINGERPRINT_BYTES)
        return not expected or fingerprint(os.pread(self.fd, size, offset - size) if size else b"") == expected

    def intact(self) -> bool:
        """What was read is still there (not truncated, not rewritten: copytruncate)."""
        splitter = self.splitter
        return self.size() >= splitter.position and (
            not splitter.recent or os.pread(self.fd, len(splitter.recent), splitter.offset - len(splitter.recent))
            == splitter.recent)

    def read(self) -> tuple[list[str], int] | None:
        """The next complete lines (and the number of the first), ``([], n)`` for a chunk inside a line, None at
        the end of the file."""
        data = os.pread(self.fd, CHUNK, self.splitter.position)
        if not data:
            return None
        first = self.splitter.line + 1
        return self.splitter.consume(data), first

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class Source(Protocol):
    name: str
    notes: list[str]
    exhausted: bool            # a stream at EOF: nothing more will come

    def read(self) -> tuple[list[str], int] | None: ...

    def poll(self) -> None: ...

    def checkpoint(self) -> Checkpoint | None: ...

    def close(self) -> None: ...


class FileSource:
    """A log file by path: resumed from ``checkpoint``, followed across rotation (:meth:`poll`). Raises OSError
    (the CLI makes it one line) when the file cannot be opened."""

    def __init__(self, path: str | Path, checkpoint: Checkpoint | None = None) -> None:
        self.path = Path(path).absolute()
        self.name = str(self.path)
        self.notes: list[str] = []
        self.rotations = 0
        self.exhausted = False
        self._then_path = False               # at the end of the current file, go on with the path from 0
        self._cursor = self._resume(checkpoint)

    # -- opening ---------------------------------------------------------------------------------------------------

    def _resume(self, checkpoint: Checkpoint | None) -> _Cursor:
        current = _Cursor(self.path)
        if checkpoint is None:
            return current
        if current.inode == checkpoint.inode:
            if current.matches(checkpoint.offset, checkpoint.fingerprint):
                current.close()
                return _Cursor(self.path, checkpoint.offset, checkpoint.line)
            copy = self._find(checkpoint, same_inode=False)
            if copy is not None:
                current.close()
                self.notes.append(f"truncated since the last run (copytruncate): the rest is read from {copy.path}")
                self._then_path = True
                return copy
            self.notes.append("truncated or rewritten since the last run and no copy found: read from the start")
            return current
        rotated = self._find(checkpoint, same_inode=True)
        if rotated is not None:
            current.close()
            self.notes.append(f"rotated since the last run: the rest of {rotated.path} is read first")
            self._then_path = True
            return rotated
        self.notes.append("replaced since the last run and the old file is gone: read from the start")
        return current

    def _siblings(self) -> list[Path]:
        """Files next to the log whose name extends its name (rotated copies), newest first; no compressed ones."""
        base = self.path.name
        found: list[tuple[float, Path]] = []
        try:
            with os.scandir(self.path.parent) as entries:
                for entry in entries:
                    if entry.name == base or not entry.name.startswith(base):
                        continue
                    if entry.name.lower().endswith(COMPRESSED) or not entry.is_file():
                        continue
                    found.append((entry.stat().st_mtime, Path(entry.path)))
        except OSError:
            return []
        return [path for _, path in sorted(found, reverse=True)]

    def _find(self, checkpoint: Checkpoint, *, same_inode: bool) -> _Cursor | None:
        """The sibling holding the rest of what ``checkpoint`` names, opened at its offset: the same inode
        (renamed away), or another whose bytes before the offset match (copied, then truncated)."""
        for path in self._siblings():
            try:
                candidate = _Cursor(path)
            except OSError:
                continue
            same = candidate.inode == checkpoint.inode
            if same == same_inode and candidate.matches(checkpoint.offset, checkpoint.fingerprint):
                candidate.close()
                try:
                    return _Cursor(path, checkpoint.offset, checkpoint.line)
                except OSError:
                    return None
            candidate.close()
        return None

    # -- reading ---------------------------------------------------------------------------------------------------

    def read(self) -> tuple[list[str], int] | None:
        if not self._then_path and not self._cursor.intact():
            self._truncated()                  # copytruncate: before reading on at an offset that means nothing
        got = self._cursor.read()
        if got is not None or not self._then_path:
            return got
        try:                                   # the rotated file is done: its last line, then the new file
            following = _Cursor(self.path)
        except FileNotFoundError:
            return None
        first = self._cursor.splitter.line + 1
        last = self._cursor.splitter.finish()
        self._cursor.close()
        self._cursor, self._then_path = following, False
        self.rotations += 1
        return last, first

    def poll(self) -> None:
        """Look for a rotation (follow mode, when :meth:`read` found nothing new)."""
        if self._then_path:
            return
        try:
            status = self.path.stat()
        except OSError:
            return                             # moved away and not (yet) recreated: the old file may still grow
        if status.st_ino != self._cursor.inode:
            if status.st_size > 0:             # the server writes to the new file: the old one is complete
                self._then_path = True
            return
        if not self._cursor.intact():
            self._truncated()

    def _truncated(self) -> None:
        """The file shrank below what was read, or the bytes before the offset changed: go on in the copy (from
        the offset), then the file from its start."""
        splitter = self._cursor.splitter
        mark = Checkpoint(self.name, self._cursor.inode, splitter.offset, splitter.line, fingerprint(splitter.recent))
        copy = self._find(mark, same_inode=False)
        if copy is None:
            try:
                restart = _Cursor(self.path)
            except OSError:
                return                         # gone meanwhile: the next look decides
            self.notes.append(f"truncated at line {splitter.line} and no copy found: lines may be lost")
        self._cursor.close()
        self.rotations += 1
        if copy is not None:
            self._cursor, self._then_path = copy, True
        else:
            self._cursor = restart

    def checkpoint(self) -> Checkpoint:
        splitter = self._cursor.splitter
        return Checkpoint(self.name, self._cursor.inode, splitter.offset, splitter.line, fingerprint(splitter.recent))

    def close(self) -> None:
        self._cursor.close()


class StreamSource:
    """A stream (stdin): no checkpoint, no rotation; read until EOF. ``stream`` is a file descriptor or a binary
    file; one with a descriptor is polled (``select``) so that a quiet pipe does not block the other sources or
    a stop, one without (a test's BytesIO) is read as it comes."""

    def __init__(self, stream: int | BinaryIO = 0, name: str = STDIN) -> None:
        self.name = name
        self.notes: list[str] = []
        self.exhausted = False
        self._splitter = _Splitter()
        self._stream: BinaryIO | None = None
        if isinstance(stream, int):
            self.fd = stream
        else:
            try:
                self.fd = stream.fileno()
            except (OSError, AttributeError, io.UnsupportedOperation):
                self.fd, self._stream = -1, stream

    def _read(self) -> bytes | None:
        if self._stream is not None:
            return self._stream.read(CHUNK)
        ready, _, _ = select.select([self.fd], [], [], 0)
        return os.read(self.fd, CHUNK) if ready else None

    def read(self) -> tuple[list[str], int] | None:
        if self.exhausted:
            return None
        data = self._read()
        if data is None:
            return None
        first = self._splitter.line + 1
        if not data:
            self.exhausted = True
            last = self._splitter.finish()
            return (last, first) if last else None
        return self._splitter.consume(data), first

    def poll(self) -> None:
        return None

    def checkpoint(self) -> Checkpoint | None:
        return None

    def close(self) -> None:
        return None


@dataclass
class SourceReport:
    """One source's share of a run."""

    source: str
    lines: int = 0
    malformed: int = 0
    rotations: int = 0
    notes: list[str] = field(default_factory=list)
    checkpoint: Checkpoint | None = None


@dataclass
class IngestReport:
    """What :func:`run` did."""

    sources: list[SourceReport]
    fold: Fold
    batches: int = 0
    seconds: float = 0.0
    stopped: bool = False                      # ended by ``stop`` (or ``seconds``), not by reaching the end


def run(sources: Sequence[Source], fold: Fold, commit: Commit, *, follow: bool = False,
        seconds: float | None = None, stop: threading.Event | None = None,
        previous: Mapping[str, Checkpoint | None] | None = None, poll: float = POLL_SECONDS,
        flush_seconds: float = FLUSH_SECONDS, batch_lines: int = BATCH_LINES,
        max_client_keys: int = MAX_CLIENT_KEYS) -> IngestReport:
    """Read ``sources`` into ``fold`` and ``commit`` every batch with the checkpoints. ``previous`` is each
    source's checkpoint as loaded (what the database should still hold at the first commit)."""
    started = time.monotonic()
    deadline = None if seconds is None else started + seconds
    stop = stop or threading.Event()
    reports = {source.name: SourceReport(source.name) for source in sources}
    result = IngestReport(sources=list(reports.values()), fold=fold)
    committed: dict[str, Checkpoint | None] = {source.name: (previous or {}).get(source.name) for source in sources}
    last_flush = started

    def flush() -> None:
        nonlocal last_flush
        marks = [mark for source in sources if (mark := source.checkpoint()) is not None]
        changed = [mark for mark in marks if committed.get(mark.source) != mark]
        if fold.pending_lines or changed:
            commit(fold.take(), changed, {mark.source: committed.get(mark.source) for mark in changed})
            committed.update({mark.source: mark for mark in changed})
            result.batches += 1
        last_flush = time.monotonic()

    active = list(sources)
    while active:
        if stop.is_set() or (deadline is not None and time.monotonic() >= deadline):
            result.stopped = True
            break
        progressed = False
        for source in list(active):
            got = source.read()
            if got is None:
                if source.exhausted or (not follow and not isinstance(source, StreamSource)):
                    active.remove(source)
                elif follow:
                    source.poll()
                continue
            lines, first = got
            progressed = True
            if lines:
                report = reports[source.name]
                report.lines += len(lines)
                report.malformed += fold.feed(source.name, lines, first)
                if fold.pending_lines >= batch_lines or fold.client_keys >= max_client_keys:
                    flush()
        if follow and time.monotonic() - last_flush >= flush_seconds:
            flush()
        if not progressed and active:
            stop.wait(poll)
    flush()
    for source in sources:
        report = reports[source.name]
        report.notes = list(source.notes)
        report.rotations = getattr(source, "rotations", 0)
        report.checkpoint = source.checkpoint()
    result.seconds = time.monotonic() - started
    return result
