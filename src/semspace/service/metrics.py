"""Prometheus metrics, one registry per app (several apps in one process never clash): request counts by route
and status, request latency, the number of inputs per embedding/rerank request, and the texts per encode call the
dynamic batcher gathers."""

from __future__ import annotations

import os
import time

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048)


class ServiceMetrics:
    """The app's collectors, in its own :class:`CollectorRegistry`."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "semspace_requests",
            "HTTP requests by route and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "semspace_request_duration_seconds",
            "Time to answer a request, by route.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch = Histogram(
            "semspace_batch_size",
            "Inputs (texts, documents, pairs) per embedding or rerank request, by route.",
            ["route"],
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.gathered = Histogram(
            "semspace_batcher_texts",
            "Texts per encode call of the dynamic batcher (concurrent requests gathered into one).",
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )

    def observe_batch(self, route: str, n: int) -> None:
        self.batch.labels(route=route).observe(n)

    def exposition(self) -> tuple[bytes, str]:
        """The text format and its content type, for GET /metrics: this app's registry, or, under `semspace serve
        --workers N` (prometheus_client's multiprocess mode, ``$PROMETHEUS_MULTIPROC_DIR``), the sums over every
        worker process, whichever one answers the scrape."""
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class MetricsMiddleware:
    """ASGI middleware (outermost, so refusals by the other middlewares are counted): the route label is the
    matched route's path template (`/documents/{doc_id}`), or `unmatched`, so label values stay few."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status, start = 500, time.perf_counter()

        async def watched(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watched)
        finally:
            # the template without convertors (`{doc_id:path}` → `{doc_id}`)
            route = getattr(scope.get("route"), "path_format", None) or "unmatched"
            method = scope.get("method", "")
            self.metrics.requests.labels(method=method, route=route, status=str(status)).inc()
            self.metrics.latency.labels(method=method, route=route).observe(time.perf_counter() - start)
