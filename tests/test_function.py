"""End to end over real HTTP: Segment's bodies in, the exact Novu requests out.

The function is served by functions-framework on loopback (``serve_function``) and talks to the Novu
stand-in (``novu``). Every Segment example from the docs is delivered and the Novu request it causes is
asserted in full: method, path, JSON body and ``Authorization`` header.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from segment_novu.mapping import planner
from segment_novu.receive import events
from segment_novu.receive.signature import sign
from tests.novu_standin import Scripted, error_body

DATA = Path(__file__).parent / "data" / "segment"
AUTHORIZATION = "ApiKey test-novu-key"
SHARED_SECRET = "segment-shared-secret-for-tests"


# -- helpers ---------------------------------------------------------------------------------------

@pytest.fixture
def serve_function(serve_function):
    """The conftest fixture with workflow discovery off: the Novu calls asserted here are the
    deliveries themselves, with no ``GET /v2/workflows`` in between."""
    return lambda **env: serve_function(**{"WORKFLOW_DISCOVERY": "false", **env})



def example(name: str):
    return json.loads((DATA / name).read_text(encoding="utf-8"))


def raw_example(name: str) -> bytes:
    return (DATA / name).read_bytes()


def transaction_id(event: dict, workflow: str) -> str:
    """The transactionId the bridge derives for (event as delivered, workflow)."""
    return planner.transaction_id(events.parse(event, 0), workflow)


def trigger_call(event: dict, workflow: str, to: dict, payload: dict):
    body = {"name": workflow, "to": to, "payload": payload, "transactionId": transaction_id(event, workflow)}
    return ("POST", "/v1/events/trigger", body)


def upsert_call(subscriber: dict):
    return ("POST", "/v2/subscribers", subscriber)


def delete_call(subscriber_id: str):
    return ("DELETE", f"/v2/subscribers/{subscriber_id}", None)


def received(novu) -> list[tuple]:
    """What Novu received as (method, path, body); every request must carry the API key."""
    calls = novu.calls()
    for call in calls:
        assert call.headers.get("Authorization") == AUTHORIZATION, call
    return [(call.method, call.path, call.body) for call in calls]


def assert_received_exactly(novu, expected: list[tuple]) -> None:
    """Same requests, any order across subscribers (delivery runs them concurrently)."""
    def canonical(calls):
        return sorted(json.dumps(call, sort_keys=True) for call in calls)

    assert canonical(received(novu)) == canonical(expected)


def outcomes_of(response) -> list[str]:
    return [entry["outcome"] for entry in response.json()["events"]]


def track(user_id: str = "user-1", message_id: str = "msg-1", **extra) -> dict:
    return {"type": "track", "userId": user_id, "messageId": message_id, "event": "Order Completed",
            "properties": {"orderId": "o-1"}, **extra}


def signed_headers(body: bytes, secret: str = SHARED_SECRET) -> dict:
    return {"X-Signature": sign(body, secret)}


# -- the Segment examples, one by one -----------------------------------------------------------------


def _segment(event: dict, **ids) -> dict:
    """The ``_segment`` block the bridge adds to a trigger payload (``ids``: messageId, anonymousId)."""
    block = {"type": "track", "event": event["event"], "userId": event["userId"], **ids}
    if "timestamp" in event:
        block["timestamp"] = event["timestamp"]
    return block


def _expected_single(name: str) -> list[tuple]:
    event = example(name)
    if name == "identify-peter-gibbons.json":
        return [upsert_call({
            "subscriberId": "97980cfea0067",
            "email": "peter@example.com",
            "firstName": "Peter",
            "lastName": "Gibbons",
            "data": {"logins": 5, "plan": "premium"},
        })]
    if name == "identify-full-with-address.json":
        return [upsert_call({
            "subscriberId": "97980cfea0067",
            "email": "peter@example.com",
            "firstName": "Peter",
            "lastName": "Gibbons",
            "data": {
                "plan": "premium",
                "logins": 5,
                "address": {
                    "street": "6th St", "city": "San Francisco", "state": "CA", "postalCode": "94103",
                    "country": "USA",
                },
            },
        })]
    if name == "track-order-completed.json":
        return [trigger_call(event, "order-completed", {"subscriberId": "customer-12345"}, {
            "order_id": "82f250a3-32eb-40be-95fc-77e685ed8448",
            "email": "joe.customer@example.com",
            "total": 54.82,
            "currency": "USD",
            "friendbuyAttributes": {"orderNumber": "3", "promotion": "black friday"},
            "_segment": {"type": "track", "event": "Order Completed", "userId": "customer-12345"},
        })]
    if name == "track-registered.json":
        return [trigger_call(event, "registered", {"subscriberId": "97980cfea0067"}, {
            "accountType": "Facebook",
            "plan": "Pro Annual",
            "_segment": _segment(
                event, messageId="ajs-920a8b6591f0d25cc117fb71602a6b17",
                anonymousId="3d316d2c-26e8-451f-91be-a0766708c81e",
            ),
        })]
    if name == "track-button-clicked-context-traits.json":
        return [trigger_call(event, "button-clicked", {"subscriberId": "AiUGstSDIg"}, {
            "title": "Intro to Analytics",
            "_segment": _segment(
                event, messageId="ajs-f8ca1e4de5024d9430b3928bd8ac6b96",
                anonymousId="23adfd82-aa0f-45a7-a756-24f2a7a4c895",
            ),
        })]
    if name == "track-report-submitted-common-fields.json":
        to = {"subscriberId": "97980cfea0067", "locale": "en-US", "timezone": "Europe/Amsterdam"}
        return [trigger_call(event, "report-submitted", to, {
            "_segment": _segment(
                event, messageId="022bb90c-bbac-11e4-8dfc-aa07a5b093db", anonymousId="507f191e810c19729de860ea"
            ),
        })]
    if name == "webhook-classic-track.json":
        return [trigger_call(event, "purchased-an-item", {"subscriberId": "019mr8mf4r"}, {
            "revenue": "39.95",
            "shippingMethod": "2-day",
            "_segment": _segment(event),
        })]
    if name == "group-initech.json":
        topic = "0e8c78ea9d97a7b8185e8632"
        return [
            ("POST", "/v2/topics", {"key": topic, "name": "Initech"}),
            ("POST", f"/v2/topics/{topic}/subscriptions", {"subscriptions": ["97980cfea0067"]}),
        ]
    if name == "delete-partner-spec.json":
        return [delete_call("507f191e81")]
    if name == "delete-subscription-arrays.json":
        return [delete_call("5678")]
    raise AssertionError(f"no expectation for {name}")


SINGLE_EVENT_EXAMPLES = {
    "identify-peter-gibbons.json": "delivered",
    "identify-full-with-address.json": "delivered",
    "track-order-completed.json": "delivered",
    "track-registered.json": "delivered",
    "track-button-clicked-context-traits.json": "delivered",
    "track-report-submitted-common-fields.json": "delivered",
    "webhook-classic-track.json": "delivered",
    "group-initech.json": "delivered",
    "delete-partner-spec.json": "delivered",
    "delete-subscription-arrays.json": "delivered",
}


def test_every_example_file_is_covered():
    covered = set(SINGLE_EVENT_EXAMPLES) | {
        "page-home.json", "screen-home.json", "alias.json",
        "batch-function-onbatch-array.json", "batch-tracking-api.json",
    }
    assert covered == {path.name for path in DATA.glob("*.json")}


@pytest.mark.parametrize("name", sorted(SINGLE_EVENT_EXAMPLES))
def test_example_event_makes_the_exact_novu_request(serve_function, novu, name):
    function = serve_function()

    response = function.post(data=raw_example(name))

    assert response.status_code == 200, response.text[:500]
    assert outcomes_of(response) == [SINGLE_EVENT_EXAMPLES[name]]
    assert_received_exactly(novu, _expected_single(name))


def test_bare_array_batch_makes_the_exact_novu_requests_in_subscriber_order(serve_function, novu):
    function = serve_function()
    batch = example("batch-function-onbatch-array.json")

    response = function.post(data=raw_example("batch-function-onbatch-array.json"))

    assert response.status_code == 200, response.text[:500]
    assert outcomes_of(response) == ["delivered"] * 3
    jake = upsert_call({
        "subscriberId": "019mr8mf4r", "email": "jake@yahoo.com", "firstName": "Jake", "lastName": "Peterson",
        "data": {"age": 26},
    })
    jake_song = trigger_call(batch[1], "song-played", {"subscriberId": "019mr8mf4r"}, {
        "name": "Fallin for You", "artist": "Dierks Bentley",
        "_segment": {"type": "track", "event": "Song Played", "userId": "019mr8mf4r"},
    })
    other_song = trigger_call(batch[2], "song-played", {"subscriberId": "971mj8mk7p"}, {
        "name": "Get Right", "artist": "Jennifer Lopez",
        "_segment": {"type": "track", "event": "Song Played", "userId": "971mj8mk7p"},
    })
    assert_received_exactly(novu, [jake, jake_song, other_song])
    # Segment's order holds per subscriber: Jake exists before his trigger.
    order = received(novu)
    assert order.index(jake) < order.index(jake_song)


def test_tracking_api_envelope_merges_top_level_context_into_each_event(serve_function, novu):
    function = serve_function()
    envelope = example("batch-tracking-api.json")
    merged = [{**event, "context": envelope["context"]} for event in envelope["batch"]]

    response = function.post(data=raw_example("batch-tracking-api.json"), path="/v1/batch")

    assert response.status_code == 200, response.text[:500]
    assert outcomes_of(response) == ["delivered"] * 4

    def song(event, name, artist):
        return trigger_call(event, "song-played", {"subscriberId": event["userId"]}, {
            "name": name, "artist": artist,
            "_segment": {"type": "track", "event": "Song Played", "userId": event["userId"],
                         "timestamp": event["timestamp"]},
        })

    assert_received_exactly(novu, [
        upsert_call({"subscriberId": "019mr8mf4r", "email": "jake@yahoo.com", "firstName": "Jake",
                     "lastName": "Peterson", "data": {"age": 26}}),
        song(merged[1], "Fallin for You", "Dierks Bentley"),
        upsert_call({"subscriberId": "971mj8mk7p", "email": "cindy@example.com", "firstName": "Cindy",
                     "lastName": "Gonzalez", "data": {"age": 23}}),
        song(merged[3], "Get Right", "Jennifer Lopez"),
    ])


def test_envelope_context_reaches_the_subscriber_and_the_event_own_context_wins(serve_function, novu):
    function = serve_function()
    own = track("u-own", message_id="m-own", context={"timezone": "Asia/Tokyo"})
    plain = track("u-plain", message_id="m-plain")
    envelope = {"batch": [own, plain], "context": {"locale": "fr-FR", "timezone": "Europe/Paris"},
                "writeKey": "wk", "sentAt": "2026-11-28T00:00:00Z"}

    response = function.post(envelope, path="/v1/batch")

    assert response.status_code == 200, response.text[:500]
    recipients = {body["to"]["subscriberId"]: body["to"] for _, _, body in received(novu)}
    assert recipients == {
        "u-own": {"subscriberId": "u-own", "locale": "fr-FR", "timezone": "Asia/Tokyo"},
        "u-plain": {"subscriberId": "u-plain", "locale": "fr-FR", "timezone": "Europe/Paris"},
    }


def test_group_upserts_its_topic_before_subscribing_the_user(serve_function, novu):
    function = serve_function()

    response = function.post(data=raw_example("group-initech.json"))

    assert response.status_code == 200, response.text[:500]
    assert [(method, path) for method, path, _ in received(novu)] == [
        ("POST", "/v2/topics"),
        ("POST", "/v2/topics/0e8c78ea9d97a7b8185e8632/subscriptions"),
    ]


@pytest.mark.parametrize("name, reason", [
    ("page-home.json", "page events are not mapped to Novu"),
    ("screen-home.json", "screen events are not mapped to Novu"),
    ("alias.json", "alias events are not mapped: Novu cannot merge subscribers"),
])
def test_unmapped_event_types_are_skipped_without_novu_call(serve_function, novu, name, reason):
    function = serve_function()

    response = function.post(data=raw_example(name))

    assert response.status_code == 200, response.text[:500]
    [entry] = response.json()["events"]
    assert entry["outcome"] == "skipped"
    assert entry["reason"] == reason
    assert entry["messageId"] == example(name)["messageId"]
    assert novu.calls() == []


def test_anonymous_track_is_skipped(serve_function, novu):
    function = serve_function()
    anonymous = {"type": "track", "anonymousId": "anon-1", "event": "Order Completed", "messageId": "m-anon"}

    response = function.post(anonymous)

    assert response.status_code == 200, response.text[:500]
    [entry] = response.json()["events"]
    assert entry["outcome"] == "skipped"
    assert "anonymous" in entry["reason"]
    assert novu.calls() == []


def test_delete_of_a_subscriber_novu_does_not_know_is_done(serve_function, novu):
    function = serve_function()
    novu.script("DELETE", "/v2/subscribers/", Scripted(404, error_body(404, "Subscriber not found", "Not Found")))

    response = function.post(data=raw_example("delete-partner-spec.json"))

    assert response.status_code == 200, response.text[:500]
    assert outcomes_of(response) == ["delivered"]
    assert_received_exactly(novu, [delete_call("507f191e81")])


def test_resent_event_is_not_sent_to_novu_again(serve_function, novu):
    function = serve_function()
    body = raw_example("track-registered.json")

    first = function.post(data=body)
    again = function.post(data=body)

    assert (first.status_code, again.status_code) == (200, 200)
    assert outcomes_of(first) == ["delivered"]
    assert outcomes_of(again) == ["duplicate"]  # the in-memory ledger spares the Novu call
    assert novu.transaction_counts() == {transaction_id(example("track-registered.json"), "registered"): 1}


def test_without_ledger_a_resent_event_carries_the_same_transaction_id(serve_function, novu):
    function = serve_function(LEDGER_MAX_ENTRIES="0")
    body = raw_example("track-registered.json")

    assert function.post(data=body).status_code == 200
    assert function.post(data=body).status_code == 200

    # Novu drops the repeat by its transactionId.
    assert novu.transaction_counts() == {transaction_id(example("track-registered.json"), "registered"): 2}


# -- methods -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_put_and_patch_are_accepted(serve_function, novu, method):
    function = serve_function()

    response = function.post(data=raw_example("webhook-classic-track.json"), method=method)

    assert response.status_code == 200, response.text[:500]
    assert_received_exactly(novu, _expected_single("webhook-classic-track.json"))


@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_other_methods_are_refused_with_allow_header(serve_function, novu, method):
    function = serve_function()

    response = function.post(data=raw_example("webhook-classic-track.json"), method=method)

    assert response.status_code == 405
    assert response.headers["Allow"] == "POST, PUT, PATCH"
    assert response.json()["message"] == f"method {method} not allowed: POST events"
    assert novu.calls() == []


# -- bodies the bridge refuses ------------------------------------------------------------------------


def test_body_over_max_body_bytes_is_refused(serve_function, novu):
    function = serve_function(MAX_BODY_BYTES="2048")
    big = track(properties={"blob": "x" * 4096})

    response = function.post(big)

    assert response.status_code == 413
    assert "MAX_BODY_BYTES" in response.json()["message"]
    assert novu.calls() == []


def test_chunked_body_over_max_body_bytes_is_refused(serve_function, novu):
    function = serve_function(MAX_BODY_BYTES="2048")
    data = json.dumps(track(properties={"blob": "x" * 4096})).encode()
    chunks = (data[start : start + 1000] for start in range(0, len(data), 1000))

    response = function.session.post(function.url, data=chunks, headers={"Content-Type": "application/json"})

    assert response.status_code == 413
    assert "MAX_BODY_BYTES" in response.json()["message"]
    assert novu.calls() == []


def test_body_just_under_the_limit_is_served(serve_function, novu):
    function = serve_function(MAX_BODY_BYTES="2048")
    body = json.dumps(track(properties={"blob": "x" * 1500})).encode()
    assert len(body) <= 2048

    response = function.post(data=body)

    assert response.status_code == 200, response.text[:500]
    assert len(novu.calls()) == 1


def test_invalid_json_is_a_400_with_message(serve_function, novu):
    function = serve_function()

    response = function.post(data=b'{"type": "track", "userId": ')

    assert response.status_code == 400
    assert response.json()["message"].startswith("body is not valid JSON")
    assert novu.calls() == []


def test_batch_with_no_valid_event_is_a_400(serve_function, novu):
    function = serve_function()
    batch = [{"type": "track", "userId": "u1"}, {"type": "launch", "userId": "u2"}, "not an event"]

    response = function.post(batch)

    assert response.status_code == 400
    assert response.json()["message"] == "no event in the batch could be accepted; first: track without event"
    assert outcomes_of(response) == ["rejected"] * 3
    assert novu.calls() == []


def test_batch_with_one_invalid_event_delivers_the_others(serve_function, novu):
    function = serve_function()
    good = track("u1", message_id="m1")
    bad = {"type": "track", "userId": "u2", "messageId": "m2"}
    identify = {"type": "identify", "userId": "u3", "messageId": "m3", "traits": {"plan": "pro"}}

    response = function.post([good, bad, identify])

    assert response.status_code == 200, response.text[:500]
    reported = response.json()["events"]
    assert [entry["outcome"] for entry in reported] == ["delivered", "rejected", "delivered"]
    assert reported[1] == {"index": 1, "messageId": "m2", "type": "track", "outcome": "rejected",
                           "reason": "track without event"}
    assert_received_exactly(novu, [
        trigger_call(good, "order-completed", {"subscriberId": "u1"}, {
            "orderId": "o-1", "_segment": {"type": "track", "event": "Order Completed", "messageId": "m1",
                                           "userId": "u1"},
        }),
        upsert_call({"subscriberId": "u3", "data": {"plan": "pro"}}),
    ])


# -- signatures -----------------------------------------------------------------------------------------


@pytest.fixture
def signed_function(serve_function):
    return serve_function(SEGMENT_SHARED_SECRET=SHARED_SECRET)


def test_valid_signature_is_served(signed_function, novu):
    body = raw_example("webhook-classic-track.json")

    response = signed_function.post(data=body, headers=signed_headers(body))

    assert response.status_code == 200, response.text[:500]
    assert_received_exactly(novu, _expected_single("webhook-classic-track.json"))


@pytest.mark.parametrize("headers, message", [
    ({}, "missing X-Signature header"),
    ({"X-Signature": sign(b"some other body", SHARED_SECRET)}, "X-Signature does not match the body"),
    ({"X-Signature": sign(raw_example("webhook-classic-track.json"), "wrong-secret")},
     "X-Signature does not match the body"),
    ({"X-Signature": "not-hex"}, "malformed X-Signature header: expected 40 hex characters"),
])
def test_missing_or_wrong_signature_is_a_401_without_novu_call(signed_function, novu, headers, message):
    response = signed_function.post(data=raw_example("webhook-classic-track.json"), headers=headers)

    assert response.status_code == 401
    assert response.json() == {"message": message}
    assert novu.calls() == []


# Spaced like JavaScript would never print it, with a number Python re-serialises differently
# (5e-7 → 5e-07): only verification on the raw bytes can succeed.
FIRST_ELEMENT = b'{"type":"track","userId":"u1","messageId":"m1","event":"Order Completed","properties":{"ratio":5e-7}}'
BATCH_TEXT = b'[ ' + FIRST_ELEMENT + b',\n {"type":"track","userId":"u2","messageId":"m2","event":"Order Completed"}]'


NON_ASCII_FIRST = '{"type":"track","userId":"u1","event":"Commande passée","properties":{"ville":"Besançon"}}'.encode()


def test_a_signed_event_wrapped_in_a_batch_with_a_forged_one_is_refused(signed_function, novu):
    signed = json.dumps(track("u1", "m1")).encode()
    forged = json.dumps({"type": "identify", "userId": "victim", "messageId": "m-forged",
                         "traits": {"email": "attacker@example.com"}}).encode()

    response = signed_function.post(data=b"[" + signed + b"," + forged + b"]", headers=signed_headers(signed))

    assert response.status_code == 401
    assert response.json() == {"message": (
        "X-Signature covers only the batch's first element, not the events after it: sign the whole body,"
        " or send SEGMENT_AUTH_TOKEN in an Authorization header"
    )}
    assert novu.calls() == []


@pytest.mark.parametrize("first, batch", [
    (FIRST_ELEMENT, BATCH_TEXT),
    (NON_ASCII_FIRST, b"\n[" + NON_ASCII_FIRST + b', {"type":"track","userId":"u2","event":"Order Completed"}]'),
], ids=["js-number", "non-ascii"])
def test_batch_signed_over_its_first_element_is_served_when_opted_in(serve_function, novu, first, batch):
    function = serve_function(SEGMENT_SHARED_SECRET=SHARED_SECRET, ACCEPT_FIRST_ELEMENT_SIGNATURE="true")

    response = function.post(data=batch, headers=signed_headers(first))

    assert response.status_code == 200, response.text[:500]
    assert outcomes_of(response) == ["delivered", "delivered"]
    assert len(novu.calls()) == 2


def test_batch_signed_over_its_first_element_is_served_with_the_token_beside_it(serve_function, novu):
    function = serve_function(SEGMENT_SHARED_SECRET=SHARED_SECRET, SEGMENT_AUTH_TOKEN="segment-token")

    response = function.post(
        data=BATCH_TEXT, headers={**signed_headers(FIRST_ELEMENT), "Authorization": "Bearer segment-token"}
    )

    assert response.status_code == 200, response.text[:500]
    assert len(novu.calls()) == 2


def test_batch_signed_over_the_whole_body_is_served(signed_function, novu):
    response = signed_function.post(data=BATCH_TEXT, headers=signed_headers(BATCH_TEXT))

    assert response.status_code == 200, response.text[:500]
    assert len(novu.calls()) == 2


def test_batch_signed_over_a_reserialised_first_element_is_refused(signed_function, novu):
    reserialised = json.dumps(json.loads(FIRST_ELEMENT), separators=(",", ":")).encode()
    assert reserialised != FIRST_ELEMENT

    response = signed_function.post(data=BATCH_TEXT, headers=signed_headers(reserialised))

    assert response.status_code == 401
    assert novu.calls() == []
