"""Cloud Function entry point: ``functions-framework --target=handler``.

The bridge is built on the first request, not at import, so a cold start pays only for what the
first request needs; a configuration error is answered (500, with what to fix) on every request
instead of crashing the instance.
"""

import json
import threading

import functions_framework

from segment_novu import logs
from segment_novu.bridge import Bridge, Request
from segment_novu.config import ConfigError, load
from segment_novu.rules import MappingError

_bridge = None
_bridge_lock = threading.Lock()


def _get_bridge() -> Bridge:
    global _bridge
    if _bridge is None:
        with _bridge_lock:
            if _bridge is None:
                _bridge = Bridge.from_environment()
    return _bridge


def _read_body(request, limit: int) -> bytes | None:
    if request.content_length is not None and request.content_length > limit:
        return None
    body = request.stream.read(limit + 1)
    return None if len(body) > limit else body


def _respond(status: int, body: dict, headers: dict | None = None):
    return json.dumps(body, ensure_ascii=False), status, {"Content-Type": "application/json", **(headers or {})}


@functions_framework.http
def handler(request):
    token = logs.bind_trace(None)
    try:
        try:
            bridge = _get_bridge()
        except (ConfigError, MappingError) as error:
            logs.error("configuration error", error=str(error))
            return _respond(500, {"message": f"configuration error: {error}"})
        logs.bind_trace(logs.trace_from_headers(request.headers, bridge.settings.google_cloud_project))
        result = bridge.handle(
            Request(
                method=request.method,
                headers=request.headers,
                body=_read_body(request, bridge.settings.max_body_bytes),
                content_length=request.content_length,
            )
        )
        return _respond(result.status, result.body, result.headers)
    finally:
        logs.reset_trace(token)
