"""Permanent or transient, judged on the errors the databases really raise."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from pydantic import BaseModel
from sqlalchemy import create_engine, text
from sqlmodel import Session

from services.evaluator.leases import LeaseLost
from services.evaluator.tables import AccountState
from shared.bus import BusUnavailable, PermanentFailure
from shared.db import Database
from shared.failures import describe, is_permanent
from shared.processed import ProcessedEvent
from shared.tenancy import Job


def _raised(work: Callable[[], object]) -> BaseException:
    try:
        work()
    except Exception as exc:
        return exc
    raise AssertionError("no error")


def _in_session(db: Database, work: Callable[[Session], object]) -> BaseException:
    def run() -> None:
        with db.session() as session:
            work(session)
            session.flush()

    return _raised(run)


def _claim_twice(session: Session) -> None:
    for _ in range(2):
        session.add(ProcessedEvent(consumer="c", event_id="e", processed_at=datetime.now(UTC)))
        session.flush()
        session.expunge_all()


def _job_of_no_account(session: Session) -> None:
    session.add(Job(account_id="nobody", name="nightly"))


def _quota_beyond_bigint(session: Session) -> None:
    session.add(AccountState(account_id="a", quota_bytes=2**70))


def test_a_concurrent_claim_of_the_same_event_is_transient(db: Database) -> None:
    # Two replicas during a handover: the retry sees the winner's claim and skips the event.
    assert not is_permanent(_in_session(db, _claim_twice))


def test_values_the_database_refuses_are_permanent(db: Database) -> None:
    for work in (_job_of_no_account, _quota_beyond_bigint):
        exc = _in_session(db, work)
        assert is_permanent(exc), describe(exc)


def test_text_with_nul_refused_by_postgresql_is_permanent(postgres_url: str) -> None:
    database = Database(postgres_url)

    def select_nul() -> None:
        with database.engine.connect() as conn:
            conn.execute(text("select :x"), {"x": "a\x00b"})

    try:
        exc = _raised(select_nul)
    finally:
        database.dispose()
    assert is_permanent(exc) and describe(exc).startswith("DataError: ")


def test_a_database_that_is_away_is_transient(tmp_path) -> None:  # type: ignore[no-untyped-def]
    away = create_engine(f"sqlite:///{tmp_path}/missing/backstop.db")
    exc = _raised(lambda: away.connect())
    assert not is_permanent(exc)
    refused = create_engine("postgresql+psycopg://postgres@127.0.0.1:1/postgres")
    assert not is_permanent(_raised(lambda: refused.connect()))


class _Count(BaseModel):
    n: int


@pytest.mark.parametrize(("exc", "permanent"), [
    (PermanentFailure("account deleted"), True),
    (OverflowError("date value out of range"), True),
    (_raised(lambda: _Count.model_validate({"n": "many"})), True),
    (TypeError("can't compare offset-naive and offset-aware datetimes"), True),
    (BusUnavailable("JetStream did not store the event"), False),
    (TimeoutError(), False),
    (ConnectionResetError(), False),
    (LeaseLost("partition 3 is no longer held"), False),
    (RuntimeError("anything else"), False),
])
def test_errors_of_the_data_are_permanent_the_rest_transient(
    exc: BaseException, permanent: bool
) -> None:
    assert is_permanent(exc) is permanent
