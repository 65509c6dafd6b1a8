"""The mapping's reach into Novu's trigger: ``transactionKey`` and ``cancel`` (the abandoned cart called off
by the order, in either order of arrival), ``actor``, ``tenant``, ``context``, ``overrides``, and Segment
Engage audiences as topic memberships. Over real HTTP: the served function, the Novu stand-in, exact calls."""

from __future__ import annotations

import pytest

from segment_novu.mapping import planner, rules
from segment_novu.mapping.rules import MappingError
from tests.novu_contract import validate_request

TRIGGER = "/v1/events/trigger"
CART_MAPPING = {
    "track": {
        "Cart Abandoned": {"workflow": "cart-reminder", "transactionKey": "properties.cart_id",
                           "actor": "properties.seller_id", "tenant": "properties.org_id",
                           "context": {"org": "properties.org_id"},
                           "overrides": {"providers": {"fcm": {"data": {"kind": "cart"}}}}},
        "Order Completed": ["order-confirmation", {"cancel": "cart-reminder", "transactionKey": "properties.cart_id"}],
    },
}
CART_ID = "cart-7"
CART_TRANSACTION = planner.keyed_transaction_id("cart-reminder", CART_ID)


def abandoned(message_id: str = "c-1", cart: str = CART_ID) -> dict:
    return {"type": "track", "userId": "ann", "messageId": message_id, "event": "Cart Abandoned",
            "properties": {"cart_id": cart, "seller_id": "seller-9", "org_id": "org-acme", "total": 42}}


def ordered(message_id: str = "o-1", cart: str = CART_ID) -> dict:
    return {"type": "track", "userId": "ann", "messageId": message_id, "event": "Order Completed",
            "properties": {"cart_id": cart}}


def calls(novu, since: int = 0) -> list[tuple[str, str]]:
    for call in novu.calls():
        validate_request(call)
    return [(call.method, call.path) for call in novu.calls()[since:]]


def outcomes(response) -> list[tuple[str, str]]:
    return [(entry["outcome"], entry["reason"]) for entry in response.json()["events"]]


# -- transactionKey, actor, tenant, context, overrides ----------------------------------------------------


def test_a_target_sends_its_transaction_key_actor_tenant_context_and_overrides(with_mapping, novu):
    function = with_mapping(CART_MAPPING)

    first = function.post(abandoned())
    resent_with_another_message_id = function.post(abandoned("c-2"))

    assert first.status_code == resent_with_another_message_id.status_code == 200
    bodies = [call.body for call in novu.calls("POST", TRIGGER)]
    assert bodies[0] == {
        "name": "cart-reminder", "to": {"subscriberId": "ann"},
        "payload": {"cart_id": CART_ID, "seller_id": "seller-9", "org_id": "org-acme", "total": 42,
                    "_segment": {"type": "track", "event": "Cart Abandoned", "messageId": "c-1", "userId": "ann"}},
        "transactionId": CART_TRANSACTION,
        "actor": "seller-9", "tenant": "org-acme", "context": {"org": "org-acme"},
        "overrides": {"providers": {"fcm": {"data": {"kind": "cart"}}}},
    }
    # The key, not the event, makes the id: a second event for the same cart is the same run, and the
    # ledger knows it is sent.
    assert len(bodies) == 1
    assert outcomes(resent_with_another_message_id) == [("duplicate", "already delivered (ledger)")]


def test_a_target_whose_transaction_key_is_missing_is_skipped_with_the_reason(with_mapping, novu):
    event = abandoned()
    del event["properties"]["cart_id"]

    response = with_mapping(CART_MAPPING).post(event)

    assert outcomes(response) == [
        ("skipped", "no transactionKey for workflow 'cart-reminder': properties.cart_id is missing")]
    assert novu.calls() == []


def test_optional_fields_whose_values_are_missing_are_left_out(with_mapping, novu):
    event = abandoned()
    for name in ("seller_id", "org_id"):
        del event["properties"][name]

    with_mapping(CART_MAPPING).post(event)

    body = novu.calls("POST", TRIGGER)[0].body
    assert set(body) == {"name", "to", "payload", "transactionId", "overrides"}


# -- cancel ----------------------------------------------------------------------------------------------


def test_the_order_cancels_the_cart_reminder_its_trigger_started(with_mapping, novu):
    function = with_mapping(CART_MAPPING)
    function.post(abandoned())

    response = function.post(ordered())

    assert response.status_code == 200, response.text
    assert calls(novu, 1) == [("POST", TRIGGER), ("DELETE", f"{TRIGGER}/{CART_TRANSACTION}")]
    assert novu.cancelled == [CART_TRANSACTION]
    assert response.json()["events"][0]["outcome"] == "delivered"


def test_a_cancel_with_nothing_to_cancel_is_done(with_mapping, novu):
    """Novu answers 200 false when no run is pending (and some versions 404): both count as done."""
    response = with_mapping(CART_MAPPING).post(ordered(cart="cart-never-abandoned"))

    assert response.status_code == 200
    assert response.json()["events"][0]["outcome"] == "delivered"
    assert novu.cancelled == [planner.keyed_transaction_id("cart-reminder", "cart-never-abandoned")]


def test_a_cancel_that_arrives_before_its_trigger_still_wins(with_mapping, novu):
    function = with_mapping(CART_MAPPING)
    function.post(ordered())

    late = function.post(abandoned())

    assert late.status_code == 200
    assert outcomes(late) == [("skipped", "cancelled: a cancel for this transactionKey arrived first")]
    assert novu.calls("POST", TRIGGER)[0].body["name"] == "order-confirmation"
    assert len(novu.calls("POST", TRIGGER)) == 1


def test_a_cancel_before_its_trigger_in_one_batch_wins(with_mapping, novu):
    response = with_mapping(CART_MAPPING).post([ordered(), abandoned()])

    assert response.status_code == 200
    assert outcomes(response)[1] == ("skipped", "cancelled: a cancel for this transactionKey arrived first")
    assert [call.body["name"] for call in novu.calls("POST", TRIGGER)] == ["order-confirmation"]


def test_a_cancel_received_by_one_instance_stops_the_trigger_at_another(with_mapping, novu, redis_url):
    first = with_mapping(CART_MAPPING, REDIS_URL=redis_url)
    second = with_mapping(CART_MAPPING, REDIS_URL=redis_url)
    first.post(ordered())

    late = second.post(abandoned())

    assert outcomes(late) == [("skipped", "cancelled: a cancel for this transactionKey arrived first")]


def test_a_cancel_that_must_be_retried_holds_back_nothing_it_should_not(with_mapping, novu):
    from tests.novu_standin import Scripted, error_body

    function = with_mapping(CART_MAPPING)
    function.post(abandoned())
    novu.script("DELETE", TRIGGER, Scripted(503, error_body(503, "down")))

    failed = function.post(ordered())
    resent = function.post(ordered())

    assert failed.status_code == 503 and resent.status_code == 200
    assert novu.cancelled == [CART_TRANSACTION]  # the scripted 503 never reached the cancel handler
    assert calls(novu, 1).count(("DELETE", f"{TRIGGER}/{CART_TRANSACTION}")) == 2


# -- audiences ---------------------------------------------------------------------------------------------

AUDIENCES = {"audiences": {"vip_users": {"topic": {"value": "vip-users"}},
                           "churn_risk": {"topic": "properties.audience_key"},
                           "internal_test": {"ignore": True}}}
SUBSCRIPTIONS = "/v2/topics/vip-users/subscriptions"


def audience_event(name: str, key: str, message_id: str, user: str = "ann") -> dict:
    return {"type": "track", "userId": user, "messageId": message_id, "event": name,
            "properties": {"audience_key": key, "audience_name": key}}


def identify(message_id: str, **traits) -> dict:
    return {"type": "identify", "userId": "ann", "messageId": message_id, "traits": traits}


def test_an_identify_trait_for_an_audience_subscribes_and_unsubscribes(with_mapping, novu):
    function = with_mapping(AUDIENCES)

    entered = function.post(identify("i-1", email="ann@example.com", vip_users=True))
    exited = function.post(identify("i-2", vip_users=False))

    assert entered.status_code == exited.status_code == 200
    assert calls(novu) == [
        ("POST", "/v2/subscribers"), ("POST", "/v2/topics"), ("POST", SUBSCRIPTIONS),
        ("POST", "/v2/subscribers"), ("DELETE", SUBSCRIPTIONS),
    ]
    assert novu.calls("POST", "/v2/topics")[0].body == {"key": "vip-users"}
    assert novu.calls("DELETE", SUBSCRIPTIONS)[0].body == {"subscriptions": ["ann"]}


def test_engage_audience_events_move_the_user_in_and_out_and_back_in(with_mapping, novu):
    function = with_mapping(AUDIENCES)

    for index, name in enumerate(["Audience Entered", "Audience Exited", "Audience Entered"]):
        response = function.post(audience_event(name, "vip_users", f"a-{index}"))
        assert response.status_code == 200, response.text

    memberships = [(method, path) for method, path in calls(novu) if path == SUBSCRIPTIONS]
    assert memberships == [("POST", SUBSCRIPTIONS), ("DELETE", SUBSCRIPTIONS), ("POST", SUBSCRIPTIONS)]


def test_a_resent_exit_is_a_duplicate_and_the_order_holds_in_a_batch(with_mapping, novu):
    function = with_mapping(AUDIENCES)
    batch = [audience_event("Audience Entered", "vip_users", "a-1"), audience_event("Audience Exited", "vip_users", "a-2")]

    function.post(batch)
    resent = function.post(batch)

    memberships = [(method, path) for method, path in calls(novu) if path == SUBSCRIPTIONS]
    assert memberships == [("POST", SUBSCRIPTIONS), ("DELETE", SUBSCRIPTIONS)]
    assert [entry["outcome"] for entry in resent.json()["events"]] == ["duplicate", "duplicate"]


def test_an_audience_topic_may_come_from_the_event(with_mapping, novu):
    with_mapping(AUDIENCES).post(audience_event("Audience Entered", "churn_risk", "a-1"))

    assert ("POST", "/v2/topics/churn_risk/subscriptions") in calls(novu)


def test_an_ignored_audience_is_skipped_and_an_unmapped_one_is_an_ordinary_event(with_mapping, novu):
    function = with_mapping({**AUDIENCES, "defaultRule": False})

    ignored = function.post(audience_event("Audience Entered", "internal_test", "a-1"))
    unmapped = function.post(audience_event("Audience Entered", "someone_elses", "a-2"))

    assert outcomes(ignored) == [("skipped", "audience 'internal_test' is ignored by the mapping")]
    assert outcomes(unmapped) == [
        ("skipped", "event 'Audience Entered' is not in the mapping and the default rule is off")]
    assert novu.calls() == []


# -- the mapping file ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "document, message",
    [
        ({"track": {"A": {"cancel": "cart-reminder"}}},
         'mapping.json: track."A": a cancel needs the transactionKey its trigger was given'),
        ({"track": {"A": [{"cancel": "cart-reminder", "transactionKey": "properties.x", "workflow": "w"}]}},
         "mapping.json: track.\"A\"[0]: unknown key 'workflow'; allowed here: cancel, transactionKey, when"),
        ({"track": {"A": {"workflow": "w", "overrides": "fcm"}}},
         'mapping.json: track."A".overrides: expected an object of provider → settings, passed to Novu as it is'),
        ({"track": {"A": {"workflow": "w", "context": {"org": {"value": {"id": 1}}}}}},
         'mapping.json: track."A".context."org".value: must be a string or a number, got {"id": 1}'),
        ({"audiences": {"vip": {"topic": "properties.x", "ignore": True}}},
         'mapping.json: audiences."vip": needs exactly one of topic or ignore'),
        ({"audiences": {"vip": {"topics": "x"}}},
         "mapping.json: audiences.\"vip\": unknown key 'topics' (did you mean 'topic'?); allowed here: topic, ignore"),
        ({"audiences": ["vip"]},
         'mapping.json: audiences: expected an object of audience key → {"topic": …} or {"ignore": true}'),
    ],
)
def test_mistakes_in_the_new_entries_are_refused_with_their_place(document, message):
    with pytest.raises(MappingError) as caught:
        rules.parse(document, "mapping.json")
    assert str(caught.value) == message
