"""The applied plans and targets: ``backstop plans apply -f FILE`` stores each object of the
files as declared (a plan or target applied again with the same content is unchanged, with new
content updated), after the checks a file alone cannot make: the account a plan reports as
exists, each activity's action is a plugin's, and its options are the action's."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlmodel import Session, col, select

from services.executor.plans.files import Declared, PlanFileError, Problem
from services.executor.plans.models import Inventory, Plan, Target, account_parts
from services.executor.tables import PlanRow, TargetRow
from shared.db import core_table
from shared.events import utcnow
from shared.scopes import Scope
from shared.tenancy import Account, Customer, Reseller

Outcome = Literal["created", "updated", "unchanged"]


class CatalogError(LookupError):
    """No such plan (in the caller's scope) or target."""


@dataclass(frozen=True)
class Applied:
    kind: str
    name: str
    outcome: Outcome
    generation: int

    def row(self) -> dict[str, object]:
        return {"kind": self.kind, "name": self.name, "outcome": self.outcome,
                "generation": self.generation}


def document(obj: Plan | Target) -> dict[str, Any]:
    return obj.model_dump(mode="json", by_alias=True)


def digest(doc: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def check(session: Session, declared: Sequence[Declared], plugins: Any) -> list[Problem]:
    """The problems found against the database and the installed plugins."""
    problems: list[Problem] = []
    for entry in declared:
        if not isinstance(entry.obj, Plan):
            continue
        plan = entry.obj
        if find_account(session, plan.spec.account) is None:
            problems.append(entry.problem(("spec", "account"),
                                          f"no account {plan.spec.account!r} (create it with "
                                          "backstop accounts create)"))
        for index, activity in enumerate(plan.spec.activities):
            at = ("spec", "activities", index)
            try:
                plugin, _ = plugins.for_action(activity.action)
                plugin.options(activity.action, activity.options)
            except Exception as exc:
                errors = getattr(exc, "errors", None)
                if errors:
                    for error in errors:
                        loc = tuple(str(error["loc"]).split(".")) if error["loc"] else ()
                        problems.append(entry.problem((*at, "options", *loc), error["msg"]))
                else:
                    problems.append(entry.problem((*at, "action"), getattr(exc, "reason",
                                                                           str(exc))))
                continue
            if activity.quiesce is not None and not plugin.quiesces:
                problems.append(entry.problem((*at, "quiesce"),
                                              f"plugin {plugin.name} cannot quiesce"))
    return problems


def apply(session: Session, declared: Sequence[Declared], plugins: Any) -> list[Applied]:
    """Store every object, or none (:class:`PlanFileError` with every problem)."""
    problems = check(session, declared, plugins)
    if problems:
        raise PlanFileError(problems)
    out = []
    for entry in declared:
        source = f"{entry.file}:{entry.line}"
        if isinstance(entry.obj, Target):
            out.append(_apply_target(session, entry.obj, source))
        else:
            out.append(_apply_plan(session, entry.obj, source))
    return out


def _apply_target(session: Session, target: Target, source: str) -> Applied:
    doc = document(target)
    row = session.get(TargetRow, target.name)
    if row is None:
        session.add(TargetRow(name=target.name, address=target.spec.address,
                              labels=dict(target.labels), document=doc, source=source,
                              digest=digest(doc)))
        return Applied("Target", target.name, "created", 1)
    if row.digest == digest(doc):
        return Applied("Target", target.name, "unchanged", row.generation)
    row.address, row.labels, row.document = target.spec.address, dict(target.labels), doc
    row.source, row.digest, row.generation = source, digest(doc), row.generation + 1
    row.applied_at = utcnow()
    session.add(row)
    return Applied("Target", target.name, "updated", row.generation)


def _apply_plan(session: Session, plan: Plan, source: str) -> Applied:
    account = find_account(session, plan.spec.account)
    assert account is not None  # checked
    doc = document(plan)
    row = session.get(PlanRow, plan.name)
    if row is None:
        session.add(PlanRow(name=plan.name, reseller_id=account.reseller_id,
                            customer_id=account.customer_id, account_id=account.id,
                            job=plan.job, enabled=plan.spec.enabled, document=doc,
                            source=source, digest=digest(doc)))
        return Applied("Plan", plan.name, "created", 1)
    if row.digest == digest(doc):
        return Applied("Plan", plan.name, "unchanged", row.generation)
    row.reseller_id, row.customer_id, row.account_id = (account.reseller_id,
                                                         account.customer_id, account.id)
    row.job, row.enabled, row.document = plan.job, plan.spec.enabled, doc
    row.source, row.digest, row.generation = source, digest(doc), row.generation + 1
    row.applied_at = utcnow()
    session.add(row)
    return Applied("Plan", plan.name, "updated", row.generation)


def find_account(session: Session, path: str) -> Account | None:
    """The account of ``reseller/customer/account`` (names)."""
    reseller, customer, account = account_parts(path)
    return session.exec(
        select(Account).join(Customer, col(Customer.id) == col(Account.customer_id))
        .join(Reseller, col(Reseller.id) == col(Account.reseller_id))
        .where(Reseller.name == reseller, Customer.name == customer, Account.name == account)
    ).first()


# --- Reading ----------------------------------------------------------------------------------


def plan_rows(session: Session, scope: Scope) -> list[PlanRow]:
    return list(session.exec(
        select(PlanRow).where(scope.where(core_table(PlanRow).c.reseller_id,
                                          core_table(PlanRow).c.customer_id))
        .order_by(col(PlanRow.name))))


def plan_row(session: Session, scope: Scope, name: str) -> PlanRow:
    row = session.get(PlanRow, name)
    if row is None or not scope.admits(row.reseller_id, row.customer_id):
        raise CatalogError(f"no plan {name!r}")
    return row


def plan_of(row: PlanRow) -> Plan:
    """The plan as applied (``enabled`` as set since, by apply or ``plans enable|disable``)."""
    plan = Plan.model_validate(row.document)
    if plan.spec.enabled != row.enabled:
        plan = plan.model_copy(update={"spec": plan.spec.model_copy(
            update={"enabled": row.enabled})})
    return plan


def load_plan(session: Session, name: str, scope: Scope | None = None) -> Plan:
    return plan_of(plan_row(session, scope or Scope.everything(), name))


def enabled_plans(session: Session) -> list[Plan]:
    """Every enabled plan (the service schedules these)."""
    rows = session.exec(select(PlanRow).where(col(PlanRow.enabled).is_(True))
                        .order_by(col(PlanRow.name)))
    return [plan_of(row) for row in rows]


def set_enabled(session: Session, scope: Scope, name: str, enabled: bool) -> bool:
    """Enable or disable a plan until it is next applied with changed content; returns whether
    it changed."""
    row = plan_row(session, scope, name)
    if row.enabled == enabled:
        return False
    row.enabled = enabled
    session.add(row)
    return True


def target_rows(session: Session) -> list[TargetRow]:
    return list(session.exec(select(TargetRow).order_by(col(TargetRow.name))))


def inventory(session: Session) -> Inventory:
    """Every applied target."""
    return Inventory([Target.model_validate(row.document) for row in target_rows(session)])
