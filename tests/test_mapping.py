import json
import re
from pathlib import Path

import pytest

from segment_novu.mapping import operations, planner, rules
from segment_novu.mapping.rules import Rules
from segment_novu.receive import events

EXAMPLES = Path(__file__).parent / "data" / "segment"
DEFAULTS = Rules()
TRANSACTION_ID = re.compile(r"^sgmt-[0-9a-f]{40}$")


def example(name: str, index: int = 0) -> events.Event:
    return events.parse(json.loads((EXAMPLES / f"{name}.json").read_text(encoding="utf-8")), index)


def event(**fields) -> events.Event:
    return events.parse(fields, 0)


def track(**fields) -> events.Event:
    return event(**{"type": "track", "userId": "u1", "event": "Order Completed", **fields})


def only_operation(plan: planner.Plan) -> operations.Operation:
    assert plan.skip_reason is None
    (operation,) = plan.operations
    return operation


def skip_reason(plan: planner.Plan) -> str:
    assert plan.operations == ()
    return plan.skip_reason


def mapping_rules(track_rules: dict, default_rule: bool = True) -> Rules:
    return rules.parse({"defaultRule": default_rule, "track": track_rules}, "test")


# identify → upsert the subscriber


@pytest.mark.parametrize(
    "name, subscriber",
    [
        (
            "identify-peter-gibbons",
            {
                "subscriberId": "97980cfea0067",
                "email": "peter@example.com",
                "firstName": "Peter",
                "lastName": "Gibbons",
                "data": {"logins": 5, "plan": "premium"},
            },
        ),
        (
            "identify-full-with-address",
            {
                "subscriberId": "97980cfea0067",
                "email": "peter@example.com",
                "firstName": "Peter",
                "lastName": "Gibbons",
                "data": {
                    "plan": "premium",
                    "logins": 5,
                    "address": {
                        "street": "6th St",
                        "city": "San Francisco",
                        "state": "CA",
                        "postalCode": "94103",
                        "country": "USA",
                    },
                },
            },
        ),
    ],
)
def test_identify_upserts_the_subscriber(name, subscriber):
    identify = example(name)
    operation = only_operation(planner.plan(identify, DEFAULTS))
    assert (operation.action, operation.method, operation.path) == ("upsert-subscriber", "POST", "/v2/subscribers")
    assert operation.body == subscriber
    assert operation.subscriber_id == "97980cfea0067"
    assert (operation.workflow, operation.is_trigger, operation.event_index) == (None, False, 0)
    assert re.fullmatch(r"upsert-subscriber:[0-9a-f]{40}", operation.key)
    assert only_operation(planner.plan(example(name), DEFAULTS)).key == operation.key


def test_identify_keeps_every_other_trait_in_data():
    traits = {
        "email": "ada@example.com",
        "phone": 4155550100,
        "avatar": "https://example.com/ada.png",
        "name": "Ada King Lovelace",
        "locale": "en-GB",
        "timezone": "Europe/London",
        "total billed": 830,
        "company": {"name": "Analytical Engines", "employees": 2},
        "vip": True,
        "tags": ["math", "poetry"],
    }
    operation = only_operation(planner.plan(event(type="identify", userId="ada", traits=traits), DEFAULTS))
    assert operation.body == {
        "subscriberId": "ada",
        "email": "ada@example.com",
        "firstName": "Ada",
        "lastName": "King Lovelace",
        "phone": "4155550100",
        "avatar": "https://example.com/ada.png",
        "locale": "en-GB",
        "timezone": "Europe/London",
        "data": {
            "total billed": 830,
            "company": {"name": "Analytical Engines", "employees": 2},
            "vip": True,
            "tags": ["math", "poetry"],
        },
    }


@pytest.mark.parametrize(
    "traits, context, expected",
    [
        ({"first_name": "Ada", "last_name": "Lovelace"}, {}, {"firstName": "Ada", "lastName": "Lovelace"}),
        ({"firstName": "Ada", "first_name": "Augusta"}, {}, {"firstName": "Ada"}),
        ({"firstName": " ", "first_name": "Augusta"}, {}, {"firstName": "Augusta"}),
        ({"name": "Cher"}, {}, {"firstName": "Cher"}),
        ({"name": "  Peter   Gibbons "}, {}, {"firstName": "Peter", "lastName": "Gibbons"}),
        ({"name": "Peter Gibbons", "lastName": "G."}, {}, {"lastName": "G."}),
        ({"email": None, "phone": False, "avatar": {}}, {}, {}),
        ({}, {"locale": "fr-FR", "timezone": "Europe/Paris"}, {"locale": "fr-FR", "timezone": "Europe/Paris"}),
        ({"locale": "de-DE"}, {"locale": "fr-FR"}, {"locale": "de-DE"}),
    ],
)
def test_subscriber_fields(traits, context, expected):
    assert planner.subscriber_fields(traits, context) == expected


def test_identify_with_snake_case_names():
    traits = {"first_name": "Ada", "last_name": "Lovelace", "plan": "pro"}
    identify = event(type="identify", userId="ada", traits=traits)
    assert only_operation(planner.plan(identify, DEFAULTS)).body == {
        "subscriberId": "ada",
        "firstName": "Ada",
        "lastName": "Lovelace",
        "data": {"plan": "pro"},
    }


def test_identify_without_extra_traits_has_no_data():
    identify = event(type="identify", userId="ada", traits={"email": "ada@example.com"})
    assert only_operation(planner.plan(identify, DEFAULTS)).body == {"subscriberId": "ada", "email": "ada@example.com"}


# track → trigger


def test_track_with_context_locale_and_timezone():
    report = example("track-report-submitted-common-fields")
    operation = only_operation(planner.plan(report, DEFAULTS))
    assert (operation.action, operation.method, operation.path) == ("trigger", "POST", "/v1/events/trigger")
    assert (operation.workflow, operation.subscriber_id, operation.by_default_rule) == (
        "report-submitted", "97980cfea0067", True,
    )
    assert operation.body == {
        "name": "report-submitted",
        "to": {"subscriberId": "97980cfea0067", "locale": "en-US", "timezone": "Europe/Amsterdam"},
        "payload": {
            "_segment": {
                "type": "track",
                "event": "Report Submitted",
                "messageId": "022bb90c-bbac-11e4-8dfc-aa07a5b093db",
                "userId": "97980cfea0067",
                "anonymousId": "507f191e810c19729de860ea",
                "timestamp": "2015-12-10T04:08:31.905Z",
            }
        },
        "transactionId": planner.transaction_id(report, "report-submitted"),
    }
    assert TRANSACTION_ID.match(operation.body["transactionId"])
    assert operation.key == operation.body["transactionId"]


def test_track_payload_is_the_properties_plus_segment_metadata():
    order = example("track-order-completed")
    operation = only_operation(planner.plan(order, DEFAULTS))
    assert operation.body == {
        "name": "order-completed",
        "to": {"subscriberId": "customer-12345"},
        "payload": {
            "order_id": "82f250a3-32eb-40be-95fc-77e685ed8448",
            "email": "joe.customer@example.com",
            "total": 54.82,
            "currency": "USD",
            "friendbuyAttributes": {"orderNumber": "3", "promotion": "black friday"},
            "_segment": {"type": "track", "event": "Order Completed", "userId": "customer-12345"},
        },
        "transactionId": planner.transaction_id(order, "order-completed"),
    }


def test_track_recipient_takes_subscriber_fields_from_context_traits():
    signed_up = track(
        event="Signed Up",
        messageId="m-1",
        context={
            "traits": {"email": "ada@example.com", "name": "Ada Lovelace", "plan": "pro"},
            "locale": "en-GB",
            "timezone": "Europe/London",
            "ip": "1.2.3.4",
        },
        properties={"plan": "pro"},
    )
    assert only_operation(planner.plan(signed_up, DEFAULTS)).body["to"] == {
        "subscriberId": "u1",
        "email": "ada@example.com",
        "firstName": "Ada",
        "lastName": "Lovelace",
        "locale": "en-GB",
        "timezone": "Europe/London",
    }


def test_context_traits_without_subscriber_fields_give_a_bare_recipient():
    clicked = example("track-button-clicked-context-traits")
    assert only_operation(planner.plan(clicked, DEFAULTS)).body["to"] == {"subscriberId": "AiUGstSDIg"}


@pytest.mark.parametrize(
    "name, workflow",
    [
        ("Order Completed", "order-completed"),
        ("  Hello, World!! ", "hello-world"),
        ("Signed_Up", "signed-up"),
        ("checkout.step-2", "checkout-step-2"),
        ("ALREADY-slug", "already-slug"),
        ("404", "404"),
        ("!!!", ""),
        ("Café Ordered", "cafe-ordered"),
        ("Crème Brûlée Añadida", "creme-brulee-anadida"),
        ("Straße Gekauft", "strasse-gekauft"),
        ("Søknad Sendt", "soknad-sendt"),
        ("Łódź Visited", "lodz-visited"),
        ("注文完了", ""),
    ],
)
def test_workflow_for(name, workflow):
    assert planner.workflow_for(name) == workflow


@pytest.mark.parametrize("name", ["!!!", "注文完了"])
def test_event_name_without_a_workflow_identifier_is_skipped_saying_why(name):
    assert skip_reason(planner.plan(track(event=name), DEFAULTS)) == (
        f"event name {name!r} gives no workflow identifier (the default rule keeps letters a–z, accents folded, "
        "and digits): name its workflow in the mapping file"
    )


# transactionId


def test_transaction_id_is_deterministic_per_event_and_workflow():
    first, again = track(messageId="m-1"), track(messageId="m-1", sentAt="later")
    assert planner.transaction_id(first, "a") == planner.transaction_id(again, "a")
    assert planner.transaction_id(first, "a") != planner.transaction_id(first, "b")
    assert planner.transaction_id(first, "a") != planner.transaction_id(track(messageId="m-2"), "a")
    assert TRANSACTION_ID.match(planner.transaction_id(first, "a"))


def test_transaction_id_without_message_id_follows_the_content():
    base = track(properties={"total": 10})
    assert planner.transaction_id(base, "a") == planner.transaction_id(
        track(properties={"total": 10}, sentAt="2024-01-01T00:00:00Z", receivedAt="r", _metadata={}), "a"
    )
    assert planner.transaction_id(base, "a") != planner.transaction_id(track(properties={"total": 11}), "a")


# rules


def test_fan_out_gives_one_trigger_per_workflow():
    order = track(messageId="m-1", properties={"total": 10})
    plan = planner.plan(order, mapping_rules({"Order Completed": ["order-confirmation", "receipt-email"]}))
    assert plan.skip_reason is None
    assert [(op.workflow, op.by_default_rule, op.subscriber_id) for op in plan.operations] == [
        ("order-confirmation", False, "u1"),
        ("receipt-email", False, "u1"),
    ]
    confirmation, receipt = (op.body for op in plan.operations)
    assert [confirmation["name"], receipt["name"]] == ["order-confirmation", "receipt-email"]
    assert confirmation["transactionId"] == planner.transaction_id(order, "order-confirmation")
    assert receipt["transactionId"] == planner.transaction_id(order, "receipt-email")
    assert confirmation["transactionId"] != receipt["transactionId"]
    assert (confirmation["to"], confirmation["payload"]) == (receipt["to"], receipt["payload"])


def test_mapped_single_workflow_is_not_by_default_rule():
    operation = only_operation(planner.plan(track(), mapping_rules({"Order Completed": "receipt"}, False)))
    assert (operation.workflow, operation.by_default_rule) == ("receipt", False)


NOT_MAPPED = "event 'Order Completed' is not in the mapping and the default rule is off"


@pytest.mark.parametrize(
    "rule_set, reason",
    [
        (mapping_rules({"Order Completed": {"ignore": True}}), "event 'Order Completed' is ignored by the mapping"),
        (mapping_rules({}, default_rule=False), NOT_MAPPED),
        (mapping_rules({"Signed Up": "welcome"}, default_rule=False), NOT_MAPPED),
    ],
)
def test_track_skipped_by_the_rules(rule_set, reason):
    assert skip_reason(planner.plan(track(), rule_set)) == reason


# delete, other types, anonymous events


@pytest.mark.parametrize(
    "name, path",
    [("delete-partner-spec", "/v2/subscribers/507f191e81"), ("delete-subscription-arrays", "/v2/subscribers/5678")],
)
def test_delete_example(name, path):
    operation = only_operation(planner.plan(example(name), DEFAULTS))
    assert (operation.action, operation.method, operation.path, operation.body) == (
        "delete-subscriber", "DELETE", path, None,
    )
    assert re.fullmatch(r"delete-subscriber:[0-9a-f]{40}", operation.key)


@pytest.mark.parametrize(
    "user_id, path",
    [
        ("team/a b", "/v2/subscribers/team%2Fa%20b"),
        ("x?y#z&w=%", "/v2/subscribers/x%3Fy%23z%26w%3D%25"),
        ("zoë", "/v2/subscribers/zo%C3%AB"),
        ("../admin", "/v2/subscribers/%2E%2E%2Fadmin"),
    ],
)
def test_delete_quotes_the_subscriber_id(user_id, path):
    operation = only_operation(planner.plan(event(type="delete", userId=user_id), DEFAULTS))
    assert (operation.path, operation.subscriber_id) == (path, user_id)


@pytest.mark.parametrize(
    "name, reason",
    [
        ("page-home", "page events are not mapped to Novu"),
        ("screen-home", "screen events are not mapped to Novu"),
        ("alias", "alias events are not mapped: Novu cannot merge subscribers"),
    ],
)
def test_unmapped_types_are_skipped(name, reason):
    for anonymous_events in ("skip", "anonymous-id"):
        assert skip_reason(planner.plan(example(name), DEFAULTS, anonymous_events)) == reason


ANONYMOUS_SKIP = "anonymous event (no userId) and ANONYMOUS_EVENTS=skip"


@pytest.mark.parametrize(
    "anonymous",
    [
        {"type": "track", "anonymousId": "anon-1", "event": "Order Completed"},
        {"type": "identify", "anonymousId": "anon-1", "traits": {"email": "a@example.com"}},
    ],
)
def test_anonymous_events_skipped_by_default(anonymous):
    assert skip_reason(planner.plan(events.parse(anonymous, 0), DEFAULTS)) == ANONYMOUS_SKIP
    assert skip_reason(planner.plan(events.parse(anonymous, 0), DEFAULTS, "skip")) == ANONYMOUS_SKIP


def test_anonymous_track_uses_the_anonymous_id_when_asked():
    anonymous = event(type="track", anonymousId="anon-1", event="Order Completed")
    operation = only_operation(planner.plan(anonymous, DEFAULTS, "anonymous-id"))
    assert operation.subscriber_id == "anon-1"
    assert operation.body["to"] == {"subscriberId": "anon-1"}
    assert operation.body["payload"]["_segment"] == {
        "type": "track", "event": "Order Completed", "anonymousId": "anon-1"
    }


def test_anonymous_identify_uses_the_anonymous_id_when_asked():
    anonymous = event(type="identify", anonymousId="anon-1", traits={"email": "a@example.com"})
    operation = only_operation(planner.plan(anonymous, DEFAULTS, "anonymous-id"))
    assert operation.body == {"subscriberId": "anon-1", "email": "a@example.com"}


def test_user_id_wins_over_anonymous_id():
    operation = only_operation(planner.plan(track(anonymousId="anon-1"), DEFAULTS, "anonymous-id"))
    assert operation.subscriber_id == "u1"


def test_plan_keeps_the_event_and_its_index():
    order = events.parse({"type": "track", "userId": "u1", "event": "Order Completed"}, 7)
    plan = planner.plan(order, DEFAULTS)
    assert plan.event is order
    assert only_operation(plan).event_index == 7
