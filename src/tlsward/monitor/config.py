"""The monitor's config file (TOML or YAML): probe settings, alert thresholds, routes, receivers, retention.

Every key is optional; unknown keys and bad values are one-line usage errors naming the file and the key,
because a typo in an alerting config must not silently mean "never page".

    [probes]            interval = "5m", jitter = 0.1, concurrency = 200, per_host = 4, timeout = "5s",
                        failure_backoff_max = "30m", batch_size = 500, refresh = "30s", prune_every = "1h",
                        ca_files = ["/etc/ssl/internal-ca.pem"], all_ips = false,
                        deep_interval = "24h" (or "off"), policy = "mozilla-intermediate",
                        revocation = "off" | "soft" | "hard"
    [alerts]            failing_after = 3, failing_route = "page", chain_change_hold = "24h",
                        renotify_page = "4h", renotify_ticket = "24h",
                        runbook_base = "https://tlsward.example.com/findings" (default "docs/findings.md")
    [alerts.expiry]     thresholds = [30, 14, 7, 3], routes = ["ticket", "ticket", "page", "page"]
    [alerts.findings]   "protocol.tls10" = "ticket", ...   (replaces the default list when given)
    [retention]         raw_days = 14, hourly_days = 90, daily_days = 400
    [[routes]]          match = { team = "payments" }, receivers = ["pd-payments"], continue = false
    [receivers.NAME]    kind = "slack" | "webhook" | "email" | "pagerduty" | "alertmanager", ... (docs/monitor.md)
    [renewal]           certificates = "certificates.toml", interval = "1h": run `tlsward renew --all` on this
                        schedule (docs/lifecycle.md); failures alert as cert.deploy_failed / cert.renewal_failed
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from tlsward.model.alerts import Route
from tlsward.model.durations import parse_duration
from tlsward.model.errors import UsageError
from tlsward.model.findings import FINDING_CATALOGUE
from tlsward.model.inventory import RetentionPolicy
from tlsward.model.lifecycle import RenewalSettings
from tlsward.model.monitor import AlertSettings, ExpiryAlerts, MonitorConfig, ProbeSettings, RouteRule
from tlsward.monitor.notify import ReceiverConfig, receivers_from_mapping

# [distributed] (broker, batches, lease, time limits) is read by tlsward.distributed.settings from the same file.
TOP_KEYS = {"probes", "alerts", "routes", "receivers", "retention", "distributed", "renewal"}


@dataclass(frozen=True)
class LoadedConfig:
    config: MonitorConfig = field(default_factory=MonitorConfig)
    receivers: tuple[ReceiverConfig, ...] = ()


def _table(data: Mapping[str, Any], key: str, where: str, allowed: set[str]) -> Mapping[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, Mapping):
        raise UsageError(f"{where}: [{key}] must be a table")
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise UsageError(f"{where}: [{key}] has unknown key(s) {', '.join(unknown)} "
                         f"(known: {', '.join(sorted(allowed))})")
    return value


def _number(value: object, where: str, *, integer: bool = False, low: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or (integer and not isinstance(value, int)):
        raise UsageError(f"{where}: expected {'a whole number' if integer else 'a number'}, got {value!r}")
    if value < low:
        raise UsageError(f"{where}: must be >= {low:g}, got {value!r}")
    return float(value)


def _route(value: object, where: str) -> Route:
    try:
        return Route(str(value))
    except ValueError:
        raise UsageError(f"{where}: expected 'page' or 'ticket', got {value!r}") from None


def _probes(data: Mapping[str, Any], name: str) -> ProbeSettings:
    table = _table(data, "probes", name, {"interval", "jitter", "concurrency", "timeout", "failure_backoff_max",
                                          "batch_size", "refresh", "prune_every", "ca_files", "all_ips", "revocation",
                                          "deep_interval", "policy", "per_host"})
    durations = {"interval": "interval_s", "timeout": "timeout_s", "failure_backoff_max": "failure_backoff_max_s",
                 "refresh": "refresh_s", "prune_every": "prune_every_s"}
    given: dict[str, Any] = {attr: parse_duration(table[key], f"{name}: probes.{key}")
                             for key, attr in durations.items() if key in table}
    settings = ProbeSettings(**given)
    if "jitter" in table:
        jitter = _number(table["jitter"], f"{name}: probes.jitter")
        if jitter >= 1:
            raise UsageError(f"{name}: probes.jitter is a fraction of the interval (< 1), got {jitter:g}")
        settings = replace(settings, jitter=jitter)
    if "concurrency" in table:
        settings = replace(settings, concurrency=int(_number(table["concurrency"], f"{name}: probes.concurrency",
                                                             integer=True, low=1)))
    if "deep_interval" in table:
        value = table["deep_interval"]
        settings = replace(settings, deep_interval_s=0.0 if value in (0, "0", "off") else
                           parse_duration(value, f"{name}: probes.deep_interval"))
    if "policy" in table:
        if not isinstance(table["policy"], str):
            raise UsageError(f"{name}: probes.policy must be a profile name or a path")
        settings = replace(settings, policy=table["policy"])
    if "revocation" in table:
        if table["revocation"] not in ("off", "soft", "hard"):
            raise UsageError(f"{name}: probes.revocation must be \"off\", \"soft\" or \"hard\"")
        settings = replace(settings, revocation=table["revocation"])
    if "all_ips" in table:
        if not isinstance(table["all_ips"], bool):
            raise UsageError(f"{name}: probes.all_ips must be true or false")
        settings = replace(settings, all_ips=table["all_ips"])
    if "ca_files" in table:
        files = table["ca_files"]
        if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
            raise UsageError(f"{name}: probes.ca_files must be a list of paths")
        settings = replace(settings, ca_files=tuple(files))
    if "per_host" in table:
        settings = replace(settings, per_host=int(_number(table["per_host"], f"{name}: probes.per_host",
                                                          integer=True, low=1)))
    if "batch_size" in table:
        settings = replace(settings, batch_size=int(_number(table["batch_size"], f"{name}: probes.batch_size",
                                                            integer=True, low=1)))
    return settings


def _alerts(data: Mapping[str, Any], name: str) -> AlertSettings:
    table = _table(data, "alerts", name, {"failing_after", "failing_route", "chain_change_hold", "renotify_page",
                                          "renotify_ticket", "expiry", "findings", "runbook_base"})
    settings = AlertSettings()
    if "failing_after" in table:
        settings = replace(settings, failing_after=int(_number(table["failing_after"], f"{name}: alerts.failing_after",
                                                               integer=True, low=1)))
    if "failing_route" in table:
        settings = replace(settings, failing_route=_route(table["failing_route"], f"{name}: alerts.failing_route"))
    if "chain_change_hold" in table:
        settings = replace(settings, chain_change_hold_s=parse_duration(table["chain_change_hold"],
                                                                        f"{name}: alerts.chain_change_hold"))
    if "runbook_base" in table:
        base = table["runbook_base"]
        if not isinstance(base, str) or not base.strip() or any(c.isspace() for c in base.strip()):
            raise UsageError(f"{name}: alerts.runbook_base must be a URL or path without spaces, e.g. "
                             "\"https://tlsward.example.com/findings\"")
        settings = replace(settings, runbook_base=base.strip().rstrip("/"))
    if "renotify_page" in table:
        settings = replace(settings, renotify_page_s=parse_duration(table["renotify_page"],
                                                                    f"{name}: alerts.renotify_page"))
    if "renotify_ticket" in table:
        settings = replace(settings, renotify_ticket_s=parse_duration(table["renotify_ticket"],
                                                                      f"{name}: alerts.renotify_ticket"))
    expiry = _table(table, "expiry", f"{name}: [alerts]", {"thresholds", "routes"})
    if expiry:
        thresholds = expiry.get("thresholds", list(ExpiryAlerts().thresholds))
        if not isinstance(thresholds, list) or not thresholds or \
                [float(_number(t, f"{name}: alerts.expiry.thresholds", low=0.001)) for t in thresholds] != \
                sorted((float(t) for t in thresholds), reverse=True):
            raise UsageError(f"{name}: alerts.expiry.thresholds must be days in decreasing order, e.g. [30, 14, 7, 3]")
        routes = expiry.get("routes")
        if routes is None:
            default = ExpiryAlerts().routes
            routes = [default[min(i, len(default) - 1)].value for i in range(len(thresholds))]
        if not isinstance(routes, list) or len(routes) != len(thresholds):
            raise UsageError(f"{name}: alerts.expiry.routes needs one route per threshold ({len(thresholds)})")
        settings = replace(settings, expiry=ExpiryAlerts(
            tuple(float(t) for t in thresholds),
            tuple(_route(r, f"{name}: alerts.expiry.routes") for r in routes)))
    if "findings" in table:
        findings = table["findings"]
        if not isinstance(findings, Mapping):
            raise UsageError(f"{name}: [alerts.findings] must be a table of finding id = route")
        pairs = []
        for finding_id, route in findings.items():
            if finding_id not in FINDING_CATALOGUE:
                raise UsageError(f"{name}: alerts.findings: unknown finding id {finding_id!r} (docs/findings.md)")
            pairs.append((str(finding_id), _route(route, f"{name}: alerts.findings.{finding_id}")))
        settings = replace(settings, finding_routes=tuple(pairs))
    return settings


def _routes(data: Mapping[str, Any], name: str, receivers: set[str]) -> tuple[RouteRule, ...]:
    raw = data.get("routes", [])
    if not isinstance(raw, list):
        raise UsageError(f"{name}: routes must be a list of tables ([[routes]])")
    rules = []
    for index, entry in enumerate(raw):
        where = f"{name}: routes[{index}]"
        if not isinstance(entry, Mapping) or set(entry) - {"match", "receivers", "continue"}:
            raise UsageError(f"{where}: a route has match, receivers and continue")
        match = entry.get("match", {})
        if not isinstance(match, Mapping) or not all(isinstance(v, str) for v in match.values()):
            raise UsageError(f"{where}: match must be a table of label = \"value\"")
        names = entry.get("receivers")
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise UsageError(f"{where}: receivers must be a non-empty list of receiver names")
        unknown = [n for n in names if n not in receivers]
        if unknown:
            raise UsageError(f"{where}: unknown receiver(s) {', '.join(unknown)} (define them under [receivers])")
        cont = entry.get("continue", False)
        if not isinstance(cont, bool):
            raise UsageError(f"{where}: continue must be true or false")
        rules.append(RouteRule(tuple(names), tuple(sorted((str(k), str(v)) for k, v in match.items())), cont))
    return tuple(rules)


def _retention(data: Mapping[str, Any], name: str) -> RetentionPolicy:
    table = _table(data, "retention", name, {"raw_days", "hourly_days", "daily_days"})
    values = {key: _number(value, f"{name}: retention.{key}", low=0.001) for key, value in table.items()}
    try:
        return RetentionPolicy(**values)
    except UsageError as exc:
        raise UsageError(f"{name}: {exc}") from None


def _renewal(data: Mapping[str, Any], name: str, base_dir: Path | None) -> RenewalSettings | None:
    if "renewal" not in data:
        return None
    table = _table(data, "renewal", name, {"certificates", "interval"})
    path = table.get("certificates")
    if not isinstance(path, str) or not path.strip():
        raise UsageError(f"{name}: renewal.certificates must be the path of the managed-certificates file")
    resolved = Path(path).expanduser()
    if not resolved.is_absolute() and base_dir is not None:
        resolved = base_dir / resolved
    interval = parse_duration(table["interval"], f"{name}: renewal.interval") if "interval" in table else 3600.0
    return RenewalSettings(certificates=str(resolved), interval_s=interval)


def parse_config(data: Mapping[str, Any], name: str, *, base_dir: Path | None = None) -> LoadedConfig:
    if not isinstance(data, Mapping):
        raise UsageError(f"{name}: expected a table at the top")
    unknown = sorted(set(data) - TOP_KEYS)
    if unknown:
        raise UsageError(f"{name}: unknown section(s) {', '.join(unknown)} (known: {', '.join(sorted(TOP_KEYS))})")
    try:
        receivers = tuple(receivers_from_mapping(data, base_dir=base_dir))
    except UsageError as exc:
        raise UsageError(f"{name}: {exc}") from None
    config = MonitorConfig(probes=_probes(data, name), alerts=_alerts(data, name),
                           routes=_routes(data, name, {r.name for r in receivers}),
                           retention=_retention(data, name), source=name, renewal=_renewal(data, name, base_dir))
    return LoadedConfig(config, receivers)


def load_config(path: Path | None) -> LoadedConfig:
    """The config at ``path`` (``.toml``, ``.yaml``/``.yml``); the defaults when None."""
    if path is None:
        return LoadedConfig()
    return parse_config(read_config_file(path), str(path), base_dir=path.parent)


def read_config_file(path: Path) -> Any:
    """The parsed document of a ``.toml`` or ``.yaml``/``.yml`` config file; a one-line UsageError naming the
    file when it cannot be read or parsed (shared by the monitor and the distributed settings)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read: {exc}") from None
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise UsageError(f"{path}: not YAML: {exc}") from None
    else:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise UsageError(f"{path}: not TOML: {exc}") from None
    return data
