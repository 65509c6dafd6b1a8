import pytest

from segment_novu.reply import contract, outcomes
from segment_novu.reply.contract import EventResult
from segment_novu.reply.outcomes import (
    DELIVERED,
    DUPLICATE,
    MISCONFIGURED,
    RATE_LIMITED,
    REJECTED,
    RETRY,
    SKIPPED,
    OperationResult,
)


def entry(outcome: str, reason: str = "", retry_after: float | None = None) -> tuple:
    return (outcome, reason or outcome, retry_after)


def event_results(*entries: tuple) -> list[EventResult]:
    return [
        EventResult(index, f"m-{index}", "track", outcome, reason, retry_after=retry_after)
        for index, (outcome, reason, retry_after) in enumerate(entries)
    ]


# decide: the status contract


@pytest.mark.parametrize(
    "entries, is_batch, status, message, headers",
    [
        # every event done or deliberately skipped → 200
        ([entry(DELIVERED)], False, 200, "1 delivered", {}),
        ([entry(SKIPPED)], False, 200, "1 skipped", {}),
        ([entry(DUPLICATE)], False, 200, "1 duplicate", {}),
        ([entry(DELIVERED), entry(SKIPPED), entry(DELIVERED), entry(DUPLICATE)], True, 200,
         "2 delivered, 1 duplicate, 1 skipped", {}),
        # Novu rate limit → 429 + Retry-After (the largest wait, rounded up; at least 1 s)
        ([entry(RATE_LIMITED, retry_after=2.5)], False, 429,
         "Novu rate limit reached; retry after 3 s (1 rate-limited)", {"Retry-After": "3"}),
        ([entry(DELIVERED), entry(RATE_LIMITED, retry_after=2.5), entry(RATE_LIMITED, retry_after=7.1)], True, 429,
         "Novu rate limit reached; retry after 8 s (1 delivered, 2 rate-limited)", {"Retry-After": "8"}),
        ([entry(RATE_LIMITED)], False, 429,
         "Novu rate limit reached; retry after 1 s (1 rate-limited)", {"Retry-After": "1"}),
        ([entry(RATE_LIMITED, retry_after=0)], False, 429,
         "Novu rate limit reached; retry after 1 s (1 rate-limited)", {"Retry-After": "1"}),
        ([entry(RATE_LIMITED, retry_after=0.2)], False, 429,
         "Novu rate limit reached; retry after 1 s (1 rate-limited)", {"Retry-After": "1"}),
        ([entry(REJECTED), entry(RETRY), entry(MISCONFIGURED), entry(RATE_LIMITED, retry_after=4)], True, 429,
         "Novu rate limit reached; retry after 4 s (1 misconfigured, 1 rate-limited, 1 rejected, 1 retry)",
         {"Retry-After": "4"}),
        # Novu key refused, plan limit, no key → 500 with the reason
        ([entry(MISCONFIGURED, "Novu refused the API key (401)")], False, 500, "Novu refused the API key (401)", {}),
        ([entry(DELIVERED), entry(RETRY, "timeout"), entry(MISCONFIGURED, "no Novu API key configured"),
          entry(MISCONFIGURED, "plan limit")], True, 500, "no Novu API key configured", {}),
        # Novu down, slow, unreachable → 503
        ([entry(RETRY, "Novu answered 502")], False, 503, "retry later: Novu answered 502 (1 retry)", {}),
        ([entry(DELIVERED), entry(REJECTED), entry(RETRY, "deadline reached"), entry(RETRY, "later")], True, 503,
         "retry later: deadline reached (1 delivered, 1 rejected, 2 retry)", {}),
        # refused events
        ([entry(REJECTED, "track without event")], False, 400, "track without event", {}),
        ([entry(DELIVERED), entry(REJECTED, "missing type"), entry(SKIPPED)], True, 200,
         "1 delivered, 1 rejected, 1 skipped", {}),
        ([entry(REJECTED, "missing type"), entry(REJECTED, "unknown type")], True, 400,
         "no event in the batch could be accepted; first: missing type", {}),
        ([entry(REJECTED, "missing type")], True, 400,
         "no event in the batch could be accepted; first: missing type", {}),
    ],
)
def test_decide(entries, is_batch, status, message, headers):
    given = event_results(*entries)
    decided = contract.decide(given, is_batch=is_batch)
    assert (decided.status, decided.body["message"], decided.headers) == (status, message, headers)
    assert decided.body["events"] == [result.as_json() for result in given]
    assert set(decided.body) == {"message", "events"}


def test_decide_adds_extra_keys():
    decided = contract.decide(event_results(entry(DELIVERED)), is_batch=False, extra={"dryRun": True, "requests": []})
    assert decided.body == {
        "events": [{"index": 0, "messageId": "m-0", "type": "track", "outcome": "delivered", "reason": "delivered"}],
        "dryRun": True,
        "requests": [],
        "message": "1 delivered",
    }


def test_error_answer():
    assert contract.error(415, "unsupported") == contract.Reply(415, {"message": "unsupported"}, {})
    assert contract.error(429, "slow", {"Retry-After": "2"}).headers == {"Retry-After": "2"}


@pytest.mark.parametrize(
    "result, expected",
    [
        (
            EventResult(0, None, None, REJECTED, "missing type"),
            {"index": 0, "messageId": None, "type": None, "outcome": "rejected", "reason": "missing type"},
        ),
        (
            EventResult(2, "m", "track", DELIVERED, "201", workflows=("a", "b"), novu_status=201, retry_after=3),
            {"index": 2, "messageId": "m", "type": "track", "outcome": "delivered", "reason": "201",
             "workflows": ["a", "b"], "novuStatus": 201},
        ),
    ],
)
def test_event_result_as_json(result, expected):
    assert result.as_json() == expected


# event_result: one event from its operations' results


@pytest.mark.parametrize(
    "results, outcome, reason, novu_status, retry_after",
    [
        ([("a", OperationResult(DELIVERED, "triggered", 201))], DELIVERED, "triggered", 201, None),
        ([("a", OperationResult(SKIPPED, "inactive", 201)), ("b", OperationResult(DUPLICATE, "seen"))], DUPLICATE, "seen", None, None),
        ([("a", OperationResult(DUPLICATE, "seen")), ("b", OperationResult(DELIVERED, "triggered", 201))],
         DELIVERED, "triggered", 201, None),
        ([("a", OperationResult(DELIVERED, "triggered", 201)), ("b", OperationResult(REJECTED, "workflow_not_found", 422))],
         REJECTED, "workflow_not_found", 422, None),
        ([("a", OperationResult(REJECTED, "422", 422)), ("b", OperationResult(RETRY, "timeout"))], RETRY, "timeout", None, None),
        ([("a", OperationResult(RETRY, "503", 503, 2.0)), ("b", OperationResult(MISCONFIGURED, "bad key", 401))],
         MISCONFIGURED, "bad key", 401, 2.0),
        ([("a", OperationResult(MISCONFIGURED, "bad key", 401)), ("b", OperationResult(RATE_LIMITED, "slow down", 429, 3.0)),
          ("c", OperationResult(RATE_LIMITED, "again", 429, 5.0))], RATE_LIMITED, "slow down", 429, 5.0),
        ([("a", OperationResult(RATE_LIMITED, "slow down", 429, 0))], RATE_LIMITED, "slow down", 429, None),
    ],
)
def test_event_result_takes_the_most_urgent_outcome(results, outcome, reason, novu_status, retry_after):
    result = contract.event_result(4, "m-4", "track", results)
    assert result == EventResult(
        index=4,
        message_id="m-4",
        type="track",
        outcome=outcome,
        reason=reason,
        workflows=tuple(workflow for workflow, _ in results),
        novu_status=novu_status,
        retry_after=retry_after,
    )


def test_event_result_leaves_out_operations_without_a_workflow():
    result = contract.event_result(0, None, "identify", [(None, OperationResult(DELIVERED, "upserted", 201))])
    assert (result.outcome, result.workflows, result.novu_status) == (DELIVERED, (), 201)


def test_urgency_order():
    assert outcomes.URGENCY == (RATE_LIMITED, MISCONFIGURED, RETRY, REJECTED, DELIVERED, DUPLICATE, SKIPPED)
    assert outcomes.most_urgent([SKIPPED, DELIVERED, DUPLICATE]) == DELIVERED
