"""Is what is on disk what is served? For an endpoint whose server config discovery linked to certificate
files, compare the leaf in each file with the leaf the endpoint presented. Used by
``tlsward inventory discover configs --check``, ``tlsward scan --save`` and the monitor."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from tlsward.model.certificate import CertificateFacts
from tlsward.model.findings import Finding
from tlsward.model.inventory import EndpointFileRecord
from tlsward.model.scan import ScanResult
from tlsward.rules.base import Context
from tlsward.rules.deployment import not_deployed
from tlsward.storage import Store
from tlsward.x509.files import parse_file

MAX_FILE_BYTES = 8 << 20


def file_leaf(path: str) -> CertificateFacts | None:
    """The leaf certificate in a certificate file (the first non-CA certificate, else the first); None when
    the file cannot be read or holds no certificate (discovery reports those files on its own)."""
    try:
        with Path(path).open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError:
        return None
    if len(data) > MAX_FILE_BYTES:
        return None
    found = parse_file(path, data).certificates
    leaves = [c.facts for c in found if not c.facts.is_ca]
    return leaves[0] if leaves else (found[0].facts if found else None)


def deployment_findings(result: ScanResult, links: list[EndpointFileRecord], now: dt.datetime) -> list[Finding]:
    """``deploy.not_deployed`` for each linked file whose leaf is not the presented leaf. Nothing to say when
    the endpoint presented no certificate (the scan has its own findings then) or has no linked files."""
    if not result.chain or not links:
        return []
    served = result.chain[0]
    ctx = Context(result.target, result.address)
    findings = []
    for link in links:
        on_disk = file_leaf(link.certificate_path)
        if on_disk is None:
            continue
        finding = not_deployed(ctx, served, link, on_disk, now)
        if finding is not None:
            findings.append(finding)
    return findings


def check_deployment(store: Store, result: ScanResult, now: dt.datetime | None = None) -> list[Finding]:
    """The deployment findings for a scan of an inventory endpoint (its links read from ``store``)."""
    return deployment_findings(result, store.endpoint_files(str(result.target)), now or dt.datetime.now(dt.UTC))
