"""The Novu sandbox (``novu_sandbox``), over HTTP and its WebSocket as the bridge and the Inbox use it.

Its REST answers are checked against Novu's OpenAPI document with the same contract checks the
bridge's requests get (``tests/novu_contract.py``); its Inbox answers against the shapes of
``@novu/js`` 3.19.2 (the data wrapper, the echoed count filters, the raw message the socket pushes).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
import requests

import novu_sandbox
from novu_sandbox.workflows import (
    WorkflowsError,
    load_workflows,
    parse_workflows,
    render,
)
from tests import novu_contract
from tests.test_novu_contract import DOCUMENTED, EXAMPLES

PROJECT_ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_WORKFLOWS = PROJECT_ROOT / "examples" / "inbox" / "workflows.json"
KEY = "test-novu-key"  # the key tests/novu_contract.make_request sends
APP = "test-app"
BELL_FILTERS = [{"read": False, "archived": False, "snoozed": False, "severity": severity}
                for severity in ("high", "medium", "low", "none")]
WORKFLOWS = [
    {"workflowId": "welcome", "name": "Welcome",
     "inApp": {"subject": "Hi {{subscriber.firstName}}", "body": "Plan {{payload.plan}}, missing [{{payload.nope}}]",
               "primaryAction": {"label": "Open", "redirect": {"url": "https://example.com/{{payload.plan}}"}},
               "data": {"plan": "{{payload.plan}}", "fixed": 3}}},
    {"workflowId": "digest", "name": "Digest", "tags": ["news"], "inApp": {"body": "{{payload.count}} new"}},
    {"workflowId": "email-only", "name": "Email only"},
]


@pytest.fixture
def sandbox():
    with novu_sandbox.start(workflows=parse_workflows({"workflows": WORKFLOWS}), secret_key=KEY,
                            application_identifier=APP) as running:
        yield running


@pytest.fixture
def hmac_sandbox():
    with novu_sandbox.start(workflows=parse_workflows({"workflows": WORKFLOWS}), secret_key=KEY,
                            application_identifier=APP, hmac=True) as running:
        yield running


def rest(sandbox, method: str, path: str, body=None, *, key: str = KEY) -> requests.Response:
    return requests.request(method, sandbox.url + path, json=body, timeout=5,
                            headers={"Authorization": f"ApiKey {key}"})


def session(sandbox, subscriber_id: str, **extra) -> requests.Response:
    return requests.post(sandbox.url + "/v1/inbox/session", timeout=5, json={
        "applicationIdentifier": APP, "subscriber": {"subscriberId": subscriber_id, "timezone": "UTC"}, **extra})


def token_for(sandbox, subscriber_id: str) -> str:
    answer = session(sandbox, subscriber_id)
    assert answer.status_code == 201, answer.text
    return answer.json()["data"]["token"]


def inbox(sandbox, token: str, method: str, path: str, **kwargs) -> requests.Response:
    return requests.request(method, sandbox.url + "/v1/inbox" + path, timeout=5,
                            headers={"Authorization": f"Bearer {token}"}, **kwargs)


def bell(sandbox, token: str) -> int:
    answer = inbox(sandbox, token, "GET", "/notifications/count", params={"filters": json.dumps(BELL_FILTERS)})
    assert answer.status_code == 200
    return sum(item["count"] for item in answer.json()["data"])


def notifications(sandbox, token: str, **params) -> list[dict]:
    answer = inbox(sandbox, token, "GET", "/notifications", params={"limit": 10, **params})
    assert answer.status_code == 200, answer.text
    return answer.json()["data"]


# -- REST: Novu's contract ------------------------------------------------------------------------


def _prepare(sandbox) -> None:
    """What the documented examples refer to: subscribers user-1..3 and topic initech."""
    for subscriber_id in ("user-1", "user-2", "user-3", "user/1@example.com"):
        assert rest(sandbox, "POST", "/v2/subscribers", {"subscriberId": subscriber_id}).status_code == 201
    assert rest(sandbox, "POST", "/v2/topics/initech/subscriptions", {"subscriptions": ["user-1"]}).status_code == 201


@pytest.mark.parametrize("operation", DOCUMENTED)
def test_every_rest_answer_matches_novus_openapi_document(operation):
    example = EXAMPLES[operation]
    with novu_sandbox.start(workflows=parse_workflows({"workflows": WORKFLOWS}), secret_key=KEY) as sandbox:
        _prepare(sandbox)
        answer = requests.request(example.method, sandbox.url + example.path, headers=example.headers,
                                  data=json.dumps(example.body) if example.body is not None else None, timeout=5)
    assert 200 <= answer.status_code < 300, answer.text
    assert set(answer.json()) == {"data"}  # Novu wraps every success body
    novu_contract.validate_response(example, answer.status_code, dict(answer.headers), answer.json())


def test_a_wrong_or_missing_api_key_is_refused_as_novu_does(sandbox):
    for headers in ({}, {"Authorization": "ApiKey wrong"}, {"Authorization": f"Bearer {KEY}"}):
        answer = requests.post(sandbox.url + "/v1/events/trigger", json={"name": "welcome", "to": "u"},
                               headers=headers, timeout=5)
        assert answer.status_code == 401
        assert answer.json()["message"] == "API Key not found"
    assert sandbox.state.messages == []


def test_an_unknown_workflow_answers_422_workflow_not_found(sandbox):
    answer = rest(sandbox, "POST", "/v1/events/trigger", {"name": "nope", "to": "u1", "transactionId": "t1"})
    assert answer.status_code == 422
    body = answer.json()
    assert (body["statusCode"], body["type"], body["message"]) == (
        422, "workflow_not_found", "Workflow with identifier nope cannot be found")
    novu_contract.validate_response(novu_contract.make_request("POST", "/v1/events/trigger", {"name": "nope", "to": "u1"}),
                                    422, dict(answer.headers), body)
    assert sandbox.state.messages == [] and "t1" not in sandbox.state.transactions


@pytest.mark.parametrize("body, problem", [
    ({"to": "u1"}, "name must be a string"), ({"name": "welcome"}, "to should not be empty"),
    ({"name": "welcome", "to": "u1", "payload": [1]}, "payload must be an object"),
])
def test_a_malformed_trigger_is_a_400_with_the_reason(sandbox, body, problem):
    answer = rest(sandbox, "POST", "/v1/events/trigger", body)
    assert (answer.status_code, answer.json()["message"]) == (400, [problem])


def test_a_body_that_is_not_json_is_a_400_not_a_500(sandbox):
    answer = requests.post(sandbox.url + "/v1/events/trigger", data=b"{nope", timeout=5,
                           headers={"Authorization": f"ApiKey {KEY}", "Content-Type": "application/json"})
    assert answer.status_code == 400 and "message" in answer.json()


def test_a_trigger_becomes_an_in_app_notification_templated_from_payload_and_subscriber(sandbox):
    answer = rest(sandbox, "POST", "/v1/events/trigger", {
        "name": "welcome", "to": {"subscriberId": "ann", "firstName": "Ann"}, "payload": {"plan": "pro"},
        "transactionId": "t-1"})
    assert (answer.status_code, answer.json()) == (
        201, {"data": {"acknowledged": True, "status": "processed", "transactionId": "t-1"}})
    token = token_for(sandbox, "ann")
    [notification] = notifications(sandbox, token)
    assert notification["subject"] == "Hi Ann"
    assert notification["body"] == "Plan pro, missing []"
    assert notification["primaryAction"] == {"label": "Open", "isCompleted": False,
                                             "redirect": {"url": "https://example.com/pro"}}
    assert notification["data"] == {"plan": "pro", "fixed": 3}
    assert notification["to"]["subscriberId"] == "ann" and notification["to"]["firstName"] == "Ann"
    assert (notification["transactionId"], notification["channelType"], notification["isRead"]) == ("t-1", "in_app", False)
    assert notification["workflow"]["identifier"] == "welcome"


def test_a_repeated_transaction_id_is_answered_the_same_and_notifies_once(sandbox):
    event = {"name": "digest", "to": "bo", "payload": {"count": 2}, "transactionId": "same"}
    first, second = rest(sandbox, "POST", "/v1/events/trigger", event), rest(sandbox, "POST", "/v1/events/trigger", event)
    assert first.status_code == second.status_code == 201 and first.json() == second.json()
    bulk = rest(sandbox, "POST", "/v1/events/trigger/bulk", {"events": [event]})
    assert bulk.json() == {"data": [first.json()["data"]]}
    assert [message.content["body"] for message in sandbox.state.messages] == ["2 new"]


def test_bulk_answers_one_slot_per_event_and_an_unknown_workflow_is_an_error_slot(sandbox):
    answer = rest(sandbox, "POST", "/v1/events/trigger/bulk", {"events": [
        {"name": "digest", "to": "cy", "payload": {"count": 1}, "transactionId": "b-1"},
        {"name": "nope", "to": "cy", "transactionId": "b-2"},
        {"name": "digest", "to": "cy", "payload": {"count": 3}, "transactionId": "b-3"}]})
    assert answer.status_code == 201
    assert answer.json() == {"data": [
        {"acknowledged": True, "status": "processed", "transactionId": "b-1"},
        {"acknowledged": True, "status": "error", "error": ["workflow_not_found"]},
        {"acknowledged": True, "status": "processed", "transactionId": "b-3"}]}
    assert [message.content["body"] for message in sandbox.state.messages] == ["1 new", "3 new"]
    too_many = rest(sandbox, "POST", "/v1/events/trigger/bulk", {"events": [{"name": "digest", "to": "cy"}] * 101})
    assert too_many.status_code == 400


def test_a_topic_fans_out_to_its_subscribers_once_each(sandbox):
    for subscriber_id in ("a", "b", "c"):
        rest(sandbox, "POST", "/v2/subscribers", {"subscriberId": subscriber_id})
    rest(sandbox, "POST", "/v2/topics", {"key": "team", "name": "Team"})
    subscribed = rest(sandbox, "POST", "/v2/topics/team/subscriptions", {"subscriptions": ["a", "b", "ghost"]})
    assert subscribed.status_code == 201
    assert subscribed.json()["data"]["meta"] == {"totalCount": 3, "successful": 2, "failed": 1}
    assert subscribed.json()["data"]["errors"][0]["code"] == "SUBSCRIBER_NOT_FOUND"
    rest(sandbox, "POST", "/v1/events/trigger", {
        "name": "digest", "to": [{"type": "Topic", "topicKey": "team"}, "a", "c"], "payload": {"count": 9}})
    assert sorted(message.subscriber_id for message in sandbox.state.messages) == ["a", "b", "c"]
    rest(sandbox, "DELETE", "/v2/topics/team/subscriptions", {"subscriptions": ["b"]})
    rest(sandbox, "POST", "/v1/events/trigger", {"name": "digest", "to": {"type": "Topic", "topicKey": "team"},
                                                 "payload": {"count": 1}})
    assert sorted(m.subscriber_id for m in sandbox.state.messages if m.content["body"] == "1 new") == ["a"]


def test_a_workflow_without_an_in_app_step_is_triggered_but_shows_nothing(sandbox):
    answer = rest(sandbox, "POST", "/v1/events/trigger", {"name": "email-only", "to": "dee"})
    assert answer.status_code == 201 and answer.json()["data"]["status"] == "processed"
    assert sandbox.state.messages == []


def test_subscribers_upsert_patch_and_delete_with_their_messages_and_memberships(sandbox):
    created = rest(sandbox, "POST", "/v2/subscribers", {"subscriberId": "eve", "email": "eve@example.com"})
    assert created.status_code == 201 and created.json()["data"]["email"] == "eve@example.com"
    patched = rest(sandbox, "PATCH", "/v2/subscribers/eve", {"firstName": "Eve"})
    assert (patched.json()["data"]["firstName"], patched.json()["data"]["email"]) == ("Eve", "eve@example.com")
    rest(sandbox, "POST", "/v2/topics/club/subscriptions", {"subscriptions": ["eve"]})
    rest(sandbox, "POST", "/v1/events/trigger", {"name": "digest", "to": "eve", "payload": {"count": 1}})
    deleted = rest(sandbox, "DELETE", "/v2/subscribers/eve")
    assert (deleted.status_code, deleted.json()) == (200, {"data": {"acknowledged": True, "status": "deleted"}})
    assert sandbox.state.messages == [] and sandbox.state.topics["club"]["subscribers"] == []
    again = rest(sandbox, "DELETE", "/v2/subscribers/eve")
    assert again.status_code == 404 and "could not be found" in again.json()["message"]


def test_credentials_of_an_unknown_subscriber_are_refused_as_the_bridge_expects(sandbox):
    answer = rest(sandbox, "PATCH", "/v1/subscribers/nobody/credentials",
                  {"providerId": "fcm", "credentials": {"deviceTokens": ["t"]}})
    assert (answer.status_code, answer.json()["message"]) == (404, "SubscriberId: nobody not found")
    rest(sandbox, "POST", "/v2/subscribers", {"subscriberId": "fay"})
    for token in ("t1", "t2"):
        rest(sandbox, "PATCH", "/v1/subscribers/fay/credentials",
             {"providerId": "fcm", "credentials": {"deviceTokens": [token]}})
    assert sandbox.state.subscribers["fay"]["credentials"] == {"fcm": ["t1", "t2"]}  # PATCH adds, PUT replaces
    rest(sandbox, "PUT", "/v1/subscribers/fay/credentials", {"providerId": "fcm", "credentials": {"deviceTokens": ["t3"]}})
    assert sandbox.state.subscribers["fay"]["credentials"] == {"fcm": ["t3"]}


def test_the_workflow_list_pages_as_the_bridges_discovery_reads_it(sandbox):
    first = rest(sandbox, "GET", "/v2/workflows?limit=2&offset=0").json()["data"]
    second = rest(sandbox, "GET", "/v2/workflows?limit=2&offset=2").json()["data"]
    assert [item["workflowId"] for item in first["workflows"] + second["workflows"]] == ["welcome", "digest", "email-only"]
    assert first["totalCount"] == 3
    assert rest(sandbox, "GET", "/v2/workflows?limit=many").status_code == 400


# -- the Inbox API ----------------------------------------------------------------------------------


def test_the_session_answers_in_the_shape_the_inbox_reads(sandbox):
    rest(sandbox, "POST", "/v1/events/trigger", {"name": "digest", "to": "gus", "payload": {"count": 1}})
    answer = session(sandbox, "gus")
    assert answer.status_code == 201
    data = answer.json()["data"]
    assert data["unreadCount"] == {"total": 1, "severity": {"high": 0, "medium": 0, "low": 0, "none": 1}}
    assert data["totalUnreadCount"] == 1 and data["applicationIdentifier"] == APP and data["contextKeys"] == []
    assert set(data) == {"token", "totalUnreadCount", "unreadCount", "removeNovuBranding", "maxSnoozeDurationHours",
                         "isDevelopmentMode", "applicationIdentifier", "contextKeys"}
    wrong_app = requests.post(sandbox.url + "/v1/inbox/session", json={"applicationIdentifier": "other",
                                                                        "subscriber": {"subscriberId": "gus"}})
    assert wrong_app.status_code == 400


def test_the_count_echoes_each_filter_beside_its_count(sandbox):
    rest(sandbox, "POST", "/v1/events/trigger", {"name": "digest", "to": "hal", "payload": {"count": 1}})
    token = token_for(sandbox, "hal")
    answer = inbox(sandbox, token, "GET", "/notifications/count", params={"filters": json.dumps(
        BELL_FILTERS + [{"tags": ["news"], "read": False}, {"tags": ["other"]}])})
    assert answer.json() == {"data": [{"count": 0, "filter": BELL_FILTERS[0]}, {"count": 0, "filter": BELL_FILTERS[1]},
                                      {"count": 0, "filter": BELL_FILTERS[2]}, {"count": 1, "filter": BELL_FILTERS[3]},
                                      {"count": 1, "filter": {"tags": ["news"], "read": False}},
                                      {"count": 0, "filter": {"tags": ["other"]}}]}
    broken = inbox(sandbox, token, "GET", "/notifications/count", params={"filters": "{not json"})
    assert broken.status_code == 400 and "message" in broken.json()


def test_read_unread_archive_change_the_list_and_the_count(sandbox):
    for count in (1, 2):
        rest(sandbox, "POST", "/v1/events/trigger", {"name": "digest", "to": "ida", "payload": {"count": count}})
    token = token_for(sandbox, "ida")
    newest, oldest = notifications(sandbox, token, archived="false")
    assert (newest["body"], oldest["body"]) == ("2 new", "1 new") and bell(sandbox, token) == 2
    read = inbox(sandbox, token, "PATCH", f"/notifications/{newest['id']}/read")
    assert read.status_code == 200 and read.json()["data"]["isRead"] is True and read.json()["data"]["readAt"]
    assert bell(sandbox, token) == 1
    inbox(sandbox, token, "PATCH", f"/notifications/{newest['id']}/unread")
    assert bell(sandbox, token) == 2
    archived = inbox(sandbox, token, "PATCH", f"/notifications/{oldest['id']}/archive")
    assert archived.json()["data"]["isArchived"] is True and bell(sandbox, token) == 1
    assert [item["body"] for item in notifications(sandbox, token, archived="false")] == ["2 new"]
    assert [item["body"] for item in notifications(sandbox, token, archived="true")] == ["1 new"]
    assert inbox(sandbox, token, "POST", "/notifications/read", json={}).status_code == 204
    assert bell(sandbox, token) == 0
    missing = inbox(sandbox, token, "PATCH", "/notifications/nope/read")
    assert missing.status_code == 404 and "message" in missing.json()


def test_a_subscriber_sees_only_its_own_notifications(sandbox):
    rest(sandbox, "POST", "/v1/events/trigger", {"name": "digest", "to": "jo", "payload": {"count": 1}})
    [theirs] = notifications(sandbox, token_for(sandbox, "jo"))
    other = token_for(sandbox, "kim")
    assert notifications(sandbox, other) == []
    assert inbox(sandbox, other, "PATCH", f"/notifications/{theirs['id']}/read").status_code == 404


def test_the_inbox_api_needs_the_session_token(sandbox):
    for headers in ({}, {"Authorization": "Bearer made-up"}):
        answer = requests.get(sandbox.url + "/v1/inbox/notifications", headers=headers, timeout=5)
        assert answer.status_code == 401 and "message" in answer.json()


def test_cors_lets_the_page_call_the_inbox_api_from_its_own_origin(sandbox):
    preflight = requests.options(sandbox.url + "/v1/inbox/notifications/count", timeout=5, headers={
        "Origin": "http://127.0.0.1:9999", "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization,content-type,novu-api-version,novu-client-version"})
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == "http://127.0.0.1:9999"
    allowed = {name.strip() for name in preflight.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "content-type", "novu-api-version", "novu-client-version"} <= allowed
    answer = session(sandbox, "lu")
    assert "Access-Control-Allow-Origin" in answer.headers


# -- HMAC -------------------------------------------------------------------------------------------


def test_with_hmac_on_a_session_needs_the_subscriber_hash(hmac_sandbox):
    good = hmac.new(KEY.encode(), b"mo", hashlib.sha256).hexdigest()
    for wrong in ({}, {"subscriberHash": "0" * 64}, {"subscriberHash": good.upper()},
                  {"subscriberHash": hmac.new(b"other-key", b"mo", hashlib.sha256).hexdigest()}):
        answer = session(hmac_sandbox, "mo", **wrong)
        assert answer.status_code == 400
        assert answer.json()["message"] == "Please provide a valid HMAC hash"
    assert hmac_sandbox.state.sessions == {}
    assert session(hmac_sandbox, "mo", subscriberHash=good).status_code == 201


def test_with_hmac_off_no_hash_is_needed(sandbox):
    assert session(sandbox, "ned").status_code == 201


# -- the realtime socket ----------------------------------------------------------------------------


async def _socket_frames(sandbox, token: str, trigger_body: dict) -> list[dict]:
    async with aiohttp.ClientSession() as client:
        async with client.ws_connect(f"{sandbox.socket_url}?token={token}") as socket:
            await socket.send_str("ping")
            assert (await socket.receive(timeout=5)).data == "pong"
            async with client.post(sandbox.url + "/v1/events/trigger", json=trigger_body,
                                   headers={"Authorization": f"ApiKey {KEY}"}) as answer:
                assert answer.status == 201
            return [json.loads((await socket.receive(timeout=5)).data) for _ in range(3)]


def test_the_socket_pushes_the_new_message_and_the_counts(sandbox):
    token = token_for(sandbox, "ola")
    frames = asyncio.run(_socket_frames(sandbox, token, {
        "name": "welcome", "to": {"subscriberId": "ola", "firstName": "Ola"}, "payload": {"plan": "team"}}))
    assert [frame["event"] for frame in frames] == ["notification_received", "unread_count_changed",
                                                    "unseen_count_changed"]
    message = frames[0]["data"]["message"]
    assert (message["subject"], message["content"], message["channel"]) == ("Hi Ola", "Plan team, missing []", "in_app")
    assert message["cta"]["action"]["buttons"] == [{"type": "primary", "content": "Open", "url": "https://example.com/team"}]
    assert (message["read"], message["seen"], message["subscriber"]["subscriberId"]) == (False, False, "ola")
    assert frames[1]["data"] == {"unreadCount": 1, "counts": {"total": 1, "severity": {"high": 0, "medium": 0,
                                                                                       "low": 0, "none": 1}}}
    assert frames[2]["data"] == {"unseenCount": 1}


def test_the_socket_refuses_a_connection_without_a_session_token(sandbox):
    answer = requests.get(sandbox.socket_url.replace("ws", "http", 1) + "?token=nope", timeout=5,
                          headers={"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
                                   "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="})
    assert answer.status_code == 401


# -- the workflows file and the command ---------------------------------------------------------------


def test_the_example_workflows_file_renders_the_order_completed_event():
    [order, _] = load_workflows(EXAMPLE_WORKFLOWS)
    assert order.identifier == "order-completed"  # the default rule's slug of examples/track.json's event
    payload = json.loads((PROJECT_ROOT / "examples" / "track.json").read_text())["properties"]
    assert render(order.in_app["subject"], {"payload": payload}) == "Order completed: 54.82 USD"


@pytest.mark.parametrize("document, where", [
    ({}, 'expected {"workflows": [...]}'),
    ({"workflows": [{"workflowId": "bad id"}]}, "workflows[0].workflowId"),
    ({"workflows": [{"workflowId": "a"}, {"workflowId": "a"}]}, "appears twice"),
    ({"workflows": [{"workflowId": "a", "inApp": {}}]}, "workflows[0].inApp.body"),
    ({"workflows": [{"workflowId": "a", "inApp": {"body": "x", "colour": "red"}}]}, "unknown key 'colour'"),
    ({"workflows": [{"workflowId": "a", "inApp": {"body": "x", "data": {"k": [1]}}}]}, "workflows[0].inApp.data"),
    ({"workflows": [{"workflowId": "a", "inApp": {"body": "x", "severity": "urgent"}}]}, "inApp.severity"),
])
def test_a_broken_workflows_file_says_where(document, where):
    with pytest.raises(WorkflowsError, match=None) as raised:
        parse_workflows(document)
    assert where in str(raised.value)


def test_the_command_prints_one_line_when_ready_and_refuses_a_broken_file(tmp_path):
    process = subprocess.Popen([sys.executable, "-m", "novu_sandbox", "--workflows", str(EXAMPLE_WORKFLOWS)],
                               cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline().rstrip("\n")
        assert line.startswith("novu sandbox: http://127.0.0.1:")
        url = line.split(": ", 1)[1]
        answer = requests.get(url + "/v2/workflows", headers={"Authorization": "ApiKey sandbox-secret-key"}, timeout=5)
        assert [item["workflowId"] for item in answer.json()["data"]["workflows"]] == ["order-completed", "song-played"]
    finally:
        process.terminate()
        process.wait(10)
    assert process.stdout.read() == ""  # exactly one line
    broken = tmp_path / "workflows.json"
    broken.write_text('{"workflows": [{"workflowId": ""}]}')
    result = subprocess.run([sys.executable, "-m", "novu_sandbox", "--workflows", str(broken)], cwd=PROJECT_ROOT,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2 and "workflows[0].workflowId" in result.stderr and result.stdout == ""


# -- the bridge against the sandbox -----------------------------------------------------------------


def test_the_bridge_delivers_segment_events_into_the_sandbox_inbox():
    """The function served for real, pointed at the sandbox: identify, group and track become a
    subscriber, a topic membership and one in-app notification per recipient."""
    from tests.served import serve

    with novu_sandbox.start(workflows=EXAMPLE_WORKFLOWS, secret_key=KEY) as sandbox, \
            serve({"NOVU_API_URL": sandbox.url, "NOVU_API_KEY": KEY}) as function:
        identify = function.post({"type": "identify", "userId": "pat", "messageId": "i-1",
                                  "traits": {"firstName": "Pat", "email": "pat@example.com"}})
        group = function.post({"type": "group", "userId": "pat", "groupId": "acme", "messageId": "g-1",
                               "traits": {"name": "Acme"}})
        track = function.post(json.loads((PROJECT_ROOT / "examples" / "track.json").read_text()))
        unknown = function.post({"type": "track", "userId": "pat", "event": "Nobody Built This", "messageId": "t-2"})
        assert [answer.status_code for answer in (identify, group, track, unknown)] == [200, 200, 200, 200]
        assert track.json()["events"][0]["outcome"] == "delivered"
        assert unknown.json()["events"][0]["reason"] == "no workflow 'nobody-built-this' in Novu"  # discovery
        assert sandbox.state.subscribers["pat"]["firstName"] == "Pat"
        assert sandbox.state.topics["acme"]["subscribers"] == ["pat"]
        [message] = sandbox.state.messages
        assert message.subscriber_id == "customer-12345"
        assert message.content["subject"] == "Order completed: 54.82 USD"
        assert message.content["data"] == {"orderId": "82f250a3-32eb-40be-95fc-77e685ed8448", "total": "54.82",
                                           "currency": "USD"}
        resent = function.post(json.loads((PROJECT_ROOT / "examples" / "track.json").read_text()))
        assert resent.status_code == 200 and len(sandbox.state.messages) == 1  # one event, one notification


def test_a_tracking_api_batch_fills_the_inbox_with_the_subscribers_name():
    """examples/tracking-api-batch.json (the README's second curl): each identify lands before its
    user's track, so the in-app step's {{subscriber.firstName}} has the name."""
    from tests.served import serve

    batch = (PROJECT_ROOT / "examples" / "tracking-api-batch.json").read_bytes()
    with novu_sandbox.start(workflows=EXAMPLE_WORKFLOWS, secret_key=KEY) as sandbox, \
            serve({"NOVU_API_URL": sandbox.url, "NOVU_API_KEY": KEY}) as function:
        answer = function.post(path="/v1/batch", data=batch)
        assert answer.status_code == 200, answer.text
        bodies = {message.subscriber_id: (message.content["subject"], message.content["body"])
                  for message in sandbox.state.messages}
    assert bodies == {
        "019mr8mf4r": ("Now playing: Fallin for You", "Hi Jake, **Fallin for You** by Dierks Bentley is on."),
        "971mj8mk7p": ("Now playing: Get Right", "Hi Cindy, **Get Right** by Jennifer Lopez is on."),
    }
