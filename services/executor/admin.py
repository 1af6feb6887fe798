"""Administration of the executor for the command line: apply plan, inventory and account files,
list and switch plans, read the history. Commands reach the executor only through here; its
errors are :data:`ERRORS` (an operator's invalid request)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlmodel import Session

from services.executor import catalog, drilldown
from services.executor.catalog import Applied, CatalogError
from services.executor.drilldown import NotFound, Row
from services.executor.plans.files import PlanFileError, load_files
from services.executor.plans.models import Account
from services.executor.plugins import registry
from shared.scopes import Scope
from shared.tenancy import TenancyError

ERRORS: tuple[type[Exception], ...] = (PlanFileError, CatalogError, NotFound, TenancyError)
EVERYTHING = Scope.everything()


def read_files(paths: Sequence[Path | str]) -> list[Any]:
    """Load and validate the files (nothing stored yet); :class:`PlanFileError` otherwise."""
    return load_files(paths)


def apply(session: Session, declared: list[Any], plugins: Any | None = None) -> list[Applied]:
    """Store the objects read by :func:`read_files`, after the checks against the database and
    the installed plugins (all or nothing)."""
    return catalog.apply(session, declared, plugins if plugins is not None else registry.load())


def declared_contacts(declared: list[Any]) -> list[str]:
    """The contact addresses the declared accounts give."""
    return [address for entry in declared if isinstance(entry.obj, Account)
            for address in entry.obj.spec.contacts or ()]


def plans(session: Session) -> list[Row]:
    return drilldown.plans(session, EVERYTHING)


def plan(session: Session, name: str) -> Row:
    return drilldown.plan(session, EVERYTHING, name)


def is_plan(session: Session, name: str) -> bool:
    try:
        drilldown.plan(session, EVERYTHING, name)
    except NotFound:
        return False
    return True


def set_enabled(session: Session, name: str, enabled: bool) -> bool:
    return catalog.set_enabled(session, EVERYTHING, name, enabled)


def targets(session: Session) -> list[Row]:
    return [{"name": row.name, "address": row.address, "labels": row.labels,
             "ssh": row.document.get("spec", {}).get("ssh") is not None,
             "generation": row.generation, "applied_at": row.applied_at, "source": row.source}
            for row in catalog.target_rows(session)]


def history(session: Session, name: str, *, limit: int, offset: int) -> tuple[list[Row], int]:
    return drilldown.executions(session, EVERYTHING, name, limit=limit, offset=offset)


def execution(session: Session, execution_id: str) -> Row:
    return drilldown.execution(session, EVERYTHING, execution_id)


def tasks(session: Session, execution_id: str) -> list[Row]:
    return drilldown.tasks(session, EVERYTHING, execution_id)[0]


def task(session: Session, execution_id: str, task: str) -> Row:
    """A task by its id or its number in the execution."""
    found = drilldown.task(session, EVERYTHING, drilldown.full_task_id(execution_id, task))
    if found["execution_id"] != execution_id:
        raise NotFound(f"no task {task!r} in execution {execution_id}")
    return found


def files(session: Session, task_id: str) -> list[Row]:
    return drilldown.files(session, EVERYTHING, task_id)[0]
