"""What the function writes to stdout: one JSON object per line, shaped for Cloud Logging, carrying the
request's trace, and never a secret or a user's personal data (neither in logs nor in answers).
"""

from __future__ import annotations

import contextvars
import json
import subprocess
import sys
import threading
from datetime import datetime
from pathlib import Path

import pytest

from segment_novu import logs
from segment_novu.receive.signature import sign
from tests.novu_standin import Scripted, error_body

NOVU_KEY = "nk-SECRET-123"
SHARED_SECRET = "ss-SECRET-456"
EMAIL = "peter@example.com"
SECRETS = (NOVU_KEY, SHARED_SECRET)
IDENTIFY = (Path(__file__).parent / "data" / "segment" / "identify-peter-gibbons.json").read_bytes()
TRACK = b'{"type":"track","userId":"97980cfea0067","messageId":"m-track-1","event":"Order Completed"}'
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACE_FIELD = "logging.googleapis.com/trace"
assert EMAIL.encode() in IDENTIFY


# -- helpers ---------------------------------------------------------------------------------------

@pytest.fixture
def serve_function(serve_function):
    """The conftest fixture with workflow discovery off: the Novu calls asserted here are the
    deliveries themselves, with no ``GET /v2/workflows`` in between."""
    return lambda **env: serve_function(**{"WORKFLOW_DISCOVERY": "false", **env})



def log_lines(capfd) -> list[dict]:
    """Every stdout line, each of which must be one JSON object with severity and message.
    (stderr carries the HTTP server's access log: no secret may reach it either.)"""
    out, err = capfd.readouterr()
    for secret in SECRETS:
        assert secret not in err
    entries = []
    for line in out.splitlines():
        entry = json.loads(line)
        assert isinstance(entry, dict), line
        assert entry["severity"] in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"), line
        assert isinstance(entry["message"], str) and entry["message"], line
        entries.append(entry)
    return entries


def assert_nothing_sensitive(text: str, *, personal_data_allowed: bool = False) -> None:
    for secret in SECRETS:
        assert secret not in text
    if not personal_data_allowed:
        assert EMAIL not in text


def signed(body: bytes) -> dict:
    return {"X-Signature": sign(body, SHARED_SECRET)}


def serve(serve_function, **env):
    return serve_function(NOVU_API_KEY=NOVU_KEY, SEGMENT_SHARED_SECRET=SHARED_SECRET, **env)


# Each scenario serves the function and makes one request; returns (response, expected status).


def identify_delivered(serve_function, novu):
    return serve(serve_function).post(data=IDENTIFY, headers=signed(IDENTIFY)), 200


def novu_failing(serve_function, novu):
    novu.script("POST", "/v2/subscribers", Scripted(500, error_body(500, "Internal server error")))
    return serve(serve_function).post(data=IDENTIFY, headers=signed(IDENTIFY)), 503


def novu_refusing_the_key(serve_function, novu):
    novu.script("POST", "/v2/subscribers", Scripted(401, error_body(401, "API Key not found", "Unauthorized")))
    return serve(serve_function).post(data=IDENTIFY, headers=signed(IDENTIFY)), 500


def signature_refused(serve_function, novu):
    return serve(serve_function).post(data=IDENTIFY, headers={"X-Signature": sign(IDENTIFY, "wrong")}), 401


def dry_run(serve_function, novu):
    return serve(serve_function, DRY_RUN="true").post(data=IDENTIFY, headers=signed(IDENTIFY)), 200


SCENARIOS = [identify_delivered, novu_failing, novu_refusing_the_key, signature_refused, dry_run]


# -- structure and redaction ---------------------------------------------------------------------------


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda scenario: scenario.__name__)
def test_every_line_is_json_and_nothing_sensitive_is_logged_or_answered(serve_function, novu, capfd, scenario):
    response, status = scenario(serve_function, novu)

    assert response.status_code == status, response.text[:500]
    entries = log_lines(capfd)
    assert entries, "nothing was logged"
    for entry in entries:
        assert_nothing_sensitive(json.dumps(entry))
    # The dry-run answer lists the subscriber that would be upserted: the user's own data, never a secret.
    assert_nothing_sensitive(response.text, personal_data_allowed=scenario is dry_run)
    for name, value in response.headers.items():
        assert_nothing_sensitive(f"{name}: {value}")


def test_the_answered_event_is_logged_with_its_outcome(serve_function, novu, capfd):
    response, _ = novu_failing(serve_function, novu)

    assert response.status_code == 503
    message_id = json.loads(IDENTIFY)["messageId"]
    [event_line] = [entry for entry in log_lines(capfd) if entry.get("messageId") == message_id]
    assert event_line["severity"] == "WARNING"
    assert event_line["outcome"] == "retry"
    assert event_line["type"] == "identify"


def test_a_single_event_is_one_line_and_a_batch_one_per_event_plus_the_answer(serve_function, novu, capfd):
    """One event, one line carrying its outcome and the request's answer; a batch, a line per event
    and one for the answer (log volume is what Cloud Logging bills)."""
    function = serve_function()
    single = json.loads(TRACK)
    batch = [{**single, "messageId": f"batch-{index}", "userId": f"u-{index}"} for index in range(3)]

    def request_lines():
        return [entry for entry in log_lines(capfd) if "messageId" in entry or "status" in entry]

    assert function.post(data=TRACK).status_code == 200
    single_lines = request_lines()
    assert function.post(batch).status_code == 200
    batch_lines = request_lines()

    [line] = single_lines
    assert (line["message"], line["messageId"], line["outcome"], line["status"], line["events"]) == (
        "event delivered", single["messageId"], "delivered", 200, 1)
    assert isinstance(line["durationMs"], float)
    assert [entry["message"] for entry in batch_lines] == ["event delivered"] * 3 + ["request answered"]
    assert [entry.get("messageId") for entry in batch_lines] == ["batch-0", "batch-1", "batch-2", None]
    assert (batch_lines[-1]["status"], batch_lines[-1]["events"], batch_lines[-1]["shape"]) == (200, 3, "array")
    assert all("status" not in entry for entry in batch_lines[:3])


def test_log_events_undelivered_keeps_only_the_lines_of_events_not_delivered(serve_function, novu, capfd):
    """LOG_EVENTS=undelivered: a batch's delivered events write no line (a big batch's lines are billed);
    a skipped or rejected event still does, and so does the request line, counting them all."""
    function = serve_function(LOG_EVENTS="undelivered")
    single = json.loads(TRACK)
    batch = [{**single, "messageId": f"batch-{index}", "userId": f"u-{index}"} for index in range(3)]
    batch.insert(1, {"type": "alias", "userId": "u-1", "previousId": "anon-1", "messageId": "alias-1"})
    batch.append({"type": "track", "userId": "u-9", "messageId": "broken-1"})

    assert function.post(batch).status_code == 200
    lines = [entry for entry in log_lines(capfd) if "messageId" in entry or "status" in entry]
    assert function.post(data=TRACK).status_code == 200
    single_lines = [entry for entry in log_lines(capfd) if "messageId" in entry or "status" in entry]

    assert [(entry["message"], entry.get("messageId")) for entry in lines] == [
        ("event skipped", "alias-1"), ("event rejected", "broken-1"), ("request answered", None)]
    assert (lines[-1]["status"], lines[-1]["events"]) == (200, 5)
    assert len(novu.calls("POST", "/v1/events/trigger/bulk")) + len(novu.calls("POST", "/v1/events/trigger")) >= 1
    [line] = single_lines  # a request of one event keeps its one line, delivered or not
    assert (line["message"], line["messageId"], line["status"]) == ("event delivered", single["messageId"], 200)


def test_a_rejected_event_keeps_the_type_it_declared_in_the_reply_and_its_log_line(serve_function, novu, capfd):
    function = serve_function()
    batch = [json.loads(TRACK), {"type": "trakc", "userId": "u-2", "messageId": "typo-1", "event": "X"}]

    response = function.post(batch)

    assert response.status_code == 200
    assert response.json()["events"][1] == {
        "index": 1, "messageId": "typo-1", "type": "trakc", "outcome": "rejected",
        "reason": "unknown type 'trakc': expected one of identify, track, page, screen, group, alias, delete"}
    [line] = [entry for entry in log_lines(capfd) if entry.get("messageId") == "typo-1"]
    assert (line["severity"], line["type"], line["outcome"]) == ("ERROR", "trakc", "rejected")


def test_a_refused_signature_is_logged_as_a_warning(serve_function, novu, capfd):
    response, _ = signature_refused(serve_function, novu)

    assert response.status_code == 401
    refusals = [entry for entry in log_lines(capfd) if entry["message"] == "request refused"]
    assert [entry["severity"] for entry in refusals] == ["WARNING"]
    assert novu.calls() == []


# -- trace correlation ---------------------------------------------------------------------------------


@pytest.mark.parametrize("headers", [
    {"traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01"},
    {"X-Cloud-Trace-Context": f"{TRACE_ID}/1;o=1"},
    {"X-Cloud-Trace-Context": TRACE_ID.upper()},
], ids=["traceparent", "x-cloud-trace-context", "x-cloud-trace-context-bare"])
def test_event_lines_carry_the_request_trace(serve_function, novu, capfd, headers):
    function = serve_function(GOOGLE_CLOUD_PROJECT="proj")

    response = function.post(data=TRACK, headers=headers)

    assert response.status_code == 200, response.text[:500]
    entries = log_lines(capfd)
    request_lines = [entry for entry in entries if "messageId" in entry or entry["message"] == "request answered"]
    assert [entry["message"] for entry in request_lines] == ["event delivered"]
    for entry in request_lines:
        assert entry[TRACE_FIELD] == f"projects/proj/traces/{TRACE_ID}"


def test_no_trace_field_without_project_or_header(serve_function, novu, capfd):
    with_header = serve_function().post(data=TRACK, headers={"traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01"})
    without_header = serve_function(GOOGLE_CLOUD_PROJECT="proj").post(data=TRACK)

    assert (with_header.status_code, without_header.status_code) == (200, 200)
    assert all(TRACE_FIELD not in entry for entry in log_lines(capfd))


def test_trace_does_not_leak_into_the_next_request(serve_function, novu, capfd):
    function = serve_function(GOOGLE_CLOUD_PROJECT="proj")
    function.post(data=TRACK, headers={"traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01"})
    log_lines(capfd)

    function.post(data=TRACK.replace(b"m-track-1", b"m-track-2"))

    assert all(TRACE_FIELD not in entry for entry in log_lines(capfd))


def test_lines_logged_on_delivery_threads_carry_the_request_trace(serve_function, novu, secret_manager, capfd):
    secret_manager.set("projects/p/secrets/novu-key", NOVU_KEY)
    function = serve_function(
        GOOGLE_CLOUD_PROJECT="proj",
        NOVU_API_KEY="projects/p/secrets/novu-key",
        SECRET_MANAGER_EMULATOR_HOST=secret_manager.host,
    )
    batch = b"[" + TRACK + b"," + TRACK.replace(b"97980cfea0067", b"other-user").replace(b"m-track-1", b"m2") + b"]"

    response = function.post(data=batch, headers={"traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01"})

    assert response.status_code == 200, response.text[:500]
    [secret_read] = [entry for entry in log_lines(capfd) if entry["message"] == "secret read"]
    assert secret_read.get(TRACE_FIELD) == f"projects/proj/traces/{TRACE_ID}"


class RecordingStdout:
    """Stands in for sys.stdout (no wire: what is asserted is the calls made on it)."""

    def __init__(self):
        self.calls: list[tuple[str, str | None]] = []

    def write(self, text: str) -> int:
        self.calls.append(("write", text))
        return len(text)

    def flush(self) -> None:
        self.calls.append(("flush", None))

    def writes(self) -> list[str]:
        return [text for call, text in self.calls if call == "write"]

    def flushes(self) -> int:
        return sum(call == "flush" for call, _ in self.calls)


def record_stdout(monkeypatch) -> RecordingStdout:
    """Called in the test itself: pytest's capture puts its own sys.stdout back after fixtures run."""
    recording = RecordingStdout()
    monkeypatch.setattr(sys, "stdout", recording)
    return recording


def test_a_requests_entries_leave_in_one_write_one_line_each_with_an_rfc3339_time(monkeypatch):
    written = record_stdout(monkeypatch)
    with logs.request_scope():
        logs.info("first", index=1)
        context = contextvars.copy_context()
        worker = threading.Thread(target=context.run, args=(logs.warning, "from a delivery thread"))
        worker.start()
        worker.join()
        logs.info("last", index=3)
        assert written.calls == []

    [text] = written.writes()
    entries = [json.loads(line) for line in text.splitlines()]
    assert [(entry["severity"], entry["message"]) for entry in entries] == [
        ("INFO", "first"), ("WARNING", "from a delivery thread"), ("INFO", "last"),
    ]
    assert text.endswith("}\n") and text.count("\n") == 3
    times = [datetime.fromisoformat(entry["time"]) for entry in entries]
    assert all(entry["time"].endswith("Z") for entry in entries)
    assert times == sorted(times) and times[0].tzinfo is not None
    assert written.calls[-1] == ("flush", None)


def test_to_functions_frameworks_execution_id_wrapper_every_entry_is_its_own_write(monkeypatch):
    """The wrapper (LOG_EXECUTION_ID=true) parses each write as one JSON document."""
    from functions_framework.execution_id import LoggingHandlerAddExecutionId

    written = RecordingStdout()
    monkeypatch.setattr(sys, "stdout", LoggingHandlerAddExecutionId(written))
    with logs.request_scope():
        logs.info("first")
        logs.info("second")

    assert [json.loads(text)["message"] for text in written.writes() if text != "\n"] == ["first", "second"]


def test_an_entry_outside_any_request_is_written_at_once(monkeypatch):
    written = record_stdout(monkeypatch)
    logs.info("outside any request")
    assert [json.loads(text)["message"] for text in written.writes()] == ["outside any request"]
    assert written.flushes() == 1


class InFlight:
    """Another request, open in its own thread until ``end`` is called."""

    def __init__(self, message: str):
        self.opened, self.release = threading.Event(), threading.Event()
        self.thread = threading.Thread(target=contextvars.Context().run, args=(self._run, message))
        self.thread.start()
        assert self.opened.wait(2)

    def _run(self, message: str) -> None:
        with logs.request_scope():
            self.opened.set()
            self.release.wait(2)
            logs.info(message)

    def end(self) -> None:
        self.release.set()
        self.thread.join(2)


def test_entries_of_a_request_ending_while_another_is_in_flight_leave_with_the_last_one(monkeypatch):
    """Under PYTHONUNBUFFERED (Cloud Run) each write is a system call: a finished request's entries
    wait for the last request in flight and leave in one write with its own."""
    written = record_stdout(monkeypatch)
    other = InFlight("from the request still in flight")
    with logs.request_scope():
        logs.info("from the request that ends first")
    assert written.calls == []
    other.end()

    [text] = written.writes()
    assert [json.loads(line)["message"] for line in text.splitlines()] == [
        "from the request that ends first", "from the request still in flight",
    ]
    assert written.calls[-1] == ("flush", None) and written.flushes() == 1


def test_held_entries_are_written_once_the_oldest_has_waited_long_enough(monkeypatch):
    written = record_stdout(monkeypatch)
    monkeypatch.setattr(logs, "HOLD_SECONDS", 0.0)
    other = InFlight("from the long request")
    try:
        with logs.request_scope():
            logs.info("from a short request")
        assert [json.loads(text)["message"] for text in written.writes()] == ["from a short request"]
    finally:
        other.end()


def test_held_lines_are_written_at_exit():
    """A process that exits while a request is still in flight writes the lines held for it."""
    script = (
        "from segment_novu import logs\n"
        "logs.request_scope().__enter__()  # a request that never ends\n"
        "with logs.request_scope():\n"
        "    logs.info('held until exit')\n"
    )
    finished = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30,
                              cwd=Path(__file__).parent.parent)

    assert finished.returncode == 0, finished.stderr
    assert json.loads(finished.stdout)["message"] == "held until exit"


def test_under_log_execution_id_every_entry_stays_one_entry_with_its_severity_and_execution_id(
    serve_function, novu, capfd
):
    """functions-framework's LOG_EXECUTION_ID parses each write to stdout as one JSON document: a
    request's entries must arrive one by one, each with its own severity, time and the execution id."""
    function = serve_function(LOG_EXECUTION_ID="true", GOOGLE_CLOUD_PROJECT="proj")
    capfd.readouterr()
    batch = b"[" + TRACK + b"," + TRACK.replace(b"m-track-1", b"m-track-2") + b"]"

    response = function.post(data=batch, headers={"Function-Execution-Id": "exec-42",
                                                  "traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01"})

    assert response.status_code == 200, response.text[:500]
    entries = [entry for entry in log_lines(capfd) if entry["message"].startswith(("event", "request"))]
    assert [(entry["severity"], entry["message"]) for entry in entries] == [
        ("INFO", "event delivered"), ("INFO", "event delivered"), ("INFO", "request answered"),
    ]
    for entry in entries:
        assert entry["logging.googleapis.com/labels"] == {"execution_id": "exec-42"}
        assert entry[TRACE_FIELD] == f"projects/proj/traces/{TRACE_ID}"
        datetime.fromisoformat(entry["time"])
