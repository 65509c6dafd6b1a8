"""Reference: the least a function can do that calls Novu once per event.

Not one of the issue's baselines, and no target is judged against it: it shows what the targets ask
of the bridge. It parses the body and, for every event, sends one trigger to Novu over a kept-alive
``http.client`` connection of its thread (no validation, mapping rules, idempotency key, ledger,
logging or per-event answer), then answers 200. Served exactly like the bridge. The bridge cannot
be faster than this on single events; the floor minus this is what one Novu call costs.
"""

import http.client
import json
import os
import threading
from urllib.parse import urlsplit

import functions_framework

_NOVU = urlsplit(os.environ.get("NOVU_API_URL", "https://api.novu.co"))
_HEADERS = {"Authorization": "ApiKey " + os.environ.get("NOVU_API_KEY", ""), "Content-Type": "application/json"}
_connections = threading.local()


def _connection():
    connection = getattr(_connections, "novu", None)
    if connection is None:
        connection = _connections.novu = (
            http.client.HTTPSConnection if _NOVU.scheme == "https" else http.client.HTTPConnection
        )(_NOVU.hostname, _NOVU.port, timeout=30)
    return connection


@functions_framework.http
def handler(request):
    body = json.loads(request.get_data())
    events = body if isinstance(body, list) else [body]
    for event in events:
        trigger = {"name": "order-completed", "to": {"subscriberId": event.get("userId")},
                   "payload": event.get("properties"), "transactionId": event.get("messageId")}
        connection = _connection()
        connection.request("POST", "/v1/events/trigger", body=json.dumps(trigger).encode(), headers=_HEADERS)
        answer = connection.getresponse()
        answer.read()
    return json.dumps({"triggered": len(events)}), 200, {"Content-Type": "application/json"}
