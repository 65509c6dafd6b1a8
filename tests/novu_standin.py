"""Novu played by a real HTTP server on loopback: answers like Novu, records every request, and
fails on demand. Used by the tests and by the benchmark.

Answers follow Novu's real API: success bodies wrapped in ``{"data": ...}``, 201 for triggers,
422 ``workflow_not_found`` for an unknown workflow (when ``workflows`` is set), error bodies
``{statusCode, message, error}``.
"""

from __future__ import annotations

import itertools
import json
import math
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict
    body: object


@dataclass
class Scripted:
    """One scripted answer. ``status=None`` with ``drop=True`` closes the connection mid-answer."""

    status: int | None = 500
    body: object = None
    headers: dict = field(default_factory=dict)
    delay: float = 0.0
    drop: bool = False
    raw: bytes | None = None


_NOW = "2026-11-28T00:00:00.000Z"


def _subscriber(fields: dict) -> dict:
    """A SubscriberResponseDto, as Novu answers subscriber calls."""
    return {
        "_id": "sub-" + str(fields.get("subscriberId")),
        **fields,
        "_organizationId": "org-1",
        "_environmentId": "env-1",
        "deleted": False,
        "createdAt": _NOW,
        "updatedAt": _NOW,
    }


def _topic(key, name=None) -> dict:
    topic = {"_id": f"topic-{key}", "key": key, "createdAt": _NOW, "updatedAt": _NOW}
    return {**topic, "name": name} if name else topic


def _subscription(topic: dict, subscriber_id) -> dict:
    return {
        "_id": f"subscription-{topic['key']}-{subscriber_id}",
        "identifier": f"tk={topic['key']}:si={subscriber_id}",
        "topic": {"_id": topic["_id"], "key": topic["key"]},
        "subscriber": {"_id": f"sub-{subscriber_id}", "subscriberId": subscriber_id},
        "createdAt": _NOW,
        "updatedAt": _NOW,
    }


def _workflow(identifier: str) -> dict:
    return {
        "_id": f"wf-{identifier}",
        "workflowId": identifier,
        "slug": f"{identifier}_wf",
        "name": identifier,
        "status": "ACTIVE",
        "origin": "novu-cloud",
        "createdAt": _NOW,
        "updatedAt": _NOW,
        "stepTypeOverviews": ["email"],
        "steps": [{"slug": "email-step", "type": "email"}],
    }


def error_body(status: int, message: str, error: str | None = None) -> dict:
    body = {"statusCode": status, "timestamp": "2026-11-28T00:00:00.000Z", "path": "/", "message": message}
    if error:
        body["error"] = error
    return body


class _NovuBucket:
    def __init__(self, rate: float):
        self.rate, self.capacity = rate, rate * 5 * 1.1
        self.tokens, self.at = self.capacity, time.monotonic()
        self.lock = threading.Lock()

    def take(self, cost: int) -> float | None:
        """None when the tokens were there (and are taken), else the seconds until they will be."""
        with self.lock:
            now = time.monotonic()
            self.tokens = min(self.capacity, self.tokens + (now - self.at) * self.rate)
            self.at = now
            if self.tokens < cost:
                return (cost - self.tokens) / self.rate
            self.tokens -= cost
            return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512  # listen() backlog: bursts of connections must not wait for a SYN retry


class NovuStandIn:
    def __init__(self, *, latency: float = 0.0, workflows: set[str] | None = None, record: bool = True):
        self.latency = latency
        self.workflows = workflows
        self.record_requests = record
        self.requests: list[Recorded] = []
        self.trigger_status = "processed"
        # transactionId → times accepted; Novu notifies once per id and drops the rest
        self.accepted: Counter = Counter()
        self._scripts: list[tuple[str, str, list[Scripted]]] = []
        self._responder: Callable[[Recorded], Scripted | None] | None = None
        self._lock = threading.Lock()
        self._generated_ids = itertools.count(1)
        self.count = 0
        self._buckets: dict[str, _NovuBucket] = {}
        self.spent: list[tuple[float, str, int]] = []  # (monotonic time, category, tokens) let through
        self.rate_limited = 0  # 429s answered by the enforced buckets
        self.cancelled: list[str] = []  # transactionIds Novu was asked to cancel
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # as Node (Novu) does; else a reused connection stalls ~40 ms
            wbufsize = -1  # headers and body leave in one write (flushed after each request), as from Node

            def log_message(self, *args):
                pass

            def _handle(self):
                standin._serve(self)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> NovuStandIn:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- scripting ---------------------------------------------------------------------------

    def script(self, method: str, path_prefix: str, *answers: Scripted) -> None:
        """The next requests matching method and path prefix get these answers, in order."""
        with self._lock:
            self._scripts.append((method, path_prefix, list(answers)))

    def respond_with(self, responder: Callable[[Recorded], Scripted | None] | None) -> None:
        """A function deciding answers for every request (None from it: the default answer)."""
        self._responder = responder

    def limit_bulk_calls(self, allowed: int) -> dict:
        """Let ``allowed`` bulk trigger calls through and answer 429 to the rest, like a rate limit
        running dry. Returns the budget: set ``budget["left"]`` to let more through."""
        budget = {"left": allowed}

        def responder(request: Recorded) -> Scripted | None:
            if request.path != "/v1/events/trigger/bulk":
                return None
            if budget["left"] == 0:
                return Scripted(429, error_body(429, "Too Many Requests"), {"Retry-After": "1"})
            budget["left"] -= 1
            return None

        self.respond_with(responder)
        return budget

    def enforce_rate_limits(self, trigger_rate: float, config_rate: float) -> None:
        """Meter calls as Novu does: per category a bucket refilled at the rate and holding 5 s of it
        plus 10 %; a bulk trigger costs 100 tokens, any other call 1; over it, 429 with Retry-After."""
        self._buckets = {"trigger": _NovuBucket(trigger_rate), "config": _NovuBucket(config_rate)}

    def _metered(self, request: Recorded) -> Scripted | None:
        if not self._buckets:
            return None
        category = "trigger" if request.path.startswith("/v1/events/trigger") else "config"
        cost = 100 if request.path == "/v1/events/trigger/bulk" else 1
        wait = self._buckets[category].take(cost)
        with self._lock:
            if wait is None:
                self.spent.append((time.monotonic(), category, cost))
                return None
            self.rate_limited += 1
        return Scripted(429, error_body(429, "ThrottlerException: Too Many Requests"),
                        {"Retry-After": str(math.ceil(wait))})

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self._scripts.clear()
            self.count = 0
            self.accepted.clear()
            self._buckets = {}
            self.spent.clear()
            self.rate_limited = 0
        self._responder = None
        self.trigger_status = "processed"

    # -- what was received -----------------------------------------------------------------------

    def calls(self, method: str | None = None, path: str | None = None) -> list[Recorded]:
        with self._lock:
            return [
                request
                for request in self.requests
                if (method is None or request.method == method) and (path is None or request.path == path)
            ]

    def triggered(self) -> list[dict]:
        """Every trigger sent to Novu (single or bulk), accepted or not, in arrival order."""
        triggers = []
        for request in self.calls("POST"):
            if request.path == "/v1/events/trigger":
                triggers.append(request.body)
            elif request.path == "/v1/events/trigger/bulk":
                triggers.extend(request.body["events"])
        return triggers

    def transaction_counts(self) -> Counter:
        """How often each transactionId was sent, accepted or not."""
        return Counter(trigger["transactionId"] for trigger in self.triggered())

    # -- serving -----------------------------------------------------------------------------

    def _next_scripted(self, request: Recorded) -> Scripted | None:
        with self._lock:
            for entry in self._scripts:
                method, prefix, answers = entry
                if request.method == method and request.path.startswith(prefix) and answers:
                    answer = answers.pop(0)
                    if not answers:
                        self._scripts.remove(entry)
                    return answer
        if self._responder is not None:
            return self._responder(request)
        return None

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw
        request = Recorded(handler.command, handler.path.split("?")[0], dict(handler.headers.items()), body)
        with self._lock:
            self.count += 1
            if self.record_requests:
                self.requests.append(request)
        scripted = self._metered(request) or self._next_scripted(request)
        delay = self.latency if scripted is None else max(scripted.delay, self.latency)
        if delay:
            time.sleep(delay)
        if scripted is not None and scripted.drop:
            handler.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n{\"da")
            handler.wfile.flush()
            handler.close_connection = True
            handler.connection.shutdown(2)
            return
        status, answer, headers = self._answer(request, scripted)
        payload = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(payload)))
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(payload)

    def _answer(self, request: Recorded, scripted: Scripted | None):
        if scripted is not None:
            if scripted.raw is not None:
                return scripted.status, scripted.raw, scripted.headers
            return scripted.status, scripted.body if scripted.body is not None else {}, scripted.headers
        if not request.headers.get("Authorization", "").startswith("ApiKey "):
            return 401, error_body(401, "API Key not found", "Unauthorized"), {}
        method, path, body = request.method, request.path, request.body or {}
        parts = path.strip("/").split("/")
        if method == "POST" and path == "/v1/events/trigger":
            return self._trigger(body)
        if method == "DELETE" and parts[:3] == ["v1", "events", "trigger"] and len(parts) == 4:
            # true: a pending run was called off; false: nothing to cancel (both 200, as Novu answers)
            with self._lock:
                self.cancelled.append(unquote(parts[3]))
                return 200, {"data": self.accepted.get(unquote(parts[3]), 0) > 0}, {}
        if method == "POST" and path == "/v1/events/trigger/bulk":
            return 201, {"data": [self._trigger_slot(event) for event in body.get("events", [])]}, {}
        if method == "POST" and path == "/v2/subscribers":
            return 201, {"data": _subscriber(body)}, {}
        if parts[:2] == ["v2", "subscribers"] and len(parts) == 3:
            subscriber_id = unquote(parts[2])
            if method == "PATCH":
                return 200, {"data": _subscriber({**body, "subscriberId": subscriber_id})}, {}
            if method == "DELETE":
                return 200, {"data": {"acknowledged": True, "status": "deleted"}}, {}
        if parts[:2] == ["v1", "subscribers"] and parts[3:] == ["credentials"] and method in ("PUT", "PATCH"):
            return 200, {"data": _subscriber({"subscriberId": unquote(parts[2])})}, {}
        if method == "POST" and path == "/v2/topics":
            return 200, {"data": _topic(body.get("key"), body.get("name"))}, {}
        if parts[:2] == ["v2", "topics"] and parts[3:] == ["subscriptions"] and method in ("POST", "DELETE"):
            topic = _topic(unquote(parts[2]))
            subscribers = [item if isinstance(item, str) else item.get("subscriberId")
                           for item in body.get("subscriptions", [])]
            data = [_subscription(topic, subscriber) for subscriber in subscribers]
            meta = {"totalCount": len(data), "successful": len(data), "failed": 0}
            return (201 if method == "POST" else 200), {"data": {"data": data, "meta": meta}}, {}
        if method == "GET" and path == "/v2/workflows":
            workflows = [_workflow(identifier) for identifier in sorted(self.workflows or [])]
            return 200, {"data": {"workflows": workflows, "totalCount": len(workflows)}}, {}
        return 404, error_body(404, f"Cannot {method} {path}", "Not Found"), {}

    def _trigger_slot(self, event: dict) -> dict:
        if self.workflows is not None and event.get("name") not in self.workflows:
            return {"acknowledged": True, "status": "error", "error": ["workflow_not_found"]}
        if self.trigger_status == "processed":
            with self._lock:
                self.accepted[event.get("transactionId")] += 1
        transaction_id = event.get("transactionId") or f"txn-{next(self._generated_ids)}"
        return {"acknowledged": True, "status": self.trigger_status, "transactionId": transaction_id}

    def _trigger(self, event: dict):
        if self.workflows is not None and event.get("name") not in self.workflows:
            message = f"Workflow with identifier {event.get('name')} cannot be found"
            return 422, {**error_body(422, message, "Unprocessable Entity"), "type": "workflow_not_found"}, {}
        return 201, {"data": self._trigger_slot(event)}, {}
