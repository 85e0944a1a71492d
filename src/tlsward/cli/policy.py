"""``tlsward policy list|show``: the shipped policy profiles, and every rule of one profile or policy file."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from tlsward.model.policy import PolicyProfile

app = typer.Typer(help="Policy profiles: the shipped Mozilla guidelines and your own TOML/YAML files "
                       "(docs/policy.md).", no_args_is_help=True)
out = Console()

RULE_HELP = {
    "versions": "allowed protocol versions",
    "suites": "allowed cipher suites (TLS 1.3 ones too)",
    "forbidden_suites": "cipher suites never allowed",
    "groups": "allowed key-exchange groups",
    "key_types": "allowed leaf key types",
    "curves": "allowed curves of an EC leaf key",
    "min_rsa_bits": "minimum leaf RSA key size",
    "min_ec_bits": "minimum leaf EC key size",
    "min_dh_bits": "minimum DHE parameter size",
    "signature_algorithms": "allowed leaf signature algorithms",
    "max_cert_lifetime_days": "maximum leaf validity (days)",
    "expiry_thresholds": "days-left thresholds for cert.expiring",
    "hsts_required": "HTTPS answers carry HSTS",
    "hsts_min_max_age": "minimum HSTS max-age (seconds)",
    "ocsp_stapling_required": "OCSP response stapled (leaf with an OCSP URL)",
    "allowed_issuers": "allowed leaf issuers (substring or RFC 4514 attributes)",
    "server_preference_required": "server imposes its suite order (--deep)",
    "forward_secrecy_required": "every accepted suite has forward secrecy",
    "aead_required": "every accepted suite is AEAD",
}


def _value(value: object) -> str:
    """How a rule reads in the table; "no rule" for the empty values."""
    if isinstance(value, tuple):
        return "\n".join(str(v) for v in value) if value else "[dim]no rule[/]"
    if isinstance(value, bool):
        return "yes" if value else "[dim]no rule[/]"
    if isinstance(value, int) and value == 0:
        return "[dim]no rule[/]"
    if isinstance(value, int):
        return f"{value} ({value / 86400:.0f} days)" if value >= 86400 else str(value)
    return str(value)


@app.command("list")
def list_(as_json: Annotated[bool, typer.Option("--json", help="One JSON array of {name, description, "
                                                "source}")] = False) -> None:
    """The profiles tlsward ships (use a name with `scan --policy NAME`, or `extends = "NAME"` in a file)."""
    from tlsward.policy.load import shipped_profiles  # lazily: every tlsward command imports this module

    profiles = shipped_profiles()
    if as_json:
        print(json.dumps([{"name": p.name, "description": p.description, "source": p.source}
                          for p in profiles.values()], indent=2))
        return
    table = Table(title="shipped policy profiles (`tlsward policy show NAME` for the rules)")
    for column in ("name", "description", "source"):
        table.add_column(column, overflow="fold")
    for profile in profiles.values():
        table.add_row(profile.name, profile.description, profile.source)
    out.print(table)


@app.command()
def show(
    profile: Annotated[str, typer.Argument(metavar="NAME|FILE", help="A shipped profile name or a .toml/.yaml/.yml "
                                           "policy file")],
    as_json: Annotated[bool, typer.Option("--json", help="The profile as one JSON object")] = False,
) -> None:
    """Every rule of a profile, after `extends` and overrides are applied."""
    from tlsward.policy.load import load_policy, profile_as_dict

    loaded = load_policy(profile)
    if as_json:
        print(json.dumps(profile_as_dict(loaded), indent=2))
        return
    print_profile(loaded)


def print_profile(profile: PolicyProfile) -> None:
    out.print(f"[bold]{profile.name}[/]: {profile.description}", highlight=False)
    out.print(f"source: {profile.source}", highlight=False)
    explain = out.width >= 100   # suite names stay whole; on a narrow terminal the meaning column goes
    table = Table()
    table.add_column("rule", no_wrap=True)
    table.add_column("value", no_wrap=True)
    if explain:
        table.add_column("meaning", overflow="fold", ratio=1)
    for rule in PolicyProfile.rule_names():
        cells = [rule, _value(getattr(profile, rule))]
        table.add_row(*cells, *([RULE_HELP.get(rule, "")] if explain else []))
    out.print(table)
