"""Administration of the evaluator's configuration: thresholds per reseller, customer, account or
job, minimum client versions, and what is in force for an account (for the operator).

A target is named as an operator types it: a reseller by id or name, the others by id; it must
exist, as a typo must not create a setting nobody reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlmodel import Session, col, select

from services.evaluator import overruns
from services.evaluator.directory_thresholds import DirectoryThresholds
from services.evaluator.overruns import Bound
from services.evaluator.policies import (
    SETTINGS,
    PolicyBook,
    PolicyError,
    Scope,
    Setting,
    Source,
    Value,
    job_scope_id,
    parse_value,
    parse_version,
)
from services.evaluator.store import load_policies, set_override
from services.evaluator.tables import ClientMinVersion, JobState, ThresholdOverride
from shared.config import DirectorySettings
from shared.directory import DirectoryError, configured
from shared.events import Tenant
from shared.tenancy import Account, Customer, Reseller, lookup_path


class ConfigError(ValueError):
    """The operator asked for something invalid (unknown setting or target, bad value)."""


def target(
    session: Session, *, reseller: str | None = None, customer: str | None = None,
    account: str | None = None, job: str | None = None,
) -> tuple[Scope, str]:
    """The scope and id a setting for exactly one existing target is stored under."""
    if job is not None and account is None:
        raise ConfigError("--job needs --account")
    given = [v for v in (reseller, customer, account) if v is not None]
    if len(given) != 1:
        raise ConfigError("give exactly one of --reseller, --customer, --account")
    if account is not None:
        if session.get(Account, account) is None:
            raise ConfigError(f"no account {account!r}")
        return ("job", job_scope_id(account, job)) if job else ("account", account)
    if customer is not None:
        if session.get(Customer, customer) is None:
            raise ConfigError(f"no customer {customer!r}")
        return "customer", customer
    assert reseller is not None
    found = session.get(Reseller, reseller) or session.exec(
        select(Reseller).where(Reseller.name == reseller)).first()
    if found is None:
        raise ConfigError(f"no reseller {reseller!r}")
    return "reseller", found.id


def check_value(name: str, value: str) -> None:
    try:
        parse_value(name, value)
    except PolicyError as exc:
        raise ConfigError(str(exc)) from exc


def set_threshold(session: Session, scope: Scope, scope_id: str, name: str, value: str) -> None:
    check_value(name, value)
    set_override(session, scope, scope_id, name, value)


def unset_threshold(session: Session, scope: Scope, scope_id: str, name: str) -> None:
    """The next less specific value (or the default) applies again."""
    row = session.exec(select(ThresholdOverride).where(
        ThresholdOverride.scope == scope, ThresholdOverride.scope_id == scope_id,
        ThresholdOverride.name == name)).first()
    if row is None:
        raise ConfigError(f"{name} is not set for {scope} {scope_id}")
    session.delete(row)


def thresholds(session: Session) -> list[ThresholdOverride]:
    """Every threshold set, by scope, target and name."""
    return list(session.exec(select(ThresholdOverride).order_by(
        col(ThresholdOverride.scope), col(ThresholdOverride.scope_id),
        col(ThresholdOverride.name))).all())


def min_versions(session: Session) -> list[ClientMinVersion]:
    return list(session.exec(select(ClientMinVersion).order_by(
        col(ClientMinVersion.client_name))).all())


def set_min_version(session: Session, client: str, version: str) -> None:
    """Older versions of ``client`` raise outdated-client alerts."""
    try:
        parse_version(version)
    except PolicyError as exc:
        raise ConfigError(str(exc)) from exc
    row = session.get(ClientMinVersion, client) or ClientMinVersion(
        client_name=client, min_version=version)
    row.min_version = version
    session.add(row)


def remove_min_version(session: Session, client: str) -> None:
    row = session.get(ClientMinVersion, client)
    if row is None:
        raise ConfigError(f"no minimum set for {client!r}")
    session.delete(row)


def defaults() -> list[Setting]:
    """The settings, their defaults and what they mean."""
    return list(SETTINGS.values())


@dataclass(frozen=True)
class Effective:
    """What applies to an account, or to one of its jobs, after inheritance."""

    tenant: Tenant
    job: str | None
    book: PolicyBook
    # The values the job's client sent with its schedule count, as they do for the evaluator.
    from_schedule: Mapping[str, Value] | None
    schedule: str | None  # the job's schedule in words, when the evaluator knows one
    directory_error: str | None = None  # why the directory's values are missing, if they are

    @property
    def values(self) -> dict[str, tuple[Value, Source]]:
        """Each setting's value and where it comes from."""
        return {name: self.book.resolve(name, self.tenant, self.job, self.from_schedule)
                for name in SETTINGS}

    def run_bound(self, *, scheduled: bool) -> Bound | None:
        """What bounds a started run that never finishes; None when nothing does."""
        return overruns.bound(self.book, self.tenant, self.job, scheduled=scheduled,
                              from_schedule=self.from_schedule)


def effective(
    session: Session, account: str, job: str | None = None,
    directory: DirectorySettings | None = None,
) -> Effective:
    """With ``directory`` settings naming an LDAP server, the account's entry is read too (one
    search, now); when it cannot answer, ``directory_error`` says why and the values are the
    database's alone."""
    found = session.get(Account, account)
    if found is None:
        raise ConfigError(f"no account {account!r}")
    book = load_policies(session)
    error = None
    if directory is not None and configured(directory):
        reader = DirectoryThresholds(directory)
        try:
            book.directory[account] = reader.of_account(lookup_path(session, account))
        except DirectoryError as exc:
            error = str(exc)
        finally:
            reader.close()
    state = None if job is None else session.exec(select(JobState).where(
        JobState.account_id == account, JobState.job_name == job)).first()
    return Effective(found.tenant(), job, book,
                     state.schedule_settings if state else None, _schedule_text(state), error)


def _schedule_text(state: JobState | None) -> str | None:
    if state is None:
        return None
    if state.cron:
        return f"cron {state.cron} ({state.timezone or 'UTC'})"
    if state.interval_seconds:
        return f"every {state.interval_seconds} s"
    return None
