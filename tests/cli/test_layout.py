"""Where the command line's code comes from: each service's ``admin`` facade (never its tables or
store), and the helpers every command shares from one module (never from another command)."""

from __future__ import annotations

import ast
from pathlib import Path

import services.cli

CLI = Path(services.cli.__file__).parent
# The command modules' shared ground; everything else in the folder is a command.
SHARED = {"services.cli", "services.cli.common", "services.cli.tables", "services.cli.settings"}
# `backstop up/run` start the services themselves.
RUNNERS = {"services.evaluator.service", "services.executor.service"}


def imported(path: Path) -> set[str]:
    """The modules ``path`` imports from (``from x import y`` counts ``x`` and ``x.y``)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def within(module: str, packages: set[str]) -> bool:
    return any(module == p or module.startswith(f"{p}.") for p in packages)


def test_the_cli_reaches_the_evaluator_only_through_its_admin_facade() -> None:
    reaching = {
        (path.name, module) for path in CLI.glob("*.py") for module in imported(path)
        if module.startswith("services.evaluator.")
        and not within(module, {"services.evaluator.admin", *RUNNERS})
    }
    assert reaching == set()


def test_commands_share_helpers_through_one_module_not_each_other() -> None:
    commands = {f"services.cli.{path.stem}" for path in CLI.glob("*.py")} - SHARED - {
        "services.cli.__init__", "services.cli.__main__"}
    borrowed = {
        (path.name, module) for path in CLI.glob("*.py") if path.stem != "__init__"
        for module in imported(path)
        if within(module, commands)
    }
    assert borrowed == set()
