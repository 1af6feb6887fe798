"""The end of a backup log: where the error is. Cut to a size in UTF-8 bytes (and optionally a
number of lines), with a visible marker saying that the beginning was dropped.

Used where a log must fit somewhere small: an alert's details (the e-mail and the webhook carry
the failing run's tail) and the run history's stored excerpt.
"""

from __future__ import annotations

import re

MARKER = "[… {dropped} bytes before this cut by Backstop …]\n"


def log_tail(text: str | None, limit_bytes: int, max_lines: int | None = None) -> str | None:
    """The last ``limit_bytes`` UTF-8 bytes (and at most ``max_lines`` lines) of ``text``,
    starting with a marker when anything was dropped; NUL (which no database text column holds)
    becomes U+FFFD. None stays None."""
    if text is None:
        return None
    text = text.replace("\x00", "\ufffd")
    raw = text.encode()
    keep = raw
    if max_lines is not None:
        lines = text.rstrip("\n").split("\n")
        if len(lines) > max_lines:
            keep = "\n".join(lines[-max_lines:]).encode()
    if len(raw) <= limit_bytes and keep is raw:
        return text
    marker_room = len(MARKER.format(dropped=len(raw)).encode())
    room = max(0, limit_bytes - marker_room)
    if len(keep) > room:
        keep = keep[len(keep) - room:]
    # errors="ignore" drops a multi-byte character cut in half at the edge.
    tail = keep.decode(errors="ignore")
    return MARKER.format(dropped=len(raw) - len(tail.encode())) + tail


# Control characters but TAB and LF (ESC sequences colour or clear a terminal, CR overwrites a
# line, NUL ends C strings), DEL, the C1 controls, U+2028/9 and lone surrogates.
_UNREADABLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")


def readable(text: str) -> str:
    """A log as lines a mail, a page or a terminal shows as they are: CR LF and lone CRs become
    line breaks, the other control characters U+FFFD."""
    return _UNREADABLE.sub("\ufffd", text.replace("\r\n", "\n").replace("\r", "\n"))
