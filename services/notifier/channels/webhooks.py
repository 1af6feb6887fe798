"""Webhook channel: build the endpoint's format, sign (backstop format), POST, classify.

Errors name the endpoint by id and host only: a URL may carry a token in its path or query.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

from services.notifier.channels import formats
from services.notifier.channels.egress import GuardedTransport
from services.notifier.channels.signing import message_id, signed_headers
from services.notifier.channels.targets import TargetPolicy, TargetRefused
from services.notifier.errors import DeliveryError
from services.notifier.tables import WebhookEndpoint
from shared.logs import quiet_http_clients, redact_urls
from shared.secretbox import SecretBox, SecretUnreadable

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
    endpoint: WebhookEndpoint, secret: str | None, context: formats.Context, delivery_key: str,
    now: datetime,
) -> tuple[bytes, dict[str, str]]:
    """Body and headers; ``secret`` is the endpoint's secret in clear (signing key or
    PagerDuty routing key)."""
    if endpoint.format == "alertmanager":
        payload = formats.alertmanager(context)
    elif endpoint.format == "pagerduty":
        payload = formats.pagerduty(context, secret or "")
    else:
        payload = formats.backstop(context)
    body = json.dumps(payload, separators=(",", ":"))
    headers = {"content-type": "application/json", "user-agent": "Backstop-Notifier/1"}
    msg_id = message_id(delivery_key)
    if endpoint.format == "backstop" and secret:
        headers.update(signed_headers(secret, msg_id, body, now))
    else:
        headers["webhook-id"] = msg_id  # an idempotency key helps every receiver
    return body.encode(), headers


def endpoint_name(endpoint: WebhookEndpoint) -> str:
    """How logs and stored errors name an endpoint: its id and host, never its URL."""
    return f"webhook {endpoint.id} ({endpoint_host(endpoint) or '?'})"


def endpoint_host(endpoint: WebhookEndpoint) -> str | None:
    """The host an endpoint's URL names (what may be shown of it), if it has a readable one."""
    try:
        return httpx.URL(endpoint.url).host or None
    except httpx.InvalidURL:
        return None


def _failure(endpoint: WebhookEndpoint, exc: Exception) -> str:
    detail = redact_urls(str(exc)) or type(exc).__name__
    return f"{endpoint_name(endpoint)}: {type(exc).__name__}: {detail}"


class WebhookSender:
    def __init__(self, timeout: float = 15.0, *, keys: SecretBox,
                 policy: TargetPolicy | None = None) -> None:
        """``policy``: where receivers may be (default: public addresses only)."""
        quiet_http_clients()  # also when embedded in a process that did not configure logging
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=50)
        self._keys = keys
        # Redirects are not followed: a 3xx is the receiver's answer (and could point inward).
        self._client = httpx.AsyncClient(
            timeout=timeout, follow_redirects=False, trust_env=False,
            transport=GuardedTransport(policy or TargetPolicy(), limits),
        )

    async def send(
        self, endpoint: WebhookEndpoint, context: formats.Context, delivery_key: str
    ) -> int:
        """POST the payload; returns the HTTP status, raises :class:`DeliveryError`."""
        now = datetime.now(UTC)
        try:
            secret = self._keys.open(endpoint.secret) if endpoint.secret else None
        except SecretUnreadable as exc:
            # A key missing from the configuration is fixed by a restart: keep the alert.
            raise DeliveryError("secret_unreadable", f"{endpoint_name(endpoint)}: {exc}",
                                retryable=True) from exc
        body, headers = request_for(endpoint, secret, context, delivery_key, now)
        try:
            response = await self._client.post(endpoint.url, content=body, headers=headers)
        except TargetRefused as exc:
            raise DeliveryError("target_refused", f"{endpoint_name(endpoint)}: {exc}",
                                retryable=False) from exc
        except httpx.TimeoutException as exc:
            raise DeliveryError("timeout", _failure(endpoint, exc), retryable=True) from exc
        except httpx.TransportError as exc:
            raise DeliveryError("connection", _failure(endpoint, exc), retryable=True) from exc
        error = classify(response.status_code, response.headers, now)
        if error is not None:
            raise error
        return response.status_code

    async def close(self) -> None:
        await self._client.aclose()
