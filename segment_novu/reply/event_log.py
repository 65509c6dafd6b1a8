"""One log line per event: its outcome, reason and Novu status, at a severity an operator can alert on.

A rejected event is an ERROR inside a batch (Segment drops it with the batch's 200) and a WARNING
alone (Segment shows its 400). With ``LOG_EVENTS=undelivered`` a batch's delivered and duplicate
events write no line of their own: the request line still counts them.
"""

from __future__ import annotations

from segment_novu import logs
from segment_novu.reply import outcomes
from segment_novu.reply.contract import EventResult

QUIET_OUTCOMES = frozenset({outcomes.DELIVERED, outcomes.DUPLICATE})


def severity(result: EventResult, *, in_batch: bool) -> str:
    if result.outcome == outcomes.REJECTED:
        return "ERROR" if in_batch else "WARNING"
    if result.outcome in outcomes.NEEDS_RETRY or (result.outcome == outcomes.SKIPPED and result.novu_status):
        return "WARNING"
    return "INFO"


def log_batch(results: list[EventResult], log_events: str) -> None:
    """The lines of a batch's events, as ``LOG_EVENTS`` chooses."""
    for result in results:
        if log_events == "all" or result.outcome not in QUIET_OUTCOMES:
            log_event(result, in_batch=True)


def log_event(result: EventResult, *, in_batch: bool, **request_fields) -> None:
    logs.log(
        severity(result, in_batch=in_batch),
        f"event {result.outcome}",
        messageId=result.message_id,
        type=result.type,
        index=result.index,
        outcome=result.outcome,
        reason=result.reason,
        workflows=list(result.workflows) or None,
        novuStatus=result.novu_status,
        **request_fields,
    )
