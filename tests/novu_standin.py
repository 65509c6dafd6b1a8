"""Novu played by a real HTTP server on loopback: answers like Novu, records every request, and
fails on demand. Used by the tests and by the benchmark.

Answers follow Novu's real API: success bodies wrapped in ``{"data": ...}``, 201 for triggers,
422 ``workflow_not_found`` for an unknown workflow (when ``workflows`` is set), error bodies
``{statusCode, message, error}``.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable


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


def error_body(status: int, message: str, error: str | None = None) -> dict:
    body = {"statusCode": status, "timestamp": "2026-11-28T00:00:00.000Z", "path": "/", "message": message}
    if error:
        body["error"] = error
    return body


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
        self.count = 0
        standin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _handle(self):
                standin._serve(self)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> "NovuStandIn":
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

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self._scripts.clear()
            self.count = 0
            self.accepted.clear()
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
        scripted = self._next_scripted(request)
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
        path = request.path
        if request.method == "POST" and path == "/v1/events/trigger":
            return self._trigger(request.body)
        if request.method == "POST" and path == "/v1/events/trigger/bulk":
            slots = [self._trigger_slot(event) for event in request.body.get("events", [])]
            return 201, {"data": slots}, {}
        if request.method == "POST" and path == "/v2/subscribers":
            return 201, {"data": {"_id": "s1", **(request.body or {})}}, {}
        if request.method in ("PATCH", "PUT", "POST") and path.startswith(("/v2/", "/v1/subscribers/")):
            return 200, {"data": {"acknowledged": True}}, {}
        if request.method == "DELETE" and path.startswith("/v2/subscribers/"):
            return 200, {"data": {"acknowledged": True, "status": "deleted"}}, {}
        if request.method == "GET" and path == "/v2/workflows":
            workflows = sorted(self.workflows or [])
            data = [{"workflowId": w, "name": w, "active": True} for w in workflows]
            return 200, {"data": {"workflows": data, "totalCount": len(data)}}, {}
        return 404, error_body(404, f"Cannot {request.method} {path}", "Not Found"), {}

    def _trigger_slot(self, event: dict) -> dict:
        if self.workflows is not None and event.get("name") not in self.workflows:
            return {"acknowledged": True, "status": "error", "error": ["workflow_not_found"]}
        if self.trigger_status == "processed":
            with self._lock:
                self.accepted[event.get("transactionId")] += 1
        return {"acknowledged": True, "status": self.trigger_status, "transactionId": event.get("transactionId")}

    def _trigger(self, event: dict):
        if self.workflows is not None and event.get("name") not in self.workflows:
            message = f"Workflow with identifier {event.get('name')} cannot be found"
            return 422, {**error_body(422, message, "Unprocessable Entity"), "type": "workflow_not_found"}, {}
        return 201, {"data": self._trigger_slot(event)}, {}
