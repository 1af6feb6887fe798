"""The notifier's exceptions, and the one place that maps them to a delivery outcome."""

from __future__ import annotations

from dataclasses import dataclass

# The directory's own error, raised by shared.directory; planning postpones on it.
from shared.directory import DirectoryUnavailable as DirectoryUnavailable


class NotifierError(Exception):
    pass


class RecipientNotFound(NotifierError):
    """The directory has no entry for the account: nobody on the customer side is told."""


class DeliveryError(NotifierError):
    """A delivery attempt failed. ``retryable`` says whether trying again can help."""

    def __init__(
        self, reason: str, message: str, *, retryable: bool,
        retry_after: float | None = None, http_status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.reason = reason  # short, bounded: a metric label
        self.retryable = retryable
        self.retry_after = retry_after
        self.http_status = http_status


class UnbuildableMessage(NotifierError):
    """The message for a delivery cannot be made from its data (an invalid address, a template
    error): every retry would fail the same way, so it is dead at once (and can be replayed
    once the cause is fixed)."""


@dataclass(frozen=True)
class Outcome:
    """What one attempt came to: ``sent``, ``retry`` or ``dead`` (no retry can help)."""

    status: str
    reason: str = "ok"
    error: str | None = None
    retry_after: float | None = None
    http_status: int | None = None


def outcome_of(exc: BaseException | None) -> Outcome:
    """Every channel's failure ends up here, so retry rules live in one place."""
    if exc is None:
        return Outcome("sent")
    if isinstance(exc, DeliveryError):
        return Outcome(
            "retry" if exc.retryable else "dead", exc.reason, str(exc)[:2000],
            exc.retry_after, exc.http_status,
        )
    if isinstance(exc, UnbuildableMessage):
        return Outcome("dead", "unbuildable", str(exc)[:2000])
    if isinstance(exc, TimeoutError):
        return Outcome("retry", "timeout", repr(exc))
    if isinstance(exc, OSError):
        return Outcome("retry", "connection", repr(exc)[:2000])
    # Unknown failures are retried: a bug fixed before the deadline still delivers.
    return Outcome("retry", "error", repr(exc)[:2000])
