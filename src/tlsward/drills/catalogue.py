"""The drills: each with the situation it reproduces, its written expectation, the runbooks it exercises, and
the phases and expectations it is judged by, against the built-in lab and against a staging target.

In the lab, every drill starts from a healthy endpoint (the baseline must stay quiet: no false alarm), injects
the fault, and, where the fault can be undone, reverts it and expects the alert to resolve. Against a staging
target the phases are ``baseline`` (the target as it is), ``apply`` (the user's ``--apply`` command injects the
fault) and ``revert`` (``--revert`` removes it).
"""

from __future__ import annotations

from tlsward.model.drills import DrillSpec, Expectation, PhaseSpec, Runbook

__all__ = ["DRILLS", "drill_named"]


def _staging(*, deep: bool = False) -> tuple[PhaseSpec, ...]:
    return (PhaseSpec("baseline", "probe the target as it is", deep=deep),
            PhaseSpec("apply", "run the --apply command (inject the fault)", fault=True, deep=deep),
            PhaseSpec("revert", "run the --revert command (remove the fault)", deep=deep))


def _quiet(phase: str = "baseline") -> Expectation:
    return Expectation("quiet", phase)


def _detect(finding_id: str, phase: str) -> Expectation:
    return Expectation("detection", phase, finding_id)


def _alert(rule: str, phase: str, *, route: str | None = None, stage: str | None = None,
           notification: str = "firing") -> Expectation:
    return Expectation("alert", phase, rule, notification=notification, route=route, stage=stage)


CERT_EXPIRING = DrillSpec(
    name="cert-expiring",
    title="Certificate expiring: the 7- and 3-day alerts, then tlsward's renewal fires",
    situation="A short-lived certificate is about to expire because its renewal silently stopped running.",
    expectation=(
        "With 6.5 days left, a scan reports cert.expiring and the cert.expiring alert pages (stage 7d). Four days "
        "later, with 2.5 days left, the same alert escalates and pages again (stage 3d). When renewal is turned "
        "on, the monitor's `tlsward renew --all` renews the certificate from the internal CA, deploys it, reloads "
        "the endpoint and verifies it serves the new one; the alert resolves and nothing new fires."),
    runbooks=(Runbook("cert.expiring", "renew and deploy; find out why automatic renewal did not run"),
              Runbook("cert.renewal_failed", "what to do when the renewal itself fails (it must not, here)")),
    phases=(
        PhaseSpec("baseline", "serve a healthy 90-day certificate from tlsward's internal CA"),
        PhaseSpec("seven-days", "deploy a 36-day certificate from the internal CA with 6.5 days left (the shortest "
                  "lifetime for which the 7- and 3-day thresholds are not scaled down); renewal is not running",
                  fault=True),
        PhaseSpec("three-days", "four days pass: the monitor's clock runs 4 days ahead; nobody renews",
                  clock_offset_days=4.0),
        PhaseSpec("renewal", "renewal turned on: the monitor's [renewal] runs `tlsward renew --all`, which renews "
                  "(2/3 of the lifetime has passed), deploys, reloads and verifies", clock_offset_days=4.0),
    ),
    expectations=(
        _quiet(),
        _detect("cert.expiring", "seven-days"),
        _alert("cert.expiring", "seven-days", route="page", stage="7d"),
        _alert("cert.expiring", "three-days", route="page", stage="3d"),
        Expectation("renewal", "renewal", "drill-endpoint"),
        _alert("cert.expiring", "renewal", notification="resolved"),
        _quiet("renewal"),
    ),
    staging_phases=_staging(),
    staging_expectations=(
        _quiet(), _detect("cert.expiring", "apply"), _alert("cert.expiring", "apply"),
        _alert("cert.expiring", "revert", notification="resolved"),
    ),
    staging_hint=(
        "--apply deploys a certificate with less than 7 days left (e.g. a short-lived one from a test CA); "
        "--revert deploys a fresh one"),
    notes=("The endpoint is configured from files (fullchain.pem, key.pem) and reloaded over its control URL, as "
           "nginx is by `nginx -s reload`; the renewal is tlsward's own (docs/lifecycle.md), not the drill's.",
           "Scans judge expiry by the real time; the 3-day stage is reached by running the monitor's clock ahead, "
           "as the alert rules allow (the certificate itself does not change)."),
)

INTERMEDIATE_MISSING = DrillSpec(
    name="intermediate-missing",
    title="Intermediate removed from the served chain",
    situation="A deploy ships cert.pem instead of fullchain.pem: browsers cope through AIA, curl, Java, Go and "
              "Python clients fail.",
    expectation="After the deploy, a scan reports chain.incomplete and the chain.incomplete alert opens a ticket; "
                "when the full chain is served again, the alert resolves.",
    runbooks=(Runbook("chain.incomplete", "serve the full chain (fullchain.pem) and reload"),),
    phases=(
        PhaseSpec("baseline", "serve the leaf with its intermediate (full chain)"),
        PhaseSpec("fault", "a deploy serves the leaf alone (the intermediate is dropped)", fault=True),
        PhaseSpec("revert", "the full chain is served again"),
    ),
    expectations=(
        _quiet(), _detect("chain.incomplete", "fault"), _alert("chain.incomplete", "fault", route="ticket"),
        _alert("chain.incomplete", "revert", notification="resolved"),
    ),
    staging_phases=_staging(),
    staging_expectations=(
        _quiet(), _detect("chain.incomplete", "apply"), _alert("chain.incomplete", "apply"),
        _alert("chain.incomplete", "revert", notification="resolved"),
    ),
    staging_hint=(
        "--apply serves the leaf without its intermediate (cert.pem instead of fullchain.pem) and reloads; "
        "--revert restores fullchain.pem"),
)

HOSTNAME_MISMATCH = DrillSpec(
    name="hostname-mismatch",
    title="Hostname mismatch after a deploy",
    situation="A deploy installs another service's certificate on this endpoint.",
    expectation="After the deploy, a scan reports name.mismatch and the name.mismatch alert pages; when the right "
                "certificate is back, the alert resolves.",
    runbooks=(Runbook("name.mismatch", "find which server block answers this name and serve its certificate"),),
    phases=(
        PhaseSpec("baseline", "serve a certificate for the endpoint's name"),
        PhaseSpec("fault", "a deploy installs other-service.lab.tlsward.test's certificate here", fault=True),
        PhaseSpec("revert", "the endpoint's own certificate is deployed again"),
    ),
    expectations=(
        _quiet(), _detect("name.mismatch", "fault"), _alert("name.mismatch", "fault", route="page"),
        _alert("name.mismatch", "revert", notification="resolved"),
    ),
    staging_phases=_staging(),
    staging_expectations=(
        _quiet(), _detect("name.mismatch", "apply"), _alert("name.mismatch", "apply"),
        _alert("name.mismatch", "revert", notification="resolved"),
    ),
    staging_hint=(
        "--apply deploys another name's certificate and reloads; --revert restores the right one"),
)

TLS10_REGRESSION = DrillSpec(
    name="tls10-regression",
    title="TLS 1.0 turned back on (policy regression)",
    situation="Someone re-enables TLS 1.0 and 1.1 (and the SHA-1 CBC suites they need) for one old client.",
    expectation="The next deep scan reports protocol.tls10 and policy.violation, and both alerts open tickets; when "
                "the change is rolled back, the next deep scan resolves them. A quick probe negotiates TLS 1.3 and "
                "cannot see this: detection comes from the deep scans.",
    runbooks=(Runbook("protocol.tls10", "turn TLS 1.0 off again and find the client that needed it"),
              Runbook("policy.violation", "the policy rule the change broke")),
    phases=(
        PhaseSpec("baseline", "serve TLS 1.2 and 1.3 with Mozilla intermediate suites", deep=True),
        PhaseSpec("fault", "TLS 1.0 and 1.1 are enabled again (minimum version TLSv1, SECLEVEL=0 suites)",
                  fault=True, deep=True),
        PhaseSpec("revert", "the change is rolled back (TLS 1.2 and 1.3 only)", deep=True),
    ),
    expectations=(
        _quiet(), _detect("protocol.tls10", "fault"), _detect("policy.violation", "fault"),
        _alert("protocol.tls10", "fault", route="ticket"), _alert("policy.violation", "fault", route="ticket"),
        _alert("protocol.tls10", "revert", notification="resolved"),
    ),
    staging_phases=_staging(deep=True),
    staging_expectations=(
        _quiet(), _detect("protocol.tls10", "apply"), _alert("protocol.tls10", "apply"),
        _alert("protocol.tls10", "revert", notification="resolved"),
    ),
    staging_hint=(
        "--apply enables TLS 1.0 (nginx: ssl_protocols TLSv1 TLSv1.2 TLSv1.3) and reloads; --revert restores "
        "the protocols"),
)

CA_ROTATION = DrillSpec(
    name="ca-rotation",
    title="CA rotation: new intermediate and root, old and new trust bundles side by side",
    situation="The internal CA is replaced by a new root and intermediate. Updated clients carry a bundle with "
              "both roots side by side; legacy clients still carry the old bundle (old root only).",
    expectation="Before the switch, the rotation plan names the legacy clients' store as breaking when the issuer "
                "switches. After the switch, a scan validating against both bundles reports trust.store_fails "
                "(the old bundle no longer validates) and it pages, and the issuer change opens a chain.changed "
                "ticket. Once the legacy bundle gets the new root, trust.store_fails resolves.",
    runbooks=(Runbook("trust.store_fails", "add the new root to each failing store before (or right after) the "
                                           "switch"),
              Runbook("chain.untrusted", "what clients holding only the old root see once the switch happens")),
    phases=(
        PhaseSpec("baseline", "serve a certificate from the old intermediate; both client bundles trust it"),
        PhaseSpec("new-ca", "issue the new root and intermediate (G2), distribute the side-by-side bundle to "
                  "updated clients, and ask tlsward for the rotation plan over both bundles"),
        PhaseSpec("switch", "the endpoint switches to a certificate from the new intermediate", fault=True),
        PhaseSpec("legacy-updated", "the legacy clients' bundle gets the new root"),
    ),
    expectations=(
        _quiet(), Expectation("prediction", "new-ca", "legacy-clients"), _quiet("new-ca"),
        _detect("trust.store_fails", "switch"), _alert("trust.store_fails", "switch", route="page"),
        _alert("chain.changed", "switch", route="ticket"),
        _alert("trust.store_fails", "legacy-updated", notification="resolved"),
    ),
    staging_phases=_staging(),
    staging_expectations=(_quiet(), _alert("chain.changed", "apply")),
    staging_hint=(
        "--apply deploys a certificate from the new CA; give the client bundles with --store and the roots "
        "with --old-root/--new-root to check the rotation plan and trust.store_fails"),
    notes=("trust.store_fails alerts because the drill routes it (alerts.findings: trust.store_fails = page, a "
           "monitor config setting); by default the monitor does not alert on it.",),
)

REVOCATION_DOWN = DrillSpec(
    name="revocation-down",
    title="OCSP/CRL responder down",
    situation="The CA's OCSP responder and CRL server stop answering (connection refused).",
    expectation="With revocation checked in hard mode, the next scan reports cert.revocation_unknown and its alert "
                "pages; when the responder is back, the alert resolves.",
    runbooks=(Runbook("cert.revocation_unknown", "make OCSP/CRL reachable again, or staple OCSP responses"),),
    phases=(
        PhaseSpec("baseline", "serve a certificate whose OCSP responder and CRL answer"),
        PhaseSpec("fault", "stop the PKI responder: OCSP and CRL URLs refuse connections", fault=True),
        PhaseSpec("revert", "start the PKI responder again"),
    ),
    expectations=(
        _quiet(), _detect("cert.revocation_unknown", "fault"),
        _alert("cert.revocation_unknown", "fault", route="page"),
        _alert("cert.revocation_unknown", "revert", notification="resolved"),
    ),
    staging_phases=_staging(),
    staging_expectations=(
        _quiet(), _detect("cert.revocation_unknown", "apply"), _alert("cert.revocation_unknown", "apply"),
        _alert("cert.revocation_unknown", "revert", notification="resolved"),
    ),
    staging_hint=(
        "--apply blocks the OCSP/CRL URLs from this host (e.g. an iptables REJECT rule); --revert unblocks "
        "them"),
    notes=("`tlsward monitor` checks revocation only with `[probes] revocation = \"hard\"` (the default is off, "
           "which neither detects nor alerts on this), and cert.revocation_unknown alerts only when listed in "
           "[alerts.findings]: the drill sets both.",),
)

DRILLS: tuple[DrillSpec, ...] = (CERT_EXPIRING, INTERMEDIATE_MISSING, HOSTNAME_MISMATCH, TLS10_REGRESSION,
                                 CA_ROTATION, REVOCATION_DOWN)


def drill_named(name: str) -> DrillSpec:
    for drill in DRILLS:
        if drill.name == name:
            return drill
    raise KeyError(name)
