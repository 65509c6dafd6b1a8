import json
from pathlib import Path

import pytest

from segment_novu.receive import events, intake
from segment_novu.receive.events import InvalidEvent

EXAMPLES = sorted((Path(__file__).parent / "data" / "segment").glob("*.json"))
TYPES = "identify, track, page, screen, group, alias, delete"


def items_of(path: Path) -> list:
    """The event candidates a file holds, as the function would see them."""
    return intake.split(json.loads(path.read_text(encoding="utf-8"))).items


def parse(**fields) -> events.Event:
    return events.parse(fields, 0)


def refusal(item) -> str:
    with pytest.raises(InvalidEvent) as caught:
        events.parse(item, 0)
    return caught.value.message


def test_all_documented_examples_are_present():
    assert len(EXAMPLES) == 15


@pytest.mark.parametrize("path", EXAMPLES, ids=[path.stem for path in EXAMPLES])
def test_documented_example_parses(path):
    items = items_of(path)
    assert items
    for index, item in enumerate(items):
        event = events.parse(item, index)
        assert event.index == index
        assert event.type == item["type"]
        assert event.message_id == item.get("messageId")
        assert event.user_id == item.get("userId")
        assert event.anonymous_id == item.get("anonymousId")
        assert isinstance(event.context, dict) and isinstance(event.body["integrations"], dict)


def test_example_batches_hold_every_event():
    by_name = {path.stem: path for path in EXAMPLES}
    assert [item["type"] for item in items_of(by_name["batch-function-onbatch-array"])] == [
        "identify", "track", "track"
    ]
    envelope = items_of(by_name["batch-tracking-api"])
    assert [item["type"] for item in envelope] == ["identify", "track", "identify", "track"]
    assert {events.parse(item, 0).context["device"]["name"] for item in envelope} == {"Apple iPhone 6"}


# Quirks tolerated


@pytest.mark.parametrize("key", ["context", "integrations"])
@pytest.mark.parametrize("value", [None, []])
def test_null_or_empty_array_objects_become_empty(key, value):
    event = parse(type="delete", userId="5678", **{key: value})
    assert event.body[key] == {}


@pytest.mark.parametrize(
    "event_type, key, extra",
    [
        ("identify", "traits", {}),
        ("group", "traits", {"groupId": "g1"}),
        ("track", "properties", {"event": "Signed Up"}),
        ("page", "properties", {}),
        ("screen", "properties", {}),
    ],
)
@pytest.mark.parametrize("value", [None, []])
def test_null_or_empty_traits_and_properties_become_empty(event_type, key, extra, value):
    event = parse(type=event_type, userId="u1", **extra, **{key: value})
    assert event.body[key] == {}


def test_missing_optional_objects_become_empty():
    event = parse(type="track", userId="u1", event="Signed Up")
    assert (event.context, event.body["integrations"], event.properties) == ({}, {}, {})


@pytest.mark.parametrize(
    "fields, user_id, anonymous_id, message_id",
    [
        ({"userId": 123}, "123", None, None),
        ({"userId": 12.5}, "12.5", None, None),
        ({"userId": "  u1  ", "anonymousId": " a1 "}, "u1", "a1", None),
        ({"userId": None, "anonymousId": "a1"}, None, "a1", None),
        ({"userId": "", "anonymousId": "a1"}, None, "a1", None),
        ({"userId": "u1", "messageId": 42}, "u1", None, "42"),
        ({"userId": "u1", "messageId": "m-1"}, "u1", None, "m-1"),
    ],
)
def test_identifiers(fields, user_id, anonymous_id, message_id):
    event = parse(type="track", event="Signed Up", **fields)
    assert (event.user_id, event.anonymous_id, event.message_id) == (user_id, anonymous_id, message_id)


def test_type_is_normalised():
    assert parse(type=" Track ", userId="u1", event="Signed Up").type == "track"


def test_track_event_name_is_trimmed_and_numbers_become_text():
    assert parse(type="track", userId="u1", event="  Signed Up ").name == "Signed Up"
    assert parse(type="track", userId="u1", event=404).name == "404"


def test_page_name():
    event = events.parse({"type": "page", "userId": "u1", "name": "Home", "messageId": "m-9"}, 3)
    assert event.name == "Home"


def test_keys_with_spaces_and_string_revenue_are_kept():
    event = parse(type="identify", userId="u1", traits={"total billed": 830, "revenue": "39.95"})
    assert event.traits == {"total billed": 830, "revenue": "39.95"}


def test_context_traits_may_be_null():
    assert parse(type="track", userId="u1", event="x", context={"traits": None}).context == {"traits": None}


def test_context_traits_may_be_an_empty_array():
    event = parse(type="track", userId="u1", event="x", context={"traits": []})
    assert event.user_id == "u1"


# Identity


BASE = {"type": "track", "userId": "u1", "event": "Signed Up", "properties": {"plan": "pro"}}


def identity(**changes) -> str:
    return events.parse({**BASE, **changes}, 0).identity


def test_same_message_id_same_identity_whatever_the_content():
    first = identity(messageId="m-1")
    assert first == 'm:["track", "u1", null, "m-1"]'
    assert identity(messageId=" m-1 ", properties={"plan": "free"}, sentAt="later") == first
    assert identity(messageId="m-2") != first


@pytest.mark.parametrize(
    "changes",
    [{"userId": "u2"}, {"anonymousId": "a1"}, {"type": "page"}, {"type": "identify"}],
)
def test_one_message_id_for_another_user_or_type_is_another_event(changes):
    assert identity(messageId="m-1", **changes) != identity(messageId="m-1")


@pytest.mark.parametrize(
    "changes",
    [
        {"sentAt": "2024-01-01T00:00:00Z"},
        {"receivedAt": "2024-01-01T00:00:01Z"},
        {"_metadata": {"bundled": ["Segment.io"]}},
        {"writeKey": "wk"},
        {"sentAt": "a", "receivedAt": "b", "_metadata": {}, "writeKey": "c"},
    ],
)
def test_identity_without_message_id_ignores_delivery_time_fields(changes):
    assert identity(**changes) == identity()
    assert identity().startswith("c:") and len(identity()) == 2 + 64


@pytest.mark.parametrize(
    "changes",
    [
        {"properties": {"plan": "free"}},
        {"properties": {"plan": "pro", "seats": 2}},
        {"event": "Signed In"},
        {"userId": "u2"},
        {"timestamp": "2024-01-01T00:00:00Z"},
    ],
)
def test_identity_without_message_id_follows_the_content(changes):
    assert identity(**changes) != identity()


def test_blank_or_numeric_message_id_falls_back_to_content():
    assert identity(messageId="   ").startswith("c:")
    assert identity(messageId=42).startswith("c:")
    assert identity(messageId=42) != identity(messageId=43)


def test_identity_does_not_depend_on_key_order():
    reordered = dict(reversed(list(BASE.items())))
    assert events.parse(reordered, 0).identity == identity()


# Refusals


@pytest.mark.parametrize(
    "item, message",
    [
        ([], "an event must be a JSON object, got list"),
        ("track", "an event must be a JSON object, got str"),
        ({"userId": "u1"}, "missing type"),
        ({"type": None, "userId": "u1"}, "missing type"),
        ({"type": "purchase", "userId": "u1"}, f"unknown type 'purchase': expected one of {TYPES}"),
        ({"type": "", "userId": "u1"}, f"unknown type '': expected one of {TYPES}"),
        ({"type": "x" * 80, "userId": "u1"}, f"unknown type '{'x' * 50}': expected one of {TYPES}"),
        ({"type": 7, "userId": "u1"}, "type must be a string, got int"),
        ({"type": ["track"], "userId": "u1"}, "type must be a string, got list"),
        ({"type": "track", "userId": "u1"}, "track without event"),
        ({"type": "track", "userId": "u1", "event": "  "}, "track without event"),
        ({"type": "track", "event": "x"}, "neither userId nor anonymousId"),
        ({"type": "identify", "userId": None, "anonymousId": " "}, "neither userId nor anonymousId"),
        ({"type": "delete", "anonymousId": "a1"}, "delete without userId"),
        ({"type": "identify", "userId": {"id": 1}}, "userId must be a string, got dict"),
        ({"type": "identify", "userId": True}, "userId must be a string, got bool"),
        ({"type": "identify", "userId": ["u1"]}, "userId must be a string, got list"),
        ({"type": "identify", "anonymousId": False}, "anonymousId must be a string, got bool"),
        ({"type": "identify", "userId": "u1", "messageId": {}}, "messageId must be a string, got dict"),
        ({"type": "track", "userId": "u1", "event": {"name": "x"}}, "event must be a string, got dict"),
        ({"type": "track", "userId": "u1", "event": "x", "properties": "{}"}, "properties must be an object, got str"),
        ({"type": "page", "userId": "u1", "properties": [1]}, "properties must be an object, got list"),
        ({"type": "identify", "userId": "u1", "traits": "vip"}, "traits must be an object, got str"),
        ({"type": "identify", "userId": "u1", "context": "web"}, "context must be an object, got str"),
        ({"type": "identify", "userId": "u1", "integrations": 1}, "integrations must be an object, got int"),
        (
            {"type": "track", "userId": "u1", "event": "x", "context": {"traits": ["email"]}},
            "context.traits must be an object, got list",
        ),
        (
            {"type": "track", "userId": "u1", "event": "x", "context": {"traits": "vip"}},
            "context.traits must be an object, got str",
        ),
        ({"type": "group", "userId": "u1"}, "group without groupId"),
        ({"type": "group", "userId": "u1", "groupId": ""}, "group without groupId"),
        ({"type": "alias", "userId": "u1"}, "alias without previousId"),
        ({"type": "alias", "userId": "u1", "previousId": None}, "alias without previousId"),
    ],
)
def test_refused_with_a_message_naming_the_field(item, message):
    assert refusal(item) == message
