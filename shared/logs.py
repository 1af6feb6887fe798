"""Structured logging: JSON lines when not on a TTY (containers), readable text on a terminal.

No line may carry a secret: URLs in messages are cut to ``scheme://host[:port]`` (user:password,
paths and queries are where webhook tokens, ping keys and NATS or database passwords live), and
the HTTP client libraries, which log every request's full URL, are kept to warnings.

Lines about one thing (an alert transition, a delivery, a request) carry their facts as fields,
given with ``extra=``: top-level keys of the JSON object, ``key=value`` after a text line's
message. docs/operations.md lists them.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

from shared.text import one_line

# scheme://[userinfo@]host[:port][rest]; the host part stops at the first / ? # or space.
_URL = re.compile(
    r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*)://(?:[^\s/?#@'\"]*@)?"
    r"(?P<host>\[[0-9a-fA-F:.%\w]*\]|[^\s/?#:'\"<>]*)(?P<port>:\d+)?(?P<rest>[/?#][^\s'\"<>]*)?"
)
HTTP_CLIENT_LOGGERS = ("httpx", "httpcore", "hpack")
# What every record has; anything else on a record came in through ``extra=`` (uvicorn adds
# its message once more with terminal colours: not a field).
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message", "asctime", "taskName", "color_message"}
_BARE = re.compile(r"[^\s\"=]+")


def redact_urls(text: str) -> str:
    def cut(match: re.Match[str]) -> str:
        shown = f"{match['scheme']}://{match['host']}{match['port'] or ''}"
        rest = match["rest"] or ""
        return shown + ("/..." if rest not in ("", "/") else rest)

    return _URL.sub(cut, text)


class RedactUrls(logging.Filter):
    """Rewrites a record's message with its URLs cut (see :func:`redact_urls`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact_urls(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def quiet_http_clients() -> None:
    """httpx logs every request with its full URL at INFO: warnings only, and those cut."""
    for name in HTTP_CLIENT_LOGGERS:
        logger = logging.getLogger(name)
        logger.setLevel(logging.WARNING)
        if not any(isinstance(f, RedactUrls) for f in logger.filters):
            logger.addFilter(RedactUrls())


def fields(record: logging.LogRecord) -> dict[str, Any]:
    """What the caller passed with ``extra=``, text values with their URLs cut."""
    return {key: redact_urls(value) if isinstance(value, str) else value
            for key, value in record.__dict__.items() if key not in _STANDARD}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": redact_urls(record.getMessage()),
        }
        for key, value in fields(record).items():
            entry.setdefault(key, value)  # a field never replaces the keys above
        if record.exc_info:
            entry["exc"] = redact_urls(self.formatException(record.exc_info))
        return json.dumps(entry, default=str)


def _text(value: Any) -> str:
    if value is None:
        return "-"
    text = one_line(str(value))
    return text if _BARE.fullmatch(text) else json.dumps(text, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def formatMessage(self, record: logging.LogRecord) -> str:
        pairs = "".join(f" {key}={_text(value)}" for key, value in fields(record).items())
        return super().formatMessage(record) + pairs

    def format(self, record: logging.LogRecord) -> str:
        return redact_urls(super().format(record))


def configure_logging(fmt: str = "auto", level: str = "INFO") -> None:
    as_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    handler = logging.StreamHandler()
    handler.setFormatter(
        JsonFormatter() if as_json
        else TextFormatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Access logs would print every request path; ping keys are secrets and live in paths.
    logging.getLogger("uvicorn.access").disabled = True
    logging.getLogger("alembic").setLevel(logging.WARNING)
    quiet_http_clients()
