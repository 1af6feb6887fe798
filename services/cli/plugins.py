"""``backstop plugins``: the executor's plugins (built in or installed with pip) and their
actions."""

from __future__ import annotations

import json
from typing import Any

import typer
from pydantic_core import PydanticUndefined

from services.cli import tables
from services.cli.common import fail
from services.executor.plugins import registry
from services.executor.plugins.api import PluginNotFound

app = typer.Typer(no_args_is_help=True, help="The executor's plugins and their actions.")


@app.command("list")
def list_plugins(as_json: bool = tables.JSON, limit: int = tables.LIMIT,
                 offset: int = tables.OFFSET) -> None:
    """Every plugin: its actions and the distribution that provides it (`backstop` for the
    built-ins). A plugin that could not be loaded is listed with its error."""
    rows = [info.row() for info in registry.load().all()]
    tables.emit(tables.Page.cut(rows, limit, offset),
                ["plugin", "actions", "distribution", "version", "error"],
                as_json=as_json, capped={"error"})


@app.command()
def show(name: str = typer.Argument(..., help="A plugin's name, e.g. rsync."),
         as_json: bool = typer.Option(False, "--json", help="Print one JSON object.")) -> None:
    """A plugin's actions and the options each takes (what a plan's activity may set)."""
    found = registry.load()
    try:
        plugin = found.plugin(name)
    except PluginNotFound as exc:
        raise fail(exc.reason) from None
    info = found.plugins[name]
    actions: list[dict[str, Any]] = [{"action": f"{name}.{a.name}", "summary": a.summary,
                "options": [_option(field, spec) for field, spec in
                            a.options.model_fields.items()]} for a in plugin.actions]
    if as_json:
        typer.echo(json.dumps({**info.row(), "actions": actions,
                               "quiesces": plugin.quiesces, "discovers": plugin.discovers}))
        return
    typer.echo(f"{name} ({info.distribution} {info.version}): {plugin.summary}")
    typer.echo(f"discovers items: {tables.cell(plugin.discovers)}; "
               f"quiesces: {tables.cell(plugin.quiesces)}")
    for action in actions:
        typer.echo(f"\n{action['action']}: {action['summary']}")
        typer.echo(tables.render(action["options"],
                                 ["option", "type", "default", "description"]))


def _option(field: str, spec: Any) -> dict[str, Any]:
    if spec.default is not PydanticUndefined:
        default = spec.default
    elif spec.default_factory is not None:
        default = spec.default_factory()
    else:
        default = "(required)"
    annotation = spec.annotation
    kind = annotation.__name__ if type(annotation) is type else str(annotation)
    return {"option": field, "type": kind.replace("typing.", "").replace("pathlib.", ""),
            "default": default if not isinstance(default, list | dict) or default else None,
            "description": spec.description or ""}
