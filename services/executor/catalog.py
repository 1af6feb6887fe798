"""The applied plans and targets: ``backstop plans apply -f FILE`` stores each object of the
files as declared (a plan or target applied again with the same content is unchanged, with new
content updated), after the checks a file alone cannot make: the account a plan reports as
exists or is declared in the files, each activity's action is a plugin's, and its options are
the action's.

Declared accounts are applied first: created when missing (with the reseller and customer along
their path), their contacts and quota set when given, never deleted. Creating one issues an API
token and a ping key in tenancy; neither is kept or shown here (``backstop tokens issue``)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlmodel import Session, col, select

from services.executor.plans.files import Declared, Object, PlanFileError, Problem
from services.executor.plans.models import Account, Inventory, Plan, Target, account_parts
from services.executor.tables import PlanRow, TargetRow
from shared import tenancy
from shared.db import core_table
from shared.events import utcnow
from shared.scopes import Scope

Outcome = Literal["created", "updated", "unchanged"]


class CatalogError(LookupError):
    """No such plan (in the caller's scope) or target."""


@dataclass(frozen=True)
class Applied:
    kind: str
    name: str
    outcome: Outcome
    generation: int | None  # accounts have none
    account_id: str | None = None  # an account's id (``backstop tokens issue --account``)

    def row(self) -> dict[str, object]:
        row: dict[str, object] = {"kind": self.kind, "name": self.name,
                                  "outcome": self.outcome, "generation": self.generation}
        if self.account_id is not None:
            row["account_id"] = self.account_id
        return row


def document(obj: Object) -> dict[str, Any]:
    return obj.model_dump(mode="json", by_alias=True)


def digest(doc: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def check(session: Session, declared: Sequence[Declared], plugins: Any) -> list[Problem]:
    """The problems found against the database and the installed plugins."""
    problems: list[Problem] = []
    accounts = {entry.obj.path for entry in declared if isinstance(entry.obj, Account)}
    for entry in declared:
        if not isinstance(entry.obj, Plan):
            continue
        plan = entry.obj
        if (account_parts(plan.spec.account) not in accounts
                and find_account(session, plan.spec.account) is None):
            problems.append(entry.problem(("spec", "account"),
                                          f"no account {plan.spec.account!r} (declare it as "
                                          "kind: Account, or create it with backstop accounts "
                                          "create)"))
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
    """Store every object, or none (:class:`PlanFileError` with every problem); the outcomes
    are in declaration order, the accounts stored before the plans that report as them."""
    problems = check(session, declared, plugins)
    if problems:
        raise PlanFileError(problems)
    out: dict[int, Applied] = {}
    for index, entry in enumerate(declared):
        if isinstance(entry.obj, Account):
            out[index] = _apply_account(session, entry.obj)
    for index, entry in enumerate(declared):
        source = f"{entry.file}:{entry.line}"
        if isinstance(entry.obj, Target):
            out[index] = _apply_target(session, entry.obj, source)
        elif isinstance(entry.obj, Plan):
            out[index] = _apply_plan(session, entry.obj, source)
    return [out[index] for index in range(len(declared))]


def _apply_account(session: Session, account: Account) -> Applied:
    reseller, customer, name = account.path
    spec = account.spec
    row = find_account(session, account.name)
    if row is None:
        issued = tenancy.create_account(session, reseller=reseller, customer=customer,
                                        name=name, contacts=list(spec.contacts or []),
                                        quota_bytes=spec.quota)
        return Applied("Account", account.name, "created", None, issued.account.id)
    changed = False
    if spec.contacts is not None and list(row.contacts) != spec.contacts:
        row.contacts, changed = list(spec.contacts), True
    if spec.quota is not None and row.quota_bytes != spec.quota:
        row.quota_bytes, changed = spec.quota, True
    if changed:
        session.add(row)
        session.flush()
    return Applied("Account", account.name, "updated" if changed else "unchanged", None, row.id)


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


def find_account(session: Session, path: str) -> tenancy.Account | None:
    """The account of ``reseller/customer/account`` (names)."""
    reseller, customer, account = account_parts(path)
    return session.exec(
        select(tenancy.Account)
        .join(tenancy.Customer, col(tenancy.Customer.id) == col(tenancy.Account.customer_id))
        .join(tenancy.Reseller, col(tenancy.Reseller.id) == col(tenancy.Account.reseller_id))
        .where(tenancy.Reseller.name == reseller, tenancy.Customer.name == customer,
               tenancy.Account.name == account)
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
