"""``backstop thresholds``: the evaluator's thresholds and tolerances, per reseller, customer,
account or job, and the minimum version of each backup client."""

from __future__ import annotations

import json
from datetime import timedelta

import typer

from services.cli import tables
from services.cli.common import database, fail, refusing
from services.evaluator import admin
from shared.config import EvaluatorSettings

app = typer.Typer(no_args_is_help=True, help="Alert thresholds, tolerances, minimum versions.")

RESELLER = typer.Option(None, help="Reseller id or name.")
CUSTOMER = typer.Option(None, help="Customer id.")
ACCOUNT = typer.Option(None, help="Account id.")
JOB = typer.Option(None, help="Job name (with --account).")


@app.command("set")
def set_(
    name: str = typer.Argument(..., help="Setting name (see `thresholds defaults`)."),
    value: str = typer.Argument(..., help="New value."),
    reseller: str = RESELLER, customer: str = CUSTOMER, account: str = ACCOUNT, job: str = JOB,
) -> None:
    """Set a threshold for a reseller, customer, account or job; the most specific wins."""
    with refusing(admin.ConfigError):
        admin.check_value(name, value)
        with database().session() as session:
            scope, scope_id = admin.target(session, reseller=reseller, customer=customer,
                                           account=account, job=job)
            admin.set_threshold(session, scope, scope_id, name, value)
    typer.echo(f"{scope} {scope_id}: {name} = {value}")


@app.command()
def unset(
    name: str = typer.Argument(..., help="Setting name."),
    reseller: str = RESELLER, customer: str = CUSTOMER, account: str = ACCOUNT, job: str = JOB,
) -> None:
    """Remove a threshold: the next less specific one (or the default) applies again."""
    with refusing(admin.ConfigError), database().session() as session:
        scope, scope_id = admin.target(session, reseller=reseller, customer=customer,
                                       account=account, job=job)
        admin.unset_threshold(session, scope, scope_id, name)
    typer.echo(f"{scope} {scope_id}: {name} unset")


@app.command("list")
def list_(
    as_json: bool = tables.JSON, limit: int = tables.LIMIT, offset: int = tables.OFFSET,
) -> None:
    """Every threshold set, and every minimum client version (scope `client`)."""
    with database().session() as session:
        rows = admin.thresholds(session)
        versions = admin.min_versions(session)
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
               for s in admin.defaults()]
    tables.emit(tables.Page.cut(listing, limit, offset), ["name", "default", "description"],
                as_json=as_json)


@app.command()
def effective(
    account: str = typer.Option(..., help="Account id."), job: str = JOB,
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object: name -> value."),
) -> None:
    """The values that apply to an account (or one of its jobs), after inheritance, where each
    comes from, and what bounds a run that never finishes."""
    with refusing(admin.ConfigError), database().session() as session:
        found = admin.effective(session, account, job, EvaluatorSettings())
    if found.directory_error:
        typer.echo(f"warning: the LDAP directory did not answer ({found.directory_error}); "
                   "values it may hold are not shown", err=True)
    resolved = found.values
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
                       + _too_long(found.run_bound(scheduled=scheduled)))
        return
    typer.echo(f"schedule: {found.schedule or 'none known to the evaluator'}")
    typer.echo("run_too_long: " + _too_long(found.run_bound(scheduled=found.schedule is not None)))


def _too_long(bound: admin.Bound | None) -> str:
    """When a started run that never finishes raises the alert, in words, or that it never does."""
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
    if not remove and version is None:
        raise fail("give a version, or --remove")
    with refusing(admin.ConfigError), database().session() as session:
        if remove:
            admin.remove_min_version(session, client)
        else:
            admin.set_min_version(session, client, version)
    typer.echo(f"{client}: minimum removed" if remove else f"{client}: minimum version {version}")
