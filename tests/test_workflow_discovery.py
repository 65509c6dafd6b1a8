"""Workflow discovery: the bridge reads Novu's workflow list (``GET /v2/workflows``), caches it, and
skips default-rule events whose workflow Novu does not have without calling Novu. A list it cannot
read never blocks delivery. Over real HTTP: the served function and the Novu stand-in.
"""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from segment_novu import config
from segment_novu.novu import workflows
from segment_novu.novu.client import NovuClient
from segment_novu.novu.workflows import (
    CatalogUnavailable,
    WorkflowCatalog,
    list_workflows,
)
from segment_novu.secrets import SecretSource
from tests.novu_contract import validate_request
from tests.novu_standin import Scripted, error_body

LIST = "/v2/workflows"
TRIGGER = "/v1/events/trigger"


def track(message_id: str, event: str = "Order Completed", user: str = "u1") -> dict:
    return {"type": "track", "userId": user, "messageId": message_id, "event": event, "properties": {"n": 1}}


def outcomes(response) -> list[tuple[str, str]]:
    return [(entry["outcome"], entry["reason"]) for entry in response.json()["events"]]


def workflow_list(*identifiers: str, wrapped: bool = True) -> dict:
    page = {"workflows": [{"workflowId": identifier, "name": identifier} for identifier in identifiers],
            "totalCount": len(identifiers)}
    return {"data": page} if wrapped else page


def logged(capsys) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]


# -- the default rule triggers only workflows Novu has --------------------------------------------------


def test_an_event_without_a_workflow_is_skipped_without_a_novu_call(serve_function, novu):
    novu.workflows = {"order-completed"}
    function = serve_function()

    response = function.post([track("m-1"), track("m-2", "Nobody Listens")])

    assert response.status_code == 200, response.text
    assert outcomes(response) == [("delivered", "triggered"), ("skipped", "no workflow 'nobody-listens' in Novu")]
    assert "novuStatus" not in response.json()["events"][1]
    assert [(call.method, call.path) for call in novu.calls()] == [("GET", LIST), ("POST", TRIGGER)]
    assert novu.calls("POST", TRIGGER)[0].body["name"] == "order-completed"
    for call in novu.calls():
        validate_request(call)


def test_the_list_is_read_once_and_cached(serve_function, novu):
    novu.workflows = {"order-completed"}
    function = serve_function()

    for index in range(3):
        assert function.post(track(f"m-{index}")).status_code == 200

    assert len(novu.calls("GET", LIST)) == 1
    assert len(novu.calls("POST", TRIGGER)) == 3


def test_the_list_is_read_again_when_the_cache_expires(serve_function, novu):
    novu.workflows = {"welcome"}
    function = serve_function(WORKFLOW_CACHE_SECONDS="1")
    assert outcomes(function.post(track("m-1"))) == [("skipped", "no workflow 'order-completed' in Novu")]

    novu.workflows = {"welcome", "order-completed"}  # someone builds the workflow in Novu
    time.sleep(1.1)
    assert outcomes(function.post(track("m-2"))) == [("delivered", "triggered")]

    assert len(novu.calls("GET", LIST)) == 2


def test_a_miss_against_a_list_older_than_the_recheck_reads_it_again(serve_function, novu, monkeypatch):
    monkeypatch.setattr(workflows, "RECHECK_SECONDS", 0.3)
    novu.workflows = {"welcome"}
    function = serve_function()
    assert outcomes(function.post(track("m-1"))) == [("skipped", "no workflow 'order-completed' in Novu")]

    novu.workflows = {"welcome", "order-completed"}  # built in Novu a moment later
    time.sleep(0.4)
    response = function.post([track("m-2"), track("m-3", "Nobody Listens")])

    assert outcomes(response) == [("delivered", "triggered"), ("skipped", "no workflow 'nobody-listens' in Novu")]
    assert len(novu.calls("GET", LIST)) == 2, "one re-read for the request, not one per miss"
    assert [call.body["name"] for call in novu.calls("POST", TRIGGER)] == ["order-completed"]


def test_misses_read_the_list_at_most_once_per_recheck_period(serve_function, novu, monkeypatch):
    monkeypatch.setattr(workflows, "RECHECK_SECONDS", 0.5)
    novu.workflows = {"welcome"}
    function = serve_function()

    started = time.monotonic()
    while time.monotonic() - started < 1.2:
        assert outcomes(function.post(track("m"))) == [("skipped", "no workflow 'order-completed' in Novu")]
        time.sleep(0.05)

    assert 2 <= len(novu.calls("GET", LIST)) <= 3  # the first read, then one per half second
    assert novu.calls("POST", TRIGGER) == []


def test_only_events_under_the_default_rule_need_the_list(serve_function, novu):
    function = serve_function()

    response = function.post([{"type": "identify", "userId": "u1", "messageId": "i-1", "traits": {}},
                              {"type": "delete", "userId": "u2", "messageId": "d-1"}])

    assert response.status_code == 200, response.text
    assert novu.calls("GET", LIST) == []


def test_a_bare_list_without_the_data_wrapper_is_read(serve_function, novu):
    novu.script("GET", LIST, Scripted(200, workflow_list("order-completed", wrapped=False)))
    function = serve_function()

    response = function.post([track("m-1"), track("m-2", "Nobody Listens")])

    assert outcomes(response) == [("delivered", "triggered"), ("skipped", "no workflow 'nobody-listens' in Novu")]


def test_concurrent_requests_read_the_list_once(serve_function, novu):
    novu.workflows = {"order-completed"}
    novu.script("GET", LIST, Scripted(200, workflow_list("order-completed"), delay=0.4))
    function = serve_function(THREADS="8")

    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(lambda index: function.post(track(f"m-{index}", user=f"u{index}")), range(8)))

    assert [response.status_code for response in responses] == [200] * 8
    assert len(novu.calls("GET", LIST)) == 1
    assert len(novu.calls("POST", TRIGGER)) == 8  # those that came while it was read went without it


# -- a list that cannot be read never blocks delivery ----------------------------------------------------


@pytest.mark.parametrize(
    "answer, reason",
    [
        (Scripted(503, "Please wait some time, then try again."), "Novu answered 503"),
        (Scripted(401, error_body(401, "API Key not found", "Unauthorized")), "Novu answered 401: API Key not found"),
        (Scripted(200, raw=b"<html>"), "Novu's workflow list is not JSON"),
        (Scripted(200, {"data": [{"workflowId": "x"}]}), "Novu's workflow list has an unexpected shape"),
        (Scripted(status=None, drop=True), "Novu request failed: ChunkedEncodingError"),
    ],
)
def test_an_unreadable_list_means_unknown_and_every_trigger_is_sent(serve_function, novu, capsys, answer, reason):
    novu.workflows = {"welcome"}
    novu.script("GET", LIST, answer)
    function = serve_function()

    response = function.post([track("m-1", "Welcome"), track("m-2", "Nobody Listens", user="u2")])

    assert response.status_code == 200, response.text
    assert [outcome for outcome, _ in outcomes(response)] == ["delivered", "skipped"]
    assert response.json()["events"][1]["novuStatus"] == 422  # Novu's own answer decided
    assert len(novu.calls("POST", TRIGGER)) == 2
    [warning] = [line for line in logged(capsys) if line["message"].startswith("workflow discovery")]
    assert warning["severity"] == "WARNING"
    assert warning["reason"].startswith(reason)


def test_a_failed_read_is_not_retried_on_every_request(serve_function, novu):
    novu.script("GET", LIST, Scripted(503, "down"))
    function = serve_function()

    for index in range(3):
        assert function.post(track(f"m-{index}")).status_code == 200

    assert len(novu.calls("GET", LIST)) == 1


def test_a_slow_list_costs_at_most_a_second_of_the_deadline(serve_function, novu):
    novu.script("GET", LIST, Scripted(200, workflow_list("order-completed"), delay=3))
    function = serve_function(DEADLINE_SECONDS="4")

    started = time.monotonic()
    response = function.post(track("m-1"))
    elapsed = time.monotonic() - started

    assert outcomes(response) == [("delivered", "triggered")]
    assert elapsed < 2.0, elapsed


def test_an_empty_list_is_not_trusted(serve_function, novu, capsys):
    novu.script("GET", LIST, Scripted(200, workflow_list()))
    function = serve_function()

    response = function.post(track("m-1"))

    assert outcomes(response) == [("delivered", "triggered")]
    assert any(line["message"] == "workflow discovery: Novu lists no workflow; triggers are sent without the list"
               for line in logged(capsys))


# -- workflow_not_found refreshes the list ----------------------------------------------------------------


def test_workflow_not_found_for_a_listed_workflow_reads_the_list_again(serve_function, novu, monkeypatch):
    monkeypatch.setattr(workflows, "MIN_REFRESH_SECONDS", 0.0)
    novu.workflows = {"order-completed"}
    function = serve_function()
    assert outcomes(function.post(track("m-1"))) == [("delivered", "triggered")]

    novu.workflows = {"welcome"}  # deleted in Novu; the cached list still has it
    response = function.post(track("m-2"))
    assert outcomes(response) == [("skipped", "no workflow 'order-completed' in Novu")]
    assert response.json()["events"][0]["novuStatus"] == 422

    assert outcomes(function.post(track("m-3"))) == [("skipped", "no workflow 'order-completed' in Novu")]
    assert len(novu.calls("GET", LIST)) == 2
    assert len(novu.calls("POST", TRIGGER)) == 2  # the third event cost no trigger


def test_a_burst_of_workflow_not_found_reads_the_list_once(serve_function, novu):
    novu.workflows = {"order-completed"}
    function = serve_function()
    function.post(track("m-1"))
    novu.workflows = {"welcome"}

    for index in range(2, 5):
        function.post(track(f"m-{index}"))

    assert len(novu.calls("GET", LIST)) == 1  # within MIN_REFRESH_SECONDS of the last read


# -- the mapping file and the list ---------------------------------------------------------------------


def test_a_mapped_workflow_novu_lacks_is_logged_at_start_and_its_events_are_refused(
    serve_function, novu, tmp_path, capsys
):
    path = tmp_path / "mapping.json"
    path.write_text(json.dumps({"track": {"Order Completed": ["order-confirmation", "receipt-email"],
                                          "Signed Up": "welcome"}}))
    novu.workflows = {"welcome", "receipt-email"}
    function = serve_function(MAPPING_FILE=str(path))

    response = function.post(track("m-1"))

    errors = [line for line in logged(capsys) if line["severity"] == "ERROR"]
    assert errors[0]["message"] == "the mapping names workflows Novu does not have: their events will be rejected (400)"
    assert errors[0]["workflows"] == ["order-confirmation"]
    assert errors[0]["mapping"] == "mapping.json"
    # A workflow named in the file is always tried: the list may be a few seconds old.
    assert response.status_code == 400
    assert sorted(call.body["name"] for call in novu.calls("POST", TRIGGER)) == ["order-confirmation", "receipt-email"]
    assert len(novu.calls("GET", LIST)) == 1  # read at start, then cached


def test_no_error_at_start_when_every_mapped_workflow_exists(serve_function, novu, tmp_path, capsys):
    path = tmp_path / "mapping.json"
    path.write_text(json.dumps({"track": {"Signed Up": "welcome"}}))
    novu.workflows = {"welcome"}
    function = serve_function(MAPPING_FILE=str(path))

    assert function.post(track("m-1", "Signed Up")).status_code == 200
    assert not [line for line in logged(capsys) if line["severity"] == "ERROR"]


# -- switched off -------------------------------------------------------------------------------------------


def test_discovery_off_sends_every_default_rule_trigger(serve_function, novu):
    novu.workflows = {"welcome"}
    function = serve_function(WORKFLOW_DISCOVERY="false")

    response = function.post(track("m-1"))

    assert outcomes(response) == [("skipped", "no workflow 'order-completed' in Novu")]
    assert response.json()["events"][0]["novuStatus"] == 422
    assert [(call.method, call.path) for call in novu.calls()] == [("POST", TRIGGER)]


def test_dry_run_without_a_key_has_no_discovery(serve_function, novu):
    function = serve_function(DRY_RUN="true", NOVU_API_KEY=None)

    response = function.post(track("m-1"))

    assert response.status_code == 200, response.text
    assert [request["url"].split("/", 3)[3] for request in response.json()["requests"]] == ["v1/events/trigger"]
    assert novu.calls() == []


@pytest.mark.parametrize(
    "env, enabled",
    [
        ({"NOVU_API_KEY": "k"}, True),
        ({}, False),
        ({"NOVU_API_KEY": "k", "WORKFLOW_DISCOVERY": "false"}, False),
        ({"NOVU_API_KEY": "k", "WORKFLOW_DISCOVERY": "off"}, False),
        ({"WORKFLOW_DISCOVERY": "true"}, False),  # no key, no list
        ({"NOVU_API_KEY": "k", "DRY_RUN": "true"}, True),
    ],
)
def test_the_setting(env, enabled):
    assert config.load(env).workflow_discovery is enabled


def test_the_cache_setting():
    assert config.load({}).workflow_cache_seconds == 60.0
    assert config.load({"WORKFLOW_CACHE_SECONDS": "300"}).workflow_cache_seconds == 300.0
    for wrong in ("0", "86401", "soon"):
        with pytest.raises(config.ConfigError) as caught:
            config.load({"WORKFLOW_CACHE_SECONDS": wrong})
        assert str(caught.value).startswith("WORKFLOW_CACHE_SECONDS must be")
    with pytest.raises(config.ConfigError) as caught:
        config.load({"WORKFLOW_DISCOVERY": "maybe"})
    assert str(caught.value) == "WORKFLOW_DISCOVERY must be true or false, not 'maybe'"


# -- pages of the list, against a server that honours limit and offset -------------------------------------


class PagedWorkflows:
    """Novu's list endpoint as it pages: ``limit`` and ``offset`` honoured, ``totalCount`` given."""

    def __init__(self, identifiers: list[str]):
        self.identifiers = identifiers
        self.queries: list[dict] = []
        paged = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                url = urlsplit(self.path)
                query = {key: values[0] for key, values in parse_qs(url.query).items()}
                paged.queries.append({"path": url.path, **query, "authorization": self.headers["Authorization"]})
                offset, limit = int(query["offset"]), int(query["limit"])
                page = paged.identifiers[offset:offset + limit]
                body = json.dumps({"data": {"workflows": [{"workflowId": item} for item in page],
                                            "totalCount": len(paged.identifiers)}}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def paged():
    servers = []

    def start(identifiers):
        server = PagedWorkflows(identifiers)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def client_for(url: str) -> NovuClient:
    return NovuClient(url, SecretSource("the-key"))


@pytest.mark.parametrize("count, pages", [(0, 1), (99, 1), (100, 1), (101, 2), (250, 3)])
def test_every_page_is_read(paged, count, pages):
    identifiers = [f"workflow-{index}" for index in range(count)]
    server = paged(identifiers)

    assert list_workflows(client_for(server.url), time.monotonic() + 5) == frozenset(identifiers)

    assert [(query["path"], query["limit"], query["offset"]) for query in server.queries] == [
        (LIST, "100", str(page * 100)) for page in range(pages)
    ]
    assert {query["authorization"] for query in server.queries} == {"ApiKey the-key"}


def test_a_list_longer_than_the_page_limit_is_refused(paged, monkeypatch):
    monkeypatch.setattr(workflows, "MAX_PAGES", 2)
    server = paged([f"workflow-{index}" for index in range(201)])

    with pytest.raises(CatalogUnavailable) as caught:
        list_workflows(client_for(server.url), time.monotonic() + 5)
    assert str(caught.value) == "Novu lists more than 200 workflows"


def test_known_is_none_until_a_read_succeeds_and_then_the_set(paged):
    server = paged(["a", "b"])
    catalog = WorkflowCatalog(client_for(server.url), ttl_seconds=60)
    assert catalog.known(time.monotonic() + 5) == frozenset({"a", "b"})
    assert WorkflowCatalog(client_for("http://127.0.0.1:9"), ttl_seconds=60).known(time.monotonic() + 5) is None
