"""Reading logs: to the end and resumed from a checkpoint, exactly once across a crash between batches; following
rename-and-create and copytruncate rotations; rotations while nothing ran; stdin; bounded loops. The database is
an in-memory stand-in with the same contract as ClientLogStore.record (all of a batch and its checkpoints, or
nothing); tests/unit/storage/test_clientlogs_storage.py runs the same against SQLite and PostgreSQL, and
tests/integration/test_logs_real_nginx.py against a real nginx."""

from __future__ import annotations

import collections
import io
import os
import shutil
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pytest

from tlsward.logs.follow import MAX_LINE, FileSource, StreamSource, run
from tlsward.logs.ingest import Fold
from tlsward.model.clientlogs import Checkpoint, IngestBatch


class Crash(Exception):
    pass


class Memory:
    """What ClientLogStore.record promises, in memory."""

    def __init__(self) -> None:
        self.counts: collections.Counter[str] = collections.Counter()
        self.malformed = 0
        self.checkpoints: dict[str, Checkpoint] = {}
        self.commits = 0
        self.fail_at: int | None = None
        self.lock = threading.Lock()

    def commit(self, batch: IngestBatch, marks: Sequence[Checkpoint],
               previous: Mapping[str, Checkpoint | None]) -> None:
        with self.lock:
            self.commits += 1
            if self.fail_at == self.commits:
                raise Crash("the database went away")
            for source, before in previous.items():
                assert self.checkpoints.get(source) == before, "another ingester moved the checkpoint"
            for row in batch.rows:
                self.counts[row.cipher] += row.requests
            self.malformed += sum(m.count for m in batch.malformed)
            self.checkpoints.update({mark.source: mark for mark in marks})

    def total(self) -> int:
        with self.lock:
            return sum(self.counts.values())


def lines(n: int, cipher: str = "AES128-SHA", start: int = 0) -> bytes:
    return "".join(f'10.0.0.{i % 250} [2026-03-01T12:{i // 60 % 60:02d}:{i % 60:02d}Z] "GET / HTTP/1.1" 200 "ua" '
                   f"TLSv1.2 {cipher} a.example 443\n" for i in range(start, start + n)).encode()


def ingest(memory: Memory, *paths: Path, batch_lines: int = 500_000) -> None:
    sources = [FileSource(path, memory.checkpoints.get(str(path.absolute()))) for path in paths]
    previous = {source.name: memory.checkpoints.get(source.name) for source in sources}
    try:
        run(sources, Fold("nginx"), memory.commit, previous=previous, batch_lines=batch_lines)
    finally:
        for source in sources:
            source.close()


def test_read_to_the_end_then_only_what_was_appended(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_bytes(lines(100))
    memory = Memory()
    ingest(memory, log)
    mark = memory.checkpoints[str(log)]
    assert memory.counts == {"AES128-SHA": 100}
    assert (mark.offset, mark.line, mark.inode) == (log.stat().st_size, 100, log.stat().st_ino)
    ingest(memory, log)
    assert memory.total() == 100 and memory.commits == 1, "nothing new: nothing written"
    with log.open("ab") as handle:
        handle.write(lines(7, "RC4-MD5"))
    ingest(memory, log)
    assert memory.counts == {"AES128-SHA": 100, "RC4-MD5": 7} and memory.checkpoints[str(log)].line == 107


def test_an_unfinished_last_line_waits_for_its_newline(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    whole = lines(3)
    log.write_bytes(whole[:-20])
    memory = Memory()
    ingest(memory, log)
    assert memory.total() == 2
    with log.open("ab") as handle:
        handle.write(whole[-20:])
    ingest(memory, log)
    assert memory.total() == 3 and memory.malformed == 0


def test_a_crash_between_batches_neither_loses_nor_doubles(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_bytes(lines(50_000))         # ~5 MiB: a batch is taken after each 1 MiB read past batch_lines
    memory = Memory()
    memory.fail_at = 3
    with pytest.raises(Crash):
        ingest(memory, log, batch_lines=1000)
    committed = memory.checkpoints[str(log)]
    assert 0 < memory.total() == committed.line < 50_000               # counts and checkpoint agree
    memory.fail_at = None
    ingest(memory, log, batch_lines=1000)
    assert memory.total() == 50_000 and memory.checkpoints[str(log)].line == 50_000


def test_several_files_are_checkpointed_together(tmp_path: Path) -> None:
    a, b = tmp_path / "a.log", tmp_path / "b.log"
    a.write_bytes(lines(3000, "A"))
    b.write_bytes(lines(1000, "B"))
    memory = Memory()
    ingest(memory, a, b, batch_lines=500)
    assert memory.counts == {"A": 3000, "B": 1000}
    assert {mark.line for mark in memory.checkpoints.values()} == {3000, 1000}


@pytest.fixture
def following(tmp_path: Path) -> Iterator[tuple[Path, Memory, threading.Event, list[FileSource]]]:
    log = tmp_path / "access.log"
    log.write_bytes(b"")
    memory, stop = Memory(), threading.Event()
    source = FileSource(log)
    errors: list[BaseException] = []

    def target() -> None:
        try:
            run([source], Fold("nginx"), memory.commit, follow=True, stop=stop, poll=0.01, flush_seconds=0.02)
        except BaseException as exc:        # surfaced by the test, not lost in the thread
            errors.append(exc)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    yield log, memory, stop, [source]
    stop.set()
    thread.join(10)
    source.close()
    assert not thread.is_alive() and not errors, errors


def wait_total(memory: Memory, total: int) -> None:
    deadline = time.monotonic() + 10
    while memory.total() != total:
        assert time.monotonic() < deadline, f"{memory.total()} of {total}"
        time.sleep(0.01)


def append(path: Path, data: bytes) -> None:
    with path.open("ab") as handle:
        handle.write(data)


def test_rename_and_create_while_following(following: tuple[Path, Memory, threading.Event, list[FileSource]]) -> None:
    log, memory, _, (source,) = following
    append(log, lines(50))
    wait_total(memory, 50)
    rotated = log.with_name("access.log.1")
    log.rename(rotated)
    append(rotated, lines(5))             # the server still writes to the old file until it reopens
    time.sleep(0.05)
    log.write_bytes(b"")                  # logrotate's `create`: the new file is empty until the server reopens
    append(rotated, lines(3))
    time.sleep(0.05)
    append(log, lines(20, "NEW"))         # reopened: the old one is complete
    wait_total(memory, 78)
    assert memory.counts == {"AES128-SHA": 58, "NEW": 20}
    assert source.rotations == 1 and memory.checkpoints[str(log)].inode == log.stat().st_ino


def test_copytruncate_while_following(following: tuple[Path, Memory, threading.Event, list[FileSource]]) -> None:
    log, memory, _, (source,) = following
    append(log, lines(40))
    wait_total(memory, 40)
    shutil.copyfile(log, log.with_name("access.log.1"))
    with log.open("r+b") as handle:
        handle.truncate(0)
    append(log, lines(60, "AFTER"))       # written again past the old offset before the follower looks
    wait_total(memory, 100)
    assert memory.counts == {"AES128-SHA": 40, "AFTER": 60} and source.rotations >= 1


def test_copytruncate_with_unread_lines_reads_them_from_the_copy(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_bytes(lines(30))
    memory = Memory()
    ingest(memory, log)
    append(log, lines(12, "UNREAD"))
    shutil.copyfile(log, log.with_name("access.log-20260302"))
    with log.open("r+b") as handle:
        handle.truncate(0)
    append(log, lines(5, "AFTER"))
    source = FileSource(log, memory.checkpoints[str(log)])
    try:
        assert any("copytruncate" in note for note in source.notes)
        run([source], Fold("nginx"), memory.commit, previous={source.name: memory.checkpoints[str(log)]})
    finally:
        source.close()
    assert memory.counts == {"AES128-SHA": 30, "UNREAD": 12, "AFTER": 5}


def test_renamed_while_stopped_reads_the_rest_of_the_old_file_first(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_bytes(lines(30))
    memory = Memory()
    ingest(memory, log)
    append(log, lines(8, "UNREAD"))
    log.rename(tmp_path / "access.log.1")
    (tmp_path / "access.log.2.gz").write_bytes(b"\x1f\x8b compressed: never opened")
    log.write_bytes(lines(4, "NEW"))
    ingest(memory, log)
    assert memory.counts == {"AES128-SHA": 30, "UNREAD": 8, "NEW": 4}
    assert memory.checkpoints[str(log)].inode == log.stat().st_ino and memory.checkpoints[str(log)].line == 4


def test_replaced_while_stopped_with_the_old_file_gone_starts_over(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_bytes(lines(30))
    memory = Memory()
    ingest(memory, log)
    log.unlink()
    (tmp_path / "unrelated.log").write_bytes(lines(99))     # takes the inode, perhaps: not a sibling of the log
    log.write_bytes(lines(6, "NEW"))
    source = FileSource(log, memory.checkpoints[str(log)])
    source.close()
    assert source.notes and "read from the start" in source.notes[0]
    ingest(memory, log)
    assert memory.counts == {"AES128-SHA": 30, "NEW": 6}


def test_rewritten_in_place_is_noticed_by_the_fingerprint(tmp_path: Path) -> None:
    """Same inode, as long as before, other bytes (truncated and written again while nothing ran)."""
    log = tmp_path / "access.log"
    log.write_bytes(lines(30))
    memory = Memory()
    ingest(memory, log)
    with log.open("r+b") as handle:
        handle.truncate(0)
        handle.write(lines(31, "OTHER", start=500))
    ingest(memory, log)
    assert memory.counts == {"AES128-SHA": 30, "OTHER": 31}


def test_an_over_long_line_in_a_file_is_malformed_and_skipped(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_bytes(lines(2) + b"y" * (3 * MAX_LINE) + b"\n" + lines(2) + b"\xff\xfe bad utf-8\n")
    memory = Memory()
    ingest(memory, log)
    assert memory.total() == 4 and memory.malformed == 2
    assert memory.checkpoints[str(log)].offset == log.stat().st_size


def test_stdin_pipe_and_file_object(tmp_path: Path) -> None:
    read_end, write_end = os.pipe()
    data = lines(2500)
    writer = threading.Thread(target=lambda: (os.write(write_end, data), os.close(write_end)))
    writer.start()
    memory = Memory()
    report = run([StreamSource(read_end)], Fold("nginx"), memory.commit, poll=0.01)
    writer.join()
    os.close(read_end)
    assert memory.total() == 2500 and memory.checkpoints == {} and report.sources[0].lines == 2500
    memory = Memory()
    run([StreamSource(io.BytesIO(lines(3) + b"last line without newline"))], Fold("nginx"), memory.commit)
    assert memory.total() == 3 and memory.malformed == 1


def test_following_is_bounded_by_seconds(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_bytes(lines(10))
    memory = Memory()
    source = FileSource(log)
    started = time.monotonic()
    report = run([source], Fold("nginx"), memory.commit, follow=True, seconds=0.3, poll=0.01)
    source.close()
    assert 0.3 <= time.monotonic() - started < 5 and report.stopped and memory.total() == 10


def test_a_missing_file_is_an_oserror(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        FileSource(tmp_path / "nope.log")


def test_a_fifo_is_refused_as_a_file(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(OSError, match="not a regular file"):
        FileSource(fifo)
