"""``backstop notifications``: who is told and how often, silences, the notification log,
dead letters and their replay."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from typing import Any

import typer
from sqlmodel import col, select

from services.cli.accounts import database
from services.notifier import admin, delivery, silences
from services.notifier.tables import NotifyTransition
from shared.db import utcnow
from shared.tenancy import Account

app = typer.Typer(no_args_is_help=True, help="Notification policy, log, dead letters.")
silence_app = typer.Typer(no_args_is_help=True, help="Maintenance windows (silences).")
app.add_typer(silence_app, name="silence")

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """``90``, ``90s``, ``15m``, ``4h``, ``2d``."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text)
    if not match:
        raise typer.BadParameter(f"not a duration: {text!r} (e.g. 30m, 4h, 1d)")
    return float(match.group(1)) * _UNITS[match.group(2) or "s"]


def _fail(exc: Exception) -> typer.Exit:
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(2)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _emit(rows: list[dict[str, Any]], as_json: bool, columns: list[str]) -> None:
    for row in rows:
        if as_json:
            typer.echo(json.dumps(row, default=str))
        else:
            typer.echo("  ".join(str(row.get(c) if row.get(c) is not None else "-")
                                 for c in columns))


@app.command()
def contacts(
    reseller: str = typer.Option(None, help="Reseller name or id (with --customer: its)."),
    customer: str = typer.Option(None, help="Customer name or id."),
    account: str = typer.Option(None, help="Account id: set the account's own contacts."),
    email: list[str] = typer.Option([], help="Address; repeat for several; none clears."),
) -> None:
    """Set who is always told: a reseller's or customer's addresses, or an account's contacts."""
    try:
        with database().session() as session:
            if account:
                admin.check_addresses(email)
                row = session.get(Account, account)
                if row is None:
                    raise admin.ConfigError(f"no account {account!r}")
                row.contacts = sorted(set(email))
                session.add(row)
            elif reseller:
                admin.set_contacts(session, reseller, customer, email)
            else:
                raise admin.ConfigError("name --reseller (and --customer) or --account")
    except admin.ConfigError as exc:
        raise _fail(exc) from exc
    typer.echo(f"contacts set: {', '.join(sorted(set(email))) or '(none)'}")


@app.command()
def repeat(
    reseller: str = typer.Option(..., help="Reseller name or id."),
    customer: str = typer.Option(None, help="Customer name or id (default: the reseller)."),
    every: str = typer.Option(..., help="Reminder interval (e.g. 4h); 0 = no reminders; "
                              "'default' = inherit."),
) -> None:
    """Set the reminder interval for alerts that stay firing."""
    seconds = None if every == "default" else parse_duration(every)
    try:
        with database().session() as session:
            admin.set_repeat(session, reseller, customer, seconds)
    except admin.ConfigError as exc:
        raise _fail(exc) from exc
    typer.echo(f"repeat interval: {every}")


@app.command()
def status(
    fingerprint: str = typer.Argument(None, help="Alert fingerprint (a prefix will do)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON lines."),
) -> None:
    """Per alert: state, when it was last notified, how many notifications went out."""
    with database().session() as session:
        rows = admin.alert_status(session, fingerprint)
    _emit([{"fingerprint": r.fingerprint, "kind": r.kind, "account_id": r.account_id,
            "job": r.job, "state": r.state, "last_notified_at": _iso(r.last_notified_at),
            "notification_count": r.notification_count, "reminders_sent": r.reminders_sent,
            "next_reminder_at": _iso(r.next_reminder_at)} for r in rows],
          as_json, ["fingerprint", "kind", "state", "last_notified_at", "notification_count"])


@app.command("list")
def list_notifications(
    status_: str = typer.Option(None, "--status", help="pending, sent or dead."),
    dead: bool = typer.Option(False, "--dead", help="Only dead letters (= --status dead)."),
    limit: int = typer.Option(100, help="At most this many, newest first."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON lines."),
) -> None:
    """The notification log (and delivery queue)."""
    with database().session() as session:
        rows = admin.notifications(session, "dead" if dead else status_, limit)
    _emit([{"id": r.id, "status": r.status, "channel": r.channel, "target": r.target,
            "transition": r.transition, "fingerprint": r.fingerprint, "attempts": r.attempts,
            "created_at": _iso(r.created_at), "sent_at": _iso(r.sent_at),
            "dead_at": _iso(r.dead_at), "last_error": r.last_error} for r in rows],
          as_json, ["id", "status", "channel", "target", "transition", "attempts", "last_error"])


@app.command()
def attempts(
    notification_id: int = typer.Argument(..., help="Notification id (see `list`)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON lines."),
) -> None:
    """Every delivery attempt of one notification."""
    with database().session() as session:
        rows = admin.attempts(session, notification_id)
    _emit([{"at": _iso(a.at), "status": a.status, "channel": a.channel, "target": a.target,
            "http_status": a.http_status, "duration_ms": a.duration_ms, "error": a.error}
           for a in rows], as_json, ["at", "status", "channel", "target", "http_status", "error"])


@app.command()
def replay(
    ids: list[int] = typer.Argument(None, help="Dead notification ids; none = all dead ones."),
) -> None:
    """Queue dead-lettered notifications again (a running notifier picks them up)."""
    with database().session() as session:
        count = delivery.replay(session, utcnow(), ids or None)
    typer.echo(f"replayed {count}")


@app.command()
def suppressed(
    limit: int = typer.Option(100, help="At most this many, newest first."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON lines."),
) -> None:
    """Transitions not notified, with the reason (silenced, inhibited, …)."""
    with database().session() as session:
        rows = session.exec(
            select(NotifyTransition).where(col(NotifyTransition.suppressed_reason).is_not(None))
            .order_by(col(NotifyTransition.id).desc()).limit(limit)
        ).all()
    _emit([{"key": r.key, "kind": r.alert.get("kind"), "transition": r.transition,
            "account_id": r.account_id, "reason": r.suppressed_reason,
            "at": _iso(r.planned_at)} for r in rows],
          as_json, ["at", "reason", "kind", "transition", "account_id", "key"])


@silence_app.command("add")
def silence_add(
    reseller: str = typer.Option(..., help="Reseller name or id."),
    customer: str = typer.Option(None, help="Customer name or id."),
    account: str = typer.Option(None, help="Account id."),
    duration: str = typer.Option(..., "--for", help="How long, from now (e.g. 2h)."),
    reason: str = typer.Option("", help="Why (shown in `silence list`)."),
) -> None:
    """Silence a reseller, customer or account for a while."""
    now = utcnow()
    try:
        with database().session() as session:
            reseller_id, customer_id = admin.scope(session, reseller, customer)
            row = silences.add(session, reseller_id=reseller_id, customer_id=customer_id,
                               account_id=account, starts_at=now,
                               ends_at=now + timedelta(seconds=parse_duration(duration)),
                               reason=reason)
    except (admin.ConfigError, ValueError) as exc:
        raise _fail(exc) from exc
    typer.echo(f"silence {row.id} until {row.ends_at.isoformat()}")


@silence_app.command("list")
def silence_list(
    expired: bool = typer.Option(False, help="Include expired silences."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON lines."),
) -> None:
    """Active (and with --expired, past) silences."""
    with database().session() as session:
        rows = silences.listing(session, include_expired=expired, at=utcnow())
    _emit([{"id": s.id, "reseller_id": s.reseller_id, "customer_id": s.customer_id,
            "account_id": s.account_id, "starts_at": _iso(s.starts_at),
            "ends_at": _iso(s.ends_at), "reason": s.reason} for s in rows],
          as_json, ["id", "reseller_id", "customer_id", "account_id", "ends_at", "reason"])


@silence_app.command("remove")
def silence_remove(silence_id: str = typer.Argument(..., help="Silence id.")) -> None:
    """End a silence now."""
    from services.notifier.tables import Silence

    with database().session() as session:
        row = session.get(Silence, silence_id)
        if row is None:
            raise _fail(admin.ConfigError(f"no silence {silence_id!r}"))
        row.ends_at = utcnow()
        session.add(row)
    typer.echo(f"ended {silence_id}")
