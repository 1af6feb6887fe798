"""Log excerpts: capped in size, cut with a visible marker rather than refused.

A backup log's first lines say what ran and its last lines say how it ended, so a long log keeps
its head and (mostly) its tail, with a marker in between saying how much was dropped.
"""

from __future__ import annotations

MARKER = "\n[… {dropped} bytes truncated by Backstop …]\n"


def cap_excerpt(text: str | None, limit: int) -> str | None:
    """``text`` if it fits in ``limit`` UTF-8 bytes, else its head and tail around a marker."""
    if text is None:
        return None
    raw = text.encode()
    if len(raw) <= limit:
        return text
    marker_room = len(MARKER.format(dropped=len(raw)).encode())
    keep = max(0, limit - marker_room)
    head, tail = keep // 4, keep - keep // 4
    dropped = len(raw) - head - tail
    # errors="ignore" drops a multi-byte character cut in half at either edge.
    return (
        raw[:head].decode(errors="ignore")
        + MARKER.format(dropped=dropped)
        + raw[len(raw) - tail:].decode(errors="ignore")
    )


def body_excerpt(body: bytes, limit: int) -> str | None:
    """A ping's POST body as log text, cut at ``limit`` bytes as Healthchecks does."""
    if not body:
        return None
    return body[:limit].decode(errors="replace")
