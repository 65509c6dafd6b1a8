"""The delivery ledger across instances (Redis) and when it fails: resends skip what Novu already
acknowledged, on any instance; a dead ledger never blocks delivery (Novu's transactionId still
dedups)."""

from __future__ import annotations

from tests.factories import tracks

BULK = "/v1/events/trigger/bulk"


def test_a_resend_to_another_instance_skips_what_the_first_delivered(serve_function, novu, redis_url):
    first = serve_function(REDIS_URL=redis_url, MAX_CONCURRENCY="1")
    second = serve_function(REDIS_URL=redis_url, MAX_CONCURRENCY="1")
    batch = tracks(300)
    novu.limit_bulk_calls(1)
    assert first.post(batch).status_code == 429

    novu.respond_with(None)
    response = second.post(batch)
    assert response.status_code == 200
    outcomes = [entry["outcome"] for entry in response.json()["events"]]
    assert outcomes == ["duplicate"] * 100 + ["delivered"] * 200
    assert len(novu.calls("POST", BULK)) == 4
    assert len(novu.accepted) == 300 and set(novu.accepted.values()) == {1}


def test_a_dead_ledger_never_blocks_delivery(serve_function, novu, unused_port):
    function = serve_function(REDIS_URL=f"redis://127.0.0.1:{unused_port}/0", LEDGER_TIMEOUT_SECONDS="0.1")
    batch = tracks(5)
    assert function.post(batch).status_code == 200
    assert function.post(batch).status_code == 200
    counts = novu.transaction_counts()
    assert len(counts) == 5 and set(counts.values()) == {2}, "without a ledger, the resend relies on transactionIds"
