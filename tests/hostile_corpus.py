"""Hostile requests: malformed, mistyped, oversized or odd inputs the function must refuse cleanly.

Each ``Case`` is one HTTP request (method, headers, raw body bytes) and the status it must get: an
exact status, or a class (``"4xx"``, ``"2xx|4xx"`` when either reading is defensible). Never a 5xx.
Unless ``reaches_novu`` is set, the request must cause no Novu call at all.

Most invalid events are a valid, deliverable event with ONE field broken, so a refusal proves the
field was checked (a valid event would have reached Novu). The corpus is served by
``tests/test_hostile_input.py`` against a function with ``MAX_BODY_BYTES = SERVED_MAX_BODY_BYTES``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

MIB = 1024 * 1024
# The limit the corpus is served with: large enough for the 5 MB value, small enough to cross.
SERVED_MAX_BODY_BYTES = 8 * MIB
# The workflow the base event triggers: the stand-in must know it for triggers to be sent.
WORKFLOW = "order-completed"

JSON = {"Content-Type": "application/json"}
DROP = object()  # a field value meaning "remove this key"


@dataclass(frozen=True)
class Case:
    name: str
    body: bytes = field(repr=False)
    expect: int | str = "4xx"  # exact status, or "2xx", "4xx", "2xx|4xx"
    method: str = "POST"
    headers: dict = field(default_factory=lambda: dict(JSON))
    reaches_novu: bool = False  # only accepted quirks and forwarded odd values may call Novu
    declared_length: int | None = None  # a lying Content-Length, sent over a raw socket
    chunked: bool = False  # Transfer-Encoding: chunked (no Content-Length), over a raw socket
    max_seconds: float | None = None  # the answer must come this fast


def _dump(document) -> bytes:
    return json.dumps(document).encode()


def _with(base: dict, **changes) -> dict:
    document = dict(base)
    for key, value in changes.items():
        if value is DROP:
            document.pop(key, None)
        else:
            document[key] = value
    return document


TRACK = {
    "type": "track",
    "event": "Order Completed",
    "userId": "hostile-user",
    "messageId": "hostile-message",
    "properties": {"total": 54.82, "currency": "USD"},
    "context": {"traits": {"email": "hostile@example.com"}},
}
IDENTIFY = {"type": "identify", "userId": "hostile-user", "messageId": "hostile-identify",
            "traits": {"email": "hostile@example.com"}}
GROUP = {"type": "group", "userId": "hostile-user", "messageId": "hostile-group", "groupId": "g-1", "traits": {}}
ALIAS = {"type": "alias", "userId": "hostile-user", "messageId": "hostile-alias", "previousId": "anon-1"}
DELETE = {"type": "delete", "userId": "hostile-user", "messageId": "hostile-delete"}
PAGE = {"type": "page", "userId": "hostile-user", "messageId": "hostile-page", "name": "Home"}
# Valid, but skipped before any Novu call: its name gives no workflow identifier.
SKIPPED = _with(TRACK, event="!!! ... ???", messageId="hostile-skipped")


def track(**changes) -> bytes:
    return _dump(_with(TRACK, **changes))


def event(base: dict, **changes) -> bytes:
    return _dump(_with(base, **changes))


def nested(depth: int, opener: bytes, closer: bytes, core: bytes = b"1") -> bytes:
    return opener * depth + core + closer * depth


def _raw_track(**raw_fields: bytes) -> bytes:
    """A track event whose fields are given as raw JSON text (for what json.dumps cannot write)."""
    parts = [b'"%s": %s' % (key.encode(), _dump(value)) for key, value in TRACK.items() if key not in raw_fields]
    parts += [b'"%s": %s' % (key.encode(), value) for key, value in raw_fields.items()]
    return b"{" + b", ".join(parts) + b"}"


def _properties_with(raw_value: bytes) -> bytes:
    return _raw_track(properties=b'{"value": ' + raw_value + b"}")


def _many_keys(count: int) -> dict:
    return {f"key {index}": index for index in range(count)}


_DEEP_OBJECTS = nested(1000, b'{"a": ', b"}")
_FIVE_MB = "x" * (5 * MIB)


def _padded_to(size: int, document: bytes) -> bytes:
    return document + b" " * (size - len(document))


CORPUS: list[Case] = [
    # -- not JSON at all, or broken JSON ------------------------------------------------------------
    Case("not-json-text", b"hello, segment"),
    Case("not-json-html", b"<html><body>hi</body></html>"),
    Case("truncated-object", b'{"type": "track", "event": "Order Com'),
    Case("truncated-array", b'[{"type": "track", "userId": "u"}, '),
    Case("truncated-after-key", b'{"type"'),
    Case("trailing-garbage", track() + b"}"),
    Case("two-objects-concatenated", track() + track()),
    Case("single-quoted", b"{'type': 'track', 'event': 'Order Completed', 'userId': 'u'}"),
    Case("trailing-comma", b'{"type": "track", "event": "Order Completed", "userId": "u",}'),
    Case("javascript-comment", b"// Segment\n" + track()),
    # A regex depth scan once took ~5 s on this (quadratic in the escaped quotes): must stay fast.
    Case("unterminated-string-of-escaped-quotes-32kb", b'{"a": "' + b'\\"' * 16_000, expect=400, max_seconds=1.0),
    # -- a JSON scalar instead of an event ------------------------------------------------------------
    Case("scalar-number", b"1", expect=400),
    Case("scalar-string", b'"x"', expect=400),
    Case("scalar-true", b"true", expect=400),
    Case("scalar-false", b"false", expect=400),
    Case("scalar-null", b"null", expect=400),
    Case("scalar-negative-float", b"-0.5", expect=400),
    # -- no body ------------------------------------------------------------------------------------
    Case("empty-body", b"", expect=400),
    Case("whitespace-body", b" \n\t\r  ", expect=400),
    # -- wrong types at every field -------------------------------------------------------------------
    Case("type-number", track(type=1), expect=400),
    Case("type-list", track(type=["track"]), expect=400),
    Case("type-object", track(type={"name": "track"}), expect=400),
    Case("type-null", track(type=None), expect=400),
    Case("type-missing", track(type=DROP), expect=400),
    Case("type-empty", track(type=""), expect=400),
    Case("type-unknown", track(type="foo"), expect=400),
    Case("userId-object", track(userId={"id": "u"}), expect=400),
    Case("userId-list", track(userId=["u"]), expect=400),
    Case("userId-true", track(userId=True), expect=400),
    Case("userId-false", track(userId=False), expect=400),
    Case("anonymousId-object", track(anonymousId={"id": "a"}), expect=400),
    Case("anonymousId-list-without-userId", track(userId=DROP, anonymousId=["a"]), expect=400),
    Case("no-userId-nor-anonymousId", track(userId=DROP), expect=400),
    Case("userId-null-anonymousId-blank", track(userId=None, anonymousId="   "), expect=400),
    Case("messageId-object", track(messageId={"id": "m"}), expect=400),
    Case("messageId-list", track(messageId=["m"]), expect=400),
    Case("event-object", track(event={"name": "Order Completed"}), expect=400),
    Case("event-list", track(event=["Order Completed"]), expect=400),
    Case("event-empty", track(event=""), expect=400),
    Case("event-blank", track(event="   "), expect=400),
    Case("event-missing", track(event=DROP), expect=400),
    Case("properties-string", track(properties="total=5"), expect=400),
    Case("properties-list", track(properties=[1, 2]), expect=400),
    Case("properties-number", track(properties=5), expect=400),
    Case("properties-true", track(properties=True), expect=400),
    Case("page-properties-string", event(PAGE, properties="x"), expect=400),
    Case("identify-traits-string", event(IDENTIFY, traits="email=a@example.com"), expect=400),
    Case("identify-traits-number", event(IDENTIFY, traits=7), expect=400),
    Case("context-string", track(context="ip=1.2.3.4"), expect=400),
    Case("context-number", track(context=1), expect=400),
    Case("context-traits-list", track(context={"traits": [{"email": "a@example.com"}]}), expect=400),
    Case("context-traits-string", track(context={"traits": "a@example.com"}), expect=400),
    Case("integrations-string", track(integrations="All"), expect=400),
    Case("integrations-number", track(integrations=0), expect=400),
    Case("group-without-groupId", event(GROUP, groupId=DROP), expect=400),
    Case("group-groupId-object", event(GROUP, groupId={"id": "g-1"}), expect=400),
    Case("alias-without-previousId", event(ALIAS, previousId=DROP), expect=400),
    Case("alias-previousId-object", event(ALIAS, previousId={"id": "anon-1"}), expect=400),
    Case("group-name-not-a-string", event(GROUP, name=["Initech"]), expect="2xx|4xx", reaches_novu=True),
    Case("group-name-object", event(GROUP, name={"value": "Initech"}), expect="2xx|4xx", reaches_novu=True),
    Case("delete-without-userId", event(DELETE, userId=DROP, anonymousId="anon-1"), expect=400),
    Case("delete-userId-null", event(DELETE, userId=None), expect=400),
    # -- bytes that are not UTF-8 -------------------------------------------------------------------
    Case("utf8-invalid-byte-ff", _raw_track(event=b'"Order \xff Completed"'), expect=400),
    Case("utf8-lone-continuation-byte", _raw_track(event=b'"Order \x80"'), expect=400),
    Case("utf8-overlong-slash", _raw_track(event=b'"Order \xc0\xaf"'), expect=400),
    Case("utf8-encoded-surrogate", _raw_track(event=b'"Order \xed\xa0\x80"'), expect=400),
    Case("utf8-truncated-sequence-at-end", b'{"type": "track", "event": "\xe2\x82', expect=400),
    Case("latin1-body", track(event="Commande validée").replace(b"\\u00e9", "é".encode("latin-1")), expect=400),
    Case("utf16-body", json.dumps(TRACK).encode("utf-16"),
         headers={"Content-Type": "application/json; charset=utf-16"}),
    Case("utf8-bom-prefix", b"\xef\xbb\xbf" + _dump(SKIPPED), expect="2xx|4xx"),
    # -- lone surrogate escapes: valid JSON text, not encodable as UTF-8; must never crash -----------
    Case("surrogate-high-in-property", _properties_with(b'"\\ud800"'), expect="2xx|4xx", reaches_novu=True),
    Case("surrogate-low-in-property", _properties_with(b'"\\udc00"'), expect="2xx|4xx", reaches_novu=True),
    Case("surrogate-pair-reversed", _properties_with(b'"\\ude00\\ud83d"'), expect="2xx|4xx", reaches_novu=True),
    Case("surrogate-in-property-key", _raw_track(properties=b'{"\\ud800": 1}'), expect="2xx|4xx",
         reaches_novu=True),
    Case("surrogate-in-messageId", _raw_track(messageId=b'"m-\\ud800"'), expect="2xx|4xx", reaches_novu=True),
    Case("surrogate-in-userId", _raw_track(userId=b'"u-\\ud800"'), expect="2xx|4xx", reaches_novu=True),
    Case("surrogate-in-event-name", _raw_track(event=b'"Order Completed \\ud800"'), expect="2xx|4xx",
         reaches_novu=True),
    Case("surrogate-in-identify-trait", b'{"type": "identify", "userId": "hostile-user", "messageId": "s-id", '
         b'"traits": {"email": "\\ud800@example.com", "plan": "\\udfff"}}', expect="2xx|4xx", reaches_novu=True),
    Case("surrogate-without-messageId", b'{"type": "track", "event": "Order Completed", "userId": "hostile-user", '
         b'"properties": {"value": "\\ud800"}}', expect="2xx|4xx", reaches_novu=True),
    Case("surrogate-in-delete-userId", b'{"type": "delete", "userId": "u-\\udc00", "messageId": "s-del"}',
         expect="2xx|4xx", reaches_novu=True),
    Case("surrogate-in-skipped-page-messageId", b'{"type": "page", "userId": "hostile-user", "name": "Home", '
         b'"messageId": "p-\\ud800"}', expect="2xx|4xx", reaches_novu=True),
    Case("surrogate-in-type", _raw_track(type=b'"\\ud800"'), expect=400),
    Case("surrogate-in-messageId-of-invalid-event", b'{"type": "foo", "userId": "u", "messageId": "m-\\ud800"}',
         expect=400),
    # -- numbers JSON does not have, or Python will not convert ---------------------------------------
    Case("nan-literal", _properties_with(b"NaN"), expect=400),
    Case("infinity-literal", _properties_with(b"Infinity"), expect=400),
    Case("negative-infinity-literal", _properties_with(b"-Infinity"), expect=400),
    Case("float-overflow-1e999", _properties_with(b"1e999"), expect=400),
    Case("float-overflow-negative-1e999", _properties_with(b"-1e999"), expect=400),
    Case("integer-5000-digits", _properties_with(b"9" * 5000), expect=400),
    Case("userId-integer-5000-digits", _raw_track(userId=b"1" * 5000), expect=400),
    # -- nesting ------------------------------------------------------------------------------------
    Case("arrays-101-deep", _properties_with(nested(101, b"[", b"]")), expect=400),
    Case("objects-101-deep", _properties_with(nested(101, b'{"a": ', b"}")), expect=400),
    Case("arrays-1000-deep", nested(1000, b"[", b"]"), expect=400),
    Case("objects-1000-deep", _properties_with(_DEEP_OBJECTS), expect=400),
    Case("arrays-100000-deep", nested(100_000, b"[", b"]"), expect=400),
    Case("objects-100000-deep", nested(100_000, b'{"a": ', b"}"), expect=400),
    Case("open-brackets-only-100000", b"[" * 100_000, expect=400),
    # -- size ---------------------------------------------------------------------------------------
    Case("string-value-5mb-in-typeless-event", track(type=DROP, properties={"blob": _FIVE_MB}), expect=400),
    Case("body-9mb", b'{"blob": "' + b"x" * (9 * MIB) + b'"}', expect=413),
    Case("body-limit-plus-one", b" " * (SERVED_MAX_BODY_BYTES + 1), expect=413),
    Case("body-exactly-limit-is-read", _padded_to(SERVED_MAX_BODY_BYTES, track(type="foo")), expect=400),
    Case("chunked-body-9mb", b'{"blob": "' + b"x" * (9 * MIB) + b'"}', expect=413, chunked=True),
    Case("content-length-over-limit-short-body", track(), expect=413, declared_length=SERVED_MAX_BODY_BYTES + 1),
    Case("content-length-under-actual-body", b'{"blob": "' + b"x" * 65_536 + b'"}', expect=400,
         declared_length=16),
    Case("content-length-over-actual-body", track(), expect=400, declared_length=len(track()) + 100),
    # -- content types ------------------------------------------------------------------------------
    Case("content-type-form", track(), expect=415, headers={"Content-Type": "application/x-www-form-urlencoded"}),
    Case("content-type-xml", track(), expect=415, headers={"Content-Type": "text/xml"}),
    Case("content-type-multipart", track(), expect=415, headers={"Content-Type": "multipart/form-data; boundary=x"}),
    Case("content-type-octet-stream", track(), expect=415, headers={"Content-Type": "application/octet-stream"}),
    # -- methods ------------------------------------------------------------------------------------
    Case("method-get", track(), expect=405, method="GET"),
    Case("method-delete", track(), expect=405, method="DELETE"),
    Case("method-head", track(), expect=405, method="HEAD"),
    Case("method-options", track(), expect=405, method="OPTIONS"),
    Case("method-trace", b"", expect=405, method="TRACE"),
    # -- envelopes and arrays -----------------------------------------------------------------------
    Case("envelope-batch-number", b'{"batch": 1}', expect=400),
    Case("envelope-batch-string", b'{"batch": "x"}', expect=400),
    Case("envelope-batch-of-scalars", b'{"batch": [1, 2]}', expect=400),
    Case("envelope-batch-empty", b'{"batch": []}', expect=400),
    Case("envelope-batch-null", b'{"batch": null}', expect=400),
    Case("envelope-batch-object", _dump({"batch": TRACK}), expect=400),
    Case("envelope-of-envelopes", _dump({"batch": [{"batch": [TRACK]}]}), expect=400),
    Case("array-empty", b"[]", expect=400),
    Case("array-of-scalars", b'[1, "x", true, null, 2.5]', expect=400),
    Case("array-of-arrays", _dump([[TRACK]]), expect=400),
    Case("array-of-2000-invalid-events",
         _dump([_with(TRACK, messageId=f"bad-{index}", type="nope") for index in range(2000)]), expect=400),
    # -- duplicate keys, NUL characters, many keys --------------------------------------------------
    Case("duplicate-type-key-last-invalid", track()[:-1] + b', "type": "nope"}', expect=400),
    Case("duplicate-userId-key-last-object", track()[:-1] + b', "userId": {"id": "u"}}', expect=400),
    Case("nul-in-type-key", track(type=DROP)[:-1] + b', "type\\u0000": "track"}', expect=400),
    Case("nul-in-type-value", track(type="track\u0000"), expect=400),
    Case("nul-in-keys-of-skipped-event", event(SKIPPED, properties={"a\u0000b": 1, "\u0000": "\u0000"}),
         expect=200),
    Case("50k-property-keys-in-typeless-event", track(type=DROP, properties=_many_keys(50_000)), expect=400),
    Case("50k-property-keys-in-skipped-event", event(SKIPPED, properties=_many_keys(50_000)), expect=200),
    # -- accepted quirks ----------------------------------------------------------------------------
    Case("type-capitalised-Track", track(type="Track", messageId="hostile-capitalised"), expect=200,
         reaches_novu=True),
    Case("event-name-only-punctuation", _dump(SKIPPED), expect=200),
]
