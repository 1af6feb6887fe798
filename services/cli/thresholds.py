"""``backstop thresholds``: the evaluator's thresholds and tolerances, per reseller, customer,
account or job, and the minimum version of each backup client."""

from __future__ import annotations

import json
from datetime import timedelta

import typer
from sqlmodel import Session, select

from services.cli import tables
from services.cli.accounts import database
from services.evaluator import overruns
from services.evaluator.policies import (
    SETTINGS,
    PolicyBook,
    PolicyError,
    Scope,
    Value,
    job_scope_id,
    parse_value,
    parse_version,
)
from services.evaluator.store import load_policies, set_override
from services.evaluator.tables import ClientMinVersion, JobState, ThresholdOverride
from shared.events import Tenant
from shared.tenancy import Account, Customer, Reseller

app = typer.Typer(no_args_is_help=True, help="Alert thresholds, tolerances, minimum versions.")

RESELLER = typer.Option(None, help="Reseller id or name.")
CUSTOMER = typer.Option(None, help="Customer id.")
ACCOUNT = typer.Option(None, help="Account id.")
JOB = typer.Option(None, help="Job name (with --account).")


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


def _scope(
    session: Session, reseller: str | None, customer: str | None, account: str | None,
    job: str | None,
) -> tuple[Scope, str]:
    """Exactly one target; it must exist (a typo must not create a setting nobody reads)."""
    if job is not None and account is None:
        raise _fail("--job needs --account")
    given = [v for v in (reseller, customer, account) if v is not None]
    if len(given) != 1:
        raise _fail("give exactly one of --reseller, --customer, --account")
    if account is not None:
        if session.get(Account, account) is None:
            raise _fail(f"no account {account!r}")
        return ("job", job_scope_id(account, job)) if job else ("account", account)
    if customer is not None:
        if session.get(Customer, customer) is None:
            raise _fail(f"no customer {customer!r}")
        return "customer", customer
    assert reseller is not None
    found = session.get(Reseller, reseller) or session.exec(
        select(Reseller).where(Reseller.name == reseller)).first()
    if found is None:
        raise _fail(f"no reseller {reseller!r}")
    return "reseller", found.id


@app.command("set")
def set_(
    name: str = typer.Argument(..., help="Setting name (see `thresholds defaults`)."),
    value: str = typer.Argument(..., help="New value."),
    reseller: str = RESELLER, customer: str = CUSTOMER, account: str = ACCOUNT, job: str = JOB,
) -> None:
    """Set a threshold for a reseller, customer, account or job; the most specific wins."""
    try:
        parse_value(name, value)
    except PolicyError as exc:
        raise _fail(str(exc)) from exc
    with database().session() as session:
        scope, scope_id = _scope(session, reseller, customer, account, job)
        set_override(session, scope, scope_id, name, value)
    typer.echo(f"{scope} {scope_id}: {name} = {value}")


@app.command()
def unset(
    name: str = typer.Argument(..., help="Setting name."),
    reseller: str = RESELLER, customer: str = CUSTOMER, account: str = ACCOUNT, job: str = JOB,
) -> None:
    """Remove a threshold: the next less specific one (or the default) applies again."""
    with database().session() as session:
        scope, scope_id = _scope(session, reseller, customer, account, job)
        row = session.exec(select(ThresholdOverride).where(
            ThresholdOverride.scope == scope, ThresholdOverride.scope_id == scope_id,
            ThresholdOverride.name == name)).first()
        if row is None:
            raise _fail(f"{name} is not set for {scope} {scope_id}")
        session.delete(row)
    typer.echo(f"{scope} {scope_id}: {name} unset")


@app.command("list")
def list_(
    as_json: bool = tables.JSON, limit: int = tables.LIMIT, offset: int = tables.OFFSET,
) -> None:
    """Every threshold set, and every minimum client version (scope `client`)."""
    with database().session() as session:
        rows = session.exec(select(ThresholdOverride).order_by(
            ThresholdOverride.scope, ThresholdOverride.scope_id, ThresholdOverride.name)).all()
        versions = session.exec(select(ClientMinVersion).order_by(
            ClientMinVersion.client_name)).all()
    listing = [{"scope": row.scope, "scope_id": row.scope_id, "name": row.name,
                "value": row.value} for row in rows]
    listing += [{"scope": "client", "scope_id": v.client_name, "name": "min_version",
                 "value": v.min_version} for v in versions]
    tables.emit(tables.Page.cut(listing, limit, offset), ["scope", "scope_id", "name", "value"],
                as_json=as_json)


@app.command()
def defaults(
    as_json: bool = tables.JSON, limit: int = tables.LIMIT, offset: int = tables.OFFSET,
) -> None:
    """The settings, their defaults and what they mean."""
    listing = [{"name": s.name, "default": s.default, "description": s.description}
               for s in SETTINGS.values()]
    tables.emit(tables.Page.cut(listing, limit, offset), ["name", "default", "description"],
                as_json=as_json)


@app.command()
def effective(
    account: str = typer.Option(..., help="Account id."), job: str = JOB,
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object: name -> value."),
) -> None:
    """The values that apply to an account (or one of its jobs), after inheritance, where each
    comes from, and what bounds a run that never finishes."""
    with database().session() as session:
        found = session.get(Account, account)
        if found is None:
            raise _fail(f"no account {account!r}")
        book = load_policies(session)
        state = None if job is None else session.exec(select(JobState).where(
            JobState.account_id == account, JobState.job_name == job)).first()
    tenant = found.tenant()
    # The values the job's client sent with its schedule count, as they do for the evaluator.
    from_schedule = state.schedule_settings if state else None
    resolved = {name: book.resolve(name, tenant, job, from_schedule) for name in SETTINGS}
    if as_json:
        typer.echo(json.dumps({name: value for name, (value, _) in resolved.items()}))
        return
    typer.echo(tables.render([{"setting": name, "value": value, "from": source}
                              for name, (value, source) in resolved.items()],
                             ["setting", "value", "from"]))
    typer.echo("")
    if job is None:
        for scheduled, which in ((True, "jobs with a schedule"),
                                 (False, "jobs without a schedule")):
            typer.echo(f"run_too_long, {which}: "
                       + _too_long(book, tenant, None, scheduled=scheduled))
        return
    schedule = _schedule_text(state)
    typer.echo(f"schedule: {schedule or 'none known to the evaluator'}")
    typer.echo("run_too_long: " + _too_long(book, tenant, job, scheduled=schedule is not None,
                                             from_schedule=from_schedule))


def _schedule_text(state: JobState | None) -> str | None:
    if state is None:
        return None
    if state.cron:
        return f"cron {state.cron} ({state.timezone or 'UTC'})"
    if state.interval_seconds:
        return f"every {state.interval_seconds} s"
    return None


def _too_long(book: PolicyBook, tenant: Tenant, job: str | None, *, scheduled: bool,
              from_schedule: dict[str, Value] | None = None) -> str:
    """When a started run that never finishes raises the alert, in words, or that it never does."""
    bound = overruns.bound(book, tenant, job, scheduled=scheduled, from_schedule=from_schedule)
    if bound is None:
        return ("NOT ARMED: max_runtime_seconds and unscheduled_max_runtime_seconds are 0 and "
                "there is no schedule, so a run that never finishes raises no alert")
    if bound.setting is None:
        return "fires when a started run has not finished within the schedule's period"
    return (f"fires when a started run has not finished after {bound.seconds} s "
            f"({timedelta(seconds=bound.seconds)}; {bound.setting}, from {bound.source})")


@app.command("min-version")
def min_version(
    client: str = typer.Argument(..., help="Client name as it reports itself, e.g. restic."),
    version: str = typer.Argument(None, help="Minimum version (PEP 440); omit with --remove."),
    remove: bool = typer.Option(False, "--remove", help="Drop the minimum for this client."),
) -> None:
    """Set the minimum version of a backup client: older ones raise outdated-client alerts."""
    with database().session() as session:
        row = session.get(ClientMinVersion, client)
        if remove:
            if row is None:
                raise _fail(f"no minimum set for {client!r}")
            session.delete(row)
            typer.echo(f"{client}: minimum removed")
            return
        if version is None:
            raise _fail("give a version, or --remove")
        try:
            parse_version(version)
        except PolicyError as exc:
            raise _fail(str(exc)) from exc
        row = row or ClientMinVersion(client_name=client, min_version=version)
        row.min_version = version
        session.add(row)
    typer.echo(f"{client}: minimum version {version}")
