"""``inventory import``/``export`` against both backends: CSV and YAML rows, bad rows located by FILE:LINE,
dry runs and atomic batches that write nothing, and an export → import round trip."""

from __future__ import annotations

from pathlib import Path

import pytest

from tlsward.cli.inventory_io import import_file, parse_text, render
from tlsward.model.errors import UsageError
from tlsward.model.inventory import EndpointRecord
from tlsward.storage import Store, open_store

CSV = """target,owner,team,environment,tags,probe_interval,enabled
a.test:443,ana,web,prod,pci;edge,300,true
b.test,bo,db,,,,no
bad..host,x,,,,,
c.test:99999,x,,,,,
d.test:443,x,,,,soon,
e.test:443,x,,,,,maybe
f.test:443,x,,,,,,extra
"""

YAML = """- target: a.test:443
  owner: ana
  tags: [pci, edge]
  probe_interval: 300
- target: b.test
  enabled: false
- [not, a, mapping]
- target: c.test
  colour: blue
- target: d.test
  tags: {pci: true}
- target: e.test
  owner: 42
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def targets(store: Store) -> list[str]:
    return [e.target for e in store.list_endpoints()]


def test_csv_imports_good_rows_and_locates_each_bad_one(store: Store, tmp_path: Path) -> None:
    path = write(tmp_path, "in.csv", CSV)
    outcome = import_file(store, path, "csv")
    assert outcome.written and outcome.rows == 7
    assert [(c.target, c.kind) for c in outcome.changes] == [("a.test:443", "added"), ("b.test:443", "added")]
    lines = [message.split(": ", 1)[0] for message in outcome.rejected]
    assert lines == [f"{path}:{n}" for n in (4, 5, 6, 7, 8)]
    assert "99999" in outcome.rejected[1] and "probe_interval" in outcome.rejected[2]
    assert "enabled" in outcome.rejected[3] and "fields" in outcome.rejected[4]
    assert targets(store) == ["a.test:443", "b.test:443"]
    a = store.get_endpoint("a.test:443")
    assert a is not None and (a.owner, a.team, a.environment, a.tags, a.probe_interval_s, a.enabled) == \
        ("ana", "web", "prod", ("pci", "edge"), 300, True)
    b = store.get_endpoint("b.test:443")
    assert b is not None and b.enabled is False and b.tags == () and b.environment is None


def test_csv_with_an_unknown_column_is_a_usage_error(store: Store, tmp_path: Path) -> None:
    path = write(tmp_path, "in.csv", "target,colour\na.test,blue\n")
    with pytest.raises(UsageError, match=r"in\.csv:1: unknown column"):
        import_file(store, path, "csv")
    assert targets(store) == []


def test_yaml_imports_good_items_and_names_each_bad_one(store: Store, tmp_path: Path) -> None:
    path = write(tmp_path, "in.yaml", YAML)
    outcome = import_file(store, path, "yaml")
    assert [c.target for c in outcome.changes] == ["a.test:443", "b.test:443"]
    assert [m.split(": ", 2)[:2] for m in outcome.rejected] == [
        [f"{path}:7", "item 2"], [f"{path}:8", "item 3"], [f"{path}:10", "item 4"], [f"{path}:12", "item 5"]]
    assert "mapping" in outcome.rejected[0] and "colour" in outcome.rejected[1]
    assert "tags" in outcome.rejected[2] and "owner" in outcome.rejected[3]
    a = store.get_endpoint("a.test:443")
    assert a is not None and a.tags == ("pci", "edge") and a.probe_interval_s == 300
    b = store.get_endpoint("b.test:443")
    assert b is not None and b.enabled is False


def test_yaml_that_is_not_a_list_is_a_usage_error(store: Store, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="list of mappings"):
        import_file(store, write(tmp_path, "in.yaml", "target: a.test\n"), "yaml")


def test_second_import_reports_updated_fields_and_unchanged(store: Store, tmp_path: Path) -> None:
    import_file(store, write(tmp_path, "one.csv", "target,owner,tags\na.test,ana,pci\nb.test,bo,\n"), "csv")
    outcome = import_file(store, write(tmp_path, "two.csv", "target,owner,tags\na.test,ana,pci;edge\n"
                                       "b.test,bo,\nc.test,cy,\n"), "csv")
    assert [(c.target, c.kind, c.fields) for c in outcome.changes] == [
        ("a.test:443", "updated", ("tags",)), ("b.test:443", "unchanged", ()), ("c.test:443", "added", ())]


def test_dry_run_writes_nothing(store: Store, tmp_path: Path) -> None:
    store_path = write(tmp_path, "in.csv", "target,owner\na.test,ana\n")
    import_file(store, store_path, "csv")
    outcome = import_file(store, write(tmp_path, "next.csv", "target,owner\na.test,bo\nb.test,bo\n"), "csv",
                          dry_run=True)
    assert not outcome.written
    assert [(c.kind, c.fields) for c in outcome.changes] == [("updated", ("owner",)), ("added", ())]
    assert targets(store) == ["a.test:443"]
    a = store.get_endpoint("a.test:443")
    assert a is not None and a.owner == "ana"


def test_atomic_writes_nothing_when_one_row_is_bad(store: Store, tmp_path: Path) -> None:
    path = write(tmp_path, "in.csv", "target,owner\na.test,ana\nb.test:0,bo\n")
    outcome = import_file(store, path, "csv", atomic=True)
    assert not outcome.written and len(outcome.rejected) == 1 and outcome.rejected[0].startswith(f"{path}:3: ")
    assert targets(store) == []
    assert import_file(store, write(tmp_path, "ok.csv", "target\na.test\n"), "csv", atomic=True).written
    assert targets(store) == ["a.test:443"]


def test_repeated_target_is_rejected(store: Store, tmp_path: Path) -> None:
    outcome = import_file(store, write(tmp_path, "in.csv", "target,owner\na.test,ana\na.test:443,bo\n"), "csv")
    assert len(outcome.rejected) == 1 and "repeats" in outcome.rejected[0]
    a = store.get_endpoint("a.test:443")
    assert a is not None and a.owner == "ana"


@pytest.mark.parametrize("fmt", ["csv", "yaml", "json"])
def test_export_then_import_into_an_empty_database_round_trips(store: Store, tmp_path: Path, empty_db_url: str,
                                                               fmt: str) -> None:
    import_file(store, write(tmp_path, "in.yaml", YAML + "- target: https://f.test:8443\n  team: web, ops\n"
                             "  environment: 'prod \"eu\"'\n  tags: [x]\n"), "yaml")
    exported = render(store.list_endpoints(), fmt)
    path = write(tmp_path, f"out.{fmt}", exported)
    with open_store(empty_db_url) as empty:
        outcome = import_file(empty, path, "yaml" if fmt == "json" else fmt)   # JSON is YAML
        assert outcome.rejected == [] and {c.kind for c in outcome.changes} == {"added"}
        copied = [fields(e) for e in empty.list_endpoints()]
    assert copied == [fields(e) for e in store.list_endpoints()] and len(copied) == 3


def fields(e: EndpointRecord) -> tuple[object, ...]:
    return (e.target, e.host, e.port, e.scheme, e.sni, e.owner, e.team, e.environment, e.tags, e.probe_interval_s,
            e.enabled)


def test_parse_text_skips_blank_lines_and_empty_files() -> None:
    assert parse_text("", "csv", "x.csv").records == []
    assert parse_text("", "yaml", "x.yaml").records == []
    parsed = parse_text("target\n\na.test\n", "csv", "x.csv")
    assert [r.target for r in parsed.records] == ["a.test:443"] and parsed.rejected == []
