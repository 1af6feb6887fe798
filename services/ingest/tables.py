"""Ingest's own table: the schedule each job last uploaded, so an identical upload is a no-op."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from shared.db import UtcDateTime
from shared.events import utcnow


class StoredSchedule(SQLModel, table=True):
    __tablename__ = "ingest_schedules"

    account_id: str = Field(primary_key=True, max_length=32)
    job: str = Field(primary_key=True, max_length=128)
    # SHA-256 of the schedule's canonical JSON: equal digests mean an identical upload.
    digest: str = Field(max_length=64)
    # Counts changes, so switching A → B → A again makes a new event (and evaluators apply it).
    version: int
    event_id: str = Field(max_length=64)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UtcDateTime)
