"""Scrape an exporter app the way Prometheus does (HTTP through the ASGI app) and read the text back with
prometheus_client's own parser, so the tests check what a real scraper would see."""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tlsward.exporter.app import MetricsApp


@dataclass(frozen=True)
class Scrape:
    """Every sample of one scrape, by sample name and then by label set."""

    samples: dict[str, dict[frozenset[tuple[str, str]], float]]
    families: dict[str, str]            # family name -> type
    text: str

    def value(self, name: str, **labels: str) -> float:
        return self.samples[name][frozenset(labels.items())]

    def series(self, name: str) -> list[dict[str, str]]:
        """The label sets of ``name``'s samples, sorted."""
        return sorted((dict(key) for key in self.samples.get(name, {})), key=lambda labels: sorted(labels.items()))

    def label_values(self) -> list[str]:
        return [value for by_labels in self.samples.values() for key in by_labels for _, value in key]


def parse(text: str) -> Scrape:
    samples: dict[str, dict[frozenset[tuple[str, str]], float]] = {}
    families: dict[str, str] = {}
    for family in text_string_to_metric_families(text):
        families[family.name] = family.type
        for sample in family.samples:
            by_labels = samples.setdefault(sample.name, {})
            key = frozenset(sample.labels.items())
            assert key not in by_labels, f"duplicate series {sample.name}{sample.labels}"
            by_labels[key] = sample.value
    return Scrape(samples, families, text)


async def get(app: MetricsApp, path: str = "/metrics", **headers: str) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://exporter") as client:
        return await client.get(path, headers=headers)


def scrape(app: MetricsApp) -> Scrape:
    response = asyncio.run(get(app))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return parse(response.text)


def ts(moment: dt.datetime) -> float:
    return moment.timestamp()
