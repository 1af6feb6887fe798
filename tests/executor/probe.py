"""A plugin whose behaviour a test sets (slow quiesce, failing verification, a concurrency
meter), the registry holding it, and plans from YAML text for the flow's tests."""

from __future__ import annotations

import asyncio
import textwrap
from collections import Counter
from pathlib import Path
from typing import Any

from services.executor.plans.files import load_text
from services.executor.plans.models import Inventory, Plan, Target
from services.executor.plugins import registry
from services.executor.plugins.api import (
    Action,
    ActionOptions,
    BackupFailed,
    BackupResult,
    FileEntry,
    Item,
    Plugin,
    TargetUnreachable,
    TaskContext,
    Verification,
    VerificationFailed,
)
from services.executor.plugins.registry import PluginInfo, Registry


def objects(text: str) -> tuple[list[Plan], Inventory]:
    """The plans and the inventory a YAML text declares."""
    declared = load_text(textwrap.dedent(text), "test.yaml")
    plans = [d.obj for d in declared if isinstance(d.obj, Plan)]
    targets = [d.obj for d in declared if isinstance(d.obj, Target)]
    return plans, Inventory(targets)


def plan_yaml(destination: Path, activities: str, *, extra: str = "",
              targets: tuple[str, ...] = ("alpha", "beta")) -> str:
    """A plan ``p`` over local targets, with the activities given (YAML list items, indented
    four spaces) and ``extra`` spec lines (indented two spaces)."""
    inventory = "".join(f"kind: Target\nmetadata: {{name: {t}}}\n---\n" for t in targets)
    body = textwrap.indent(textwrap.dedent(activities).strip(), "    ")
    more = textwrap.indent(textwrap.dedent(extra).strip(), "  ")
    return (f"{inventory}kind: Plan\nmetadata: {{name: p}}\nspec:\n  account: R/C/A\n"
            f"  destination: {{path: '{destination}'}}\n{more}\n  activities:\n{body}\n")


class Behaviour:
    """What the test plugin does; a test sets the fields, the plugin records what happened."""

    def __init__(self) -> None:
        self.quiesces = True  # False: is_quiesced never says yes
        self.unquiesces = True
        self.backup_seconds = 0.0
        self.backup_error: str | None = None
        self.verify_error: str | None = None
        self.unreachable: set[str] = set()
        self.items: dict[str, list[str]] = {}
        self.calls: list[tuple[str, str, str]] = []  # (call, target, item)
        self.quiesced: set[str] = set()
        self.running: Counter[str] = Counter()
        self.most_per_target = 0
        self.most_at_once = 0
        self.on_backup: Any = None  # called with the context before the backup's wait
        self.backing_up = asyncio.Event()  # set once a backup runs

    def note(self, call: str, ctx: TaskContext) -> None:
        self.calls.append((call, ctx.target.name, ctx.item.name))


class ProbeOptions(ActionOptions):
    pass


class ProbePlugin(Plugin):
    """``probe.copy``: writes one file; quiesces, discovers and fails as its Behaviour says."""

    name = "probe"
    summary = "test plugin"
    actions = (Action(name="copy", summary="write a file", options=ProbeOptions),)
    quiesces = True
    discovers = True

    def __init__(self, behaviour: Behaviour | None = None) -> None:
        self.behaviour = behaviour or Behaviour()

    async def probe(self, target: Any, action: str, options: Any) -> None:
        if target.name in self.behaviour.unreachable:
            raise TargetUnreachable(f"{target.name} does not answer")

    async def discover(self, target: Any, action: str, options: Any) -> list[Item]:
        return [Item(name=n) for n in self.behaviour.items.get(target.name, [])]

    async def quiesce(self, ctx: TaskContext) -> None:
        self.behaviour.note("quiesce", ctx)
        if self.behaviour.quiesces:
            self.behaviour.quiesced.add(ctx.target.name)

    async def unquiesce(self, ctx: TaskContext) -> None:
        self.behaviour.note("unquiesce", ctx)
        if self.behaviour.unquiesces:
            self.behaviour.quiesced.discard(ctx.target.name)

    async def is_quiesced(self, ctx: TaskContext) -> bool:
        return ctx.target.name in self.behaviour.quiesced

    async def backup(self, ctx: TaskContext) -> BackupResult:
        b = self.behaviour
        b.note("backup", ctx)
        b.running[ctx.target.name] += 1
        b.backing_up.set()
        b.most_per_target = max(b.most_per_target, b.running[ctx.target.name])
        b.most_at_once = max(b.most_at_once, sum(b.running.values()))
        try:
            if b.on_backup is not None:
                b.on_backup(ctx)
            await asyncio.sleep(b.backup_seconds)
            if b.backup_error:
                raise BackupFailed(b.backup_error)
            (ctx.output / "data.txt").write_text(f"{ctx.target.name}/{ctx.item.name}\n")
        finally:
            b.running[ctx.target.name] -= 1
        return BackupResult(files=[FileEntry(path="data.txt", size=len(ctx.target.name) + 1)],
                            files_transferred=1, bytes=10,
                            facts={"probe.version": "1.0", "os": "test"})

    async def verify(self, ctx: TaskContext, result: BackupResult) -> Verification:
        self.behaviour.note("verify", ctx)
        if self.behaviour.verify_error:
            raise VerificationFailed(self.behaviour.verify_error, ["data.txt: size differs"])
        return Verification(method="test", checked=1)


def plugins(behaviour: Behaviour | None = None) -> Registry:
    """The built-in plugins and ``probe`` (with a fresh or the given behaviour)."""
    reg = registry.load(entries=[])
    plugin = ProbePlugin(behaviour)
    reg.plugins["probe"] = PluginInfo("probe", "tests.executor.support:ProbePlugin", "tests",
                                      "0", plugin)
    return reg
