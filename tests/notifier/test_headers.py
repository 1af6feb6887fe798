"""Header text from data: one line, no control characters, bounded."""

from __future__ import annotations

import pytest

from services.notifier.headers import header_text


@pytest.mark.parametrize("breaking", [
    "\n", "\r", "\r\n", "\x00", "\x1b", "\x7f", "\x85", "\x9b", "\x0b", "\x0c", "\t",
    "\u2028", "\u2029", "\ud800",
])
def test_breaking_characters_become_one_space(breaking: str) -> None:
    assert header_text(f"disk{breaking}full") == "disk full"
    assert header_text(f"{breaking}disk{breaking}{breaking}full{breaking}") == "disk full"


def test_printable_text_is_kept() -> None:
    text = "Sicherung „Nächtlich“ fehlgeschlagen: 😱 <x@y> \"quoted\", a=b; ü"
    assert header_text(text) == text


def test_long_text_is_cut_with_an_ellipsis() -> None:
    assert header_text("x" * 300) == "x" * 199 + "…"
    assert header_text("word " * 10, limit=12) == "word word w…"
    assert len(header_text("y" * 50, limit=10)) == 10


def test_header_injection_stays_in_the_value() -> None:
    assert header_text("ok\r\nBcc: all@example.com") == "ok Bcc: all@example.com"
