"""The mapping file's full format: targets with conditions, payload and recipient by path, topics,
page and screen mappings; every mistake refused at load with where it is. The planner is checked
pure (events → operations), then end to end over HTTP (the served function and the Novu stand-in).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from segment_novu.mapping import paths, planner, rules
from segment_novu.mapping.paths import MISSING
from segment_novu.mapping.rules import EventRule, MappingError, Target
from segment_novu.receive import events
from tests.novu_contract import validate_request

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SOURCE = "mapping.json"
ORDER = {
    "type": "track", "userId": "u1", "messageId": "m-1", "event": "Order Completed",
    "properties": {"order": {"id": "o-9", "items": [{"sku": "A-1"}, {"sku": "B-2"}]}, "total": 120,
                   "vip": True, "total billed": 130, "teamId": "team-7", "sellerId": "s-3"},
    "context": {"traits": {"email": "ann@example.com", "name": "Ann Lee"}, "locale": "en-GB"},
}


def parse(document) -> rules.Rules:
    return rules.parse(document, SOURCE)


def parse_error(document) -> str:
    with pytest.raises(MappingError) as caught:
        parse(document)
    return str(caught.value)


def event(body: dict | None = None, **fields) -> events.Event:
    return events.parse({**(body or ORDER), **fields}, 0)


def plan_for(entry, body: dict | None = None, section: str = "track", name: str = "Order Completed", **plan_options):
    return planner.plan(event(body), parse({section: {name: entry}}), **plan_options)


def only_trigger(plan: planner.Plan) -> dict:
    assert plan.skip_reason is None, plan.skip_reason
    (operation,) = plan.operations
    assert operation.is_trigger
    return operation.body


SEGMENT = {"type": "track", "event": "Order Completed", "messageId": "m-1", "userId": "u1"}


# -- paths -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, steps",
    [
        ("properties.total", ("properties", "total")),
        ("properties.order.id", ("properties", "order", "id")),
        ("properties.order.items[1].sku", ("properties", "order", "items", 1, "sku")),
        ('properties["total billed"]', ("properties", "total billed")),
        ('properties["a.b"]["c]d"].e', ("properties", "a.b", "c]d", "e")),
        ('["properties"].x', ("properties", "x")),
        ("context.traits.email", ("context", "traits", "email")),
        ("properties.émoji-ok_$", ("properties", "émoji-ok_$")),
    ],
)
def test_path_syntax(text, steps):
    assert paths.parse(text).steps == steps


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "a path must be a non-empty string"),
        (7, "a path must be a non-empty string"),
        ("properties..total", "expected a name at character 12, found '.'"),
        ("properties.", "expected a name at character 12, found the end"),
        (".properties", "expected a name at character 1, found '.'"),
        ("properties total", "unexpected ' ' at character 11"),
        ("properties[x]", 'expected [n] or ["key"] at character 11'),
        ("properties[-1]", 'expected [n] or ["key"] at character 11'),
        ('properties["total', "unterminated quoted key at character 12"),
        ('properties["a"b', "expected ] at character 15"),
    ],
)
def test_path_errors(text, message):
    with pytest.raises(paths.PathError) as caught:
        paths.parse(text)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    "text, value",
    [
        ("properties.order.id", "o-9"),
        ("properties.order.items[0].sku", "A-1"),
        ("properties.order.items[2].sku", MISSING),
        ('properties["total billed"]', 130),
        ("properties.order", {"id": "o-9", "items": [{"sku": "A-1"}, {"sku": "B-2"}]}),
        ("properties.order[0]", MISSING),  # an index into an object
        ("properties.order.items.sku", MISSING),  # a name into a list
        ("properties.absent.deeper", MISSING),
        ("properties.nothing", MISSING),  # null counts as missing
        ("context.traits.email", "ann@example.com"),
    ],
)
def test_path_resolution(text, value):
    body = {**ORDER, "properties": {**ORDER["properties"], "nothing": None}}
    assert paths.parse(text).resolve(body) == value


# -- the file: accepted --------------------------------------------------------------------------------


def test_the_original_format_is_a_subset():
    example = json.loads((PROJECT_ROOT / "examples" / "mapping.example.json").read_text())
    parsed = rules.parse(example, "mapping.example.json")
    assert parsed.track["Order Completed"].workflows == ("order-confirmation", "receipt-email")
    assert [cancel.workflow for cancel in parsed.track["Order Completed"].cancels] == ["cart-reminder"]
    assert parsed.track["Cart Abandoned"].targets[0].transaction_key is not None
    assert set(parsed.audiences) == {"vip_customers"}
    assert parsed.track["Signed Up"] == EventRule(targets=(Target("welcome"),))
    assert parsed.track["Button Clicked"].ignore


@pytest.mark.parametrize(
    "entry",
    [
        "welcome",
        ["welcome"],
        {"workflows": "welcome"},
        {"workflows": [{"workflow": "welcome"}]},
        {"workflow": "welcome"},
        [{"workflow": "welcome"}],
    ],
)
def test_short_and_long_forms_are_the_same_rule(entry):
    assert parse({"track": {"A": entry}}).track["A"] == EventRule(workflows=("welcome",))


def test_a_full_target():
    parsed = parse({"track": {"Order Completed": [{
        "workflow": "order-confirmation",
        "when": [{"path": "properties.total", "equals": 120}, {"path": "properties.order.id", "exists": True}],
        "payload": {"orderId": "properties.order.id", "total": {"path": "properties.total", "default": 0},
                    "brand": {"value": "Acme"}},
        "payloadMode": "replace",
        "to": {"email": "context.traits.email", "locale": {"value": "fr-FR"}},
    }]}})
    (target,) = parsed.track["Order Completed"].targets
    assert target.workflow == "order-confirmation"
    assert [(str(condition.path), condition.equals, condition.exists) for condition in target.when] == [
        ("properties.total", 120, None), ("properties.order.id", MISSING, True),
    ]
    assert {key: (str(field.path) if field.path else None, field.default) for key, field in target.payload.items()} == {
        "orderId": ("properties.order.id", MISSING),
        "total": ("properties.total", 0),
        "brand": (None, "Acme"),
    }
    assert target.payload_mode == "replace"
    assert sorted(target.to) == ["email", "locale"]
    assert parsed.workflows == {"order-confirmation"}


def test_every_section():
    parsed = parse({
        "$comment": "keys starting with $ are notes",
        "defaultRule": False,
        "track": {"A": "a"},
        "page": {"Pricing": "pricing-follow-up"},
        "screen": {"Checkout": [{"workflow": "checkout-nudge"}]},
        "group": {"topicKey": "traits.accountKey", "topicName": {"value": "Customers"}},
        "devices": [{"providerId": "apns", "when": {"path": "context.device.type", "equals": "ios"}},
                    {"providerId": "fcm", "integrationIdentifier": "fcm-main"}],
    })
    assert parsed.workflows == {"a", "pricing-follow-up", "checkout-nudge"}
    assert str(parsed.group.topic_key.path) == "traits.accountKey"
    assert parsed.group.topic_name.default == "Customers"
    assert [(device.provider_id, device.integration_identifier, len(device.when)) for device in parsed.devices] == [
        ("apns", None, 1), ("fcm", "fcm-main", 0),
    ]


def test_without_a_file_group_events_become_topics_and_devices_are_ignored():
    defaults = rules.Rules()
    assert (str(defaults.group.topic_key.path), str(defaults.group.topic_name.path)) == ("groupId", "traits.name")
    assert not defaults.group.ignore and defaults.devices == () and defaults.page == {} == defaults.screen


# -- the file: refused, with the place ------------------------------------------------------------------

WHERE = 'mapping.json: track."Order Completed"'


@pytest.mark.parametrize(
    "entry, message",
    [
        ([{"workflow": "a", "payload": {}, "template": "x"}],
         WHERE + "[0]: unknown key 'template'; allowed here: workflow, when, payload, payloadMode, to, topic, transactionKey, actor, tenant, context, overrides"),
        ([{"payload": {}}], WHERE + "[0]: needs workflow"),
        ([{"workflow": "a"}, {"when": {"path": "userId", "exists": True}}], WHERE + "[1]: needs workflow"),
        ({"workflows": ["a"], "payload": {}}, WHERE + ": unknown key 'payload' (it belongs to another form of this entry, not beside these keys); "
         "allowed here: workflows, ignore; or one trigger alone: workflow, when, payload, payloadMode, to, topic, "
         "transactionKey, actor, tenant, context, overrides; or one cancel alone: cancel, transactionKey, when"),
        ({"workflow": "bad id"},
         WHERE + ".workflow: a workflow identifier must be a non-empty string of letters, digits, '-', '_', '.' "
                 "or ':', got \"bad id\""),
        ([{"workflow": "a", "payloadMode": "append"}],
         WHERE + '[0].payloadMode: must be "merge" or "replace", got "append"'),
        ([{"workflow": "a", "to": {"email": "context.traits.email"}, "topic": "properties.teamId"}],
         WHERE + "[0]: to and topic together: a trigger goes to the user (to) or to a topic"),
        ([{"workflow": "a", "to": {"mail": "context.traits.email"}}],
         WHERE + "[0].to: unknown key 'mail' (did you mean 'email'?); allowed here: subscriberId, email, firstName, "
                 "lastName, phone, avatar, locale, timezone"),
        ([{"workflow": "a", "to": {}}],
         WHERE + "[0].to: expected an object of subscriber field → path or value (subscriberId, email, firstName, "
                 "lastName, phone, avatar, locale, timezone)"),
        ([{"workflow": "a", "to": {"email": {"value": ["a@example.com"]}}}],
         WHERE + '[0].to.email.value: must be a string or a number, got ["a@example.com"]'),
        ([{"workflow": "a", "to": {"email": {"path": "context.traits.email", "default": False}}}],
         WHERE + "[0].to.email.default: must be a string or a number, got false"),
        ([{"workflow": "a", "topic": {"value": None}}],
         WHERE + "[0].topic.value: must be a string or a number, got null"),
        ([{"workflow": "a", "payload": ["properties.total"]}],
         WHERE + "[0].payload: expected an object of payload key → path or value"),
        ([{"workflow": "a", "payload": {"_segment": "properties"}}],
         WHERE + "[0].payload: _segment is the bridge's own payload key"),
        ([{"workflow": "a", "payload": {"": "properties"}}],
         WHERE + "[0].payload: a payload key cannot be empty"),
        ([{"workflow": "a", "payload": {"total": 5}}],
         WHERE + '[0].payload."total": expected a path ("properties.total"), {"path": …, "default": …} or '
                 '{"value": …}, got 5'),
        ([{"workflow": "a", "payload": {"total": {"default": 0}}}],
         WHERE + '[0].payload."total": needs path (or value)'),
        ([{"workflow": "a", "payload": {"total": {"path": "properties.total", "fallback": 0}}}],
         WHERE + "[0].payload.\"total\": unknown key 'fallback'; allowed here: path, default"),
        ([{"workflow": "a", "payload": {"total": {"value": 1, "path": "properties.total"}}}],
         WHERE + "[0].payload.\"total\": unknown key 'path'; allowed here: value"),
        ([{"workflow": "a", "payload": {"total": "properties..total"}}],
         WHERE + '[0].payload."total": expected a name at character 12, found \'.\' in "properties..total"'),
        ([{"workflow": "a", "payload": {"total": {"path": "propertes.total"}}}],
         WHERE + '[0].payload."total".path: "propertes.total" does not start at a field of a Segment event '
                 "(properties, traits, context, event, name, userId, …)"),
        ([{"workflow": "a", "payload": {"total": {"path": 3}}}],
         WHERE + '[0].payload."total".path: a path must be a non-empty string in 3'),
        ([{"workflow": "a", "when": "properties.vip"}],
         WHERE + '[0].when: expected {"path": …, "equals": …} or {"path": …, "exists": true}'),
        ([{"workflow": "a", "when": []}],
         WHERE + "[0].when: an empty list; leave when out to always trigger"),
        ([{"workflow": "a", "when": {"equals": 1}}], WHERE + "[0].when: needs path"),
        ([{"workflow": "a", "when": {"path": "properties.vip"}}],
         WHERE + "[0].when: needs exactly one of equals or exists"),
        ([{"workflow": "a", "when": {"path": "properties.vip", "equals": True, "exists": True}}],
         WHERE + "[0].when: needs exactly one of equals or exists"),
        ([{"workflow": "a", "when": [{"path": "properties.vip", "exists": "yes"}]}],
         WHERE + "[0].when[0].exists: must be true or false"),
        ([{"workflow": "a", "when": {"path": "properties.vip", "equals": None}}],
         WHERE + '[0].when.equals: null never matches (a null value is missing); use "exists": false'),
        ([{"workflow": "a", "when": {"path": "properties.vip", "is": True}}],
         WHERE + "[0].when: unknown key 'is'; allowed here: path, equals, exists"),
    ],
)
def test_target_mistakes_are_refused_with_their_place(entry, message):
    assert parse_error({"track": {"Order Completed": entry}}) == message


@pytest.mark.parametrize(
    "document, message",
    [
        ({"pages": {}}, "mapping.json: unknown key 'pages' (did you mean 'page'?); allowed here: defaultRule, track, page, screen, group, devices, audiences"),
        ({"page": ["Home"]}, "mapping.json: page must be an object of page name → workflows"),
        ({"screen": {"Home": 3}}, 'mapping.json: screen."Home": expected a workflow, a list of workflows or an object'),
        ({"group": True}, 'mapping.json: group: expected {"ignore": true} or {"topicKey": …, "topicName": …}'),
        ({"group": {"key": "groupId"}},
         "mapping.json: group: unknown key 'key'; allowed here: ignore, topicKey, topicName"),
        ({"group": {"ignore": True, "topicKey": "groupId"}},
         "mapping.json: group: ignore and topic settings together make no sense"),
        ({"group": {"ignore": "yes"}}, "mapping.json: group.ignore: must be true or false"),
        ({"group": {"topicName": {"value": {"en": "x"}}}},
         'mapping.json: group.topicName.value: must be a string or a number, got {"en": "x"}'),
        ({"devices": {"providerId": "sendgrid"}},
         "mapping.json: devices.providerId: must be one of Novu's push providers (fcm, apns, expo, one-signal, "
         'pushpad, push-webhook, pusher-beams, appio), got "sendgrid"'),
        ({"devices": {}},
         "mapping.json: devices.providerId: must be one of Novu's push providers (fcm, apns, expo, one-signal, "
         "pushpad, push-webhook, pusher-beams, appio), got null"),
        ({"devices": []}, "mapping.json: devices: an empty list; leave devices out to ignore device tokens"),
        ({"devices": "fcm"}, 'mapping.json: devices: expected {"providerId": "fcm"} (or a list of those)'),
        ({"devices": [{"providerId": "fcm"}, {"providerId": "apns", "token": "context.device.token"}]},
         "mapping.json: devices[1]: unknown key 'token'; allowed here: providerId, integrationIdentifier, when"),
        ({"devices": {"providerId": "fcm", "integrationIdentifier": " "}},
         "mapping.json: devices.integrationIdentifier: must be a non-empty string"),
        ({"devices": {"providerId": "fcm", "when": {"path": "context.device.kind", "equals": "ios", "x": 1}}},
         "mapping.json: devices.when: unknown key 'x'; allowed here: path, equals, exists"),
    ],
)
def test_section_mistakes_are_refused_with_their_place(document, message):
    assert parse_error(document) == message


def test_a_file_with_a_byte_order_mark_is_read(tmp_path):
    path = tmp_path / "mapping.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps({"track": {"A": "a"}}).encode())
    assert rules.load(path).track["A"].workflows == ("a",)


def test_a_file_that_is_not_utf8_is_refused_with_the_byte(tmp_path):
    path = tmp_path / "mapping.json"
    path.write_bytes(b'{"track": {"Caf\xe9": "cafe"}}')
    with pytest.raises(MappingError) as caught:
        rules.load(path)
    assert str(caught.value) == "mapping.json: not UTF-8 text (byte 15)"


# -- the planner: targets -------------------------------------------------------------------------------


def test_payload_merge_puts_mapped_fields_on_top_of_the_properties():
    body = only_trigger(plan_for([{
        "workflow": "receipt",
        "payload": {"orderId": "properties.order.id", "total": {"path": "properties.shipping", "default": 0},
                    "vip": {"value": "gold"}, "firstSku": "properties.order.items[0].sku",
                    "coupon": "properties.coupon"},
    }]))
    assert body["payload"] == {
        **ORDER["properties"], "orderId": "o-9", "total": 0, "vip": "gold", "firstSku": "A-1", "_segment": SEGMENT,
    }


def test_payload_replace_sends_only_the_mapped_fields():
    body = only_trigger(plan_for([{
        "workflow": "receipt",
        "payloadMode": "replace",
        "payload": {"orderId": "properties.order.id", "billed": 'properties["total billed"]', "none": "properties.x"},
    }]))
    assert body["payload"] == {"orderId": "o-9", "billed": 130, "_segment": SEGMENT}


@pytest.mark.parametrize(
    "when, triggered",
    [
        ({"path": "properties.total", "equals": 120}, True),
        ({"path": "properties.total", "equals": 120.0}, True),
        ({"path": "properties.total", "equals": "120"}, False),  # JSON types are compared as they are
        ({"path": "properties.vip", "equals": True}, True),
        ({"path": "properties.vip", "equals": 1}, False),
        ({"path": "properties.order", "equals": {"id": "o-9", "items": [{"sku": "A-1"}, {"sku": "B-2"}]}}, True),
        ({"path": "properties.coupon", "exists": False}, True),
        ({"path": "properties.coupon", "exists": True}, False),
        ({"path": "context.traits.email", "exists": True}, True),
        ([{"path": "properties.vip", "equals": True}, {"path": "properties.total", "equals": 120}], True),
        ([{"path": "properties.vip", "equals": True}, {"path": "properties.total", "equals": 5}], False),
    ],
)
def test_conditions(when, triggered):
    plan = plan_for([{"workflow": "big-order", "when": when}])
    if triggered:
        assert only_trigger(plan)["name"] == "big-order"
    else:
        assert plan.operations == ()
        assert plan.skip_reason == "the conditions for workflow 'big-order' do not hold"


def test_conditions_choose_among_targets():
    plan = plan_for([
        {"workflow": "vip-receipt", "when": {"path": "properties.vip", "equals": True}},
        {"workflow": "receipt", "when": {"path": "properties.vip", "exists": False}},
        "order-log",
    ])
    assert [operation.workflow for operation in plan.operations] == ["vip-receipt", "order-log"]


def test_recipient_fields_override_the_traits():
    body = only_trigger(plan_for([{
        "workflow": "receipt",
        "to": {"email": "properties.billingEmail", "phone": {"value": 5551234}, "lastName": "properties.absent"},
    }], {**ORDER, "properties": {"billingEmail": "billing@example.com"}}))
    assert body["to"] == {"subscriberId": "u1", "email": "billing@example.com", "firstName": "Ann",
                          "lastName": "Lee", "locale": "en-GB", "phone": "5551234"}


def test_a_recipient_other_than_the_user_gets_only_the_mapped_fields_and_an_own_transaction_id():
    plan = plan_for([
        "order-confirmation",
        {"workflow": "order-confirmation", "to": {"subscriberId": "properties.sellerId"}},
    ])
    to_user, to_seller = plan.operations
    assert to_seller.body["to"] == {"subscriberId": "s-3"}
    assert (to_user.subscriber_id, to_seller.subscriber_id) == ("u1", "s-3")
    assert to_user.body["transactionId"] == planner.transaction_id(event(), "order-confirmation")
    assert to_seller.body["transactionId"] == planner.transaction_id(event(), "order-confirmation", "subscriber:s-3")
    assert to_user.body["transactionId"] != to_seller.body["transactionId"]


def test_a_recipient_path_that_is_missing_skips_that_target():
    plan = plan_for([{"workflow": "seller-alert", "to": {"subscriberId": "properties.buyerId"}}])
    assert plan.skip_reason == "no recipient for workflow 'seller-alert': properties.buyerId is missing"


def test_a_topic_target():
    operation = plan_for([{"workflow": "team-order", "topic": "properties.teamId"}]).operations[0]
    assert operation.body["to"] == {"type": "Topic", "topicKey": "team-7"}
    assert operation.subscriber_id == "u1"
    assert operation.body["transactionId"] == planner.transaction_id(event(), "team-order", "topic:team-7")


def test_a_topic_key_is_sanitised_like_a_group_id():
    body = only_trigger(plan_for([{"workflow": "team-order", "topic": "properties.team"}],
                                 {**ORDER, "properties": {"team": "Team Seven/EU"}}))
    assert body["to"]["topicKey"] == planner.topic_key("Team Seven/EU")
    assert re.fullmatch(r"Team-Seven-EU-[0-9a-f]{12}", body["to"]["topicKey"])


def test_a_missing_topic_skips_that_target():
    plan = plan_for([{"workflow": "team-order", "topic": "properties.squad"}])
    assert plan.skip_reason == "no topic for workflow 'team-order': properties.squad is missing"


# -- the planner: page and screen, the default rule, known workflows ------------------------------------


PAGE = {"type": "page", "userId": "u1", "messageId": "p-1", "name": "Pricing", "properties": {"plan": "pro"}}


def test_a_mapped_page_triggers_its_workflow():
    body = only_trigger(plan_for("pricing-follow-up", PAGE, section="page", name="Pricing"))
    assert body["payload"] == {"plan": "pro", "_segment": {"type": "page", "name": "Pricing", "messageId": "p-1",
                                                           "userId": "u1"}}


@pytest.mark.parametrize(
    "document, reason",
    [
        ({}, "page events are not mapped to Novu"),
        ({"track": {"Pricing": "x"}}, "page events are not mapped to Novu"),
        ({"page": {"Home": "welcome-back"}}, "page 'Pricing' is not in the mapping"),
        ({"page": {"Pricing": {"ignore": True}}}, "page 'Pricing' is ignored by the mapping"),
        ({"page": {"Pricing": "x"}, "screen": {}}, None),
    ],
)
def test_page_mapping_is_by_name_and_never_by_default_rule(document, reason):
    plan = planner.plan(event(PAGE), parse(document))
    assert plan.skip_reason == reason


def test_a_screen_is_mapped_by_its_own_section():
    screen = {**PAGE, "type": "screen", "name": "Checkout"}
    assert planner.plan(event(screen), parse({"page": {"Checkout": "x"}})).skip_reason == (
        "screen events are not mapped to Novu"
    )
    assert planner.plan(event(screen), parse({"screen": {"Home": "x"}})).skip_reason == (
        "screen 'Checkout' is not in the mapping"
    )
    assert only_trigger(planner.plan(event(screen), parse({"screen": {"Checkout": "x"}})))["name"] == "x"


@pytest.mark.parametrize(
    "known, triggered, reason",
    [
        (None, ["order-completed"], None),
        (frozenset({"order-completed", "welcome"}), ["order-completed"], None),
        (frozenset({"welcome"}), [], "no workflow 'order-completed' in Novu"),
    ],
)
def test_known_workflows_gate_the_default_rule(known, triggered, reason):
    plan = planner.plan(event(), rules.Rules(), known_workflows=known)
    assert [operation.workflow for operation in plan.operations] == triggered
    assert plan.skip_reason == reason


def test_known_workflows_never_gate_a_mapped_workflow():
    plan = planner.plan(event(), parse({"track": {"Order Completed": "receipt"}}), known_workflows=frozenset())
    assert [operation.workflow for operation in plan.operations] == ["receipt"]


@pytest.mark.parametrize(
    "body, document, uses",
    [
        (ORDER, {}, True),
        (ORDER, {"defaultRule": False}, False),
        (ORDER, {"track": {"Order Completed": "receipt"}}, False),
        (PAGE, {}, False),
    ],
)
def test_uses_default_rule(body, document, uses):
    assert planner.uses_default_rule(event(body), parse(document)) is uses


# -- over HTTP ---------------------------------------------------------------------------------------


def test_a_mapped_event_makes_the_exact_trigger(with_mapping, novu):
    function = with_mapping({"track": {"Order Completed": [
        {"workflow": "order-confirmation", "payloadMode": "replace",
         "payload": {"orderId": "properties.order.id", "skus": "properties.order.items", "brand": {"value": "Acme"}},
         "to": {"email": {"path": "properties.billingEmail", "default": "orders@example.com"}}},
        {"workflow": "big-order-alert", "when": {"path": "properties.total", "equals": 1000},
         "topic": "properties.teamId"},
        {"workflow": "team-order", "topic": "properties.teamId"},
    ]}})

    response = function.post(ORDER)

    assert response.status_code == 200, response.text
    assert response.json()["events"][0]["workflows"] == ["order-confirmation", "team-order"]
    sent = sorted((call.body for call in novu.calls("POST", "/v1/events/trigger")), key=lambda body: body["name"])
    assert sent == [
        {"name": "order-confirmation",
         "to": {"subscriberId": "u1", "email": "orders@example.com", "firstName": "Ann", "lastName": "Lee",
                "locale": "en-GB"},
         "payload": {"orderId": "o-9", "skus": [{"sku": "A-1"}, {"sku": "B-2"}], "brand": "Acme", "_segment": SEGMENT},
         "transactionId": planner.transaction_id(event(), "order-confirmation")},
        {"name": "team-order", "to": {"type": "Topic", "topicKey": "team-7"},
         "payload": {**ORDER["properties"], "_segment": SEGMENT},
         "transactionId": planner.transaction_id(event(), "team-order", "topic:team-7")},
    ]
    assert len(novu.calls()) == 2
    for call in novu.calls():
        validate_request(call)


def test_an_event_no_condition_holds_for_is_skipped_without_a_call(with_mapping, novu):
    function = with_mapping({"track": {"Order Completed": [
        {"workflow": "big-order-alert", "when": {"path": "properties.total", "equals": 1000}}]}})

    response = function.post(ORDER)

    assert response.status_code == 200, response.text
    [entry] = response.json()["events"]
    assert (entry["outcome"], entry["reason"]) == ("skipped", "the conditions for workflow 'big-order-alert' do not hold")
    assert novu.calls() == []


def test_a_mapped_page_over_http(with_mapping, novu):
    function = with_mapping({"page": {"Pricing": "pricing-follow-up"}})

    response = function.post([PAGE, {**PAGE, "messageId": "p-2", "name": "Home"}])

    assert response.status_code == 200, response.text
    assert [entry["outcome"] for entry in response.json()["events"]] == ["delivered", "skipped"]
    [call] = novu.calls()
    assert (call.method, call.path, call.body) == ("POST", "/v1/events/trigger", {
        "name": "pricing-follow-up", "to": {"subscriberId": "u1"},
        "payload": {"plan": "pro", "_segment": {"type": "page", "name": "Pricing", "messageId": "p-1", "userId": "u1"}},
        "transactionId": planner.transaction_id(event(PAGE), "pricing-follow-up"),
    })


@pytest.mark.parametrize(
    "document, message",
    [
        ({"track": {"Order Completed": [{"workflow": "a", "payload": {"total": "properties..total"}}]}},
         'configuration error: mapping.json: track."Order Completed"[0].payload."total": expected a name at '
         "character 12, found '.' in \"properties..total\""),
        ({"devices": {"providerId": "gcm"}},
         "configuration error: mapping.json: devices.providerId: must be one of Novu's push providers (fcm, apns, "
         'expo, one-signal, pushpad, push-webhook, pusher-beams, appio), got "gcm"'),
    ],
)
def test_a_broken_file_answers_500_with_what_and_where_and_calls_nobody(with_mapping, novu, document, message):
    function = with_mapping(document)

    for _ in range(2):  # every request, until the file is fixed
        response = function.post(ORDER)
        assert response.status_code == 500
        assert response.json() == {"message": message}
    assert novu.calls() == []


def test_two_targets_of_one_workflow_are_two_triggers_with_their_own_transaction_ids(with_mapping, novu):
    function = with_mapping({"track": {"Order Completed": [
        {"workflow": "welcome", "payload": {"step": {"value": "first"}}},
        {"workflow": "welcome", "payload": {"step": {"value": "second"}}},
    ]}})

    first = function.post(ORDER)
    resent = function.post(ORDER)

    assert first.status_code == resent.status_code == 200, first.text
    assert [entry["outcome"] for entry in resent.json()["events"]] == ["duplicate"]
    sent = novu.calls("POST", "/v1/events/trigger")
    assert sorted(call.body["payload"]["step"] for call in sent) == ["first", "second"]
    assert len({call.body["transactionId"] for call in sent}) == 2
    assert len(novu.accepted) == 2


@pytest.mark.parametrize(
    "document, message",
    [
        ({"track": {"Twice": ["welcome", "welcome"]}},
         'track."Twice"[1]: the same trigger as [0] (workflow \'welcome\')'),
        ({"track": {"Twice": {"workflows": [{"workflow": "w", "to": {"email": "properties.a"}}, "x",
                                            {"workflow": "w", "to": {"email": "properties.a"}}]}}},
         'track."Twice".workflows[2]: the same trigger as [0] (workflow \'w\')'),
    ],
)
def test_targets_alike_in_every_field_are_refused_with_their_location(document, message):
    assert message in parse_error(document)


# -- docs/mapping.md's examples are valid mapping files ---------------------------------------------------------


def _documented_mapping_examples() -> list[dict]:
    page = (PROJECT_ROOT / "docs" / "mapping.md").read_text(encoding="utf-8")
    section = page.split("\n## Mapping file", 1)[1].split("\n## ", 1)[0]
    blocks = [json.loads(block) for block in re.findall(r"```json\n(.*?)```", section, re.DOTALL)]
    return [block for block in blocks if isinstance(block, dict) and set(block) & {"track", "page", "group", "devices"}]


def test_the_documented_mapping_examples_are_valid_and_do_what_the_docs_say():
    simple, full, cart = _documented_mapping_examples()
    parse(simple)
    cart_plan = planner.plan(events.parse({"type": "track", "userId": "u1", "messageId": "m-9", "event": "Order Completed",
                                           "properties": {"cart_id": "c-1"}}, 0), parse(cart))
    assert [(operation.action, operation.workflow) for operation in cart_plan.operations] == [
        ("trigger", "order-confirmation"), ("cancel-trigger", "cart-reminder")]
    assert cart_plan.operations[1].path == "/v1/events/trigger/" + planner.keyed_transaction_id("cart-reminder", "c-1")
    order = {"type": "track", "userId": "u1", "messageId": "m-1", "event": "Order Completed",
             "properties": {"order_id": "o-1", "total": 1000, "teamId": "team-7", "sellerId": "s-3",
                            "products": [{"name": "Lamp"}], "total billed": 1010},
             "context": {"device": {"type": "ios", "token": "t-1"}}}
    plan = planner.plan(events.parse(order, 0), parse(full))
    assert [(operation.action, operation.workflow) for operation in plan.operations] == [
        ("set-device-credentials", None),
        ("trigger", "order-confirmation"),
        ("trigger", "big-order-alert"),
        ("trigger", "seller-new-order"),
    ]
    credentials, confirmation, alert, seller = (operation.body for operation in plan.operations)
    assert credentials["providerId"] == "apns"
    assert confirmation["payload"] == {**order["properties"], "orderId": "o-1", "total": 1000, "firstItem": "Lamp",
                                       "billed": 1010, "brand": "Acme", "_segment": SEGMENT}
    assert confirmation["to"] == {"subscriberId": "u1", "email": "orders@example.com"}
    assert alert["to"] == {"type": "Topic", "topicKey": "team-7"}
    assert (seller["to"], seller["payload"]) == ({"subscriberId": "s-3"}, {"orderId": "o-1", "_segment": SEGMENT})


@pytest.mark.parametrize(
    "entry, message",
    [
        ({"workfow": "order-confirmation"},
         WHERE + ": unknown key 'workfow' (did you mean 'workflow'?); allowed here: workflows, ignore; or one trigger "
                 "alone: workflow, when, payload, payloadMode, to, topic, transactionKey, actor, tenant, context, "
                 "overrides; or one cancel alone: cancel, transactionKey, when"),
        ({"workflows": ["a"], "ignor": True},
         WHERE + ": unknown key 'ignor' (did you mean 'ignore'?); allowed here: workflows, ignore; or one trigger "
                 "alone: workflow, when, payload, payloadMode, to, topic, transactionKey, actor, tenant, context, "
                 "overrides; or one cancel alone: cancel, transactionKey, when"),
        ([{"workflow": "a", "paylod": {}}],
         WHERE + "[0]: unknown key 'paylod' (did you mean 'payload'?); allowed here: workflow, when, payload, "
                 "payloadMode, to, topic, transactionKey, actor, tenant, context, overrides"),
    ],
)
def test_an_unknown_key_names_every_key_allowed_there_and_the_closest(entry, message):
    assert parse_error({"track": {"Order Completed": entry}}) == message
