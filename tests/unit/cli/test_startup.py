"""Start-up: each command builds and imports only itself; a scan loads rich, httpx and pydantic only when used."""

from __future__ import annotations

import subprocess
import sys

import pytest
from typer.main import get_command
from typer.testing import CliRunner

from tlsward.cli.main import SUBCOMMANDS, build_app, full_app


def test_the_whole_tree_has_exactly_the_listed_sub_commands() -> None:
    assert list(get_command(full_app()).commands) == list(SUBCOMMANDS)   # type: ignore[attr-defined]


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_a_sub_command_alone_is_the_one_of_the_whole_tree(name: str) -> None:
    alone = build_app(name)
    assert list(get_command(alone).commands) == [name]   # type: ignore[attr-defined]
    runner = CliRunner()
    for args in ([name, "--help"], [name, "--no-such-option"]):
        fast, whole = runner.invoke(alone, args), runner.invoke(full_app(), args)
        assert (fast.exit_code, fast.output) == (whole.exit_code, whole.output), args


def test_a_scan_imports_no_rich_httpx_or_pydantic_up_front() -> None:
    code = ("import sys, tlsward.cli.main, tlsward.cli.scan, tlsward.engine, tlsward.report; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'rich', 'httpx', 'pydantic', 'sqlalchemy'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"
