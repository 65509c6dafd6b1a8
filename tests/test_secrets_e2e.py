"""Secrets held in Secret Manager, end to end: the served function reads them with the real Google
client over gRPC from the fake Secret Manager (``SECRET_MANAGER_EMULATOR_HOST``), and Novu sees the result.
"""

from __future__ import annotations

import time

import grpc
import pytest

from segment_novu.receive.signature import sign
from tests.novu_standin import Scripted, error_body

NOVU_KEY_SECRET = "projects/p/secrets/novu-key"
SHARED_SECRET_NAME = "projects/p/secrets/segment-shared-secret"
TRIGGER = "/v1/events/trigger"
ORDER = b'{"type":"track","userId":"user-1","messageId":"msg-1","event":"Order Completed"}'


# -- helpers ---------------------------------------------------------------------------------------

@pytest.fixture
def serve_function(serve_function):
    """The conftest fixture with workflow discovery off: the Novu calls asserted here are the
    deliveries themselves, with no ``GET /v2/workflows`` in between."""
    return lambda **env: serve_function(**{"WORKFLOW_DISCOVERY": "false", **env})



@pytest.fixture
def serve_managed(serve_function, secret_manager):
    """The function with NOVU_API_KEY naming a Secret Manager secret held by the fake."""

    def start(**env):
        settings = {"NOVU_API_KEY": NOVU_KEY_SECRET, "SECRET_MANAGER_EMULATOR_HOST": secret_manager.host, **env}
        return serve_function(**settings)

    return start


def accept_only_key(novu, key: str) -> None:
    """Novu accepts ``ApiKey <key>`` and refuses every other key with 401."""
    refused = Scripted(status=401, body=error_body(401, "API Key not found", "Unauthorized"))
    novu.respond_with(lambda request: None if request.headers.get("Authorization") == f"ApiKey {key}" else refused)


def keys_sent(novu) -> list[str]:
    return [call.headers["Authorization"] for call in novu.calls("POST", TRIGGER)]


def assert_answer(response, status: int, *, contains: str = "") -> dict:
    assert response.status_code == status, response.text[:500]
    body = response.json()
    assert contains in body["message"], body["message"]
    return body


# -- the Novu API key ----------------------------------------------------------------------------------


def test_novu_call_carries_the_secret_value(serve_managed, secret_manager, novu):
    secret_manager.set(NOVU_KEY_SECRET, "nk-from-secret-manager")
    function = serve_managed()

    response = function.post(data=ORDER)

    assert_answer(response, 200)
    assert keys_sent(novu) == ["ApiKey nk-from-secret-manager"]
    assert secret_manager.calls == [f"{NOVU_KEY_SECRET}/versions/latest"]


def test_secret_is_read_once_and_cached(serve_managed, secret_manager, novu):
    secret_manager.set(NOVU_KEY_SECRET, "nk-cached")
    function = serve_managed()

    for message_id in ("m1", "m2", "m3"):
        body = ORDER.replace(b"msg-1", message_id.encode())
        assert function.post(data=body).status_code == 200

    assert keys_sent(novu) == ["ApiKey nk-cached"] * 3
    assert len(secret_manager.calls) == 1


def test_rotated_key_is_read_again_after_401_and_the_call_retried_once(serve_managed, secret_manager, novu):
    secret_manager.set(NOVU_KEY_SECRET, "old")
    function = serve_managed()
    assert function.post(data=ORDER.replace(b"msg-1", b"before-rotation")).status_code == 200

    secret_manager.set(NOVU_KEY_SECRET, "new")
    accept_only_key(novu, "new")
    response = function.post(data=ORDER)

    assert_answer(response, 200, contains="1 delivered")
    assert keys_sent(novu) == ["ApiKey old", "ApiKey old", "ApiKey new"]
    assert len(secret_manager.calls) == 2
    # From now on the new key is used at once.
    assert function.post(data=ORDER.replace(b"msg-1", b"after-rotation")).status_code == 200
    assert keys_sent(novu)[-1] == "ApiKey new"
    assert len(secret_manager.calls) == 2


def test_reading_a_rejected_key_again_ends_by_the_deadline(serve_managed, secret_manager, novu):
    secret_manager.set(NOVU_KEY_SECRET, "old")
    function = serve_managed(DEADLINE_SECONDS="3")
    assert function.post(data=ORDER.replace(b"msg-1", b"before-rotation")).status_code == 200

    secret_manager.set(NOVU_KEY_SECRET, "new")
    secret_manager.delay(5)
    # Novu takes 2 of the 3 s to refuse the old key: the key's second read gets the one second left,
    # not its own 1.5 s timeout.
    refused = Scripted(status=401, body=error_body(401, "API Key not found", "Unauthorized"), delay=2.0)
    novu.respond_with(lambda request: None if request.headers.get("Authorization") == "ApiKey new" else refused)
    started = time.monotonic()
    response = function.post(data=ORDER)
    elapsed = time.monotonic() - started

    assert response.status_code >= 500
    assert keys_sent(novu)[1:] == ["ApiKey old"]
    assert elapsed < 3.3, f"answered after {elapsed:.2f} s, past the 3 s deadline"


def test_key_still_refused_after_reading_it_again_is_500(serve_managed, secret_manager, novu):
    secret_manager.set(NOVU_KEY_SECRET, "revoked")
    accept_only_key(novu, "new")
    function = serve_managed()

    response = function.post(data=ORDER)

    assert_answer(response, 500, contains="NOVU_API_KEY")
    assert response.json()["message"] == "Novu refused the API key (401): check NOVU_API_KEY"
    # Read, refused, read again, refused once more: no further attempt.
    assert keys_sent(novu) == ["ApiKey revoked", "ApiKey revoked"]
    assert len(secret_manager.calls) == 2


def test_secret_manager_unavailable_without_cached_key_is_retryable(serve_managed, secret_manager, novu):
    secret_manager.fail_with(grpc.StatusCode.UNAVAILABLE)
    function = serve_managed()

    response = function.post(data=ORDER)

    body = assert_answer(response, 503, contains="Novu API key unavailable")
    assert body["events"][0]["outcome"] == "retry"
    assert novu.calls() == []


def test_corrupted_secret_is_not_used(serve_managed, secret_manager, novu):
    secret_manager.set(NOVU_KEY_SECRET, "nk-corrupted-in-transit")
    secret_manager.corrupt_checksum(True)
    function = serve_managed()

    response = function.post(data=ORDER)

    assert_answer(response, 503, contains="Novu API key unavailable")
    assert novu.calls() == []


def test_secret_manager_unavailable_with_cached_key_serves_the_cached_key(serve_managed, secret_manager, novu):
    secret_manager.set(NOVU_KEY_SECRET, "nk-cached")
    function = serve_managed(SECRET_TTL_SECONDS="0")
    assert function.post(data=ORDER).status_code == 200

    secret_manager.fail_with(grpc.StatusCode.UNAVAILABLE)
    response = function.post(data=ORDER.replace(b"msg-1", b"msg-2"))

    assert_answer(response, 200)
    assert keys_sent(novu) == ["ApiKey nk-cached", "ApiKey nk-cached"]


def test_slow_secret_manager_is_answered_within_the_deadline(serve_managed, secret_manager, novu):
    secret_manager.set(NOVU_KEY_SECRET, "nk")
    secret_manager.delay(5)
    function = serve_managed(DEADLINE_SECONDS="1")

    started = time.monotonic()
    response = function.post(data=ORDER)
    elapsed = time.monotonic() - started

    assert_answer(response, 503)
    assert novu.calls() == []
    assert elapsed < 1.5


# -- the Segment shared secret -------------------------------------------------------------------------


def test_shared_secret_from_secret_manager_verifies_signatures(serve_managed, secret_manager, novu):
    secret_manager.set(NOVU_KEY_SECRET, "nk")
    secret_manager.set(SHARED_SECRET_NAME, "shared-from-secret-manager")
    function = serve_managed(SEGMENT_SHARED_SECRET=SHARED_SECRET_NAME)

    good = function.post(data=ORDER, headers={"X-Signature": sign(ORDER, "shared-from-secret-manager")})
    bad = function.post(data=ORDER, headers={"X-Signature": sign(ORDER, SHARED_SECRET_NAME)})

    assert_answer(good, 200)
    assert_answer(bad, 401, contains="X-Signature does not match the body")
    assert len(novu.calls()) == 1


def test_shared_secret_unavailable_is_retryable_and_calls_nobody(serve_managed, secret_manager, novu):
    secret_manager.set(NOVU_KEY_SECRET, "nk")
    secret_manager.fail_with(grpc.StatusCode.UNAVAILABLE)
    function = serve_managed(SEGMENT_SHARED_SECRET=SHARED_SECRET_NAME)

    response = function.post(data=ORDER, headers={"X-Signature": sign(ORDER, "anything")})

    assert_answer(response, 503, contains="shared secret cannot be read")
    assert novu.calls() == []


def test_shared_secret_and_novu_key_are_read_at_the_same_time(serve_managed, secret_manager, novu):
    secret_manager.set(NOVU_KEY_SECRET, "nk")
    secret_manager.set(SHARED_SECRET_NAME, "shared")
    secret_manager.delay(0.6)
    function = serve_managed(SEGMENT_SHARED_SECRET=SHARED_SECRET_NAME, DEADLINE_SECONDS="5")

    started = time.monotonic()
    response = function.post(data=ORDER, headers={"X-Signature": sign(ORDER, "shared")})
    elapsed = time.monotonic() - started

    assert_answer(response, 200)
    assert sorted(secret_manager.calls) == sorted([f"{NOVU_KEY_SECRET}/versions/latest",
                                                   f"{SHARED_SECRET_NAME}/versions/latest"])
    assert elapsed < 1.1, f"the two reads took {elapsed:.2f} s: one after the other"


# -- secrets only the operator can fix: answered 500 naming the variable, never used blank ------------

AUTH_TOKEN_NAME = "projects/p/secrets/segment-auth-token"


def error_lines(capfd) -> list[dict]:
    import json

    lines = [json.loads(line) for line in capfd.readouterr().out.splitlines() if line.startswith("{")]
    return [line for line in lines if line["severity"] == "ERROR"]


@pytest.mark.parametrize("blank", ["", " \n", "\t"])
def test_blank_auth_token_in_secret_manager_refuses_every_request(serve_managed, secret_manager, novu, capfd, blank):
    secret_manager.set(NOVU_KEY_SECRET, "nk")
    secret_manager.set(AUTH_TOKEN_NAME, blank)
    function = serve_managed(SEGMENT_AUTH_TOKEN=AUTH_TOKEN_NAME)

    without = function.post(data=ORDER)
    with_any = function.post(data=ORDER, headers={"Authorization": "Bearer anything"})
    with_empty = function.post(data=ORDER, headers={"Authorization": "Bearer "})

    for response in (without, with_any, with_empty):
        assert_answer(response, 500, contains=f"SEGMENT_AUTH_TOKEN names secret {AUTH_TOKEN_NAME}/versions/latest,"
                                              " which is blank")
    assert novu.calls() == []
    assert any("SEGMENT_AUTH_TOKEN" in line.get("error", "") for line in error_lines(capfd))


def test_blank_shared_secret_in_secret_manager_refuses_a_body_signed_with_the_empty_key(
    serve_managed, secret_manager, novu
):
    secret_manager.set(NOVU_KEY_SECRET, "nk")
    secret_manager.set(SHARED_SECRET_NAME, " \n")
    function = serve_managed(SEGMENT_SHARED_SECRET=SHARED_SECRET_NAME)

    response = function.post(data=ORDER, headers={"X-Signature": sign(ORDER, "")})

    assert_answer(response, 500, contains="SEGMENT_SHARED_SECRET names secret")
    assert novu.calls() == []


def test_a_fixed_blank_secret_is_read_again_and_served(serve_managed, secret_manager, novu, monkeypatch):
    from segment_novu import secrets

    monkeypatch.setattr(secrets, "FAILURE_BACKOFF_SECONDS", 0.0)
    secret_manager.set(NOVU_KEY_SECRET, "nk")
    secret_manager.set(AUTH_TOKEN_NAME, "  ")
    function = serve_managed(SEGMENT_AUTH_TOKEN=AUTH_TOKEN_NAME)
    assert_answer(function.post(data=ORDER, headers={"Authorization": "Bearer tok"}), 500)

    secret_manager.set(AUTH_TOKEN_NAME, "tok")

    assert_answer(function.post(data=ORDER, headers={"Authorization": "Bearer tok"}), 200)
    assert_answer(function.post(data=ORDER, headers={"Authorization": "Bearer other"}), 401)


@pytest.mark.parametrize(
    ("code", "says"),
    [
        (grpc.StatusCode.NOT_FOUND, "which does not exist"),
        (grpc.StatusCode.PERMISSION_DENIED, "which may not be read by the function's service account"),
        (grpc.StatusCode.FAILED_PRECONDITION, "which has its version disabled or destroyed"),
    ],
)
def test_novu_key_secret_the_operator_must_fix_is_500_naming_it(serve_managed, secret_manager, novu, code, says):
    secret_manager.set(NOVU_KEY_SECRET, "nk")
    secret_manager.fail_with(code)
    function = serve_managed()

    response = function.post(data=ORDER)

    assert_answer(response, 500, contains=f"NOVU_API_KEY names secret {NOVU_KEY_SECRET}/versions/latest, {says}")
    assert novu.calls() == []


def test_novu_key_secret_that_was_never_created_is_500(serve_managed, secret_manager, novu):
    function = serve_managed()

    response = function.post(data=ORDER)

    assert_answer(response, 500, contains="which does not exist")
    assert novu.calls() == []


def test_blank_novu_key_in_secret_manager_is_500_and_never_sent(serve_managed, secret_manager, novu):
    secret_manager.set(NOVU_KEY_SECRET, "\n")
    function = serve_managed()

    response = function.post(data=ORDER)

    assert_answer(response, 500, contains="NOVU_API_KEY names secret")
    assert novu.calls() == []
