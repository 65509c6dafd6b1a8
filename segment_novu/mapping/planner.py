"""Segment events → planned Novu operations. Pure: no I/O, no clock, same input → same plan.

- ``identify`` → upsert the subscriber (reserved traits as Novu fields, every other trait in ``data``);
- ``track`` → one trigger per target the rules give (the default rule: the event name as a slug,
  skipped when ``known_workflows`` says Novu has no such workflow);
- ``page``, ``screen`` → triggers only when the mapping names them;
- ``group`` → upsert the topic, then subscribe the user to it;
- ``delete`` → delete the subscriber;
- ``alias`` → skipped: Novu cannot merge two subscribers;
- ``context.device.token`` on any event but ``delete`` and ``alias`` → the subscriber's push
  credentials, planned before that event's triggers;
- a cancel entry → ``DELETE /v1/events/trigger/{transactionId}`` for the run its trigger's
  ``transactionKey`` named;
- an Engage audience in the mapping (an identify trait, or Audience Entered / Exited) → the user
  subscribed to or unsubscribed from its topic.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass

from segment_novu.mapping import operations
from segment_novu.mapping.paths import MISSING
from segment_novu.mapping.rules import (
    AUDIENCE_ENTERED,
    AUDIENCE_EXITED,
    SEGMENT_KEY,
    EventRule,
    Rules,
    Target,
)
from segment_novu.receive.events import Event

SUBSCRIBER_FIELDS = ("email", "firstName", "lastName", "phone", "avatar", "locale", "timezone")
TOPIC_KEY_LENGTH = 100
TOPIC_NAME_LENGTH = 100
DEVICE_TOKEN_LENGTH = 4096
ALIAS_REASON = "alias events are not mapped: Novu cannot merge subscribers"
_SNAKE = {"firstName": "first_name", "lastName": "last_name"}
_NOT_SLUG = re.compile(r"[^a-z0-9]+")
# Latin letters that Unicode does not decompose into a base letter and an accent.
_LETTERS_WITHOUT_DECOMPOSITION = str.maketrans(
    {"ß": "ss", "æ": "ae", "œ": "oe", "ø": "o", "đ": "d", "ð": "d", "ł": "l", "þ": "th", "ı": "i"}
)
# Novu's topic key rule (CreateUpdateTopicRequestDto): letters, digits, '-', '_', ':'; 1 to 100 characters.
_TOPIC_KEY = re.compile(r"^[A-Za-z0-9_:-]{1,100}$")
_NOT_TOPIC_KEY = re.compile(r"[^A-Za-z0-9_:-]+")


@dataclass(frozen=True)
class Plan:
    event: Event
    operations: tuple[operations.Operation, ...] = ()
    skip_reason: str | None = None
    # Refused as the caller sent it (answered like an event that breaks the Spec).
    reject_reason: str | None = None
    # The default rule's workflow, left out because known_workflows lacks it.
    missing_workflow: str | None = None


def workflow_for(event_name: str) -> str:
    """The default rule: "Order Completed" → "order-completed", "Café Ordered" → "cafe-ordered".
    Accents are folded to their letter; any other character outside a–z and 0–9 separates words."""
    lowered = event_name.lower()
    if not lowered.isascii():  # an ASCII name has nothing to fold (and most names are ASCII)
        decomposed = unicodedata.normalize("NFKD", lowered.translate(_LETTERS_WITHOUT_DECOMPOSITION))
        lowered = "".join(character for character in decomposed if not unicodedata.combining(character))
    return _NOT_SLUG.sub("-", lowered).strip("-")


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:40]


def transaction_id(event: Event, workflow: str, recipient: str | None = None, repeat: int = 0) -> str:
    """Deterministic per (event, workflow): a resent event dedups, a fan-out does not. ``recipient``
    tells apart triggers of one workflow sent to someone other than the event's user; ``repeat``
    counts the event's earlier triggers of the same workflow to the same recipient."""
    parts = [event.identity, workflow]
    if recipient is not None:
        parts.append(recipient)
    if repeat:
        parts.append(f"#{repeat}")
    return "sgmt-" + _digest(*parts)


def keyed_transaction_id(workflow: str, key: str) -> str:
    """A target's ``transactionKey`` makes its transactionId, namespaced by workflow: the id a cancel
    with the same workflow and key names, whichever events carry them."""
    return "sgmt-" + _digest("key", workflow, key)


def _operation_key(event: Event, action: str) -> str:
    return action + ":" + hashlib.sha256(event.identity.encode("utf-8")).hexdigest()[:40]


def _state_key(action: str, *state: str) -> str:
    """A key for a change that is the same whichever event asks for it (a device token, a topic
    membership): the ledger then spares Novu the repeats every event of a mobile app would send."""
    return action + ":" + _digest(*state)


def topic_key(value) -> str | None:
    """A Novu topic key for a Segment id: kept when Novu accepts it as it is; otherwise its invalid
    characters become '-' and a hash of the id is appended, so two ids never share a key."""
    text = _text(value)
    if text is None:
        return None
    if _TOPIC_KEY.match(text):
        return text
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]
    cleaned = _NOT_TOPIC_KEY.sub("-", text).strip("-")[: TOPIC_KEY_LENGTH - len(digest) - 1]
    return f"{cleaned}-{digest}" if cleaned else f"segment-{digest}"


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


def uses_default_rule(event: Event, rules: Rules) -> bool:
    """Would this event's workflow come from the default rule (and so depend on Novu's workflow list)?"""
    return event.type == "track" and rules.default_rule and event.name not in rules.track


def _segment_metadata(event: Event) -> dict:
    body = event.body
    metadata = {
        "type": event.type,
        "event": body.get("event"),
        "name": body.get("name") if event.type in ("page", "screen") else None,
        "messageId": event.message_id,
        "userId": event.user_id,
        "anonymousId": event.anonymous_id,
        "timestamp": body.get("timestamp"),
    }
    return {key: value for key, value in metadata.items() if value is not None}


def _label(event: Event) -> str:
    return f"{'event' if event.type == 'track' else event.type} {event.name!r}"


def _rule_for(event: Event, rules: Rules) -> EventRule | None:
    table = {"track": rules.track, "page": rules.page, "screen": rules.screen}.get(event.type, {})
    return table.get(event.name) if event.name is not None else None


def _trigger_payload(event: Event, target: Target) -> dict:
    """The trigger's payload: the mapped fields over the event's properties (merge mode), and ``_segment``."""
    mapped = {}
    for key, source in target.payload.items():
        value = source.value(event.body)
        if value is not MISSING:
            mapped[key] = value
    base = event.properties if target.payload_mode == "merge" else {}
    return {**base, **mapped, SEGMENT_KEY: _segment_metadata(event)}


def _mapped_recipient_fields(target: Target, event: Event) -> dict:
    fields = {}
    for name, source in target.to.items():
        value = _text(source.value(event.body))
        if name != "subscriberId" and value is not None:
            fields[name] = value
    return fields


def _source_text(source) -> str:
    return str(source.path) if source.path is not None else "its value"


def _trigger(event: Event, target: Target, recipient: dict, by_default_rule: bool, earlier: dict):
    """The trigger for one target, or why there is none. ``earlier`` counts the triggers planned so far
    per workflow and recipient: a repeat gets its own transactionId, the first keeps the usual one."""
    workflow = target.workflow
    if not all(condition.holds(event.body) for condition in target.when):
        return f"the conditions for workflow {workflow!r} do not hold"
    subscriber_id = recipient["subscriberId"]
    other = None
    if target.topic is not None:
        key = topic_key(target.topic.value(event.body))
        if key is None:
            return f"no topic for workflow {workflow!r}: {_source_text(target.topic)} is missing"
        to, other = {"type": "Topic", "topicKey": key}, "topic:" + key
    elif "subscriberId" in target.to:
        chosen = _text(target.to["subscriberId"].value(event.body))
        if chosen is None:
            return f"no recipient for workflow {workflow!r}: {_source_text(target.to['subscriberId'])} is missing"
        to = {"subscriberId": chosen, **_mapped_recipient_fields(target, event)}
        if chosen != subscriber_id:
            other, subscriber_id = "subscriber:" + chosen, chosen
    else:
        to = {**recipient, **_mapped_recipient_fields(target, event)}
    if target.transaction_key is not None:
        key = _text(target.transaction_key.value(event.body))
        if key is None:
            return f"no transactionKey for workflow {workflow!r}: {_source_text(target.transaction_key)} is missing"
        transaction = keyed_transaction_id(workflow, key)
    else:
        repeat = earlier.get((workflow, other), 0)
        earlier[(workflow, other)] = repeat + 1
        transaction = transaction_id(event, workflow, other, repeat)
    return operations.trigger(
        event.index,
        workflow=workflow,
        to=to,
        payload=_trigger_payload(event, target),
        transaction_id=transaction,
        subscriber_id=subscriber_id,
        by_default_rule=by_default_rule,
        extra=_trigger_fields(event, target),
        cancellable=target.transaction_key is not None,
    )


def _trigger_fields(event: Event, target: Target) -> dict:
    """Novu's optional trigger fields the target maps: actor, tenant, context, overrides."""
    fields: dict[str, object] = {}
    for name, source in (("actor", target.actor), ("tenant", target.tenant)):
        value = _text(source.value(event.body)) if source is not None else None
        if value is not None:
            fields[name] = value
    context = {kind: _text(source.value(event.body)) for kind, source in target.context.items()}
    context = {kind: value for kind, value in context.items() if value is not None}
    if context:
        fields["context"] = context
    if target.overrides is not None:
        fields["overrides"] = target.overrides
    return fields


def _cancel(event: Event, cancel, subscriber_id: str):
    """The cancel operation, or why there is none."""
    if not all(condition.holds(event.body) for condition in cancel.when):
        return f"the conditions for cancelling {cancel.workflow!r} do not hold"
    key = _text(cancel.transaction_key.value(event.body))
    if key is None:
        return f"nothing to cancel for {cancel.workflow!r}: {_source_text(cancel.transaction_key)} is missing"
    return operations.cancel_trigger(
        event.index,
        workflow=cancel.workflow,
        transaction_id=keyed_transaction_id(cancel.workflow, key),
        subscriber_id=subscriber_id,
    )


def _plan_triggers(event: Event, rules: Rules, recipient: dict, known_workflows):
    rule = _rule_for(event, rules)
    name = event.name
    if rule is not None:
        targets, by_default = rule.targets, False
    elif event.type != "track":
        mapped = {"page": rules.page, "screen": rules.screen}[event.type]
        return (), f"{_label(event)} is not in the mapping" if mapped else f"{event.type} events are not mapped to Novu"
    elif not rules.default_rule:
        return (), f"event {name!r} is not in the mapping and the default rule is off"
    else:
        workflow = workflow_for(name or "")
        if not workflow:
            return (), (f"event name {name!r} gives no workflow identifier (the default rule keeps letters a–z, "
                        "accents folded, and digits): name its workflow in the mapping file")
        if known_workflows is not None and workflow not in known_workflows:
            return (), f"no workflow {workflow!r} in Novu"
        targets, by_default = (Target(workflow),), True
    triggers: list[operations.Operation] = []
    reasons: list[str] = []
    earlier: dict = {}
    for target in targets:
        planned = _trigger(event, target, recipient, by_default, earlier)
        if isinstance(planned, str):
            reasons.append(planned)
        else:
            triggers.append(planned)
    for cancel in rule.cancels if rule is not None else ():
        planned = _cancel(event, cancel, recipient["subscriberId"])
        (reasons if isinstance(planned, str) else triggers).append(planned)
    return tuple(triggers), (reasons[0] if reasons else None)


def _plan_group(event: Event, rules: Rules, recipient: dict):
    group = rules.group
    key = topic_key(group.topic_key.value(event.body))
    if key is None:
        return (), f"group without a topic key: {_source_text(group.topic_key)} is missing"
    name = (_text(group.topic_name.value(event.body)) or "")[:TOPIC_NAME_LENGTH]
    subscriber_id = recipient["subscriberId"]
    upsert = operations.upsert_topic(
        event.index,
        topic_key=key,
        name=name or None,
        subscriber_id=subscriber_id,
        key=_state_key(operations.UPSERT_TOPIC, key),
        state=_digest(name),
    )
    subscribe = operations.subscribe_to_topic(
        event.index,
        topic_key=key,
        subscriber=recipient,
        key=_state_key(operations.SUBSCRIBE_TO_TOPIC, key, subscriber_id),
    )
    return (upsert, subscribe), None


def _device_token_problem(event: Event, rules: Rules) -> str | None:
    """Why the event's device token cannot be taken, when the mapping takes tokens; None when it can
    (or there is none: absent, null or blank)."""
    device = event.context.get("device")
    token = device.get("token") if isinstance(device, dict) else None
    if not rules.devices or token is None:
        return None
    if not isinstance(token, str):
        return f"context.device.token must be a string, got {type(token).__name__}"
    if len(token.strip()) > DEVICE_TOKEN_LENGTH:
        return f"context.device.token is longer than {DEVICE_TOKEN_LENGTH} characters"
    return None


def _device_credentials(event: Event, rules: Rules, subscriber: dict) -> tuple[operations.Operation, ...]:
    device = event.context.get("device")
    token = device.get("token") if isinstance(device, dict) else None
    if not isinstance(token, str) or not token.strip():
        return ()
    token = token.strip()
    for rule in rules.devices:
        if all(condition.holds(event.body) for condition in rule.when):
            subscriber_id = subscriber["subscriberId"]
            key = _state_key(operations.SET_DEVICE_CREDENTIALS, subscriber_id, rule.provider_id,
                             rule.integration_identifier or "", token)
            return (
                operations.set_device_credentials(
                    event.index,
                    subscriber=subscriber,
                    provider_id=rule.provider_id,
                    integration_identifier=rule.integration_identifier,
                    token=token,
                    key=key,
                ),
            )
    return ()


def _audience_moves(event: Event, rules: Rules) -> list[tuple[str, bool]]:
    """(audience key, entered?) for the audiences in the mapping this event moves the user in or out of:
    an identify's ``traits.<key>`` set to true or false, or Engage's Audience Entered / Exited."""
    if not rules.audiences:
        return []
    if event.type == "identify":
        return [(key, value) for key, value in event.traits.items()
                if key in rules.audiences and isinstance(value, bool)]
    if event.type == "track" and event.name in (AUDIENCE_ENTERED, AUDIENCE_EXITED):
        key = event.properties.get("audience_key")
        if isinstance(key, str) and key in rules.audiences:
            return [(key, event.name == AUDIENCE_ENTERED)]
    return []


def _audience_changes(event: Event, rules: Rules, recipient: dict) -> tuple[operations.Operation, ...]:
    """Topic memberships for the audiences the event moves the user in or out of (ignored ones left out)."""
    changes = []
    subscriber_id = recipient["subscriberId"]
    for audience, entered in _audience_moves(event, rules):
        rule = rules.audiences[audience]
        key = topic_key(rule.topic.value(event.body)) if rule.topic is not None and not rule.ignore else None
        if key is None:
            continue
        membership = _state_key(operations.SUBSCRIBE_TO_TOPIC, key, subscriber_id)
        if entered:
            changes.append(operations.upsert_topic(
                event.index, topic_key=key, name=None, subscriber_id=subscriber_id,
                key=_state_key(operations.UPSERT_TOPIC, key), state=_digest(""),
            ))
            changes.append(operations.subscribe_to_topic(event.index, topic_key=key, subscriber=recipient,
                                                         key=membership))
        else:
            changes.append(operations.unsubscribe_from_topic(event.index, topic_key=key,
                                                             subscriber_id=subscriber_id, key=membership))
    return tuple(changes)


def _plan_identify(event: Event, rules: Rules, subscriber_id: str) -> Plan:
    traits = event.traits
    subscriber = {"subscriberId": subscriber_id, **subscriber_fields(traits, event.context)}
    reserved = _reserved_trait_keys()
    data = {key: value for key, value in traits.items() if key not in reserved}
    if data:
        subscriber["data"] = data
    operation = operations.upsert_subscriber(
        event.index, subscriber=subscriber, key=_operation_key(event, operations.UPSERT_SUBSCRIBER)
    )
    return Plan(event, operations=(
        operation, *_device_credentials(event, rules, subscriber), *_audience_changes(event, rules, subscriber)
    ))


def plan(event: Event, rules: Rules, anonymous_events: str = "skip", known_workflows: frozenset | None = None) -> Plan:
    """``known_workflows``: the workflow identifiers Novu has, or None when unknown (then every
    default-rule trigger is sent and Novu's answer decides)."""
    if event.type == "alias":
        return Plan(event, skip_reason=ALIAS_REASON)
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
    rule = _rule_for(event, rules)
    if rule is not None and rule.ignore:
        return Plan(event, skip_reason=f"{_label(event)} is ignored by the mapping")
    if event.type == "group" and rules.group.ignore:
        return Plan(event, skip_reason="group events are ignored by the mapping")
    moves = _audience_moves(event, rules) if event.type == "track" else []
    if moves and rules.audiences[moves[0][0]].ignore:
        return Plan(event, skip_reason=f"audience {moves[0][0]!r} is ignored by the mapping")
    token_problem = _device_token_problem(event, rules)
    if token_problem is not None:
        return Plan(event, reject_reason=token_problem)
    if event.type == "identify":
        return _plan_identify(event, rules, subscriber_id)
    recipient = {"subscriberId": subscriber_id, **subscriber_fields(event.context.get("traits") or {}, event.context)}
    credentials = _device_credentials(event, rules, recipient) + _audience_changes(event, rules, recipient)
    missing = None
    if event.type == "group":
        planned, reason = _plan_group(event, rules, recipient)
    else:
        planned, reason = _plan_triggers(event, rules, recipient, known_workflows)
        if known_workflows is not None and uses_default_rule(event, rules):
            workflow = workflow_for(event.name or "")
            missing = workflow if workflow and workflow not in known_workflows else None
    if not credentials and not planned:
        return Plan(event, skip_reason=reason, missing_workflow=missing)
    return Plan(event, operations=credentials + planned, missing_workflow=missing)
