"""The ``tlsward.truststores/1`` document: a host's stores round-trip through it exactly, every export validates
against the committed JSON Schema, and reading is strict: whatever else arrives (hand-made, truncated, hostile or
random) is a one-line UsageError naming the source and the field, never another exception and never a
half-read snapshot."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator, FormatChecker

from tests.unit.truststore_builders import COMMON, EXPIRED, LEGACY, T0, fleet, host, root, store
from tlsward.model.errors import UsageError
from tlsward.model.truststores import SCHEMA, HostStores
from tlsward.report import load_schema
from tlsward.report.truststores_json import SCHEMA_FILE, host_stores_from_json, host_stores_to_json

SOURCE = "web-01.truststores.json"


@pytest.fixture(scope="module")
def validator() -> Draft202012Validator:
    schema = load_schema(SCHEMA_FILE)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=FormatChecker())


def schema_errors(validator: Draft202012Validator, data: object) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in validator.iter_errors(data)]


def document() -> dict[str, Any]:
    """A valid document, through JSON text (what a reader actually gets)."""
    decoded: dict[str, Any] = json.loads(json.dumps(host_stores_to_json(fleet()[0])))
    return decoded


@pytest.mark.parametrize("snapshot", fleet(), ids=lambda h: h.host)
def test_every_host_round_trips_and_validates(snapshot: HostStores, validator: Draft202012Validator) -> None:
    data = host_stores_to_json(snapshot)
    assert not schema_errors(validator, data)
    assert host_stores_from_json(json.loads(json.dumps(data)), SOURCE) == snapshot


def test_a_root_in_many_stores_is_written_once() -> None:
    data = host_stores_to_json(fleet()[0])
    assert data["schema"] == SCHEMA and data["collected_at"] == "2026-05-01T12:00:00Z"
    assert sorted(data["roots"]) == sorted({r.sha256 for r in (*COMMON, LEGACY, EXPIRED)})
    assert data["stores"][2]["roots"] == [r.sha256 for r in (*COMMON, LEGACY, EXPIRED)], "the store's own order"
    assert data["roots"][EXPIRED.sha256] == {"spki_sha256": EXPIRED.spki_sha256, "subject": EXPIRED.subject,
                                             "not_after": "2026-04-01T12:00:00Z", "organization": "Expired Root Org"}


def test_times_keep_their_instant_and_naive_times_are_utc(validator: Draft202012Validator) -> None:
    precise = T0.astimezone(dt.timezone(dt.timedelta(hours=2))) + dt.timedelta(microseconds=250)
    snapshot = host("h", store("s", root("R", expires=dt.datetime(2040, 1, 1)), modified=None), at=precise)
    data = host_stores_to_json(snapshot)
    assert data["collected_at"] == "2026-05-01T12:00:00.000250Z" and data["stores"][0]["modified"] is None
    assert not schema_errors(validator, data)
    back = host_stores_from_json(data, SOURCE)
    assert back.collected_at == precise and back.collected_at.tzinfo is dt.UTC
    assert back.stores[0].roots[0].not_after == dt.datetime(2040, 1, 1, tzinfo=dt.UTC)


def test_text_that_could_not_be_stored_is_escaped_on_export(validator: Draft202012Validator) -> None:
    """A file name with an undecodable byte (a lone surrogate in Python) or a control character still exports to a
    document that imports."""
    odd = dataclasses.replace(store("s", COMMON[0]), path="/srv/caf\udce9/cacert.pem", label="bundle\x07")
    data = json.loads(json.dumps(host_stores_to_json(host("h", odd))))
    assert data["stores"][0]["path"] == "/srv/caf\\udce9/cacert.pem" and data["stores"][0]["label"] == "bundle\\x07"
    assert not schema_errors(validator, data)
    assert host_stores_from_json(data, SOURCE).stores[0].path == "/srv/caf\\udce9/cacert.pem"


def test_optional_fields_may_be_left_out() -> None:
    sha = COMMON[0].sha256
    data = {"schema": SCHEMA, "host": "h", "collected_at": "2026-05-01T12:00:00+00:00",
            "roots": {sha: {"spki_sha256": COMMON[0].spki_sha256, "subject": "CN=x",
                            "not_after": "2030-01-01T00:00:00Z"}},
            "stores": [{"id": "s", "kind": "file", "path": "/s", "label": "a bundle", "roots": [sha]},
                       {"id": "empty", "kind": "nss", "path": "/nss", "label": "NSS"}]}
    snapshot = host_stores_from_json(data, SOURCE)
    assert snapshot.searched == () and snapshot.stores[0].roots[0].organization == ""
    assert snapshot.stores[1].roots == () and snapshot.stores[1].modified is None and snapshot.stores[1].problem == ""


def _set(path: tuple[Any, ...], value: Any) -> Any:
    def change(data: dict[str, Any]) -> None:
        target: Any = data
        for step in path[:-1]:
            target = target[step if not callable(step) else step(target)]
        last = path[-1]
        target[last if not callable(last) else last(target)] = value
    return change


def _drop(path: tuple[Any, ...]) -> Any:
    def change(data: dict[str, Any]) -> None:
        target: Any = data
        for step in path[:-1]:
            target = target[step]
        del target[path[-1]]
    return change


def first_root(roots: dict[str, Any]) -> str:
    return next(iter(roots))


SHA = "ab" * 32
HOSTILE: list[tuple[str, Any, str, bool]] = [
    # (case id, change to a valid document, what the message names, whether the JSON Schema also refuses it)
    ("wrong schema", _set(("schema",), "tlsward.truststores/2"), "schema: 'tlsward.truststores/2' is not", True),
    ("other document", _set(("schema",), "tlsward.slo/1"), "not a tlsward trust-store document", True),
    ("no schema", _drop(("schema",)), "schema: missing", True),
    ("unknown field", _set(("extra",), 1), "unknown field 'extra'", True),
    ("no host", _drop(("host",)), "missing field 'host'", True),
    ("empty host", _set(("host",), " "), "host: must not be empty", True),
    ("host padded", _set(("host",), "a.example "), "host: 'a.example ' has leading", True),
    ("host too long", _set(("host",), "h" * 256), "host: 256 characters; at most 255", True),
    ("host NUL", _set(("host",), "a\x00b"), "host: control character U+0000", True),
    ("host newline", _set(("host",), "a\nb"), "host: control character U+000A", True),
    ("host surrogate", _set(("host",), "a\ud800"), "host: lone surrogate U+D800", False),
    ("host number", _set(("host",), 7), "host: expected a string, got a number", True),
    ("naive time", _set(("collected_at",), "2026-05-01T12:00:00"), "collected_at: '2026-05-01T12:00:00' is not",
     True),
    ("time month 13", _set(("collected_at",), "2026-13-01T12:00:00Z"),
     "collected_at: '2026-13-01T12:00:00Z' is not a valid", False),
    ("time overflow", _set(("collected_at",), "9999-12-31T23:59:59-01:00"), "collected_at:", False),
    ("time year 0", _set(("collected_at",), "0000-01-01T00:00:00Z"), "collected_at:", False),
    ("time as number", _set(("collected_at",), 1767225600), "collected_at: 1767225600 is not a time", True),
    ("stores object", _set(("stores",), {}), "stores: expected an array, got an object", True),
    ("store not object", _set(("stores", 0), "s"), "stores[0]: expected an object, got a string", True),
    ("store no id", _drop(("stores", 1, "id")), "stores[1]: missing field 'id'", True),
    ("store bad kind", _set(("stores", 0, "kind"), "windows"), "stores[0].kind: 'windows' is not a store kind", True),
    ("store kind list", _set(("stores", 0, "kind"), ["java"]), "stores[0].kind: ['java'] is not a store kind", True),
    ("store extra field", _set(("stores", 2, "owner"), "x"), "stores[2]: unknown field 'owner'", True),
    ("duplicate store id", _set(("stores", 1, "id"), "etc/ssl/certs/ca-certificates.crt"),
     "stores[1].id: 'etc/ssl/certs/ca-certificates.crt' is also the id of stores[0]", False),
    ("dangling root", _set(("stores", 0, "roots", 0), SHA), f"stores[0].roots[0]: {SHA} is not described", False),
    ("upper-case root", _set(("stores", 0, "roots", 0), SHA.upper()), "stores[0].roots[0]: 'ABAB", True),
    ("short root", _set(("stores", 0, "roots", 0), "abc"), "stores[0].roots[0]: 'abc' is not a SHA-256", True),
    ("root list of null", _set(("stores", 0, "roots"), None), "stores[0].roots: expected an array, got null", True),
    ("modified bool", _set(("stores", 0, "modified"), True), "stores[0].modified: True is not a time", True),
    ("notes string", _set(("stores", 0, "notes"), "n"), "stores[0].notes: expected an array, got a string", True),
    ("note tab", _set(("stores", 2, "notes"), ["a\tb"]), "stores[2].notes[0]: control character U+0009", True),
    ("too many notes", _set(("stores", 0, "notes"), ["n"] * 101), "stores[0].notes: 101 items; at most 100", True),
    ("huge path", _set(("stores", 0, "path"), "/" * 4097), "stores[0].path: 4097 characters; at most 4096", True),
    ("roots list", _set(("roots",), []), "roots: expected an object keyed by SHA-256, got an array", True),
    ("roots bad key", _set(("roots", "not-a-sha"), {}), "roots key 'not-a-sha': 'not-a-sha' is not a SHA-256", True),
    ("root no subject", _drop(("roots", first_root(document()["roots"]), "subject")), "missing field 'subject'", True),
    ("root bad spki", _set(("roots", first_root(document()["roots"]), "spki_sha256"), ""),
     ".spki_sha256: '' is not a SHA-256", True),
    ("root subject DEL", _set(("roots", first_root(document()["roots"]), "subject"), "CN=\x7f"),
     ".subject: control character U+007F", True),
    ("searched null item", _set(("searched",), [None]), "searched[0]: expected a string, got null", True),
]


@pytest.mark.parametrize(("change", "named", "schema_refuses"), [case[1:] for case in HOSTILE],
                         ids=[case[0] for case in HOSTILE])
def test_a_malformed_document_is_one_line_naming_the_source_and_field(
        change: Any, named: str, schema_refuses: bool, validator: Draft202012Validator) -> None:
    data = document()
    change(data)
    with pytest.raises(UsageError) as caught:
        host_stores_from_json(data, SOURCE)
    message = str(caught.value)
    assert message.startswith(f"{SOURCE}: ") and named in message, message
    assert "\n" not in message and len(message) < 400, message
    if schema_refuses:
        assert schema_errors(validator, data), "the JSON Schema should refuse this too"


@pytest.mark.parametrize("data", [None, [], "tlsward.truststores/1", 42, True, b"{}"], ids=repr)
def test_a_document_that_is_not_an_object(data: object) -> None:
    with pytest.raises(UsageError, match=rf"^{SOURCE}: expected a JSON object \(a tlsward.truststores/1 document\)"):
        host_stores_from_json(data, SOURCE)


def test_sizes_are_bounded() -> None:
    data = document()
    data["stores"] = [copy.deepcopy(data["stores"][0]) | {"id": f"s{i}"} for i in range(2001)]
    with pytest.raises(UsageError, match="stores: 2001 items; at most 2000"):
        host_stores_from_json(data, SOURCE)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=80)
    | st.sampled_from(["", SCHEMA, "java", "2026-05-01T12:00:00Z", SHA, COMMON[0].sha256]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value[:3]):
            found += _paths(item, (*prefix, index))
    return found


PATHS = _paths(document())


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(edits=st.lists(st.tuples(st.sampled_from(PATHS), st.sampled_from(["set", "drop", "add"]), json_values),
                      min_size=1, max_size=3))
def test_random_damage_is_refused_cleanly_or_read_as_valid(edits: list[tuple[tuple[Any, ...], str, Any]]) -> None:
    """Fuzz: a valid document with random parts replaced, removed or added is either read (and then it is a
    valid document: the JSON Schema accepts it and it exports back to itself) or refused with a UsageError."""
    validator = Draft202012Validator(load_schema(SCHEMA_FILE), format_checker=FormatChecker())
    data: Any = document()
    for path, action, value in edits:
        if not path:
            data = value
            continue
        target = data
        try:
            for step in path[:-1]:
                target = target[step]
            if action == "set":
                target[path[-1]] = value
            elif action == "drop":
                del target[path[-1]]
            elif isinstance(target, dict):
                target["x-added"] = value
            elif isinstance(target, list):
                target.append(value)
        except (KeyError, IndexError, TypeError):
            continue    # an earlier edit removed the way there
    try:
        snapshot = host_stores_from_json(data, SOURCE)
    except UsageError as exc:
        assert str(exc).startswith(f"{SOURCE}: ") and "\n" not in str(exc)
        return
    assert not schema_errors(validator, data)
    assert host_stores_from_json(host_stores_to_json(snapshot), SOURCE) == snapshot
