"""The JetStream topology: which streams exist and which subjects each one stores.

Ingest events are stored with one more token than they are published with: the account's
partition (``backstop.ingest.run.v1.<reseller>.<customer>.<account>.<partition>``), computed by
the stream itself (a subject transform with ``partition()``). A consumer filtering on one
partition token sees every event of its accounts, in order, and no other account's events.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from shared.backoff import Backoff
from shared.events import SUBJECT_ROOT

DEAD_LETTER_PREFIX = f"{SUBJECT_ROOT}.dlq"


# Accounts are spread over this many partitions; each is consumed by one evaluator replica at a
# time. Changing it re-partitions only new messages: drain the evaluators first.
EVALUATOR_PARTITIONS = 16


@lru_cache(maxsize=65536)
def partition_of(account_id: str, partitions: int = EVALUATOR_PARTITIONS) -> int:
    """The partition NATS's ``partition()`` transform gives an account token (FNV-1a 32)."""
    digest = 0x811C9DC5
    for byte in account_id.encode():
        digest = ((digest ^ byte) * 0x01000193) & 0xFFFFFFFF
    return digest % partitions


@dataclass(frozen=True)
class StreamSpec:
    name: str
    subjects: list[str]
    # (source, destination) of a subject transform applied as messages are stored.
    subject_transform: tuple[str, str] | None = None
    # How long a Nats-Msg-Id is remembered: a client retrying within it is stored once.
    duplicate_window_seconds: float = 24 * 3600
    max_age_seconds: float = 14 * 24 * 3600
    # "limits" (kept until max age: many consumers read it) or "workqueue" (a message is gone
    # once one consumer acked it; consumers' filters must not overlap).
    retention: str = "limits"

    def published_subject(self, stored: str) -> str:
        """The subject a message was published with, before the transform appended a token."""
        if self.subject_transform is None:
            return stored
        tokens = stored.split(".")
        if len(tokens) == len(self.subject_transform[0].split(".")) + 1:
            return ".".join(tokens[:-1])
        return stored


# Waits between a failing message's attempts.
RETRY_BACKOFF = Backoff.of(0.5, 2, 5, 15, 30, 60, 120)


@dataclass(frozen=True)
class ConsumerSpec:
    """A durable pull consumer. Deliveries beyond ``max_deliver`` go to the dead-letter stream."""

    stream: str
    durable: str
    filter_subjects: list[str]
    max_deliver: int = 8
    backoff: Backoff = RETRY_BACKOFF
    # After a crash, unacked messages come back only once this passes: keep it short.
    ack_wait_seconds: float = 10
    batch: int = 64
    max_ack_pending: int = 1000
    # "explicit" (each message) or "all" (an ack covers every earlier message: for consumers
    # that work strictly in order, one ack per batch).
    ack_policy: str = "explicit"


INGEST = StreamSpec(
    "BACKSTOP_INGEST", [f"{SUBJECT_ROOT}.ingest.>"],
    subject_transform=(
        f"{SUBJECT_ROOT}.ingest.*.*.*.*.*",  # type.version.reseller.customer.account
        f"{SUBJECT_ROOT}.ingest.{{{{wildcard(1)}}}}.{{{{wildcard(2)}}}}.{{{{wildcard(3)}}}}"
        f".{{{{wildcard(4)}}}}.{{{{wildcard(5)}}}}.{{{{partition({EVALUATOR_PARTITIONS},5)}}}}",
    ),
)


def ingest_partition_filter(partition: int) -> str:
    """The subject filter of one partition's ingest events (any type, any version)."""
    return f"{SUBJECT_ROOT}.ingest.*.*.*.*.*.{partition}"
ALERTS = StreamSpec("BACKSTOP_ALERTS", [f"{SUBJECT_ROOT}.alert.>"])
DEAD_LETTERS = StreamSpec(
    "BACKSTOP_DLQ", [f"{DEAD_LETTER_PREFIX}.>"], max_age_seconds=90 * 24 * 3600
)

# Plan runs to start (schedule ticks, `backstop plans run`): executor replicas share durable
# consumers, one per replica label, so each trigger is taken by one replica. A tick is published
# by every replica's scheduler with the same Nats-Msg-Id: the duplicate window stores it once.
EXECUTOR = StreamSpec(
    "BACKSTOP_EXECUTOR", [f"{SUBJECT_ROOT}.executor.>"], retention="workqueue",
    max_age_seconds=7 * 24 * 3600,
)
# Reports for people (the executor's plan reports), mailed by the notifier.
REPORTS = StreamSpec("BACKSTOP_REPORTS", [f"{SUBJECT_ROOT}.report.>"])

ALL_STREAMS = [INGEST, ALERTS, DEAD_LETTERS, EXECUTOR, REPORTS]
STREAMS_BY_NAME = {spec.name: spec for spec in ALL_STREAMS}


@dataclass(frozen=True)
class BucketSpec:
    """A JetStream key-value bucket. Entries may carry their own TTL (a lease that lapses
    unless renewed): the bucket allows per-message TTLs."""

    name: str
    history: int = 1
    description: str = ""


# The executor's shared state (`services/executor/`): per-target leases, held only while renewed;
# the global pause switch; durable intents to unquiesce; which replicas are alive.
EXECUTOR_TARGETS = BucketSpec("backstop_executor_targets",
                              description="per-target leases of running tasks")
EXECUTOR_STATE = BucketSpec("backstop_executor_state", history=5,
                            description="executor switch, replicas, unquiesce intents")
ALL_BUCKETS = [EXECUTOR_TARGETS, EXECUTOR_STATE]
