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
