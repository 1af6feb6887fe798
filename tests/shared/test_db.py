"""The data layer on SQLite and PostgreSQL: migrations, UTC datetimes, idempotency claims."""

from datetime import UTC, datetime, timedelta, timezone

from sqlalchemy import inspect

from shared.db import Database
from shared.processed import ProcessedEvent, claim_events


def test_migrations_create_every_table(db: Database) -> None:
    tables = set(inspect(db.engine).get_table_names())
    assert {"resellers", "customers", "accounts", "api_tokens", "jobs", "processed_events",
            "outbox", "alerts", "notifications"} <= tables


def test_upgrade_twice_is_harmless(db: Database) -> None:
    db.upgrade()
    assert db.ping()


def test_datetimes_come_back_aware_in_utc(db: Database) -> None:
    zurich = timezone(timedelta(hours=1))
    at = datetime(2026, 3, 29, 2, 30, tzinfo=zurich)
    with db.session() as session:
        session.add(ProcessedEvent(consumer="c", event_id="e", processed_at=at))
    with db.session() as session:
        row = session.get(ProcessedEvent, ("c", "e"))
        assert row is not None
        assert row.processed_at == at
        assert row.processed_at.utcoffset() == timedelta(0)
        assert row.processed_at.tzinfo is not None and row.processed_at.astimezone(UTC) == at


def test_an_event_is_claimed_once_per_consumer(db: Database) -> None:
    with db.session() as session:
        assert claim_events(session, "evaluator", ["e1"]) == {"e1"}
    with db.session() as session:
        assert claim_events(session, "evaluator", ["e1"]) == set()
        assert claim_events(session, "notifier", ["e1"]) == {"e1"}


def test_a_rolled_back_claim_leaves_nothing(db: Database) -> None:
    try:
        with db.session() as session:
            claim_events(session, "evaluator", ["e2"])
            raise RuntimeError("work failed")
    except RuntimeError:
        pass
    with db.session() as session:
        assert claim_events(session, "evaluator", ["e2"]) == {"e2"}


def test_ping_is_false_when_the_database_is_gone(tmp_path) -> None:  # type: ignore[no-untyped-def]
    bad = Database("postgresql+psycopg://nobody@127.0.0.1:1/none")
    assert bad.ping() is False
