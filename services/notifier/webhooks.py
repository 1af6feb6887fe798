"""Webhook channel: build the endpoint's format, sign (backstop format), POST, classify."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

from services.notifier import formats
from services.notifier.errors import DeliveryError
from services.notifier.signing import message_id, signed_headers
from services.notifier.tables import WebhookEndpoint

# Worth another try: the receiver is overloaded, restarting, or timed out.
RETRYABLE_STATUS = {408, 425, 429}


def retry_after(value: str | None, now: datetime) -> float | None:
    """``Retry-After`` as seconds, or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, (parsedate_to_datetime(value) - now).total_seconds())
    except (TypeError, ValueError):
        return None


def classify(status: int, headers: httpx.Headers, now: datetime) -> DeliveryError | None:
    if 200 <= status < 300:
        return None
    retryable = status >= 500 or status in RETRYABLE_STATUS
    return DeliveryError(
        f"http_{status // 100}xx" if status != 429 else "http_429",
        f"receiver answered HTTP {status}", retryable=retryable, http_status=status,
        retry_after=retry_after(headers.get("retry-after"), now) if retryable else None,
    )


def request_for(
    endpoint: WebhookEndpoint, context: formats.Context, delivery_key: str, now: datetime
) -> tuple[bytes, dict[str, str]]:
    if endpoint.format == "alertmanager":
        payload = formats.alertmanager(context)
    elif endpoint.format == "pagerduty":
        payload = formats.pagerduty(context, endpoint.secret or "")
    else:
        payload = formats.backstop(context)
    body = json.dumps(payload, separators=(",", ":"))
    headers = {"content-type": "application/json", "user-agent": "Backstop-Notifier/1"}
    msg_id = message_id(delivery_key)
    if endpoint.format == "backstop" and endpoint.secret:
        headers.update(signed_headers(endpoint.secret, msg_id, body, now))
    else:
        headers["webhook-id"] = msg_id  # an idempotency key helps every receiver
    return body.encode(), headers


class WebhookSender:
    def __init__(self, timeout: float = 15.0) -> None:
        self._client = httpx.AsyncClient(
            timeout=timeout, follow_redirects=False,
            limits=httpx.Limits(max_connections=100, max_keepalive_connections=50),
        )

    async def send(
        self, endpoint: WebhookEndpoint, context: formats.Context, delivery_key: str
    ) -> int:
        """POST the payload; returns the HTTP status, raises :class:`DeliveryError`."""
        now = datetime.now(UTC)
        body, headers = request_for(endpoint, context, delivery_key, now)
        try:
            response = await self._client.post(endpoint.url, content=body, headers=headers)
        except httpx.TimeoutException as exc:
            raise DeliveryError("timeout", repr(exc), retryable=True) from exc
        except httpx.TransportError as exc:
            raise DeliveryError("connection", repr(exc), retryable=True) from exc
        error = classify(response.status_code, response.headers, now)
        if error is not None:
            raise error
        return response.status_code

    async def close(self) -> None:
        await self._client.aclose()
