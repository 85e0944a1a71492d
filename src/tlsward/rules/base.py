"""Building findings from the catalogue, and the remediation text shared by rules."""

from __future__ import annotations

from dataclasses import dataclass

from tlsward.model.findings import Finding, Remediation, Severity, spec_for
from tlsward.model.target import Target


def finding(fid: str, evidence: str, *, fix: str, confirm: str, severity: Severity | None = None,
            title: str | None = None) -> Finding:
    spec = spec_for(fid)
    return Finding(fid, severity if severity is not None else spec.severity, title or spec.title, evidence,
                   Remediation(confirm=confirm, fix=fix))


@dataclass(frozen=True, slots=True)
class Context:
    """What every rule may read besides the result: the target and the commands to confirm."""

    target: Target
    address: str | None

    @property
    def s_client(self) -> str:
        """The ``openssl s_client`` line that reproduces our connection."""
        host = self.address or self.target.host
        connect = f"[{host}]:{self.target.port}" if ":" in host else f"{host}:{self.target.port}"
        parts = ["openssl s_client", f"-connect {connect}"]
        if self.target.sni:
            parts.append(f"-servername {self.target.sni}")
        if self.target.starttls is not None:
            parts.append(f"-starttls {self.target.starttls}")
        return " ".join(parts) + " </dev/null"

    def show_certs(self) -> str:
        return self.s_client.replace(" </dev/null", " -showcerts </dev/null")
