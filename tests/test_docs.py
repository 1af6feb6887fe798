"""The shell examples in README.md and docs/*.md run as written in bash and zsh.

An unquoted URL breaks them: zsh treats ``?``, ``*`` and ``[`` as globs and stops with "no
matches found", and ``&`` sends curl to the background in every shell. So every URL in a shell
example is quoted (double quotes, so ``$BACKSTOP`` still expands).
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELL_LANGUAGES = {"sh", "shell", "bash", "zsh", "console"}
FENCE = re.compile(r"^```(?P<lang>[\w-]*)[^\n]*\n(?P<body>.*?)^```", re.S | re.M)
# A URL: a scheme, or a variable holding the base URL followed by a path ($BACKSTOP/v1/runs).
URL = re.compile(r"[a-z][a-z0-9+.-]*://|(?:^|=)\$\{?[A-Za-z_]\w*\}?/")
SPECIAL = set("?&*[")


def shell_blocks(document: Path) -> list[tuple[int, str]]:
    """(first line number, text) of each fenced sh/shell/bash block."""
    text = document.read_text(encoding="utf-8")
    return [(text.count("\n", 0, match.start("body")) + 1, match.group("body"))
            for match in FENCE.finditer(text) if match.group("lang") in SHELL_LANGUAGES]


def unquoted_part(word: str) -> str:
    """``word`` with what is inside quotes blanked out (``BACKSTOP="http://…"`` is fine)."""
    out, quote = [], ""
    for char in word:
        if quote:
            quote = "" if char == quote else quote
            out.append(" ")
        elif char in "\"'":
            quote = char
            out.append(" ")
        else:
            out.append(char)
    return "".join(out)


def unquoted_urls(script: str) -> list[tuple[int, str]]:
    """(line within ``script``, from 0; word) of each URL a shell would see unquoted."""
    lexer = shlex.shlex(script, posix=False)  # non-POSIX: quotes stay part of the word
    lexer.whitespace_split = True
    lexer.commenters = "#"
    found, position = [], 0
    for word in lexer:
        position = script.index(word, position)
        if URL.search(unquoted_part(word)):
            found.append((script.count("\n", 0, position), word))
        position += len(word)
    return found


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: path.name)
def test_every_url_in_a_shell_example_is_quoted(document: Path) -> None:
    problems = [
        f"{document.name}:{first + offset}: {word}"
        + (" (zsh globs / shell operators: " + "".join(sorted(SPECIAL & set(word))) + ")"
           if SPECIAL & set(word) else "")
        for first, block in shell_blocks(document) for offset, word in unquoted_urls(block)
    ]
    assert problems == []


def test_the_check_sees_what_zsh_would_trip_over() -> None:
    script = ('curl -fsS -m 10 https://x.example/ping/KEY/db?create=1  # a comment: http://a?b\n'
              'curl -sS -X POST $BACKSTOP/v1/runs -d \'{"a": "http://in.a/body?x"}\'\n'
              'curl -fsS "https://x.example/ping/KEY/db/start?create=1" "$BACKSTOP/v1/usage"\n'
              'export BACKSTOP="http://localhost:8080" URL=http://a.example/?x\n')
    assert unquoted_urls(script) == [(0, "https://x.example/ping/KEY/db?create=1"),
                                     (1, "$BACKSTOP/v1/runs"),
                                     (3, "URL=http://a.example/?x")]
