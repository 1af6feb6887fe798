"""``backstop settings``: every setting of every service, as the README's table shows them."""

from __future__ import annotations

import typer
from pydantic_settings import BaseSettings

from shared.config import (
    BaseServiceSettings,
    EvaluatorSettings,
    IngestSettings,
    NotifierSettings,
)

SERVICES: dict[str, type[BaseSettings]] = {
    "all": BaseServiceSettings,
    "ingest": IngestSettings,
    "evaluator": EvaluatorSettings,
    "notifier": NotifierSettings,
}


def rows() -> list[tuple[str, str, str, str]]:
    """(variable, service, default, description), each setting once, under its first owner."""
    seen: set[str] = set()
    out = []
    for service, cls in SERVICES.items():
        prefix = str(cls.model_config.get("env_prefix", ""))
        for name, field in cls.model_fields.items():
            variable = f"{prefix}{name}".upper()
            if variable in seen:
                continue
            seen.add(variable)
            default = "" if field.default is None else str(field.default)
            out.append((variable, service, default, field.description or ""))
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
