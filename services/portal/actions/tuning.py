"""Thresholds, tolerances and the reminder interval, changed from the portal.

Evaluator settings (``quota_percent``, ``failures_tolerance``, …) are set per customer, account or
job through the evaluator's admin facade; the reminder interval ("alert frequency") is the
notifier's per-customer setting, through its facade. Who may change what:

* a job's or an account's settings: customer users of that customer, reseller staff, operators;
* a customer's settings and its reminder interval, an account's quota: reseller staff and
  operators;
* read-only users: nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlmodel import Session, select

from services.evaluator import admin as evaluator
from services.notifier import admin as notifier
from services.portal.rights import Editor, Invalid, NotFound, Role
from shared import tenancy
from shared.config import DirectorySettings
from shared.db import core_table
from shared.scopes import Scope
from shared.tenancy import Account, Customer, Job

log = logging.getLogger("backstop.audit")
ACCOUNTS = core_table(Account)
CUSTOMERS = core_table(Customer)

# What the portal offers to edit, in the order its forms show them.
SETTINGS: tuple[str, ...] = tuple(s.name for s in evaluator.defaults())
# Longest reminder interval accepted (a year); 0 turns reminders off.
MAX_REPEAT_SECONDS = 366 * 86400


@dataclass(frozen=True)
class Target:
    """Where a setting is stored (the evaluator's scope and id) and who owns it."""

    scope: evaluator.Scope
    scope_id: str
    reseller_id: str
    customer_id: str
    lowest: Role


def account_in_scope(session: Session, scope: Scope, account_id: str) -> Account:
    account = session.exec(select(Account).where(
        Account.id == account_id,
        scope.where(ACCOUNTS.c.reseller_id, ACCOUNTS.c.customer_id))).first()
    if account is None:
        raise NotFound(f"no account {account_id!r}")
    return account


def customer_in_scope(session: Session, scope: Scope, customer_id: str) -> Customer:
    customer = session.exec(select(Customer).where(
        Customer.id == customer_id,
        scope.where(CUSTOMERS.c.reseller_id, CUSTOMERS.c.id))).first()
    if customer is None:
        raise NotFound(f"no customer {customer_id!r}")
    return customer


def account_target(session: Session, scope: Scope, account_id: str,
                   job: str | None = None) -> Target:
    account = account_in_scope(session, scope, account_id)
    if job is None:
        return Target("account", account.id, account.reseller_id, account.customer_id,
                      Role.customer)
    if session.exec(select(Job.id).where(Job.account_id == account.id,
                                         Job.name == job)).first() is None:
        raise NotFound(f"no job {job!r}")
    return Target("job", evaluator.job_scope_id(account.id, job), account.reseller_id,
                  account.customer_id, Role.customer)


def customer_target(session: Session, scope: Scope, customer_id: str) -> Target:
    customer = customer_in_scope(session, scope, customer_id)
    return Target("customer", customer.id, customer.reseller_id, customer.id, Role.reseller)


def set_threshold(session: Session, editor: Editor, target: Target, name: str,
                  value: str) -> None:
    editor.require(target.lowest, target.reseller_id, target.customer_id)
    try:
        evaluator.set_threshold(session, target.scope, target.scope_id, name, value.strip())
    except evaluator.ConfigError as exc:
        raise Invalid(str(exc)) from exc
    log.info("threshold set", extra={"actor": editor.actor, "scope": target.scope,
                                     "scope_id": target.scope_id, "setting": name,
                                     "value": value.strip()})


def unset_threshold(session: Session, editor: Editor, target: Target, name: str) -> None:
    """The next less specific value (or the default) applies again."""
    editor.require(target.lowest, target.reseller_id, target.customer_id)
    try:
        evaluator.unset_threshold(session, target.scope, target.scope_id, name)
    except evaluator.ConfigError as exc:
        raise Invalid(str(exc)) from exc
    log.info("threshold unset", extra={"actor": editor.actor, "scope": target.scope,
                                       "scope_id": target.scope_id, "setting": name})


def set_repeat(session: Session, editor: Editor, customer_id: str,
               seconds: float | None) -> None:
    """A customer's reminder interval: ``None`` inherits the reseller's (or the default), 0
    turns reminders off."""
    customer = customer_in_scope(session, editor.scope, customer_id)
    editor.require(Role.reseller, customer.reseller_id, customer.id)
    if seconds is not None and not 0 <= seconds <= MAX_REPEAT_SECONDS:
        raise Invalid(f"the reminder interval must be between 0 and {MAX_REPEAT_SECONDS} s")
    notifier.set_repeat(session, customer.reseller_id, customer.id, seconds)
    log.info("reminder interval set", extra={"actor": editor.actor, "customer_id": customer.id,
                                             "seconds": seconds})


def set_quota(session: Session, editor: Editor, account_id: str,
              quota_bytes: int | None) -> None:
    """An account's storage quota: what the reseller sells, so reseller staff and operators set
    it. It applies to usage reports that name no quota of their own (ingest reads it within
    ``BACKSTOP_INGEST_TOKEN_CACHE_SECONDS``)."""
    account = account_in_scope(session, editor.scope, account_id)
    editor.require(Role.reseller, account.reseller_id, account.customer_id)
    try:
        tenancy.set_quota(session, account.id, quota_bytes)
    except tenancy.TenancyError as exc:
        raise Invalid(str(exc)) from exc
    log.info("quota set", extra={"actor": editor.actor, "account_id": account.id,
                                 "quota_bytes": quota_bytes})


@dataclass(frozen=True)
class InForce:
    """A setting's value in force, where it comes from, and the value set at this target."""

    name: str
    value: evaluator.Value
    source: str
    here: str | None
    description: str


@dataclass(frozen=True)
class SettingsInForce:
    values: list[InForce]
    directory_error: str | None  # why the directory's values are missing, when they are


def in_force(session: Session, scope: Scope, account_id: str, job: str | None = None,
             directory: DirectorySettings | None = None) -> SettingsInForce:
    """Every setting for an account (or job) in scope: the value that applies and its origin.
    With ``directory`` settings naming an LDAP server, the account's entry is read too (the
    evaluator's own resolution: an account's threshold may come from the directory)."""
    target = account_target(session, scope, account_id, job)
    found = evaluator.effective(session, account_id, job, directory)
    here = {row.name: row.value for row in evaluator.thresholds(session)
            if row.scope == target.scope and row.scope_id == target.scope_id}
    described = {s.name: s.description for s in evaluator.defaults()}
    return SettingsInForce(
        [InForce(name, value, source, here.get(name), described[name])
         for name, (value, source) in found.values.items()], found.directory_error)


def repeat_interval(session: Session, scope: Scope, customer_id: str) -> float | None:
    """The customer's own reminder interval, or None when it inherits."""
    customer = customer_in_scope(session, scope, customer_id)
    for row in notifier.list_settings(session):
        if row.reseller_id == customer.reseller_id and row.customer_id == customer.id:
            return row.repeat_interval_seconds
    return None
