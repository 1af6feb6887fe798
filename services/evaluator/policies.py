"""Thresholds and tolerances: defaults in one place, overrides per reseller, customer, account
or job, the most specific one winning.

Resolution order for a job's setting: the job's override in the database (set by an operator),
then the value the client sent with the job's schedule (only when it differs from the event's
default: a client that says nothing must not mask an account's setting), then the account's
override in the database, then the account's entry in the LDAP directory (``quota_percent``,
synced by the evaluator: :mod:`services.evaluator.directory_thresholds`), then customer,
reseller, and finally :data:`DEFAULTS`.

An operator's per-account override beats the directory because it is the deliberate exception
for one account (raised while a full disk is dealt with, say) made by the one who runs the
monitoring; the directory's value is the customer's standing setting (self-care), which beats
the customer's and reseller's defaults because it is about this very account.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from packaging.version import InvalidVersion, Version

from shared.events import Tenant

Scope = Literal["reseller", "customer", "account", "job"]
SCOPES: tuple[Scope, ...] = ("reseller", "customer", "account", "job")
# Where a value in force came from: an override's scope, the job's schedule, or the default.
Source = Literal["job", "schedule", "account", "directory", "customer", "reseller", "default"]
Value = int | float | bool


class PolicyError(ValueError):
    """An unknown setting, a value of the wrong type, or a bad scope."""


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value < 1:
        raise ValueError("must be at least 1")
    return value


def _seconds(raw: str) -> int:
    value = int(raw)
    if value < 0:
        raise ValueError("must not be negative")
    return value


def _percent(raw: str) -> float:
    value = float(raw)
    if not 0 <= value <= 1000:
        raise ValueError("must be between 0 and 1000")
    return value


def _days(raw: str) -> float:
    value = float(raw)
    if not 0 < value < float("inf"):  # NaN compares false: refused too
        raise ValueError("must be a positive number")
    return value


def _flag(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("must be true or false")


@dataclass(frozen=True)
class Setting:
    name: str
    default: Value
    parse: Callable[[str], Value]
    description: str


# The one place defaults live.
_SETTINGS = [
    Setting("failures_tolerance", 1, _positive_int,
            "Failed runs in a row before the failed-run alert fires."),
    Setting("warning_with_errors_fails", False, _flag,
            "Count a `warning` run that reports errors as a failure."),
    Setting("missed_runs_tolerance", 1, _positive_int,
            "Missed scheduled runs in a row before the missed-run alert fires."),
    Setting("grace_seconds", 3600, _seconds,
            "How long after its due time a run may start before the occurrence counts as missed."),
    Setting("max_runtime_seconds", 0, _seconds,
            "How long a started run may take before it is too long (0: the schedule's period; "
            "without a schedule, unscheduled_max_runtime_seconds)."),
    Setting("unscheduled_max_runtime_seconds", 86400, _seconds,
            "How long a started run may take when max_runtime_seconds is 0 and the job has no "
            "schedule (0: such a run may take forever: no too-long alert)."),
    Setting("quota_percent", 90.0, _percent,
            "Storage use, in percent of the quota, at which the quota alert fires."),
    Setting("quota_hysteresis_percent", 5.0, _percent,
            "The quota alert resolves only below quota_percent minus this, so it does not flap."),
    Setting("never_used_days", 7.0, _days,
            "Days after its creation an account without a single run raises never-used."),
    Setting("no_data_days", 3.0, _days,
            "Days of successful runs that transferred zero bytes before no-data fires."),
]
SETTINGS: dict[str, Setting] = {s.name: s for s in _SETTINGS}
DEFAULTS: dict[str, Value] = {s.name: s.default for s in _SETTINGS}


def parse_value(name: str, raw: str) -> Value:
    setting = SETTINGS.get(name)
    if setting is None:
        raise PolicyError(f"unknown setting {name!r}; known: {', '.join(SETTINGS)}")
    try:
        return setting.parse(raw)
    except ValueError as exc:
        raise PolicyError(f"{name}={raw!r}: {exc}") from exc


def parse_version(raw: str) -> Version:
    try:
        return Version(raw)
    except InvalidVersion as exc:
        raise PolicyError(f"{raw!r} is not a version (PEP 440, e.g. 2.4.1)") from exc


def job_scope_id(account_id: str, job: str) -> str:
    return f"{account_id}/{job}"


@dataclass(frozen=True)
class Override:
    scope: Scope
    scope_id: str
    name: str
    value: str


@dataclass
class PolicyBook:
    """Every override and minimum client version, held in memory (they are few)."""

    overrides: dict[tuple[Scope, str], dict[str, Value]] = field(default_factory=dict)
    min_versions: dict[str, Version] = field(default_factory=dict)
    # Per account id, the values its directory entry holds (between account and customer).
    directory: dict[str, dict[str, Value]] = field(default_factory=dict)

    @classmethod
    def build(
        cls, overrides: Iterable[Override], min_versions: Mapping[str, str] | None = None
    ) -> PolicyBook:
        book = cls()
        for row in overrides:
            try:
                value = parse_value(row.name, row.value)
            except PolicyError:
                continue  # a setting from a newer release: ignore rather than stop evaluating
            book.overrides.setdefault((row.scope, row.scope_id), {})[row.name] = value
        for name, raw in (min_versions or {}).items():
            try:
                book.min_versions[name] = parse_version(raw)
            except PolicyError:
                continue
        return book

    def value(
        self, name: str, tenant: Tenant, job: str | None = None,
        from_schedule: Mapping[str, Value] | None = None,
    ) -> Value:
        return self.resolve(name, tenant, job, from_schedule)[0]

    def resolve(
        self, name: str, tenant: Tenant, job: str | None = None,
        from_schedule: Mapping[str, Value] | None = None,
    ) -> tuple[Value, Source]:
        """The value in force and where it came from."""
        if job is not None:
            found = self.overrides.get(("job", job_scope_id(tenant.account, job)))
            if found and name in found:
                return found[name], "job"
        if from_schedule and name in from_schedule:
            return from_schedule[name], "schedule"
        found = self.overrides.get(("account", tenant.account))
        if found and name in found:
            return found[name], "account"
        found = self.directory.get(tenant.account)
        if found and name in found:
            return found[name], "directory"
        inherited: tuple[tuple[Literal["customer", "reseller"], str], ...] = (
            ("customer", tenant.customer), ("reseller", tenant.reseller))
        for scope, scope_id in inherited:
            found = self.overrides.get((scope, scope_id))
            if found and name in found:
                return found[name], scope
        return DEFAULTS[name], "default"

    def as_int(self, name: str, tenant: Tenant, job: str | None = None,
            from_schedule: Mapping[str, Value] | None = None) -> int:
        return int(self.value(name, tenant, job, from_schedule))

    def as_float(self, name: str, tenant: Tenant, job: str | None = None) -> float:
        return float(self.value(name, tenant, job))

    def as_flag(self, name: str, tenant: Tenant, job: str | None = None) -> bool:
        return bool(self.value(name, tenant, job))
