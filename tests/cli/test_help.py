"""Every command's ``--help``, as a user reads it: flags look like flags, every option shows its
default, and an option that a setting backs names the BACKSTOP_* variable that sets it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer.main
from pydantic_settings import BaseSettings
from typer.core import TyperCommand, TyperGroup, TyperOption
from typer.testing import CliRunner

from services.cli import app
from services.cli import runner as runner_module
from services.cli.settings import SERVICES, variable
from shared.config import EmbeddedSettings

runner = CliRunner()
_root = typer.main.get_command(app)
assert isinstance(_root, TyperGroup)
ROOT: TyperGroup = _root
Command = TyperCommand | TyperGroup
# Every field of every settings class, by the option name that would stand for it.
SETTINGS: list[type[BaseSettings]] = [*SERVICES.values(), EmbeddedSettings]
SETTING_VARIABLES = {name: variable(cls, name) for cls in SETTINGS for name in cls.model_fields}


def commands(command: Command = ROOT, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """The path of every command that runs something (groups only list their commands)."""
    if isinstance(command, TyperGroup):
        for name, sub in command.commands.items():
            assert isinstance(sub, (TyperCommand, TyperGroup))
            yield from commands(sub, (*path, name))
    else:
        yield path


def command_at(path: tuple[str, ...]) -> Command:
    command: Command = ROOT
    for name in path:
        assert isinstance(command, TyperGroup)
        sub = command.commands[name]
        assert isinstance(sub, (TyperCommand, TyperGroup))
        command = sub
    return command


def help_text(path: tuple[str, ...]) -> str:
    result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "100"})
    assert result.exit_code == 0, result.output
    return " ".join(result.stdout.split())


def option_help(text: str, options: list[TyperOption]) -> dict[str, str]:
    """Each option's part of the help text: from its name to the next option's."""
    starts, at = [], text.index("Options")
    for option in options:
        at = text.index(option.opts[0], at)
        starts.append(at)
    ends = [*starts[1:], len(text)][:len(starts)]
    return {o.name or "": text[s:e] for o, s, e in zip(options, starts, ends, strict=True)}


ALL = sorted(commands())


def test_every_command_is_walked() -> None:
    assert {("up",), ("accounts", "list"), ("thresholds", "min-version")} <= set(ALL)


@pytest.mark.parametrize("path", ALL, ids=" ".join)
def test_help_shows_flags_defaults_and_variables(path: tuple[str, ...]) -> None:
    text = help_text(path)
    assert "<bool>" not in text, text
    options = [p for p in command_at(path).params if isinstance(p, TyperOption)]
    parts = option_help(text, options)
    for option in options:
        part = parts[option.name or ""]
        if option.is_flag:
            assert not re.match(r"\S+ <", part), part  # no value placeholder after a flag
            continue
        if option.name in SETTING_VARIABLES:  # the settings class has the default
            assert f"env var: {SETTING_VARIABLES[option.name]}; default: " in part, part
        elif option.default is not None and option.default not in ("", []):  # nothing to show
            assert f"default: {option.default}" in part, part


def test_up_shows_the_data_dir_and_port_it_uses_and_their_variables() -> None:
    text = help_text(("up",))
    assert re.search(r"--data-dir .*\[env var: BACKSTOP_DATA_DIR; default: \((\./)?var\)\]", text)
    assert re.search(r"--ingest-port .*\[env var: BACKSTOP_INGEST_PORT; default: \(8080\)\]", text)


@pytest.fixture
def up_settings(monkeypatch: pytest.MonkeyPatch) -> list[EmbeddedSettings]:
    """The settings `backstop up` would run with (it stops before starting anything)."""
    seen: list[EmbeddedSettings] = []

    async def serve(settings: EmbeddedSettings, *_: object, **__: object) -> None:
        seen.append(settings)

    monkeypatch.setattr(runner_module, "serve", serve)
    monkeypatch.setattr(runner_module, "configure_logging", lambda *_: None)
    for name in ("BACKSTOP_INGEST_PORT", "BACKSTOP_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    return seen


def test_up_flag_beats_variable_beats_default(
        up_settings: list[EmbeddedSettings], monkeypatch: pytest.MonkeyPatch) -> None:
    def up(*args: str, **env: str) -> tuple[Path, int]:
        result = runner.invoke(app, ["up", *args], env=env)
        assert result.exit_code == 0, result.output
        settings = up_settings.pop()
        return settings.data_dir, settings.ingest_port

    assert up() == (Path("var"), 8080)
    variables = {"BACKSTOP_DATA_DIR": "/srv/backstop", "BACKSTOP_INGEST_PORT": "9000"}
    assert up(**variables) == (Path("/srv/backstop"), 9000)
    assert up("--data-dir", "d", "--ingest-port", "9100", **variables) == (Path("d"), 9100)
    # The settings class still reads what the option does not (its names ignore case).
    assert up(backstop_ingest_port="9200") == (Path("var"), 9200)
    result = runner.invoke(app, ["up"], env={"BACKSTOP_INGEST_PORT": "http"})
    assert result.exit_code == 2 and "BACKSTOP_INGEST_PORT" in result.output
