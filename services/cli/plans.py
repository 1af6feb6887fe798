"""``backstop plans`` and ``backstop targets``: backup plans, the inventory of targets and the
accounts plans report as, declared in YAML and applied like Kubernetes objects, and the history
of the plans' executions down to each task's files."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import typer

from services.cli import tables
from services.cli.common import (
    JSON_OBJECT,
    bus,
    database,
    fail,
    parse_duration,
    refusing,
    warn_if_contacts_unused,
)
from services.executor import admin, control
from services.executor.catalog import Applied

app = typer.Typer(no_args_is_help=True, help="Backup plans the executor runs, and their history.")
targets_app = typer.Typer(no_args_is_help=True, help="The inventory of targets plans back up.")

EXECUTION_COLUMNS = ["id", "queued_at", "targets", "items", "status", "succeeded", "failed",
                     "skipped", "error"]
ACTIVITY_COLUMNS = ["activity", "status_at", "target_pattern", "item_pattern", "action",
                    "status", "succeeded", "failed", "skipped"]
TASK_COLUMNS = ["task", "status_at", "target", "item", "files", "errors", "bytes", "duration",
                "status", "error"]


@app.command("apply")
def apply_(
    files: list[Path] = typer.Option(..., "--file", "-f", help="A YAML file of Account, Target "
                                     "and Plan objects (multi-document); repeat for several."),
    as_json: bool = JSON_OBJECT,
) -> None:
    """Create or update the accounts, targets and plans the files declare (all or nothing;
    accounts are created when missing, never deleted)."""
    with refusing(*admin.ERRORS):
        declared = admin.read_files(files)
        with database().session() as session:
            applied = admin.apply(session, declared)
    warn_if_contacts_unused(admin.declared_contacts(declared))
    if as_json:
        _dump({"applied": [a.row() for a in applied]})
        return
    for entry in applied:
        typer.echo(_applied_line(entry))


def _applied_line(entry: Applied) -> str:
    line = f"{entry.kind.lower()}/{entry.name} {entry.outcome}"
    if entry.kind == "Account" and entry.outcome == "created":
        # Its token and ping key stay unknown: a new one is issued on demand, shown once.
        line += (f" (id {entry.account_id}); issue its API token with "
                 f"`backstop tokens issue --account {entry.account_id}`")
    return line


@app.command("list")
def list_(
    as_json: bool = tables.JSON, limit: int = tables.LIMIT, offset: int = tables.OFFSET,
) -> None:
    """Every plan with its schedule and last execution."""
    with database().session() as session:
        rows = admin.plans(session)
    tables.emit(tables.Page.cut(rows, limit, offset),
                ["name", "enabled", "account", "job", "schedule", "windows", "activities",
                 "last_run", "last_status"], as_json=as_json)


@app.command()
def show(
    name: str = typer.Argument(..., help="A plan's name, or an execution's id."),
    task: str = typer.Option(None, "--task", help="Show this task of the execution (its id or "
                             "its number)."),
    files: bool = typer.Option(False, "--files", help="List the task's files."),
    as_json: bool = JSON_OBJECT,
) -> None:
    """A plan as applied, or an execution with its activities and tasks (DPOD's drill-down)."""
    with refusing(*admin.ERRORS), database().session() as session:
        if admin.is_plan(session, name):
            if task is not None or files:
                raise fail("--task and --files go with an execution id, not a plan name")
            _show_plan(admin.plan(session, name), as_json)
            return
        execution = admin.execution(session, name)
        if task is None and files:
            all_tasks = admin.tasks(session, name)
            if len(all_tasks) != 1:
                raise fail("--files needs --task when the execution has several tasks")
            task = str(all_tasks[0]["sequence"])
        if task is not None:
            found = admin.task(session, name, task)
            listed = admin.files(session, found["id"]) if files else None
            _show_task(found, listed, as_json)
            return
        execution["tasks"] = admin.tasks(session, name)
    _show_execution(execution, as_json)


@app.command()
def history(
    name: str = typer.Argument(..., help="The plan's name."),
    as_json: bool = tables.JSON, limit: int = tables.LIMIT, offset: int = tables.OFFSET,
) -> None:
    """A plan's executions, newest first (the last BACKSTOP_EXECUTOR_HISTORY_EXECUTIONS kept)."""
    with refusing(*admin.ERRORS), database().session() as session:
        rows, total = admin.history(session, name, limit=limit, offset=offset)
    tables.emit(tables.Page(rows, total, offset, limit), EXECUTION_COLUMNS, as_json=as_json,
                capped={"error"})


@app.command("run")
def run_(
    name: str = typer.Argument(..., help="The plan's name."),
    wait: bool = typer.Option(False, "--wait", help="Wait for the plan to end and print the "
                              "execution (exit status 1 when it did not succeed)."),
    timeout: str = typer.Option("6h", help="With --wait: give up waiting after this long "
                                "(e.g. 30m, 6h); the plan itself goes on."),
    as_json: bool = JSON_OBJECT,
) -> None:
    """Run a plan now, on an executor replica that may run it (also while it is disabled)."""
    with refusing(*admin.ERRORS, control.UnknownPlan), database().session() as session:
        trigger = control.prepare(session, name)
    seconds = parse_duration(timeout) if wait else None
    try:
        outcome = asyncio.run(_run(trigger, seconds))
    except control.NoOutcome as exc:
        raise fail(f"{exc}; it goes on: backstop plans show {trigger.execution_id}", 1) from exc
    if outcome is None:
        if as_json:
            _dump({"execution_id": trigger.execution_id, "plan": name, "status": "queued"})
        else:
            typer.echo(f"plan {name}: execution {trigger.execution_id} queued")
        return
    with refusing(*admin.ERRORS), database().session() as session:
        execution = admin.execution(session, trigger.execution_id)
        execution["tasks"] = admin.tasks(session, trigger.execution_id)
    _show_execution(execution, as_json)
    if outcome.status == "failure":
        raise typer.Exit(1)


async def _run(trigger: Any, seconds: float | None) -> Any:
    async with bus() as connection:
        return await control.run(connection, trigger, wait=seconds)


@app.command()
def enable(name: str = typer.Argument(..., help="The plan's name.")) -> None:
    """Let the plan run on its schedule again (until it is applied with changed content)."""
    _switch(name, True)


@app.command()
def disable(name: str = typer.Argument(..., help="The plan's name.")) -> None:
    """Stop scheduling the plan (until enabled, or applied with changed content)."""
    _switch(name, False)


def _switch(name: str, enabled: bool) -> None:
    with refusing(*admin.ERRORS), database().session() as session:
        changed = admin.set_enabled(session, name, enabled)
    state = "enabled" if enabled else "disabled"
    typer.echo(f"plan {name} {state}" if changed else f"plan {name} was already {state}")


@targets_app.command("list")
def list_targets(
    as_json: bool = tables.JSON, limit: int = tables.LIMIT, offset: int = tables.OFFSET,
) -> None:
    """The inventory: every target applied."""
    with database().session() as session:
        rows = admin.targets(session)
    tables.emit(tables.Page.cut(rows, limit, offset),
                ["name", "address", "labels", "ssh", "generation", "applied_at"],
                as_json=as_json)


# --- Printing -----------------------------------------------------------------------------------


def _dump(value: Any) -> None:
    typer.echo(json.dumps(value, default=str))


def _fields(row: dict[str, Any], names: list[str]) -> None:
    width = max(len(n) for n in names)
    for name in names:
        typer.echo(f"{name:{width}}  {tables.cell(row.get(name))}")


def _show_plan(row: dict[str, Any], as_json: bool) -> None:
    if as_json:
        _dump(row)
        return
    spec = row["document"].get("spec", {})
    summary = {**row, "account": spec.get("account"), "destination":
               spec.get("destination", {}).get("path"), "windows": spec.get("windows"),
               "schedule": " ".join(str(v) for v in (spec.get("schedule") or {}).values()),
               "recipients": spec.get("report", {}).get("recipients")}
    _fields(summary, ["name", "enabled", "account", "job", "schedule", "windows", "destination",
                      "recipients", "generation", "applied_at", "source"])
    typer.echo("")
    activities = [{"activity": i + 1, "action": a.get("action"), "targets": a.get("targets"),
                   "items": a.get("items"), "quiesce": a.get("quiesce") is not None,
                   "verify": a.get("verify"), "retention": a.get("retention") is not None}
                  for i, a in enumerate(spec.get("activities", []))]
    typer.echo(tables.render(activities, ["activity", "action", "targets", "items", "quiesce",
                                          "verify", "retention"]))


def _task_line(task: dict[str, Any]) -> dict[str, Any]:
    duration = task.get("duration")
    return {**task, "task": task["sequence"], "files": task["files_transferred"],
            "errors": task["transfer_errors"],
            "duration": None if duration is None else f"{duration:.1f}s"}


def _show_execution(execution: dict[str, Any], as_json: bool) -> None:
    if as_json:
        _dump(execution)
        return
    _fields(execution, ["id", "plan", "status", "queued_at", "started_at", "finished_at",
                        "runner", "targets", "items", "succeeded", "failed", "skipped", "error"])
    for script in execution.get("scripts", []):
        typer.echo(f"{script['name']} script: exit {script['exit_code']}")
    typer.echo("")
    activities = [{**a, "activity": a["activity"] + 1} for a in execution["activities"]]
    typer.echo(tables.render(activities, ACTIVITY_COLUMNS))
    typer.echo("")
    typer.echo(tables.render([_task_line(t) for t in execution["tasks"]], TASK_COLUMNS,
                             capped={"error"}))


def _show_task(task: dict[str, Any], files: list[dict[str, Any]] | None, as_json: bool) -> None:
    if as_json:
        _dump({**task, "files": files} if files is not None else task)
        return
    line = _task_line(task)
    _fields(line, ["id", "target", "item", "action", "status", "status_at", "started_at",
                   "finished_at", "duration", "files", "errors", "bytes", "output_path",
                   "error"])
    for name, value in task.get("facts", {}).items():
        typer.echo(f"fact {name}: {tables.cell(value)}")
    for removed in task.get("removed", []):
        typer.echo(f"removed by retention: {removed}")
    for script in task.get("scripts", []):
        typer.echo(f"\n--- {script['name']} script (exit {script['exit_code']}, "
                   f"{script['duration']:.1f}s): {script['command']}")
        typer.echo(script["output"].rstrip())
    if files is not None:
        typer.echo("")
        typer.echo(tables.render(files, ["path", "size", "checksum"]))
