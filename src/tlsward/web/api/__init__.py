"""The JSON API, ``/api/v1``: one router per resource."""

from __future__ import annotations

from fastapi import APIRouter


def api_router() -> APIRouter:
    return APIRouter()
