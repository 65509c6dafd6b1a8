"""Planned Novu operations: what mapping decides and delivery carries out.

An operation is plain data (method, path, JSON body) plus what delivery needs to order, batch and
deduplicate it. Nothing here performs I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import quote

TRIGGER = "trigger"
UPSERT_SUBSCRIBER = "upsert-subscriber"
DELETE_SUBSCRIBER = "delete-subscriber"


@dataclass(frozen=True)
class Operation:
    event_index: int
    action: str
    method: str
    path: str
    body: dict | None = field(default=None, repr=False)
    subscriber_id: str | None = None
    key: str = ""
    workflow: str | None = None
    by_default_rule: bool = False

    @property
    def is_trigger(self) -> bool:
        return self.action == TRIGGER


def subscriber_path(subscriber_id: str) -> str:
    return "/v2/subscribers/" + quote(subscriber_id, safe="")


def trigger(event_index, *, workflow, to, payload, transaction_id, subscriber_id, by_default_rule):
    body = {"name": workflow, "to": to, "payload": payload, "transactionId": transaction_id}
    return Operation(
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
        path="/v2/subscribers",
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
