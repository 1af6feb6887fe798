"""Webhook payloads: Backstop's own, Prometheus Alertmanager (version "4"), PagerDuty Events v2.

Plain functions from an alert to a JSON-able dict; signing and sending live elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.notifier.channels.emails import KIND_TITLES
from shared.events import AlertChanged
from shared.tenancy import AccountPath

FORMATS = ("backstop", "alertmanager", "pagerduty")
# Reads well cut at 100 (ConnectWise) and fits Jira's 255; PagerDuty allows 1024.
SUMMARY_MAX = 255
PAGERDUTY_SUMMARY_MAX = 1024
ZERO_TIME = "0001-01-01T00:00:00Z"
# What an alert's details say about the run that raised it (the evaluator's failed-run alert).
RUN_DETAILS = ("message", "log_tail")


@dataclass(frozen=True)
class Context:
    """What a payload needs besides the alert."""

    alert: AlertChanged
    transition: str  # firing | resolved | reminder
    tenant: AccountPath
    link: str
    receiver: str  # the endpoint id

    @property
    def action(self) -> str:
        return "resolve" if self.transition == "resolved" else "trigger"


def cap(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def external_id(customer_id: str, fingerprint: str) -> str:
    """Stable per customer and problem: repeats update one ticket, a resolve closes it."""
    return f"backstop-{customer_id}-{fingerprint}"


def _iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def backstop(c: Context) -> dict[str, Any]:
    a = c.alert
    return {
        "type": f"alert.{c.action}",
        "timestamp": _iso(a.last_changed),
        "data": {
            "action": c.action,
            "reminder": c.transition == "reminder",
            "external_id": external_id(c.tenant.customer_id, a.fingerprint),
            "reseller": {"id": c.tenant.reseller_id, "name": c.tenant.reseller},
            "customer": {"id": c.tenant.customer_id, "name": c.tenant.customer},
            "account": {"id": c.tenant.account_id, "name": c.tenant.account},
            "alert": {
                "fingerprint": a.fingerprint, "kind": a.kind,
                "title": KIND_TITLES.get(a.kind, a.kind), "state": a.state,
                "severity": a.severity, "sequence": a.sequence, "job": a.job,
                "summary": cap(a.summary, SUMMARY_MAX),
                "first_seen": _iso(a.first_seen), "last_changed": _iso(a.last_changed),
                "details": a.details,
            },
            "link": c.link,
        },
    }


def alertmanager(c: Context) -> dict[str, Any]:
    a = c.alert
    status = "resolved" if c.transition == "resolved" else "firing"
    labels = {
        "alertname": a.kind, "severity": a.severity, "reseller": c.tenant.reseller_id,
        "customer": c.tenant.customer_id, "account": c.tenant.account_id,
        **({"job": a.job} if a.job else {}),
    }
    annotations = {"summary": cap(a.summary, SUMMARY_MAX),
                   "description": a.summary, "external_id": external_id(c.tenant.customer_id,
                                                                       a.fingerprint)}
    # The failing run's message and log tail (failed runs), as annotations are: strings.
    annotations.update({name: str(a.details[name]) for name in RUN_DETAILS
                        if a.details.get(name)})
    return {
        "version": "4",
        "groupKey": f"{{}}:{{fingerprint=\"{a.fingerprint}\"}}",
        "truncatedAlerts": 0,
        "status": status,
        "receiver": c.receiver,
        "groupLabels": {"fingerprint": a.fingerprint},
        "commonLabels": labels,
        "commonAnnotations": annotations,
        "externalURL": c.link,
        "alerts": [{
            "status": status, "labels": labels, "annotations": annotations,
            "startsAt": _iso(a.first_seen),
            "endsAt": _iso(a.last_changed) if status == "resolved" else ZERO_TIME,
            "generatorURL": c.link, "fingerprint": a.fingerprint[:16],
        }],
    }


def pagerduty(c: Context, routing_key: str) -> dict[str, Any]:
    a = c.alert
    body: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": c.action,
        "dedup_key": external_id(c.tenant.customer_id, a.fingerprint)[:255],
    }
    if c.action == "trigger":
        body["payload"] = {
            "summary": cap(a.summary, PAGERDUTY_SUMMARY_MAX),
            "source": f"{c.tenant.customer}/{c.tenant.account}",
            "severity": a.severity,
            "timestamp": _iso(a.last_changed),
            "component": a.job or c.tenant.account,
            "group": c.tenant.customer,
            "class": a.kind,
            "custom_details": {**a.details, "reseller": c.tenant.reseller_id,
                               "customer": c.tenant.customer_id, "account": c.tenant.account_id},
        }
        body["links"] = [{"href": c.link, "text": "Backstop"}]
    return body
