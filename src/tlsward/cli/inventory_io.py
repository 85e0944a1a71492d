"""Inventory files: parse CSV/YAML rows into endpoint records (each bad row one located message) and render
endpoints back to CSV, YAML or JSON with the same columns, so that export → import round-trips."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tlsward.model.errors import UsageError
from tlsward.model.inventory import EndpointChange, EndpointRecord, clean_tags
from tlsward.model.target import Target

if TYPE_CHECKING:
    from tlsward.storage import Store

COLUMNS = ("target", "sni", "connect", "owner", "team", "environment", "tags", "probe_interval", "enabled")
# ``zone`` (distributed probing, docs/distributed.md) is read when given and written only for endpoints outside the
# default zone, so files and exports of a single-machine inventory keep the columns above.
KNOWN_COLUMNS = (*COLUMNS, "zone")
FORMATS = ("csv", "yaml")
TRUE = frozenset({"true", "yes", "1", "on"})
FALSE = frozenset({"false", "no", "0", "off"})


@dataclass
class Parsed:
    """Good records, and one message per rejected row (``FILE:LINE: reason``)."""

    records: list[EndpointRecord] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    rows: int = 0


@dataclass(frozen=True)
class ImportOutcome:
    changes: list[EndpointChange]
    rejected: list[str]
    rows: int
    written: bool


def format_for(path: Path, given: str | None) -> str:
    if given is not None:
        if given not in FORMATS:
            raise UsageError(f"--format {given!r}: expected one of {', '.join(FORMATS)}")
        return given
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        return "yaml"
    if suffix == ".csv":
        return "csv"
    raise UsageError(f"{path}: cannot tell the format from the name; pass --format csv|yaml")


def parse_file(path: Path, fmt: str) -> Parsed:
    """Raises UsageError (naming the file) when it cannot be read or has no usable structure at all."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read: {exc}") from None
    return parse_text(text, fmt, str(path))


def parse_text(text: str, fmt: str, name: str) -> Parsed:
    parsed = Parsed()
    seen: dict[str, str] = {}
    for where, row in (_csv_rows(text, name) if fmt == "csv" else _yaml_rows(text, name)):
        parsed.rows += 1
        try:
            if isinstance(row, str):
                raise UsageError(row)
            record = _record(row)
            if record.target in seen:
                raise UsageError(f"target {record.target!r} repeats {seen[record.target]}")
        except UsageError as exc:
            parsed.rejected.append(f"{where}: {exc}")
            continue
        seen[record.target] = where
        parsed.records.append(record)
    return parsed


def _csv_rows(text: str, name: str) -> list[tuple[str, Mapping[str, Any] | str]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if header is None:
            return []
        header = [column.strip().lower() for column in header]
        unknown = [column for column in header if column not in KNOWN_COLUMNS]
        if unknown:
            raise UsageError(f"{name}:{reader.line_num}: unknown column(s) {', '.join(map(repr, unknown))} "
                             f"(known: {', '.join(KNOWN_COLUMNS)})")
        if "target" not in header or len(set(header)) != len(header):
            raise UsageError(f"{name}:{reader.line_num}: the header needs a 'target' column and no repeats")
        rows: list[tuple[str, Mapping[str, Any] | str]] = []
        for values in reader:
            where = f"{name}:{reader.line_num}"
            if not any(value.strip() for value in values):
                continue
            if len(values) != len(header):
                rows.append((where, f"{len(values)} fields, the header has {len(header)}"))
                continue
            rows.append((where, dict(zip(header, values, strict=True))))
        return rows
    except csv.Error as exc:
        raise UsageError(f"{name}:{reader.line_num}: not CSV: {exc}") from None


def _yaml_rows(text: str, name: str) -> list[tuple[str, Mapping[str, Any] | str]]:
    import yaml  # lazily: every tlsward command imports this module

    try:
        data = yaml.safe_load(text)
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise UsageError(f"{name}{line}: not YAML: {getattr(exc, 'problem', None) or exc}") from None
    if data is None:
        return []
    if not isinstance(data, list) or node is None:
        raise UsageError(f"{name}: expected a list of mappings (one per endpoint), got {type(data).__name__}")
    rows: list[tuple[str, Mapping[str, Any] | str]] = []
    for index, item in enumerate(data):
        where = f"{name}:{node.value[index].start_mark.line + 1}: item {index}"
        if not isinstance(item, dict):
            rows.append((where, f"expected a mapping, got {type(item).__name__}"))
            continue
        unknown = [str(key) for key in item if key not in KNOWN_COLUMNS]
        if unknown:
            rows.append((where, f"unknown key(s) {', '.join(map(repr, unknown))} "
                                f"(known: {', '.join(KNOWN_COLUMNS)})"))
            continue
        rows.append((where, item))
    return rows


def _text(row: Mapping[str, Any], key: str) -> str | None:
    value = row.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise UsageError(f"{key}: expected text, got {type(value).__name__} {value!r}")
    return value.strip() or None


def _record(row: Mapping[str, Any]) -> EndpointRecord:
    raw_target = _text(row, "target")
    if raw_target is None:
        raise UsageError("no target")
    target = Target.parse(raw_target, sni=_text(row, "sni"), connect=_text(row, "connect"))
    tags_value = row.get("tags")
    if tags_value is None or isinstance(tags_value, str):
        tags = clean_tags((tags_value or "").split(";"))
    elif isinstance(tags_value, list) and all(isinstance(tag, str) for tag in tags_value):
        tags = clean_tags(tags_value)   # no ';' inside a tag: CSV export separates tags with it
    else:
        raise UsageError(f"tags: expected a list of text or 'a;b', got {tags_value!r}")
    interval = row.get("probe_interval")
    if isinstance(interval, str):
        interval = interval.strip() or None
        if interval is not None:
            if not interval.isdigit():
                raise UsageError(f"probe_interval {interval!r} is not a whole number of seconds")
            interval = int(interval)
    if interval is not None and (isinstance(interval, bool) or not isinstance(interval, int) or interval < 1):
        raise UsageError(f"probe_interval {interval!r} must be a whole number of seconds >= 1")
    enabled = row.get("enabled")
    if isinstance(enabled, str):
        word = enabled.strip().lower()
        if word and word not in TRUE | FALSE:
            raise UsageError(f"enabled {enabled!r}: expected true or false")
        enabled = word in TRUE if word else None
    if enabled is not None and not isinstance(enabled, bool):
        raise UsageError(f"enabled {enabled!r}: expected true or false")
    zone = _text(row, "zone")
    if zone is not None:
        from tlsward.model.distributed import check_zone

        check_zone(zone)
    return EndpointRecord(target=str(target), host=target.host, port=target.port, scheme=target.scheme,
                          sni=target.sni, connect=target.connect, owner=_text(row, "owner"), team=_text(row, "team"),
                          environment=_text(row, "environment"), tags=tags,
                          probe_interval_s=interval, enabled=True if enabled is None else enabled, zone=zone)


def import_file(store: Store, path: Path, fmt: str, *, dry_run: bool = False, atomic: bool = False) -> ImportOutcome:
    """Parse ``path`` and upsert its good rows in one transaction; with ``atomic`` nothing is written when
    any row was rejected; with ``dry_run`` nothing is written at all."""
    parsed = parse_file(path, fmt)
    write = not dry_run and not (atomic and parsed.rejected)
    changes = store.import_endpoints(parsed.records, dry_run=not write)
    return ImportOutcome(changes=changes, rejected=parsed.rejected, rows=parsed.rows, written=write)


def _row(record: EndpointRecord) -> dict[str, Any]:
    return {"target": record.target, "sni": record.sni, "connect": record.connect, "owner": record.owner,
            "team": record.team, "environment": record.environment, "tags": list(record.tags),
            "probe_interval": record.probe_interval_s, "enabled": record.enabled,
            **({"zone": record.zone} if record.zone not in (None, "default") else {})}


def render(records: Sequence[EndpointRecord], fmt: str) -> str:
    rows = [_row(record) for record in records]
    if fmt == "json":
        return json.dumps(rows, indent=2) + "\n"
    if fmt == "yaml":
        import yaml

        return yaml.safe_dump(rows, sort_keys=False, allow_unicode=True) if rows else "[]\n"
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\n")
    zoned = any("zone" in row for row in rows)
    writer.writerow(KNOWN_COLUMNS if zoned else COLUMNS)
    for row in rows:
        writer.writerow([row["target"], row["sni"] or "", row["connect"] or "", row["owner"] or "",
                         row["team"] or "", row["environment"] or "",
                         ";".join(row["tags"]), "" if row["probe_interval"] is None else row["probe_interval"],
                         "true" if row["enabled"] else "false", *([row.get("zone", "default")] if zoned else [])])
    return buffer.getvalue()
