"""Segment events → planned Novu operations. Pure: no I/O, no clock, same input → same plan.

- ``identify`` → upsert the subscriber (reserved traits as Novu fields, every other trait in ``data``);
- ``track`` → one workflow trigger per workflow the rules give;
- ``delete`` → delete the subscriber;
- ``page``, ``screen``, ``group``, ``alias`` → skipped with a reason.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from segment_novu import operations
from segment_novu.events import Event
from segment_novu.rules import Rules

SEGMENT_KEY = "_segment"
SUBSCRIBER_FIELDS = ("email", "firstName", "lastName", "phone", "avatar", "locale", "timezone")
_SNAKE = {"firstName": "first_name", "lastName": "last_name"}
_NOT_SLUG = re.compile(r"[^a-z0-9]+")
_NOT_MAPPED_YET = {
    "page": "page events are not mapped to Novu",
    "screen": "screen events are not mapped to Novu",
    "group": "group events are not mapped to Novu",
    "alias": "alias events are not mapped: Novu cannot merge subscribers",
}


@dataclass(frozen=True)
class Plan:
    event: Event
    operations: tuple[operations.Operation, ...] = ()
    skip_reason: str | None = None


def workflow_for(event_name: str) -> str:
    """The default rule: "Order Completed" → "order-completed"."""
    return _NOT_SLUG.sub("-", event_name.lower()).strip("-")


def transaction_id(event: Event, workflow: str) -> str:
    """Deterministic per (event, workflow): a resent event dedups, a fan-out does not."""
    digest = hashlib.sha256(f"{event.identity}\x1f{workflow}".encode("utf-8")).hexdigest()
    return "sgmt-" + digest[:40]


def _operation_key(event: Event, action: str) -> str:
    return action + ":" + hashlib.sha256(event.identity.encode("utf-8")).hexdigest()[:40]


def _text(value) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def subscriber_fields(traits: dict, context: dict) -> dict:
    """Novu's subscriber fields from Segment traits (camelCase or snake_case) and context."""
    fields = {}
    for name in SUBSCRIBER_FIELDS:
        value = _text(traits.get(name))
        if value is None and name in _SNAKE:
            value = _text(traits.get(_SNAKE[name]))
        if value is None and name in ("locale", "timezone"):
            value = _text(context.get(name))
        if value is not None:
            fields[name] = value
    full_name = _text(traits.get("name"))
    if full_name and "firstName" not in fields and "lastName" not in fields:
        first, _, last = full_name.partition(" ")
        fields["firstName"] = first
        if last.strip():
            fields["lastName"] = last.strip()
    return fields


def _reserved_trait_keys() -> set[str]:
    return set(SUBSCRIBER_FIELDS) | set(_SNAKE.values()) | {"name"}


def subscriber_id_for(event: Event, anonymous_events: str) -> str | None:
    if event.user_id is not None:
        return event.user_id
    if anonymous_events == "anonymous-id":
        return event.anonymous_id
    return None


def _segment_metadata(event: Event) -> dict:
    body = event.body
    metadata = {
        "type": event.type,
        "event": body.get("event"),
        "messageId": event.message_id,
        "userId": event.user_id,
        "anonymousId": event.anonymous_id,
        "timestamp": body.get("timestamp"),
    }
    return {key: value for key, value in metadata.items() if value is not None}


def _plan_track(event: Event, rules: Rules, subscriber_id: str) -> Plan:
    name = event.name
    rule = rules.track.get(name)
    if rule is not None and rule.ignore:
        return Plan(event, skip_reason=f"event {name!r} is ignored by the mapping")
    if rule is not None:
        workflows, by_default = rule.workflows, False
    elif rules.default_rule:
        workflow = workflow_for(name)
        if not workflow:
            return Plan(event, skip_reason=f"event name {name!r} gives no workflow identifier")
        workflows, by_default = (workflow,), True
    else:
        return Plan(event, skip_reason=f"event {name!r} is not in the mapping and the default rule is off")
    to = {"subscriberId": subscriber_id, **subscriber_fields(event.context.get("traits") or {}, event.context)}
    payload = {**event.properties, SEGMENT_KEY: _segment_metadata(event)}
    planned = tuple(
        operations.trigger(
            event.index,
            workflow=workflow,
            to=to,
            payload=payload,
            transaction_id=transaction_id(event, workflow),
            subscriber_id=subscriber_id,
            by_default_rule=by_default,
        )
        for workflow in workflows
    )
    return Plan(event, operations=planned)


def _plan_identify(event: Event, subscriber_id: str) -> Plan:
    traits = event.traits
    subscriber = {"subscriberId": subscriber_id, **subscriber_fields(traits, event.context)}
    reserved = _reserved_trait_keys()
    data = {key: value for key, value in traits.items() if key not in reserved}
    if data:
        subscriber["data"] = data
    operation = operations.upsert_subscriber(
        event.index, subscriber=subscriber, key=_operation_key(event, operations.UPSERT_SUBSCRIBER)
    )
    return Plan(event, operations=(operation,))


def plan(event: Event, rules: Rules, anonymous_events: str = "skip") -> Plan:
    if event.type in _NOT_MAPPED_YET:
        return Plan(event, skip_reason=_NOT_MAPPED_YET[event.type])
    if event.type == "delete":
        operation = operations.delete_subscriber(
            event.index,
            subscriber_id=event.user_id,
            key=_operation_key(event, operations.DELETE_SUBSCRIBER),
        )
        return Plan(event, operations=(operation,))
    subscriber_id = subscriber_id_for(event, anonymous_events)
    if subscriber_id is None:
        return Plan(event, skip_reason="anonymous event (no userId) and ANONYMOUS_EVENTS=skip")
    if event.type == "identify":
        return _plan_identify(event, subscriber_id)
    return _plan_track(event, rules, subscriber_id)
