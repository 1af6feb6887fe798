"""Finding plugins: the built-ins, a third-party distribution's entry point (a real
``*.dist-info`` on sys.path, as pip leaves it), broken and conflicting entry points."""

from __future__ import annotations

import importlib
import json
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from services.cli import app
from services.executor.plugins import registry
from services.executor.plugins.api import PluginNotFound, Target, TaskContext
from services.executor.plugins.command import CommandPlugin
from tests.executor.support import context

runner = CliRunner()

PLUGIN = '''
from services.executor.plugins.api import Action, ActionOptions, BackupResult, Plugin


class HelloOptions(ActionOptions):
    greeting: str = "hello"


class HelloPlugin(Plugin):
    name = "hello"
    summary = "Writes a greeting."
    actions = (Action(name="greet", summary="Write greeting.txt", options=HelloOptions),)

    async def backup(self, ctx):
        options = self.options(ctx.action, ctx.options)
        ctx.output.mkdir(parents=True, exist_ok=True)
        (ctx.output / "greeting.txt").write_text(options.greeting)
        return BackupResult(files_transferred=1, bytes=len(options.greeting))


class NotAPlugin:
    pass
'''


def install(site: Path, distribution: str, version: str, entry_points: str) -> None:
    """What pip leaves for a distribution: its module(s) and a dist-info folder."""
    info = site / f"{distribution.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {distribution}\n"
                                   f"Version: {version}\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(entry_points))


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    folder = tmp_path / "site-packages"
    folder.mkdir()
    (folder / "backstop_hello.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(folder))
    importlib.invalidate_caches()
    yield folder
    importlib.invalidate_caches()


def test_the_built_ins_are_there_without_any_installation() -> None:
    found = registry.load(entries=[])
    assert [i.name for i in found.all()] == ["command", "postgres", "restic", "rsync"]
    plugin, action = found.for_action("command.run")
    assert isinstance(plugin, CommandPlugin) and action.name == "run"
    assert {i.distribution for i in found.all()} == {"backstop"}


def test_unknown_plugins_and_actions_are_refused_by_name() -> None:
    found = registry.load(entries=[])
    with pytest.raises(PluginNotFound, match="no plugin named tape"):
        found.for_action("tape.backup")
    with pytest.raises(PluginNotFound, match=r"plugin rsync has no action copy \(it has: "
                       r"rsync\.sync\)"):
        found.for_action("rsync.copy")
    with pytest.raises(PluginNotFound, match=r"plugin\.action"):
        found.for_action("rsync")


async def test_a_pip_installed_plugin_is_found_and_runs(site: Path, tmp_path: Path) -> None:
    install(site, "backstop-hello", "1.2.3", """
        [backstop.executor.plugins]
        hello = backstop_hello:HelloPlugin
        """)
    found = registry.load()
    info = found.plugins["hello"]
    assert (info.distribution, info.version, info.error) == ("backstop-hello", "1.2.3", None)
    plugin, _ = found.for_action("hello.greet")
    ctx: TaskContext = context("hello.greet", tmp_path / "out", greeting="hi there")
    result = await plugin.backup(ctx)
    assert (ctx.output / "greeting.txt").read_text() == "hi there" and result.bytes == 8
    await plugin.probe(Target(name="localhost"), "hello.greet", {})  # the default probe


def test_plugins_list_shows_the_third_party_plugin(site: Path) -> None:
    install(site, "backstop-hello", "1.2.3", """
        [backstop.executor.plugins]
        hello = backstop_hello:HelloPlugin
        """)
    result = runner.invoke(app, ["plugins", "list"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["PLUGIN", "ACTIONS", "DISTRIBUTION", "VERSION", "ERROR"]
    assert ["hello", "hello.greet", "backstop-hello", "1.2.3", "-"] in [
        line.split() for line in lines]

    listed = json.loads(runner.invoke(app, ["plugins", "list", "--json"]).stdout)
    assert listed["total"] == 5
    hello = next(row for row in listed["items"] if row["plugin"] == "hello")
    assert hello["actions"] == ["hello.greet"] and hello["summary"] == "Writes a greeting."

    shown = runner.invoke(app, ["plugins", "show", "hello"])
    assert shown.exit_code == 0, shown.output
    assert "hello.greet: Write greeting.txt" in shown.stdout
    assert ["greeting", "str", "hello", "-"] in [line.split() for line in
                                                 shown.stdout.splitlines()]


def test_broken_and_conflicting_entry_points_are_listed_not_fatal(site: Path) -> None:
    install(site, "backstop-broken", "0.1", """
        [backstop.executor.plugins]
        missing = backstop_nowhere:Plugin
        wrong = backstop_hello:NotAPlugin
        rsync = backstop_hello:HelloPlugin
        """)
    found = registry.load()
    assert "ModuleNotFoundError" in (found.plugins["missing"].error or "")
    assert "is not a subclass" in (found.plugins["wrong"].error or "")
    assert "name taken by services.executor.plugins.rsync:RsyncPlugin" in (
        found.plugins["rsync (backstop-broken)"].error or "")
    assert found.plugins["rsync"].distribution == "backstop"
    with pytest.raises(PluginNotFound, match="could not be loaded"):
        found.plugin("missing")
    result = runner.invoke(app, ["plugins", "list", "--json"])
    assert result.exit_code == 0
    rows = {(row["plugin"], row["distribution"]): row["error"]
            for row in json.loads(result.stdout)["items"]}
    assert rows[("rsync", "backstop")] is None
    assert rows[("rsync", "backstop-broken")] and rows[("missing", "backstop-broken")]


def test_show_refuses_an_unknown_plugin() -> None:
    result = runner.invoke(app, ["plugins", "show", "tape"])
    assert result.exit_code == 2 and "no plugin named tape" in result.stderr
