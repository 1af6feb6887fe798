"""Grouping: a customer's firing alerts to one address within a short window become one mail."""

from __future__ import annotations


def group_key(channel: str, transition: str, customer_id: str, target: str,
              window: float) -> str | None:
    """Only new problems by e-mail are grouped: resolves and webhooks (tickets) stay single."""
    if window <= 0 or channel != "email" or transition != "firing":
        return None
    return f"{customer_id}:{target}"
