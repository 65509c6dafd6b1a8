"""DRY_RUN=true: no Novu call; the answer lists the exact requests that would have been sent, with the
API key redacted. No NOVU_API_KEY is needed.
"""

from __future__ import annotations

import json

import pytest

from segment_novu.mapping import planner
from segment_novu.receive import events

REDACTED = {"Authorization": "ApiKey [redacted]"}

IDENTIFY = {"type": "identify", "userId": "u1", "messageId": "m-identify",
            "traits": {"email": "ada@example.com", "firstName": "Ada", "plan": "pro"}}
TRACK = {"type": "track", "userId": "u1", "messageId": "m-track", "event": "Order Completed",
         "properties": {"orderId": "o-1"}}
DELETE = {"type": "delete", "userId": "u2", "messageId": "m-delete"}
PAGE = {"type": "page", "userId": "u1", "messageId": "m-page", "name": "Home"}


# -- helpers ---------------------------------------------------------------------------------------

@pytest.fixture
def serve_function(serve_function):
    """The conftest fixture with workflow discovery off: the Novu calls asserted here are the
    deliveries themselves, with no ``GET /v2/workflows`` in between."""
    return lambda **env: serve_function(**{"WORKFLOW_DISCOVERY": "false", **env})



@pytest.fixture
def dry_run(serve_function):
    def start(**env):
        return serve_function(DRY_RUN="true", **{"NOVU_API_KEY": None, **env})

    return start


def listed(novu, method: str, path: str, body=None) -> dict:
    entry = {"method": method, "url": novu.url + path, "headers": REDACTED}
    if body is not None:
        entry["body"] = body
    return entry


def canonical(entries) -> list[str]:
    return sorted(json.dumps(entry, sort_keys=True) for entry in entries)


def transaction_id(event: dict, workflow: str) -> str:
    return planner.transaction_id(events.parse(event, 0), workflow)


def track(user_id: str, message_id: str) -> dict:
    return {**TRACK, "userId": user_id, "messageId": message_id}


# -- tests -----------------------------------------------------------------------------------------


def test_dry_run_lists_the_exact_requests_and_sends_nothing(dry_run, novu):
    function = dry_run()

    response = function.post([IDENTIFY, TRACK, DELETE, PAGE])

    assert response.status_code == 200, response.text[:500]
    body = response.json()
    assert body["dryRun"] is True
    assert [entry["outcome"] for entry in body["events"]] == ["delivered", "delivered", "delivered", "skipped"]
    upsert = listed(novu, "POST", "/v2/subscribers", {
        "subscriberId": "u1", "email": "ada@example.com", "firstName": "Ada", "data": {"plan": "pro"},
    })
    trigger = listed(novu, "POST", "/v1/events/trigger", {
        "name": "order-completed",
        "to": {"subscriberId": "u1"},
        "payload": {"orderId": "o-1", "_segment": {"type": "track", "event": "Order Completed",
                                                   "messageId": "m-track", "userId": "u1"}},
        "transactionId": transaction_id(TRACK, "order-completed"),
    })
    delete = listed(novu, "DELETE", "/v2/subscribers/u2")
    assert canonical(body["requests"]) == canonical([upsert, trigger, delete])
    # Segment's order per subscriber holds in the listing too.
    assert body["requests"].index(upsert) < body["requests"].index(trigger)
    assert novu.count == 0


def test_dry_run_never_shows_a_configured_key(dry_run, novu):
    function = dry_run(NOVU_API_KEY="nk-real-key-0001")

    response = function.post(TRACK)

    assert response.status_code == 200, response.text[:500]
    assert "nk-real-key-0001" not in response.text
    assert [entry["headers"] for entry in response.json()["requests"]] == [REDACTED]
    assert novu.count == 0


def test_dry_run_with_a_key_and_default_settings_sends_nothing_that_writes(dry_run, novu):
    function = dry_run(NOVU_API_KEY="nk-real-key-0001", WORKFLOW_DISCOVERY=None)

    response = function.post([IDENTIFY, TRACK, DELETE])

    assert response.status_code == 200, response.text[:500]
    assert len(response.json()["requests"]) == 3
    # At most reads of Novu's workflow list (workflow discovery); never a change.
    assert {(call.method, call.path) for call in novu.calls()} <= {("GET", "/v2/workflows")}


def test_dry_run_of_events_needing_no_call_lists_nothing(dry_run, novu):
    function = dry_run()

    response = function.post(PAGE)

    assert response.status_code == 200, response.text[:500]
    assert response.json()["events"][0]["outcome"] == "skipped"
    assert response.json().get("requests", []) == []
    assert novu.count == 0


def test_dry_run_lists_what_a_real_run_sends(dry_run, serve_function, novu):
    batch = [track(f"u{n}", f"m{n}") for n in range(3)]

    listing = dry_run().post(batch).json()["requests"]
    serve_function().post(batch)

    sent = [listed(novu, call.method, call.path, call.body) for call in novu.calls()]
    assert canonical(listing) == canonical(sent)
