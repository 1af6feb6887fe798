"""The plan flow and the task flow: each step that can stop a plan or fail a task, with the
real rsync and command plugins against temporary folders and a test plugin for the edge cases
(quiesce that never comes, verification that fails, a meter of concurrency)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from services.executor.executions import PlanExecution, PlanStatus, TaskStatus
from services.executor.flow import execute
from services.executor.plans.models import Inventory, Plan
from services.executor.ports import CollectingSink, ExecutionContext, FixedSwitch, MemoryIntents
from shared.clock import FakeClock
from tests.executor.probe import Behaviour, objects, plan_yaml, plugins
from tests.executor.support import Sshd, write_tree


def context(behaviour: Behaviour | None = None, **kwargs: Any) -> ExecutionContext:
    return ExecutionContext(plugins=plugins(behaviour), **kwargs)


def plan_of(text: str) -> tuple[Plan, Inventory]:
    plans, inventory = objects(text)
    return plans[0], inventory


async def run(text: str, ctx: ExecutionContext) -> PlanExecution:
    plan, inventory = plan_of(text)
    return await execute(plan, inventory, ctx)


def backups(destination: Path) -> list[str]:
    if not destination.exists():
        return []
    return sorted(str(p.relative_to(destination)) for p in destination.rglob("*") if p.is_file())


# --- The plan's checks ----------------------------------------------------------------------------


async def test_rsync_plan_backs_up_each_target_with_files_and_stats(tmp_path: Path) -> None:
    source = write_tree(tmp_path / "src", {"a.txt": "alpha\n", "sub/b.txt": "beta beta\n"})
    dest = tmp_path / "dest"
    text = plan_yaml(dest, f"- {{action: rsync.sync, targets: '*', options: "
                     f"{{source: '{source}'}}}}")
    sink = CollectingSink()
    execution = await run(text, context(sink=sink))
    assert execution.status is PlanStatus.SUCCEEDED, execution.tasks
    assert [t.status for t in execution.tasks] == [TaskStatus.SUCCEEDED] * 2
    task = execution.tasks[0]
    assert task.files_transferred == 2 and task.bytes > 0 and task.transfer_errors == 0
    assert sorted(f.path for f in task.files) == ["a.txt", "sub/b.txt"]
    assert task.facts and any("rsync" in k for k in task.facts)
    out = Path(task.output_path or "")
    assert out.parent == dest / "alpha" / "rsync.sync" / "all"
    assert (out / "sub" / "b.txt").read_text() == "beta beta\n"
    assert sorted(t.id for t in sink.tasks) == [t.id for t in execution.tasks]  # parallel
    assert sink.finished == [execution]


async def test_a_paused_executor_starts_nothing(tmp_path: Path) -> None:
    behaviour = Behaviour()
    text = plan_yaml(tmp_path / "d", "- {action: probe.copy, targets: '*'}")
    execution = await run(text, context(behaviour, switch=FixedSwitch(paused=True)))
    assert execution.status is PlanStatus.STOPPED
    assert "paused" in (execution.error or "")
    assert execution.tasks == [] and behaviour.calls == []


async def test_outside_the_window_the_plan_stops(tmp_path: Path) -> None:
    behaviour = Behaviour()
    text = plan_yaml(tmp_path / "d", "- {action: probe.copy, targets: '*'}",
                     extra="window: Mon-Fri 22:00-06:00 Europe/Berlin")
    monday_noon = FakeClock(datetime(2026, 11, 30, 11, 0, tzinfo=UTC))
    execution = await run(text, context(behaviour, clock=monday_noon))
    assert execution.status is PlanStatus.STOPPED
    assert execution.error == "outside the maintenance window (Mon-Fri 22:00-06:00 Europe/Berlin)"
    assert behaviour.calls == []
    monday_night = FakeClock(datetime(2026, 11, 30, 22, 30, tzinfo=UTC))
    execution = await run(text, context(behaviour, clock=monday_night))
    assert execution.status is PlanStatus.SUCCEEDED


async def test_the_window_closing_fails_the_tasks_not_yet_started(tmp_path: Path) -> None:
    behaviour = Behaviour()
    clock = FakeClock(datetime(2026, 11, 30, 4, 59, tzinfo=UTC))  # 05:59 in Berlin, Monday
    behaviour.on_backup = lambda ctx: clock.advance(120)  # each backup takes two minutes
    text = plan_yaml(tmp_path / "d", "- {action: probe.copy, targets: '*'}",
                     extra="window: Sun-Fri 22:00-06:00 Europe/Berlin\nparallel: 1",
                     targets=("alpha",)) + "    - {action: probe.copy, targets: '*'}\n"
    execution = await run(text, context(behaviour, clock=clock))
    assert [t.status for t in execution.tasks] == [TaskStatus.SUCCEEDED, TaskStatus.FAILED]
    assert execution.tasks[1].error == "the maintenance window closed before the task started"
    assert execution.status is PlanStatus.FAILED


async def test_a_destination_that_must_be_mounted_and_is_not_stops_the_plan(
        tmp_path: Path) -> None:
    behaviour = Behaviour()
    dest = tmp_path / "nas"
    dest.mkdir()
    text = plan_yaml(dest, "- {action: probe.copy, targets: '*'}").replace(
        f"destination: {{path: '{dest}'}}", f"destination: {{path: '{dest}', "
        "mustBeMountpoint: true}")
    execution = await run(text, context(behaviour))
    assert execution.status is PlanStatus.STOPPED
    assert execution.error == f"destination {dest} is not a mount point (is its filesystem " \
        "mounted?)"
    assert behaviour.calls == [] and backups(dest) == []
    missing = tmp_path / "gone"
    execution = await run(text.replace(str(dest), str(missing)), context(behaviour))
    assert execution.error == f"destination {missing} does not exist (it must be a mounted " \
        "filesystem)"
    assert not missing.exists()  # never created: it would fill the local disk


async def test_a_mounted_destination_is_used(small_disk: Path) -> None:
    text = plan_yaml(small_disk, "- {action: probe.copy, targets: '*'}").replace(
        f"path: '{small_disk}'}}", f"path: '{small_disk}', mustBeMountpoint: true}}")
    execution = await run(text, context())
    assert execution.status is PlanStatus.SUCCEEDED, execution.error
    assert backups(small_disk) == [
        f"{t.target}/probe.copy/all/{Path(t.output_path or '').name}/data.txt"
        for t in execution.tasks]


async def test_too_little_free_space_stops_the_plan(tmp_path: Path) -> None:
    behaviour = Behaviour()
    dest = tmp_path / "d"
    for threshold in ("100%", "1000PiB"):
        text = plan_yaml(dest, "- {action: probe.copy, targets: '*'}").replace(
            f"path: '{dest}'}}", f"path: '{dest}', minFree: {threshold}}}")
        execution = await run(text, context(behaviour))
        assert execution.status is PlanStatus.STOPPED
        assert f"below the threshold {threshold if '%' in threshold else ''}" in (
            execution.error or "")
    assert behaviour.calls == []


def old_backups(series: Path, days: int, megabytes: int) -> list[Path]:
    out = []
    for day in range(1, days + 1):
        folder = series / f"2026-11-0{day}-22-00-00-000"
        folder.mkdir(parents=True)
        (folder / "blob").write_bytes(b"x" * (megabytes << 20))
        out.append(folder)
    return out


async def test_under_the_threshold_the_oldest_backups_go_first(small_disk: Path) -> None:
    series = small_disk / "alpha" / "probe.copy" / "all"
    old = old_backups(series, 4, 3)  # 12 of 16 MiB used
    text = plan_yaml(small_disk, "- {action: probe.copy, targets: '*'}", targets=("alpha",))
    text = text.replace(f"path: '{small_disk}'}}",
                        f"path: '{small_disk}', minFree: 8MiB, pruneKeeping: 1}}")
    execution = await run(text, context())
    assert execution.status is PlanStatus.SUCCEEDED, execution.error
    assert execution.removed == [str(old[0]), str(old[1])]  # two suffice
    assert old[2].exists() and old[3].exists()


async def test_when_pruning_cannot_make_room_the_plan_stops(small_disk: Path) -> None:
    series = small_disk / "alpha" / "probe.copy" / "all"
    old = old_backups(series, 4, 3)
    text = plan_yaml(small_disk, "- {action: probe.copy, targets: '*'}", targets=("alpha",))
    text = text.replace(f"path: '{small_disk}'}}",
                        f"path: '{small_disk}', minFree: 50%, pruneKeeping: 3}}")
    execution = await run(text, context())
    assert execution.status is PlanStatus.STOPPED
    assert execution.removed == [str(old[0])]  # each series keeps its newest three
    assert "after removing 1 old backups, below the threshold 50%" in (execution.error or "")


async def test_unreachable_targets_and_empty_patterns_give_skipped_tasks(tmp_path: Path) -> None:
    behaviour = Behaviour()
    behaviour.unreachable = {"beta"}
    behaviour.items = {"alpha": ["DOMAIN1", "DOMAIN2", "other"]}
    text = plan_yaml(tmp_path / "d", """\
        - {action: probe.copy, targets: '*', items: 'DOMAIN*'}
        - {action: probe.copy, targets: 'qa*'}
        - {action: probe.copy, targets: 'alpha', items: 'none*'}
        """)
    execution = await run(text, context(behaviour))
    assert [(t.target, t.item, t.status, t.error) for t in execution.tasks] == [
        ("alpha", "DOMAIN1", TaskStatus.SUCCEEDED, None),
        ("alpha", "DOMAIN2", TaskStatus.SUCCEEDED, None),
        ("beta", "DOMAIN*", TaskStatus.SKIPPED, "beta does not answer"),
        ("qa*", "all", TaskStatus.SKIPPED, "no target matches 'qa*'"),
        ("alpha", "none*", TaskStatus.SKIPPED, "no item of alpha matches 'none*'"),
    ]
    assert execution.status is PlanStatus.PARTIAL
    assert (execution.target_count, execution.item_count) == (2, 2)  # qa* is no target


async def test_an_unreachable_ssh_target_is_skipped_with_the_reason(tmp_path: Path) -> None:
    from shared.natsd import free_port

    text = plan_yaml(tmp_path / "d", "- {action: rsync.sync, targets: '*', options: "
                     "{source: /tmp}}", targets=()).replace(
        "kind: Plan", f"kind: Target\nmetadata: {{name: far}}\nspec: {{address: 127.0.0.1, "
        f"ssh: {{port: {free_port()}, connectTimeout: 3, options: [StrictHostKeyChecking=no]}}}}"
        "\n---\nkind: Plan")
    execution = await run(text, context())
    assert execution.status is PlanStatus.SKIPPED
    task = execution.tasks[0]
    assert task.status is TaskStatus.SKIPPED and "Connection refused" in (task.error or "")


async def test_all_skipped_stops_before_the_pre_plan_script(tmp_path: Path) -> None:
    marker = tmp_path / "pre-ran"
    text = plan_yaml(tmp_path / "d", "- {action: probe.copy, targets: 'nothing*'}",
                     extra=f"scripts: {{pre: 'touch {marker}'}}")
    execution = await run(text, context())
    assert execution.status is PlanStatus.SKIPPED
    assert execution.error == "every task was skipped"
    assert not marker.exists()


# --- Scripts ---------------------------------------------------------------------------------


async def test_a_failing_pre_plan_script_stops_the_plan(tmp_path: Path) -> None:
    behaviour = Behaviour()
    text = plan_yaml(tmp_path / "d", "- {action: probe.copy, targets: '*'}",
                     extra="scripts: {pre: 'echo \"checking $BACKSTOP_PLAN\"; echo no >&2; "
                     "exit 3'}")
    execution = await run(text, context(behaviour))
    assert execution.status is PlanStatus.STOPPED
    assert execution.error == "pre_plan script exited 3: no"
    assert execution.scripts[0].output == "checking p\nno\n"
    assert {t.status for t in execution.tasks} == {TaskStatus.SKIPPED}
    assert behaviour.calls == []


async def test_scripts_get_the_variables_and_the_post_plan_script_the_outcome(
        tmp_path: Path) -> None:
    log = tmp_path / "log"
    text = plan_yaml(tmp_path / "d", f"""\
        - action: probe.copy
          targets: 'alpha'
          scripts:
            pre: 'echo "pre $BACKSTOP_TASK $BACKSTOP_TARGET $BACKSTOP_ITEM $BACKSTOP_ACTION"
              >> {log}'
            post: 'echo "post $BACKSTOP_STATUS $BACKSTOP_OUTPUT" >> {log}'
        """, extra=f"scripts: {{post: 'echo \"plan $BACKSTOP_STATUS $BACKSTOP_DESTINATION\" "
        f">> {log}'}}")
    execution = await run(text, context())
    assert execution.status is PlanStatus.SUCCEEDED
    task = execution.tasks[0]
    assert log.read_text().splitlines() == [
        f"pre {task.id} alpha all probe.copy",
        f"post succeeded {task.output_path}",
        f"plan succeeded {tmp_path / 'd'}",
    ]
    assert [s.name for s in task.scripts] == ["pre_task", "post_task"]


async def test_a_failing_pre_task_script_fails_only_its_task(tmp_path: Path) -> None:
    behaviour = Behaviour()
    text = plan_yaml(tmp_path / "d", """\
        - action: probe.copy
          targets: '*'
          scripts: {pre: 'test "$BACKSTOP_TARGET" != beta || { echo "beta is busy"; exit 1; }'}
        """)
    execution = await run(text, context(behaviour))
    assert [(t.target, t.status) for t in execution.tasks] == [
        ("alpha", TaskStatus.SUCCEEDED), ("beta", TaskStatus.FAILED)]
    assert execution.tasks[1].error == "pre_task script exited 1: beta is busy"
    assert ("backup", "beta", "all") not in behaviour.calls
    assert execution.status is PlanStatus.FAILED


async def test_a_script_that_runs_too_long_is_stopped_and_its_output_capped(
        tmp_path: Path) -> None:
    text = plan_yaml(tmp_path / "d", """\
        - action: probe.copy
          targets: 'alpha'
          scripts: {pre: {run: 'yes 0123456789 | head -c 100000; sleep 30', timeout: 0.5}}
        """)
    execution = await run(text, context(output_limit=2000))
    task = execution.tasks[0]
    assert task.status is TaskStatus.FAILED
    assert task.error == "pre_task script did not finish in time"
    script = task.scripts[0]
    assert script.timed_out and script.exit_code is None
    assert len(script.output) < 2500 and "characters left out" in script.output
    assert script.duration < 10


# --- Quiesce, backup, verification, retention -------------------------------------------------


async def test_quiesce_timeout_cancels_the_task_and_unquiesces(tmp_path: Path) -> None:
    behaviour = Behaviour()
    behaviour.quiesces = False  # the target never reports quiesced
    intents = MemoryIntents()
    text = plan_yaml(tmp_path / "d", "- {action: probe.copy, targets: 'alpha', quiesce: "
                     "{timeout: 0.2, grace: 0.3}}")
    execution = await run(text, context(behaviour, intents=intents))
    task = execution.tasks[0]
    assert task.status is TaskStatus.FAILED
    assert task.error == "alpha was not quiesced within 0.2 s + 0.3 s grace; cancelled"
    assert [c for c, _, _ in behaviour.calls] == ["quiesce", "unquiesce"]  # no backup
    assert intents.open == set()
    assert backups(tmp_path / "d") == []


async def test_quiesce_wraps_the_backup_and_unquiesce_follows_a_failed_backup(
        tmp_path: Path) -> None:
    behaviour = Behaviour()
    intents = MemoryIntents()
    seen: list[set[str]] = []
    behaviour.on_backup = lambda ctx: seen.append(set(behaviour.quiesced))
    text = plan_yaml(tmp_path / "d", "- {action: probe.copy, targets: 'alpha', quiesce: "
                     "{timeout: 1}}")
    execution = await run(text, context(behaviour, intents=intents))
    assert execution.status is PlanStatus.SUCCEEDED
    assert seen == [{"alpha"}] and behaviour.quiesced == set()
    assert [c for c, _, _ in behaviour.calls] == ["quiesce", "backup", "unquiesce", "verify"]
    behaviour.calls.clear()
    behaviour.backup_error = "device busy"
    execution = await run(text, context(behaviour, intents=intents))
    assert execution.tasks[0].error == "device busy"
    assert [c for c, _, _ in behaviour.calls] == ["quiesce", "backup", "unquiesce"]
    assert behaviour.quiesced == set() and intents.open == set()


async def test_an_unquiesce_never_confirmed_fails_the_task(tmp_path: Path) -> None:
    behaviour = Behaviour()
    behaviour.unquiesces = False
    text = plan_yaml(tmp_path / "d", "- {action: probe.copy, targets: 'alpha', quiesce: "
                     "{timeout: 1, unquiesceTimeout: 0.2, grace: 0.2}}")
    execution = await run(text, context(behaviour))
    task = execution.tasks[0]
    assert task.status is TaskStatus.FAILED
    assert task.error == "alpha did not confirm the unquiesce within 0.2 s + 0.2 s grace"


async def test_cancelling_a_running_plan_unquiesces_and_ends_interrupted(tmp_path: Path) -> None:
    behaviour = Behaviour()
    behaviour.backup_seconds = 30
    intents = MemoryIntents()
    sink = CollectingSink()
    plan, inventory = plan_of(plan_yaml(
        tmp_path / "d", "- {action: probe.copy, targets: 'alpha', quiesce: {timeout: 1}}"))
    running = asyncio.create_task(execute(plan, inventory,
                                          context(behaviour, intents=intents, sink=sink)))
    await asyncio.wait_for(behaviour.backing_up.wait(), 10)
    assert intents.open  # recorded before the quiesce
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert behaviour.quiesced == set() and intents.open == set()
    assert [c for c, _, _ in behaviour.calls] == ["quiesce", "backup", "unquiesce"]
    execution = sink.finished[0]
    assert execution.status is PlanStatus.INTERRUPTED
    assert execution.tasks[0].status is TaskStatus.INTERRUPTED


async def test_a_backup_that_does_not_verify_fails_with_the_reason(tmp_path: Path) -> None:
    behaviour = Behaviour()
    behaviour.verify_error = "1 file differs"
    text = plan_yaml(tmp_path / "d", "- {action: probe.copy, targets: 'alpha'}")
    execution = await run(text, context(behaviour))
    assert execution.tasks[0].error == "verification failed: 1 file differs (data.txt: size " \
        "differs)"
    # The real command plugin: an expected file that was not written.
    text = plan_yaml(tmp_path / "d2", "- {action: command.run, targets: 'alpha', options: "
                     "{script: 'echo x > \"$BACKSTOP_OUTPUT/a.img\"', expect: ['*.qcow2']}}")
    execution = await run(text, context())
    task = execution.tasks[0]
    assert task.status is TaskStatus.FAILED
    assert (task.error or "").startswith("verification failed")
    # Switched off, the same backup succeeds.
    execution = await run(text.replace("expect: ['*.qcow2']}", "expect: ['*.qcow2']}, "
                                       "verify: false"), context())
    assert execution.tasks[0].status is TaskStatus.SUCCEEDED


async def test_retention_keeps_the_newest_and_records_what_it_removed(tmp_path: Path) -> None:
    dest = tmp_path / "d"
    text = plan_yaml(dest, "- {action: command.run, targets: 'alpha', retention: {keepLast: 2},"
                     " options: {script: 'echo $BACKSTOP_EXECUTION > \"$BACKSTOP_OUTPUT/x\"'}}")
    clock = FakeClock(datetime(2026, 11, 1, 22, 0, tzinfo=UTC))
    removed: list[str] = []
    outputs = []
    for _ in range(4):
        execution = await run(text, context(clock=clock))
        assert execution.status is PlanStatus.SUCCEEDED, execution.tasks[0].error
        removed += execution.tasks[0].removed
        outputs.append(execution.tasks[0].output_path)
        clock.advance(86400)
    series = dest / "alpha" / "command.run" / "all"
    # keepLast 2 keeps 2 backups in all, the one just made included (as restic counts); the
    # flow applies it after each backup and records what went, oldest first.
    assert removed == outputs[:2]
    assert sorted(str(p) for p in series.iterdir()) == outputs[2:]


async def test_retention_counts_days_as_the_folder_names_write_them(tmp_path: Path) -> None:
    # A Berlin plan names its folders in Berlin time; keepDaily counts the days those names
    # say, around midnight and across the end of summer time (2026-10-25, 03:00 CEST).
    dest = tmp_path / "d"
    text = plan_yaml(dest, "- {action: command.run, targets: 'alpha', retention: {keepDaily: 2},"
                     " options: {script: 'echo x > \"$BACKSTOP_OUTPUT/x\"'}}",
                     extra="schedule: {cron: '30 * * * *', timezone: Europe/Berlin}")
    series = dest / "alpha" / "command.run" / "all"
    clock = FakeClock(datetime(2026, 10, 23, 21, 30, tzinfo=UTC))  # 23:30 CEST on the 23rd
    names = []
    for hours in (0, 2, 22, 1, 1, 1, 1, 19, 1):  # 02:30 on the 25th happens twice
        clock.advance(hours * 3600)
        execution = await run(text, context(clock=clock))
        assert execution.status is PlanStatus.SUCCEEDED, execution.tasks[0].error
        names.append(Path(execution.tasks[0].output_path or "").name)
    assert names == ["2026-10-23-23-30-00-000", "2026-10-24-01-30-00-000",
                     "2026-10-24-23-30-00-000", "2026-10-25-00-30-00-000",
                     "2026-10-25-01-30-00-000", "2026-10-25-02-30-00-000",
                     "2026-10-25-02-30-00-000-2", "2026-10-25-21-30-00-000",
                     "2026-10-25-22-30-00-000"]
    # Two days in all: the 25th (its newest) and the 24th (its newest, 23:30 Berlin time,
    # which was 21:30 UTC).
    assert sorted(p.name for p in series.iterdir()) == [
        "2026-10-24-23-30-00-000", "2026-10-25-22-30-00-000"]
    clock.advance(3600)  # 23:30 CET on the 25th is 22:30 UTC: still the 25th
    await run(text, context(clock=clock))
    assert sorted(p.name for p in series.iterdir()) == [
        "2026-10-24-23-30-00-000", "2026-10-25-23-30-00-000"]
    clock.advance(3600)  # 00:30 on the 26th
    await run(text, context(clock=clock))
    assert sorted(p.name for p in series.iterdir()) == [
        "2026-10-25-23-30-00-000", "2026-10-26-00-30-00-000"]


async def test_never_two_tasks_on_one_target_and_targets_in_parallel(tmp_path: Path) -> None:
    behaviour = Behaviour()
    behaviour.backup_seconds = 0.05
    behaviour.items = {name: ["i1", "i2", "i3"] for name in ("t1", "t2", "t3", "t4", "t5")}
    text = plan_yaml(tmp_path / "d", """\
        - {action: probe.copy, targets: '*', items: 'i*'}
        - {action: probe.copy, targets: '*'}
        """, extra="parallel: 3", targets=("t1", "t2", "t3", "t4", "t5"))
    plan, inventory = plan_of(text)
    ctx = context(behaviour)
    # Two executions of the plan at once share the locks: still one task per target.
    first, second = await asyncio.gather(execute(plan, inventory, ctx),
                                         execute(plan, inventory, ctx))
    assert first.status is second.status is PlanStatus.SUCCEEDED
    assert behaviour.most_per_target == 1
    assert behaviour.most_at_once > 1
    assert len([c for c in behaviour.calls if c[0] == "backup"]) == 2 * 5 * 4


async def test_two_runs_at_the_same_moment_never_share_a_folder(tmp_path: Path) -> None:
    clock = FakeClock(datetime(2026, 11, 30, 22, 48, tzinfo=UTC))
    text = plan_yaml(tmp_path / "d", "- {action: probe.copy, targets: 'alpha'}")
    paths = [(await run(text, context(clock=clock))).tasks[0].output_path for _ in range(2)]
    assert paths == [str(tmp_path / "d/alpha/probe.copy/all/2026-11-30-22-48-00-000"),
                     str(tmp_path / "d/alpha/probe.copy/all/2026-11-30-22-48-00-000-2")]


async def test_the_command_plugin_quiesces_around_its_script(tmp_path: Path) -> None:
    frozen = tmp_path / "frozen"
    log = tmp_path / "log"
    text = plan_yaml(tmp_path / "d", f"""\
        - action: command.run
          targets: 'alpha'
          quiesce: {{timeout: 5, grace: 1}}
          options:
            script: 'test -e {frozen} && echo "backup while frozen" >> {log}
              && echo x > "$BACKSTOP_OUTPUT/x"'
            quiesce: 'touch {frozen}; echo freeze >> {log}'
            unquiesce: 'rm -f {frozen}; echo thaw >> {log}'
            quiesced: 'test -e {frozen}'
        """)
    execution = await run(text, context())
    assert execution.status is PlanStatus.SUCCEEDED, execution.tasks[0].error
    assert log.read_text().splitlines() == ["freeze", "backup while frozen", "thaw"]
    assert not frozen.exists()


async def test_rsync_over_ssh_through_the_flow(tmp_path: Path, sshd: Sshd) -> None:
    source = write_tree(tmp_path / "remote", {"etc/app.conf": "x = 1\n"})
    access = sshd.access()
    text = plan_yaml(tmp_path / "d", f"- {{action: rsync.sync, targets: 'far', options: "
                     f"{{source: '{source}'}}}}", targets=()).replace(
        "kind: Plan", "kind: Target\nmetadata: {name: far}\nspec:\n  address: 127.0.0.1\n"
        f"  ssh: {{user: {access.user}, port: {access.port}, key: '{access.key}', "
        f"options: [{', '.join(access.options)}]}}\n---\nkind: Plan")
    execution = await run(text, context())
    task = execution.tasks[0]
    assert execution.status is PlanStatus.SUCCEEDED, task.error
    assert [f.path for f in task.files] == ["etc/app.conf"]
    assert (Path(task.output_path or "") / "etc" / "app.conf").read_text() == "x = 1\n"


async def test_without_a_quiesced_command_a_successful_quiesce_counts(tmp_path: Path) -> None:
    log = tmp_path / "log"
    text = plan_yaml(tmp_path / "d", f"""\
        - action: command.run
          targets: '*'
          quiesce: {{timeout: 1, grace: 0.5, unquiesceTimeout: 0.5}}
          options:
            script: 'echo x > "$BACKSTOP_OUTPUT/x"'
            quiesce: 'echo "freeze $BACKSTOP_TARGET" >> {log}'
            unquiesce: 'echo "thaw $BACKSTOP_TARGET" >> {log}'
        """, extra="parallel: 1")
    execution = await run(text, context())
    assert execution.status is PlanStatus.SUCCEEDED, [t.error for t in execution.tasks]
    assert log.read_text().splitlines() == ["freeze alpha", "thaw alpha", "freeze beta",
                                            "thaw beta"]


class UnavailableLocks:
    """Target locks whose store is down."""

    @asynccontextmanager
    async def hold(self, target: str, holder: str) -> AsyncIterator[None]:
        raise RuntimeError("lease store unavailable")
        yield


async def test_when_targets_cannot_be_locked_the_plan_fails_and_runs_nothing(
        tmp_path: Path) -> None:
    behaviour = Behaviour()
    text = plan_yaml(tmp_path / "d", "- {action: probe.copy, targets: '*'}")
    execution = await run(text, context(behaviour, locks=UnavailableLocks()))
    assert execution.status is PlanStatus.FAILED
    assert execution.error == "RuntimeError: lease store unavailable"
    assert {t.status for t in execution.tasks} == {TaskStatus.SKIPPED}
    assert behaviour.calls == []
