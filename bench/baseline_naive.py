"""Baseline: the seed tutorial's Segment → Novu approach, ported naively to Python.

For every event in the body (one object or an array), one ``requests.post`` to Novu's trigger
endpoint: a new connection each time (module-level ``requests.post``, no Session), one after the
other, no batching, no validation, no idempotency. Answers 200. Served exactly like the bridge:
``functions-framework --target=handler --source=bench/baseline_naive.py``.
"""

import json
import os
import re

import functions_framework
import requests

NOVU_URL = os.environ.get("NOVU_API_URL", "https://api.novu.co").rstrip("/")
NOVU_API_KEY = os.environ.get("NOVU_API_KEY", "")
_NOT_SLUG = re.compile(r"[^a-z0-9]+")


def slug(event: dict) -> str:
    return _NOT_SLUG.sub("-", str(event.get("event") or "").lower()).strip("-")


@functions_framework.http
def handler(request):
    body = json.loads(request.get_data())
    events = body if isinstance(body, list) else [body]
    for event in events:
        requests.post(
            NOVU_URL + "/v1/events/trigger",
            json={"name": slug(event), "to": {"subscriberId": event.get("userId")}, "payload": event.get("properties")},
            headers={"Authorization": "ApiKey " + NOVU_API_KEY},
            timeout=30,  # the only liberty taken: keeps a stuck benchmark bounded; never reached here
        )
    return json.dumps({"triggered": len(events)}), 200, {"Content-Type": "application/json"}
