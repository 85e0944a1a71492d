"""What each drill does to the built-in lab, phase by phase, and how its monitor is set up.

A scenario's ``setup`` prepares the monitor (trust anchors, policy, routes, extra alert rules) and writes what it
needs into the work directory; ``actions`` maps each phase of the drill (see :mod:`tlsward.drills.catalogue`)
to what the drill changes on the loopback endpoint or PKI responder at the start of that phase.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization

from tlsward.ca.authority import CertificateAuthority, IssuedCertificate
from tlsward.drills.harness import Harness, MonitorSetup, inventory_url
from tlsward.drills.loopback import Deployment, LoopbackLab
from tlsward.drills.pki import DRILL_HOST, Leaf
from tlsward.engine import ScanOptions
from tlsward.lab.pki import LAB_DOMAIN, generate_key, write_private
from tlsward.model.alerts import Route
from tlsward.model.drills import Observation
from tlsward.model.lifecycle import RenewalSettings
from tlsward.model.monitor import AlertSettings, MonitorConfig, ProbeSettings, RouteRule
from tlsward.rules.truststores import rotation_plan
from tlsward.storage import open_store
from tlsward.x509.truststores import read_bundle, root_info

__all__ = ["LAB_RECEIVERS", "SCENARIOS", "LabScenario", "lab_config"]

PAGER, TICKETS = "oncall-pager", "team-tickets"
LAB_RECEIVERS = (PAGER, TICKETS)
LAB_ROUTES = (RouteRule((PAGER,), (("route", "page"),)), RouteRule((TICKETS,), (("route", "ticket"),)))
PROBE_TIMEOUT = 3.0
# Mozilla intermediate, less what the lab's Python server cannot do (choose groups, staple OCSP): the baseline
# is then clean and the only violation a regression can add is the one the drill injects.
DRILL_POLICY = ('extends = "mozilla-intermediate"\ngroups = []\nhsts_required = false\n'
                "ocsp_stapling_required = false\n")
ROUTES_SETTING = f"routes: route=page -> {PAGER}, route=ticket -> {TICKETS} (captured in memory)"

Action = Callable[[LoopbackLab, Harness], None]


def lab_config(ca_files: tuple[str, ...], *, policy: str | None = None,
               extra_findings: tuple[tuple[str, Route], ...] = ()) -> MonitorConfig:
    """The monitor config of a lab drill: defaults, except the lab's trust anchors, no jitter, 3 s probes,
    deep scans only when a phase asks, the drill's routes, and any extra finding alerts."""
    alerts = AlertSettings()
    if extra_findings:
        alerts = replace(alerts, finding_routes=(*alerts.finding_routes, *extra_findings))
    probes = ProbeSettings(timeout_s=PROBE_TIMEOUT, jitter=0.0, deep_interval_s=0.0, ca_files=ca_files, policy=policy)
    return MonitorConfig(probes=probes, alerts=alerts, routes=LAB_ROUTES, source="tlsward drill (lab)")


def _base_settings(ca_file: Path) -> tuple[str, ...]:
    return (f"probes.ca_files = [{ca_file.name}] (the drill CA's root)", "probes.timeout = 3s, jitter 0",
            "probes.deep_interval = off (deep scans only in phases that say so)", ROUTES_SETTING)


@dataclass
class LabScenario:
    setup: Callable[[LoopbackLab, Path], MonitorSetup]
    actions: Mapping[str, Action]
    state: dict[str, Leaf] = field(default_factory=dict)


def _simple_setup(lab: LoopbackLab, work: Path) -> MonitorSetup:
    ca = lab.write_bundle("lab-root", ("root",))
    return MonitorSetup(lab_config((str(ca),)), LAB_RECEIVERS, settings=_base_settings(ca))


def _deploy(lab: LoopbackLab, h: Harness, deployment: Deployment, summary: str) -> None:
    lab.deploy(deployment)
    h.action(summary)


# -- cert-expiring ------------------------------------------------------------------------------------------------

RENEWED = "drill-endpoint"        # the managed certificate's name in the drill's certificates.toml


def _write_served(path: Path, issued: IssuedCertificate, key: bytes) -> None:
    """What an admin (or broken automation) does by hand: put a certificate and its key where the server reads."""
    (path / "fullchain.pem").write_bytes(issued.fullchain_pem())
    write_private(path / "key.pem", key)


def _cert_expiring() -> LabScenario:
    """The endpoint is a file-configured server (fullchain.pem + key.pem, reloaded over its control URL) whose
    certificates come from a tlsward internal CA; the renewal phase turns on the monitor's ``[renewal]``, and the
    monitor's own ``tlsward renew --all`` renews, deploys, reloads and verifies."""
    served: dict[str, Path] = {}

    def issue_and_serve(lab: LoopbackLab, h: Harness, *, lifetime_days: float, age_days: float) -> str:
        key = generate_key("p256")
        with open_store(inventory_url(served["work"])) as store:
            ca = CertificateAuthority.open(served["ca"], store, passphrase=None)
            issued = ca.issue(names=(DRILL_HOST,), public_key=key.public_key(), requester="drill",
                              lifetime=dt.timedelta(days=lifetime_days),
                              now=dt.datetime.now(dt.UTC) - dt.timedelta(days=age_days))
        _write_served(served["live"], issued, key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        lab.reload_files()
        leaf = issued.certificate
        return (f"expires {leaf.not_valid_after_utc:%Y-%m-%d %H:%M} UTC, "
                f"sha256 {leaf.fingerprint(hashes.SHA256()).hex()[:16]}")

    def setup(lab: LoopbackLab, work: Path) -> MonitorSetup:
        served["work"], served["ca"] = work, work / "internal-ca"
        ca_dir = served["ca"]
        served["live"] = live = work / "served"
        live.mkdir(parents=True, exist_ok=True)
        with open_store(inventory_url(work)) as store:
            ca = CertificateAuthority.init(ca_dir, store, name="tlsward drill", passphrase=None,
                                           root_passphrase=b"drill root passphrase (throwaway)")
        root = work / "internal-ca-root.pem"
        root.write_bytes(ca.ca_bundle_pem())
        reload_url = lab.configure_files(live / "fullchain.pem", live / "key.pem")
        served["certificates"] = certificates = work / "certificates.toml"
        certificates.write_text(CERTIFICATES_TOML.format(
            name=RENEWED, host=DRILL_HOST, ca_dir=ca_dir, live=live, reload=json.dumps(reload_command(reload_url)),
            target=f"{lab.host}:{lab.port}", trust=root), encoding="utf-8")
        config = lab_config((str(root),))
        return MonitorSetup(config, LAB_RECEIVERS, settings=(
            f"probes.ca_files = [{root.name}] (the drill's tlsward internal CA)", *_base_settings(root)[1:],
            "renewal: off until the renewal phase; then [renewal] certificates = certificates.toml (source = ca, "
            "deploy to served/, reload over the endpoint's control URL, verify the endpoint)"))

    def baseline(lab: LoopbackLab, h: Harness) -> None:
        h.action("serving a 90-day certificate from the internal CA with 89 days left ("
                 + issue_and_serve(lab, h, lifetime_days=90, age_days=1) + ")")

    def seven_days(lab: LoopbackLab, h: Harness) -> None:
        h.action("serving a 36-day certificate with 6.5 days left, renewal not running ("
                 + issue_and_serve(lab, h, lifetime_days=36, age_days=29.5) + ")")

    def three_days(lab: LoopbackLab, h: Harness) -> None:
        h.action("the monitor's clock now runs 4 days ahead: 2.5 days left on the served certificate")

    def renewal(lab: LoopbackLab, h: Harness) -> None:
        h.setup = replace(h.setup, config=replace(
            h.setup.config, renewal=RenewalSettings(certificates=str(served["certificates"]), interval_s=3600.0)))
        h.action(f"renewal turned on: the monitor runs `tlsward renew --all` over {served['certificates'].name} "
                 "before its next probe")

    return LabScenario(setup, {"baseline": baseline, "seven-days": seven_days, "three-days": three_days,
                               "renewal": renewal})


def reload_command(url: str) -> list[str]:
    """``POST url`` with this Python: the drill endpoint's reload, as `nginx -s reload` is nginx's."""
    return [sys.executable, "-c", "import sys, urllib.request; urllib.request.urlopen(urllib.request.Request("
            "sys.argv[1], method='POST'), timeout=10)", url]


# The drill's managed certificate: issued by the internal CA, written where the endpoint reads it, reloaded over
# the endpoint's control URL (as `nginx -s reload` would be), and verified on the endpoint against the CA's root.
CERTIFICATES_TOML = """\
[[certificate]]
name = "{name}"
names = ["{host}"]
source = "ca"

[certificate.ca]
dir = "{ca_dir}"
lifetime = "90d"

[certificate.deploy]
fullchain = "{live}/fullchain.pem"
key = "{live}/key.pem"
reload = {{ command = {reload} }}

[certificate.verify]
endpoints = [{{ target = "{target}", sni = "{host}" }}]
trust = "{trust}"
timeout = "20s"
"""


# -- intermediate-missing, hostname-mismatch ----------------------------------------------------------------------


def _intermediate_missing() -> LabScenario:
    scenario = LabScenario(_simple_setup, {})

    def baseline(lab: LoopbackLab, h: Harness) -> None:
        scenario.state["leaf"] = leaf = lab.pki.issue()
        _deploy(lab, h, Deployment(leaf), "serving leaf + intermediate")

    def fault(lab: LoopbackLab, h: Harness) -> None:
        _deploy(lab, h, Deployment(scenario.state["leaf"], full_chain=False),
                "serving the leaf alone (cert.pem instead of fullchain.pem)")

    def revert(lab: LoopbackLab, h: Harness) -> None:
        _deploy(lab, h, Deployment(scenario.state["leaf"]), "serving leaf + intermediate again")

    scenario.actions = {"baseline": baseline, "fault": fault, "revert": revert}
    return scenario


def _hostname_mismatch() -> LabScenario:
    scenario = LabScenario(_simple_setup, {})

    def baseline(lab: LoopbackLab, h: Harness) -> None:
        scenario.state["leaf"] = leaf = lab.pki.issue()
        _deploy(lab, h, Deployment(leaf), f"serving a certificate for {DRILL_HOST}")

    def fault(lab: LoopbackLab, h: Harness) -> None:
        other = f"other-service.{LAB_DOMAIN}"
        _deploy(lab, h, Deployment(lab.pki.issue((other,))), f"serving {other}'s certificate on {DRILL_HOST}")

    def revert(lab: LoopbackLab, h: Harness) -> None:
        _deploy(lab, h, Deployment(scenario.state["leaf"]), f"serving the certificate for {DRILL_HOST} again")

    scenario.actions = {"baseline": baseline, "fault": fault, "revert": revert}
    return scenario


# -- tls10-regression -----------------------------------------------------------------------------------------------


def _tls10_regression() -> LabScenario:
    scenario = LabScenario(_simple_setup, {})

    def setup(lab: LoopbackLab, work: Path) -> MonitorSetup:
        ca = lab.write_bundle("lab-root", ("root",))
        policy = work / "drill-policy.toml"
        policy.write_text(DRILL_POLICY)
        return MonitorSetup(lab_config((str(ca),), policy=str(policy)), LAB_RECEIVERS, settings=(
            *_base_settings(ca), "probes.policy = mozilla-intermediate without the groups, HSTS and OCSP-stapling "
            "rules (drill-policy.toml)", "every probe is a deep scan (monitor --deep)"))

    def baseline(lab: LoopbackLab, h: Harness) -> None:
        scenario.state["leaf"] = leaf = lab.pki.issue()
        _deploy(lab, h, Deployment(leaf), "serving TLS 1.2 and 1.3, Mozilla intermediate suites")

    def fault(lab: LoopbackLab, h: Harness) -> None:
        _deploy(lab, h, Deployment(scenario.state["leaf"]).with_tls10(),
                "TLS 1.0 and 1.1 enabled again, with SHA-1 CBC suites at SECLEVEL=0")

    def revert(lab: LoopbackLab, h: Harness) -> None:
        _deploy(lab, h, Deployment(scenario.state["leaf"]), "rolled back to TLS 1.2 and 1.3")

    scenario.setup = setup
    scenario.actions = {"baseline": baseline, "fault": fault, "revert": revert}
    return scenario


# -- ca-rotation ------------------------------------------------------------------------------------------------------

LEGACY, UPDATED = "legacy-clients", "updated-clients"


def _ca_rotation() -> LabScenario:
    scenario = LabScenario(_simple_setup, {})
    bundles: dict[str, Path] = {}

    def setup(lab: LoopbackLab, work: Path) -> MonitorSetup:
        bundles[LEGACY] = lab.write_bundle(LEGACY, ("root",))                 # the old bundle
        bundles[UPDATED] = lab.write_bundle(UPDATED, ("root", "root-g2"))     # old and new side by side

        def options() -> ScanOptions:
            host_stores = []
            for store_id, path in bundles.items():
                loaded = read_bundle(path, store_id=store_id, label=store_id)
                if loaded.trust is not None:
                    host_stores.append(loaded.trust)
            return ScanOptions(timeout=PROBE_TIMEOUT, ca_files=(str(bundles[UPDATED]),), revocation="off",
                               host_stores=tuple(host_stores))

        config = lab_config((str(bundles[UPDATED]),), extra_findings=(("trust.store_fails", Route.PAGE),))
        return MonitorSetup(config, LAB_RECEIVERS, scan_options=options, settings=(
            f"probes.ca_files = [{UPDATED}.pem] (old and new roots side by side)", "probes.timeout = 3s, jitter 0",
            f"probes validate against both client bundles ({LEGACY}: old root only; {UPDATED}: old + new) as "
            "host trust stores (scan --all-stores), through the Monitor's scan options",
            "alerts.findings: + trust.store_fails = page", ROUTES_SETTING))

    def baseline(lab: LoopbackLab, h: Harness) -> None:
        _deploy(lab, h, Deployment(lab.pki.issue(ca="intermediate")),
                "serving a certificate from the old intermediate (tlsward lab Intermediate CA)")

    def new_ca(lab: LoopbackLab, h: Harness) -> None:
        h.action(f"new root and intermediate issued (G2); {UPDATED}.pem carries old and new roots, "
                 f"{LEGACY}.pem the old root only")
        infos = [read_bundle(path, store_id=store_id, label=store_id).info for store_id, path in bundles.items()]
        plan = rotation_plan(infos, [root_info(lab.pki.cas["root"].cert)], [root_info(lab.pki.cas["root-g2"].cert)],
                             new_pem="root-g2.pem")
        for step in plan.steps:
            for broken in step.breaks:
                h.observe(_prediction(h, broken.store_id, step.name, f"{broken.store_id} breaks at {step.name}: "
                                      f"{broken.reason}; fix: {broken.fix}"))
            h.action(f"rotation plan, step {step.name}: breaks "
                     f"{', '.join(b.store_id for b in step.breaks) or 'nothing'}")

    def switch(lab: LoopbackLab, h: Harness) -> None:
        _deploy(lab, h, Deployment(lab.pki.issue(ca="intermediate-g2")),
                "serving a certificate from the new intermediate (tlsward lab Intermediate CA G2)")

    def legacy_updated(lab: LoopbackLab, h: Harness) -> None:
        bundles[LEGACY] = lab.write_bundle(LEGACY, ("root", "root-g2"))
        h.action(f"{LEGACY}.pem now carries the new root too")

    scenario.setup = setup
    scenario.actions = {"baseline": baseline, "new-ca": new_ca, "switch": switch, "legacy-updated": legacy_updated}
    return scenario


def _prediction(h: Harness, store_id: str, step: str, summary: str) -> Observation:
    return Observation("prediction", h.phase_name, h.now_s(), store_id, stage=step, summary=summary)


# -- revocation-down ------------------------------------------------------------------------------------------------


def _revocation_down() -> LabScenario:
    def setup(lab: LoopbackLab, work: Path) -> MonitorSetup:
        ca = lab.write_bundle("lab-root", ("root",))

        config = lab_config((str(ca),), extra_findings=(("cert.revocation_unknown", Route.PAGE),))
        config = replace(config, probes=replace(config.probes, revocation="hard"))
        return MonitorSetup(config, LAB_RECEIVERS, settings=(
            *_base_settings(ca), "probes.revocation = hard", "alerts.findings: + cert.revocation_unknown = page"))

    def baseline(lab: LoopbackLab, h: Harness) -> None:
        _deploy(lab, h, Deployment(lab.pki.issue()), f"serving a certificate; OCSP and CRL at {lab.pki.pki_url}")

    def fault(lab: LoopbackLab, h: Harness) -> None:
        lab.stop_responder()
        h.action(f"PKI responder stopped: {lab.pki.pki_url} refuses connections (OCSP and CRL)")

    def revert(lab: LoopbackLab, h: Harness) -> None:
        lab.start_responder()
        h.action("PKI responder started again")

    return LabScenario(setup, {"baseline": baseline, "fault": fault, "revert": revert})


SCENARIOS: dict[str, Callable[[], LabScenario]] = {
    "cert-expiring": _cert_expiring, "intermediate-missing": _intermediate_missing,
    "hostname-mismatch": _hostname_mismatch, "tls10-regression": _tls10_regression, "ca-rotation": _ca_rotation,
    "revocation-down": _revocation_down,
}
