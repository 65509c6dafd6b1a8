"""The served function's Novu calls over networks as they are: a self-hosted Novu behind a private
CA, a Novu that drips its answer, a Novu whose answer is too large.

The function is served by functions-framework on loopback; Novu is the stand-in (over TLS with a
certificate of a CA made for the test) or a raw server writing bytes at its own pace.
"""

from __future__ import annotations

import json
import time

import pytest

from segment_novu.novu.transport import MAX_RESPONSE_BYTES
from tests.novu_standin import NovuStandIn, Scripted
from tests.private_ca import PrivateCA
from tests.raw_origin import Origin, drip

TRIGGER = "/v1/events/trigger"
ORDER = {
    "type": "track",
    "userId": "user-1",
    "messageId": "msg-order-1",
    "event": "Order Completed",
    "properties": {"orderId": "o-1"},
}
CA_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE")


@pytest.fixture
def serve_function(serve_function, monkeypatch):
    """Workflow discovery off (the calls asserted are the deliveries), no CA bundle variable set."""
    for name in CA_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return lambda **env: serve_function(**{"WORKFLOW_DISCOVERY": "false", **env})


@pytest.fixture(scope="module")
def private_ca(tmp_path_factory):
    return PrivateCA(tmp_path_factory.mktemp("private-ca"))


@pytest.fixture
def tls_novu(private_ca):
    """The Novu stand-in behind TLS, its certificate signed by the private CA."""
    standin = NovuStandIn()
    standin.server.socket = private_ca.server_context().wrap_socket(standin.server.socket, server_side=True)
    standin.url = standin.url.replace("http://", "https://")
    with standin:
        yield standin


def calls(standin) -> list[tuple]:
    return [(call.method, call.path, call.headers.get("Authorization"), call.body) for call in standin.calls()]


def test_a_novu_behind_a_private_ca_is_not_trusted_without_its_bundle(serve_function, tls_novu):
    function = serve_function(NOVU_API_URL=tls_novu.url)

    response = function.post(ORDER)

    assert response.status_code == 503
    assert response.json()["message"] == (
        "retry later: could not connect to Novu: its TLS certificate is not trusted (a private CA: name its "
        "bundle in REQUESTS_CA_BUNDLE or SSL_CERT_FILE) (1 retry)")
    assert tls_novu.calls() == []


@pytest.mark.parametrize("variable", ["REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"])
def test_a_novu_behind_a_private_ca_is_reached_with_its_bundle_named(serve_function, novu, tls_novu, private_ca,
                                                                     monkeypatch, variable):
    """With the CA's bundle named, the event is delivered over TLS exactly as to a plain-HTTP Novu."""
    plain = serve_function()
    assert plain.post(ORDER).status_code == 200
    monkeypatch.setenv(variable, private_ca.bundle)
    function = serve_function(NOVU_API_URL=tls_novu.url)

    response = function.post(ORDER)

    assert response.status_code == 200, response.text
    assert [event["outcome"] for event in response.json()["events"]] == ["delivered"]
    assert calls(tls_novu) == calls(novu)
    assert [(method, path) for method, path, _, _ in calls(tls_novu)] == [("POST", TRIGGER)]


@pytest.mark.parametrize("over_tls", [False, True], ids=["plain", "tls"])
def test_a_novu_dripping_its_answer_cannot_hold_the_answer_past_the_deadline(serve_function, private_ca,
                                                                            monkeypatch, over_tls):
    """Novu sends its status line, then one byte every 0.3 s: every read gets something, yet the call
    ends by the deadline and Segment is told to retry, in time."""
    dripping = Origin(lambda received: (drip(b"HTTP/1.1 201 Created\r\n", b"X", 0.3, 40), False),
                      private_ca.server_context() if over_tls else None)
    if over_tls:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", private_ca.bundle)
    try:
        function = serve_function(NOVU_API_URL=dripping.url, DEADLINE_SECONDS="3")

        started = time.monotonic()
        response = function.post(ORDER)
        elapsed = time.monotonic() - started

        assert response.status_code == 503
        assert response.json()["message"] == "retry later: Novu did not answer in time (1 retry)"
        assert elapsed < 3.5
        assert [(received.method, received.target) for received in dripping.requests] == [("POST", TRIGGER)]
        assert json.loads(dripping.requests[0].body)["name"]
    finally:
        dripping.close()


def test_a_novu_answer_larger_than_the_cap_is_a_retryable_failure(serve_function, novu):
    novu.script("POST", TRIGGER, Scripted(201, raw=b"[" + b" " * MAX_RESPONSE_BYTES + b"]"))
    function = serve_function()

    response = function.post(ORDER)

    assert response.status_code == 503
    assert response.json()["message"] == (
        f"retry later: Novu's answer is larger than {MAX_RESPONSE_BYTES} bytes: not read (1 retry)")
    assert [(call.method, call.path) for call in novu.calls()] == [("POST", TRIGGER)]
