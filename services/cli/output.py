"""How the operator commands print: aligned tables with a header row, a footer saying which
rows of how many were shown, or JSON.

A table cell is one line: stored text (a delivery error, a client's message) can hold line
breaks, and escape sequences that would drive the operator's terminal.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import typer

from services.notifier.headers import header_text

CELL_LIMIT = 80


def cell(value: Any) -> str:
    return "-" if value is None else header_text(str(value), CELL_LIMIT)


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> list[str]:
    """The header row (column names in capitals) and one aligned line per row."""
    cells = [[cell(row.get(c)) for c in columns] for row in rows]
    header = [c.upper() for c in columns]
    widths = [max(len(text) for text in column) for column in zip(header, *cells, strict=False)]
    return ["  ".join(text.ljust(width) for text, width in zip(line, widths, strict=True))
            .rstrip() for line in [header, *cells]]


def footer(shown: int, total: int, offset: int) -> str:
    """``showing 1-50 of 120 (next: --offset 50)``."""
    if shown == 0:
        return f"showing 0 of {total}"
    last = offset + shown
    more = f" (next: --offset {last})" if last < total else ""
    return f"showing {offset + 1}-{last} of {total}{more}"


def emit_page(rows: list[dict[str, Any]], columns: Sequence[str], *, total: int, offset: int,
              limit: int, as_json: bool) -> None:
    """One page of a listing: a table with its footer, or ``{total, offset, limit, items}``."""
    if as_json:
        typer.echo(json.dumps({"total": total, "offset": offset, "limit": limit, "items": rows},
                              default=str))
        return
    if rows:
        for line in table(rows, columns):
            typer.echo(line)
    typer.echo(footer(len(rows), total, offset))


def emit_lines(rows: list[dict[str, Any]], columns: Sequence[str], as_json: bool) -> None:
    """A whole (short) listing: a table, or one JSON object per line."""
    if as_json:
        for row in rows:
            typer.echo(json.dumps(row, default=str))
    elif rows:
        for line in table(rows, columns):
            typer.echo(line)
