"""``backstop executor pause|resume|status``: the global switch of every executor replica
(DPOD's "the system allows backups") and what the replicas are doing."""

from __future__ import annotations

import asyncio
import getpass
import json

import typer

from services.cli import tables
from services.cli.common import JSON_OBJECT, bus
from services.executor import control

app = typer.Typer(no_args_is_help=True, help="All executor replicas at once: pause, resume, "
                  "status.")


def _who() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


@app.command()
def pause(reason: str = typer.Option("", help="Why, shown by executor status.")) -> None:
    """No plan starts until resumed (running plans finish); kept across restarts."""
    state = asyncio.run(_set(True, reason))
    typer.echo(f"executor paused at {state.changed_at:%Y-%m-%d %H:%M:%S} UTC; no plan starts "
               "until `backstop executor resume`")


@app.command()
def resume() -> None:
    """Let plans start again."""
    asyncio.run(_set(False, ""))
    typer.echo("executor resumed: plans start again")


async def _set(paused: bool, reason: str) -> control.SwitchState:
    async with bus() as connection:
        if paused:
            return await control.pause(connection, by=_who(), reason=reason)
        return await control.resume(connection, by=_who())


@app.command()
def status(as_json: bool = JSON_OBJECT) -> None:
    """Paused or not, the live replicas, triggers waiting, targets left to unquiesce."""
    found = asyncio.run(_status())
    if as_json:
        typer.echo(json.dumps(found.as_json(), indent=2))
        return
    switch = found.switch
    if switch.paused:
        since = f" since {switch.changed_at:%Y-%m-%d %H:%M:%S} UTC" if switch.changed_at else ""
        why = f": {switch.reason}" if switch.reason else ""
        typer.echo(f"paused{since} by {switch.by or 'unknown'}{why}")
    else:
        typer.echo("running (not paused)")
    typer.echo(f"triggers waiting: {found.waiting}")
    typer.echo("")
    typer.echo(tables.render(found.replicas, ["replica", "labels", "running", "seen_at"]))
    if found.open_intents:
        typer.echo("")
        typer.echo("left quiesced by a replica that died (finished by the live ones):")
        typer.echo(tables.render(found.open_intents,
                                 ["target", "item", "plan", "execution", "replica"]))


async def _status() -> control.Status:
    async with bus() as connection:
        return await control.status(connection)
