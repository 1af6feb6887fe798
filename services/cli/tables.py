"""Listings on the command line, every one the same way.

* For people: a header row (also when there are no rows), then one line per row, columns two
  spaces apart (no box drawing), aligned by terminal cells so wide characters line up.
* Cells are one line and inert: stored text (a delivery error, a client's job name, a name a
  reseller typed) has its control characters replaced (:func:`shared.text.one_line`), so it can
  neither split a row nor drive the operator's terminal. Free text from outside (errors,
  reasons) is cut at ``TEXT_LIMIT`` characters with "…"; identifiers, URLs and our own
  descriptions never are, since a cut one could be taken for another.
* Paging: ``--limit`` (default 100, 0 = all) rows from ``--offset`` on. When rows were left
  out, a footer such as ``showing 1-50 of 120 (next: --offset 50)`` goes to stderr; stdout
  carries only the listing, so it pipes cleanly, and nothing goes to stderr when every row is
  shown.
* For scripts, ``--json``: one object ``{"total", "offset", "limit", "items"}``, the items being
  the page's rows — the ones a person sees, whole and as stored (JSON escapes control
  characters itself) — and ``total`` what a script needs to page on.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import typer
from rich.cells import cell_len

from shared.text import one_line

Row = Mapping[str, Any]

# Wide enough for ordinary URLs, ids and addresses; a longer error is still recognisable, and
# whole in --json.
TEXT_LIMIT = 120

# Options every listing takes (typer copies them into each command).
JSON = typer.Option(False, "--json", help="Print one JSON object: {total, offset, limit, items}.")
LIMIT = typer.Option(100, min=0, help="Show at most this many rows (0: all).")
OFFSET = typer.Option(0, min=0, help="Skip this many rows first (the footer says what is next).")


@dataclass(frozen=True)
class Page:
    """The rows shown: at most ``limit`` (0: no limit) of ``total``, the first being row
    ``offset`` (counting from 0)."""

    rows: Sequence[Any]
    total: int
    offset: int = 0
    limit: int = 0

    @classmethod
    def cut(cls, rows: Sequence[Any], limit: int, offset: int = 0) -> Page:
        """The page of a whole listing: at most ``limit`` rows (0: all) from ``offset`` on."""
        end = None if limit == 0 else offset + limit
        return cls(rows[offset:end], len(rows), offset, limit)

    @property
    def footer(self) -> str | None:
        """Which rows of how many were shown, and where the next page starts; None when every
        row was."""
        shown = len(self.rows)
        if shown == self.total:
            return None
        if shown == 0:
            return f"showing 0 of {self.total}"
        last = self.offset + shown
        more = f" (next: --offset {last})" if last < self.total else ""
        return f"showing {self.offset + 1}-{last} of {self.total}{more}"


def emit(page: Page, columns: Sequence[str], *, as_json: bool,
         capped: Collection[str] = ()) -> None:
    """Print a page of a listing: the table of ``columns`` (keys of the rows; those in
    ``capped`` are free text, cut at ``TEXT_LIMIT``), or the JSON object; then the footer."""
    if as_json:
        typer.echo(json.dumps({"total": page.total, "offset": page.offset, "limit": page.limit,
                               "items": list(page.rows)}, default=json_value))
    else:
        typer.echo(render(page.rows, columns, capped=capped))
    if page.footer:
        typer.echo(page.footer, err=True)


def render(rows: Sequence[Row], columns: Sequence[str], *, capped: Collection[str] = ()) -> str:
    """A header row and one line per row, each column as wide as its widest cell."""
    grid = [[c.upper() for c in columns],
            *([cell(row.get(c), TEXT_LIMIT if c in capped else None) for c in columns]
              for row in rows)]
    widths = [max(cell_len(line[i]) for line in grid) for i in range(len(columns))]
    return "\n".join(
        "  ".join(text + " " * (width - cell_len(text))
                  for text, width in zip(line, widths, strict=True)).rstrip()
        for line in grid
    )


def cell(value: Any, limit: int | None = None) -> str:
    """A value as one table cell: never empty, never spanning lines, no control characters, at
    most ``limit`` characters (None: any)."""
    if value is None or value == "" or value == []:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"  # as in JSON, and as `thresholds set` takes them
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, list | tuple):
        return one_line(",".join(cell(v) for v in value), limit)
    return one_line(str(value), limit) or "-"


def json_value(value: Any) -> Any:
    """``json.dumps``'s ``default`` for the CLI: dates and times in ISO 8601, the rest as text."""
    if isinstance(value, date):
        return value.isoformat()
    return str(value)
