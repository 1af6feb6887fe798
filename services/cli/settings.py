"""``backstop settings``: every setting of every service, as the README's table shows them."""

from __future__ import annotations

from typing import Any

import typer
from pydantic_settings import BaseSettings

from shared.config import (
    BaseServiceSettings,
    DirectorySettings,
    EvaluatorSettings,
    ExecutorSettings,
    IngestSettings,
    NotifierSettings,
    PortalSettings,
)

SERVICES: dict[str, type[BaseSettings]] = {
    "all": BaseServiceSettings,
    "ingest": IngestSettings,
    "evaluator, notifier, portal": DirectorySettings,
    "evaluator": EvaluatorSettings,
    "notifier": NotifierSettings,
    "portal": PortalSettings,
    "executor": ExecutorSettings,
}


def variable(cls: type[BaseSettings], name: str) -> str:
    """The environment variable that sets field ``name`` of ``cls``."""
    return f"{cls.model_config.get('env_prefix', '')}{name}".upper()


def option(cls: type[BaseSettings], name: str, help: str | None = None) -> Any:
    """A command-line option for a setting, its ``--help`` showing the variable and the default.

    The option beats the variable, which beats the default: the option's own default is None
    (nothing to override), so the settings class still reads the variable and the default, as
    it does without the option.
    """
    field = cls.model_fields[name]
    return typer.Option(None, envvar=variable(cls, name), show_envvar=True,
                        show_default=str(field.default), help=help or field.description)


def rows() -> list[tuple[str, str, str, str]]:
    """(variable, service, default, description), each setting once, under its first owner."""
    seen: set[str] = set()
    out = []
    for service, cls in SERVICES.items():
        for name, field in cls.model_fields.items():
            var = variable(cls, name)
            if var in seen:
                continue
            seen.add(var)
            default = "" if field.default is None else str(field.default)
            out.append((var, service, default, field.description or ""))
    return out


def markdown() -> str:
    lines = ["| Variable | Service | Default | Meaning |", "|---|---|---|---|"]
    for variable, service, default, description in rows():
        shown = f"`{default}`" if default else "(empty)"
        lines.append(f"| `{variable}` | {service} | {shown} | {description} |")
    return "\n".join(lines)


def show() -> None:
    """Print every BACKSTOP_* setting with its default, as a Markdown table."""
    typer.echo(markdown())
