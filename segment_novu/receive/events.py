"""The Segment event model: validation against the Spec, tolerant of what Segment really sends.

Tolerated: ``context``/``integrations``/``traits``/``properties`` that are null or ``[]``; ids that
are numbers; timestamps in any format (never parsed); keys with spaces; events without
``messageId``. Refused, with a message naming the field: what no reading of the Spec allows.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

TYPES = ("identify", "track", "page", "screen", "group", "alias", "delete")
DELIVERY_TIME_FIELDS = frozenset({"sentAt", "receivedAt", "_metadata", "writeKey"})


class InvalidEvent(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Event:
    index: int
    type: str
    message_id: str | None
    user_id: str | None
    anonymous_id: str | None
    body: dict = field(repr=False)
    identity: str = field(repr=False)

    @property
    def context(self) -> dict:
        return self.body["context"]

    @property
    def traits(self) -> dict:
        return self.body.get("traits", {})

    @property
    def properties(self) -> dict:
        return self.body.get("properties", {})

    @property
    def name(self) -> str | None:
        """The track's event name, or the page/screen name (validated as text); None for other types."""
        if self.type == "track":
            return self.body["event"]
        return self.body["name"] if self.type in ("page", "screen") else None


def _identifier(body: dict, key: str) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise InvalidEvent(f"{key} must be a string, got {type(value).__name__}")
    text = str(value).strip()
    return text or None


def _object(body: dict, key: str) -> dict:
    value = body.get(key)
    if value is None or value == []:
        return {}
    if not isinstance(value, dict):
        raise InvalidEvent(f"{key} must be an object, got {type(value).__name__}")
    return value


def identity_of(body: dict, event_type: str, user_id: str | None, anonymous_id: str | None) -> str:
    """Same event → same identity: its messageId with its type and user, else its content less
    delivery-time fields. The sender chooses messageIds (custom forwarders and Tracking API clients
    too), so two users' events may share one: only a resend repeats all four."""
    message_id = body.get("messageId")
    if isinstance(message_id, str) and message_id.strip():
        return "m:" + json.dumps([event_type, user_id, anonymous_id, message_id.strip()], ensure_ascii=False)
    content = {key: value for key, value in body.items() if key not in DELIVERY_TIME_FIELDS}
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "c:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


DECLARED_TYPE_LENGTH = 50
MESSAGE_ID_LENGTH = 100


def declared_identity(item: Any) -> tuple[str | None, str | None]:
    """The ``messageId`` and ``type`` an item declares, as text, even when the item breaks the Spec:
    a rejected event keeps them in the reply and its log line, so it can be found."""
    if not isinstance(item, dict):
        return None, None
    message_id, event_type = item.get("messageId"), item.get("type")
    return (
        message_id[:MESSAGE_ID_LENGTH] if isinstance(message_id, str) else None,
        event_type[:DECLARED_TYPE_LENGTH] if isinstance(event_type, str) else None,
    )


def parse(item: Any, index: int) -> Event:
    if not isinstance(item, dict):
        raise InvalidEvent(f"an event must be a JSON object, got {type(item).__name__}")
    event_type = item.get("type")
    if event_type is None:
        raise InvalidEvent("missing type")
    if not isinstance(event_type, str):
        raise InvalidEvent(f"type must be a string, got {type(event_type).__name__}")
    if event_type.strip().lower() not in TYPES:
        raise InvalidEvent(f"unknown type {event_type[:DECLARED_TYPE_LENGTH]!r}: expected one of {', '.join(TYPES)}")
    event_type = event_type.strip().lower()

    body = dict(item)
    body["type"] = event_type
    for key in ("context", "integrations"):
        body[key] = _object(item, key)
    user_id = _identifier(item, "userId")
    anonymous_id = _identifier(item, "anonymousId")
    message_id = _identifier(item, "messageId")

    if event_type == "delete":
        if user_id is None:
            raise InvalidEvent("delete without userId")
    elif user_id is None and anonymous_id is None:
        raise InvalidEvent("neither userId nor anonymousId")

    if event_type in ("identify", "group"):
        body["traits"] = _object(item, "traits")
    if event_type in ("track", "page", "screen"):
        body["properties"] = _object(item, "properties")
    if event_type == "track":
        name = _identifier(item, "event")
        if name is None:
            raise InvalidEvent("track without event")
        body["event"] = name
    if event_type in ("page", "screen"):
        body["name"] = _identifier(item, "name")
    if event_type == "group":
        group_id = _identifier(item, "groupId")
        if group_id is None:
            raise InvalidEvent("group without groupId")
        body["groupId"] = group_id
    if event_type == "alias" and _identifier(item, "previousId") is None:
        raise InvalidEvent("alias without previousId")
    traits = body["context"].get("traits")
    if traits == []:
        body["context"] = {**body["context"], "traits": {}}
    elif traits is not None and not isinstance(traits, dict):
        raise InvalidEvent(f"context.traits must be an object, got {type(traits).__name__}")

    return Event(
        index=index,
        type=event_type,
        message_id=message_id,
        user_id=user_id,
        anonymous_id=anonymous_id,
        body=body,
        identity=identity_of(item, event_type, user_id, anonymous_id),
    )
