"""Faults, then recovery: for each way Novu (or the path to it) can fail, the exact status Segment
gets and the exact Novu calls made; then Novu recovers, Segment resends the same events re-formed
into other batches, and every notification is triggered exactly once overall (by transactionId).

Deliveries use MAX_CONCURRENCY=1 so the number of calls made before a 429 stops them is exact (and
batches of two, which go as single triggers, not bulk: bulk faults have their own test).
"""

from __future__ import annotations

import grpc
import pytest

from tests.factories import track, tracks
from tests.novu_standin import Scripted, error_body

SINGLE = "/v1/events/trigger"
BULK = "/v1/events/trigger/bulk"
SETTINGS = {"MAX_CONCURRENCY": "1", "NOVU_TIMEOUT_SECONDS": "0.3", "DEADLINE_SECONDS": "3"}
FIRST_DELIVERY = [track(0), track(1)]
RESENDS = [[track(1), track(2)], [track(0)]]


def _failure(status, headers=None):
    return Scripted(status, error_body(status, f"failure {status}"), headers or {})


def _processed():
    return Scripted(201, {"data": {"acknowledged": True, "status": "processed"}})


def _not_active():
    return Scripted(201, {"data": {"acknowledged": True, "status": "trigger_not_active"}})


# name, scripted answer to every trigger of the first delivery, status, Retry-After, Novu calls made
FAULTS = [
    ("novu 500", _failure(500), 503, None, 2),
    ("novu 502", _failure(502), 503, None, 2),
    ("novu 503", _failure(503), 503, None, 2),
    ("novu 504", _failure(504), 503, None, 2),
    ("429 Retry-After 0", _failure(429, {"Retry-After": "0"}), 429, "1", 1),
    ("429 Retry-After 5", _failure(429, {"Retry-After": "5"}), 429, "5", 1),
    ("429 without Retry-After", _failure(429), 429, "1", 1),
    ("slower than the timeout", Scripted(201, {"data": {"status": "processed"}}, delay=0.6), 503, None, 2),
    ("connection reset mid-answer", Scripted(drop=True), 503, None, 2),
    ("2xx whose body is not JSON", Scripted(201, raw=b"<html>ok</html>"), 503, None, 2),
    ("201 not processed", _not_active(), 200, None, 2),
]

# name, answer to the FIRST call for each event (later calls: Novu's normal answer), calls made
FIRST_CALL_FAULTS = [
    ("409 idempotency in progress", _failure(409, {"Retry-After": "0"}), 4),
    ("replayed cached failure", _failure(500, {"Idempotency-Replay": "true"}), 4),
]

# Faults with a test of their own below.
STANDALONE_FAULTS = (
    "connection refused",
    "bulk 201 with error slots",
    "401, then success after the key is rotated in Secret Manager",
    "Secret Manager unavailable, key cached",
    "Secret Manager unavailable, no key cached",
)
FAULTS_COVERED = len(FAULTS) + len(FIRST_CALL_FAULTS) + len(STANDALONE_FAULTS)


def _resend_and_check_exactly_once(function, novu, expected_events=3):
    for batch in RESENDS:
        response = function.post(batch)
        assert response.status_code == 200, response.text
    sent_ids = novu.transaction_counts()
    assert len(sent_ids) == expected_events, "an event was sent under two transactionIds"
    assert set(novu.accepted) == set(sent_ids), "an event was never accepted by Novu"


@pytest.mark.parametrize("name, fault, status, retry_after, calls", FAULTS, ids=[row[0] for row in FAULTS])
def test_fault_then_recovery(serve_function, novu, name, fault, status, retry_after, calls):
    function = serve_function(**SETTINGS)
    novu.respond_with(lambda request: fault if request.path == SINGLE else None)

    response = function.post(FIRST_DELIVERY)

    assert response.status_code == status, response.text
    assert response.headers.get("Retry-After") == retry_after
    assert response.json()["message"]
    assert len(novu.calls("POST", SINGLE)) == calls
    novu.respond_with(None)
    _resend_and_check_exactly_once(function, novu)


@pytest.mark.parametrize("name, fault, calls", FIRST_CALL_FAULTS, ids=[row[0] for row in FIRST_CALL_FAULTS])
def test_first_call_fault_is_recovered_within_the_request(serve_function, novu, name, fault, calls):
    function = serve_function(**SETTINGS)
    seen = set()

    def fail_first_call(request):
        if request.path != SINGLE or request.body["transactionId"] in seen:
            return None
        seen.add(request.body["transactionId"])
        return fault

    novu.respond_with(fail_first_call)
    response = function.post(FIRST_DELIVERY)
    assert response.status_code == 200, response.text
    assert len(novu.calls("POST", SINGLE)) == calls
    novu.respond_with(None)
    _resend_and_check_exactly_once(function, novu)


def test_connection_refused_then_another_instance_delivers(serve_function, novu, unused_port):
    refused = serve_function(**SETTINGS, NOVU_API_URL=f"http://127.0.0.1:{unused_port}")
    response = refused.post(FIRST_DELIVERY)
    assert response.status_code == 503
    assert "could not connect to Novu" in response.json()["message"]
    assert novu.calls() == []
    _resend_and_check_exactly_once(serve_function(**SETTINGS), novu)


def test_bulk_answer_with_error_slots_retries_those_events(serve_function, novu):
    function = serve_function(**SETTINGS)
    batch = tracks(100)

    def some_slots_fail(request):
        if request.path != BULK:
            return None
        slots = [
            {"acknowledged": True, "status": "error", "error": ["temporary"]} if index % 25 == 0
            else {"acknowledged": True, "status": "processed", "transactionId": event["transactionId"]}
            for index, event in enumerate(request.body["events"])
        ]
        for slot, event in zip(slots, request.body["events"]):
            if slot["status"] == "processed":
                novu.accepted[event["transactionId"]] += 1
        return Scripted(201, {"data": slots})

    novu.respond_with(some_slots_fail)
    response = function.post(batch)
    assert response.status_code == 200, response.text
    assert len(novu.calls("POST", BULK)) == 1
    resent_singly = [call.body["payload"]["orderId"] for call in novu.calls("POST", SINGLE)]
    assert resent_singly == ["order-0", "order-25", "order-50", "order-75"]
    assert len(novu.accepted) == 100 and set(novu.accepted.values()) == {1}


def _key_accepted_only(value):
    def responder(request):
        if request.headers.get("Authorization") != f"ApiKey {value}":
            return Scripted(401, error_body(401, "API Key not found", "Unauthorized"))
        return None

    return responder


def test_401_then_success_after_the_key_is_rotated_in_secret_manager(serve_function, novu, secret_manager):
    secret_manager.set("projects/p/secrets/novu-key", "old-key")
    function = serve_function(NOVU_API_KEY="projects/p/secrets/novu-key", SECRET_MANAGER_EMULATOR_HOST=secret_manager.host)
    novu.respond_with(_key_accepted_only("old-key"))
    assert function.post(track(0)).status_code == 200

    secret_manager.set("projects/p/secrets/novu-key", "new-key")
    novu.respond_with(_key_accepted_only("new-key"))
    response = function.post(track(1))
    assert response.status_code == 200, response.text
    keys = [call.headers["Authorization"] for call in novu.calls("POST", SINGLE)]
    assert keys == ["ApiKey old-key", "ApiKey old-key", "ApiKey new-key"]
    _resend_and_check_exactly_once(function, novu)


def test_secret_manager_down_keeps_serving_the_cached_key(serve_function, novu, secret_manager):
    secret_manager.set("projects/p/secrets/novu-key", "the-key")
    function = serve_function(
        NOVU_API_KEY="projects/p/secrets/novu-key",
        SECRET_MANAGER_EMULATOR_HOST=secret_manager.host,
        SECRET_TTL_SECONDS="0",
    )
    assert function.post(track(0)).status_code == 200
    secret_manager.fail_with(grpc.StatusCode.UNAVAILABLE)
    response = function.post(track(1))
    assert response.status_code == 200, response.text
    assert [call.headers["Authorization"] for call in novu.calls("POST", SINGLE)] == ["ApiKey the-key"] * 2


def test_secret_manager_down_with_no_cached_key_is_retryable(serve_function, novu, secret_manager):
    secret_manager.set("projects/p/secrets/novu-key", "the-key")
    secret_manager.fail_with(grpc.StatusCode.UNAVAILABLE)
    function = serve_function(
        NOVU_API_KEY="projects/p/secrets/novu-key", SECRET_MANAGER_EMULATOR_HOST=secret_manager.host
    )
    response = function.post(FIRST_DELIVERY)
    assert response.status_code == 503, response.text
    assert novu.calls() == []
    secret_manager.fail_with(None)
    _resend_and_check_exactly_once(function, novu)
