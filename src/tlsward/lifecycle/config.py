"""The managed-certificates file (``certificates.toml``): what to obtain, from where, where it goes, how the
server picks it up and which endpoints must then serve it.

    state_dir = "/var/lib/tlsward/lifecycle"      # locks and journals (default: .tlsward-lifecycle beside this file)

    [[certificate]]
    name = "www"
    names = ["www.example.com", "example.com"]
    key_type = "ecdsa-p256"                        # ecdsa-p256 | ecdsa-p384 | rsa-2048 | rsa-3072 | rsa-4096
    source = "ca"                                  # "ca" (tlsward's internal CA) | "acme"
    renew_before = "10d"                           # optional: renew this long before expiry (default: ARI, else 2/3)
    [certificate.ca]    dir = "/var/lib/tlsward/ca", profile = "server", lifetime = "30d",
                        passphrase_file = "/etc/tlsward/ca.pass" (or passphrase_env = "TLSWARD_CA_PASSPHRASE")
    [certificate.acme]  directory = "https://acme.example/dir", email = "ops@example.com", ca_bundle = "...",
                        account_dir = "...", eab_kid = "...", eab_hmac_key = "...",
                        challenge = "http-01-webroot" (webroot = "/var/www/acme") | "http-01-listener"
                        (listen = "0.0.0.0:80") | "dns-01" (dns = { server, port, zone, tsig_name, tsig_secret,
                        tsig_algorithm })
    [certificate.deploy] cert = "...", chain = "...", fullchain = "...", key = "..." (at least one of cert and
                        fullchain, and key), owner = "root", group = "ssl-cert", mode = "0644" (key: always 0600),
                        reload = { nginx = true, config = "/etc/nginx/nginx.conf", prefix = "..." }
                               | { haproxy = "/etc/haproxy/haproxy.cfg", master_socket = "/run/haproxy-master.sock" }
                               | { systemd = "apache2" } | { command = ["/usr/local/bin/reload-it", "--now"] },
                        reload_timeout = "30s"
    [certificate.verify] endpoints = ["127.0.0.1:443", { target = "10.0.0.5:443", sni = "www.example.com" }],
                        trust = "/etc/ssl/internal-ca.pem" (default for source ca: the CA's own bundle),
                        timeout = "20s"

Every problem is one line naming the file and the key (``certificates.toml: certificate[0].deploy.key: ...``):
a typo in the file that decides what gets written over a production key must never be guessed at.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tlsward.model.durations import parse_duration
from tlsward.model.errors import UsageError

KEY_TYPES = ("ecdsa-p256", "ecdsa-p384", "rsa-2048", "rsa-3072", "rsa-4096")
CHALLENGES = ("http-01-webroot", "http-01-listener", "dns-01")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


@dataclass(frozen=True, slots=True)
class CaSource:
    directory: Path
    profile: str = "server"
    lifetime_s: float | None = None
    passphrase_file: Path | None = None
    passphrase_env: str | None = None


@dataclass(frozen=True, slots=True)
class DnsSettings:
    server: str
    port: int = 53
    zone: str | None = None
    tsig_name: str | None = None
    tsig_secret: str | None = None
    tsig_algorithm: str = "hmac-sha256"


@dataclass(frozen=True, slots=True)
class AcmeSource:
    directory: str
    account_dir: Path
    email: str | None = None
    ca_bundle: Path | None = None
    eab_kid: str | None = None
    eab_hmac_key: str | None = None
    challenge: str = "http-01-webroot"
    webroot: Path | None = None
    listen_host: str = ""
    listen_port: int = 80
    dns: DnsSettings | None = None


@dataclass(frozen=True, slots=True)
class ReloadAction:
    """How the server picks up new files. ``kind``: nginx | haproxy | systemd | command | none."""

    kind: str
    argv: tuple[str, ...] = ()        # command: the argv; nginx/haproxy: the binary (default found on PATH)
    config: Path | None = None        # nginx -c / haproxy -f
    prefix: Path | None = None        # nginx -p
    unit: str | None = None           # systemd
    master_socket: Path | None = None  # haproxy master CLI socket
    timeout_s: float = 30.0
    cwd: Path | None = None           # commands run in the certificates file's directory

    def describe(self) -> str:
        if self.kind == "nginx":
            return "nginx reloaded"
        if self.kind == "haproxy":
            return "haproxy reloaded"
        if self.kind == "systemd":
            return f"{self.unit} reloaded"
        if self.kind == "command":
            return f"`{shlex.join(self.argv)}` ran"
        return "no reload configured"


@dataclass(frozen=True, slots=True)
class Deploy:
    cert: Path | None = None
    chain: Path | None = None
    fullchain: Path | None = None
    key: Path | None = None
    owner: str | None = None
    group: str | None = None
    mode: int = 0o644
    reload: ReloadAction = field(default_factory=lambda: ReloadAction("none"))

    @property
    def leaf_file(self) -> Path:
        """The file whose first certificate is the deployed leaf."""
        path = self.cert or self.fullchain
        assert path is not None
        return path

    def paths(self) -> list[tuple[str, Path]]:
        return [(kind, path) for kind, path in (("cert", self.cert), ("chain", self.chain),
                                                 ("fullchain", self.fullchain), ("key", self.key)) if path]


@dataclass(frozen=True, slots=True)
class VerifyEndpoint:
    target: str
    sni: str | None = None

    def __str__(self) -> str:
        return self.target if self.sni is None else f"{self.target} (sni {self.sni})"


@dataclass(frozen=True, slots=True)
class Verify:
    endpoints: tuple[VerifyEndpoint, ...] = ()
    trust: Path | None = None
    timeout_s: float = 20.0


@dataclass(frozen=True, slots=True)
class ManagedCertificate:
    name: str
    names: tuple[str, ...]
    source: str                        # "ca" | "acme"
    deploy: Deploy
    key_type: str = "ecdsa-p256"
    ca: CaSource | None = None
    acme: AcmeSource | None = None
    verify: Verify = field(default_factory=Verify)
    renew_before_s: float | None = None


@dataclass(frozen=True, slots=True)
class LifecycleConfig:
    path: Path
    state_dir: Path
    certificates: tuple[ManagedCertificate, ...]

    def named(self, name: str) -> ManagedCertificate:
        for cert in self.certificates:
            if cert.name == name:
                return cert
        known = ", ".join(c.name for c in self.certificates) or "none"
        raise UsageError(f"{self.path}: no managed certificate named {name!r} (known: {known})")


def load_lifecycle_config(path: Path) -> LifecycleConfig:
    """Read and validate ``certificates.toml``; a one-line UsageError naming the file and key otherwise."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror if isinstance(exc, OSError) else exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: not TOML: {exc}") from None
    return parse_lifecycle_config(data, path)


def parse_lifecycle_config(data: Mapping[str, Any], path: Path) -> LifecycleConfig:
    _keys(data, {"state_dir", "certificate"}, f"{path}", "the top level")
    base = path.parent
    state_dir = _path(data["state_dir"], f"{path}: state_dir", base) if "state_dir" in data \
        else base / ".tlsward-lifecycle"
    raw = data.get("certificate", [])
    if not isinstance(raw, list):
        raise UsageError(f"{path}: certificate: expected [[certificate]] tables")
    certs = [_certificate(entry, f"{path}: certificate[{index}]", base) for index, entry in enumerate(raw)]
    seen: set[str] = set()
    for index, cert in enumerate(certs):
        if cert.name in seen:
            raise UsageError(f"{path}: certificate[{index}].name: {cert.name!r} is used twice")
        seen.add(cert.name)
    targets: dict[Path, str] = {}
    for cert in certs:
        for _, target in cert.deploy.paths():
            if target in targets:
                raise UsageError(f"{path}: certificate {cert.name!r}: deploy path {target} is also written by "
                                 f"{targets[target]!r}")
            targets[target] = cert.name
    return LifecycleConfig(path=path, state_dir=state_dir, certificates=tuple(certs))


def _keys(table: Any, allowed: set[str], where: str, what: str) -> Mapping[str, Any]:
    if not isinstance(table, Mapping):
        raise UsageError(f"{where}: expected a table")
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise UsageError(f"{where}: unknown key(s) {', '.join(unknown)} in {what} "
                         f"(known: {', '.join(sorted(allowed))})")
    return table


def _str(value: object, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise UsageError(f"{where}: expected a non-empty string, got {value!r}")
    return value.strip()


def _path(value: object, where: str, base: Path) -> Path:
    path = Path(_str(value, where)).expanduser()
    return path if path.is_absolute() else base / path


def _int(value: object, where: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise UsageError(f"{where}: expected a whole number from {low} to {high}, got {value!r}")
    return value


def _certificate(entry: Any, where: str, base: Path) -> ManagedCertificate:
    table = _keys(entry, {"name", "names", "key_type", "source", "renew_before", "ca", "acme", "deploy", "verify"},
                  where, "[[certificate]]")
    for required in ("name", "names", "source", "deploy"):
        if required not in table:
            raise UsageError(f"{where}: missing {required}")
    name = _str(table["name"], f"{where}.name")
    if not _NAME.match(name):
        raise UsageError(f"{where}.name: {name!r} must be letters, digits, '.', '_' or '-' (it names lock files)")
    where = f"{where} ({name})"
    names = table["names"]
    if not isinstance(names, list) or not names or not all(isinstance(n, str) and n.strip() for n in names):
        raise UsageError(f"{where}.names: expected a non-empty list of DNS names or IP addresses")
    key_type = table.get("key_type", "ecdsa-p256")
    if key_type not in KEY_TYPES:
        raise UsageError(f"{where}.key_type: {key_type!r} is not one of {', '.join(KEY_TYPES)}")
    source = table["source"]
    if source not in ("ca", "acme"):
        raise UsageError(f"{where}.source: expected \"ca\" or \"acme\", got {source!r}")
    if source not in table:
        raise UsageError(f"{where}: source = {source!r} needs a [certificate.{source}] table")
    ca = _ca(table["ca"], f"{where}.ca", base) if "ca" in table else None
    acme = _acme(table["acme"], f"{where}.acme", base, name) if "acme" in table else None
    renew_before = parse_duration(table["renew_before"], f"{where}.renew_before") if "renew_before" in table else None
    verify = _verify(table["verify"], f"{where}.verify", base) if "verify" in table else Verify()
    return ManagedCertificate(name=name, names=tuple(n.strip() for n in names), source=source,
                              deploy=_deploy(table["deploy"], f"{where}.deploy", base), key_type=key_type, ca=ca,
                              acme=acme, verify=verify, renew_before_s=renew_before)


def _ca(entry: Any, where: str, base: Path) -> CaSource:
    table = _keys(entry, {"dir", "profile", "lifetime", "passphrase_file", "passphrase_env"}, where, "[certificate.ca]")
    if "dir" not in table:
        raise UsageError(f"{where}: missing dir (the internal CA's directory)")
    return CaSource(directory=_path(table["dir"], f"{where}.dir", base),
                    profile=_str(table.get("profile", "server"), f"{where}.profile"),
                    lifetime_s=parse_duration(table["lifetime"], f"{where}.lifetime") if "lifetime" in table else None,
                    passphrase_file=_path(table["passphrase_file"], f"{where}.passphrase_file", base)
                    if "passphrase_file" in table else None,
                    passphrase_env=_str(table["passphrase_env"], f"{where}.passphrase_env")
                    if "passphrase_env" in table else None)


def _acme(entry: Any, where: str, base: Path, name: str) -> AcmeSource:
    table = _keys(entry, {"directory", "email", "ca_bundle", "account_dir", "eab_kid", "eab_hmac_key", "challenge",
                          "webroot", "listen", "dns"}, where, "[certificate.acme]")
    if "directory" not in table:
        raise UsageError(f"{where}: missing directory (the ACME directory URL)")
    directory = _str(table["directory"], f"{where}.directory")
    if not directory.startswith(("https://", "http://")):
        raise UsageError(f"{where}.directory: expected an http(s) URL, got {directory!r}")
    challenge = table.get("challenge", "http-01-webroot")
    if challenge not in CHALLENGES:
        raise UsageError(f"{where}.challenge: {challenge!r} is not one of {', '.join(CHALLENGES)}")
    webroot = _path(table["webroot"], f"{where}.webroot", base) if "webroot" in table else None
    if challenge == "http-01-webroot" and webroot is None:
        raise UsageError(f"{where}: challenge http-01-webroot needs webroot")
    host, port = "", 80
    if "listen" in table:
        listen = _str(table["listen"], f"{where}.listen")
        host, _, port_text = listen.rpartition(":")
        if not port_text.isdigit():
            raise UsageError(f"{where}.listen: expected HOST:PORT, got {listen!r}")
        port = _int(int(port_text), f"{where}.listen", 1, 65535)
    dns = None
    if challenge == "dns-01":
        if "dns" not in table:
            raise UsageError(f"{where}: challenge dns-01 needs dns = {{ server = ..., ... }}")
        d = _keys(table["dns"], {"server", "port", "zone", "tsig_name", "tsig_secret", "tsig_algorithm"},
                  f"{where}.dns", "dns")
        if "server" not in d:
            raise UsageError(f"{where}.dns: missing server")
        dns = DnsSettings(server=_str(d["server"], f"{where}.dns.server"),
                          port=_int(d.get("port", 53), f"{where}.dns.port", 1, 65535),
                          zone=_str(d["zone"], f"{where}.dns.zone") if "zone" in d else None,
                          tsig_name=_str(d["tsig_name"], f"{where}.dns.tsig_name") if "tsig_name" in d else None,
                          tsig_secret=_str(d["tsig_secret"], f"{where}.dns.tsig_secret") if "tsig_secret" in d
                          else None,
                          tsig_algorithm=_str(d.get("tsig_algorithm", "hmac-sha256"), f"{where}.dns.tsig_algorithm"))
    optional = {key: _str(table[key], f"{where}.{key}") if key in table else None
                for key in ("email", "eab_kid", "eab_hmac_key")}
    if (optional["eab_kid"] is None) != (optional["eab_hmac_key"] is None):
        raise UsageError(f"{where}: external account binding needs both eab_kid and eab_hmac_key")
    return AcmeSource(directory=directory,
                      account_dir=_path(table["account_dir"], f"{where}.account_dir", base) if "account_dir" in table
                      else base / ".tlsward-lifecycle" / "acme" / name,
                      email=optional["email"], eab_kid=optional["eab_kid"], eab_hmac_key=optional["eab_hmac_key"],
                      ca_bundle=_path(table["ca_bundle"], f"{where}.ca_bundle", base) if "ca_bundle" in table
                      else None,
                      challenge=challenge, webroot=webroot, listen_host=host, listen_port=port, dns=dns)


def _deploy(entry: Any, where: str, base: Path) -> Deploy:
    table = _keys(entry, {"cert", "chain", "fullchain", "key", "owner", "group", "mode", "reload", "reload_timeout"},
                  where, "[certificate.deploy]")
    paths = {kind: _path(table[kind], f"{where}.{kind}", base) if kind in table else None
             for kind in ("cert", "chain", "fullchain", "key")}
    if paths["cert"] is None and paths["fullchain"] is None:
        raise UsageError(f"{where}: needs cert or fullchain (where the certificate goes)")
    if paths["key"] is None:
        raise UsageError(f"{where}: missing key (where the private key goes)")
    given = [p for p in paths.values() if p is not None]
    if len(set(given)) != len(given):
        raise UsageError(f"{where}: cert, chain, fullchain and key must be different files")
    mode = 0o644
    if "mode" in table:
        raw = table["mode"]
        try:
            mode = int(raw, 8) if isinstance(raw, str) else -1
        except ValueError:
            mode = -1
        if not 0 <= mode <= 0o777:
            raise UsageError(f"{where}.mode: expected an octal string like \"0644\", got {raw!r}")
    timeout = parse_duration(table["reload_timeout"], f"{where}.reload_timeout") if "reload_timeout" in table else 30.0
    reload = _reload(table["reload"], f"{where}.reload", base, timeout) if "reload" in table \
        else ReloadAction("none", timeout_s=timeout)
    return Deploy(cert=paths["cert"], chain=paths["chain"], fullchain=paths["fullchain"], key=paths["key"],
                  owner=_str(table["owner"], f"{where}.owner") if "owner" in table else None,
                  group=_str(table["group"], f"{where}.group") if "group" in table else None,
                  mode=mode, reload=reload)


def _reload(entry: Any, where: str, base: Path, timeout: float) -> ReloadAction:
    table = _keys(entry, {"nginx", "haproxy", "systemd", "command", "config", "prefix", "binary", "master_socket"},
                  where, "reload")
    kinds = [k for k in ("nginx", "haproxy", "systemd", "command") if k in table]
    if len(kinds) != 1:
        raise UsageError(f"{where}: expected exactly one of nginx, haproxy, systemd, command")
    kind = kinds[0]
    binary = (_str(table["binary"], f"{where}.binary"),) if "binary" in table else ()
    if kind == "nginx":
        value = table["nginx"]
        config = _path(table["config"], f"{where}.config", base) if "config" in table else None
        if isinstance(value, str):
            config = _path(value, f"{where}.nginx", base)
        elif value is not True:
            raise UsageError(f"{where}.nginx: expected true or the path of nginx.conf, got {value!r}")
        return ReloadAction("nginx", argv=binary, config=config,
                            prefix=_path(table["prefix"], f"{where}.prefix", base) if "prefix" in table else None,
                            timeout_s=timeout)
    if kind == "haproxy":
        return ReloadAction("haproxy", argv=binary, config=_path(table["haproxy"], f"{where}.haproxy", base),
                            master_socket=_path(table["master_socket"], f"{where}.master_socket", base)
                            if "master_socket" in table else None, timeout_s=timeout)
    if kind == "systemd":
        return ReloadAction("systemd", unit=_str(table["systemd"], f"{where}.systemd"), timeout_s=timeout)
    command = table["command"]
    if isinstance(command, str):
        try:
            argv = shlex.split(command)
        except ValueError as exc:
            raise UsageError(f"{where}.command: {exc}") from None
    elif isinstance(command, list) and all(isinstance(a, str) for a in command):
        argv = list(command)
    else:
        argv = []
    if not argv:
        raise UsageError(f"{where}.command: expected a command line or a non-empty list of arguments")
    return ReloadAction("command", argv=tuple(argv), timeout_s=timeout, cwd=base)


def _verify(entry: Any, where: str, base: Path) -> Verify:
    if isinstance(entry, list):
        entry = {"endpoints": entry}
    table = _keys(entry, {"endpoints", "trust", "timeout"}, where, "verify")
    raw = table.get("endpoints", [])
    if not isinstance(raw, list):
        raise UsageError(f"{where}.endpoints: expected a list of \"host:port\" or {{ target, sni }}")
    endpoints = []
    for index, item in enumerate(raw):
        at = f"{where}.endpoints[{index}]"
        if isinstance(item, str):
            endpoints.append(VerifyEndpoint(_str(item, at)))
            continue
        spec = _keys(item, {"target", "sni"}, at, "an endpoint")
        if "target" not in spec:
            raise UsageError(f"{at}: missing target")
        endpoints.append(VerifyEndpoint(_str(spec["target"], f"{at}.target"),
                                        _str(spec["sni"], f"{at}.sni") if "sni" in spec else None))
    return Verify(endpoints=tuple(endpoints),
                  trust=_path(table["trust"], f"{where}.trust", base) if "trust" in table else None,
                  timeout_s=parse_duration(table["timeout"], f"{where}.timeout") if "timeout" in table else 20.0)
