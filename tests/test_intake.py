import pytest

from segment_novu.receive import intake
from segment_novu.receive.intake import Rejected

MAX_DEPTH = 64


def rejection(call, *args) -> Rejected:
    with pytest.raises(Rejected) as caught:
        call(*args)
    return caught.value


# Content types


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/json; charset=utf-8",
        "APPLICATION/JSON",
        " application/json ",
        "text/plain",
        "text/plain;charset=UTF-8",
        "application/vnd.segment+json",
        "",
        None,
    ],
)
def test_accepted_content_types(content_type):
    assert intake.check_content_type(content_type) is None


@pytest.mark.parametrize(
    "content_type, media_type",
    [
        ("application/x-www-form-urlencoded", "application/x-www-form-urlencoded"),
        ("multipart/form-data; boundary=xyz", "multipart/form-data"),
        ("application/xml", "application/xml"),
        ("Text/XML; charset=utf-8", "text/xml"),
    ],
)
def test_refused_content_types(content_type, media_type):
    error = rejection(intake.check_content_type, content_type)
    assert error.status == 415
    assert error.message == f"unsupported Content-Type {media_type!r}: send application/json"


# json_depth


@pytest.mark.parametrize(
    "document, depth",
    [
        (42, 0),
        ("text", 0),
        ({}, 1),
        ([], 1),
        ({"a": [1, {"b": []}]}, 4),
        ([[], [], []], 2),
        ({"a": "[[[[{{{{"}, 1),
        ({"a": "]]]]}}}}", "b": [[1]]}, 3),
    ],
)
def test_json_depth(document, depth):
    assert intake.json_depth(document, limit=64) == depth


def test_json_depth_stops_counting_past_the_limit():
    deep = []
    for _ in range(500):
        deep = [deep]
    assert intake.json_depth(deep, limit=10) == 11


def test_lone_surrogate_escapes_are_refused_and_pairs_accepted():
    assert rejection(intake.parse_json, b'{"a": "\\ud800"}', 64).status == 400
    assert intake.parse_json(b'{"a": "\\ud83d\\ude00"}', 64) == {"a": "\U0001F600"}


# parse_json


@pytest.mark.parametrize(
    "body, expected",
    [
        (b'{"type": "track"}', {"type": "track"}),
        (b' \n[1, 2.5, "x"]\n ', [1, 2.5, "x"]),
        ('{"name": "Zoë ✓"}'.encode(), {"name": "Zoë ✓"}),
        (b'{"x": 5e-7}', {"x": 5e-7}),
        (b'{"x": 1e308}', {"x": 1e308}),
    ],
)
def test_parse_json_accepts(body, expected):
    assert intake.parse_json(body, MAX_DEPTH) == expected


@pytest.mark.parametrize(
    "body, message",
    [
        (b"", "empty body: expected a Segment event, an array of events or a batch"),
        (b" \r\n\t ", "empty body: expected a Segment event, an array of events or a batch"),
        (b'{"a": "\xff"}', "body is not UTF-8 (byte 7)"),
        (b'"\xc3"', "body is not UTF-8 (byte 1)"),
        (b"NaN", "body is not valid JSON: NaN is not valid JSON"),
        (b'{"a": Infinity}', "body is not valid JSON: Infinity is not valid JSON"),
        (b"[-Infinity]", "body is not valid JSON: -Infinity is not valid JSON"),
        (b'{"a": 1e400}', "body is not valid JSON: number 1e400 is out of range"),
        (b"[-1e400]", "body is not valid JSON: number -1e400 is out of range"),
        (b'{"a":', "body is not valid JSON: Expecting value: line 1 column 6 (char 5)"),
        (b"{'a': 1}", "body is not valid JSON: Expecting property name enclosed in double quotes: "
                      "line 1 column 2 (char 1)"),
        (b'{"a": 1} {"b": 2}', "body is not valid JSON: Extra data: line 1 column 10 (char 9)"),
    ],
)
def test_parse_json_refuses(body, message):
    error = rejection(intake.parse_json, body, MAX_DEPTH)
    assert (error.status, error.message) == (400, message)


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


@pytest.mark.parametrize("max_depth", [4, 64])
def test_nesting_up_to_the_limit_is_accepted(max_depth):
    assert intake.parse_json(nested(max_depth), max_depth) is not None


@pytest.mark.parametrize("max_depth", [4, 64])
def test_nesting_over_the_limit_names_the_limit(max_depth):
    error = rejection(intake.parse_json, nested(max_depth + 1), max_depth)
    assert (error.status, error.message) == (400, f"JSON nested deeper than {max_depth} levels")


def test_invalid_utf8_is_reported_before_nesting():
    error = rejection(intake.parse_json, nested(10) + b"\xff", 4)
    assert error.message.startswith("body is not UTF-8")


def test_recursion_error_becomes_a_depth_rejection():
    # A limit far above the interpreter's recursion limit lets the decoder itself overflow.
    error = rejection(intake.parse_json, nested(200_000), 10**9)
    assert (error.status, error.message) == (400, "JSON nested deeper than 1000000000 levels")


# split


def test_single_object_is_one_event():
    incoming = intake.split({"type": "track"})
    assert (incoming.shape, incoming.items, incoming.is_batch) == ("event", [{"type": "track"}], False)


def test_bare_array_is_a_batch():
    items = [{"type": "track"}, {"type": "identify"}, 7]
    incoming = intake.split(items)
    assert (incoming.shape, incoming.items, incoming.is_batch) == ("array", items, True)


def test_object_with_batch_and_type_is_an_event():
    document = {"type": "track", "batch": []}
    assert intake.split(document).items == [document]


def test_envelope_merges_context_and_integrations_into_each_event():
    envelope = {
        "batch": [
            {"type": "track", "context": {"ip": "1.2.3.4", "locale": "fr-FR"}},
            {"type": "identify", "context": None, "integrations": {"All": True}},
            {"type": "page", "context": []},
            "not an event",
        ],
        "context": {"locale": "en-US", "library": {"name": "analytics-python"}},
        "integrations": {"All": False, "Mixpanel": True},
        "writeKey": "wk",
        "sentAt": "2024-01-01T00:00:00Z",
    }
    incoming = intake.split(envelope)
    assert incoming.shape == "envelope" and incoming.is_batch
    library = {"name": "analytics-python"}
    assert incoming.items == [
        {
            "type": "track",
            "context": {"ip": "1.2.3.4", "locale": "fr-FR", "library": library},
            "integrations": {"All": False, "Mixpanel": True},
        },
        {
            "type": "identify",
            "context": {"locale": "en-US", "library": library},
            "integrations": {"All": True, "Mixpanel": True},
        },
        {
            "type": "page",
            "context": {"locale": "en-US", "library": library},
            "integrations": {"All": False, "Mixpanel": True},
        },
        "not an event",
    ]
    assert envelope["batch"][0] == {"type": "track", "context": {"ip": "1.2.3.4", "locale": "fr-FR"}}


def test_envelope_without_shared_keys_leaves_events_alone():
    events = [{"type": "track", "userId": "u"}]
    assert intake.split({"batch": events, "context": None}).items == events


@pytest.mark.parametrize(
    "document, message",
    [
        ([], "empty batch: the array holds no events"),
        ({"batch": []}, "empty batch: the array holds no events"),
        ({"batch": {"type": "track"}}, "batch must be an array of events"),
        ({"batch": None}, "batch must be an array of events"),
        ({"batch": "[]"}, "batch must be an array of events"),
        (42, "expected a JSON object or array, got int"),
        (4.2, "expected a JSON object or array, got float"),
        ("track", "expected a JSON object or array, got str"),
        (True, "expected a JSON object or array, got bool"),
        (None, "expected a JSON object or array, got NoneType"),
    ],
)
def test_split_refuses(document, message):
    error = rejection(intake.split, document)
    assert (error.status, error.message) == (400, message)


# first_element_text


@pytest.mark.parametrize(
    "body, first",
    [
        (b'[{"a":1},{"b":2}]', b'{"a":1}'),
        (b' \r\n\t[ \n\t {"a": 1} \n , {"b": 2}]', b'{"a": 1}'),
        (b'[{"a":{"b":[1,{"c":2}]},"d":[]},{"e":3}]', b'{"a":{"b":[1,{"c":2}]},"d":[]}'),
        (b'[{"s":"]"},{"t":1}]', b'{"s":"]"}'),
        (b'[{"s":"},{\\"x\\":1}"},{"t":1}]', b'{"s":"},{\\"x\\":1}"}'),
        (b'[{"x":5e-7,"y":1.0E+2,"z":-0.0}]', b'{"x":5e-7,"y":1.0E+2,"z":-0.0}'),
        ('[{"name":"Zoë ✓ \\u00e9"},1]'.encode(), '{"name":"Zoë ✓ \\u00e9"}'.encode()),
        (b"[1, 2]", b"1"),
    ],
)
def test_first_element_text_is_the_raw_bytes(body, first):
    assert intake.first_element_text(body) == first


@pytest.mark.parametrize(
    "body",
    [b'{"a": 1}', b'"[1]"', b"42", b"", b"   ", b"[]", b"[ ]", b'{"batch": [{"a": 1}]}', b"[{"],
)
def test_first_element_text_is_none_without_a_first_element(body):
    assert intake.first_element_text(body) is None
