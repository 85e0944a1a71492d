"""``scan --save``: a storage failure is one stderr line per result, counted, and never stops the scan."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.storage.builders import scan_result
from tlsward.cli.scan import Saver
from tlsward.model.errors import StorageError, UsageError
from tlsward.model.scan import ScanResult
from tlsward.storage import Store


def test_saver_records_results(tmp_path: Path) -> None:
    saver = Saver(f"sqlite:///{tmp_path / 'inv.db'}")
    saver.save(scan_result("a.test:443"))
    assert saver.store is not None and saver.store.count_observations() == 1 and saver.failed == 0
    saver.close()


def test_a_failed_write_is_one_line_and_counted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    def broken(self: Store, result: ScanResult, *, probe_id: str | None = None) -> None:
        raise StorageError("sqlite:///x: disk I/O error")

    saver = Saver(f"sqlite:///{tmp_path / 'inv.db'}")
    monkeypatch.setattr(Store, "record_scan", broken)
    saver.save(scan_result("a.test:443"))
    saver.save(scan_result("b.test:443"))
    saver.close()
    lines = capsys.readouterr().err.strip().splitlines()
    assert saver.failed == 2 and len(lines) == 2
    assert "a.test:443" in lines[0] and "disk I/O error" in lines[0]


def test_an_unreachable_database_is_one_line_and_the_saver_does_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    saver = Saver("postgresql+psycopg://postgres@127.0.0.1:1/x?connect_timeout=3")
    saver.save(scan_result("a.test:443"))
    saver.close()
    assert saver.failed == 1 and saver.store is None
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_a_malformed_url_is_a_usage_error() -> None:
    with pytest.raises(UsageError):
        Saver("mysql://u@h/d")
