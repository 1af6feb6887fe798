"""The notifier's Prometheus metrics (names follow Alertmanager's where they mean the same)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

SENT = Counter("backstop_notifications_sent_total", "Notifications delivered.", ["channel"])
FAILED = Counter(
    "backstop_notifications_failed_total", "Failed delivery attempts.", ["channel", "reason"]
)
DEAD = Counter(
    "backstop_notifications_dead_total", "Notifications given up (dead-lettered).",
    ["channel", "reason"],
)
SUPPRESSED = Counter(
    "backstop_notifications_suppressed_total", "Transitions not notified, by reason.", ["reason"]
)
LATENCY = Histogram(
    "backstop_notification_latency_seconds", "Time from the alert transition to delivery.",
    ["channel"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600),
)
QUEUE_DEPTH = Gauge(
    "backstop_notifications_queue_depth", "Notifications waiting for delivery.", ["status"]
)
PLAN_RETRIES = Counter(
    "backstop_notifier_plan_retries_total", "Planning postponed (directory unavailable)."
)
