"""Property tests (hypothesis): whatever arrives, the bridge answers 2xx or 4xx and never raises;
the planner is pure and its transactionIds identify events.

(a) any JSON value, any bytes, and mutated event bytes through ``Bridge.handle`` (in process);
(b) plausible Segment events, valid and slightly broken, in all three request shapes;
(c) ``planner.plan`` purity and transactionId identity.

The bridge talks to a Novu stand-in on loopback (healthy, knows every workflow). Hypothesis' text
never holds lone surrogates; ``test_lone_surrogates_never_crash`` sends them as JSON escapes.
``PROPERTY_EXAMPLES`` holds each test's example budget and their total, for the README.
"""

from __future__ import annotations

import copy
import json
import string

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from werkzeug.datastructures import Headers

from segment_novu import config
from segment_novu.bridge import Bridge, Request
from segment_novu.mapping import planner, rules
from segment_novu.receive import events
from segment_novu.reply import outcomes
from tests.novu_standin import NovuStandIn

PROPERTY_EXAMPLES = {
    "any_json_value": 250,
    "any_bytes": 250,
    "mutated_event_bytes": 250,
    "segment_events": 400,
    "plan_is_pure": 300,
    "transaction_ids": 300,
    "lone_surrogates": 100,
}
PROPERTY_EXAMPLES_TOTAL = sum(PROPERTY_EXAMPLES.values())

# The mapping documented in segment_novu/mapping/rules.py and the README: fan-out, payload mapping,
# conditions, topics, page rules, group topics and device tokens all get exercised.
MAPPING = {
    "defaultRule": True,
    "track": {
        "Order Completed": [
            {"workflow": "order-confirmation",
             "payload": {"orderId": "properties.order_id", "total": {"path": "properties.total", "default": 0}}},
            {"workflow": "big-order-alert", "when": {"path": "properties.total", "equals": 1000},
             "topic": "properties.teamId"},
        ],
        "Signed Up": "welcome",
        "Button Clicked": {"ignore": True},
    },
    "page": {"Pricing": "pricing-follow-up"},
    "screen": {},
    "group": {"topicKey": "groupId", "topicName": "traits.name"},
    "devices": {"providerId": "fcm"},
}
DONE_OR_REFUSED = {outcomes.DELIVERED, outcomes.SKIPPED, outcomes.REJECTED, outcomes.DUPLICATE}


def _settings(name: str, **extra):
    return settings(
        max_examples=PROPERTY_EXAMPLES[name],
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
        **extra,
    )


# -- the bridge, in process ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def standin():
    with NovuStandIn(record=False) as novu:
        yield novu


@pytest.fixture(scope="module")
def bridge(standin, tmp_path_factory):
    mapping_file = tmp_path_factory.mktemp("mapping") / "mapping.json"
    mapping_file.write_text(json.dumps(MAPPING), encoding="utf-8")
    return Bridge(config.load({
        "NOVU_API_URL": standin.url,
        "NOVU_API_KEY": "test-novu-key",
        "MAPPING_FILE": str(mapping_file),
        "WORKFLOW_DISCOVERY": "false",  # every trigger goes out: delivery is exercised too
        "NOVU_CONFIG_RATE_PER_SECOND": "10000",  # no pacing waits between examples
        "LOG_LEVEL": "ERROR",
    }))


@pytest.fixture(scope="module")
def mapping_rules():
    return rules.parse(MAPPING, "test mapping")


def handle(bridge: Bridge, body: bytes, content_type: str | None = "application/json"):
    headers = Headers({"Content-Type": content_type} if content_type is not None else {})
    return bridge.handle(Request(method="POST", headers=headers, body=body))


def assert_well_answered(answer) -> None:
    assert 200 <= answer.status < 300 or 400 <= answer.status < 500, (answer.status, answer.body)
    if answer.status >= 400:
        assert isinstance(answer.body.get("message"), str) and answer.body["message"].strip()
    json.dumps(answer.body)  # the answer is serialisable as it is


# -- strategies ------------------------------------------------------------------------------------

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=25,
)
finite_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=15,
)
broken = (st.booleans() | st.lists(finite_values, min_size=1, max_size=2)
          | st.dictionaries(st.text(max_size=5), finite_values, min_size=1, max_size=2))

RESERVED_TRAITS = ["email", "firstName", "first_name", "lastName", "last_name", "name", "phone", "avatar",
                   "locale", "timezone", "plan name", "Favorite Color", "created at", "company"]
keys = st.sampled_from(RESERVED_TRAITS) | st.text(max_size=12)
identifiers = st.uuids().map(str) | st.text(min_size=1, max_size=24) | st.integers(min_value=0) | st.sampled_from(
    ["user-1", "user-2", " padded ", "ünïcödé-用户", "a/b?c#d", "with space"])
maybe_identifiers = identifiers | identifiers | st.none() | st.just("") | broken
objects = st.dictionaries(keys, finite_values, max_size=6)
maybe_objects = objects | objects | objects | st.none() | st.just([]) | st.text(max_size=5) | st.integers() | broken
event_names = st.sampled_from(["Order Completed", "Signed Up", "Button Clicked", "Pricing", "Home", "!!!", ""]) | (
    st.text(max_size=30))
types = st.sampled_from(events.TYPES) | st.sampled_from(["Track", " identify ", "PAGE", "foo", ""]) | st.integers()
contexts = st.fixed_dictionaries({}, optional={
    "traits": maybe_objects,
    "locale": st.sampled_from(["en-US", "de-DE"]) | finite_values,
    "timezone": st.sampled_from(["Europe/Berlin"]) | finite_values,
    "device": st.fixed_dictionaries({}, optional={"token": st.text(max_size=40) | finite_values,
                                                  "type": st.sampled_from(["ios", "android"])}) | finite_values,
    "ip": st.text(max_size=15),
    "groupId": maybe_identifiers,
    "library": st.fixed_dictionaries({"name": st.text(max_size=10), "version": st.text(max_size=6)}),
})
order_properties = st.fixed_dictionaries({}, optional={
    "order_id": maybe_identifiers,
    "total": st.sampled_from([1000, 1000.0, "1000", 54.82]) | finite_values,
    "teamId": maybe_identifiers,
}).flatmap(lambda known: objects.map(lambda extra: {**extra, **known}))

OPTIONAL_FIELDS = {
    "anonymousId": identifiers,
    "name": event_names,
    "properties": order_properties | objects,
    "traits": objects,
    "context": contexts,
    "integrations": st.dictionaries(st.text(max_size=8), st.booleans(), max_size=3),
    "timestamp": st.sampled_from(["2026-11-28T10:00:00.000Z", "Sat Nov 28 2026"]) | finite_values,
    "sentAt": st.text(max_size=24),
    "version": st.integers(0, 3) | st.text(max_size=3),
    "channel": st.sampled_from(["server", "client"]),
}
BREAKABLE = ["type", "userId", "anonymousId", "messageId", "event", "name", "properties", "traits", "context",
             "integrations", "groupId", "previousId", "timestamp"]
breakage = maybe_identifiers | maybe_objects | finite_values


@st.composite
def segment_events(draw) -> dict:
    """A valid event of a random type (or an odd type), then zero to two fields broken or removed."""
    kind = draw(st.sampled_from(events.TYPES) | st.sampled_from(events.TYPES) | types)
    document = {"type": kind, "userId": draw(identifiers), "messageId": draw(identifiers)}
    if kind == "track" or draw(st.booleans()):
        document["event"] = draw(event_names)
    if kind == "group" or draw(st.integers(0, 9)) == 0:
        document["groupId"] = draw(identifiers)
    if kind == "alias" or draw(st.integers(0, 9)) == 0:
        document["previousId"] = draw(identifiers)
    document.update(draw(st.fixed_dictionaries({}, optional=OPTIONAL_FIELDS)))
    for _ in range(draw(st.sampled_from([0, 0, 1, 1, 2]))):
        key = draw(st.sampled_from(BREAKABLE))
        if draw(st.booleans()):
            document.pop(key, None)
        else:
            document[key] = draw(breakage)
    return document


envelopes = st.fixed_dictionaries(
    {"batch": st.lists(segment_events(), min_size=1, max_size=4)},
    optional={"context": contexts | maybe_objects, "integrations": maybe_objects,
              "sentAt": st.text(max_size=24), "writeKey": st.text(max_size=12)},
)
requests_bodies = segment_events() | st.lists(segment_events(), min_size=1, max_size=4) | envelopes


@st.composite
def mutated_event_bytes(draw) -> bytes:
    """A serialised event, then a few byte-level edits: truncation, insertion, replacement."""
    data = bytearray(json.dumps(draw(segment_events()), ensure_ascii=draw(st.booleans())).encode())
    for _ in range(draw(st.integers(1, 4))):
        position = draw(st.integers(0, len(data)))
        edit = draw(st.sampled_from(["truncate", "insert", "replace", "delete"]))
        byte = draw(st.integers(0, 255) | st.sampled_from(list(b'{}[]",:\\ 0eE-.')))
        if edit == "truncate":
            del data[position:]
        elif edit == "insert":
            data.insert(position, byte)
        elif data and position < len(data):
            if edit == "replace":
                data[position] = byte
            else:
                del data[position]
    return bytes(data)


content_types = st.sampled_from(
    ["application/json", "application/json; charset=utf-8", "text/plain", "application/vnd.segment+json", None]
)


# -- (a) any input: 2xx or 4xx, never an exception ---------------------------------------------------

@_settings("any_json_value")
@given(value=json_values, ensure_ascii=st.booleans(), content_type=content_types)
def test_any_json_value_is_answered(bridge, value, ensure_ascii, content_type):
    body = json.dumps(value, ensure_ascii=ensure_ascii).encode("utf-8")
    assert_well_answered(handle(bridge, body, content_type))


@_settings("any_bytes")
@given(body=st.binary(max_size=2048))
def test_any_bytes_are_answered(bridge, body):
    assert_well_answered(handle(bridge, body))


@_settings("mutated_event_bytes")
@given(body=mutated_event_bytes())
def test_mutated_event_bytes_are_answered(bridge, body):
    assert_well_answered(handle(bridge, body))


# -- (b) plausible Segment events ------------------------------------------------------------------

@_settings("segment_events")
@given(document=requests_bodies, ensure_ascii=st.booleans())
def test_segment_events_are_answered_per_event(bridge, document, ensure_ascii):
    answer = handle(bridge, json.dumps(document, ensure_ascii=ensure_ascii).encode("utf-8"))
    assert_well_answered(answer)
    event(f"status {answer.status}")  # shown by --hypothesis-show-statistics
    items = document if isinstance(document, list) else document.get("batch", [document])
    if answer.status == 200:
        reported = answer.body["events"]
        for outcome in {entry["outcome"] for entry in reported}:
            event(f"outcome {outcome}")
        assert [entry["index"] for entry in reported] == list(range(len(items)))
        assert {entry["outcome"] for entry in reported} <= DONE_OR_REFUSED, reported


@_settings("lone_surrogates")
@given(
    surrogate=st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF),
    text=st.text(max_size=10),
    field=st.sampled_from(["property", "messageId", "userId", "event"]),
)
def test_lone_surrogates_never_crash(bridge, surrogate, text, field):
    document = {"type": "track", "event": "Signed Up", "userId": "user-1", "messageId": "m-" + text,
                "properties": {"note": text}}
    if field == "property":
        document["properties"]["note"] = text + surrogate
    else:
        document[field] = document[field] + surrogate
    body = json.dumps(document).encode("ascii")  # \udXXX escapes: valid JSON text, valid UTF-8 bytes
    assert_well_answered(handle(bridge, body))


# -- (c) the planner: pure, and transactionIds that identify events ------------------------------------

def _parsed(document: dict, index: int = 0):
    try:
        return events.parse(copy.deepcopy(document), index)
    except events.InvalidEvent:
        return None


@_settings("plan_is_pure")
@given(document=segment_events(), anonymous=st.sampled_from(["skip", "anonymous-id"]),
       known=st.none() | st.frozensets(st.sampled_from(["order-completed", "welcome", "signed-up"])))
def test_plan_is_pure(mapping_rules, document, anonymous, known):
    original = copy.deepcopy(document)
    first, second = _parsed(document), _parsed(document)
    if first is None:
        return
    options = {"anonymous_events": anonymous, "known_workflows": known}
    plan = planner.plan(first, mapping_rules, **options)
    assert plan == planner.plan(second, mapping_rules, **options)
    assert plan == planner.plan(first, mapping_rules, **options)  # planning twice changes nothing
    assert document == original and first.body == second.body  # nothing was modified


def _transaction_ids(plan) -> list[str]:
    return [operation.body["transactionId"] for operation in plan.operations if operation.is_trigger]


message_ids = st.text(alphabet=string.ascii_letters + string.digits + "-_:. ", min_size=1, max_size=40).filter(
    str.strip)
sluggable_names = st.sampled_from(["Order Completed", "Signed Up", "Report Submitted"]) | st.text(
    max_size=20).filter(lambda name: planner.workflow_for(name) != "" and name.strip() == name)


@_settings("transaction_ids")
@given(name=sluggable_names, user=st.text(alphabet=string.ascii_letters, min_size=1, max_size=10),
       properties=st.fixed_dictionaries({"total": st.sampled_from([1000, 5]), "teamId": st.sampled_from(["t1", "t2"])}),
       first_id=message_ids, second_id=message_ids, sent_at=st.text(max_size=10))
def test_transaction_ids_identify_the_event(mapping_rules, name, user, properties, first_id, second_id, sent_at):
    event = {"type": "track", "event": name, "userId": user, "messageId": first_id, "properties": properties}
    plan = planner.plan(events.parse(event, 0), mapping_rules)
    ids = _transaction_ids(plan)
    assert ids, plan  # every name here maps to at least one trigger
    assert len(set(ids)) == len(ids), "each workflow of a fan-out has its own transactionId"

    # The same event again (resent later, at another index, with another sentAt): the same ids.
    resent = planner.plan(events.parse({**event, "sentAt": sent_at}, 7), mapping_rules)
    assert _transaction_ids(resent) == ids

    # Another messageId: other ids, none shared.
    other = planner.plan(events.parse({**event, "messageId": second_id}, 0), mapping_rules)
    if first_id.strip() == second_id.strip():
        assert _transaction_ids(other) == ids
    else:
        assert not set(_transaction_ids(other)) & set(ids)
