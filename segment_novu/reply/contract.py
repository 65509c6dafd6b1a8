"""Per-event results → the one reply Segment gets (HTTP status and body). The status contract, as one pure function.

| situation                                             | status |
|-------------------------------------------------------|--------|
| every event done or deliberately skipped              | 200    |
| Novu rate limit (429)                                 | 429 + Retry-After |
| Novu key refused, plan limit, no key configured       | 500    |
| Novu down, slow, unreachable, deadline reached        | 503    |
| a single event Novu or the Spec refuses               | 400    |
| a batch in which every event is refused               | 400    |
Retryable situations outrank everything else: resending is safe (transactionIds, ledger).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from segment_novu.reply import outcomes
from segment_novu.reply.outcomes import OperationResult


@dataclass(frozen=True)
class EventResult:
    index: int
    message_id: str | None
    type: str | None
    outcome: str
    reason: str
    workflows: tuple[str, ...] = ()
    novu_status: int | None = None
    retry_after: float | None = None

    def as_json(self) -> dict:
        entry: dict[str, object] = {
            "index": self.index,
            "messageId": self.message_id,
            "type": self.type,
            "outcome": self.outcome,
            "reason": self.reason,
        }
        if self.workflows:
            entry["workflows"] = list(self.workflows)
        if self.novu_status is not None:
            entry["novuStatus"] = self.novu_status
        return entry


@dataclass(frozen=True)
class Reply:
    status: int
    body: dict
    headers: dict = field(default_factory=dict)


def error(status: int, message: str, headers: dict | None = None) -> Reply:
    return Reply(status, {"message": message}, headers or {})


def event_result(index, message_id, event_type, results: list[tuple[str | None, OperationResult]]) -> EventResult:
    """One event's result from the results of its operations (workflow name, result)."""
    outcome = outcomes.most_urgent(result.outcome for _, result in results)
    deciding = next(result for _, result in results if result.outcome == outcome)
    retry_after = max((result.retry_after or 0 for _, result in results), default=0) or None
    return EventResult(
        index=index,
        message_id=message_id,
        type=event_type,
        outcome=outcome,
        reason=deciding.reason,
        workflows=tuple(workflow for workflow, _ in results if workflow),
        novu_status=deciding.novu_status,
        retry_after=retry_after,
    )


def _summary(by_outcome: dict[str, list[EventResult]]) -> str:
    return ", ".join(f"{len(entries)} {outcome}" for outcome, entries in sorted(by_outcome.items()))


def decide(results: list[EventResult], *, is_batch: bool, extra: dict | None = None) -> Reply:
    by_outcome: dict[str, list[EventResult]] = {}
    for entry in results:
        by_outcome.setdefault(entry.outcome, []).append(entry)
    body = {"events": [entry.as_json() for entry in results], **(extra or {})}

    def first(outcome: str) -> EventResult:
        return by_outcome[outcome][0]

    if outcomes.RATE_LIMITED in by_outcome:
        wait = max(entry.retry_after or 1 for entry in by_outcome[outcomes.RATE_LIMITED])
        body["message"] = f"Novu rate limit reached; retry after {math.ceil(wait)} s ({_summary(by_outcome)})"
        return Reply(429, body, {"Retry-After": str(math.ceil(wait))})
    if outcomes.MISCONFIGURED in by_outcome:
        body["message"] = first(outcomes.MISCONFIGURED).reason
        return Reply(500, body)
    if outcomes.RETRY in by_outcome:
        body["message"] = f"retry later: {first(outcomes.RETRY).reason} ({_summary(by_outcome)})"
        return Reply(503, body)
    rejected = by_outcome.get(outcomes.REJECTED, [])
    if rejected and (not is_batch or len(rejected) == len(results)):
        prefix = "" if not is_batch else "no event in the batch could be accepted; first: "
        body["message"] = f"{prefix}{rejected[0].reason}"
        return Reply(400, body)
    body["message"] = _summary(by_outcome)
    return Reply(200, body)
