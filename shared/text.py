"""Text from data (client messages, job names, delivery errors, names typed by resellers) on one
line, with nothing in it that a reader of the line would act on.

Mail headers and the operator's terminal need the same thing: a line break would end a header
(or start a new one) and split a table row; ESC and the C1 controls start escape sequences that
recolour, retitle or clear a terminal, or write its clipboard; NUL, DEL and CR misbehave in
both. One character class serves both, so neither can miss what the other catches.
"""

from __future__ import annotations

import re

# The C0 controls (NUL, TAB, LF, CR, ESC, …), DEL and the C1 controls (NEL, CSI, …) — Unicode's
# category Cc; U+2028 LINE SEPARATOR and U+2029 PARAGRAPH SEPARATOR, which the email package and
# many terminals and editors treat as line breaks; lone surrogates, which cannot be encoded.
BREAKING = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")

ELLIPSIS = "…"


def one_line(value: str, limit: int | None = None) -> str:
    """``value`` on one line: control characters and line/paragraph separators become spaces,
    runs of white space one space, and the result at most ``limit`` characters (None: any),
    ending in an ellipsis when cut."""
    text = " ".join(BREAKING.sub(" ", value).split())
    if limit is not None and len(text) > limit:
        text = text[: max(limit - len(ELLIPSIS), 0)].rstrip() + ELLIPSIS
    return text
