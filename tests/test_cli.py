"""``python -m segment_novu check`` and ``python -m segment_novu replay``, run as a person runs them:
in a subprocess, configured by environment variables, against the Novu stand-in over HTTP.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from segment_novu.mapping import planner
from segment_novu.receive import events
from segment_novu.tools import cli
from segment_novu.tools.replay import read_events
from tests.novu_standin import Scripted, error_body

PROJECT_ROOT = Path(__file__).resolve().parent.parent
TRIGGER = "/v1/events/trigger"
KEY = "cli-test-key"


def run(*arguments: str, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    """The command with only the given settings (none inherited); output decoded as is (``\r`` kept)."""
    environment = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"), **(env or {})}
    result = subprocess.run(
        [sys.executable, "-m", "segment_novu", *arguments],
        cwd=PROJECT_ROOT, env=environment, capture_output=True, timeout=timeout,
    )
    result.stdout, result.stderr = result.stdout.decode(), result.stderr.decode()
    return result


@pytest.fixture
def novu_env(novu):
    return {"NOVU_API_URL": novu.url, "NOVU_API_KEY": KEY}


@pytest.fixture
def mapping_file(tmp_path):
    def write(document) -> str:
        path = tmp_path / "mapping.json"
        path.write_text(document if isinstance(document, str) else json.dumps(document))
        return str(path)

    return write


def export(tmp_path, events_: list, *, as_array: bool = False, name: str = "export.jsonl") -> str:
    path = tmp_path / name
    if as_array:
        path.write_text(json.dumps(events_))
    else:
        path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in events_))
    return str(path)


def track(index: int, event: str = "Order Completed", user: str | None = None) -> dict:
    return {"type": "track", "userId": user or f"u{index}", "messageId": f"m-{index}", "event": event,
            "properties": {"orderId": f"o-{index}"}}


def table_rows(stdout: str) -> dict[str, list[int]]:
    """The summary table as {row: [delivered, duplicate, skipped, rejected, failed]}."""
    rows = {}
    for line in stdout.splitlines():
        parts = line.rsplit(None, 5)
        if len(parts) == 6 and all(part.isdigit() for part in parts[1:]):
            rows[parts[0].strip()] = [int(part) for part in parts[1:]]
    return rows


# -- check ------------------------------------------------------------------------------------------------


def test_check_without_a_key_validates_the_file_only(mapping_file, novu):
    path = mapping_file({"track": {"Order Completed": ["order-confirmation", "receipt-email"],
                                   "Button Clicked": {"ignore": True}},
                         "page": {"Pricing": "pricing-follow-up"}, "devices": {"providerId": "fcm"}})

    result = run("check", "--mapping", path)

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == [
        f"mapping file: {path}",
        "  valid",
        '  track "Order Completed" → order-confirmation, receipt-email',
        '  track "Button Clicked" → (ignored)',
        '  page "Pricing" → pricing-follow-up',
        "  other track events → their name as a slug (the default rule)",
        "  group → the user subscribed to the topic from groupId",
        "  context.device.token → push credentials (fcm)",
        "NOVU_API_KEY is not set: the workflows were not checked against Novu",
    ]
    assert novu.calls() == []


def test_check_shows_cancels_trigger_fields_and_audiences(mapping_file):
    path = mapping_file({
        "track": {"Cart Abandoned": {"workflow": "cart-reminder", "transactionKey": "properties.cart_id",
                                     "actor": "properties.seller_id", "overrides": {"providers": {}}},
                  "Order Completed": ["order-confirmation",
                                      {"cancel": "cart-reminder", "transactionKey": "properties.cart_id"}]},
        "audiences": {"vip_users": {"topic": {"value": "vip-users"}}, "churn": {"topic": "properties.audience_key"},
                      "internal": {"ignore": True}},
    })

    result = run("check", "--mapping", path)

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[2:4] == [
        '  track "Cart Abandoned" → cart-reminder (transactionKey, actor, overrides)',
        '  track "Order Completed" → order-confirmation, cancels cart-reminder',
    ]
    assert result.stdout.splitlines()[6:9] == [
        '  audience "vip_users" → topic vip-users (entered: subscribed, exited: unsubscribed)',
        '  audience "churn" → topic from properties.audience_key (entered: subscribed, exited: unsubscribed)',
        '  audience "internal" → (ignored)',
    ]


def test_check_of_a_broken_file_says_what_and_where(mapping_file):
    path = mapping_file({"track": {"Signed Up": [{"workflow": "welcome", "payload": {"plan": "properties.plan."}}]}})

    result = run("check", "--mapping", path)

    assert result.returncode == 1
    assert result.stdout.splitlines()[1] == (
        '  broken: mapping.json: track."Signed Up"[0].payload."plan": expected a name at character 17, '
        'found the end in "properties.plan."'
    )


def test_check_of_a_file_that_is_not_json(mapping_file):
    result = run("check", "--mapping", mapping_file('{"track": {"A": "a",}}'))

    assert result.returncode == 1
    assert "broken: mapping.json: not valid JSON: Expecting property name enclosed in double quotes: line 1" in result.stdout


def test_check_with_a_key_finds_every_workflow(mapping_file, novu, novu_env):
    novu.workflows = {"order-confirmation", "receipt-email", "welcome", "unused"}
    path = mapping_file({"track": {"Order Completed": ["order-confirmation", "receipt-email"], "Signed Up": "welcome"}})

    result = run("check", "--mapping", path, env=novu_env)

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-2:] == [
        f"Novu {novu.url}: 4 workflows",
        "every workflow the mapping names exists in Novu",
    ]
    [listing] = novu.calls()
    assert (listing.method, listing.path, listing.headers["Authorization"]) == ("GET", "/v2/workflows", f"ApiKey {KEY}")


def test_check_lists_the_workflows_novu_lacks(mapping_file, novu, novu_env):
    novu.workflows = {"receipt-email"}
    path = mapping_file({"track": {"Order Completed": ["order-confirmation", "receipt-email"]},
                         "screen": {"Checkout": "checkout-nudge"}})

    result = run("check", "--mapping", path, env=novu_env)

    assert result.returncode == 1
    assert result.stdout.splitlines()[-4:] == [
        f"Novu {novu.url}: 1 workflow",
        '  missing: order-confirmation (for track "Order Completed")',
        '  missing: checkout-nudge (for screen "Checkout")',
        "2 workflows named in the mapping do not exist in Novu",
    ]


def test_check_lists_a_workflow_only_a_cancel_names(mapping_file, novu, novu_env):
    novu.workflows = {"order-confirmation"}
    path = mapping_file({"track": {"Order Completed": [
        "order-confirmation", {"cancel": "cart-reminder", "transactionKey": "properties.cart_id"}]}})

    result = run("check", "--mapping", path, env=novu_env)

    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout.splitlines()[-2:] == [
        '  missing: cart-reminder (for track "Order Completed")',
        "1 workflow named in the mapping does not exist in Novu",
    ]


def test_replay_with_a_broken_mapping_exits_1_and_an_unreadable_one_2(tmp_path, mapping_file):
    env = {"NOVU_API_KEY": KEY}
    broken = run("replay", export(tmp_path, [track(1)]), "--mapping", mapping_file({"track": {"A": 7}}), env=env)
    unreadable = run("replay", export(tmp_path, [track(1)]), "--mapping", str(tmp_path / "absent.json"), env=env)

    assert (broken.returncode, unreadable.returncode) == (1, 2)
    assert 'mapping error: mapping.json: track."A": expected a workflow' in broken.stderr
    assert "mapping error: MAPPING_FILE" in unreadable.stderr
    assert broken.stdout == unreadable.stdout == ""


def test_check_reads_mapping_file_from_the_environment(mapping_file, novu, novu_env):
    novu.workflows = {"welcome"}
    path = mapping_file({"track": {"Signed Up": "welcome"}})

    result = run("check", env={**novu_env, "MAPPING_FILE": path})

    assert result.returncode == 0, result.stdout
    assert result.stdout.splitlines()[0] == f"mapping file: {path}"


@pytest.mark.parametrize(
    "answer, message",
    [
        (Scripted(401, error_body(401, "API Key not found", "Unauthorized")), "Novu answered 401: API Key not found"),
        (Scripted(500, error_body(500, "boom")), "Novu answered 500: boom"),
    ],
)
def test_check_when_novu_refuses_or_fails(mapping_file, novu, novu_env, answer, message):
    novu.script("GET", "/v2/workflows", answer)

    result = run("check", "--mapping", mapping_file({"track": {"A": "a"}}), env=novu_env)

    assert result.returncode == 2
    assert result.stdout.splitlines()[-1] == f"Novu {novu.url}: cannot read the workflow list: {message}"


def test_check_when_novu_is_unreachable(mapping_file, unused_port):
    url = f"http://127.0.0.1:{unused_port}"
    result = run("check", "--mapping", mapping_file({}), env={"NOVU_API_URL": url, "NOVU_API_KEY": KEY})

    assert result.returncode == 2
    assert result.stdout.splitlines()[-1] == f"Novu {url}: cannot read the workflow list: could not connect to Novu"


def test_check_with_a_broken_configuration():
    result = run("check", env={"NOVU_API_URL": "ftp://novu"})

    assert result.returncode == 2
    assert result.stdout == "configuration error: NOVU_API_URL must be an http(s) URL, not 'ftp://novu'\n"


def test_check_in_process(mapping_file, capsys):
    assert cli.main(["check", "--mapping", mapping_file({"defaultRule": False})]) == 0
    assert "  other track events → skipped (the default rule is off)" in capsys.readouterr().out.splitlines()


def test_check_of_an_unreadable_mapping_file_exits_2(tmp_path):
    missing = tmp_path / "absent.json"

    result = run("check", "--mapping", str(missing))

    assert result.returncode == 2, result.stdout + result.stderr
    assert f"  unreadable: MAPPING_FILE {missing}: cannot be read (No such file or directory)" in result.stdout


def test_check_of_a_mapping_file_that_is_a_folder_exits_2(tmp_path):
    result = run("check", "--mapping", str(tmp_path))

    assert result.returncode == 2, result.stdout + result.stderr
    assert "  unreadable: MAPPING_FILE" in result.stdout


def test_the_installed_command_works_from_any_folder(tmp_path, mapping_file):
    command = Path(sys.executable).parent / "segment-novu"
    assert command.exists(), "install the project (pip install -e .), as scripts/test does"
    path = mapping_file({"track": {"Order Completed": "receipt"}})

    result = subprocess.run([str(command), "check", "--mapping", path], cwd=tmp_path, capture_output=True,
                            text=True, env={"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)}, timeout=60)

    assert result.returncode == 0, result.stdout + result.stderr
    assert '  track "Order Completed" → receipt' in result.stdout.splitlines()


@pytest.mark.parametrize("arguments", [[], ["verify"], ["check", "--mapings", "x"], ["replay"],
                                       ["replay", "x.jsonl", "--chunk-size", "0"],
                                       ["replay", "x.jsonl", "--retries", "-1"]])
def test_usage_errors_exit_2(arguments):
    result = run(*arguments)

    assert result.returncode == 2
    assert result.stderr.startswith("usage: segment-novu")


# -- replay ---------------------------------------------------------------------------------------------


def test_replay_of_json_lines_sends_the_same_requests_as_the_function(tmp_path, novu, novu_env):
    identify = {"type": "identify", "userId": "u1", "messageId": "i-1", "traits": {"email": "ann@example.com"}}
    page = {"type": "page", "userId": "u1", "messageId": "p-1", "name": "Home"}
    path = export(tmp_path, [identify, track(1, user="u1"), page, track(2)])

    result = run("replay", path, env={**novu_env, "WORKFLOW_DISCOVERY": "false"})

    assert result.returncode == 0, result.stdout + result.stderr
    received = [(call.method, call.path, call.body) for call in novu.calls()]
    upsert = ("POST", "/v2/subscribers", {"subscriberId": "u1", "email": "ann@example.com"})
    triggers = {body["to"]["subscriberId"]: body for method, path, body in received if path == TRIGGER}
    assert triggers["u1"]["transactionId"] == planner.transaction_id(events.parse(track(1, user="u1"), 0),
                                                                      "order-completed")
    assert triggers["u2"]["transactionId"] == planner.transaction_id(events.parse(track(2), 0), "order-completed")
    assert len(received) == 3
    u1_trigger = next(call for call in received if call[1] == TRIGGER and call[2]["to"]["subscriberId"] == "u1")
    assert received.index(upsert) < received.index(u1_trigger)  # Segment's order, per subscriber
    assert table_rows(result.stdout) == {
        "(identify)": [1, 0, 0, 0, 0],
        "(page)": [0, 0, 1, 0, 0],
        "order-completed": [2, 0, 0, 0, 0],
        "total (events)": [3, 0, 1, 0, 0],
    }
    assert "replayed 4/4 events" in result.stderr
    assert not [line for line in result.stdout.splitlines() if line.startswith("{")]  # no log lines in the results


def test_replay_of_a_json_array(tmp_path, novu, novu_env):
    path = export(tmp_path, [track(index) for index in range(3)], as_array=True, name="export.json")

    result = run("replay", path, env={**novu_env, "WORKFLOW_DISCOVERY": "false"})

    assert result.returncode == 0, result.stdout + result.stderr
    assert len(novu.calls("POST", TRIGGER)) == 3
    assert table_rows(result.stdout)["total (events)"] == [3, 0, 0, 0, 0]


EXAMPLES = PROJECT_ROOT / "examples"


@pytest.mark.parametrize(
    "name, calls",
    [
        ("track.json", [("POST", TRIGGER)]),  # one event, pretty-printed
        ("tracking-api-batch.json", [("POST", "/v2/subscribers"), ("POST", TRIGGER)] * 2),  # {"batch": [...]}
        ("batch.json", [("POST", "/v2/subscribers"), ("POST", TRIGGER), ("POST", TRIGGER)]),  # a bare array
    ],
)
def test_replay_reads_the_examples_as_they_are(novu, novu_env, name, calls):
    result = run("replay", str(EXAMPLES / name), env={**novu_env, "WORKFLOW_DISCOVERY": "false"})

    assert result.returncode == 0, result.stdout + result.stderr
    assert table_rows(result.stdout)["total (events)"] == [len(calls), 0, 0, 0, 0]
    assert sorted((call.method, call.path) for call in novu.calls()) == sorted(calls)


def test_replay_of_an_envelope_merges_its_context_into_each_event():
    path = EXAMPLES / "tracking-api-batch.json"
    envelope = json.loads(path.read_text())

    total, items = read_events(path)

    read = list(items)
    assert total == len(read) == 4
    assert [line for line, _ in read] == [3, 13, 23, 33]  # where each event's "{" stands in the file
    assert [item["context"] for _, item in read] == [envelope["context"]] * 4
    assert [item["userId"] for _, item in read] == [event["userId"] for event in envelope["batch"]]


def test_replay_of_json_lines_takes_an_envelope_on_a_line(tmp_path, novu, novu_env):
    envelope = {"batch": [track(1), track(2)], "context": {"locale": "en-GB"}}
    path = export(tmp_path, [envelope, track(3)])

    result = run("replay", path, env={**novu_env, "WORKFLOW_DISCOVERY": "false"})

    assert result.returncode == 0, result.stdout + result.stderr
    assert table_rows(result.stdout)["total (events)"] == [3, 0, 0, 0, 0]
    assert sorted(call.body["to"]["subscriberId"] for call in novu.calls("POST", TRIGGER)) == ["u1", "u2", "u3"]


def test_replay_lists_every_event_not_delivered_with_the_line_it_starts_on(tmp_path, novu, novu_env):
    alias = {"type": "alias", "userId": "u7", "previousId": "anon-7", "messageId": "a-7"}
    nameless = {"type": "track", "messageId": "m-x", "event": "No One"}
    path = tmp_path / "export.json"
    path.write_text(json.dumps([track(1), alias, nameless, track(2)], indent=2))
    lines = path.read_text().splitlines()
    starts = [number for number, line in enumerate(lines, start=1) if line == "  {"]

    result = run("replay", str(path), env={**novu_env, "WORKFLOW_DISCOVERY": "false"})

    assert result.returncode == 1  # the rejected event; a skipped one alone would be 0
    assert table_rows(result.stdout)["total (events)"] == [2, 0, 1, 1, 0]
    listed = [line for line in result.stdout.splitlines() if line.startswith("line ")]
    assert listed == [
        f"line {starts[1]} (messageId a-7): skipped: alias events are not mapped: Novu cannot merge subscribers",
        f"line {starts[2]} (messageId m-x): rejected: neither userId nor anonymousId",
    ]


def test_replay_numbers_json_lines_by_the_file_after_a_broken_line(tmp_path, novu, novu_env):
    alias = {"type": "alias", "userId": "u7", "previousId": "anon-7", "messageId": "a-7"}
    lines = ["{broken", "", track(1), alias, "[1, 2", track(2), {"type": "identify", "messageId": "i-9"}, "[]", "7"]

    result = run("replay", export(tmp_path, lines), "--chunk-size", "2",
                 env={**novu_env, "WORKFLOW_DISCOVERY": "false"})

    assert result.returncode == 1
    listed = [line.split(":", 2)[:2] for line in result.stdout.splitlines() if line.startswith("line ")]
    assert listed == [["line 1", " rejected"], ["line 4 (messageId a-7)", " skipped"], ["line 5", " rejected"],
                      ["line 7 (messageId i-9)", " rejected"], ["line 8", " rejected"], ["line 9", " rejected"]]
    assert "line 8: rejected: empty batch: the array holds no events" in result.stdout
    assert "line 9: rejected: expected a JSON object or array, got int" in result.stdout


def test_replay_of_a_skipped_event_alone_exits_0(tmp_path, novu, novu_env):
    alias = {"type": "alias", "userId": "u7", "previousId": "anon-7", "messageId": "a-7"}

    result = run("replay", export(tmp_path, [alias]), env=novu_env)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "line 1 (messageId a-7): skipped: alias events are not mapped" in result.stdout


def test_replay_goes_in_chunks_and_uses_workflow_discovery(tmp_path, novu, novu_env):
    novu.workflows = {"order-completed"}
    events_ = [track(index, event="Order Completed" if index % 2 else "Nobody Listens") for index in range(5)]

    result = run("replay", export(tmp_path, events_), "--chunk-size", "2", env=novu_env)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "\rreplayed 2/5 events\rreplayed 4/5 events\rreplayed 5/5 events" in result.stderr
    assert len(novu.calls("POST", TRIGGER)) == 2  # the three without a workflow cost no call
    assert len(novu.calls("GET", "/v2/workflows")) == 1
    assert table_rows(result.stdout)["(track)"] == [0, 0, 3, 0, 0]


def test_replay_dry_run_prints_the_requests_and_sends_nothing(tmp_path, novu, mapping_file):
    path = export(tmp_path, [track(1), {"type": "delete", "userId": "u9", "messageId": "d-1"}])
    env = {"NOVU_API_URL": novu.url, "MAPPING_FILE": mapping_file({"track": {"Order Completed": "receipt"}})}

    result = run("replay", path, "--dry-run", env=env)

    assert result.returncode == 0, result.stdout + result.stderr
    requests = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert sorted((request["method"], request["url"]) for request in requests) == [
        ("DELETE", f"{novu.url}/v2/subscribers/u9"), ("POST", f"{novu.url}/v1/events/trigger"),
    ]
    assert {json.dumps(request["headers"]) for request in requests} == {'{"Authorization": "ApiKey [redacted]"}'}
    assert "dry run: nothing was sent to Novu" in result.stdout
    assert novu.calls() == []


def test_replay_waits_out_a_rate_limit_and_resends_only_what_is_left(tmp_path, novu, novu_env):
    novu.script("POST", TRIGGER, Scripted(429, "API rate limit exceeded", {"Retry-After": "1"}))
    path = export(tmp_path, [track(index) for index in range(3)])

    started = time.monotonic()
    result = run("replay", path, env={**novu_env, "WORKFLOW_DISCOVERY": "false"})

    assert result.returncode == 0, result.stdout + result.stderr
    assert time.monotonic() - started >= 1.0  # Novu's Retry-After, waited out
    assert table_rows(result.stdout)["total (events)"] == [3, 0, 0, 0, 0]
    counts = novu.transaction_counts()
    assert sorted(counts.values()) == [1, 1, 2]  # the one refused with 429 was sent again, nothing else


def test_replay_gives_up_on_a_chunk_that_makes_no_progress(tmp_path, novu, novu_env):
    novu.respond_with(lambda request: Scripted(503, "Please wait some time, then try again.")
                      if request.path == TRIGGER else None)
    path = export(tmp_path, [track(1), track(2)])

    result = run("replay", path, "--retries", "1", env={**novu_env, "WORKFLOW_DISCOVERY": "false"})

    assert result.returncode == 1
    assert table_rows(result.stdout)["total (events)"] == [0, 0, 0, 0, 2]
    assert "line 1 (messageId m-1): retry: Novu answered 503: Service Unavailable" in result.stdout
    assert len(novu.calls("POST", TRIGGER)) == 4  # each event: the first attempt and one retry


def test_replay_reports_events_it_cannot_deliver(tmp_path, novu, novu_env):
    lines = [track(1), "{not json", {"type": "track", "messageId": "m-x", "event": "No One"}, "", track(2)]

    result = run("replay", export(tmp_path, lines), env={**novu_env, "WORKFLOW_DISCOVERY": "false"})

    assert result.returncode == 1
    assert table_rows(result.stdout)["total (events)"] == [2, 0, 0, 2, 0]
    assert "line 2: rejected: not valid JSON: Expecting property name enclosed in double quotes: line 1 column 2 " \
           "(char 1)" in result.stdout
    assert "line 3 (messageId m-x): rejected: neither userId nor anonymousId" in result.stdout
    assert len(novu.calls("POST", TRIGGER)) == 2


def test_replay_stops_when_novu_refuses_the_key(tmp_path, novu, novu_env):
    novu.respond_with(lambda request: Scripted(401, error_body(401, "API Key not found", "Unauthorized")))
    path = export(tmp_path, [track(index) for index in range(5)])

    result = run("replay", path, "--chunk-size", "2", env={**novu_env, "WORKFLOW_DISCOVERY": "false"})

    assert result.returncode == 1
    assert "stopped after 2 of 5 events: Novu refused the API key (401): check NOVU_API_KEY" in result.stdout
    assert len(novu.calls("POST", TRIGGER)) <= 2


def test_a_second_replay_of_the_same_export_costs_nothing_in_the_same_process(tmp_path, novu, novu_env, monkeypatch):
    """The ledger (here in memory) skips what Novu already took: a chunk resent after a failure, or
    the whole export run twice by one process."""
    from segment_novu import config
    from segment_novu.bridge import Bridge
    from segment_novu.tools.replay import Replay, read_events

    bridge = Bridge(config.load({**novu_env, "WORKFLOW_DISCOVERY": "false"}))
    path = Path(export(tmp_path, [track(index) for index in range(4)]))

    first = Replay(bridge, chunk_size=3).run(read_events(path)[1])
    again = Replay(bridge, chunk_size=3).run(read_events(path)[1])

    assert (first.totals["delivered"], again.totals["duplicate"]) == (4, 4)
    assert len(novu.calls("POST", TRIGGER)) == 4


@pytest.mark.parametrize(
    "arguments, env, message",
    [
        (["replay", "{export}"], {}, "NOVU_API_KEY is not set: set it, or use --dry-run to see the requests without "
                                     "sending them"),
        (["replay", "{missing}"], {"NOVU_API_KEY": KEY}, "{missing}: cannot be read (No such file or directory)"),
        (["replay", "{array}"], {"NOVU_API_KEY": KEY}, "{array}: not valid JSON: Expecting value: line 1 column 3 "
                                                      "(char 2)"),
        (["replay", "{export}", "--mapping", "{missing}"], {"NOVU_API_KEY": KEY},
         "mapping error: MAPPING_FILE {missing}: cannot be read (No such file or directory)"),
    ],
)
def test_replay_that_cannot_start_exits_2(tmp_path, arguments, env, message):
    files = {"export": export(tmp_path, [track(1)]), "missing": str(tmp_path / "absent.jsonl"),
             "array": str(tmp_path / "broken.json")}
    Path(files["array"]).write_text("[ ,]")

    result = run(*[argument.format(**files) for argument in arguments], env=env)

    assert result.returncode == 2
    assert message.format(**files) in result.stderr
    assert result.stdout == ""
