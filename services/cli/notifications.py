"""``backstop notifications``: who is told and how often, silences, the notification log,
dead letters and their replay."""

from __future__ import annotations

import json
from datetime import timedelta

import typer

from services.cli import tables
from services.cli.common import (
    JSON_OBJECT,
    choice,
    database,
    parse_duration,
    parse_since,
    refusing,
    warn_if_contacts_unused,
)
from services.notifier import admin
from services.notifier.policy import silences
from services.notifier.queue import delivery
from shared.events import utcnow
from shared.tenancy import Account

app = typer.Typer(no_args_is_help=True, help="Notification policy, log, dead letters.")
silence_app = typer.Typer(no_args_is_help=True, help="Maintenance windows (silences).")
app.add_typer(silence_app, name="silence")

KIND = typer.Option(None, help="Alert kind (failed_run, missed_run, quota, …).")
SINCE = typer.Option(None, help="Created since: 24h, 7d, or an ISO time.")


@app.command()
def contacts(
    reseller: str = typer.Option(None, help="Reseller name or id (with --customer: its)."),
    customer: str = typer.Option(None, help="Customer name or id."),
    account: str = typer.Option(None, help="Account id: set the account's own contacts."),
    email: list[str] = typer.Option([], help="Address; repeat for several; none clears."),
) -> None:
    """Set who is always told: a reseller's or customer's addresses, or an account's contacts."""
    with refusing(admin.ConfigError), database().session() as session:
        if account:
            admin.check_addresses(email)
            row = session.get(Account, account)
            if row is None:
                raise admin.ConfigError(f"no account {account!r}")
            row.contacts = sorted(set(email))
            session.add(row)
            warn_if_contacts_unused(email)
        elif reseller:
            admin.set_contacts(session, reseller, customer, email)
        else:
            raise admin.ConfigError("name --reseller (and --customer) or --account")
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
    with refusing(admin.ConfigError), database().session() as session:
        admin.set_repeat(session, reseller, customer, seconds)
    typer.echo(f"repeat interval: {every}")


@app.command()
def status(
    fingerprint: str = typer.Argument(None, help="Alert fingerprint (a prefix will do)."),
    state: str | None = typer.Option(None, help="firing or resolved."),
    kind: str = KIND,
    limit: int = tables.LIMIT,
    offset: int = tables.OFFSET,
    as_json: bool = tables.JSON,
) -> None:
    """Per alert: state, when it was last notified, how many notifications went out, how many
    are dead letters."""
    with database().session() as session:
        page = admin.alert_status(session, fingerprint,
                                  state=choice(state, admin.ALERT_STATES, "--state"),
                                  kind=kind, limit=limit, offset=offset)
    rows = [{"fingerprint": r.state.fingerprint, "kind": r.state.kind,
             "account_id": r.state.account_id, "job": r.state.job, "state": r.state.state,
             "last_notified_at": r.state.last_notified_at,
             "notification_count": r.state.notification_count, "dead": r.dead,
             "reminders_sent": r.state.reminders_sent,
             "next_reminder_at": r.state.next_reminder_at} for r in page.items]
    tables.emit(tables.Page(rows, page.total, offset, limit),
                ["fingerprint", "kind", "state", "job", "last_notified_at", "notification_count",
                 "dead"], as_json=as_json)


@app.command("list")
def list_notifications(
    status_: str = typer.Option(None, "--status", "--state", help="pending, sent or dead."),
    dead: bool = typer.Option(False, "--dead", help="Only dead letters (= --status dead)."),
    kind: str = KIND,
    channel: str = typer.Option(None, help="email or webhook."),
    since: str = SINCE,
    limit: int = tables.LIMIT,
    offset: int = tables.OFFSET,
    as_json: bool = tables.JSON,
) -> None:
    """The notification log (and delivery queue), newest first, a page at a time."""
    filters = admin.Filters(
        status="dead" if dead else choice(status_, admin.NOTIFICATION_STATUSES, "--status"),
        kind=kind, channel=choice(channel, ("email", "webhook"), "--channel"),
        since=parse_since(since, utcnow()) if since else None)
    with database().session() as session:
        page = admin.notifications(session, filters, limit, offset)
    rows = [{"id": r.id, "status": r.status, "channel": r.channel, "target": r.target,
             "kind": r.alert.get("kind"), "transition": r.transition,
             "fingerprint": r.fingerprint, "attempts": r.attempts, "created_at": r.created_at,
             "sent_at": r.sent_at, "dead_at": r.dead_at, "last_error": r.last_error}
            for r in page.items]
    tables.emit(tables.Page(rows, page.total, offset, limit),
                ["id", "status", "channel", "target", "kind", "transition", "attempts",
                 "created_at", "last_error"], as_json=as_json, capped=["last_error"])


@app.command()
def count(
    kind: str = KIND,
    channel: str = typer.Option(None, help="email or webhook (notifications)."),
    since: str = typer.Option(None, help="Notifications created since: 24h, 7d, or an ISO "
                              "time."),
    as_json: bool = JSON_OBJECT,
) -> None:
    """How many alerts (by state and kind) and notifications (by status, channel and kind)."""
    filters = admin.Filters(kind=kind, channel=choice(channel, ("email", "webhook"),
                                                        "--channel"),
                            since=parse_since(since, utcnow()) if since else None)
    with database().session() as session:
        counts = admin.counts(session, filters)
    alerts = [{"state": s, "kind": k, "count": n} for s, k, n in counts.alerts]
    notes = [{"status": s, "channel": c, "kind": k, "count": n}
             for s, c, k, n in counts.notifications]
    totals = {"alerts": sum(n for *_, n in counts.alerts),
              "notifications": sum(n for *_, n in counts.notifications)}
    if as_json:
        typer.echo(json.dumps({
            "alerts": {"total": totals["alerts"], "groups": alerts},
            "notifications": {"total": totals["notifications"], "groups": notes},
        }))
        return
    typer.echo(f"alerts: {totals['alerts']}")
    typer.echo(tables.render(alerts, ["state", "kind", "count"]))
    typer.echo(f"\nnotifications: {totals['notifications']}")
    typer.echo(tables.render(notes, ["status", "channel", "kind", "count"]))


@app.command()
def attempts(
    notification_id: int = typer.Argument(..., help="Notification id (see `list`)."),
    as_json: bool = tables.JSON, limit: int = tables.LIMIT, offset: int = tables.OFFSET,
) -> None:
    """Every delivery attempt of one notification, oldest first."""
    with database().session() as session:
        rows = admin.attempts(session, notification_id)
    listing = [{"at": a.at, "status": a.status, "channel": a.channel, "target": a.target,
                "http_status": a.http_status, "duration_ms": a.duration_ms, "error": a.error}
               for a in rows]
    tables.emit(tables.Page.cut(listing, limit, offset),
                ["at", "status", "channel", "target", "http_status", "error"],
                as_json=as_json, capped=["error"])


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
    limit: int = tables.LIMIT,
    offset: int = tables.OFFSET,
    as_json: bool = tables.JSON,
) -> None:
    """Transitions not notified, with the reason (silenced, inhibited, …), newest first."""
    with database().session() as session:
        page = admin.suppressed(session, limit, offset)
    rows = [{"key": r.key, "kind": r.alert.get("kind"), "transition": r.transition,
             "account_id": r.account_id, "reason": r.suppressed_reason, "at": r.planned_at}
            for r in page.items]
    tables.emit(tables.Page(rows, page.total, offset, limit),
                ["at", "reason", "kind", "transition", "account_id", "key"], as_json=as_json)


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
    with refusing(admin.ConfigError), database().session() as session:
        reseller_id, customer_id = admin.scope(session, reseller, customer)
        row = admin.add_silence(session, reseller_id=reseller_id, customer_id=customer_id,
                                account_id=account, starts_at=now,
                                ends_at=now + timedelta(seconds=parse_duration(duration)),
                                reason=reason)
    typer.echo(f"silence {row.id} until {row.ends_at.isoformat()}")


@silence_app.command("list")
def silence_list(
    expired: bool = typer.Option(False, help="Include expired silences."),
    as_json: bool = tables.JSON, limit: int = tables.LIMIT, offset: int = tables.OFFSET,
) -> None:
    """Active (and with --expired, past) silences, oldest first."""
    with database().session() as session:
        rows = silences.listing(session, include_expired=expired, at=utcnow())
    listing = [{"id": s.id, "reseller_id": s.reseller_id, "customer_id": s.customer_id,
                "account_id": s.account_id, "starts_at": s.starts_at, "ends_at": s.ends_at,
                "reason": s.reason} for s in rows]
    tables.emit(tables.Page.cut(listing, limit, offset),
                ["id", "reseller_id", "customer_id", "account_id", "ends_at", "reason"],
                as_json=as_json, capped=["reason"])


@silence_app.command("remove")
def silence_remove(silence_id: str = typer.Argument(..., help="Silence id.")) -> None:
    """End a silence now."""
    with refusing(admin.ConfigError), database().session() as session:
        admin.end_silence(session, silence_id, utcnow())
    typer.echo(f"ended {silence_id}")
