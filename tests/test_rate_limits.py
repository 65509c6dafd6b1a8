"""One Novu rate budget for the whole deployment: the buckets (rate_limits.py), the shared one in a real
``redis-server``, its fallback, and several function processes against a Novu stand-in that meters
calls as Novu does and answers 429 past its bucket, with a driver playing Segment (resends after
``Retry-After``)."""

from __future__ import annotations

import json
import math
import threading
import time
from contextlib import ExitStack

import pytest

from segment_novu.delivery import rate_limits
from segment_novu.delivery.rate_limits import LocalBucket, SharedBucket
from tests.factories import track
from tests.served import serve_process


def log_lines(capsys, severity: str) -> list[dict]:
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    return [line for line in lines if line["severity"] == severity]


# -- the buckets --------------------------------------------------------------------------------------


def test_a_bucket_holds_five_seconds_of_its_rate_leaving_novus_ten_percent_as_headroom():
    assert rate_limits.capacity_for(60) == pytest.approx(300)
    bucket = LocalBucket(60)

    assert all(bucket.reserve(1, longest_wait=0).granted for _ in range(300))
    refused = bucket.reserve(1, longest_wait=0)

    assert not refused.granted
    assert refused.seconds == pytest.approx(1 / 60, abs=0.005)


def test_a_wait_that_fits_is_granted_and_queues_the_next_caller():
    bucket = LocalBucket(100)
    assert bucket.reserve(500, longest_wait=0).granted  # the whole bucket

    first = bucket.reserve(100, longest_wait=2)
    second = bucket.reserve(100, longest_wait=2)

    assert first.granted and first.seconds == pytest.approx(1.0, abs=0.02)
    assert second.granted and second.seconds == pytest.approx(2.0, abs=0.02)
    refused = bucket.reserve(100, longest_wait=2)
    assert not refused.granted and refused.seconds == pytest.approx(3.0, abs=0.02)


def test_instances_sharing_redis_spend_from_one_bucket(redis_url):
    instances = [SharedBucket(redis_url, "trigger", 20, timeout_seconds=0.5) for _ in range(3)]

    granted = sum(instance.reserve(1, longest_wait=0).granted for _ in range(60) for instance in instances)

    # 100 of 180 (and what 20 a second refills meanwhile): one bucket, not three
    assert math.floor(rate_limits.capacity_for(20)) <= granted <= math.floor(rate_limits.capacity_for(20)) + 1
    refused = instances[0].reserve(100, longest_wait=0)
    assert not refused.granted
    assert refused.seconds == pytest.approx(100 / 20, abs=0.2)


def test_an_unreachable_redis_falls_back_to_the_instances_bucket_with_one_warning(capsys):
    bucket = SharedBucket("redis://127.0.0.1:1/0", "config", 20, timeout_seconds=0.2)

    started = time.monotonic()
    results = [bucket.reserve(1, longest_wait=0) for _ in range(200)]

    assert time.monotonic() - started < 1.0  # one failed round trip, then the cool-down
    assert sum(result.granted for result in results) == 100  # the instance's own bucket
    warnings = log_lines(capsys, "WARNING")
    assert [line["message"] for line in warnings] == [
        "rate budget: redis unavailable, each instance spends from its own bucket until it is back"
    ]


def test_a_hung_redis_costs_at_most_the_timeout_then_the_fallback(own_redis, capsys):
    bucket = SharedBucket(own_redis.url, "trigger", 50, timeout_seconds=0.2)
    assert bucket.reserve(1, longest_wait=0).granted
    own_redis.freeze()
    try:
        started = time.monotonic()
        assert bucket.reserve(1, longest_wait=0).granted
        assert time.monotonic() - started < 0.6
    finally:
        own_redis.thaw()
    assert len(log_lines(capsys, "WARNING")) == 1


@pytest.fixture
def own_redis():
    from tests.redis_server import RedisServer

    with RedisServer() as server:
        yield server


# -- the deployment: processes sharing Redis against a metered Novu --------------------------------------

RATE = 40.0  # triggers per second: Novu's bucket holds 220, the bridge's 200


def play_segment(functions, batches, *, give_up_after: float = 60.0) -> tuple[dict, int]:
    """Send every batch at once, spread over the functions; resend each after the Retry-After (or 1 s)
    it was answered with, until it is answered 200. Returns each batch's outcome counts and the number
    of non-200 answers."""
    done: dict[int, dict] = {}
    retries = [0]
    lock = threading.Lock()

    def deliver(index: int) -> None:
        function = functions[index % len(functions)]
        stop = time.monotonic() + give_up_after
        while time.monotonic() < stop:
            response = function.post(batches[index], timeout=30)
            if response.status_code == 200:
                with lock:
                    done[index] = [entry["outcome"] for entry in response.json()["events"]]
                return
            assert response.status_code in (429, 503), response.text[:300]
            with lock:
                retries[0] += 1
            time.sleep(float(response.headers.get("Retry-After", "1")))

    threads = [threading.Thread(target=deliver, args=(index,)) for index in range(len(batches))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(give_up_after + 30)
    return done, retries[0]


def most_in_any_window(spent: list[tuple[float, str, int]], category: str, window: float) -> int:
    times = [(moment, cost) for moment, kind, cost in spent if kind == category]
    most = 0
    for start, _ in times:
        most = max(most, sum(cost for moment, cost in times if start <= moment < start + window))
    return most


def test_three_instances_sharing_redis_keep_to_novus_trigger_bucket(novu, redis_url):
    novu.enforce_rate_limits(trigger_rate=RATE, config_rate=20)
    env = {"NOVU_API_URL": novu.url, "NOVU_API_KEY": "k", "WORKFLOW_DISCOVERY": "false", "REDIS_URL": redis_url,
           "NOVU_TRIGGER_RATE_PER_SECOND": str(int(RATE)), "DEADLINE_SECONDS": "3"}
    batches = [[track(batch * 60 + index, user=f"u{batch}-{index}") for index in range(60)] for batch in range(8)]

    with ExitStack() as stack:
        functions = [stack.enter_context(serve_process(env)) for _ in range(3)]
        outcomes, resends = play_segment(functions, batches)

    assert sorted(outcomes) == list(range(8)), "every batch was answered 200 in the end"
    counts = novu.transaction_counts()
    assert len(counts) == 480 and set(counts.values()) == {1}, "each event reached Novu once"
    assert len(novu.accepted) == 480 and set(novu.accepted.values()) == {1}
    assert novu.rate_limited == 0, "Novu never had to answer 429"
    assert resends > 0, "the bucket, not Novu, paced the batches: Segment was told when to come back"
    assert most_in_any_window(novu.spent, "trigger", 5.0) <= rate_limits.capacity_for(RATE) * 1.1 + RATE * 5
    assert all(call.path == "/v1/events/trigger" for call in novu.calls("POST")), (
        "a bucket-limited remainder goes as single triggers: a bulk call of 60 would cost 100 tokens"
    )
