"""The status contract, one test per row: what Segment is answered for each thing Novu (or the
configuration) does, the answer's ``message``, and exactly which Novu calls were made.

Everything runs over real HTTP: the served function in front, the Novu stand-in behind.
"""

from __future__ import annotations

import json
import socket
import time

import pytest

from tests.novu_standin import Scripted, error_body

TRIGGER = "/v1/events/trigger"
ORDER = {
    "type": "track",
    "userId": "user-1",
    "messageId": "msg-order-1",
    "event": "Order Completed",
    "properties": {"orderId": "o-1"},
}
PAGE = {"type": "page", "userId": "user-1", "messageId": "msg-page-1", "name": "Home"}


# -- helpers ---------------------------------------------------------------------------------------

@pytest.fixture
def serve_function(serve_function):
    """The conftest fixture with workflow discovery off: the Novu calls asserted here are the
    deliveries themselves, with no ``GET /v2/workflows`` in between."""
    return lambda **env: serve_function(**{"WORKFLOW_DISCOVERY": "false", **env})



def failure(status: int, message: str, headers: dict | None = None, **extra) -> Scripted:
    """A Novu error answer, shaped like Novu's (not wrapped in ``data``)."""
    return Scripted(status=status, body={**error_body(status, message), **extra}, headers=headers or {})


def accepted(status: str = "processed") -> Scripted:
    return Scripted(status=201, body={"data": {"acknowledged": True, "status": status, "transactionId": "t"}})


def triggers(novu) -> list:
    return novu.calls("POST", TRIGGER)


def assert_answer(response, status: int, message: str | None = None, *, contains: str | None = None) -> dict:
    assert response.status_code == status, response.text[:500]
    body = response.json()
    if message is not None:
        assert body["message"] == message
    if contains is not None:
        assert contains in body["message"], body["message"]
    return body


def only_event(response) -> dict:
    [entry] = response.json()["events"]
    return entry


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def track(user_id: str, message_id: str, event: str = "Order Completed") -> dict:
    return {"type": "track", "userId": user_id, "messageId": message_id, "event": event}


# -- success ---------------------------------------------------------------------------------------


def test_novu_processed_is_200(serve_function, novu):
    response = serve_function().post(ORDER)

    assert_answer(response, 200, "1 delivered")
    assert only_event(response)["outcome"] == "delivered"
    [call] = triggers(novu)
    assert call.body["name"] == "order-completed"
    assert call.headers["Authorization"] == "ApiKey test-novu-key"
    assert len(novu.calls()) == 1


# -- Novu down, slow or unreachable → 503 -------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_novu_5xx_is_503(serve_function, novu, status):
    function = serve_function()
    novu.script("POST", TRIGGER, failure(status, "Novu is having a bad day"))

    response = function.post(ORDER)

    assert_answer(response, 503, f"retry later: Novu answered {status}: Novu is having a bad day (1 retry)")
    assert only_event(response)["outcome"] == "retry"
    assert len(triggers(novu)) == 1
    assert len(novu.calls()) == 1


def test_connection_refused_is_503(serve_function, novu):
    function = serve_function(NOVU_API_URL=f"http://127.0.0.1:{closed_port()}")

    response = function.post(ORDER)

    assert_answer(response, 503, "retry later: could not connect to Novu (1 retry)")
    assert novu.calls() == []


def test_novu_slower_than_the_deadline_is_503_within_the_deadline(serve_function, novu):
    function = serve_function(NOVU_TIMEOUT_SECONDS="0.3", DEADLINE_SECONDS="1")
    novu.script("POST", TRIGGER, Scripted(status=201, delay=2.0))

    started = time.monotonic()
    response = function.post(ORDER)
    elapsed = time.monotonic() - started

    assert_answer(response, 503, "retry later: Novu did not answer in time (1 retry)")
    assert elapsed < 3
    assert len(triggers(novu)) == 1


def test_novu_slower_than_novu_timeout_seconds_is_503(serve_function, novu):
    function = serve_function(NOVU_TIMEOUT_SECONDS="0.3", DEADLINE_SECONDS="3")
    # Every answer is slow, so a retry after the timeout cannot succeed either.
    novu.respond_with(lambda request: Scripted(status=201, body={"data": {"status": "processed"}}, delay=0.9))

    started = time.monotonic()
    response = function.post(ORDER)
    elapsed = time.monotonic() - started

    assert_answer(response, 503, contains="Novu did not answer in time")
    assert elapsed < 0.9


def test_connection_dropped_mid_answer_is_503(serve_function, novu):
    function = serve_function()
    novu.script("POST", TRIGGER, Scripted(status=None, drop=True))

    response = function.post(ORDER)

    assert_answer(response, 503, contains="retry later: ")
    assert only_event(response)["outcome"] == "retry"
    assert len(triggers(novu)) == 1


def test_unreadable_2xx_is_503(serve_function, novu):
    function = serve_function()
    novu.script("POST", TRIGGER, Scripted(status=201, raw=b"<html>gateway</html>"))

    response = function.post(ORDER)

    assert_answer(response, 503, "retry later: Novu answered without a trigger status (1 retry)")
    assert len(triggers(novu)) == 1


# -- rate limit → 429 ------------------------------------------------------------------------------


@pytest.mark.parametrize("novu_headers, retry_after", [
    ({"Retry-After": "5"}, "5"),
    ({"Retry-After": "0"}, "1"),
    ({}, "1"),
])
def test_novu_429_is_429_with_retry_after(serve_function, novu, novu_headers, retry_after):
    function = serve_function()
    novu.script("POST", TRIGGER, failure(429, "ThrottlerException: Too Many Requests", novu_headers))

    response = function.post(ORDER)

    assert_answer(response, 429, f"Novu rate limit reached; retry after {retry_after} s (1 rate-limited)")
    assert response.headers["Retry-After"] == retry_after
    assert len(novu.calls()) == 1


def test_429_stops_the_calls_not_yet_started(serve_function, novu):
    function = serve_function(MAX_CONCURRENCY="1")
    novu.script("POST", TRIGGER, failure(429, "Too Many Requests", {"Retry-After": "2"}))
    batch = [track("u1", "m1"), track("u2", "m2"), track("u3", "m3")]

    response = function.post(batch)

    body = assert_answer(response, 429)
    assert response.headers["Retry-After"] == "2"
    assert [entry["outcome"] for entry in body["events"]] == ["rate-limited"] * 3
    assert len(novu.calls()) == 1


# -- configuration problems → 500 ---------------------------------------------------------------------


@pytest.mark.parametrize("status", [401, 403])
def test_novu_refusing_a_literal_key_is_500_naming_the_variable(serve_function, novu, status):
    function = serve_function()
    novu.script("POST", TRIGGER, failure(status, "API Key not found"))

    response = function.post(ORDER)

    assert_answer(response, 500, f"Novu refused the API key ({status}): check NOVU_API_KEY")
    # A literal key cannot have been rotated: no second attempt.
    assert len(novu.calls()) == 1


def test_novu_402_is_500_with_novus_message(serve_function, novu):
    function = serve_function()
    novu.script("POST", TRIGGER, failure(402, "Payment Required: monthly event limit reached"))

    response = function.post(ORDER)

    assert_answer(response, 500, "Novu plan limit reached (402): Payment Required: monthly event limit reached")
    assert len(novu.calls()) == 1


def test_missing_novu_api_key_is_500_when_a_call_is_needed(serve_function, novu):
    function = serve_function(NOVU_API_KEY=None)

    response = function.post(ORDER)

    assert_answer(response, 500, contains="NOVU_API_KEY is not set")
    assert "set it to" in response.json()["message"]
    assert novu.calls() == []


def test_missing_novu_api_key_does_not_matter_when_no_call_is_needed(serve_function, novu):
    function = serve_function(NOVU_API_KEY=None)

    response = function.post(PAGE)

    assert_answer(response, 200, "1 skipped")
    assert novu.calls() == []


@pytest.mark.parametrize("name", ["SEGMENT_AUTH_TOKEN", "SEGMENT_SHARED_SECRET", "NOVU_API_KEY"])
@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer anything"}, {"Authorization": "Bearer "}])
def test_a_blank_credential_is_500_naming_it_whatever_the_request_carries(serve_function, novu, name, headers):
    function = serve_function(**{name: " "})

    response = function.post(ORDER, headers=headers)

    assert_answer(response, 500, f"configuration error: {name} is set but blank: give it a value, or remove the variable")
    assert novu.calls() == []


def test_a_redis_url_without_a_scheme_is_500_with_the_accepted_forms(serve_function, novu):
    function = serve_function(REDIS_URL="localhost:6379")

    response = function.post(ORDER)

    assert_answer(response, 500, contains="REDIS_URL must be redis://HOST:PORT[/DB], rediss://HOST:PORT[/DB] or")
    assert response.json()["message"].endswith("(write redis://localhost:6379)")
    assert novu.calls() == []


# -- 409: an idempotent request in flight ---------------------------------------------------------------


def test_409_then_success_waits_and_retries(serve_function, novu):
    function = serve_function()
    novu.script("POST", TRIGGER, failure(409, "Request with key is being processed", {"Retry-After": "0"}))

    response = function.post(ORDER)

    assert_answer(response, 200, "1 delivered")
    first, second = triggers(novu)
    assert first.body == second.body
    assert first.headers["Idempotency-Key"] == second.headers["Idempotency-Key"]


def test_409_repeatedly_is_503(serve_function, novu):
    function = serve_function()
    conflict = failure(409, "Request with key is being processed", {"Retry-After": "0"})
    novu.respond_with(lambda request: conflict)

    started = time.monotonic()
    response = function.post(ORDER)

    assert_answer(response, 503, "retry later: Novu is still processing the same request (409) (1 retry)")
    assert time.monotonic() - started < 4.5
    calls = triggers(novu)
    assert 2 <= len(calls) <= 4  # retried, but not without end
    assert len({json.dumps(call.body, sort_keys=True) for call in calls}) == 1
    assert len(novu.calls()) == len(calls)


def test_409_with_a_wait_past_the_deadline_is_503_at_once(serve_function, novu):
    function = serve_function(DEADLINE_SECONDS="1")
    novu.script("POST", TRIGGER, failure(409, "Request with key is being processed", {"Retry-After": "5"}))

    started = time.monotonic()
    response = function.post(ORDER)

    assert_answer(response, 503, "retry later: Novu is still processing the same request (409) (1 retry)")
    assert time.monotonic() - started < 1.5
    assert len(novu.calls()) == 1


# -- 201 that triggered nothing; refusals --------------------------------------------------------------


def test_201_not_processed_is_200_skipped_with_novus_status(serve_function, novu):
    function = serve_function()
    novu.trigger_status = "trigger_not_active"

    response = function.post(ORDER)

    assert_answer(response, 200, "1 skipped")
    entry = only_event(response)
    assert entry["outcome"] == "skipped"
    assert "trigger_not_active" in entry["reason"]
    assert len(triggers(novu)) == 1


@pytest.mark.parametrize("status, message", [
    (400, "to.subscriberId must be a string"),
    (413, "Payload too large"),
    (422, "payload.orderId must be a number"),
])
def test_novu_refusing_the_event_is_400_with_novus_message(serve_function, novu, status, message):
    function = serve_function()
    novu.script("POST", TRIGGER, failure(status, message))

    response = function.post(ORDER)

    assert_answer(response, 400, f"Novu refused the request ({status}): {message}")
    assert only_event(response)["outcome"] == "rejected"
    assert len(novu.calls()) == 1


def test_unknown_default_rule_workflow_is_200_skipped(serve_function, novu):
    function = serve_function()
    novu.workflows = {"welcome"}

    response = function.post(ORDER)

    assert_answer(response, 200, "1 skipped")
    entry = only_event(response)
    assert entry["outcome"] == "skipped"
    assert "order-completed" in entry["reason"]
    assert entry["novuStatus"] == 422
    assert len(triggers(novu)) == 1


def test_unknown_workflow_named_in_the_mapping_file_is_400(serve_function, novu, tmp_path):
    mapping_file = tmp_path / "mapping.json"
    mapping_file.write_text(json.dumps({"track": {"Order Completed": "order-confirmation"}}))
    function = serve_function(MAPPING_FILE=str(mapping_file))
    novu.workflows = {"welcome"}

    response = function.post(ORDER)

    assert_answer(
        response, 400, "Novu refused the request (422): Workflow with identifier order-confirmation cannot be found"
    )
    [call] = triggers(novu)
    assert call.body["name"] == "order-confirmation"


# -- a failure Novu replays under the Idempotency-Key --------------------------------------------------


def test_replayed_5xx_is_resent_without_idempotency_key(serve_function, novu):
    function = serve_function()
    novu.script("POST", TRIGGER, failure(500, "Internal server error", {"Idempotency-Replay": "true"}))

    response = function.post(ORDER)

    assert_answer(response, 200, "1 delivered")
    replayed, resent = triggers(novu)
    assert "Idempotency-Key" in replayed.headers
    assert "Idempotency-Key" not in resent.headers
    assert replayed.body == resent.body


# -- batches -----------------------------------------------------------------------------------------


def test_batch_with_one_retryable_event_is_503_and_a_resend_triggers_each_once(serve_function, novu):
    function = serve_function()
    batch = [track("u1", "m1"), track("u2", "m2"), track("u3", "m3")]
    failing = {"u2"}

    def answer(request):
        if request.body["to"]["subscriberId"] in failing:
            return failure(503, "Service Unavailable")
        return None  # the stand-in's normal 201

    novu.respond_with(answer)

    first = function.post(batch)

    body = assert_answer(first, 503, contains="retry later: Novu answered 503: Service Unavailable")
    assert [entry["outcome"] for entry in body["events"]] == ["delivered", "retry", "delivered"]
    assert len(triggers(novu)) == 3

    failing.clear()
    again = function.post(batch)

    body = assert_answer(again, 200)
    assert [entry["outcome"] for entry in body["events"]] == ["duplicate", "delivered", "duplicate"]
    assert len(novu.accepted) == 3
    assert set(novu.accepted.values()) == {1}
    # The failed attempt plus its one resend; the other two were never sent again.
    assert sorted(novu.transaction_counts().values()) == [1, 1, 2]


def test_bulk_batch_of_unknown_default_rule_workflows_is_200_skipped(serve_function, novu):
    function = serve_function()
    novu.workflows = {"welcome"}
    novu.latency = 0.05
    batch = [track(f"u{n}", f"m{n}", event="Page Viewed") for n in range(100)]

    response = function.post(batch)

    body = assert_answer(response, 200, "100 skipped")
    assert {entry["outcome"] for entry in body["events"]} == {"skipped"}
