"""``metrics_app(store, probe_stats)``: an ASGI app serving ``/metrics`` from a dedicated registry, to run
alone (``uvicorn``) or be mounted by ``tlsward serve`` (FastAPI ``app.mount("/metrics", metrics_app(...))``).

A tiny ASGI callable rather than prometheus_client's ``make_asgi_app``, for two measured reasons (see
bench/bench_metrics.py). That one renders on the event loop, and reading a 10,000-endpoint inventory takes long
enough to stall every probe and request sharing the loop: here the read and the rendering run in a worker
thread, one scrape at a time (a second scraper waits rather than doubling the database load). And its
encoders cost about 4 us (text) and 9 us (OpenMetrics, which Prometheus asks for first) per sample: 0.4 and
0.8 s for the 90,000 samples of 10,000 endpoints. :func:`encode_text` writes the same text format, byte for
byte (a test compares them), in about half the time of the faster one, by rendering each endpoint's label set
once for all its series. The answer is always the Prometheus text format 0.0.4, which every Prometheus
accepts: OpenMetrics would add only exemplars and ``_created`` series, and tlsward exposes neither.
"""

from __future__ import annotations

import asyncio
import gc
import gzip
import re
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any
from urllib.parse import parse_qs

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, gzip_accepted
from prometheus_client.metrics_core import Metric
from prometheus_client.utils import floatToGoString

from tlsward.exporter.collector import InventoryCollector
from tlsward.model.metrics import ProbeStats
from tlsward.storage import Store, open_store

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

METRICS_PATHS = ("/metrics", "/", "")   # "/" and "": the app mounted at /metrics


class MetricsApp:
    """The ASGI app. ``registry`` holds only the tlsward collector (never prometheus_client's global one, so
    nothing else a library registers leaks into tlsward's metrics, and tests can build as many as they like).
    A store opened from a URL belongs to the app and is closed by ``close()`` or at ASGI lifespan shutdown."""

    def __init__(self, store: Store, probe_stats: ProbeStats | None = None, *, owns_store: bool = False) -> None:
        self.store = store
        self.owns_store = owns_store
        self.collector = InventoryCollector(store, probe_stats)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self.collector)
        self._one_scrape = asyncio.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        if _local_path(scope) not in METRICS_PATHS:
            await _respond(send, 404, [(b"content-type", b"text/plain; charset=utf-8")], b"not found: try /metrics\n")
            return
        method = scope.get("method", "GET")
        if method not in ("GET", "HEAD"):
            await _respond(send, 405, [(b"allow", b"GET, HEAD")], b"")
            return
        headers = _headers(scope)
        names = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("name[]")
        async with self._one_scrape:
            status, response_headers, body = await asyncio.to_thread(
                self.render, headers.get("accept-encoding", ""), names)
        await _respond(send, status, response_headers, b"" if method == "HEAD" else body,
                       content_length=len(body))

    def render(self, accept_encoding: str = "", names: list[str] | None = None,
               ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """One scrape, synchronously: (status, headers, body) for these request headers."""
        registry = self.registry.restricted_registry(names) if names else self.registry
        # A scrape allocates ~1e5 short-lived objects that form no cycles; the cyclic collector running over
        # them is a quarter of the render time at 10,000 endpoints. Paused for this render only (one at a time).
        paused = gc.isenabled()
        gc.disable()
        try:
            body = encode_text(registry.collect())
        finally:
            if paused:
                gc.enable()
        headers = [(b"content-type", CONTENT_TYPE_PLAIN_0_0_4.encode())]
        if gzip_accepted(accept_encoding):
            body = gzip.compress(body, compresslevel=6)
            headers.append((b"content-encoding", b"gzip"))
        return 200, headers, body

    def close(self) -> None:
        if self.owns_store:
            self.store.close()

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


def metrics_app(store: str | Store, probe_stats: ProbeStats | None = None) -> MetricsApp:
    """The ``/metrics`` app over an open :class:`Store`, or over the inventory at a URL (opened now, so a bad
    URL fails at start-up rather than at the first scrape; raises UsageError or StorageError).
    ``probe_stats``: the monitor's live statistics, when it runs in this process."""
    if isinstance(store, str):
        return MetricsApp(open_store(store), probe_stats, owns_store=True)
    return MetricsApp(store, probe_stats)


_LEGACY_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_EXPOSED_TYPE = {"counter": "counter", "gauge": "gauge", "histogram": "histogram", "summary": "summary",
                 "info": "gauge", "stateset": "gauge", "gaugehistogram": "histogram", "unknown": "untyped"}
_VALID_LABEL_NAMES: set[str] = set()     # checked once per process
_OPENMETRICS_ONLY = ("_created", "_gsum", "_gcount")
_format_value: Callable[[float], str] = floatToGoString   # untyped upstream; "1.0", "1.7e+09", "+Inf"


def encode_text(metrics: Iterable[Metric]) -> bytes:
    """The Prometheus text format 0.0.4 of ``metrics``, identical to ``prometheus_client.generate_latest``.

    Label sets are rendered once per label dict, not once per sample: the collector shares one dict among an
    endpoint's series. Dicts are kept referenced while rendering, so an ``id`` is never reused for another.
    Raises ValueError for samples this encoder does not write (timestamps, exemplars, non-legacy names)."""
    out: list[str] = []
    rendered: dict[int, tuple[dict[str, str], str]] = {}
    for metric in metrics:
        name = metric.name
        exposed = name + "_total" if metric.type == "counter" else name + "_info" if metric.type == "info" else name
        if not _LEGACY_NAME.fullmatch(exposed):
            raise ValueError(f"metric name {exposed!r} needs escaping: use prometheus_client's generate_latest")
        documentation = metric.documentation.replace("\\", r"\\").replace("\n", r"\n")
        out.append(f"# HELP {exposed} {documentation}\n# TYPE {exposed} {_EXPOSED_TYPE[metric.type]}\n")
        trailing: dict[str, list[str]] = {}
        values: dict[float, str] = {}
        for sample in metric.samples:
            if sample.timestamp is not None or sample.exemplar is not None or sample.native_histogram is not None:
                raise ValueError(f"{sample.name}: timestamps and exemplars are not written by encode_text")
            labels = sample.labels
            cached = rendered.get(id(labels))
            if cached is not None and cached[0] is labels:
                text = cached[1]
            else:
                text = _label_text(labels)
                rendered[id(labels)] = (labels, text)
            value = values.get(sample.value)
            if value is None:
                value = values[sample.value] = _format_value(sample.value)
            line = f"{sample.name}{text} {value}\n"
            suffix = sample.name[len(name):] if sample.name != name and sample.name.startswith(name) else ""
            if suffix in _OPENMETRICS_ONLY:        # samples generate_latest moves into gauges of their own
                trailing.setdefault(suffix, []).append(line)
            else:
                out.append(line)
        for suffix, lines in sorted(trailing.items()):
            out.append(f"# HELP {name}{suffix} {documentation}\n# TYPE {name}{suffix} gauge\n")
            out.extend(lines)
    return "".join(out).encode("utf-8")


def _label_text(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    pairs = []
    for key, value in sorted(labels.items()) if len(labels) > 1 else labels.items():
        if key not in _VALID_LABEL_NAMES:
            if not _LEGACY_NAME.fullmatch(key):
                raise ValueError(f"label name {key!r} needs escaping: use prometheus_client's generate_latest")
            _VALID_LABEL_NAMES.add(key)
        if "\\" in value or "\n" in value or '"' in value:
            value = value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')
        pairs.append(f'{key}="{value}"')
    return "{" + ",".join(pairs) + "}"


def _local_path(scope: Scope) -> str:
    """The path below the mount point (Starlette keeps the full path in ``path`` and the mount in ``root_path``)."""
    path = str(scope.get("path", ""))
    root = str(scope.get("root_path", ""))
    return path[len(root):] if root and path.startswith(root) else path


def _headers(scope: Scope) -> dict[str, str]:
    joined: dict[str, list[str]] = {}
    for name, value in scope.get("headers", ()):
        joined.setdefault(name.decode("latin-1").lower(), []).append(value.decode("latin-1"))
    return {name: ",".join(values) for name, values in joined.items()}


async def _respond(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes, *,
                   content_length: int | None = None) -> None:
    length = len(body) if content_length is None else content_length
    await send({"type": "http.response.start", "status": status,
                "headers": [*headers, (b"content-length", str(length).encode())]})
    await send({"type": "http.response.body", "body": body})
