"""``scan --all-stores`` and ``truststore plan`` against real clients on the built-in lab.

The lab's root is added to some stores only (a PEM bundle for curl and Python, a Java keystore made by keytool, an
NSS database made by certutil, Node's NODE_EXTRA_CA_CERTS), next to this host's real stores (the Debian bundle,
the JRE's cacerts, Node's compiled-in list) and an old certifi in a throwaway virtualenv. For every store, what
tlsward predicts must be what the client reading that store does: curl, Python ``ssl``, Java ``SSLSocket``,
``node https.get`` and NSS's ``tstclnt``.

The rotation drill moves from the lab root ("old") to the lab's second root ("new", the issuer of the
``untrusted-root`` case): every break the plan predicts at each step happens with the real clients, nothing it
calls safe breaks, and the fix command it prints for a broken store makes that store's client connect.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import stores
from tests.integration import truststore_clients as clients
from tlsward.lab import LabState

pytestmark = pytest.mark.integration

TLSWARD = Path(sys.executable).with_name("tlsward")
TIMEOUT = 180.0
SYSTEM_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
OLD_CASE, NEW_CASE = "healthy-rsa", "untrusted-root"


def tlsward(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("TLSWARD_") and k != "NODE_EXTRA_CA_CERTS"}
    return subprocess.run([str(TLSWARD), *args], capture_output=True, text=True, timeout=TIMEOUT, check=False,
                          stdin=subprocess.DEVNULL, env={**base, **(env or {})})


@dataclass
class Store:
    """One store of the drill and the real client that reads it; ``path`` is what tlsward is given."""

    name: str
    path: Path
    client: Callable[[str, int], clients.Outcome]


@dataclass
class Setup:
    work: Path
    old_pem: Path
    new_pem: Path
    venv: Path
    stores: list[Store]


def _bundle(path: Path, *pems: Path, with_system: bool = False) -> Path:
    parts = [SYSTEM_BUNDLE.read_text()] if with_system else []
    parts += [p.read_text() for p in pems]
    path.write_text("".join(parts))
    return path


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("truststores")


@pytest.fixture(scope="module")
def roots(lab: LabState, work: Path) -> tuple[Path, Path]:
    old = work / "old-root.pem"
    shutil.copyfile(Path(lab.state_dir) / "pki" / "root.pem", old)
    new = work / "new-root.pem"
    shutil.copyfile(lab.untrusted_ca_file, new)
    return old, new


@pytest.fixture(scope="module")
def venv(work: Path) -> Path:
    return stores.certifi_venv(work / "venvs")


def _pem_store(name: str, path: Path, work: Path) -> Store:
    return Store(name, path, lambda sni, port: clients.curl(sni, port, cafile=path))


def _java_store(name: str, path: Path, work: Path) -> Store:
    return Store(name, path, lambda sni, port: clients.java(sni, port, path, work))


def _nss_store(name: str, path: Path) -> Store:
    return Store(name, path, lambda sni, port: clients.nss(sni, port, path))


def endpoint(lab: LabState, case: str) -> tuple[str, int]:
    info = lab.endpoint(case)
    return info.sni, info.port


# --- scan --all-stores -------------------------------------------------------------------------------------------


def test_all_stores_verdicts_agree_with_the_real_clients(lab: LabState, work: Path, roots: tuple[Path, Path],
                                                         venv: Path) -> None:
    old, _ = roots
    d = work / "scan"
    d.mkdir()
    with_lab = _bundle(d / "bundle-with-lab.pem", old, with_system=True)
    without_lab = _bundle(d / "bundle-without-lab.pem", with_system=True)
    java_with = stores.cacerts_with_extra_ca(d / "java-with-lab.jks", old, alias="lab-root")
    nss_with = stores.nss_db(d / "nss-with", [("lab-root", "C,,", old)])
    nss_without = stores.nss_db(d / "nss-without")
    extra = [with_lab, without_lab, java_with, nss_with, nss_without]
    env = {"NODE_EXTRA_CA_CERTS": str(old)}
    flags = [arg for path in extra for arg in ("--store", str(path))]
    listing = tlsward("truststore", "list", "--json", *flags, "--search", str(venv), env=env)
    assert listing.returncode == 0, listing.stderr
    host = json.loads(listing.stdout)
    by_path: dict[str, list[dict[str, object]]] = {}
    for entry in host["stores"]:
        by_path.setdefault(str(entry["path"]), []).append(entry)

    sni, port = endpoint(lab, OLD_CASE)
    proc = tlsward("scan", "--all-stores", "--json", "--connect", "127.0.0.1", "--revocation", "off", *flags,
                   "--store-search", str(venv), f"{sni}:{port}", env=env)
    assert proc.returncode in (0, 1), proc.stderr
    result = json.loads(proc.stdout.splitlines()[0])
    verdicts = {v["store"]: v for v in result["analysis"]["verdicts"]}

    python = str(venv / "bin" / "python")
    certifi = stores.certifi_bundle(venv)
    # store path -> the real client reading it
    checks: dict[str, Callable[[], clients.Outcome]] = {
        str(with_lab): lambda: clients.curl(sni, port, cafile=with_lab),
        str(without_lab): lambda: clients.curl(sni, port, cafile=without_lab),
        str(java_with): lambda: clients.java(sni, port, java_with, work),
        str(nss_with): lambda: clients.nss(sni, port, nss_with),
        str(nss_without): lambda: clients.nss(sni, port, nss_without),
        str(SYSTEM_BUNDLE): lambda: clients.curl(sni, port),
        "/etc/ssl/certs/java/cacerts": lambda: clients.java(sni, port, Path("/etc/ssl/certs/java/cacerts"), work),
        str(certifi): lambda: clients.python_ssl(sni, port, certifi, python=python),
    }
    checked = 0
    for path, check in checks.items():
        entries = [e for p, es in by_path.items() if Path(p).resolve() == Path(path).resolve() for e in es]
        assert entries, f"tlsward did not list the store {path}: {sorted(by_path)}"
        label = str(entries[0]["label"])
        assert label in verdicts, f"no verdict for {label}: {sorted(verdicts)}"
        outcome = check()
        assert verdicts[label]["trusted"] == outcome.ok, (
            f"{label}: tlsward says trusted={verdicts[label]['trusted']} ({verdicts[label]['reason']}), "
            f"{outcome.client} says {outcome.detail}")
        checked += 1
    # Node: the built-in list and the one with NODE_EXTRA_CA_CERTS, as node itself behaves with and without it
    node_entries = [e for e in host["stores"] if e["kind"] == "node"]
    assert len(node_entries) == 2, node_entries
    for entry in node_entries:
        extra_ca = "NODE_EXTRA_CA_CERTS" in str(entry["id"])
        outcome = clients.node(sni, port, extra_ca=old if extra_ca else None)
        assert verdicts[str(entry["label"])]["trusted"] == outcome.ok, (entry["label"], outcome)
        checked += 1
    assert checked == 10
    split = [f for f in result["findings"] if f["id"] == "trust.store_fails"]
    assert len(split) == 1, result["findings"]
    assert "is not in this store" in split[0]["evidence"]
    assert str(by_path[str(certifi)][0]["label"]) in split[0]["evidence"]


# --- the rotation drill ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def drill(lab: LabState, work: Path, roots: tuple[Path, Path], venv: Path) -> Iterator[Setup]:
    old, new = roots
    d = work / "drill"
    d.mkdir()
    both = _bundle(d / "both.pem", old, new)
    made = [
        _pem_store("pem-old", _bundle(d / "old-only.pem", old), work),
        _pem_store("pem-both", both, work),
        _pem_store("pem-new", _bundle(d / "new-only.pem", new), work),
        _java_store("java-old", stores.keytool_truststore(d / "old.jks", old, alias="old-root"), work),
        _java_store("java-both", stores.keytool_truststore(
            stores.keytool_truststore(d / "both.p12", old, alias="old-root", store_type="PKCS12"), new,
            alias="new-root", store_type="PKCS12"), work),
        _nss_store("nss-old", stores.nss_db(d / "nss-old", [("old-root", "C,,", old)])),
        _nss_store("nss-both", stores.nss_db(d / "nss-both", [("old-root", "C,,", old), ("new-root", "C,,", new)])),
    ]
    yield Setup(work=d, old_pem=old, new_pem=new, venv=venv, stores=made)


def _plan(setup: Setup) -> dict[str, object]:
    flags = [arg for s in setup.stores for arg in ("--store", str(s.path))]
    proc = tlsward("truststore", "plan", "--old", str(setup.old_pem), "--new", str(setup.new_pem), "--json",
                   "--no-home", *flags, env={"NODE_EXTRA_CA_CERTS": str(setup.old_pem)})
    assert proc.returncode == 1, proc.stderr   # some stores break: exit 1
    plan: dict[str, object] = json.loads(proc.stdout)
    return plan


def _ids_by_path(setup: Setup) -> dict[str, str]:
    flags = [arg for s in setup.stores for arg in ("--store", str(s.path))]
    listing = json.loads(tlsward("truststore", "list", "--json", "--no-home", *flags,
                                 env={"NODE_EXTRA_CA_CERTS": str(setup.old_pem)}).stdout)
    return {str(Path(e["path"]).resolve()): e["id"] for e in listing["stores"] if e["kind"] != "node"}


def test_rotation_plan_predictions_happen_with_real_clients(lab: LabState, drill: Setup) -> None:
    plan = _plan(drill)
    ids = _ids_by_path(drill)
    steps = {s["name"]: s for s in plan["steps"]}  # type: ignore[attr-defined]
    system_id = ids[str(SYSTEM_BUNDLE.resolve())]
    java_system_id = ids[str(Path("/etc/ssl/certs/java/cacerts").resolve())]
    node_ids = {s for step in steps.values() for b in step["breaks"] for s in [b["store"]] if s.startswith("node:")}
    expected_switch = {ids[str(s.path.resolve())] for s in drill.stores if s.name.endswith("-old")}
    expected_switch |= {system_id, java_system_id} | node_ids
    broken_at = {name: {b["store"] for b in step["breaks"]} for name, step in steps.items()}
    assert expected_switch <= broken_at["switch-issuer"], broken_at
    assert not any(ids[str(s.path.resolve())] in broken_at["switch-issuer"]
                   for s in drill.stores if not s.name.endswith("-old"))

    # Every drill store plus the host's own system bundle and Java cacerts, against both endpoints.
    cases = [
        *drill.stores,
        Store("system", SYSTEM_BUNDLE, lambda sni, port: clients.curl(sni, port)),
        Store("java-system", Path("/etc/ssl/certs/java/cacerts"),
              lambda sni, port: clients.java(sni, port, Path("/etc/ssl/certs/java/cacerts"), drill.work)),
    ]
    old_sni, old_port = endpoint(lab, OLD_CASE)
    new_sni, new_port = endpoint(lab, NEW_CASE)
    for store in cases:
        store_id = ids[str(store.path.resolve())]
        today = store.client(old_sni, old_port)
        assert today.ok == (store_id not in broken_at["add-new-root"]), (store.name, "step 1", today)
        switched = store.client(new_sni, new_port)
        assert switched.ok == (store_id not in broken_at["switch-issuer"]), (store.name, "step 2", switched)
    # Node, read with NODE_EXTRA_CA_CERTS=old root: predicted to break at the switch, and it does.
    assert any("NODE_EXTRA_CA_CERTS" in n for n in node_ids)
    assert clients.node(old_sni, old_port, extra_ca=drill.old_pem).ok
    assert not clients.node(new_sni, new_port, extra_ca=drill.old_pem).ok


def test_removing_the_old_root_breaks_exactly_what_the_plan_says(lab: LabState, drill: Setup) -> None:
    ids = _ids_by_path(drill)
    steps = {s["name"]: s for s in _plan(drill)["steps"]}  # type: ignore[attr-defined]
    broken = {b["store"] for b in steps["remove-old-root"]["breaks"]}
    # Step 3 for real: the old root leaves every drill store (bundle rewritten, keytool -delete, certutil -D).
    removed = drill.work / "removed"
    removed.mkdir()
    after: list[Store] = []
    for store in drill.stores:
        if store.name.startswith("pem"):
            text = store.path.read_text().replace(drill.old_pem.read_text(), "")
            path = removed / store.path.name
            path.write_text(text)
            after.append(_pem_store(store.name, path, drill.work))
        elif store.name.startswith("java"):
            path = removed / store.path.name
            shutil.copyfile(store.path, path)
            stores.run("keytool", "-delete", "-alias", "old-root", "-keystore", str(path), "-storepass", "changeit")
            after.append(_java_store(store.name, path, drill.work))
        else:
            path = removed / store.path.name
            shutil.copytree(store.path, path)
            stores.run("certutil", "-D", "-d", f"sql:{path}", "-n", "old-root")
            after.append(_nss_store(store.name, path))
    new_sni, new_port = endpoint(lab, NEW_CASE)
    old_sni, old_port = endpoint(lab, OLD_CASE)
    for before, store in zip(drill.stores, after, strict=True):
        outcome = store.client(new_sni, new_port)
        assert outcome.ok == (ids[str(before.path.resolve())] not in broken), (store.name, outcome)
        assert not store.client(old_sni, old_port).ok, f"{store.name}: the old root is gone, old chains must fail"


def test_the_printed_fix_makes_a_broken_store_work(lab: LabState, drill: Setup) -> None:
    ids = _ids_by_path(drill)
    steps = {s["name"]: s for s in _plan(drill)["steps"]}  # type: ignore[attr-defined]
    breaks = {b["store"]: b for b in steps["switch-issuer"]["breaks"]}
    new_sni, new_port = endpoint(lab, NEW_CASE)
    for name in ("java-old", "nss-old"):
        store = next(s for s in drill.stores if s.name == name)
        fixed = drill.work / f"fixed-{store.path.name}"
        if store.path.is_dir():
            shutil.copytree(store.path, fixed)
        else:
            shutil.copyfile(store.path, fixed)
        fix = breaks[ids[str(store.path.resolve())]]["fix"].replace(str(store.path), str(fixed))
        assert not (_java_store(name, fixed, drill.work) if name.startswith("java") else _nss_store(name, fixed)
                    ).client(new_sni, new_port).ok
        subprocess.run(shlex.split(fix.split(" (Debian")[0]), check=True, timeout=120, capture_output=True,
                       stdin=subprocess.DEVNULL)
        repaired = _java_store(name, fixed, drill.work) if name.startswith("java") else _nss_store(name, fixed)
        assert repaired.client(new_sni, new_port).ok, f"{name}: after `{fix}` the client still fails"
