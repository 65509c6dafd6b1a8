"""The sandbox's memory and rules: subscribers, topics, workflows, in-app messages, Inbox sessions.

Every method answers ``(status, body)`` as Novu would; ``server.py`` only moves them over HTTP. All of
it runs on the server's one event loop, so no method needs a lock.

Two shapes of a message leave here: the Inbox API's ``InboxNotification`` (``notification``) and the
raw message entity the realtime socket pushes (``raw_message``), which the Inbox maps itself.
"""

from __future__ import annotations

import hashlib
import hmac as hmac_module
import itertools
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from novu_sandbox.workflows import SEVERITIES, Workflow, render_in_app

TRIGGERS_PER_BULK = 100
RECIPIENTS_PER_TRIGGER = 100
SUBSCRIPTIONS_PER_CALL = 100
NOTIFICATIONS_PAGE_LIMIT = 100
SUBSCRIBER_FIELDS = ("firstName", "lastName", "email", "phone", "avatar", "locale", "timezone", "data")
ORGANIZATION_ID = "sandbox-organization"
ENVIRONMENT_ID = "sandbox-environment"
INVALID_HMAC = "Please provide a valid HMAC hash"


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def error(status: int, message, error_name: str, path: str = "/", **extra) -> tuple[int, dict]:
    """Novu's error body (not wrapped in ``data``)."""
    return status, {"statusCode": status, "timestamp": now(), "path": path, "message": message,
                    "error": error_name, **extra}


def subscriber_hash(secret_key: str, subscriber_id: str) -> str:
    return hmac_module.new(secret_key.encode(), subscriber_id.encode(), hashlib.sha256).hexdigest()


@dataclass
class Message:
    id: str
    transaction_id: str
    subscriber_id: str
    workflow: Workflow
    content: dict
    payload: dict
    created_at: str
    read_at: str | None = None
    seen_at: str | None = None
    archived_at: str | None = None
    snoozed_until: str | None = None
    completed: str | None = None  # "primary" or "secondary": the action the subscriber completed
    tags: tuple[str, ...] = ()

    @property
    def severity(self) -> str:
        return self.content.get("severity", "none")


@dataclass
class Session:
    token: str
    subscriber_id: str


@dataclass
class Sandbox:
    workflows: list[Workflow]
    secret_key: str
    application_identifier: str
    hmac: bool = False
    subscribers: dict[str, dict] = field(default_factory=dict)
    topics: dict[str, dict] = field(default_factory=dict)  # key → {"name", "subscribers": [ids]}
    messages: list[Message] = field(default_factory=list)
    transactions: dict[str, dict] = field(default_factory=dict)  # transactionId → the first answer
    sessions: dict[str, Session] = field(default_factory=dict)
    listeners: dict[str, list[Callable[[dict], None]]] = field(default_factory=dict)

    def __post_init__(self):
        self._ids = itertools.count(1)
        self._by_identifier = {workflow.identifier: workflow for workflow in self.workflows}

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):08x}{secrets.token_hex(8)}"

    # -- subscribers -----------------------------------------------------------------------------

    def subscriber_dto(self, subscriber_id: str) -> dict:
        """SubscriberResponseDto."""
        stored = self.subscribers[subscriber_id]
        return {"_id": stored["_id"], "subscriberId": subscriber_id,
                **{name: stored[name] for name in SUBSCRIBER_FIELDS if stored.get(name) is not None},
                "_organizationId": ORGANIZATION_ID, "_environmentId": ENVIRONMENT_ID, "deleted": False,
                "createdAt": stored["createdAt"], "updatedAt": stored["updatedAt"]}

    def upsert_subscriber(self, subscriber_id: str, fields: dict) -> dict:
        stamp = now()
        stored = self.subscribers.setdefault(
            subscriber_id, {"_id": self._new_id("sub"), "createdAt": stamp, "credentials": {}})
        stored.update({name: fields[name] for name in SUBSCRIBER_FIELDS if name in fields})
        stored["updatedAt"] = stamp
        return self.subscriber_dto(subscriber_id)

    def create_subscriber(self, body: dict):
        subscriber_id = body.get("subscriberId")
        if not isinstance(subscriber_id, str) or not subscriber_id.strip():
            return error(400, ["subscriberId must be a string", "subscriberId should not be empty"],
                         "Bad Request", "/v2/subscribers")
        return 201, {"data": self.upsert_subscriber(subscriber_id, body)}

    def patch_subscriber(self, subscriber_id: str, body: dict):
        if subscriber_id not in self.subscribers:
            return self._subscriber_not_found(subscriber_id, f"/v2/subscribers/{subscriber_id}")
        return 200, {"data": self.upsert_subscriber(subscriber_id, body)}

    def delete_subscriber(self, subscriber_id: str):
        if subscriber_id not in self.subscribers:
            return self._subscriber_not_found(subscriber_id, f"/v2/subscribers/{subscriber_id}")
        # Novu removes the subscriber's messages, preferences and topic subscriptions with it.
        del self.subscribers[subscriber_id]
        self.messages = [message for message in self.messages if message.subscriber_id != subscriber_id]
        for topic in self.topics.values():
            if subscriber_id in topic["subscribers"]:
                topic["subscribers"].remove(subscriber_id)
        return 200, {"data": {"acknowledged": True, "status": "deleted"}}

    def set_credentials(self, subscriber_id: str, body: dict, *, replace: bool):
        path = f"/v1/subscribers/{subscriber_id}/credentials"
        if subscriber_id not in self.subscribers:
            return error(404, f"SubscriberId: {subscriber_id} not found", "Not Found", path)
        provider = body.get("providerId")
        tokens = (body.get("credentials") or {}).get("deviceTokens") or []
        if not isinstance(provider, str) or not isinstance(tokens, list):
            return error(400, ["providerId must be a string"], "Bad Request", path)
        known = self.subscribers[subscriber_id]["credentials"]
        previous = [] if replace else known.get(provider, [])
        known[provider] = previous + [token for token in tokens if token not in previous]
        return 200, {"data": self.subscriber_dto(subscriber_id)}

    def _subscriber_not_found(self, subscriber_id: str, path: str):
        return error(404, f"Subscriber with ID '{subscriber_id}' could not be found.", "Not Found", path)

    # -- topics ----------------------------------------------------------------------------------

    def _topic_dto(self, key: str) -> dict:
        topic = self.topics[key]
        dto = {"_id": topic["_id"], "key": key, "createdAt": topic["createdAt"], "updatedAt": topic["updatedAt"]}
        return {**dto, "name": topic["name"]} if topic.get("name") else dto

    def _ensure_topic(self, key: str, name: str | None = None) -> tuple[dict, bool]:
        created = key not in self.topics
        stamp = now()
        topic = self.topics.setdefault(key, {"_id": self._new_id("top"), "createdAt": stamp, "subscribers": []})
        if name is not None:
            topic["name"] = name
        topic["updatedAt"] = stamp
        return topic, created

    def upsert_topic(self, body: dict):
        key = body.get("key")
        if not isinstance(key, str) or not key:
            return error(400, ["key must be a string"], "Bad Request", "/v2/topics")
        _, created = self._ensure_topic(key, body.get("name"))
        return (201 if created else 200), {"data": self._topic_dto(key)}

    def change_subscriptions(self, key: str, body: dict, *, subscribe: bool):
        path = f"/v2/topics/{key}/subscriptions"
        requested = body.get("subscriptions")
        if not isinstance(requested, list) or not 0 < len(requested) <= SUBSCRIPTIONS_PER_CALL:
            return error(400, [f"subscriptions must contain between 1 and {SUBSCRIPTIONS_PER_CALL} elements"],
                         "Bad Request", path)
        ids = [item if isinstance(item, str) else (item or {}).get("subscriberId") for item in requested]
        if subscribe:
            topic, _ = self._ensure_topic(key)
        elif key not in self.topics:
            return error(404, f"Topic with key '{key}' could not be found.", "Not Found", path)
        else:
            topic = self.topics[key]
        done, errors = [], []
        for subscriber_id in ids:
            if subscriber_id not in self.subscribers:
                errors.append({"subscriberId": subscriber_id, "code": "SUBSCRIBER_NOT_FOUND",
                               "message": f"Subscriber with ID '{subscriber_id}' could not be found."})
                continue
            if subscribe and subscriber_id not in topic["subscribers"]:
                topic["subscribers"].append(subscriber_id)
            if not subscribe and subscriber_id in topic["subscribers"]:
                topic["subscribers"].remove(subscriber_id)
            done.append(self._subscription_dto(key, subscriber_id))
        answer = {"data": done, "meta": {"totalCount": len(ids), "successful": len(done), "failed": len(errors)}}
        if errors:
            answer["errors"] = errors
        return (201 if subscribe else 200), {"data": answer}

    def _subscription_dto(self, key: str, subscriber_id: str) -> dict:
        topic = self.topics[key]
        stamp = topic["updatedAt"]
        return {"_id": f"{topic['_id']}-{self.subscribers[subscriber_id]['_id']}",
                "identifier": f"tk={key}:si={subscriber_id}",
                "topic": {"_id": topic["_id"], "key": key, **({"name": topic["name"]} if topic.get("name") else {})},
                "subscriber": {"_id": self.subscribers[subscriber_id]["_id"], "subscriberId": subscriber_id},
                "createdAt": stamp, "updatedAt": stamp}

    # -- workflows and triggers ------------------------------------------------------------------

    def list_workflows(self, limit: int, offset: int):
        page = self.workflows[offset:offset + limit]
        return 200, {"data": {"workflows": [self._workflow_dto(workflow) for workflow in page],
                              "totalCount": len(self.workflows)}}

    @staticmethod
    def _workflow_dto(workflow: Workflow) -> dict:
        stamp = "2026-01-01T00:00:00.000Z"
        steps = [{"slug": "in-app-step", "type": "in_app"}] if workflow.in_app else []
        return {"_id": f"wf-{workflow.identifier}", "workflowId": workflow.identifier,
                "slug": f"{workflow.identifier}_wf", "name": workflow.name, "tags": list(workflow.tags),
                "status": "ACTIVE", "origin": "novu-cloud", "createdAt": stamp, "updatedAt": stamp,
                "stepTypeOverviews": [step["type"] for step in steps], "steps": steps}

    def trigger(self, event: dict):
        problem = self._trigger_problem(event)
        if problem:
            return error(400, [problem], "Bad Request", "/v1/events/trigger")
        if event["name"] not in self._by_identifier:
            message = f"Workflow with identifier {event['name']} cannot be found"
            # Novu's document gives every 422 an ``errors`` record (empty here: no field is at fault).
            return error(422, message, "Unprocessable Entity", "/v1/events/trigger", type="workflow_not_found",
                         errors={})
        return 201, {"data": self._deliver(event)}

    def trigger_bulk(self, body: dict):
        events = body.get("events") if isinstance(body, dict) else None
        if not isinstance(events, list) or not 0 < len(events) <= TRIGGERS_PER_BULK:
            return error(400, [f"events must contain between 1 and {TRIGGERS_PER_BULK} elements"],
                         "Bad Request", "/v1/events/trigger/bulk")
        slots = []
        for event in events:
            problem = self._trigger_problem(event)
            if problem:
                slots.append({"acknowledged": True, "status": "error", "error": [problem]})
            elif event["name"] not in self._by_identifier:
                slots.append({"acknowledged": True, "status": "error", "error": ["workflow_not_found"]})
            else:
                slots.append(self._deliver(event))
        return 201, {"data": slots}

    @staticmethod
    def _trigger_problem(event) -> str | None:
        if not isinstance(event, dict):
            return "each event must be an object"
        if not isinstance(event.get("name"), str) or not event["name"]:
            return "name must be a string"
        if event.get("to") in (None, "", []):
            return "to should not be empty"
        if not isinstance(event.get("payload", {}), dict):
            return "payload must be an object"
        return None

    def _recipients(self, to) -> list[str]:
        """Subscriber ids of ``to``: upserting the subscriber objects, expanding topics, in order, once each."""
        recipients: list[str] = []
        for target in (to if isinstance(to, list) else [to])[:RECIPIENTS_PER_TRIGGER]:
            if isinstance(target, (str, int)) and not isinstance(target, bool):
                ids = [str(target)]
                if ids[0] not in self.subscribers:
                    self.upsert_subscriber(ids[0], {})
            elif isinstance(target, dict) and target.get("type") == "Topic":
                ids = list(self.topics.get(str(target.get("topicKey")), {}).get("subscribers", []))
            elif isinstance(target, dict) and target.get("subscriberId"):
                ids = [str(target["subscriberId"])]
                self.upsert_subscriber(ids[0], target)
            else:
                ids = []
            recipients.extend(subscriber_id for subscriber_id in ids if subscriber_id not in recipients)
        return recipients

    def _deliver(self, event: dict) -> dict:
        transaction_id = event.get("transactionId") or self._new_id("txn")
        if transaction_id in self.transactions:  # Novu's worker drops a repeated transactionId
            return self.transactions[transaction_id]
        answer = {"acknowledged": True, "status": "processed", "transactionId": transaction_id}
        self.transactions[transaction_id] = answer
        workflow = self._by_identifier[event["name"]]
        payload = event.get("payload") or {}
        for subscriber_id in self._recipients(event["to"]):
            if workflow.in_app is None:
                continue
            subscriber = self.subscribers[subscriber_id]
            variables = {"payload": payload, "subscriber": {"subscriberId": subscriber_id, **subscriber}}
            message = Message(self._new_id("msg"), transaction_id, subscriber_id, workflow,
                              render_in_app(workflow.in_app, variables), payload, now(), tags=workflow.tags)
            self.messages.append(message)
            self._push(subscriber_id, "notification_received", {"message": self.raw_message(message)})
            self._push_counts(subscriber_id)
        return answer

    # -- the Inbox -------------------------------------------------------------------------------

    def open_session(self, body: dict):
        path = "/v1/inbox/session"
        if body.get("applicationIdentifier") != self.application_identifier:
            return error(400, "Please provide a valid application identifier", "Bad Request", path)
        subscriber = body.get("subscriber") if isinstance(body.get("subscriber"), dict) else {}
        subscriber_id = subscriber.get("subscriberId") or body.get("subscriberId")
        if not isinstance(subscriber_id, str) or not subscriber_id:
            return error(400, ["subscriberId should not be empty"], "Bad Request", path)
        given_hash = body.get("subscriberHash")
        hash_valid = isinstance(given_hash, str) and hmac_module.compare_digest(
            given_hash.encode(), subscriber_hash(self.secret_key, subscriber_id).encode())
        if self.hmac and not hash_valid:
            return error(400, INVALID_HMAC, "Bad Request", path)
        # As in Novu: the session creates the subscriber; its profile fields only count with a valid hash.
        known = subscriber_id in self.subscribers
        if not known or hash_valid:
            self.upsert_subscriber(subscriber_id, subscriber if hash_valid else {})
        token = secrets.token_urlsafe(24)
        self.sessions[token] = Session(token, subscriber_id)
        counts = self.unread_counts(subscriber_id)
        return 201, {"data": {
            "token": token, "totalUnreadCount": counts["total"], "unreadCount": counts,
            "removeNovuBranding": False, "maxSnoozeDurationHours": 90 * 24, "isDevelopmentMode": True,
            "applicationIdentifier": self.application_identifier, "contextKeys": []}}

    def session(self, authorization: str | None) -> Session | None:
        if not authorization or not authorization.startswith("Bearer "):
            return None
        return self.sessions.get(authorization[len("Bearer "):].strip())

    def _of(self, subscriber_id: str) -> list[Message]:
        return [message for message in self.messages if message.subscriber_id == subscriber_id]

    def unread_counts(self, subscriber_id: str) -> dict:
        severity = {name: 0 for name in SEVERITIES}
        for message in self._of(subscriber_id):
            if message.read_at is None and message.archived_at is None and message.snoozed_until is None:
                severity[message.severity] += 1
        return {"total": sum(severity.values()), "severity": severity}

    def count(self, subscriber_id: str, filters: list[dict]):
        """Novu echoes each filter back beside its count: the Inbox keys its badge by ``filter.severity``."""
        counts = [{"count": sum(1 for message in self._of(subscriber_id) if matches(message, query)),
                   "filter": query} for query in filters]
        return 200, {"data": counts}

    def list_notifications(self, subscriber_id: str, query: dict, limit: int, offset: int, after: str | None):
        chosen = [message for message in reversed(self._of(subscriber_id)) if matches(message, query)]
        if after:
            ids = [message.id for message in chosen]
            chosen = chosen[ids.index(after) + 1:] if after in ids else []
        page = chosen[offset:offset + limit]
        return 200, {"data": [self.notification(message) for message in page],
                     "hasMore": len(chosen) > offset + limit, "filter": query}

    def find(self, subscriber_id: str, message_id: str) -> Message | None:
        return next((message for message in self._of(subscriber_id) if message.id == message_id), None)

    def change(self, subscriber_id: str, message_id: str, action: str, body: dict):
        message = self.find(subscriber_id, message_id)
        path = f"/v1/inbox/notifications/{message_id}/{action}"
        if message is None:
            return error(404, f"Notification with id: {message_id} is not found.", "Not Found", path)
        stamp = now()
        if action == "read":
            message.read_at = message.read_at or stamp
            message.seen_at = message.seen_at or stamp
        elif action == "unread":
            message.read_at = None
        elif action == "archive":
            message.archived_at = message.archived_at or stamp
            message.read_at = message.read_at or stamp
        elif action == "unarchive":
            message.archived_at = None
        elif action == "snooze":
            message.snoozed_until = body.get("snoozeUntil")
        elif action == "unsnooze":
            message.snoozed_until = None
        elif action in ("complete", "revert"):
            kind = body.get("actionType")
            if kind not in ("primary", "secondary"):
                return error(400, ["actionType must be one of the following values: primary, secondary"],
                             "Bad Request", path)
            message.completed = kind if action == "complete" else None
        self._push_counts(subscriber_id)
        return 200, {"data": self.notification(message)}

    def delete(self, subscriber_id: str, message_id: str):
        message = self.find(subscriber_id, message_id)
        if message is None:
            path = f"/v1/inbox/notifications/{message_id}/delete"
            return error(404, f"Notification with id: {message_id} is not found.", "Not Found", path)
        self.messages.remove(message)
        self._push_counts(subscriber_id)
        return 204, None

    def change_all(self, subscriber_id: str, action: str, body: dict):
        query = {key: body[key] for key in ("tags", "data") if body.get(key) is not None}
        stamp = now()
        for message in [message for message in self._of(subscriber_id) if matches(message, query)]:
            if action in ("read", "read-archive"):
                message.read_at = message.read_at or stamp
            if action in ("archive", "read-archive"):
                message.archived_at = message.archived_at or stamp
            if action == "delete":
                self.messages.remove(message)
        self._push_counts(subscriber_id)
        return 204, None

    def mark_seen(self, subscriber_id: str, body: dict):
        ids = set(body.get("notificationIds") or [])
        stamp = now()
        for message in self._of(subscriber_id):
            if not ids or message.id in ids:
                message.seen_at = message.seen_at or stamp
        unseen = sum(1 for message in self._of(subscriber_id) if message.seen_at is None)
        self._push(subscriber_id, "unseen_count_changed", {"unseenCount": unseen})
        return 204, None

    # -- the two shapes of a message -------------------------------------------------------------

    def _to(self, message: Message) -> dict:
        stored = self.subscribers.get(message.subscriber_id, {})
        return {"id": stored.get("_id"), "subscriberId": message.subscriber_id,
                **{name: stored[name] for name in ("firstName", "lastName", "avatar") if stored.get(name)}}

    @staticmethod
    def _action(message: Message, kind: str) -> dict | None:
        action = message.content.get(f"{kind}Action")
        if action is None:
            return None
        shaped = {"label": action["label"], "isCompleted": message.completed == kind}
        return {**shaped, "redirect": action["redirect"]} if action.get("redirect") else shaped

    def notification(self, message: Message) -> dict:
        """InboxNotification, as Novu's notification mapper gives it."""
        content = message.content
        shaped = {
            "id": message.id, "transactionId": message.transaction_id, "body": content["body"],
            "to": self._to(message), "isRead": message.read_at is not None, "isSeen": message.seen_at is not None,
            "isArchived": message.archived_at is not None, "isSnoozed": message.snoozed_until is not None,
            "createdAt": message.created_at, "readAt": message.read_at, "firstSeenAt": message.seen_at,
            "archivedAt": message.archived_at, "channelType": "in_app", "tags": list(message.tags),
            "severity": message.severity, "data": content.get("data", {}),
            "workflow": {"id": f"wf-{message.workflow.identifier}", "identifier": message.workflow.identifier,
                         "name": message.workflow.name, "critical": False, "tags": list(message.tags),
                         "severity": message.severity},
        }
        for key in ("subject", "avatar", "redirect"):
            if key in content:
                shaped[key] = content[key]
        if message.snoozed_until:
            shaped["snoozedUntil"] = message.snoozed_until
        for kind in ("primary", "secondary"):
            action = self._action(message, kind)
            if action:
                shaped[f"{kind}Action"] = action
        return shaped

    def raw_message(self, message: Message) -> dict:
        """The message entity as Novu's socket pushes it (``content``, ``read``, ``cta``, ...)."""
        content = message.content
        buttons = [_button(kind, content[f"{kind}Action"]) for kind in ("primary", "secondary")
                   if content.get(f"{kind}Action")]
        # The Inbox reads cta.action without a null check: cta is always an object.
        cta = {"type": "redirect", "data": dict(content.get("redirect") or {}),
               "action": {"status": "done" if message.completed else "pending", "buttons": buttons,
                          "result": {"type": message.completed, "payload": {}}}}
        stored = self.subscribers.get(message.subscriber_id, {})
        return {
            "_id": message.id, "transactionId": message.transaction_id, "channel": "in_app",
            "subject": content.get("subject"), "content": content["body"], "avatar": content.get("avatar"),
            "read": message.read_at is not None, "seen": message.seen_at is not None,
            "archived": message.archived_at is not None, "snoozedUntil": message.snoozed_until,
            "createdAt": message.created_at, "lastReadDate": message.read_at, "firstSeenDate": message.seen_at,
            "archivedAt": message.archived_at, "cta": cta, "tags": list(message.tags), "data": content.get("data", {}),
            "severity": message.severity, "payload": message.payload, "templateIdentifier": message.workflow.identifier,
            "workflow": {"id": f"wf-{message.workflow.identifier}", "identifier": message.workflow.identifier,
                         "name": message.workflow.name, "critical": False, "tags": list(message.tags),
                         "severity": message.severity},
            "subscriber": {"_id": stored.get("_id"), "subscriberId": message.subscriber_id,
                           **{name: stored[name] for name in SUBSCRIBER_FIELDS if stored.get(name) is not None}},
        }

    # -- the realtime socket ---------------------------------------------------------------------

    def listen(self, subscriber_id: str, send: Callable[[dict], None]) -> Callable[[], None]:
        """Call ``send(frame)`` for every socket event of the subscriber; returns the way to stop."""
        self.listeners.setdefault(subscriber_id, []).append(send)

        def stop() -> None:
            senders = self.listeners.get(subscriber_id, [])
            if send in senders:
                senders.remove(send)

        return stop

    def _push(self, subscriber_id: str, event: str, data: dict) -> None:
        for send in list(self.listeners.get(subscriber_id, [])):
            send({"event": event, "data": data})

    def _push_counts(self, subscriber_id: str) -> None:
        counts = self.unread_counts(subscriber_id)
        self._push(subscriber_id, "unread_count_changed", {"unreadCount": counts["total"], "counts": counts})
        unseen = sum(1 for message in self._of(subscriber_id) if message.seen_at is None)
        self._push(subscriber_id, "unseen_count_changed", {"unseenCount": unseen})


def _button(kind: str, action: dict) -> dict:
    """An action as the raw message's ``cta.action.buttons`` holds it."""
    redirect = action.get("redirect") or {}
    button = {"type": kind, "content": action["label"]}
    if redirect.get("url"):
        button["url"] = redirect["url"]
    if redirect.get("target"):
        button["target"] = redirect["target"]
    return button


def matches(message: Message, query: dict) -> bool:
    """Whether a message passes an Inbox filter (``read``, ``archived``, ``snoozed``, ``seen``,
    ``severity`` as one value or a list, ``tags`` (any of), ``data`` (every key equal))."""
    for flag, value in (("read", message.read_at), ("archived", message.archived_at),
                        ("snoozed", message.snoozed_until), ("seen", message.seen_at)):
        wanted = query.get(flag)
        if isinstance(wanted, bool) and wanted != (value is not None):
            return False
    severity = query.get("severity")
    severities = severity if isinstance(severity, list) else [severity]
    if severity not in (None, [], "") and message.severity not in severities:
        return False
    tags = query.get("tags")
    if tags and not set(_flatten(tags)) & set(message.tags):
        return False
    data = query.get("data")
    if isinstance(data, dict) and any(message.content.get("data", {}).get(key) != value for key, value in data.items()):
        return False
    return True


def _flatten(tags) -> list[str]:
    return [tag for item in tags for tag in (_flatten(item) if isinstance(item, list) else [item])]


def parse_filters(text: str | None) -> list[dict] | None:
    """The count call's ``filters`` query parameter: a JSON array of objects (None: malformed)."""
    try:
        filters = json.loads(text or "")
    except ValueError:
        return None
    if not isinstance(filters, list) or not all(isinstance(item, dict) for item in filters):
        return None
    return filters
