"""The sandbox over HTTP (aiohttp): Novu's REST routes, the Inbox API with CORS, the realtime socket.

Requests are turned into calls on ``state.Sandbox`` and its ``(status, body)`` answers sent back as
JSON. Bad input is a 4xx with Novu's error body, never a 500.
"""

from __future__ import annotations

import asyncio
import json
from urllib.parse import unquote

from aiohttp import WSMsgType, web

from novu_sandbox.state import NOTIFICATIONS_PAGE_LIMIT, Sandbox, error, parse_filters

API_KEY_PREFIX = "ApiKey "
INBOX_PREFIX = "/v1/inbox/"
# What the Inbox's preflights ask for (@novu/js 3.19.2): its two version headers, JSON, the session token.
CORS_HEADERS = {
    "Access-Control-Allow-Methods": "GET, POST, PUT, PATCH, DELETE, OPTIONS",
    "Access-Control-Allow-Headers": "authorization, content-type, novu-api-version, novu-client-version",
    "Access-Control-Max-Age": "600",
}
SANDBOX_KEY = web.AppKey("sandbox", Sandbox)
SINGLE_ACTIONS = ("read", "unread", "archive", "unarchive", "snooze", "unsnooze", "complete", "revert")
BULK_ACTIONS = ("read", "archive", "read-archive", "delete")


def _answer(status: int, body) -> web.Response:
    if status == 204:
        return web.Response(status=204)
    return web.Response(status=status, text=json.dumps(body, ensure_ascii=False), content_type="application/json")


async def _json_body(request: web.Request) -> dict | web.Response:
    raw = await request.read()
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        return _answer(*error(400, "Unexpected token in JSON body", "Bad Request", request.path))
    if not isinstance(body, dict):
        return _answer(*error(400, "The body must be a JSON object", "Bad Request", request.path))
    return body


def _whole(text: str | None, default: int, maximum: int | None = None) -> int | None:
    if text in (None, ""):
        return default
    if not text.isdigit():
        return None
    value = int(text)
    return None if maximum is not None and value > maximum else value


@web.middleware
async def cors(request: web.Request, handler):
    """The Inbox runs in the page's origin and calls the API and socket from there."""
    if not request.path.startswith(INBOX_PREFIX):
        return await handler(request)
    headers = {"Access-Control-Allow-Origin": request.headers.get("Origin", "*"), "Vary": "Origin", **CORS_HEADERS}
    if request.method == "OPTIONS":
        return web.Response(status=204, headers=headers)
    try:
        response = await handler(request)
    except web.HTTPException as raised:
        response = _answer(*error(raised.status, raised.reason, raised.reason, request.path))
    response.headers.update(headers)
    return response


@web.middleware
async def rest_authentication(request: web.Request, handler):
    """Novu's REST API takes ``Authorization: ApiKey <secret key>``; the Inbox API a session token."""
    if request.path.startswith(INBOX_PREFIX) or request.path == "/socket":
        return await handler(request)
    sandbox = request.app[SANDBOX_KEY]
    authorization = request.headers.get("Authorization", "")
    given = authorization[len(API_KEY_PREFIX):].strip()
    if not authorization.startswith(API_KEY_PREFIX) or given != sandbox.secret_key:
        return _answer(*error(401, "API Key not found", "Unauthorized", request.path))
    try:
        return await handler(request)
    except web.HTTPException as raised:
        return _answer(*error(raised.status, f"Cannot {request.method} {request.path}", raised.reason, request.path))


def _sandbox(request: web.Request) -> Sandbox:
    return request.app[SANDBOX_KEY]


def _path_id(request: web.Request, name: str) -> str:
    return unquote(request.match_info[name])


# -- REST ------------------------------------------------------------------------------------------


async def trigger(request):
    body = await _json_body(request)
    return body if isinstance(body, web.Response) else _answer(*_sandbox(request).trigger(body))


async def trigger_bulk(request):
    body = await _json_body(request)
    return body if isinstance(body, web.Response) else _answer(*_sandbox(request).trigger_bulk(body))


async def create_subscriber(request):
    body = await _json_body(request)
    return body if isinstance(body, web.Response) else _answer(*_sandbox(request).create_subscriber(body))


async def patch_subscriber(request):
    body = await _json_body(request)
    if isinstance(body, web.Response):
        return body
    return _answer(*_sandbox(request).patch_subscriber(_path_id(request, "subscriber_id"), body))


async def delete_subscriber(request):
    return _answer(*_sandbox(request).delete_subscriber(_path_id(request, "subscriber_id")))


async def cancel_trigger(request):
    """The sandbox's workflows have no delay or digest step, so no run is ever pending: Novu's answer
    for nothing to cancel."""
    return _answer(200, {"data": False})


async def credentials(request):
    body = await _json_body(request)
    if isinstance(body, web.Response):
        return body
    return _answer(*_sandbox(request).set_credentials(
        _path_id(request, "subscriber_id"), body, replace=request.method == "PUT"))


async def upsert_topic(request):
    body = await _json_body(request)
    return body if isinstance(body, web.Response) else _answer(*_sandbox(request).upsert_topic(body))


async def subscriptions(request):
    body = await _json_body(request)
    if isinstance(body, web.Response):
        return body
    return _answer(*_sandbox(request).change_subscriptions(
        _path_id(request, "topic_key"), body, subscribe=request.method == "POST"))


async def list_workflows(request):
    limit = _whole(request.query.get("limit"), 10, 100)
    offset = _whole(request.query.get("offset"), 0)
    if limit is None or offset is None:
        return _answer(*error(400, ["limit must be a number from 1 to 100", "offset must be a whole number"],
                              "Bad Request", request.path))
    return _answer(*_sandbox(request).list_workflows(limit, offset))


# -- the Inbox API ---------------------------------------------------------------------------------


def _subscriber_of(request) -> str | web.Response:
    session = _sandbox(request).session(request.headers.get("Authorization"))
    if session is None:
        return _answer(*error(401, "Unauthorized", "Unauthorized", request.path))
    return session.subscriber_id


async def open_session(request):
    body = await _json_body(request)
    return body if isinstance(body, web.Response) else _answer(*_sandbox(request).open_session(body))


def _flag(text: str | None):
    return {"true": True, "false": False}.get(text or "", None)


def _list_query(request) -> dict | web.Response:
    query: dict = {}
    for name in ("read", "archived", "snoozed", "seen"):
        if name in request.query:
            value = _flag(request.query[name])
            if value is None:
                return _answer(*error(400, [f"{name} must be a boolean value"], "Bad Request", request.path))
            query[name] = value
    tags = request.query.getall("tags[]", [])
    if tags:
        query["tags"] = tags
    severity = request.query.getall("severity[]", []) or request.query.getall("severity", [])
    if severity:
        query["severity"] = severity if len(severity) > 1 or "severity[]" in request.query else severity[0]
    if "data" in request.query:
        try:
            query["data"] = json.loads(request.query["data"])
        except ValueError:
            return _answer(*error(400, ["data must be a JSON object"], "Bad Request", request.path))
    return query


async def list_notifications(request):
    subscriber_id = _subscriber_of(request)
    if isinstance(subscriber_id, web.Response):
        return subscriber_id
    query = _list_query(request)
    if isinstance(query, web.Response):
        return query
    limit = _whole(request.query.get("limit"), 10, NOTIFICATIONS_PAGE_LIMIT)
    offset = _whole(request.query.get("offset"), 0)
    if not limit or offset is None:
        return _answer(*error(400, [f"limit must be from 1 to {NOTIFICATIONS_PAGE_LIMIT}"], "Bad Request",
                              request.path))
    return _answer(*_sandbox(request).list_notifications(
        subscriber_id, query, limit, offset, request.query.get("after")))


async def count_notifications(request):
    subscriber_id = _subscriber_of(request)
    if isinstance(subscriber_id, web.Response):
        return subscriber_id
    filters = parse_filters(request.query.get("filters"))
    if filters is None:
        return _answer(*error(400, ["filters must be a JSON array of objects"], "Bad Request", request.path))
    return _answer(*_sandbox(request).count(subscriber_id, filters))


async def change_notification(request):
    subscriber_id = _subscriber_of(request)
    if isinstance(subscriber_id, web.Response):
        return subscriber_id
    action = request.match_info["action"]
    if action not in SINGLE_ACTIONS:
        raise web.HTTPNotFound()
    body = await _json_body(request)
    if isinstance(body, web.Response):
        return body
    return _answer(*_sandbox(request).change(subscriber_id, request.match_info["notification_id"], action, body))


async def delete_notification(request):
    subscriber_id = _subscriber_of(request)
    if isinstance(subscriber_id, web.Response):
        return subscriber_id
    return _answer(*_sandbox(request).delete(subscriber_id, request.match_info["notification_id"]))


async def change_all(request):
    subscriber_id = _subscriber_of(request)
    if isinstance(subscriber_id, web.Response):
        return subscriber_id
    body = await _json_body(request)
    if isinstance(body, web.Response):
        return body
    action = request.match_info["action"]
    if action == "seen":
        return _answer(*_sandbox(request).mark_seen(subscriber_id, body))
    if action not in BULK_ACTIONS:
        raise web.HTTPNotFound()
    return _answer(*_sandbox(request).change_all(subscriber_id, action, body))


async def preferences(request):
    subscriber_id = _subscriber_of(request)
    if isinstance(subscriber_id, web.Response):
        return subscriber_id
    return _answer(200, {"data": []})


async def socket(request):
    """The Inbox's ``cloud`` socket: a plain WebSocket at ``socketUrl?token=<session token>``; JSON
    frames ``{"event", "data"}``; the client's ``ping`` is answered ``pong``."""
    sandbox = _sandbox(request)
    session = sandbox.sessions.get(request.query.get("token", ""))
    if session is None:
        return _answer(*error(401, "Unauthorized", "Unauthorized", request.path))
    connection = web.WebSocketResponse(heartbeat=30)
    await connection.prepare(request)
    sending: set[asyncio.Task] = set()  # the loop keeps only weak references to tasks

    def send(frame: dict) -> None:
        if not connection.closed:
            task = asyncio.get_running_loop().create_task(connection.send_str(json.dumps(frame, ensure_ascii=False)))
            sending.add(task)
            task.add_done_callback(sending.discard)

    stop = sandbox.listen(session.subscriber_id, send)
    try:
        async for frame in connection:
            if frame.type == WSMsgType.TEXT and frame.data == "ping":
                await connection.send_str("pong")
    finally:
        stop()
    return connection


async def preflight(request):
    return web.Response(status=204)  # the cors middleware adds the headers


def build_app(sandbox: Sandbox) -> web.Application:
    app = web.Application(middlewares=[cors, rest_authentication], client_max_size=8 * 1024 * 1024)
    app[SANDBOX_KEY] = sandbox
    app.router.add_post("/v1/events/trigger", trigger)
    app.router.add_post("/v1/events/trigger/bulk", trigger_bulk)
    app.router.add_delete("/v1/events/trigger/{transaction_id}", cancel_trigger)
    app.router.add_post("/v2/subscribers", create_subscriber)
    app.router.add_patch("/v2/subscribers/{subscriber_id}", patch_subscriber)
    app.router.add_delete("/v2/subscribers/{subscriber_id}", delete_subscriber)
    app.router.add_put("/v1/subscribers/{subscriber_id}/credentials", credentials)
    app.router.add_patch("/v1/subscribers/{subscriber_id}/credentials", credentials)
    app.router.add_post("/v2/topics", upsert_topic)
    app.router.add_post("/v2/topics/{topic_key}/subscriptions", subscriptions)
    app.router.add_delete("/v2/topics/{topic_key}/subscriptions", subscriptions)
    app.router.add_get("/v2/workflows", list_workflows, allow_head=False)
    app.router.add_post("/v1/inbox/session", open_session)
    app.router.add_get("/v1/inbox/notifications", list_notifications, allow_head=False)
    app.router.add_get("/v1/inbox/notifications/count", count_notifications, allow_head=False)
    app.router.add_patch("/v1/inbox/notifications/{notification_id}/{action}", change_notification)
    app.router.add_delete("/v1/inbox/notifications/{notification_id}/delete", delete_notification)
    app.router.add_post("/v1/inbox/notifications/{action}", change_all)
    app.router.add_get("/v1/inbox/preferences", preferences, allow_head=False)
    app.router.add_route("OPTIONS", "/v1/inbox/{tail:.*}", preflight)
    app.router.add_get("/socket", socket, allow_head=False)
    return app
