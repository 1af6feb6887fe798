"""Listings on the command line: a table under a header row for people, JSON lines (``--json``)
for scripts, and a note on stderr when ``--limit``/``--offset`` leave rows out.

Both outputs show the same rows, so a script sees what a person sees; stdout carries only the
listing (header and rows, or JSON), which keeps it safe to pipe. The table has no box drawing:
columns are two spaces apart, one line per row.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import typer
from rich.cells import cell_len

Row = Mapping[str, Any]

# Options every listing takes (typer copies them into each command).
JSON = typer.Option(False, "--json", help="Print JSON lines, one object per row.")
LIMIT = typer.Option(100, min=0, help="Show at most this many rows (0: all).")
OFFSET = typer.Option(0, min=0, help="Skip this many rows first.")


@dataclass(frozen=True)
class Page:
    """The rows shown, out of ``total`` rows in the listing, the first being row ``offset``."""

    rows: Sequence[Row]
    total: int
    offset: int = 0

    @classmethod
    def cut(cls, rows: Sequence[Row], limit: int, offset: int = 0) -> Page:
        """The page of a whole listing: at most ``limit`` rows (0: all) from ``offset`` on."""
        end = None if limit == 0 else offset + limit
        return cls(rows[offset:end], len(rows), offset)

    @property
    def not_shown(self) -> int:
        """Rows after this page."""
        return max(self.total - self.offset - len(self.rows), 0)


def emit(listing: Page | Sequence[Row], columns: Sequence[str], *, as_json: bool) -> None:
    """Print a listing (a page of one, or all of it): JSON lines of the whole rows, or a table of
    ``columns`` (keys of the rows) under their upper-cased names; then what was left out."""
    page = listing if isinstance(listing, Page) else Page(listing, len(listing))
    if as_json:
        for row in page.rows:
            typer.echo(json.dumps(row, default=_json_value))
    else:
        typer.echo(render(page.rows, columns))
    if page.not_shown:
        rows = "row" if page.not_shown == 1 else "rows"
        typer.echo(f"{page.not_shown} more {rows} not shown (use --limit/--offset)", err=True)


def render(rows: Sequence[Row], columns: Sequence[str]) -> str:
    """A header row and one line per row, each column as wide as its widest cell."""
    grid = [[c.upper() for c in columns], *([cell(row.get(c)) for c in columns] for row in rows)]
    widths = [max(cell_len(line[i]) for line in grid) for i in range(len(columns))]
    return "\n".join(
        "  ".join(text + " " * (width - cell_len(text))
                  for text, width in zip(line, widths, strict=True)).rstrip()
        for line in grid
    )


def cell(value: Any) -> str:
    """A value as one table cell: never empty and never spanning lines, so rows stay rows."""
    if value is None or value == "" or value == []:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"  # as in JSON, and as `thresholds set` takes them
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, list | tuple):
        return ",".join(cell(v) for v in value)
    return " ".join(str(value).split())


def _json_value(value: Any) -> Any:
    if isinstance(value, date):
        return value.isoformat()
    return str(value)
