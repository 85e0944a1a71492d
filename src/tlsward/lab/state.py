"""Where a lab keeps its files, and the ``lab.json`` it publishes once every port is listening."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from tlsward.model.errors import LabError

STATE_FILE = "lab.json"
PID_FILE = "lab.pid"
LOG_FILE = "lab.log"
DEFAULT_BASE_PORT = 18400
DEFAULT_HOST = "127.0.0.1"


def default_state_dir() -> Path:
    """``$TLSWARD_LAB_DIR``, else ``$XDG_STATE_HOME/tlsward/lab``, else ``~/.local/state/tlsward/lab``."""
    if env := os.environ.get("TLSWARD_LAB_DIR"):
        return Path(env)
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "tlsward" / "lab"


def default_base_port() -> int:
    raw = os.environ.get("TLSWARD_LAB_BASE_PORT", str(DEFAULT_BASE_PORT))
    try:
        return int(raw)
    except ValueError:
        raise LabError(f"TLSWARD_LAB_BASE_PORT={raw!r} is not a port number") from None


@dataclass(frozen=True, slots=True)
class EndpointInfo:
    """One published case: what to connect to and what to ask for."""

    name: str
    kind: str
    port: int
    sni: str
    target: str
    situation: str


@dataclass(frozen=True, slots=True)
class LabState:
    """What a running lab publishes for clients, tests and the demo."""

    pid: int
    host: str
    base_port: int
    pki_url: str
    started_at: str
    state_dir: str
    ca_file: str
    untrusted_ca_file: str
    client_cert: str
    client_key: str
    endpoints: tuple[EndpointInfo, ...]

    def endpoint(self, name: str) -> EndpointInfo:
        for endpoint in self.endpoints:
            if endpoint.name == name:
                return endpoint
        raise KeyError(name)

    def write(self, directory: Path) -> None:
        tmp = directory / (STATE_FILE + ".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2))
        tmp.replace(directory / STATE_FILE)

    @classmethod
    def read(cls, directory: Path) -> LabState:
        path = directory / STATE_FILE
        try:
            raw = json.loads(path.read_text())
            endpoints = tuple(EndpointInfo(**e) for e in raw.pop("endpoints"))
            return cls(endpoints=endpoints, **raw)
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise LabError(f"cannot read lab state {path}: {exc}") from None
