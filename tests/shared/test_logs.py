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


def _record(**fields: object) -> logging.LogRecord:
    record = logging.LogRecord("backstop.x", logging.INFO, __file__, 1, "delivery %s", ("sent",),
                               None)
    record.__dict__.update(fields)
    return record


def test_fields_given_as_extra_are_top_level_json_keys() -> None:
    entry = json.loads(JsonFormatter().format(_record(
        event="delivery", attempts=2, duration_ms=12.5, endpoint_host=None,
        color_message="\x1b[1mdelivery\x1b[0m sent", error="HTTP 500 from https://u:pw@psa.example/h?token=t0k")))
    assert entry["msg"] == "delivery sent" and entry["level"] == "info"
    assert entry["event"] == "delivery" and entry["attempts"] == 2
    assert entry["duration_ms"] == 12.5 and entry["endpoint_host"] is None
    assert entry["error"] == "HTTP 500 from https://psa.example/..."  # fields are cut too
    # Only what the caller added (uvicorn's coloured copy of its message is not a field).
    assert not {"taskName", "args", "color_message"} & entry.keys()


def test_fields_cannot_replace_the_standard_keys() -> None:
    entry = json.loads(JsonFormatter().format(_record(level="forged", ts="forged")))
    assert entry["level"] == "info" and entry["ts"] != "forged"


def test_fields_in_text_are_key_value_pairs_on_one_line() -> None:
    line = TextFormatter("%(levelname)s %(message)s").format(_record(
        event="alert", job="night ly\nFORGED line", attempts=3, note=None))
    assert line == 'INFO delivery sent event=alert job="night ly FORGED line" attempts=3 note=-'
