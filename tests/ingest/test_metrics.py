"""Prometheus metrics: by route template and status code, never by secret or account."""

from __future__ import annotations

from prometheus_client import generate_latest

from tests.ingest.support import Ingest


async def test_requests_are_counted_by_route_template(ingest: Ingest) -> None:
    await ingest.post_run({"job": "db", "status": "success"})
    await ingest.client.get(f"/ping/{ingest.a.ping_key}/start")
    await ingest.client.get("/ping/unknown-key")
    text = generate_latest().decode()  # what the ops port's /metrics serves
    assert 'backstop_ingest_requests_total{code="202",endpoint="/v1/runs"}' in text
    assert 'backstop_ingest_requests_total{code="200",endpoint="/ping/{key}/{part}"}' in text
    assert 'backstop_ingest_requests_total{code="404",endpoint="/ping/{key}"}' in text
    assert 'backstop_ingest_request_duration_seconds_bucket{endpoint="/v1/runs"' in text
    assert 'backstop_ingest_events_published_total{type="run"}' in text
    assert "backstop_ingest_publish_failures_total" in text
    assert ingest.a.ping_key not in text and ingest.a.account.id not in text
