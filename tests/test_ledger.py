import json
import threading
import time

import pytest
import redis

from segment_novu.delivery.ledger import (
    MemoryLedger,
    NullLedger,
    RedisLedger,
    build_ledger,
)
from tests.redis_server import RedisServer, _free_port

PREFIX = "segment-novu:ack:"


@pytest.fixture
def redis_server(redis_service):
    """The session's redis-server (tests/conftest.py), emptied for each test."""
    return redis_service


@pytest.fixture
def redis_client(redis_url):
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def own_server():
    """A server a test may stop or freeze without disturbing the others."""
    with RedisServer() as server:
        yield server


@pytest.fixture(params=["memory", "redis"])
def make_ledger(request):
    if request.param == "memory":
        return lambda ttl_seconds=60.0: MemoryLedger(ttl_seconds=ttl_seconds)
    request.getfixturevalue("redis_client")
    url = request.getfixturevalue("redis_server").url
    return lambda ttl_seconds=60.0: RedisLedger(url, ttl_seconds=ttl_seconds)


def acks(keys) -> dict[str, str]:
    """Keys of one state each, as one event's operations are."""
    return dict.fromkeys(keys, "1")


def log_lines(capsys, severity):
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]
    return [line for line in lines if line["severity"] == severity]


# Both ledgers


def test_nothing_known_at_first(make_ledger):
    ledger = make_ledger()
    assert ledger.acknowledged(acks(["a", "b"])) == set()
    assert ledger.acknowledged(acks([])) == set()


def test_a_key_is_acknowledged_only_in_its_latest_state(make_ledger):
    ledger = make_ledger()
    ledger.record({"topic": "Acme"})
    ledger.record({"topic": "Acme Corp"})
    assert ledger.acknowledged({"topic": "Acme"}) == set()
    assert ledger.acknowledged({"topic": "Acme Corp"}) == {"topic"}


def test_acknowledged_is_exactly_the_recorded_subset(make_ledger):
    ledger = make_ledger()
    ledger.record(acks(["a", "c"]))
    assert ledger.acknowledged(acks(["a", "b", "c", "d"])) == {"a", "c"}


def test_record_is_idempotent(make_ledger):
    ledger = make_ledger()
    ledger.record(acks(["a"]))
    ledger.record(acks(["a", "a"]))
    ledger.record(acks([]))
    assert ledger.acknowledged(acks(["a", "b"])) == {"a"}


def test_entries_expire(make_ledger):
    ledger = make_ledger(ttl_seconds=0.05)
    ledger.record(acks(["a"]))
    assert ledger.acknowledged(acks(["a"])) == {"a"}
    time.sleep(0.15)
    assert ledger.acknowledged(acks(["a"])) == set()


# MemoryLedger


def test_erasures_count_each_subscribers_deletions(make_ledger):
    ledger = make_ledger()
    assert ledger.erasures(["ann", "bob"]) == {"ann": 0, "bob": 0}
    ledger.erase(["ann"])
    ledger.erase(["ann", "bob"])
    assert ledger.erasures(["ann", "bob", "cy"]) == {"ann": 2, "bob": 1, "cy": 0}
    assert ledger.erasures([]) == {}


def test_memory_erasure_counts_never_go_back_when_evicted_for_room():
    ledger = MemoryLedger(max_entries=2)
    ledger.erase(["ann", "ann", "bob", "cy"])  # ann's count (2) is evicted
    assert ledger.erasures(["ann"])["ann"] >= 2


def test_null_ledger_knows_no_erasures():
    assert NullLedger().erasures(["ann"]) is None


def test_redis_down_knows_no_erasures():
    ledger = RedisLedger(f"redis://127.0.0.1:{_free_port()}/0")
    ledger.erase(["ann"])
    assert ledger.erasures(["ann"]) is None


def test_memory_keeps_the_newest_entries():
    ledger = MemoryLedger(max_entries=3)
    ledger.record(acks(["k1", "k2", "k3", "k4", "k5"]))
    assert ledger.acknowledged(acks(["k1", "k2", "k3", "k4", "k5"])) == {"k3", "k4", "k5"}


def test_memory_recording_again_makes_an_entry_newest():
    ledger = MemoryLedger(max_entries=3)
    ledger.record(acks(["a", "b", "c"]))
    ledger.record(acks(["a"]))
    ledger.record(acks(["d"]))
    assert ledger.acknowledged(acks(["a", "b", "c", "d"])) == {"a", "c", "d"}


@pytest.mark.parametrize("max_entries", [100_000, 50])
def test_memory_is_thread_safe(max_entries):
    ledger = MemoryLedger(max_entries=max_entries)
    start = threading.Barrier(20)
    errors = []

    def worker(n):
        keys = [f"t{n}-{i}" for i in range(200)]
        try:
            start.wait()
            for i in range(0, len(keys), 10):
                ledger.record(acks(keys[i : i + 10]))
                ledger.acknowledged(acks(keys[: i + 10]))
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    every_key = [f"t{n}-{i}" for n in range(20) for i in range(200)]
    known = ledger.acknowledged(acks(every_key))
    assert len(known) == min(max_entries, len(every_key))


def test_null_ledger_knows_nothing():
    ledger = NullLedger()
    ledger.record(acks(["a"]))
    assert ledger.acknowledged(acks(["a"])) == set()


# RedisLedger


def test_redis_entries_carry_the_ttl(redis_server, redis_client):
    RedisLedger(redis_server.url, ttl_seconds=1).record(acks(["a"]))
    assert 0 < redis_client.pttl(PREFIX + "a") <= 1000


def test_redis_is_shared_between_instances(redis_server, redis_client):
    first = RedisLedger(redis_server.url)
    second = RedisLedger(redis_server.url)
    first.record(acks(["a"]))
    assert second.acknowledged(acks(["a", "b"])) == {"a"}


def test_redis_client_is_built_lazily():
    RedisLedger(f"redis://127.0.0.1:{_free_port()}/0")  # nothing listening: construction alone must not care


def test_redis_down_answers_nothing_known_and_warns_once(capsys):
    ledger = RedisLedger(f"redis://127.0.0.1:{_free_port()}/0")

    started = time.monotonic()
    assert ledger.acknowledged(acks(["secret-looking-key"])) == set()
    ledger.record(acks(["secret-looking-key"]))
    assert ledger.acknowledged(acks(["secret-looking-key"])) == set()
    assert time.monotonic() - started < 1.0

    warnings = log_lines(capsys, "WARNING")
    assert len(warnings) == 1
    assert warnings[0]["error"] == "ConnectionError"
    assert warnings[0]["keys"] == 1
    assert "secret-looking-key" not in json.dumps(warnings)


def test_redis_warning_is_rate_limited_across_outages(capsys):
    ledger = RedisLedger(f"redis://127.0.0.1:{_free_port()}/0", cooldown_seconds=0.01)
    for _ in range(3):
        ledger.acknowledged(acks(["a"]))
        time.sleep(0.02)
    assert len(log_lines(capsys, "WARNING")) == 1


def test_redis_is_skipped_during_the_cooldown_then_retried(own_server, capsys):
    ledger = RedisLedger(own_server.url, cooldown_seconds=0.5)
    other = RedisLedger(own_server.url)
    ledger.record(acks(["warm"]))

    own_server.stop()
    assert ledger.acknowledged(acks(["a"])) == set()
    own_server.start()
    other.record(acks(["a"]))

    # The server is back, yet the ledger does not try it until the cool-down ends.
    started = time.monotonic()
    assert ledger.acknowledged(acks(["a"])) == set()
    ledger.record(acks(["b"]))
    assert time.monotonic() - started < 0.05
    assert other.acknowledged(acks(["b"])) == set()

    time.sleep(0.5)
    assert ledger.acknowledged(acks(["a"])) == {"a"}
    assert len(log_lines(capsys, "INFO")) == 1


def test_redis_hung_answers_within_the_timeout(own_server, capsys):
    pooled = RedisLedger(own_server.url, timeout_seconds=0.2)
    pooled.record(acks(["a"]))
    fresh = RedisLedger(own_server.url, timeout_seconds=0.2)

    own_server.freeze()
    try:
        started = time.monotonic()
        assert pooled.acknowledged(acks(["a"])) == set()
        assert time.monotonic() - started < 0.5

        started = time.monotonic()
        assert fresh.acknowledged(acks(["a"])) == set()
        assert time.monotonic() - started < 1.0
    finally:
        own_server.thaw()

    assert {line["error"] for line in log_lines(capsys, "WARNING")} == {"TimeoutError"}


def test_redis_client_pause_answers_within_the_timeout(redis_server, redis_client):
    ledger = RedisLedger(redis_server.url, timeout_seconds=0.2)
    ledger.record(acks(["a"]))
    # Short: CLIENT UNPAUSE is itself held back by the pause (redis 7.0), so it simply runs out.
    redis_client.execute_command("CLIENT", "PAUSE", 400)
    started = time.monotonic()
    assert ledger.acknowledged(acks(["a"])) == set()
    assert time.monotonic() - started < 0.35


# build_ledger


def test_build_ledger_chooses_by_configuration():
    options = {"max_entries": 10, "ttl_seconds": 60.0, "timeout_seconds": 0.2}
    assert isinstance(build_ledger("redis://127.0.0.1:6379/0", **options), RedisLedger)
    assert isinstance(build_ledger(None, **options), MemoryLedger)
    assert isinstance(build_ledger("", **options), MemoryLedger)
    assert isinstance(build_ledger(None, **{**options, "max_entries": 0}), NullLedger)
