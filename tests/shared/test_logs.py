"""Log lines never carry URL secrets: user:password, paths and queries are cut."""

from __future__ import annotations

import io
import json
import logging

import pytest

from shared.logs import JsonFormatter, TextFormatter, configure_logging, redact_urls


@pytest.mark.parametrize(("text", "shown"), [
    ("POST https://u:p4ss@psa.example:8443/hook?token=t0k \"HTTP/1.1 200\"",
     "POST https://psa.example:8443/... \"HTTP/1.1 200\""),
    ("nats error: nats://backstop:s3cret@nats:4222", "nats error: nats://nats:4222"),
    ("db postgresql+psycopg://app:pw@[::1]:5432/backstop", "db postgresql+psycopg://[::1]:5432/..."),
    ("ldap://ldap.example/ and http://h/", "ldap://ldap.example/ and http://h/"),
    ("'https://hooks.example/T000/B000/XXXX'", "'https://hooks.example/...'"),
    ("no url here: a@b.example", "no url here: a@b.example"),
])
def test_redact_urls(text: str, shown: str) -> None:
    assert redact_urls(text) == shown


def test_formatters_and_http_client_loggers() -> None:
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "to %s failed", (
        "https://u:pw@psa.example/h?token=t0k",), None)
    for formatter in (JsonFormatter(), TextFormatter("%(message)s")):
        line = formatter.format(record)
        assert "t0k" not in line and "pw@" not in line and "psa.example" in line
    assert json.loads(JsonFormatter().format(record))["msg"] == "to https://psa.example/... failed"
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    configure_logging("json", "DEBUG")
    try:
        assert logging.getLogger("httpx").getEffectiveLevel() == logging.WARNING
        stream = io.StringIO()
        logging.getLogger().handlers[0].setStream(stream)  # type: ignore[attr-defined]
        logging.getLogger("httpx").warning("retrying %s", "https://u:pw@h.example/x?token=t0k")
        assert json.loads(stream.getvalue())["msg"] == "retrying https://h.example/..."
    finally:
        root.handlers[:], root.level = handlers, level
