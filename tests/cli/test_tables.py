"""The listing renderer: header row, aligned columns, one line per row, what paging left out."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from services.cli.tables import Page, cell, emit, render


def test_columns_line_up_under_their_headers_even_with_wide_characters() -> None:
    text = render([{"name": "東京", "city": "x"}, {"name": "Müller GmbH", "city": "Köln"}],
                  ["name", "city"])
    assert text.splitlines() == [
        "NAME         CITY",
        "東京         x",  # two characters, four cells wide
        "Müller GmbH  Köln",
    ]


def test_an_empty_listing_still_has_its_header() -> None:
    assert render([], ["id", "url"]) == "ID  URL"


@pytest.mark.parametrize(("value", "shown"), [
    (None, "-"), ("", "-"), ([], "-"), (True, "true"), (False, "false"), (0, "0"),
    (["a@x", "b@x"], "a@x,b@x"), ("line one\nline  two", "line one line two"),
    (datetime(2025, 3, 1, 12, 30, 5, 123, tzinfo=UTC), "2025-03-01 12:30:05+00:00"),
])
def test_cells_are_one_line_and_never_empty(value: object, shown: str) -> None:
    assert cell(value) == shown


def test_page_cut_and_what_it_leaves_out() -> None:
    rows = [{"n": n} for n in range(5)]
    assert Page.cut(rows, 2).rows == rows[:2] and Page.cut(rows, 2).not_shown == 3
    assert Page.cut(rows, 2, offset=4).rows == rows[4:] and Page.cut(rows, 2, 4).not_shown == 0
    assert Page.cut(rows, 0).rows == rows and Page.cut(rows, 0).not_shown == 0
    assert Page.cut(rows, 3, offset=9).rows == [] and Page.cut(rows, 3, 9).not_shown == 0


def test_emit_prints_the_listing_on_stdout_and_the_note_on_stderr(
        capsys: pytest.CaptureFixture[str]) -> None:
    at = datetime(2025, 3, 1, tzinfo=UTC)
    rows = [{"id": str(n), "at": at, "extra": None} for n in range(3)]
    emit(Page.cut(rows, 2), ["id", "at"], as_json=False)
    out, err = capsys.readouterr()
    assert out.splitlines() == ["ID  AT", "0   2025-03-01 00:00:00+00:00",
                                "1   2025-03-01 00:00:00+00:00"]
    assert err == "1 more row not shown (use --limit/--offset)\n"
    emit(Page.cut(rows, 1), ["id"], as_json=True)  # JSON: the whole rows, same page
    out, err = capsys.readouterr()
    assert [json.loads(line) for line in out.splitlines()] == [
        {"id": "0", "at": "2025-03-01T00:00:00+00:00", "extra": None}]
    assert err == "2 more rows not shown (use --limit/--offset)\n"
    emit(rows, ["id"], as_json=False)  # a whole listing: nothing left out
    assert capsys.readouterr().err == ""
