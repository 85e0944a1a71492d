"""Concurrent writers on one SQLite file (WAL + busy timeout + BEGIN IMMEDIATE): every write lands,
none fails, and the file stays consistent."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import sqlite3
import threading
from pathlib import Path

import pytest

from tests.unit.storage.builders import NOW, scan_result
from tlsward.storage import open_store

PER_WRITER = 200


def write_observations(url: str, writer: int) -> None:
    """One writer with its own store: PER_WRITER scans, each its own transaction."""
    with open_store(url) as store:
        for n in range(PER_WRITER):
            store.record_scan(scan_result(f"w{writer}-{n % 7}.test:443", at=NOW + dt.timedelta(seconds=n)),
                              probe_id=f"writer-{writer}-{n}")


def check(url: str, path: Path) -> None:
    with open_store(url) as store:
        assert store.count_observations() == 2 * PER_WRITER
        assert len(store.list_endpoints()) == 14
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_two_threads_write_200_observations_each(tmp_path: Path) -> None:
    path = tmp_path / "inventory.db"
    url = f"sqlite:///{path}"
    errors: list[BaseException] = []

    def run(writer: int) -> None:
        try:
            write_observations(url, writer)
        except BaseException as exc:   # surfaced below, on the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(w,)) for w in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    check(url, path)


@pytest.mark.timeout(180)
def test_two_processes_write_200_observations_each_to_a_new_file(tmp_path: Path) -> None:
    """Both processes also race to create and migrate the file."""
    path = tmp_path / "inventory.db"
    url = f"sqlite:///{path}"
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=write_observations, args=(url, w)) for w in (1, 2)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=150)
    assert [p.exitcode for p in processes] == [0, 0]
    check(url, path)
