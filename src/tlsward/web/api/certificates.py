"""``/api/v1/certificates``: the list, soonest-expiring first. ``/api/v1/certificates/{sha256}``: one
certificate and every place it was seen (endpoints at a chain position, files on disk, server configs), as
``tlsward inventory cert``."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request

from tlsward.model.access import Principal
from tlsward.report.inventory_json import certificate_json
from tlsward.web.api.common import ApiRoute, now, problems
from tlsward.web.api.models import CertificateList, CertificatePlaces
from tlsward.web.auth import store_of, viewer
from tlsward.web.problems import Problem

HEX_PREFIX = re.compile(r"[0-9a-f]{8,64}")
DOCUMENTED = r"^:*(?:[0-9A-Fa-f]:*){8,64}$"   # what HEX_PREFIX accepts once colons are dropped (checked by hand,
# for a message that says what a fingerprint looks like)
SHOWN_CANDIDATES = 5


def router() -> APIRouter:
    api = APIRouter(prefix="/certificates", tags=["certificates"], route_class=ApiRoute)

    @api.get("", response_model=CertificateList, responses=problems(400),
             summary="Certificates soonest-expiring first, with how many endpoints and files hold each")
    def list_certificates(request: Request, _: Annotated[Principal, Depends(viewer)],
                          q: Annotated[str | None, Query(max_length=200, description="Subject contains")] = None,
                          issuer: Annotated[str | None, Query(max_length=200, description="Issuer contains")]
                          = None,
                          days_left: Annotated[float | None, Query(ge=-36500, le=36500,
                                                                   description="Expiring within N days")] = None,
                          all_: Annotated[bool, Query(alias="all", description="Intermediates and roots too")]
                          = False,
                          limit: Annotated[int, Query(ge=1, le=500)] = 50,
                          offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0) -> dict[str, Any]:
        moment = now()
        listing, total = store_of(request).certificate_listing(
            q=q, issuer=issuer, days_left_max=days_left, leaf_only=not all_, limit=limit, offset=offset, now=moment)
        return {"total": total, "items": [
            {"sha256": c.sha256, "subject": c.subject, "issuer": c.issuer, "not_after": c.not_after.isoformat(),
             "days_left": round((c.not_after - moment).total_seconds() / 86400, 2), "key_type": c.key_type,
             "key_bits": c.key_bits, "endpoints": c.endpoints, "files": c.files} for c in listing]}

    @api.get("/{sha256}", response_model=CertificatePlaces, responses=problems(400, 404),
             summary="A certificate by SHA-256 fingerprint (or its first 8+ hex digits) and where it was seen")
    def get_certificate(request: Request, _: Annotated[Principal, Depends(viewer)],
                        sha256: Annotated[str, Path(max_length=128, json_schema_extra={"pattern": DOCUMENTED},
                                                    description="SHA-256 fingerprint or its start (at least 8 hex "
                                                                "digits; colons allowed)")]) -> dict[str, Any]:
        prefix = sha256.strip().lower().replace(":", "")
        if not HEX_PREFIX.fullmatch(prefix):
            raise Problem(400, f"{sha256[:80]!r}: give at least 8 (and at most 64) hex digits of a SHA-256 "
                               "fingerprint")
        found = store_of(request).certificate_places(prefix, limit=SHOWN_CANDIDATES)
        if not found:
            raise Problem(404, f"no certificate in the inventory has a fingerprint starting with {prefix}")
        if len(found) > 1:
            candidates = [record.sha256 for record, _ in found]
            many = f"{len(candidates)}{'+' if len(candidates) == SHOWN_CANDIDATES else ''}"
            raise Problem(400, f"{prefix} is the start of {many} fingerprints; give more digits",
                          extra={"candidates": candidates})
        record, places = found[0]
        return {**certificate_json(record, now()),
                "places": [{"where": where, "position": position, "first_seen": first.isoformat(),
                            "last_seen": last.isoformat()} for where, position, first, last in places]}

    return api
