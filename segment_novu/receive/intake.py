"""Raw request bytes → a list of event candidates, in any of the three shapes Segment sends.

Shapes: one event object; a bare JSON array (Webhooks (Actions) batching, Destination Functions);
the Tracking API envelope ``{"batch": [...], "context": ..., "integrations": ...}`` whose top-level
``context`` and ``integrations`` merge into each event. Nothing here knows the Spec: ``events`` does.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from segment_novu import codec

ACCEPTED_CONTENT_TYPES = ("application/json", "text/plain", "")

_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


class Rejected(Exception):
    """The request cannot be accepted as sent; Segment must not retry it."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Incoming:
    shape: str  # "event", "array" or "envelope"
    items: list[Any]

    @property
    def is_batch(self) -> bool:
        return self.shape != "event"


def check_content_type(content_type: str | None) -> None:
    media_type = (content_type or "").split(";")[0].strip().lower()
    if media_type in ACCEPTED_CONTENT_TYPES or media_type.endswith("+json"):
        return
    raise Rejected(415, f"unsupported Content-Type {media_type!r}: send application/json")


def json_depth(document: Any, limit: int) -> int:
    """Nesting of arrays and objects, level by level; stops counting once past ``limit``."""
    depth = 0
    level = [document] if isinstance(document, (dict, list)) else []
    while level and depth <= limit:
        depth += 1
        level = [
            child
            for container in level
            for child in (container.values() if isinstance(container, dict) else container)
            if isinstance(child, (dict, list))
        ]
    return depth


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"number {text[:20]} is out of range")
    return number


def _check_surrogates(body: bytes, document: Any) -> None:
    """JSON may escape half of a UTF-16 pair; such a string can be neither logged nor sent to Novu."""
    if not _SURROGATE_ESCAPE.search(body):
        return
    try:
        json.dumps(document, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise Rejected(400, "body holds a lone UTF-16 surrogate escape (\\ud800 to \\udfff)") from None


# Built once: json.loads with options builds a decoder on every call.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float)


def parse_json(body: bytes, max_depth: int) -> Any:
    """Parsed first (the parsers are compiled and fast), depth checked after: a scan of the raw bytes
    for nesting costs more than the parse and, done with a regex, can be made quadratic by
    unterminated strings."""
    if not body.strip():
        raise Rejected(400, "empty body: expected a Segment event, an array of events or a batch")
    try:
        document = codec.loads(body)
    except codec.Unsupported:
        return _parse_exactly(body, max_depth)
    _check_depth(body, document, max_depth)
    return document


def _check_depth(body: bytes, document: Any, max_depth: int) -> None:
    # Nesting cannot exceed the number of opening brackets: most bodies need no walk at all.
    if body.count(b"{") + body.count(b"[") > max_depth and json_depth(document, max_depth) > max_depth:
        raise _too_deep(max_depth)


def _too_deep(max_depth: int) -> Rejected:
    return Rejected(400, f"JSON nested deeper than {max_depth} levels")


def _parse_exactly(body: bytes, max_depth: int) -> Any:
    """The standard library's parse: it keeps integers beyond 64 bits, and its refusals name the fault."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise Rejected(400, f"body is not UTF-8 (byte {error.start})") from None
    try:
        document = _DECODER.decode(text)
    except RecursionError:
        raise _too_deep(max_depth) from None
    except ValueError as error:
        raise Rejected(400, f"body is not valid JSON: {str(error)[:200]}") from None
    _check_depth(body, document, max_depth)
    _check_surrogates(body, document)
    return document


def _merge_envelope(envelope: dict) -> list[Any]:
    shared = {key: envelope[key] for key in ("context", "integrations") if isinstance(envelope.get(key), dict)}
    merged = []
    for item in envelope["batch"]:
        if isinstance(item, dict):
            item = dict(item)
            for key, value in shared.items():
                own = item.get(key)
                item[key] = {**value, **own} if isinstance(own, dict) else value
        merged.append(item)
    return merged


def split(document: Any) -> Incoming:
    if isinstance(document, list):
        if not document:
            raise Rejected(400, "empty batch: the array holds no events")
        return Incoming("array", document)
    if isinstance(document, dict):
        if "batch" in document and "type" not in document:
            if not isinstance(document["batch"], list):
                raise Rejected(400, "batch must be an array of events")
            if not document["batch"]:
                raise Rejected(400, "empty batch: the array holds no events")
            return Incoming("envelope", _merge_envelope(document))
        return Incoming("event", [document])
    raise Rejected(400, f"expected a JSON object or array, got {type(document).__name__}")


def first_element_text(body: bytes) -> bytes | None:
    """The raw bytes of a bare array's first element: what Segment signs for a batch."""
    start = len(body) - len(body.lstrip())
    if body[start : start + 1] != b"[":
        return None
    text = body.decode("utf-8", errors="replace")
    index = start + 1
    while index < len(text) and text[index] in " \t\r\n":
        index += 1
    try:
        _, end = json.JSONDecoder().raw_decode(text, index)
    except (ValueError, RecursionError):
        return None
    return text[index:end].encode("utf-8")
