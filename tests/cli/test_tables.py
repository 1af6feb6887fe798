"""The listing renderer: header row, aligned columns, one safe line per cell, a footer on stderr
saying which rows of how many were shown, and ``--json`` as one {total, offset, limit, items}."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from services.cli.tables import TEXT_LIMIT, Page, cell, emit, render
from services.notifier.channels.headers import header_text


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


# Stored client text must not drive the operator's terminal: ESC starts escape sequences (colour,
# title, cursor moves, OSC 52 clipboard writes), CR overwrites the line, C1 CSI (U+009B) is ESC [
# on some terminals, U+2028/2029 break lines, NUL/DEL/BEL misbehave; lone surrogates are not text.
BREAKING = ["\x00", "\x07", "\t", "\n", "\r", "\x1b", "\x7f", "\x85", "\x9b", "\u2028", "\u2029",
            "\ud800", "\udfff"]


@pytest.mark.parametrize("char", BREAKING, ids=lambda c: f"U+{ord(c):04X}")
def test_cells_replace_control_characters(char: str) -> None:
    assert cell(f"disk{char}full") == "disk full"
    assert cell([f"a{char}b"]) == "a b"
    assert render([{"job": f"x{char}]0;pwned{char}"}], ["job"]).splitlines() == [
        "JOB", "x ]0;pwned"]


def test_cells_and_mail_headers_share_one_idea_of_a_breaking_character() -> None:
    for char in [*BREAKING, *map(chr, range(0x20)), *map(chr, range(0x7f, 0xa0))]:
        assert cell(f"a{char}b") == header_text(f"a{char}b") == "a b"


def test_free_text_cells_are_capped_identifiers_are_not() -> None:
    url = "https://psa.example/" + "x" * 300
    assert cell(url) == url  # a cut URL or id could be taken for another one
    capped = cell("boom " * 100, limit=TEXT_LIMIT)
    assert len(capped) == TEXT_LIMIT == 120 and capped.endswith("boom…")
    rows = [{"url": url, "error": "e" * 500}]
    assert render(rows, ["url", "error"], capped=["error"]).splitlines()[1] == (
        f"{url}  {'e' * 119}…")


def test_page_cut_and_what_it_leaves_out() -> None:
    rows = [{"n": n} for n in range(5)]
    assert Page.cut(rows, 2).rows == rows[:2] and Page.cut(rows, 2).total == 5
    assert Page.cut(rows, 2, offset=4).rows == rows[4:]
    assert Page.cut(rows, 0).rows == rows and Page.cut(rows, 0).limit == 0
    assert Page.cut(rows, 3, offset=9).rows == []


@pytest.mark.parametrize(("page", "footer"), [
    (Page.cut(list(range(120)), 50), "showing 1-50 of 120 (next: --offset 50)"),
    (Page.cut(list(range(120)), 50, 50), "showing 51-100 of 120 (next: --offset 100)"),
    (Page.cut(list(range(120)), 50, 100), "showing 101-120 of 120"),  # the first 100 left out
    (Page.cut(list(range(120)), 10, 500), "showing 0 of 120"),
    (Page.cut(list(range(120)), 0), None),  # everything shown: nothing to say
    (Page.cut(list(range(120)), 120), None),
    (Page.cut([], 50), None),
    (Page([1, 2], total=9, offset=3, limit=2), "showing 4-5 of 9 (next: --offset 5)"),
])
def test_the_footer_says_which_rows_of_how_many(page: Page, footer: str | None) -> None:
    assert page.footer == footer


def test_emit_prints_the_listing_on_stdout_and_the_footer_on_stderr(
        capsys: pytest.CaptureFixture[str]) -> None:
    at = datetime(2025, 3, 1, tzinfo=UTC)
    rows = [{"id": str(n), "at": at, "extra": None} for n in range(3)]
    emit(Page.cut(rows, 2), ["id", "at"], as_json=False)
    out, err = capsys.readouterr()
    assert out.splitlines() == ["ID  AT", "0   2025-03-01 00:00:00+00:00",
                                "1   2025-03-01 00:00:00+00:00"]
    assert err == "showing 1-2 of 3 (next: --offset 2)\n"
    emit(Page.cut(rows, 1, 1), ["id"], as_json=True)  # JSON: one object, the whole rows
    out, err = capsys.readouterr()
    assert json.loads(out) == {"total": 3, "offset": 1, "limit": 1, "items": [
        {"id": "1", "at": "2025-03-01T00:00:00+00:00", "extra": None}]}
    assert out.count("\n") == 1
    assert err == "showing 2-2 of 3 (next: --offset 2)\n"
    emit(Page.cut(rows, 0), ["id"], as_json=False)  # a whole listing: nothing left out
    assert capsys.readouterr().err == ""
    emit(Page.cut([], 100), ["id"], as_json=True)
    out, err = capsys.readouterr()
    assert json.loads(out) == {"total": 0, "offset": 0, "limit": 100, "items": []}
    assert err == ""


def test_json_keeps_stored_text_as_it_is(capsys: pytest.CaptureFixture[str]) -> None:
    """JSON escapes control characters itself; scripts get the text as stored."""
    emit(Page.cut([{"error": "a\x1b[31m\nb"}], 10), ["error"], as_json=True)
    out = capsys.readouterr().out
    assert "\x1b" not in out and json.loads(out)["items"] == [{"error": "a\x1b[31m\nb"}]
