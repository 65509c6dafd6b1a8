"""Delivery of Segment-sized batches: bulk triggers, per-subscriber order, the deadline, Novu's 429,
the configuration rate, and the ledger that makes resends cheap. Over real HTTP, asserting the exact
Novu calls and the status Segment gets (timings are the benchmark's business, not these tests')."""

from __future__ import annotations

from segment_novu.delivery.courier import BULK_SIZE, split_triggers, stages
from segment_novu.mapping.operations import (
    delete_subscriber,
    trigger,
    upsert_subscriber,
)
from tests.factories import delete, identify, track, tracks
from tests.novu_standin import Scripted, error_body

BULK = "/v1/events/trigger/bulk"
SINGLE = "/v1/events/trigger"


def _trigger_op(index, subscriber):
    return trigger(index, workflow="w", to={"subscriberId": subscriber}, payload={}, transaction_id=f"t{index}",
                   subscriber_id=subscriber, by_default_rule=True)


def test_stages_keep_each_subscribers_order_and_let_others_run_alongside():
    operations = [
        upsert_subscriber(0, subscriber={"subscriberId": "a"}, key="u0"),
        _trigger_op(1, "a"),
        _trigger_op(2, "b"),
        delete_subscriber(3, subscriber_id="b", key="d3"),
        _trigger_op(4, "c"),
    ]
    assert stages(operations) == [[0, 2, 4], [1, 3]]


def test_split_sends_full_bulks_and_a_small_remainder_singly():
    positions = list(range(250))
    chunks, singles = split_triggers(positions, max_concurrency=32)
    assert [len(chunk) for chunk in chunks] == [100, 100]
    assert singles == list(range(200, 250))


def test_split_sends_a_large_remainder_as_one_more_bulk():
    chunks, singles = split_triggers(list(range(250)), max_concurrency=16)
    assert [len(chunk) for chunk in chunks] == [100, 100, 50]
    assert singles == []


def test_a_thousand_events_go_in_ten_bulk_calls_each_delivered_once(serve_function, novu):
    function = serve_function()
    batch = tracks(1000)
    response = function.post(batch)
    assert response.status_code == 200, response.text
    bulk_calls = novu.calls("POST", BULK)
    assert [len(call.body["events"]) for call in bulk_calls] == [BULK_SIZE] * 10
    assert novu.calls("POST", SINGLE) == []
    counts = novu.transaction_counts()
    assert len(counts) == 1000 and set(counts.values()) == {1}
    assert {entry["outcome"] for entry in response.json()["events"]} == {"delivered"}


def test_a_bulk_slot_error_is_that_events_failure_and_is_retried_singly(serve_function, novu):
    function = serve_function(WORKFLOW_DISCOVERY="false")
    novu.workflows = {"order-completed"}
    batch = tracks(BULK_SIZE)
    for event in batch[:3]:
        event["event"] = "Nobody Listens"
    response = function.post(batch)
    assert response.status_code == 200, response.text
    singles = novu.calls("POST", SINGLE)
    assert [call.body["name"] for call in singles] == ["nobody-listens"] * 3
    outcomes = [entry["outcome"] for entry in response.json()["events"]]
    assert outcomes == ["skipped"] * 3 + ["delivered"] * (BULK_SIZE - 3)


def test_a_bulk_refused_as_a_whole_is_resent_singly_so_one_bad_event_spoils_no_other(serve_function, novu):
    function = serve_function()
    batch = tracks(BULK_SIZE)
    batch[7]["properties"]["huge"] = "x"
    too_large = Scripted(413, error_body(413, "request entity too large"))

    def refuse_what_holds_the_huge_event(request):
        events = request.body.get("events", [request.body])
        return too_large if any("huge" in event["payload"] for event in events) else None

    novu.respond_with(refuse_what_holds_the_huge_event)
    response = function.post(batch)
    assert response.status_code == 200, response.text
    assert len(novu.calls("POST", BULK)) == 1
    assert len(novu.calls("POST", SINGLE)) == BULK_SIZE
    outcomes = [entry["outcome"] for entry in response.json()["events"]]
    assert outcomes[7] == "rejected"
    assert outcomes.count("delivered") == BULK_SIZE - 1
    assert len(novu.accepted) == BULK_SIZE - 1


def test_identify_lands_before_that_subscribers_trigger_and_delete_after(serve_function, novu):
    function = serve_function()
    batch = [
        track(0, user="bob"),
        identify(1, user="ann", email="ann@example.com"),
        track(2, user="ann"),
        delete(3, user="bob"),
    ]
    response = function.post(batch)
    assert response.status_code == 200, response.text
    sequence = [(call.method, call.path, (call.body or {}).get("to", {}).get("subscriberId")) for call in novu.calls()]
    assert sequence.index(("POST", "/v2/subscribers", None)) < sequence.index(("POST", SINGLE, "ann"))
    assert sequence.index(("POST", SINGLE, "bob")) < sequence.index(("DELETE", "/v2/subscribers/bob", None))


def test_a_subscriber_whose_identify_must_be_retried_gets_no_trigger_yet(serve_function, novu):
    function = serve_function()
    novu.script("POST", "/v2/subscribers", Scripted(503, error_body(503, "down")))
    batch = [identify(0, user="ann", email="ann@example.com"), track(1, user="ann"), track(2, user="bob")]
    response = function.post(batch)
    assert response.status_code == 503
    assert [call.body["to"]["subscriberId"] for call in novu.calls("POST", SINGLE)] == ["bob"]
    outcomes = [entry["outcome"] for entry in response.json()["events"]]
    assert outcomes == ["retry", "retry", "delivered"]

    resent = function.post(batch)
    assert resent.status_code == 200
    assert novu.transaction_counts() == {batch_id: 1 for batch_id in novu.transaction_counts()}
    assert [call.body["to"]["subscriberId"] for call in novu.calls("POST", SINGLE)] == ["bob", "ann"]


def test_novu_429_stops_every_call_not_started_and_answers_its_retry_after(serve_function, novu):
    function = serve_function(MAX_CONCURRENCY="1")
    answers = iter([None, Scripted(429, error_body(429, "slow down"), {"Retry-After": "7"})])
    novu.respond_with(lambda request: next(answers, None) if request.path == BULK else None)
    response = function.post(tracks(400))
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "7"
    assert len(novu.calls("POST", BULK)) == 2
    outcomes = [entry["outcome"] for entry in response.json()["events"]]
    assert outcomes == ["delivered"] * 100 + ["rate-limited"] * 300


def test_resends_after_429_skip_what_novu_acknowledged_and_finish(serve_function, novu):
    """The livelock: a batch that hits 429 halfway on every resend never gets past the same point,
    unless what was acknowledged is skipped. Novu here lets one bulk call through per request."""
    function = serve_function(MAX_CONCURRENCY="1")
    budget = novu.limit_bulk_calls(1)
    batch = tracks(300)
    statuses = []
    for _ in range(3):
        budget["left"] = 1
        statuses.append(function.post(batch).status_code)
    assert statuses == [429, 429, 200]
    assert len(novu.calls("POST", BULK)) == 5  # three accepted, two refused: nothing accepted is sent again
    assert len(novu.accepted) == 300 and set(novu.accepted.values()) == {1}


def test_the_deadline_stops_new_calls_and_answers_retryable(serve_function, novu):
    function = serve_function(MAX_CONCURRENCY="1", DEADLINE_SECONDS="1", NOVU_TIMEOUT_SECONDS="0.5")
    novu.latency = 0.4
    batch = tracks(500)
    response = function.post(batch)
    assert response.status_code == 503
    reasons = {entry["reason"] for entry in response.json()["events"]}
    assert "not sent: the deadline for answering Segment was reached" in reasons
    sent = len(novu.calls("POST", BULK))
    assert 1 <= sent < 5

    novu.latency = 0
    assert function.post(batch).status_code == 200
    counts = novu.transaction_counts()
    assert len(counts) == 500 and set(counts.values()) == {1}


def test_subscriber_changes_are_paced_to_novus_configuration_rate_and_the_rest_is_429(serve_function, novu):
    function = serve_function(NOVU_CONFIG_RATE_PER_SECOND="1", DEADLINE_SECONDS="0.8")
    batch = [identify(index, user=f"user-{index}", email=f"u{index}@example.com") for index in range(12)]

    response = function.post(batch)

    # A bucket of 5 s at 1 a second: five changes now, the sixth's token would come after the deadline.
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "1"
    assert response.json()["message"] == "Novu rate limit reached; retry after 1 s (5 delivered, 7 rate-limited)"
    assert len(novu.calls("POST", "/v2/subscribers")) == 5
    events = response.json()["events"]
    assert [entry["outcome"] for entry in events] == ["delivered"] * 5 + ["rate-limited"] * 7
    assert "configuration rate for this deployment" in events[5]["reason"]


def test_a_lone_subscriber_change_is_paced_too(serve_function, novu):
    function = serve_function(NOVU_CONFIG_RATE_PER_SECOND="1", DEADLINE_SECONDS="0.8")

    answers = [function.post(identify(index, user=f"user-{index}", email=f"u{index}@example.com"))
               for index in range(6)]

    assert [answer.status_code for answer in answers] == [200] * 5 + [429]
    assert "configuration rate" in answers[-1].json()["events"][0]["reason"]
    assert len(novu.calls("POST", "/v2/subscribers")) == 5


def test_with_a_trigger_rate_a_remainder_goes_as_single_triggers(serve_function, novu):
    function = serve_function(NOVU_TRIGGER_RATE_PER_SECOND="6000", MAX_CONCURRENCY="4")

    response = function.post(tracks(150))

    assert response.status_code == 200, response.text
    assert [len(call.body["events"]) for call in novu.calls("POST", BULK)] == [BULK_SIZE]
    assert len(novu.calls("POST", SINGLE)) == 50  # a bulk of 50 would cost 100 tokens, 50 singles cost 50


def test_without_a_trigger_rate_a_large_remainder_is_one_more_bulk(serve_function, novu):
    function = serve_function(MAX_CONCURRENCY="4")

    response = function.post(tracks(150))

    assert response.status_code == 200, response.text
    assert sorted(len(call.body["events"]) for call in novu.calls("POST", BULK)) == [50, BULK_SIZE]


def test_a_trigger_bucket_too_small_for_a_bulk_call_sends_singles_only(serve_function, novu):
    function = serve_function(NOVU_TRIGGER_RATE_PER_SECOND="10", DEADLINE_SECONDS="2")

    response = function.post(tracks(120))

    assert novu.calls("POST", BULK) == []  # a bucket of 50 could never pay a bulk call's 100
    assert response.status_code == 429
    assert len(novu.calls("POST", SINGLE)) >= 50


def _calls(novu, since: int = 0) -> list[tuple[str, str]]:
    return [(call.method, call.path) for call in novu.calls()[since:]]


def test_a_gdpr_delete_waits_for_the_retried_upsert_before_it_and_resends_keep_the_order(serve_function, novu):
    """Novu answers the upsert 503: the delete must not go (a resend would upsert after it and bring the
    deleted person back); on the resend both land, in the events' order."""
    function = serve_function()
    novu.script("POST", "/v2/subscribers", Scripted(503, error_body(503, "down")))
    batch = [identify(0, user="ann", email="ann@example.com"), delete(1, user="ann")]

    first = function.post(batch)

    assert first.status_code == 503
    assert [(entry["outcome"], entry["reason"]) for entry in first.json()["events"]][1] == (
        "retry", "not sent: an earlier operation for this subscriber must be retried first")
    assert _calls(novu) == [("POST", "/v2/subscribers")]

    resent = function.post(batch)

    assert resent.status_code == 200, resent.text
    assert _calls(novu, 1) == [("POST", "/v2/subscribers"), ("DELETE", "/v2/subscribers/ann")]


def test_a_subscribers_later_changes_wait_while_other_subscribers_go_on(serve_function, novu):
    function = serve_function()
    novu.script("POST", "/v2/subscribers", Scripted(503, error_body(503, "down")))
    batch = [identify(0, user="ann", email="a@example.com"), identify(1, user="ann", email="b@example.com"),
             delete(2, user="ann"), delete(3, user="bob")]

    response = function.post(batch)

    assert response.status_code == 503
    assert [entry["outcome"] for entry in response.json()["events"]] == ["retry", "retry", "retry", "delivered"]
    assert sorted(_calls(novu)) == [("DELETE", "/v2/subscribers/bob"), ("POST", "/v2/subscribers")]


def test_a_failed_upsert_holds_back_the_same_users_later_upsert_so_novu_ends_with_the_latest(
    serve_function, novu
):
    function = serve_function()
    novu.script("POST", "/v2/subscribers", Scripted(503, error_body(503, "down")))
    batch = [identify(0, user="ann", plan="free"), identify(1, user="ann", plan="pro")]

    first = function.post(batch)

    assert first.status_code == 503
    assert [entry["outcome"] for entry in first.json()["events"]] == ["retry", "retry"]
    assert len(novu.calls("POST", "/v2/subscribers")) == 1

    resent = function.post(batch)

    assert resent.status_code == 200, resent.text
    upserts = novu.calls("POST", "/v2/subscribers")[1:]
    assert [call.body["data"]["plan"] for call in upserts] == ["free", "pro"]


def test_a_failed_topic_upsert_holds_back_the_subscription(serve_function, novu):
    function = serve_function(WORKFLOW_DISCOVERY="false")
    novu.script("POST", "/v2/topics", Scripted(503, error_body(503, "down")))
    event = _group(0, user="ann")

    first = function.post(event)

    assert first.status_code == 503
    assert _calls(novu) == [("POST", "/v2/topics")]

    resent = function.post(event)

    assert resent.status_code == 200, resent.text
    assert _calls(novu, 1) == [("POST", "/v2/topics"), ("POST", "/v2/topics/team-7/subscriptions")]


def test_a_group_renamed_back_to_an_earlier_name_is_sent(serve_function, novu):
    function = serve_function(WORKFLOW_DISCOVERY="false")
    names = ["Acme", "Acme Corp", "Acme"]

    for index, name in enumerate(names):
        event = {**_group(index, user="ann", group="acct_42"), "traits": {"name": name}}
        response = function.post(event)
        assert response.status_code == 200, response.text
        assert [entry["outcome"] for entry in response.json()["events"]] == ["delivered"]

    assert [call.body["name"] for call in novu.calls("POST", "/v2/topics")] == names


def test_one_message_id_for_two_users_is_two_events(serve_function, novu):
    """Custom forwarders choose their own messageIds: only a true resend (same user too) is a duplicate."""
    function = serve_function()
    ann, bob = track(0, user="ann"), track(0, user="bob")
    assert ann["messageId"] == bob["messageId"]

    separate = [function.post(ann), function.post(bob)]
    together = function.post([{**ann, "messageId": "x-1"}, {**bob, "messageId": "x-1"}])

    for response in (*separate, together):
        assert response.status_code == 200, response.text
        assert {entry["outcome"] for entry in response.json()["events"]} == {"delivered"}
    ids = [call.body["transactionId"] for call in novu.calls("POST", SINGLE)]
    assert len(ids) == 4 and len(set(ids)) == 4
    assert len(novu.accepted) == 4


def _group(index: int, *, user: str, group: str = "team-7") -> dict:
    return {"type": "group", "userId": user, "messageId": f"g-{index}", "groupId": group, "traits": {"name": "Seven"}}


def test_a_membership_acknowledged_before_a_delete_is_sent_again_after_it(serve_function, novu):
    """The ledger remembers the membership by its content; the delete removed it in Novu, so the next
    group event for it must reach Novu, not be skipped as already delivered."""
    function = serve_function(WORKFLOW_DISCOVERY="false")
    function.post(_group(0, user="ann"))
    function.post(delete(1, user="ann"))

    again = function.post(_group(2, user="ann"))

    assert again.status_code == 200
    assert [entry["outcome"] for entry in again.json()["events"]] == ["delivered"]
    assert _calls(novu, 3) == [("POST", "/v2/topics/team-7/subscriptions")]


def test_a_membership_after_a_delete_in_the_same_batch_is_sent(serve_function, novu):
    function = serve_function(WORKFLOW_DISCOVERY="false")
    function.post(_group(0, user="ann"))

    response = function.post([_group(0, user="ann"), delete(1, user="ann"), _group(2, user="ann")])

    assert response.status_code == 200
    assert [entry["outcome"] for entry in response.json()["events"]] == ["duplicate", "delivered", "delivered"]
    assert _calls(novu, 2) == [("DELETE", "/v2/subscribers/ann"), ("POST", "/v2/topics/team-7/subscriptions")]


def test_identical_operations_in_one_request_go_once(serve_function, novu):
    """Two group events for one topic: one topic upsert (two at once would share an Idempotency-Key,
    and Novu answers 409 to the second while the first is in flight)."""
    function = serve_function(WORKFLOW_DISCOVERY="false")

    response = function.post([_group(0, user="ann"), _group(1, user="bob")])

    assert response.status_code == 200, response.text
    assert [entry["outcome"] for entry in response.json()["events"]] == ["delivered", "delivered"]
    assert sorted(_calls(novu)) == [
        ("POST", "/v2/topics"), ("POST", "/v2/topics/team-7/subscriptions"), ("POST", "/v2/topics/team-7/subscriptions"),
    ]


