"""The executor's plugin API: what a plugin is, what it is given and what it gives back.

A plugin is a class derived from :class:`Plugin`, registered under the entry-point group
``backstop.executor.plugins`` (the entry point's name is the plugin's name)::

    [project.entry-points."backstop.executor.plugins"]
    mytool = "mypackage.backstop_plugin:MyToolPlugin"

It declares its actions (``Action``: a name, a summary and a pydantic model of the options an
activity may give) and implements ``backup``; it may implement ``discover`` (the items inside a
target: databases, folders, VM images), ``probe`` (is the target reachable), ``quiesce`` /
``unquiesce`` / ``is_quiesced``, ``verify`` and ``retain``. Every method is ``async``; a plugin
runs its tool with :meth:`TaskContext.run` (or :func:`services.executor.plugins.process.run`),
so the executor can run tasks in parallel and cancel them (the tool's process group is stopped).

Everything given and returned is a pydantic model, so the executor can store it as JSON (the
durable intent to unquiesce is a serialised :class:`TaskContext`) and show it in the history.

Errors are exceptions with a meaning (all :class:`PluginError`): :class:`TargetUnreachable`
(the task is skipped), :class:`BadOptions` (the plan is refused when applied),
:class:`DiscoveryFailed`, :class:`BackupFailed`, :class:`QuiesceFailed`,
:class:`VerificationFailed`, :class:`RetentionFailed` (the task fails with the reason),
:class:`PluginNotFound`.
"""

from __future__ import annotations

import fnmatch
import shlex
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from services.executor.plugins import process
from services.executor.plugins.process import CommandNotFound, CommandTimedOut, Completed

ENTRY_POINT_GROUP = "backstop.executor.plugins"

# The item of a task that covers the whole target (no item pattern, or a plugin that does not
# discover items).
WHOLE = "all"


# ---------------------------------------------------------------------------------------------
# Errors


class PluginError(Exception):
    """A plugin could not do what was asked; the message says why (shown in the history)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PluginNotFound(PluginError):
    """No plugin has this name, or no plugin declares this action."""


class BadOptions(PluginError):
    """An activity's options do not fit its action; ``errors`` names each field (as pydantic
    reports them: ``loc``, ``msg``)."""

    def __init__(self, reason: str, errors: Sequence[Mapping[str, Any]] = ()) -> None:
        super().__init__(reason)
        self.errors = list(errors)


class TargetUnreachable(PluginError):
    """The target cannot be reached (host down, ssh refused, database not answering): its
    tasks are skipped with this reason."""


class DiscoveryFailed(PluginError):
    """The items inside a reachable target could not be listed (a missing folder, a query
    refused): the activity's task on that target fails with the reason."""


class BackupFailed(PluginError):
    """The backup did not complete. ``result`` holds what was done before it failed (the files
    transferred, the transfer errors), when anything was."""

    def __init__(self, reason: str, result: BackupResult | None = None) -> None:
        super().__init__(reason)
        self.result = result


class QuiesceFailed(PluginError):
    """Quiescing or unquiescing the target (or asking whether it is quiesced) failed."""


class VerificationFailed(PluginError):
    """What was written does not verify: the task fails. ``problems`` lists each finding."""

    def __init__(self, reason: str, problems: Sequence[str] = ()) -> None:
        super().__init__(reason)
        self.problems = list(problems)


class RetentionFailed(PluginError):
    """Removing old backups failed."""


# ---------------------------------------------------------------------------------------------
# Targets and items


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SshAccess(_Model):
    """How to reach a target over ssh. ``options`` are extra ``-o`` settings
    (``StrictHostKeyChecking=no``, ``UserKnownHostsFile=…``)."""

    user: str | None = None
    port: int = Field(22, ge=1, le=65535)
    key: Path | None = None
    options: tuple[str, ...] = ()
    connect_timeout: int = Field(10, ge=1)


class Target(_Model):
    """A machine of the inventory. ``ssh`` None: the target is this machine (paths are local,
    commands run here)."""

    name: str
    address: str = "localhost"
    labels: dict[str, str] = Field(default_factory=dict)
    ssh: SshAccess | None = None

    @property
    def is_local(self) -> bool:
        return self.ssh is None

    def ssh_argv(self) -> list[str]:
        """``ssh`` with this target's options, without the destination (for ``rsync -e``)."""
        if self.ssh is None:
            raise ValueError(f"target {self.name} is local")
        argv = ["ssh", "-o", "BatchMode=yes", "-o", f"ConnectTimeout={self.ssh.connect_timeout}",
                "-p", str(self.ssh.port)]
        if self.ssh.key is not None:
            argv += ["-i", str(self.ssh.key), "-o", "IdentitiesOnly=yes"]
        for option in self.ssh.options:
            argv += ["-o", option]
        return argv

    @property
    def login(self) -> str:
        """``user@address`` (or the address alone) for ssh and rsync."""
        if self.ssh is not None and self.ssh.user:
            return f"{self.ssh.user}@{self.address}"
        return self.address

    def command(self, argv: Sequence[str]) -> list[str]:
        """``argv`` as run on the target: unchanged for a local target, through ssh otherwise
        (quoted for the remote shell)."""
        if self.ssh is None:
            return list(argv)
        return [*self.ssh_argv(), self.login, "--", shlex.join(argv)]

    def location(self, path: str) -> str:
        """A path on the target as rsync names it (``user@host:path`` over ssh)."""
        return path if self.ssh is None else f"{self.login}:{path}"


class Item(_Model):
    """Something inside a target that a task backs up: a database, a folder, a VM image.
    ``facts`` are what discovery learned about it (size, owner…)."""

    name: str
    facts: dict[str, Any] = Field(default_factory=dict)

    @property
    def whole(self) -> bool:
        """The item standing for the whole target."""
        return self.name == WHOLE

    @property
    def slug(self) -> str:
        """The name as one path segment (for output paths): separators and leading dots go."""
        text = self.name.strip("/").replace("/", "_") or WHOLE
        return "_" + text[1:] if text.startswith(".") else text


# ---------------------------------------------------------------------------------------------
# Actions and options


class ActionOptions(BaseModel):
    """Base of every action's options: unknown keys are refused (a typo is an error, not a
    silently ignored setting). ``timeout`` (seconds) bounds the tool's run."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    timeout: float | None = Field(None, gt=0, description="Seconds the tool may run.")


class Action(_Model):
    """An action a plugin offers: ``rsync.sync`` is action ``sync`` of plugin ``rsync``."""

    name: str
    summary: str
    options: type[ActionOptions] = ActionOptions


# ---------------------------------------------------------------------------------------------
# The task's context


class TaskContext(_Model):
    """What a plugin is given for one task. It is plain data (stored as JSON by the executor to
    finish an unquiesce after a crash) plus :meth:`run`.

    ``output`` is this backup's own folder, which the executor made (empty) and no earlier
    backup uses; folder-per-backup plugins write there, and find earlier backups of the same
    target, action and item among its siblings. ``destination`` is the plan's destination root.
    ``timezone`` is the plan's time zone (an IANA name): the times in output folder names are
    its wall clock, so retention reads them, and counts days, weeks and months, in it.
    ``env`` holds the plan/activity/task variables (``BACKSTOP_PLAN``…) given to scripts."""

    target: Target
    item: Item = Item(name=WHOLE)
    action: str
    options: dict[str, Any] = Field(default_factory=dict)
    output: Path
    destination: Path
    started: datetime | None = None
    timezone: str = "UTC"
    env: dict[str, str] = Field(default_factory=dict)

    @property
    def action_name(self) -> str:
        """The action without its plugin's name (``sync`` of ``rsync.sync``)."""
        return self.action.partition(".")[2] or self.action

    def timeout(self) -> float | None:
        value = self.options.get("timeout")
        return None if value is None else float(value)

    async def run(self, argv: Sequence[str], *, timeout: float | None = None,
                  env: Mapping[str, str] | None = None, cwd: Path | str | None = None,
                  stdin: bytes | None = None, limit: int = process.OUTPUT_LIMIT,
                  on_line: Callable[[str], None] | None = None,
                  stdout_to: Path | None = None) -> Completed:
        """Run a command (see :func:`process.run`) with the task's variables in its
        environment; ``timeout`` defaults to the activity's ``timeout`` option."""
        return await process.run(
            argv, timeout=timeout if timeout is not None else self.timeout(),
            env={**self.env, **(env or {})}, cwd=cwd, stdin=stdin, limit=limit,
            on_line=on_line, stdout_to=stdout_to)


# ---------------------------------------------------------------------------------------------
# Results


class FileEntry(_Model):
    """One file of a backup: its path (relative to the output folder, or as the tool names
    it), size, checksum where known (``algorithm:hex``), and whether this run transferred it
    (False: unchanged, hard-linked to or deduplicated against an earlier backup)."""

    path: str
    size: int | None = None
    checksum: str | None = None
    transferred: bool = True


class BackupResult(_Model):
    """What a backup did. ``bytes`` are the bytes transferred (written by this run);
    ``total_bytes`` the size of the whole backup. ``transfer_errors`` are the tool's per-file
    errors (a partial transfer); ``facts`` what the plugin learned about the tool and the target
    (versions, host OS); ``location`` where the backup is (the output folder, a snapshot id);
    ``log`` the tool's output, capped."""

    files: list[FileEntry] = Field(default_factory=list)
    files_transferred: int = 0
    bytes: int = 0
    total_bytes: int | None = None
    transfer_errors: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    facts: dict[str, str] = Field(default_factory=dict)
    location: str = ""
    log: str = ""


class Verification(_Model):
    """A backup that verified: how, and how many things were checked. (One that does not
    verify raises :class:`VerificationFailed`.)"""

    method: str
    checked: int = 0
    details: str = ""


class RetentionPolicy(_Model):
    """How many backups to keep (None: that rule is off). A backup is kept if any rule keeps it;
    with no rule on, everything is kept. ``keep_daily`` keeps the newest backup of each of the
    last N days that have one (weekly: ISO weeks; monthly: calendar months)."""

    keep_last: int | None = Field(None, ge=0)
    keep_daily: int | None = Field(None, ge=0)
    keep_weekly: int | None = Field(None, ge=0)
    keep_monthly: int | None = Field(None, ge=0)

    @property
    def keeps_everything(self) -> bool:
        return all(v is None for v in (self.keep_last, self.keep_daily, self.keep_weekly,
                                       self.keep_monthly))


class RetentionResult(_Model):
    """What retention removed and kept (folder paths, snapshot ids)."""

    removed: list[str] = Field(default_factory=list)
    kept: list[str] = Field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# The plugin


class Plugin:
    """Base class of every plugin. Subclasses set ``name`` and ``actions`` and implement
    ``backup``; the other methods have working defaults:

    * ``discover``: None means the plugin does not discover items (an item pattern is then
      taken as the item's name).
    * ``probe``: a local target is reachable; an ssh target is if ``ssh … true`` succeeds.
    * ``quiesce``: ``quiesces`` False (the default) means the plugin cannot; the executor
      refuses an activity asking for it.
    * ``verify``: nothing to check beyond the backup itself (method ``none``).
    * ``retain``: nothing removed.
    """

    name: ClassVar[str]
    summary: ClassVar[str] = ""
    actions: ClassVar[Sequence[Action]] = ()
    quiesces: ClassVar[bool] = False
    discovers: ClassVar[bool] = False
    # Seconds a probe may take.
    probe_timeout: ClassVar[float] = 15.0

    def action(self, action: str) -> Action:
        """The declared action, by short (``sync``) or full (``rsync.sync``) name."""
        plugin, _, short = action.rpartition(".")
        if plugin and plugin != self.name:
            raise PluginNotFound(f"action {action} is not one of plugin {self.name}")
        for declared in self.actions:
            if declared.name == short:
                return declared
        known = ", ".join(f"{self.name}.{a.name}" for a in self.actions)
        raise PluginNotFound(f"plugin {self.name} has no action {short} (it has: {known})")

    def options(self, action: str, raw: Mapping[str, Any] | None) -> ActionOptions:
        """The action's options checked and typed; :class:`BadOptions` names each bad field."""
        model = self.action(action).options
        try:
            return model.model_validate(dict(raw or {}))
        except ValidationError as exc:
            errors = [{"loc": ".".join(str(p) for p in e["loc"]), "msg": e["msg"]}
                      for e in exc.errors()]
            listed = "; ".join(f"{e['loc']}: {e['msg']}" if e["loc"] else e["msg"]
                               for e in errors)
            raise BadOptions(f"options of {self.name}.{self.action(action).name}: {listed}",
                             errors) from None

    def options_of(self, ctx: TaskContext) -> Any:
        """The task's options as the action's model (subclasses narrow the type)."""
        return self.options(ctx.action, ctx.options)

    async def discover(self, target: Target, action: str,
                       options: Mapping[str, Any]) -> list[Item]:
        """The items inside the target (all of them; the executor applies the pattern)."""
        raise NotImplementedError(f"plugin {self.name} does not discover items")

    async def probe(self, target: Target, action: str, options: Mapping[str, Any]) -> None:
        """Return if the target is reachable; raise :class:`TargetUnreachable` with the reason
        otherwise."""
        if target.is_local:
            return
        await probe_ssh(target, self.probe_timeout)

    async def quiesce(self, ctx: TaskContext) -> None:
        """Ask the target to quiesce (it may take a while: the executor polls
        :meth:`is_quiesced`)."""
        raise QuiesceFailed(f"plugin {self.name} cannot quiesce")

    async def unquiesce(self, ctx: TaskContext) -> None:
        raise QuiesceFailed(f"plugin {self.name} cannot quiesce")

    async def is_quiesced(self, ctx: TaskContext) -> bool:
        return False

    async def backup(self, ctx: TaskContext) -> BackupResult:
        raise NotImplementedError

    async def verify(self, ctx: TaskContext, result: BackupResult) -> Verification:
        return Verification(method="none")

    async def retain(self, ctx: TaskContext, policy: RetentionPolicy) -> RetentionResult:
        return RetentionResult()


async def probe_ssh(target: Target, timeout: float) -> None:
    """Reachable over ssh: ``ssh … true`` exits 0 within ``timeout``."""
    try:
        done = await process.run(target.command(["true"]), timeout=timeout)
    except CommandTimedOut:
        raise TargetUnreachable(f"ssh to {target.login} did not answer within {timeout:g} s"
                                ) from None
    except CommandNotFound as exc:
        raise TargetUnreachable(str(exc)) from None
    if not done.ok:
        raise TargetUnreachable(f"ssh to {target.login} failed (exit {done.returncode}): "
                                f"{done.tail(3)}")


async def items_for(plugin: Plugin, target: Target, action: str, pattern: str | None,
                    options: Mapping[str, Any]) -> list[Item]:
    """The items of one activity on one target, one task each: with no pattern, the whole
    target (one item, ``all``); with a pattern, the discovered items whose name matches it (a
    glob; none matching gives an empty list), or — when the plugin does not discover — the
    pattern itself as the item's name."""
    if not pattern:
        return [Item(name=WHOLE)]
    if not plugin.discovers:
        return [Item(name=pattern)]
    found = await plugin.discover(target, action, options)
    return [item for item in found if fnmatch.fnmatchcase(item.name, pattern)]

