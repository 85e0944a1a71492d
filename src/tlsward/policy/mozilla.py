"""The shipped profiles ``mozilla-modern``, ``mozilla-intermediate`` and ``mozilla-old``, built from Mozilla's
Server Side TLS guidelines as Mozilla publishes them (``data/mozilla-server-side-tls-5.7.json``, a verbatim copy
of https://ssl-config.mozilla.org/guidelines/5.7.json; see ``data/README.md``).

How the guideline keys become rules (docs/policy.md has the same table):

* ``tls_versions`` → ``versions`` (``TLSv1`` → ``TLSv1.0``);
* ``ciphersuites`` + ``ciphers.openssl`` → ``suites``: the TLS 1.3 suites, then the OpenSSL names as IANA names;
* ``tls_curves`` → ``groups`` (``prime256v1`` → ``secp256r1``, ``X25519`` → ``x25519``);
* ``certificate_types`` → ``key_types`` (``ecdsa`` → ``EC``, ``rsa`` → ``RSA``); ``certificate_curves`` → ``curves``;
* ``rsa_key_size`` → ``min_rsa_bits``; ``ecdh_param_size`` → ``min_ec_bits``; ``dh_param_size`` → ``min_dh_bits``;
* ``certificate_signatures`` → ``signature_algorithms``;
* ``maximum_certificate_lifespan`` → ``max_cert_lifetime_days``;
* ``hsts_min_age`` → ``hsts_required`` and ``hsts_min_max_age``; ``ocsp_staple`` → ``ocsp_stapling_required``;
* ``server_preferred_order`` → ``server_preference_required``.

Not used: ``oldest_clients`` (only in the description), ``recommended_certificate_lifespan``, and the
``caddy``/``go``/``iana`` cipher lists (the same suites as ``openssl``; a test checks that they agree).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from importlib import resources
from typing import Any

from tlsward.model.policy import PolicyProfile
from tlsward.policy.names import (
    canonical_curve,
    canonical_group,
    canonical_key_type,
    canonical_signature,
    canonical_suite,
    canonical_version,
)

GUIDELINES = "mozilla-server-side-tls-5.7.json"
LEVELS = ("modern", "intermediate", "old")
PURPOSE = {
    "modern": "services whose clients all support TLS 1.3",
    "intermediate": "general-purpose servers with a variety of clients (recommended for almost all systems)",
    "old": "services that must accept very old clients or libraries (Windows XP IE8, Android 2.3, Java 6)",
}


def guidelines() -> dict[str, Any]:
    """The guidelines JSON shipped with tlsward, parsed."""
    text = resources.files("tlsward.policy").joinpath("data", GUIDELINES).read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


@functools.cache
def mozilla_profiles() -> dict[str, PolicyProfile]:
    """``{"mozilla-modern": ..., "mozilla-intermediate": ..., "mozilla-old": ...}``, built once."""
    data = guidelines()
    version, href = data["version"], data["href"]
    return {f"mozilla-{level}": profile_from_configuration(level, data["configurations"][level], version, href)
            for level in LEVELS}


def _names(values: list[str], canonical: Callable[[str], str | None], what: str, level: str) -> tuple[str, ...]:
    out: list[str] = []
    for value in values:
        name = canonical(value)
        if name is None:  # the shipped data is checked by tests/unit/policy; this is a programming error
            raise ValueError(f"{GUIDELINES} {level}: unknown {what} {value!r}")
        if name not in out:
            out.append(name)
    return tuple(out)


def profile_from_configuration(level: str, config: Mapping[str, Any], version: object, href: str) -> PolicyProfile:
    """One Mozilla configuration (``modern``, ``intermediate`` or ``old``) as a profile."""
    suites = [*config["ciphersuites"], *config["ciphers"]["openssl"]]
    hsts = int(config.get("hsts_min_age") or 0)
    oldest = ", ".join(config.get("oldest_clients", ()))
    return PolicyProfile(
        name=f"mozilla-{level}",
        description=f"Mozilla Server Side TLS {version}, {level}: {PURPOSE.get(level, level)}; "
                    f"oldest supported clients: {oldest}",
        source=href,
        versions=_names(config["tls_versions"], canonical_version, "TLS version", level),
        suites=_names(suites, canonical_suite, "cipher suite", level),
        groups=_names(config["tls_curves"], canonical_group, "group", level),
        key_types=_names(config["certificate_types"], canonical_key_type, "certificate type", level),
        curves=_names(config["certificate_curves"], canonical_curve, "certificate curve", level),
        min_rsa_bits=int(config.get("rsa_key_size") or 0),
        min_ec_bits=int(config.get("ecdh_param_size") or 0),
        min_dh_bits=int(config.get("dh_param_size") or 0),
        signature_algorithms=_names(config["certificate_signatures"], canonical_signature, "signature", level),
        max_cert_lifetime_days=int(config.get("maximum_certificate_lifespan") or 0),
        hsts_required=hsts > 0,
        hsts_min_max_age=hsts,
        ocsp_stapling_required=bool(config.get("ocsp_staple")),
        server_preference_required=bool(config.get("server_preferred_order")),
    )
