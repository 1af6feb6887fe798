"""Plans, targets and accounts as declared: validated pydantic models, nothing about how they
run.

An **account** is the Backstop account plans report as, declared by its path
``reseller/customer/account`` (created when missing, never deleted). A **target** is a machine
(or a database server, a VM host…) the executor backs up: a name, an address, labels, and how
to reach it (``local`` or ``ssh``). A **plan** names the Backstop account and job it reports
as, when it runs (schedule, maintenance windows), where backups go (destination, free-space
threshold), its scripts and report recipients, and its ordered **activities**: a plugin action
applied to the targets matching a pattern (and to the items the plugin finds inside each that
match an item pattern).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    field_validator,
    model_validator,
)

from services.executor.plans.units import FreeSpace, seconds, size
from services.executor.plans.windows import Window
from shared.schedules import InvalidSchedule
from shared.schedules import Schedule as CronSchedule
from shared.tenancy import JOB_NAME, TenancyError, check_job_name, check_name

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
ACTION = re.compile(r"[a-z][a-z0-9_-]*\.[a-z][a-z0-9_-]*")
DEFAULT_OUTPUT = "{destination}/{target}/{action}/{item}/{timestamp}"
PLACEHOLDERS = frozenset({"destination", "target", "action", "item", "timestamp", "date", "year",
                          "julian", "plan", "activity"})
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


def _name(value: str) -> str:
    if NAME.fullmatch(value) is None:
        raise ValueError(f"{value!r} is not a name: 1-128 letters, digits, '.', '_' or '-', "
                         "starting with a letter or digit")
    return value


Name = Annotated[str, BeforeValidator(lambda v: _name(str(v)) if isinstance(v, str) else v)]
Seconds = Annotated[float, BeforeValidator(seconds)]


def _free_space(value: object) -> FreeSpace:
    return value if isinstance(value, FreeSpace) else FreeSpace.parse(value)


Threshold = Annotated[FreeSpace, BeforeValidator(_free_space),
                      PlainSerializer(lambda v: v.text(), return_type=str)]


def _window(value: object) -> Window:
    return value if isinstance(value, Window) else Window.parse(str(value))


WindowText = Annotated[Window, BeforeValidator(_window),
                       PlainSerializer(lambda v: v.text, return_type=str)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Metadata(Strict):
    name: Name
    labels: dict[str, str] = Field(default_factory=dict)


# --- Accounts ------------------------------------------------------------------------------------


class AccountMetadata(Strict):
    name: str = Field(description="`reseller/customer/account` (names), as plans' "
                      "`spec.account` give it.")

    @field_validator("name")
    @classmethod
    def _path(cls, value: str) -> str:
        account_parts(value)
        return value


class AccountSpec(Strict):
    """What is given is set (on creation and on every apply); what is left out is left alone."""

    contacts: list[str] | None = Field(None, description="The account's contact e-mail "
                                       "addresses (replaces them all).")
    quota: int | None = Field(None, description="Storage quota: bytes or a text such as "
                              "`500GiB`, `2TB`.")

    @field_validator("contacts")
    @classmethod
    def _contacts(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else check_addresses(value)

    @field_validator("quota", mode="before")
    @classmethod
    def _quota(cls, value: object) -> object:
        return None if value is None else size(value)


class Account(Strict):
    """``kind: Account``: the account plans report as, created when missing."""

    api_version: str = Field("backstop/v1", alias="apiVersion")
    kind: Literal["Account"] = "Account"
    metadata: AccountMetadata
    spec: AccountSpec = Field(default_factory=AccountSpec)

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def path(self) -> tuple[str, str, str]:
        return account_parts(self.name)


# --- Targets -------------------------------------------------------------------------------------


class Ssh(Strict):
    user: str | None = None
    port: int = Field(22, ge=1, le=65535)
    key: str | None = Field(None, description="Private key file (`ssh -i`).")
    options: list[str] = Field(default_factory=list,
                               description="Extra `-o` options, e.g. StrictHostKeyChecking=no.")
    connect_timeout: int = Field(10, ge=1, alias="connectTimeout")


class TargetSpec(Strict):
    address: str = "localhost"
    ssh: Ssh | None = Field(None, description="How to reach it over ssh; none: it is this "
                            "machine (local paths, local commands).")


class Target(Strict):
    """``kind: Target``: one entry of the inventory."""

    api_version: str = Field("backstop/v1", alias="apiVersion")
    kind: Literal["Target"] = "Target"
    metadata: Metadata
    spec: TargetSpec = Field(default_factory=TargetSpec)

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def labels(self) -> dict[str, str]:
        return self.metadata.labels


# --- Plans ---------------------------------------------------------------------------------------


class Schedule(Strict):
    cron: str
    timezone: str = "UTC"

    @model_validator(mode="after")
    def _valid(self) -> Schedule:
        try:
            CronSchedule(cron=self.cron, timezone=self.timezone)
        except InvalidSchedule as exc:
            raise ValueError(str(exc)) from exc
        return self

    def cron_schedule(self) -> CronSchedule:
        return CronSchedule(cron=self.cron, timezone=self.timezone)


class Destination(Strict):
    path: str
    must_be_mountpoint: bool = Field(False, alias="mustBeMountpoint")
    min_free: Threshold | None = Field(None, alias="minFree",
                                       description="`10%` of the filesystem or bytes (`20GiB`).")
    prune_keeping: int | None = Field(
        None, ge=1, alias="pruneKeeping", description="Below minFree, remove the oldest backups "
        "first, each series keeping its newest N (INPE's space management); none: never remove "
        "backups for space.")


class Script(Strict):
    """A shell command (``/bin/sh -c``); exit status > 0 stops the plan (pre-plan) or fails
    the task (pre-task)."""

    run: str
    timeout: Seconds | None = None


def _script(value: object) -> object:
    return {"run": value} if isinstance(value, str) else value


ScriptText = Annotated[Script, BeforeValidator(_script)]


class Scripts(Strict):
    pre: ScriptText | None = None
    post: ScriptText | None = None


class Quiesce(Strict):
    timeout: Seconds = 60.0
    grace: Seconds = 180.0
    unquiesce_timeout: Seconds = Field(60.0, alias="unquiesceTimeout")


class Retention(Strict):
    keep_last: int | None = Field(None, ge=1, alias="keepLast")
    keep_daily: int | None = Field(None, ge=1, alias="keepDaily")
    keep_weekly: int | None = Field(None, ge=1, alias="keepWeekly")
    keep_monthly: int | None = Field(None, ge=1, alias="keepMonthly")

    @property
    def empty(self) -> bool:
        return all(v is None for v in (self.keep_last, self.keep_daily, self.keep_weekly,
                                       self.keep_monthly))


class Activity(Strict):
    action: str = Field(description="`plugin.action`, e.g. `rsync.sync`.")
    targets: str = Field(description="Glob over target names, e.g. `db-*`.")
    items: str | None = Field(None, description="Glob over the items the plugin discovers in "
                              "each target (databases, folders…); none: the whole target.")
    options: dict[str, Any] = Field(default_factory=dict)
    quiesce: Quiesce | None = None
    scripts: Scripts = Field(default_factory=Scripts)
    verify: bool = True
    retention: Retention | None = None
    output: str | None = Field(None, description="Output path template; default the plan's.")

    @field_validator("action")
    @classmethod
    def _action(cls, value: str) -> str:
        if ACTION.fullmatch(value) is None:
            raise ValueError(f"{value!r} is not an action: 'plugin.action', e.g. rsync.sync")
        return value

    @field_validator("output")
    @classmethod
    def _output(cls, value: str | None) -> str | None:
        return None if value is None else check_template(value)

    @property
    def plugin(self) -> str:
        return self.action.partition(".")[0]


class Report(Strict):
    recipients: list[str] = Field(default_factory=list)

    @field_validator("recipients")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        return check_addresses(value)


class PlanSpec(Strict):
    account: str = Field(description="`reseller/customer/account` it reports as (names).")
    job: str | None = Field(None, description="The job name it reports as; default the plan's.")
    enabled: bool = True
    schedule: Schedule | None = None
    windows: list[WindowText] = Field(default_factory=list)
    destination: Destination
    scripts: Scripts = Field(default_factory=Scripts)
    report: Report = Field(default_factory=Report)
    replicas: dict[str, str] = Field(
        default_factory=dict, description="Labels an executor replica must have to run it.")
    parallel: int | None = Field(None, ge=1, description="Most tasks at once (default: the "
                                 "executor's).")
    output: str = DEFAULT_OUTPUT
    activities: list[Activity] = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _one_window(cls, data: Any) -> Any:
        if isinstance(data, dict) and "window" in data:
            if "windows" in data:
                raise ValueError("give either window or windows, not both")
            data = {**data, "windows": [data["window"]]}
            del data["window"]
        return data

    @field_validator("account")
    @classmethod
    def _account(cls, value: str) -> str:
        account_parts(value)
        return value

    @field_validator("job")
    @classmethod
    def _job(cls, value: str | None) -> str | None:
        return None if value is None else check_job_name(value)

    @field_validator("output")
    @classmethod
    def _output(cls, value: str) -> str:
        return check_template(value)


class Plan(Strict):
    """``kind: Plan``."""

    api_version: str = Field("backstop/v1", alias="apiVersion")
    kind: Literal["Plan"] = "Plan"
    metadata: Metadata
    spec: PlanSpec

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def job(self) -> str:
        return self.spec.job or self.name

    @property
    def timezone(self) -> str:
        """The zone of output path dates: the schedule's, else the first window's, else UTC."""
        if self.spec.schedule is not None:
            return self.spec.schedule.timezone
        return self.spec.windows[0].zone if self.spec.windows else "UTC"

    @model_validator(mode="after")
    def _job_name(self) -> Plan:
        if self.spec.job is None and JOB_NAME.fullmatch(self.name) is None:
            raise ValueError(f"the plan name {self.name!r} is not a job name: give spec.job")
        return self


def account_parts(text: str) -> tuple[str, str, str]:
    """``reseller/customer/account`` as its three names, each valid as tenancy's names are."""
    parts = text.split("/")
    if len(parts) != 3 or not all(p.strip() for p in parts):
        raise ValueError(f"{text!r} is not an account path: 'reseller/customer/account'")
    for label, name in zip(("reseller", "customer", "account"), parts, strict=True):
        try:
            check_name(label, name)
        except TenancyError as exc:
            raise ValueError(f"{text!r}: {exc}") from None
    return parts[0], parts[1], parts[2]


def check_addresses(addresses: list[str]) -> list[str]:
    for address in addresses:
        if "@" not in address or any(c.isspace() for c in address):
            raise ValueError(f"{address!r} is not an e-mail address")
    return addresses


def check_template(template: str) -> str:
    names = _PLACEHOLDER.findall(template)
    unknown = sorted(set(names) - PLACEHOLDERS)
    if unknown:
        raise ValueError(f"unknown placeholder {{{unknown[0]}}} in {template!r}; known: "
                         + ", ".join(f"{{{n}}}" for n in sorted(PLACEHOLDERS)))
    if "timestamp" not in names and "julian" not in names and "date" not in names:
        raise ValueError(f"output template {template!r} must contain {{timestamp}}, {{date}} "
                         "or {julian}: each backup needs a place of its own")
    return template


class Inventory:
    """The targets known, by name, in declaration order."""

    __slots__ = ("targets",)

    def __init__(self, targets: list[Target] | None = None) -> None:
        self.targets: dict[str, Target] = {t.name: t for t in targets or ()}

    def __len__(self) -> int:
        return len(self.targets)

    def get(self, name: str) -> Target | None:
        return self.targets.get(name)
