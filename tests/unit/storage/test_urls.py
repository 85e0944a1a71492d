"""Which database a URL means, and one-line errors for URLs that cannot work."""

from __future__ import annotations

from pathlib import Path

import pytest

from tlsward.model.errors import StorageError, UsageError
from tlsward.storage import default_url, open_store, parse_url


def test_default_is_an_sqlite_file_under_the_data_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("TLSWARD_DB", raising=False)
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_url() == f"sqlite:///{tmp_path}/.local/share/tlsward/inventory.db"
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert default_url() == f"sqlite:///{tmp_path}/data/tlsward/inventory.db"
    monkeypatch.setenv("TLSWARD_DB", "postgresql+psycopg://u@db/inv")
    assert default_url() == "postgresql+psycopg://u@db/inv"


def test_a_bare_path_is_an_sqlite_file(tmp_path: Path) -> None:
    url = parse_url(str(tmp_path / "x.db"))
    assert url.get_backend_name() == "sqlite" and url.database == str(tmp_path / "x.db")
    with open_store(str(tmp_path / "deeper" / "x.db")):
        assert (tmp_path / "deeper" / "x.db").is_file()


def test_postgresql_urls_use_psycopg() -> None:
    assert parse_url("postgresql://u@h/d").drivername == "postgresql+psycopg"


@pytest.mark.parametrize("url", ["sqlite:/nope:://", "mysql://u@h/d", "bogus+thing://x"])
def test_bad_urls_are_usage_errors(url: str) -> None:
    with pytest.raises(UsageError) as caught:
        open_store(url)
    assert "\n" not in str(caught.value)


def test_unreachable_database_is_a_one_line_storage_error_without_the_password() -> None:
    with pytest.raises(StorageError) as caught:
        open_store("postgresql+psycopg://postgres:s3cret@127.0.0.1:1/inventory?connect_timeout=3")
    message = str(caught.value)
    assert "\n" not in message and "s3cret" not in message and "127.0.0.1" in message


def test_unwritable_sqlite_location_is_a_storage_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StorageError):
        open_store(f"sqlite:///{blocker}/sub/inventory.db")
