"""``backstop runs``: a job's runs from the run history, newest first."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import typer

from services.cli import tables
from services.cli.common import database, fail
from services.portal.queries.runs import MAX_PAGE, RunRow, runs_of_job
from shared.scopes import Scope

app = typer.Typer(no_args_is_help=True, help="Runs of a job, from the run history.")

COLUMNS = ["run", "status", "started", "duration_s", "bytes", "files", "exit_code", "message"]


@app.command("list")
def list_runs(
    job: str = typer.Option(..., "--job", help="The job's id (`backstop jobs list` shows it)."),
    as_json: bool = tables.JSON, limit: int = tables.LIMIT, offset: int = tables.OFFSET,
) -> None:
    """The job's runs, newest first: status, start, duration, bytes, files, exit code and
    message (`--json` adds the log excerpt and the rest)."""
    rows: list[RunRow] = []
    with database().session() as session:
        cursor: str | None = None
        total = 0
        while True:
            want = min(limit - len(rows), MAX_PAGE) if limit else MAX_PAGE
            page = runs_of_job(session, Scope.everything(), job, limit=want,
                               offset=offset if cursor is None else 0, before=cursor)
            if page is None:
                raise fail(f"no job {job!r}")
            rows += page.items
            total, cursor = page.total, page.next_cursor
            if cursor is None or (limit and len(rows) >= limit):
                break
    shown = [_listed(row, as_json) for row in rows]
    tables.emit(tables.Page(shown, total, offset, limit), COLUMNS, as_json=as_json,
                capped={"message"})


def _listed(row: RunRow, as_json: bool) -> dict[str, Any]:
    if as_json:
        return asdict(row)
    return {
        "run": row.run_id, "status": row.status, "started": row.started_at or row.at,
        "duration_s": None if row.duration_seconds is None else round(row.duration_seconds, 1),
        "bytes": row.bytes_transferred, "files": row.files_transferred,
        "exit_code": row.exit_code, "message": row.message,
    }
