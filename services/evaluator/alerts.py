"""The alert lifecycle: the rules' transitions applied to alert rows, their history and the
outbox, and the log line announcing each."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import bindparam
from sqlalchemy import select as sql_select
from sqlmodel import Session

from services.evaluator.facts import Transition
from services.evaluator.tables import Alert, AlertTransition
from shared.db import core_table
from shared.events import AlertChanged
from shared.outbox import OutboxRow
from shared.tenancy import new_id

log = logging.getLogger(__name__)


def fingerprint(kind: str, account_id: str, job: str | None = None, key: str | None = None) -> str:
    """Stable across restarts and replicas: the same problem always has the same fingerprint."""
    subject = f"{kind}\x00{account_id}\x00{job or ''}"
    if key:
        subject += f"\x00{key}"
    return hashlib.sha256(subject.encode()).hexdigest()[:32]


_MUTABLE = ("state", "severity", "summary", "sequence", "first_seen", "last_changed", "details")


def apply(session: Session, transitions: Sequence[Transition]) -> list[AlertChanged]:
    """Apply many transitions with a handful of statements: one read of the alerts concerned,
    then bulk writes of alerts, history and outbox. Transitions of one alert apply in order;
    one that changes nothing (fire while firing, resolve while resolved) is dropped."""
    if not transitions:
        return []
    fps = [fingerprint(t.kind, t.tenant.account, t.job, t.key) for t in transitions]
    alerts_table = core_table(Alert)
    rows = {
        row["fingerprint"]: dict(row)
        for row in session.execute(
            sql_select(alerts_table).where(alerts_table.c.fingerprint.in_(set(fps)))
        ).mappings()
    }
    new: set[str] = set()
    changed: set[str] = set()
    history: list[dict[str, Any]] = []
    events: list[AlertChanged] = []
    for fp, t in zip(fps, transitions, strict=True):
        row = rows.get(fp)
        if t.action == "fire":
            if row is not None and row["state"] == "firing":
                continue
            if row is None:
                row = rows[fp] = {"id": new_id(), "fingerprint": fp, "kind": t.kind,
                                  "reseller_id": t.tenant.reseller,
                                  "customer_id": t.tenant.customer,
                                  "account_id": t.tenant.account, "job": t.job, "key": t.key,
                                  "sequence": 0}
                new.add(fp)
            row.update(state="firing", severity=t.severity, summary=t.summary[:1000],
                       first_seen=t.at, details=t.details)
        else:
            if row is None or row["state"] != "firing":
                continue
            row.update(state="resolved", summary=t.summary[:1000])
            if t.details:
                row["details"] = {**(row["details"] or {}), "resolved": t.details}
        row["sequence"] += 1
        row["last_changed"] = t.at
        changed.add(fp)
        history.append({"alert_id": row["id"], "sequence": row["sequence"],
                        "state": row["state"], "summary": row["summary"], "at": t.at})
        events.append(AlertChanged(
            event_id=f"{fp}-{row['sequence']}", tenant=t.tenant, fingerprint=fp, kind=t.kind,
            state=row["state"], severity=row["severity"], sequence=row["sequence"], job=t.job,
            summary=row["summary"], first_seen=row["first_seen"], last_changed=t.at,
            details=row["details"] or {},
        ))
    # Core statements on the tables: the ORM's bulk path costs more than the work itself.
    if new:
        session.execute(alerts_table.insert(), [rows[fp] for fp in new])
    if changed - new:
        session.execute(
            alerts_table.update().where(alerts_table.c.id == bindparam("_id")).values(
                {name: bindparam(name, type_=alerts_table.c[name].type) for name in _MUTABLE}),
            [{"_id": rows[fp]["id"], **{name: rows[fp][name] for name in _MUTABLE}}
             for fp in changed - new])
    if history:
        session.execute(core_table(AlertTransition).insert(), history)
        session.execute(core_table(OutboxRow).insert(), [
            {"event_id": e.event_id, "payload": e.encode(), "created_at": e.last_changed}
            for e in events])
    return events


def log_transitions(events: Iterable[AlertChanged]) -> None:
    """One INFO line per transition, once committed (a rolled-back batch is applied again and
    would say it twice). Ids only: summaries and details carry clients' free text."""
    for event in events:
        tenant = event.tenant
        log.info("alert %s", event.state, extra={
            "event": "alert", "transition": event.state, "kind": event.kind,
            "severity": event.severity, "fingerprint": event.fingerprint,
            "sequence": event.sequence, "event_id": event.event_id,
            "reseller_id": tenant.reseller, "customer_id": tenant.customer,
            "account_id": tenant.account, "job": event.job,
        })
