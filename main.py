"""Cloud Function entry point: ``functions-framework --target=handler``.

The bridge is built on the first request, not at import, so a cold start pays only for what the
first request needs; a configuration error is answered (500, with what to fix) on every request
instead of crashing the instance.
"""

import threading
import time

import flask
import functions_framework

from segment_novu import codec, logs
from segment_novu.bridge import Bridge, Request
from segment_novu.config import ConfigError
from segment_novu.mapping.rules import MappingError

_bridge = None
_bridge_lock = threading.Lock()


def _get_bridge() -> Bridge:
    global _bridge
    if _bridge is None:
        with _bridge_lock:
            if _bridge is None:
                _bridge = Bridge.from_environment()
    return _bridge


def _read_body(stream, length: int | None, limit: int) -> bytes | None:
    if length is not None and length > limit:
        return None
    # read(n) allocates n bytes up front: ask for what was announced, not for the limit.
    body = stream.read(limit + 1 if length is None else length)
    return None if len(body) > limit else body


def _respond(status: int, body: dict, headers: dict | None = None, *, leave_body_unread: bool = False):
    payload = codec.dumps(body)
    headers = {"Content-Type": "application/json", **(headers or {})}
    if leave_body_unread:
        # functions-framework reads what is left of the request after answering, unless the answer is
        # streamed: a body over the limit must not be read, one shorter than announced not waited for.
        return flask.Response(iter([payload]), status, {**headers, "Content-Length": str(len(payload))})
    return payload, status, headers


@functions_framework.http
def handler(request):
    received_at = time.monotonic()
    token = logs.bind_trace(None)
    try:
        with logs.request_scope():
            return _handle(request, received_at)
    finally:
        logs.reset_trace(token)


def _handle(request, received_at: float):
    try:
        bridge = _get_bridge()
    except (ConfigError, MappingError) as error:
        logs.error("configuration error", error=str(error))
        return _respond(500, {"message": f"configuration error: {error}"})
    logs.bind_trace(logs.trace_from_headers(request.headers, bridge.settings.google_cloud_project))
    length = request.content_length
    body = _read_body(request.stream, length, bridge.settings.max_body_bytes)
    if body is not None and length is not None and len(body) < length:
        return _respond(400, {"message": "body shorter than its Content-Length"}, leave_body_unread=True)
    result = bridge.handle(Request(request.method, request.headers, body, received_at))
    return _respond(result.status, result.body, result.headers, leave_body_unread=body is None)
