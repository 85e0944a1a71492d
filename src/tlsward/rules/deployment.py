"""Renewed on disk but not deployed: the file a server config points to holds another leaf than the one the
endpoint presents. No peer tool checks this, and it is how "the renewal worked" still ends in an outage."""

from __future__ import annotations

import datetime as dt

from tlsward.model.certificate import CertificateFacts
from tlsward.model.findings import Finding
from tlsward.model.inventory import EndpointFileRecord
from tlsward.rules.base import Context, finding

RELOAD = {"nginx": "nginx -t && nginx -s reload", "apache": "apachectl configtest && systemctl reload apache2",
          "haproxy": "haproxy -c -f /etc/haproxy/haproxy.cfg && systemctl reload haproxy"}


def _describe(facts: CertificateFacts, now: dt.datetime) -> str:
    return (f"{facts.subject} (sha256 {facts.sha256[:16]}..., valid until {facts.not_after:%Y-%m-%d %H:%M} UTC, "
            f"{facts.days_left(now):.1f} days left)")


def not_deployed(ctx: Context, served_leaf: CertificateFacts, link: EndpointFileRecord,
                 file_leaf: CertificateFacts, now: dt.datetime) -> Finding | None:
    """A ``deploy.not_deployed`` finding when ``file_leaf`` (the leaf in ``link.certificate_path``) is not what
    the endpoint serves. Which one is newer decides the wording: an older file means the deploy went the
    other way (someone copied a certificate by hand, or the config points to a stale path)."""
    if served_leaf.sha256 == file_leaf.sha256:
        return None
    newer_on_disk = file_leaf.not_after > served_leaf.not_after
    what = ("was renewed on disk but the server still serves the old certificate" if newer_on_disk else
            "holds an OLDER certificate than the one served: the config may point to a stale path")
    evidence = (f"{link.server} config {link.config_path}:{link.config_line} points to {link.certificate_path}, "
                f"which {what}. File: {_describe(file_leaf, now)}; served: {_describe(served_leaf, now)}")
    reload = RELOAD.get(link.server, "reload the server")
    fix = (f"Reload {link.server} so it loads {link.certificate_path} (`{reload}`), and make the reload part of "
           "the renewal hook (certbot --deploy-hook, lego --run-hook)"
           if newer_on_disk else
           f"Check which file {link.server} really loads ({link.config_path}:{link.config_line}) and point it at "
           "the current certificate")
    confirm = (f"openssl x509 -in {link.certificate_path} -noout -fingerprint -sha256 -enddate; "
               f"{ctx.s_client} 2>/dev/null | openssl x509 -noout -fingerprint -sha256 -enddate")
    return finding("deploy.not_deployed", evidence, fix=fix, confirm=confirm)
