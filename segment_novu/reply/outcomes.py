"""What became of an operation or an event. The same words appear in answers, logs and tests."""

from __future__ import annotations

from dataclasses import dataclass

DELIVERED = "delivered"
DUPLICATE = "duplicate"
SKIPPED = "skipped"
REJECTED = "rejected"
RETRY = "retry"
RATE_LIMITED = "rate-limited"
MISCONFIGURED = "misconfigured"

NEEDS_RETRY = frozenset({RETRY, RATE_LIMITED, MISCONFIGURED})
# When an event's operations end differently, the event takes the most urgent outcome.
URGENCY = (RATE_LIMITED, MISCONFIGURED, RETRY, REJECTED, DELIVERED, DUPLICATE, SKIPPED)


@dataclass(frozen=True)
class OperationResult:
    outcome: str
    reason: str
    novu_status: int | None = None
    retry_after: float | None = None


def most_urgent(outcomes) -> str:
    present = set(outcomes)
    return next(outcome for outcome in URGENCY if outcome in present)
