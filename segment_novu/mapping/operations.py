"""Planned Novu operations: what mapping decides and delivery carries out.

An operation is plain data (method, path, JSON body) plus what delivery needs to order, batch and
deduplicate it. Nothing here performs I/O. Every operation but a trigger is a "subscriber change"
for delivery: run in order per subscriber, paced to Novu's configuration rate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import quote

TRIGGER = "trigger"
UPSERT_SUBSCRIBER = "upsert-subscriber"
DELETE_SUBSCRIBER = "delete-subscriber"
UPSERT_TOPIC = "upsert-topic"
SUBSCRIBE_TO_TOPIC = "subscribe-to-topic"
SET_DEVICE_CREDENTIALS = "set-device-credentials"
UNSUBSCRIBE_FROM_TOPIC = "unsubscribe-from-topic"
CANCEL_TRIGGER = "cancel-trigger"
MEMBER, NOT_MEMBER = "member", "not-member"  # a membership's states in the ledger
SUBSCRIBERS_PATH = "/v2/subscribers"
SINGLE_STATE = "1"


@dataclass(frozen=True)
class Operation:
    event_index: int
    action: str
    method: str
    path: str
    body: dict | None = field(default=None, repr=False)
    subscriber_id: str | None = None
    key: str = ""
    # What this sets the key's target to, for the ledger: a key that names one event's operation has
    # only SINGLE_STATE; a topic's key (its upsert) takes the name as state, so a rename back is sent.
    state: str = SINGLE_STATE
    workflow: str | None = None
    by_default_rule: bool = False
    # A trigger whose run a cancel may call off: the ledger key that cancel is recorded under.
    cancelled_by: str | None = None
    # Novu refuses these for a subscriber it does not know yet (a group or a device token may arrive
    # before the user's identify): the client then creates this subscriber and sends again.
    create_if_missing: dict | None = field(default=None, repr=False)

    @property
    def is_trigger(self) -> bool:
        return self.action == TRIGGER

    @property
    def undone_by_delete(self) -> bool:
        """Deleting the subscriber removes what this did (Novu drops its subscriptions and tokens)."""
        return self.action in (SUBSCRIBE_TO_TOPIC, UNSUBSCRIBE_FROM_TOPIC, SET_DEVICE_CREDENTIALS)


def path_segment(value: str) -> str:
    """One URL path segment. Dots are escaped too: HTTP clients resolve "." and ".." segments away,
    which would send a delete for user ".." to the parent path."""
    return quote(value, safe="").replace(".", "%2E")


def subscriber_path(subscriber_id: str) -> str:
    return SUBSCRIBERS_PATH + "/" + path_segment(subscriber_id)


def cancel_key(transaction_id: str) -> str:
    return "cancel:" + transaction_id


def trigger(event_index, *, workflow, to, payload, transaction_id, subscriber_id, by_default_rule,
            extra: dict | None = None, cancellable: bool = False):
    """``extra``: Novu's optional trigger fields (actor, tenant, context, overrides)."""
    body = {"name": workflow, "to": to, "payload": payload, "transactionId": transaction_id, **(extra or {})}
    return Operation(
        cancelled_by=cancel_key(transaction_id) if cancellable else None,
        event_index=event_index,
        action=TRIGGER,
        method="POST",
        path="/v1/events/trigger",
        body=body,
        subscriber_id=subscriber_id,
        key=transaction_id,
        workflow=workflow,
        by_default_rule=by_default_rule,
    )


def upsert_subscriber(event_index, *, subscriber, key):
    return Operation(
        event_index=event_index,
        action=UPSERT_SUBSCRIBER,
        method="POST",
        path=SUBSCRIBERS_PATH,
        body=subscriber,
        subscriber_id=subscriber["subscriberId"],
        key=key,
    )


def delete_subscriber(event_index, *, subscriber_id, key):
    return Operation(
        event_index=event_index,
        action=DELETE_SUBSCRIBER,
        method="DELETE",
        path=subscriber_path(subscriber_id),
        subscriber_id=subscriber_id,
        key=key,
    )


def upsert_topic(event_index, *, topic_key, name, subscriber_id, key, state):
    """``subscriber_id`` is the member the topic is upserted for: it orders the upsert before that
    member's subscription."""
    body = {"key": topic_key}
    if name:
        body["name"] = name
    return Operation(
        event_index=event_index,
        action=UPSERT_TOPIC,
        method="POST",
        path="/v2/topics",
        body=body,
        subscriber_id=subscriber_id,
        key=key,
        state=state,
    )


def cancel_trigger(event_index, *, workflow, transaction_id, subscriber_id):
    """Novu answers 200 with true (cancelled) or false (nothing pending): both are done."""
    return Operation(
        event_index=event_index,
        action=CANCEL_TRIGGER,
        method="DELETE",
        path="/v1/events/trigger/" + path_segment(transaction_id),
        subscriber_id=subscriber_id,
        key=cancel_key(transaction_id),
        workflow=workflow,
    )


def unsubscribe_from_topic(event_index, *, topic_key, subscriber_id, key):
    return Operation(
        event_index=event_index,
        action=UNSUBSCRIBE_FROM_TOPIC,
        method="DELETE",
        path="/v2/topics/" + path_segment(topic_key) + "/subscriptions",
        body={"subscriptions": [subscriber_id]},
        subscriber_id=subscriber_id,
        key=key,
        state=NOT_MEMBER,
    )


def subscribe_to_topic(event_index, *, topic_key, subscriber, key):
    subscriber_id = subscriber["subscriberId"]
    return Operation(
        event_index=event_index,
        action=SUBSCRIBE_TO_TOPIC,
        method="POST",
        path="/v2/topics/" + path_segment(topic_key) + "/subscriptions",
        body={"subscriptions": [subscriber_id]},
        subscriber_id=subscriber_id,
        key=key,
        state=MEMBER,
        create_if_missing=subscriber,
    )


def set_device_credentials(event_index, *, subscriber, provider_id, integration_identifier, token, key):
    """PATCH appends the token to the subscriber's tokens for the provider (PUT would replace them)."""
    subscriber_id = subscriber["subscriberId"]
    body = {"providerId": provider_id, "credentials": {"deviceTokens": [token]}}
    if integration_identifier:
        body["integrationIdentifier"] = integration_identifier
    return Operation(
        event_index=event_index,
        action=SET_DEVICE_CREDENTIALS,
        method="PATCH",
        path="/v1/subscribers/" + path_segment(subscriber_id) + "/credentials",
        body=body,
        subscriber_id=subscriber_id,
        key=key,
        create_if_missing=subscriber,
    )
