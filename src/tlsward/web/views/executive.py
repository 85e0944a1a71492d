"""``/executive``: the inventory at a glance for people who decide, not debug. The share of endpoints that are
healthy, certificates expiring within 7/14/30 days, the handshake success SLI against its SLO target with the
error budget left, the TLS version mix and its trend per day, and the owners or teams in the worst shape.

The SLI is the one ``tlsward report slo`` computes (docs/slo.md): probes and successes summed over the window
(rows folded by retention weigh what they stand for), judged by the same :func:`tlsward.model.slo.verdict`;
the window is whole UTC days ending today, read through the app's :class:`RollupCache`."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from tlsward.model.access import Principal
from tlsward.model.dashboards import DayRollup, GroupHealth
from tlsward.model.slo import verdict
from tlsward.storage.dashboards import expiry_counts, group_health, health_summary
from tlsward.web.app import render
from tlsward.web.auth import store_of, viewer
from tlsward.web.views.clients import fleet_clients
from tlsward.web.views.common import PageRoute, now, rollups_of

VERSION_ORDER = ("TLSv1.3", "TLSv1.2", "TLSv1.1", "TLSv1", "TLSv1.0", "SSLv3")
VERSION_COLOURS = {"TLSv1.3": "#2b8a3e", "TLSv1.2": "#1c7ed6", "TLSv1.1": "#d9480f", "TLSv1.0": "#b3122e",
                   "TLSv1": "#b3122e", "SSLv3": "#5f0f40"}
WORST_GROUPS = 15


def _version_key(version: str) -> tuple[int, str]:
    return (VERSION_ORDER.index(version) if version in VERSION_ORDER else len(VERSION_ORDER), version)


def version_trend(days: list[DayRollup]) -> dict[str, Any]:
    """The stacked chart: each version's share of the probes that negotiated one, per day."""
    versions = sorted({version for day in days for version, _ in day.versions}, key=_version_key)
    datasets = []
    for version in versions:
        shares = []
        for day in days:
            negotiated = sum(probes for _, probes in day.versions)
            probes = dict(day.versions).get(version, 0)
            shares.append(round(100.0 * probes / negotiated, 3) if negotiated else None)
        datasets.append({"label": version, "data": shares, "color": VERSION_COLOURS.get(version, "#868e96")})
    return {"type": "bar", "stacked": True, "percent": True, "labels": [day.day.isoformat() for day in days],
            "datasets": datasets}


def success_trend(days: list[DayRollup], target: float) -> dict[str, Any]:
    rates = [round(100.0 * day.successes / day.probes, 4) if day.probes else None for day in days]
    known = [rate for rate in rates if rate is not None]
    floor = min([*known, target]) if known else target
    return {"type": "line", "percent": True, "labels": [day.day.isoformat() for day in days],
            "min": max(0.0, round(floor - max(0.05, (100 - floor) * 0.5), 2)), "max": 100,
            "datasets": [{"label": "handshake success", "data": rates, "color": "#1c7ed6"},
                         {"label": f"SLO target {target:g} %", "data": [target] * len(days), "color": "#b3122e",
                          "dashed": True}]}


def groups_with_sli(groups: list[GroupHealth], days: list[DayRollup], by: str) -> list[GroupHealth]:
    """Each group's current state with its window probes and successes; the worst first: lowest success rate
    (groups without probes after those with), then the most endpoints in trouble."""
    sums: dict[str | None, list[int]] = {}
    for day in days:
        for owner, team, probes, successes in day.groups:
            key = owner if by == "owner" else team
            total = sums.setdefault(key, [0, 0])
            total[0] += probes
            total[1] += successes
    merged = [GroupHealth(g.key, g.endpoints, g.failing, g.degraded, g.expiring_30d, *sums.get(g.key, (0, 0)))
              for g in groups]
    merged.sort(key=lambda g: (g.success_pct is None, g.success_pct if g.success_pct is not None else 0.0,
                               -g.trouble, g.key or ""))
    return merged


def router() -> APIRouter:
    pages = APIRouter(route_class=PageRoute)

    @pages.get("/executive", response_class=HTMLResponse)
    def executive(
        request: Request,
        _: Annotated[Principal, Depends(viewer)],
        target: Annotated[float, Query(gt=0, le=100, description="SLO target, a percentage")] = 99.9,
        days: Annotated[int, Query(ge=1, le=90, description="Window: whole UTC days ending today")] = 30,
        by: Annotated[Literal["owner", "team"], Query()] = "owner",
    ) -> HTMLResponse:
        moment = now()
        store = store_of(request)
        rollups = rollups_of(request).window(moment, days)
        probes = sum(day.probes for day in rollups)
        successes = sum(day.successes for day in rollups)
        mix: Counter[str] = Counter()
        for day in rollups:
            mix.update(dict(day.versions))
        negotiated = sum(mix.values())
        expiry = expiry_counts(store, moment, (7, 14, 30))
        groups = groups_with_sli(group_health(store, by, moment), rollups, by)
        since = dt.datetime.combine(rollups[0].day, dt.time(), tzinfo=dt.UTC)
        charts = {
            "chart-versions": version_trend(rollups),
            "chart-success": success_trend(rollups, target),
            "chart-expiry": {"type": "bar", "labels": [b.label for b in expiry.buckets], "datasets": [
                {"label": "endpoints", "data": [b.endpoints for b in expiry.buckets], "color": "#1c7ed6"},
                {"label": "certificates", "data": [b.certificates for b in expiry.buckets], "color": "#adb5bd"}]},
        }
        return render(
            request, "executive.html", health=health_summary(store), expiry=expiry, target=target, days=days,
            by=by, since=since, until=moment, probes=probes, successes=successes,
            sli=100.0 * successes / probes if probes else None, slo=verdict(target, probes, successes),
            mix=sorted(((version, n, 100.0 * n / negotiated) for version, n in mix.items()),
                       key=lambda item: _version_key(item[0])),
            groups=groups[:WORST_GROUPS], group_count=len(groups), charts=charts,
            clients=fleet_clients(store, moment))

    return pages
