"""Header values from data: text (client messages, job names, brand and customer names) made
safe for a mail header, and addresses checked.

A line break in a header value would end the header (or start a new one: injection); the
``email`` package refuses it, and lets NUL, ESC and other control characters through onto the
wire. Every header built from data goes through :func:`header_text` instead. Addresses are
parsed, never cleaned up: a cleaned-up address could be someone else's.
"""

from __future__ import annotations

from email.errors import MessageError
from email.headerregistry import Address

from shared.text import one_line

# RFC 5322 lines stay under 998 octets; a subject this long is already unreadable.
DEFAULT_LIMIT = 200


def header_text(value: str, limit: int = DEFAULT_LIMIT) -> str:
    """``value`` on one line (:func:`shared.text.one_line`: control characters and line and
    paragraph separators become spaces), at most ``limit`` characters."""
    return one_line(value, limit)


def address(value: str, display_name: str = "") -> Address:
    """``value`` as one plain address (``user@example.com``); ValueError if it is anything else
    (a list, a name with it, a line break, a control character)."""
    try:
        parsed = Address(display_name=header_text(display_name), addr_spec=value)
    except (ValueError, IndexError, MessageError) as exc:
        raise ValueError(f"not an e-mail address: {value!r} ({exc})") from exc
    # The parser skips white space and comments; what is sent must be what was configured.
    if not parsed.username or not parsed.domain or parsed.addr_spec != value:
        raise ValueError(f"not an e-mail address: {value!r}")
    return parsed
