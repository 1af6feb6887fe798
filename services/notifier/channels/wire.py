"""An e-mail as bytes: the outbox's ``.eml`` files and what goes over SMTP.

Python's e-mail policies fold any header longer than 78 characters onto continuation lines,
and a non-ASCII (or very long) one into RFC 2047 encoded-words cut anywhere, even inside a word,
with lines longer than RFC 2047 allows; mail readers that show the folding white space then
show "Datenträ ger". The Subject is therefore written here, the other headers as before:

* all ASCII: one line, as RFC 5322 allows up to 998 octets (subjects are cut far below that by
  :func:`~services.notifier.channels.headers.header_text`);
* non-ASCII in a message sent with SMTPUTF8 (RFC 6531/6532; only when an address needs it,
  as aiosmtplib decides, since a relay without it further on would bounce the message): one line
  of UTF-8;
* otherwise (the outbox, and SMTP for ASCII addresses): RFC 2047 encoded-words of at most 75
  characters on lines of at most 76, folded only between words. A word is never cut unless it
  alone is too long for one encoded-word; decoders drop the white space between two encoded-
  words, so the space between two encoded words travels inside the first one.
"""

from __future__ import annotations

import copy
import io
from email.generator import BytesGenerator
from email.message import EmailMessage
from email.policy import EmailPolicy
from typing import Any

ENCODED_LINE = 76  # RFC 2047: a line holding an encoded-word
_PREFIX, _SUFFIX = "=?utf-8?q?", "?="
# RFC 2047 allows 75 characters per encoded-word; these are shorter so that one always fits on
# the first line after "Subject: ": folding right after the colon would start the subject with
# a space in readers (Python's parser among them) that keep the folding white space.
_FIRST = "Subject: "
_PAYLOAD = ENCODED_LINE - len(_FIRST) - len(_PREFIX) - len(_SUFFIX)
# RFC 2047 section 5 (3): the characters a "Q" encoded-word may carry as they are anywhere.
_PLAIN_Q = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!*+-/")


class _SubjectPolicy(EmailPolicy):
    """An e-mail policy writing the Subject as the module says."""

    def fold(self, name: str, value: Any) -> str:
        if name.lower() == "subject":
            return subject_header(str(value), utf8=self.utf8, linesep=self.linesep)
        return str(super().fold(name, value))

    def fold_binary(self, name: str, value: Any) -> bytes:
        if name.lower() == "subject":
            return self.fold(name, value).encode("utf-8" if self.utf8 else "ascii")
        return bytes(super().fold_binary(name, value))


OUTBOX = _SubjectPolicy()  # Python's default policy otherwise ("\n" line ends in files)
SMTP = _SubjectPolicy(linesep="\r\n")


def flatten(message: EmailMessage, *, policy: EmailPolicy = OUTBOX, utf8: bool = False,
            cte_type: str = "8bit") -> bytes:
    """The bytes of ``message`` (without Bcc): ``utf8`` when the headers may be UTF-8
    (SMTPUTF8), ``cte_type`` ``7bit`` when the server takes no 8-bit bodies."""
    chosen = policy.clone(utf8=utf8, cte_type=cte_type)
    sent = copy.copy(message)
    del sent["Bcc"]
    with io.BytesIO() as out:
        BytesGenerator(out, policy=chosen).flatten(sent)
        return out.getvalue()


def subject_header(text: str, *, utf8: bool, linesep: str = "\n") -> str:
    """``Subject: …`` with its line end, folded (or not) as the module says."""
    words = text.split(" ")
    if utf8 or not any(_needs_encoding(w) for w in words):
        return f"{_FIRST}{text}{linesep}"
    # Runs of spaces (never from header_text) would not survive the folding: all encoded.
    atoms = _encoded_words(text) if "" in words else _atoms(words)
    return (linesep + " ").join(_lines(atoms)) + linesep


def _needs_encoding(word: str) -> bool:
    # Text that looks like an encoded-word would be decoded by readers: encode it too.
    return not word.isascii() or "=?" in word or not word.isprintable()


def _atoms(words: list[str]) -> list[str]:
    """Plain words and encoded-words, to be joined by one space or one fold each."""
    atoms: list[str] = []
    for index, word in enumerate(words):
        if not _needs_encoding(word):
            atoms.append(word)
            continue
        following = words[index + 1] if index + 1 < len(words) else None
        # White space between encoded-words is dropped by decoders: the space goes inside.
        together = following is not None and _needs_encoding(following)
        atoms += _encoded_words(word + " " if together else word)
    return atoms


def _encoded_words(text: str) -> list[str]:
    """``text`` as Q encoded-words, cut between characters (never inside one's UTF-8 bytes)."""
    out: list[str] = []
    payload = ""
    for char in text:
        piece = "_" if char == " " else char if char in _PLAIN_Q else "".join(
            f"={byte:02X}" for byte in char.encode("utf-8"))
        if len(payload) + len(piece) > _PAYLOAD:
            out.append(_PREFIX + payload + _SUFFIX)
            payload = ""
        payload += piece
    out.append(_PREFIX + payload + _SUFFIX)
    return out


def _lines(atoms: list[str]) -> list[str]:
    """The atoms after ``Subject:``, on lines that stay within RFC 2047's 76 characters where
    they hold an encoded-word (a plain word longer than that gets a line of its own)."""
    lines: list[str] = []
    line = _FIRST.rstrip()
    for atom in atoms:
        if len(line) + 1 + len(atom) > ENCODED_LINE and line != _FIRST.rstrip():
            lines.append(line)
            line = ""
        line = f"{line} {atom}" if line else atom
    lines.append(line)
    return lines
