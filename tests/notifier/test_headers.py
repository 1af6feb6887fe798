"""Header text from data: one line, no control characters, bounded."""

from __future__ import annotations

import pytest

from services.notifier.channels.headers import address, header_text


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


@pytest.mark.parametrize("value", ["ops@example.com", "a.b+tag@sub.example.org",
                                   "backstop@localhost"])
def test_plain_addresses_are_accepted(value: str) -> None:
    assert address(value).addr_spec == value


@pytest.mark.parametrize("value", [
    "", "ops", "@example.com", "ops@", "a@b@c", "ops@example.com\nBcc: all@example.com",
    "ops@example.com\r", "o\x00ps@example.com", "a@b.example, c@d.example",
    "Ops <ops@example.com>", "ops @example.com",
])
def test_anything_else_is_not_an_address(value: str) -> None:
    with pytest.raises(ValueError, match="not an e-mail address"):
        address(value)


def test_the_display_name_is_made_one_line() -> None:
    assert str(address("alerts@acme.example", "Acme\r\nIT")) == "Acme IT <alerts@acme.example>"
