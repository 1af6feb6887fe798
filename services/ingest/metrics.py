"""Ingest's Prometheus metrics, and the ASGI middleware that counts and times every request.

The ``endpoint`` label is the route template (``/ping/{key}``), never the raw path: ping keys
are secrets and raw paths would grow the label set without bound. No per-account labels either.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Scope

from shared.answered import AnsweredRequests

REQUESTS = Counter(
    "backstop_ingest_requests_total", "Ingest HTTP requests answered.", ["endpoint", "code"]
)
LATENCY = Histogram(
    "backstop_ingest_request_duration_seconds", "Time to answer an ingest HTTP request.",
    ["endpoint"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
PUBLISHED = Counter(
    "backstop_ingest_events_published_total", "Events ingest had stored by JetStream.", ["type"]
)
PUBLISH_FAILURES = Counter(
    "backstop_ingest_publish_failures_total",
    "Events ingest could not store (answered 503 or marked unavailable).", ["type"],
)

UNMATCHED = "unmatched"


class MetricsMiddleware(AnsweredRequests):
    def __init__(self, app: ASGIApp) -> None:
        super().__init__(app)
        # Labelled children, looked up once: ``labels()`` takes a lock and builds a key each call.
        self._counters: dict[tuple[str, int], Any] = {}
        self._timers: dict[str, Any] = {}

    def answered(self, scope: Scope, status: int, seconds: float) -> None:
        # The router stores the matched route in the (shared) scope.
        endpoint = getattr(scope.get("route"), "path", None) or UNMATCHED
        self._counter(endpoint, status).inc()
        self._timer(endpoint).observe(seconds)

    def _counter(self, endpoint: str, status: int) -> Any:
        child = self._counters.get((endpoint, status))
        if child is None:
            child = self._counters[endpoint, status] = REQUESTS.labels(endpoint, str(status))
        return child

    def _timer(self, endpoint: str) -> Any:
        child = self._timers.get(endpoint)
        if child is None:
            child = self._timers[endpoint] = LATENCY.labels(endpoint)
        return child
