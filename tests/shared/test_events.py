import json
from datetime import UTC, datetime

import pytest

from shared.events import AlertChanged, RunReported, Tenant, UnknownEvent, decode

TENANT = Tenant(reseller="r1", customer="c1", account="a1")


def test_subject_carries_type_version_and_tenant() -> None:
    event = RunReported(tenant=TENANT, job="nightly", status="failure")
    assert event.subject() == "backstop.ingest.run.v1.r1.c1.a1"
    assert RunReported.subject_filter() == "backstop.ingest.run.v1.>"
    assert RunReported.subject_filter("r1.*.*") == "backstop.ingest.run.v1.r1.*.*"


def test_round_trip_keeps_class_and_fields() -> None:
    event = RunReported(
        tenant=TENANT, job="nightly", status="success", bytes_transferred=10,
        finished_at=datetime(2026, 1, 2, 3, 4, tzinfo=UTC),
    )
    back = decode(event.encode())
    assert isinstance(back, RunReported)
    assert back == event


def test_envelope_on_the_wire_names_type_and_version() -> None:
    alert = AlertChanged(
        tenant=TENANT, fingerprint="f", kind="failed_run", state="firing", severity="error",
        sequence=1, summary="s", first_seen=datetime.now(UTC), last_changed=datetime.now(UTC),
    )
    assert b'"type":"alert"' in alert.encode()
    assert b'"schema_version":1' in alert.encode()


@pytest.mark.parametrize(
    "payload",
    [b"not json", b"[]", b'{"type":"run"}', b'{"type":"nope","schema_version":1}',
     b'{"type":"run","schema_version":99}'],
)
def test_unknown_or_broken_payloads_raise_unknown_event(payload: bytes) -> None:
    with pytest.raises(UnknownEvent):
        decode(payload)


@pytest.mark.parametrize("bad", ["a.b", "a*", ">", "a b", "", "a\n", "a\r\n"])
def test_tenant_ids_must_be_safe_subject_tokens(bad: str) -> None:
    event = RunReported(tenant=Tenant(reseller=bad, customer="c", account="a"), job="j",
                        status="success")
    with pytest.raises(ValueError):
        event.subject()


def _run_payload(**fields: object) -> bytes:
    body = {"type": "run", "schema_version": 1, "event_id": "e1",
            "occurred_at": "2026-01-02T03:04:05Z", "tenant": TENANT.model_dump(),
            "job": "nightly", "status": "failure", **fields}
    return json.dumps(body).encode()  # NaN and Infinity as Python writes them


@pytest.mark.parametrize(("field", "value"), [
    ("finished_at", "0001-01-01T00:00:00+14:00"),  # has no UTC time at all
    ("finished_at", "0001-01-01T00:00:00Z"),
    ("started_at", "1999-12-31T23:59:59Z"),
    ("occurred_at", "2100-01-01T00:00:00Z"),
    ("finished_at", "2026-01-01T00:00:00"),  # naive
    ("duration_seconds", float("nan")),
    ("duration_seconds", float("inf")),
    ("bytes_transferred", 2**63),
    ("exit_code", 2**40),
    ("message", "disk\x00full"),
    ("job", "x" * 129),
])
def test_an_event_no_consumer_can_process_is_refused_at_decode(field: str, value: object) -> None:
    """Whoever published it (not only ingest): it becomes a dead letter, not a poison."""
    with pytest.raises(ValueError, match=field):
        decode(_run_payload(**{field: value}))


def test_times_compare_as_instants_whatever_their_offset() -> None:
    with pytest.raises(ValueError, match="finished_at"):
        decode(_run_payload(finished_at="2000-01-01T13:30:00+14:00"))  # 1999-12-31T23:30Z
    event = decode(_run_payload(finished_at="2000-01-01T14:30:00+14:00"))
    assert isinstance(event, RunReported)
    assert event.finished_at == datetime(2000, 1, 1, 0, 30, tzinfo=UTC)
