"""``group`` → a Novu topic and the user's subscription to it; ``context.device.token`` → the user's
push credentials; a subscriber Novu does not know yet is created first; ``alias`` and anonymous
events as documented. Over real HTTP: the served function, the Novu stand-in, exact requests.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from segment_novu.mapping import planner
from tests.novu_contract import validate_request
from tests.novu_standin import Scripted, error_body

DATA = Path(__file__).parent / "data" / "segment"
TRIGGER = "/v1/events/trigger"
GROUP = {"type": "group", "userId": "u1", "messageId": "g-1", "groupId": "team-7", "traits": {"name": "Team Seven"}}
TOKEN = "ff15bc0c20c4aa6cd50854ff165fd265c838e5405bfeb9571066395b8c9da449"


def received(novu) -> list[tuple]:
    calls = novu.calls()
    for call in calls:
        validate_request(call)
    return [(call.method, call.path, call.body) for call in calls]


def outcomes(response) -> list[str]:
    return [entry["outcome"] for entry in response.json()["events"]]


def app_event(message_id: str, *, user: str = "u1", device_type: str = "android", token: str = TOKEN, **extra):
    return {"type": "track", "userId": user, "messageId": message_id, "event": "App Opened",
            "context": {"device": {"type": device_type, "token": token}, "traits": {"email": "ann@example.com"}},
            **extra}


@pytest.fixture
def function(serve_function, tmp_path):
    """The served function with a mapping file (discovery off: the requests asserted are the deliveries)."""

    def start(document: dict | None = None, **env):
        if document is not None:
            path = tmp_path / "mapping.json"
            path.write_text(json.dumps(document))
            env["MAPPING_FILE"] = str(path)
        return serve_function(WORKFLOW_DISCOVERY="false", **env)

    return start


# -- group → topic ------------------------------------------------------------------------------------


def test_segments_group_example_upserts_the_topic_then_subscribes_the_user(function, novu):
    response = function().post(data=(DATA / "group-initech.json").read_bytes())

    assert response.status_code == 200, response.text
    assert outcomes(response) == ["delivered"]
    assert received(novu) == [
        ("POST", "/v2/topics", {"key": "0e8c78ea9d97a7b8185e8632", "name": "Initech"}),
        ("POST", "/v2/topics/0e8c78ea9d97a7b8185e8632/subscriptions", {"subscriptions": ["97980cfea0067"]}),
    ]


def test_a_group_id_novu_would_refuse_is_sanitised(function, novu):
    response = function().post({**GROUP, "groupId": "Acme Inc / Zürich"})

    assert response.status_code == 200, response.text
    [(_, _, topic), (_, path, _)] = received(novu)
    assert re.fullmatch(r"Acme-Inc-Z-rich-[0-9a-f]{12}", topic["key"])
    assert path == f"/v2/topics/{topic['key']}/subscriptions"


@pytest.mark.parametrize(
    "group_id, key",
    [
        ("team-7", "team-7"),
        ("org:42_b", "org:42_b"),
        (42, "42"),
        ("a" * 100, "a" * 100),
        ("!!!", "segment-" + planner.topic_key("!!!")[-12:]),
    ],
)
def test_topic_keys(group_id, key):
    assert planner.topic_key(group_id) == key


def test_topic_keys_stay_distinct_and_within_novus_limit():
    keys = {planner.topic_key(group_id) for group_id in ("a b", "a-b", "a/b", "a  b", "a" * 101, "a" * 102)}
    assert len(keys) == 6
    assert all(re.fullmatch(r"[A-Za-z0-9_:-]{1,100}", key) for key in keys)


def test_a_group_without_a_name_upserts_the_topic_by_key_only(function, novu):
    response = function().post({**GROUP, "traits": {}})

    assert response.status_code == 200, response.text
    assert received(novu)[0] == ("POST", "/v2/topics", {"key": "team-7"})


def test_a_long_group_name_is_cut_to_novus_limit(function, novu):
    function().post({**GROUP, "traits": {"name": "N" * 150}})

    assert received(novu)[0][2] == {"key": "team-7", "name": "N" * 100}


def test_the_topic_key_and_name_can_come_from_elsewhere(function, novu):
    served = function({"group": {"topicKey": "traits.accountKey", "topicName": {"value": "Customers"}}})

    response = served.post({**GROUP, "traits": {"accountKey": "acct_9"}})

    assert response.status_code == 200, response.text
    assert received(novu) == [
        ("POST", "/v2/topics", {"key": "acct_9", "name": "Customers"}),
        ("POST", "/v2/topics/acct_9/subscriptions", {"subscriptions": ["u1"]}),
    ]


def test_a_group_without_the_mapped_topic_key_is_skipped(function, novu):
    response = function({"group": {"topicKey": "traits.accountKey"}}).post(GROUP)

    assert response.json()["events"][0]["reason"] == "group without a topic key: traits.accountKey is missing"
    assert novu.calls() == []


def test_group_events_can_be_ignored(function, novu):
    response = function({"group": {"ignore": True}}).post(GROUP)

    assert response.status_code == 200, response.text
    assert [(entry["outcome"], entry["reason"]) for entry in response.json()["events"]] == [
        ("skipped", "group events are ignored by the mapping")
    ]
    assert novu.calls() == []


def test_a_repeated_membership_costs_no_second_call(function, novu):
    served = function()
    served.post(GROUP)

    again = served.post({**GROUP, "messageId": "g-2"})  # another event, the same membership

    assert outcomes(again) == ["duplicate"]
    assert len(novu.calls()) == 2


def test_a_renamed_group_upserts_the_topic_again(function, novu):
    served = function()
    served.post(GROUP)

    renamed = served.post({**GROUP, "messageId": "g-2", "traits": {"name": "Team 7"}})

    assert outcomes(renamed) == ["delivered"]
    assert received(novu)[2:] == [("POST", "/v2/topics", {"key": "team-7", "name": "Team 7"})]


def test_a_track_mapped_to_a_topic_lands_after_the_groups_subscription(function, novu):
    served = function({"track": {"Order Shipped": [{"workflow": "team-order", "topic": "properties.teamId"}]}})
    shipped = {"type": "track", "userId": "u1", "messageId": "t-1", "event": "Order Shipped",
               "properties": {"teamId": "team-7"}}

    response = served.post([GROUP, shipped])

    assert response.status_code == 200, response.text
    assert [(method, path) for method, path, _ in received(novu)] == [
        ("POST", "/v2/topics"), ("POST", "/v2/topics/team-7/subscriptions"), ("POST", TRIGGER),
    ]
    assert novu.calls("POST", TRIGGER)[0].body["to"] == {"type": "Topic", "topicKey": "team-7"}


def test_a_subscription_for_a_subscriber_novu_does_not_know_creates_the_subscriber_first(function, novu):
    novu.script("POST", "/v2/topics/team-7/subscriptions", Scripted(201, {"data": {
        "data": [], "meta": {"totalCount": 1, "successful": 0, "failed": 1},
        "errors": [{"subscriberId": "u1", "code": "SUBSCRIBER_NOT_FOUND",
                    "message": "Subscriber with ID 'u1' could not be found."}],
    }}))
    served = function()

    response = served.post({**GROUP, "context": {"traits": {"email": "ann@example.com", "name": "Ann Lee"}}})

    assert outcomes(response) == ["delivered"]
    assert received(novu) == [
        ("POST", "/v2/topics", {"key": "team-7", "name": "Team Seven"}),
        ("POST", "/v2/topics/team-7/subscriptions", {"subscriptions": ["u1"]}),
        ("POST", "/v2/subscribers", {"subscriberId": "u1", "email": "ann@example.com", "firstName": "Ann",
                                     "lastName": "Lee"}),
        ("POST", "/v2/topics/team-7/subscriptions", {"subscriptions": ["u1"]}),
    ]
    first, again = novu.calls("POST", "/v2/topics/team-7/subscriptions")
    assert "Idempotency-Key" in first.headers and "Idempotency-Key" not in again.headers


def test_a_subscription_still_refused_after_the_subscriber_exists_is_retried_later(function, novu):
    refused = Scripted(201, {"data": {"data": [], "meta": {"totalCount": 1, "successful": 0, "failed": 1},
                                      "errors": [{"subscriberId": "u1", "code": "SUBSCRIBER_NOT_FOUND",
                                                  "message": "Subscriber with ID 'u1' could not be found."}]}})
    novu.script("POST", "/v2/topics/team-7/subscriptions", refused, refused)

    response = function().post(GROUP)

    assert response.status_code == 503
    assert response.json()["events"][0]["reason"] == (
        "Novu did not subscribe to the topic: Subscriber with ID 'u1' could not be found."
    )


# -- device tokens → push credentials ----------------------------------------------------------------------


def test_a_device_token_becomes_push_credentials_before_the_trigger(function, novu):
    response = function({"devices": {"providerId": "fcm"}}).post(app_event("t-1"))

    assert response.status_code == 200, response.text
    assert received(novu) == [
        ("PATCH", "/v1/subscribers/u1/credentials", {"providerId": "fcm", "credentials": {"deviceTokens": [TOKEN]}}),
        ("POST", TRIGGER, {"name": "app-opened", "to": {"subscriberId": "u1", "email": "ann@example.com"},
                           "payload": {"_segment": {"type": "track", "event": "App Opened", "messageId": "t-1",
                                                    "userId": "u1"}},
                           "transactionId": novu.calls("POST", TRIGGER)[0].body["transactionId"]}),
    ]


def test_the_provider_can_follow_the_device_type(function, novu):
    served = function({"devices": [
        {"providerId": "apns", "integrationIdentifier": "apns-prod",
         "when": {"path": "context.device.type", "equals": "ios"}},
        {"providerId": "fcm"},
    ]})

    served.post([app_event("t-1", device_type="ios", token="ios-token"),
                 app_event("t-2", user="u2", device_type="android", token="android-token")])

    credentials = {call.path: call.body for call in novu.calls("PATCH")}
    assert credentials == {
        "/v1/subscribers/u1/credentials": {"providerId": "apns", "credentials": {"deviceTokens": ["ios-token"]},
                                           "integrationIdentifier": "apns-prod"},
        "/v1/subscribers/u2/credentials": {"providerId": "fcm", "credentials": {"deviceTokens": ["android-token"]}},
    }


def test_identify_upserts_the_subscriber_then_its_credentials(function, novu):
    identify = {"type": "identify", "userId": "u1", "messageId": "i-1", "traits": {"email": "ann@example.com"},
                "context": {"device": {"token": TOKEN}}}

    response = function({"devices": {"providerId": "apns"}}).post(identify)

    assert response.status_code == 200, response.text
    assert received(novu) == [
        ("POST", "/v2/subscribers", {"subscriberId": "u1", "email": "ann@example.com"}),
        ("PATCH", "/v1/subscribers/u1/credentials", {"providerId": "apns", "credentials": {"deviceTokens": [TOKEN]}}),
    ]


def test_without_a_devices_mapping_tokens_are_ignored(function, novu):
    function().post(app_event("t-1"))

    assert [call.method for call in novu.calls()] == ["POST"]


def test_the_same_token_is_registered_once(function, novu):
    served = function({"devices": {"providerId": "fcm"}})
    served.post(app_event("t-1"))

    served.post(app_event("t-2"))
    served.post(app_event("t-3", token="a-new-token"))

    assert [call.body["credentials"]["deviceTokens"] for call in novu.calls("PATCH")] == [[TOKEN], ["a-new-token"]]
    assert len(novu.calls("POST", TRIGGER)) == 3


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        (12345, "context.device.token must be a string, got int"),
        ({"value": TOKEN}, "context.device.token must be a string, got dict"),
        ([TOKEN], "context.device.token must be a string, got list"),
        (True, "context.device.token must be a string, got bool"),
        ("x" * 4097, f"context.device.token is longer than {planner.DEVICE_TOKEN_LENGTH} characters"),
    ],
)
def test_a_device_token_that_cannot_be_taken_is_rejected_with_the_reason(function, novu, token, reason):
    served = function({"devices": {"providerId": "fcm"}})

    alone = served.post(app_event("t-1", token=token))
    in_batch = served.post([app_event("t-2", token=token), app_event("t-3", user="u2")])

    assert alone.status_code == 400
    assert alone.json()["message"] == reason
    assert [(entry["outcome"], entry["reason"], entry["type"]) for entry in in_batch.json()["events"]] == [
        ("rejected", reason, "track"), ("delivered", "done", "track"),
    ]
    assert [(call.method, call.path) for call in novu.calls()] == [
        ("PATCH", "/v1/subscribers/u2/credentials"), ("POST", TRIGGER),
    ]


def test_a_token_of_the_longest_length_is_taken(function, novu):
    token = "t" * planner.DEVICE_TOKEN_LENGTH
    response = function({"devices": {"providerId": "fcm"}}).post(app_event("t-1", token=token))

    assert response.status_code == 200, response.text
    assert novu.calls("PATCH")[0].body["credentials"]["deviceTokens"] == [token]


def test_an_unmapped_page_still_registers_its_token(function, novu):
    page = {"type": "page", "userId": "u1", "messageId": "p-1", "name": "Home",
            "context": {"device": {"token": TOKEN}}}

    response = function({"devices": {"providerId": "fcm"}}).post(page)

    assert outcomes(response) == ["delivered"]
    assert [(call.method, call.path) for call in novu.calls()] == [("PATCH", "/v1/subscribers/u1/credentials")]


@pytest.mark.parametrize("status", [400, 404])
def test_credentials_for_a_subscriber_novu_does_not_know_create_the_subscriber_first(function, novu, status):
    novu.script("PATCH", "/v1/subscribers/u1/credentials",
                Scripted(status, error_body(status, "SubscriberId: u1 not found", "Bad Request")))

    response = function({"devices": {"providerId": "fcm"}}).post(app_event("t-1"))

    assert outcomes(response) == ["delivered"]
    assert [(method, path) for method, path, _ in received(novu)] == [
        ("PATCH", "/v1/subscribers/u1/credentials"),
        ("POST", "/v2/subscribers"),
        ("PATCH", "/v1/subscribers/u1/credentials"),
        ("POST", TRIGGER),
    ]
    assert novu.calls("POST", "/v2/subscribers")[0].body == {"subscriberId": "u1", "email": "ann@example.com"}


def test_a_provider_novu_has_no_integration_for_is_refused_but_the_trigger_goes(function, novu):
    message = "Subscribers environment (env-1) do not have active fcm integration."
    novu.script("PATCH", "/v1/subscribers/", Scripted(400, error_body(400, message, "Bad Request")))

    response = function({"devices": {"providerId": "fcm"}}).post(app_event("t-1"))

    assert response.status_code == 400
    assert response.json()["message"] == f"Novu refused the request (400): {message}"
    assert len(novu.calls("POST", TRIGGER)) == 1


def test_a_failed_subscriber_creation_is_that_operations_failure(function, novu):
    novu.script("PATCH", "/v1/subscribers/", Scripted(404, error_body(404, "SubscriberId: u1 not found")))
    novu.script("POST", "/v2/subscribers", Scripted(503, "down"))

    response = function({"devices": {"providerId": "fcm"}}).post(app_event("t-1"))

    assert response.status_code == 503
    assert novu.calls("POST", TRIGGER) == []  # the user's trigger waits for the credentials


# -- alias, anonymous events --------------------------------------------------------------------------------


def test_alias_is_skipped_with_the_reason(function, novu):
    response = function({"devices": {"providerId": "fcm"}}).post(
        {**json.loads((DATA / "alias.json").read_text()), "context": {"device": {"token": TOKEN}}}
    )

    assert response.status_code == 200, response.text
    [entry] = response.json()["events"]
    assert (entry["outcome"], entry["reason"]) == ("skipped", "alias events are not mapped: Novu cannot merge subscribers")
    assert novu.calls() == []


ANONYMOUS_GROUP = {"type": "group", "anonymousId": "anon-1", "messageId": "g-anon", "groupId": "team-7"}
ANONYMOUS_PAGE = {"type": "page", "anonymousId": "anon-1", "messageId": "p-anon", "name": "Pricing"}


def test_anonymous_events_are_skipped_by_default(function, novu):
    response = function({"page": {"Pricing": "pricing-follow-up"}}).post([ANONYMOUS_GROUP, ANONYMOUS_PAGE])

    assert [(entry["outcome"], entry["reason"]) for entry in response.json()["events"]] == [
        ("skipped", "anonymous event (no userId) and ANONYMOUS_EVENTS=skip")
    ] * 2
    assert novu.calls() == []


def test_anonymous_events_use_the_anonymous_id_when_asked(function, novu):
    served = function({"page": {"Pricing": "pricing-follow-up"}}, ANONYMOUS_EVENTS="anonymous-id")

    response = served.post([ANONYMOUS_GROUP, ANONYMOUS_PAGE])

    assert outcomes(response) == ["delivered", "delivered"]
    assert novu.calls("POST", "/v2/topics/team-7/subscriptions")[0].body == {"subscriptions": ["anon-1"]}
    assert novu.calls("POST", TRIGGER)[0].body["to"] == {"subscriberId": "anon-1"}
