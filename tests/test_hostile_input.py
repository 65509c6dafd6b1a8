"""The hostile corpus (``tests/hostile_corpus.py``) against ONE served function, over real HTTP.

For every case: the status expected (never a 5xx), a JSON answer with a non-empty ``message``
(Segment shows it in its debugger), and no Novu call unless the case is an accepted quirk. After the
whole corpus the same function still delivers a valid event.
"""

from __future__ import annotations

import json
import socket
import time
import uuid
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import pytest
import requests

from tests.hostile_corpus import CORPUS, SERVED_MAX_BODY_BYTES, TRACK, WORKFLOW, Case
from tests.novu_standin import NovuStandIn
from tests.served import serve

CORPUS_SIZE = len(CORPUS)
WORKFLOW_LIST = ("GET", "/v2/workflows")  # a read the bridge may make for a valid, skipped event

# -- the one served function ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def standin():
    with NovuStandIn(workflows={WORKFLOW}) as novu:
        yield novu


@pytest.fixture(scope="module")
def function(standin):
    env = {
        "NOVU_API_URL": standin.url,
        "NOVU_API_KEY": "test-novu-key",
        "MAX_BODY_BYTES": str(SERVED_MAX_BODY_BYTES),
    }
    with serve(env) as served:
        # The bridge reads its settings on the first request: build it now, while env is ours.
        assert served.post(method="GET").status_code == 405
        yield served


# -- sending a case -------------------------------------------------------------------------------

@dataclass
class Reply:
    status: int
    headers: dict
    body: bytes
    seconds: float

    def json(self):
        return json.loads(self.body)


def _send_http(function, case: Case) -> Reply:
    started = time.monotonic()
    response = requests.request(case.method, function.url + "/", data=case.body, headers=case.headers, timeout=60)
    seconds = time.monotonic() - started
    return Reply(response.status_code, dict(response.headers), response.content, seconds)


def _send_raw(function, case: Case) -> Reply:
    """Over a socket: a lying Content-Length, or a chunked body. The client then stops sending."""
    url = urlsplit(function.url)
    head = [f"{case.method} / HTTP/1.1", f"Host: {url.netloc}", "Connection: close"]
    head += [f"{name}: {value}" for name, value in case.headers.items()]
    if case.chunked:
        head.append("Transfer-Encoding: chunked")
        step = 64 * 1024
        chunks = [case.body[start : start + step] for start in range(0, len(case.body), step)]
        payload = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for chunk in chunks) + b"0\r\n\r\n"
    else:
        head.append(f"Content-Length: {case.declared_length}")
        payload = case.body
    started = time.monotonic()
    with socket.create_connection((url.hostname, url.port), timeout=60) as connection:
        connection.sendall("\r\n".join(head).encode() + b"\r\n\r\n" + payload)
        connection.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
    seconds = time.monotonic() - started
    head_text, _, body = received.partition(b"\r\n\r\n")
    status_line, *header_lines = head_text.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in header_lines)
    return Reply(int(status_line.split()[1]), headers, body, seconds)


def send(function, case: Case) -> Reply:
    if case.declared_length is not None or case.chunked:
        return _send_raw(function, case)
    return _send_http(function, case)


def status_matches(expect: int | str, status: int) -> bool:
    if isinstance(expect, int):
        return status == expect
    return any(status // 100 == int(cls[0]) for cls in expect.split("|"))


# -- the tests --------------------------------------------------------------------------------------

def test_corpus_is_large_and_well_formed():
    assert CORPUS_SIZE >= 50
    names = [case.name for case in CORPUS]
    assert len(set(names)) == len(names), "case names must be unique"


@pytest.mark.parametrize("case", CORPUS, ids=[case.name for case in CORPUS])
def test_hostile_request(case: Case, function, standin):
    standin.reset()
    answer = send(function, case)

    assert answer.status < 500, f"{case.name}: {answer.status} {answer.body[:300]!r}"
    assert status_matches(case.expect, answer.status), f"{case.name}: {answer.status} {answer.body[:300]!r}"
    if case.method != "HEAD":  # HEAD answers carry no body
        assert answer.headers.get("Content-Type", "").startswith("application/json")
        message = answer.json().get("message")
        assert isinstance(message, str) and message.strip(), f"{case.name}: no message in {answer.body[:300]!r}"
    if case.max_seconds is not None:
        assert answer.seconds < case.max_seconds, f"{case.name}: answered in {answer.seconds:.1f} s"

    calls = [(call.method, call.path) for call in standin.calls()]
    if answer.status >= 400:
        assert calls == [], f"{case.name}: a refused request reached Novu: {calls}"
    elif not case.reaches_novu:
        assert [call for call in calls if call != WORKFLOW_LIST] == [], f"{case.name}: reached Novu: {calls}"


@pytest.mark.parametrize(
    "user_id",
    [".", "..", "a.b"],
)
def test_delete_of_a_dot_segment_user_id_targets_that_subscriber(user_id, function, standin):
    standin.reset()
    body = {"type": "delete", "userId": user_id, "messageId": f"dot-{uuid.uuid4()}"}
    response = function.post(body)
    assert response.status_code < 500
    deletes = [call.path for call in standin.calls("DELETE")]
    assert len(deletes) == 1
    prefix = "/v2/subscribers/"
    assert deletes[0].startswith(prefix) and unquote(deletes[0][len(prefix) :]) == user_id, deletes


def test_oversize_body_at_one_mebibyte(serve_function, novu):
    """MAX_BODY_BYTES = 1 MiB and a 2 MB body: 413 before any parsing, nothing sent to Novu."""
    served = serve_function(MAX_BODY_BYTES="1048576")
    body = b'{"type": "track", "blob": "' + b"x" * 2_000_000 + b'"}'
    response = served.post(data=body)
    assert response.status_code == 413
    assert "MAX_BODY_BYTES" in response.json()["message"]
    assert novu.calls() == []


def test_function_still_serves_after_the_corpus(function, standin):
    """Runs after every corpus case (pytest keeps definition order): the same function delivers."""
    standin.reset()
    message_id = f"after-corpus-{uuid.uuid4()}"
    response = function.post({**TRACK, "messageId": message_id})
    assert response.status_code == 200, response.text
    (entry,) = response.json()["events"]
    assert entry["outcome"] == "delivered" and entry["messageId"] == message_id
    assert [trigger["name"] for trigger in standin.triggered()] == [WORKFLOW]
