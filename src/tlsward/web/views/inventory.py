"""``/inventory``: every endpoint, with a search box, the filters of ``tlsward inventory list`` (owner, team,
tag, issuer, days left, failing), three orders (target, days left, last probe) and keyset pages, so the last
page of 100,000 endpoints costs what the first does. ``/inventory.csv`` streams every matching row with the
same filters and order, a page at a time."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Annotated, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, StreamingResponse

from tlsward.model.access import Principal
from tlsward.model.dashboards import InventoryQuery, InventoryRow
from tlsward.storage.dashboards import filter_choices, inventory_page, iter_inventory
from tlsward.web.app import render
from tlsward.web.auth import store_of, viewer
from tlsward.web.problems import Problem
from tlsward.web.views.common import PageRoute, days_left, now

PAGE_SIZES = (25, 50, 100, 200)
CSV_COLUMNS = ("target", "owner", "team", "environment", "tags", "enabled", "last_probe", "result",
               "failure_kind", "version", "worst_severity", "findings", "leaf_sha256", "leaf_subject",
               "leaf_issuer", "leaf_not_after", "days_left")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
Text = Annotated[str, Query(max_length=512)]      # a free-text filter


def _days(text: str) -> float | None:
    """The days-left filter as typed in the form: empty is no filter."""
    if not text.strip():
        return None
    try:
        value = float(text)
    except ValueError:
        raise Problem(400, f"days_left {text!r}: expected a number of days, such as 30") from None
    if not -36500 <= value <= 36500:
        raise Problem(400, f"days_left {text!r}: expected a number of days between -36500 and 36500")
    return value


def _query(q: str, owner: str, team: str, tag: str, issuer: str, days_left_: str, failing: bool,
           sort: str, direction: str) -> InventoryQuery:
    return InventoryQuery(q=q.strip() or None, owner=owner or None, team=team or None, tag=tag or None,
                          issuer=issuer or None, days_left=_days(days_left_), failing=True if failing else None,
                          sort="days_left" if sort == "days_left" else "last_probe" if sort == "last_probe"
                          else "target", descending=direction == "desc")


def _cell(value: str | None) -> str:
    """A text cell a spreadsheet will not run: one that starts like a formula is prefixed with a quote."""
    text = value or ""
    return "'" + text if text.startswith(FORMULA_START) else text


def csv_lines(rows: Iterator[InventoryRow]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for count, row in enumerate(rows, 1):
        left = days_left(row.leaf_not_after)
        writer.writerow([
            _cell(row.target), _cell(row.owner), _cell(row.team), _cell(row.environment), _cell(";".join(row.tags)),
            "yes" if row.enabled else "no", row.observed_at.isoformat() if row.observed_at else "",
            "" if row.success is None else "ok" if row.success else "failed", _cell(row.failure_kind),
            _cell(row.version), row.worst_severity.name.lower() if row.worst_severity is not None else "",
            _cell(";".join(row.finding_ids)), row.leaf_sha256 or "", _cell(row.leaf_subject),
            _cell(row.leaf_issuer), row.leaf_not_after.isoformat() if row.leaf_not_after else "",
            f"{left:.2f}" if left is not None else ""])
        if count % 500 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def router() -> APIRouter:
    pages = APIRouter(route_class=PageRoute)

    @pages.get("/inventory", response_class=HTMLResponse)
    def inventory(
        request: Request,
        _: Annotated[Principal, Depends(viewer)],
        q: Text = "", owner: Text = "", team: Text = "", tag: Text = "", issuer: Text = "",
        days_left_: Annotated[str, Query(alias="days_left", max_length=16)] = "",
        failing: Annotated[bool, Query()] = False,
        sort: Annotated[Literal["target", "days_left", "last_probe"], Query()] = "target",
        dir: Annotated[Literal["asc", "desc"], Query()] = "asc",
        after: Annotated[str | None, Query(max_length=2048)] = None,
        before: Annotated[str | None, Query(max_length=2048)] = None,
        limit: Annotated[int, Query(ge=1, le=max(PAGE_SIZES))] = 50,
    ) -> HTMLResponse:
        spec = _query(q, owner, team, tag, issuer, days_left_, failing, sort, dir)
        store = store_of(request)
        page = inventory_page(store, spec, now(), after=after, before=before if after is None else None,
                              limit=limit)
        filters = {"q": q, "owner": owner, "team": team, "tag": tag, "issuer": issuer,
                   "days_left": "" if spec.days_left is None else f"{spec.days_left:g}",
                   "failing": "1" if failing else "",
                   "sort": sort, "dir": dir, "limit": str(limit) if limit != 50 else ""}
        kept = {name: value for name, value in filters.items() if value}

        def link(**changes: str) -> str:
            merged = {**kept, **changes}
            return "?" + urlencode({name: value for name, value in merged.items() if value})

        def sort_link(column: str) -> str:
            flip = "desc" if sort == column and dir == "asc" else "asc"
            return link(sort=column, dir=flip)

        owners, teams = filter_choices(store)
        return render(request, "inventory.html", page=page, filters=filters, owners=owners, teams=teams,
                      sort=sort, dir=dir, limit=limit, page_sizes=PAGE_SIZES, sort_link=sort_link,
                      next_link=link(after=page.next_cursor) if page.next_cursor else None,
                      prev_link=link(before=page.prev_cursor) if page.prev_cursor else None,
                      first_link=link() if (after or before) else None, csv_link="/inventory.csv" + link(limit=""),
                      filtered=any(kept.get(name) for name in ("q", "owner", "team", "tag", "issuer", "days_left",
                                                               "failing")))

    @pages.get("/inventory.csv")
    def inventory_csv(
        request: Request,
        _: Annotated[Principal, Depends(viewer)],
        q: Text = "", owner: Text = "", team: Text = "", tag: Text = "", issuer: Text = "",
        days_left_: Annotated[str, Query(alias="days_left", max_length=16)] = "",
        failing: Annotated[bool, Query()] = False,
        sort: Annotated[Literal["target", "days_left", "last_probe"], Query()] = "target",
        dir: Annotated[Literal["asc", "desc"], Query()] = "asc",
    ) -> StreamingResponse:
        spec = _query(q, owner, team, tag, issuer, days_left_, failing, sort, dir)
        store = store_of(request)
        moment = now()
        return StreamingResponse(csv_lines(iter_inventory(store, spec, moment)), media_type="text/csv; charset=utf-8",
                                 headers={"Content-Disposition": f'attachment; filename="tlsward-inventory-'
                                                                 f'{moment:%Y%m%dT%H%M%SZ}.csv"',
                                          "Cache-Control": "no-store"})

    return pages
