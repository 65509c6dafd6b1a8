"""SecretSource against the real Secret Manager client, talking gRPC to a fake on loopback."""

import threading
import time

import grpc
import pytest

from segment_novu import secrets
from segment_novu.secrets import SecretMisconfigured, SecretSource, SecretUnavailable

SECRET = "projects/p/secrets/novu-key"


def managed(fake, configured=SECRET, **options):
    return SecretSource(configured, emulator_host=fake.host, **options)


def run_in_threads(count, target):
    """Start ``count`` threads together; return what each returned or raised."""
    barrier = threading.Barrier(count)
    results = [None] * count

    def worker(index):
        barrier.wait()
        try:
            results[index] = target()
        except Exception as exc:
            results[index] = exc

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_literal_value_never_builds_a_client(secret_manager, monkeypatch):
    def no_client(_host):
        raise AssertionError("a literal value built a client")

    monkeypatch.setattr(secrets, "_client", no_client)
    source = SecretSource("plain-api-key", emulator_host=secret_manager.host)

    assert not source.is_managed
    assert source.name == "literal"
    assert source.get() == "plain-api-key"
    assert source.refresh() == "plain-api-key"
    assert secret_manager.calls == []


@pytest.mark.parametrize("configured", ["projects/p", "projects/p/secrets/", "key/projects/p/secrets/s"])
def test_values_that_are_not_secret_names_are_literal(configured):
    source = SecretSource(configured)
    assert not source.is_managed
    assert source.get() == configured


def test_managed_value_defaults_to_latest_version(secret_manager):
    secret_manager.set(SECRET, "key-1")
    secret_manager.set(SECRET, "key-2")
    source = managed(secret_manager)

    assert source.is_managed
    assert source.name == f"{SECRET}/versions/latest"
    assert source.get() == "key-2"
    assert secret_manager.calls == [f"{SECRET}/versions/latest"]


def test_explicit_version(secret_manager):
    secret_manager.set(SECRET, "key-1")
    secret_manager.set(SECRET, "key-2")
    source = managed(secret_manager, f"{SECRET}/versions/1")

    assert source.name == f"{SECRET}/versions/1"
    assert source.get() == "key-1"


def test_value_is_cached(secret_manager):
    secret_manager.set(SECRET, "key-1")
    source = managed(secret_manager)

    assert source.get() == "key-1"
    secret_manager.set(SECRET, "key-2")
    assert source.get() == "key-1"
    assert len(secret_manager.calls) == 1


def test_expired_value_is_read_again(secret_manager):
    secret_manager.set(SECRET, "key-1")
    source = managed(secret_manager, ttl_seconds=0.05)

    assert source.get() == "key-1"
    secret_manager.set(SECRET, "key-2")
    time.sleep(0.1)
    assert source.get() == "key-2"
    assert len(secret_manager.calls) == 2


def test_refresh_sees_a_rotated_value(secret_manager):
    secret_manager.set(SECRET, "key-1")
    source = managed(secret_manager)
    assert source.get() == "key-1"

    secret_manager.set(SECRET, "key-2")
    assert source.refresh() == "key-2"
    assert source.get() == "key-2"
    assert len(secret_manager.calls) == 2


def test_surrounding_whitespace_is_stripped(secret_manager):
    secret_manager.set(SECRET, "  key-1\n")
    assert managed(secret_manager).get() == "key-1"


def test_checksum_mismatch_without_cache_is_unavailable(secret_manager, capsys):
    secret_manager.set(SECRET, "key-1")
    secret_manager.corrupt_checksum(True)

    with pytest.raises(SecretUnavailable, match="novu-key") as raised:
        managed(secret_manager).get()
    assert "key-1" not in str(raised.value)
    assert "key-1" not in capsys.readouterr().out


def test_not_found_is_the_operators_to_fix_and_not_retried_at_once(secret_manager):
    with pytest.raises(SecretMisconfigured, match="novu-key/versions/latest, which does not exist"):
        managed(secret_manager).get()
    assert len(secret_manager.calls) == 1


def test_outage_without_cache_fails_within_the_timeout(secret_manager):
    secret_manager.set(SECRET, "key-1")
    secret_manager.fail_with(grpc.StatusCode.UNAVAILABLE)
    source = managed(secret_manager, timeout_seconds=0.5)

    started = time.monotonic()
    with pytest.raises(SecretUnavailable):
        source.get()
    assert time.monotonic() - started < 10

    # No cached value: the next request tries again rather than backing off.
    secret_manager.fail_with(None)
    assert source.get() == "key-1"


def test_hung_server_fails_within_the_timeout(secret_manager):
    secret_manager.set(SECRET, "key-1")
    secret_manager.delay(3)

    started = time.monotonic()
    with pytest.raises(SecretUnavailable):
        managed(secret_manager, timeout_seconds=0.3).get()
    assert time.monotonic() - started < 2.5


def test_outage_with_cache_serves_cached_value_and_backs_off(secret_manager, capsys, monkeypatch):
    monkeypatch.setattr(secrets, "FAILURE_BACKOFF_SECONDS", 0.2)
    secret_manager.set(SECRET, "key-1")
    source = managed(secret_manager, ttl_seconds=0.05, timeout_seconds=0.3)
    assert source.get() == "key-1"

    secret_manager.fail_with(grpc.StatusCode.UNAVAILABLE)
    time.sleep(0.1)
    assert source.get() == "key-1"
    calls = len(secret_manager.calls)
    assert calls > 1
    assert source.get() == "key-1"
    assert source.refresh() == "key-1"
    assert len(secret_manager.calls) == calls, "read again during the back-off"

    out = capsys.readouterr().out
    assert '"severity":"WARNING"' in out
    assert f"{SECRET}/versions/latest" in out
    assert "key-1" not in out

    secret_manager.fail_with(None)
    secret_manager.set(SECRET, "key-2")
    time.sleep(0.25)
    assert source.get() == "key-2"


def test_concurrent_gets_share_one_read(secret_manager):
    secret_manager.set(SECRET, "key-1")
    secret_manager.delay(0.2)
    source = managed(secret_manager)

    assert run_in_threads(20, source.get) == ["key-1"] * 20
    assert len(secret_manager.calls) == 1


def test_concurrent_gets_share_one_failure(secret_manager):
    secret_manager.fail_with(grpc.StatusCode.PERMISSION_DENIED)
    secret_manager.delay(0.2)
    source = managed(secret_manager)

    results = run_in_threads(20, source.get)
    assert all(isinstance(result, SecretMisconfigured) for result in results)
    assert len(secret_manager.calls) == 1


def test_concurrent_refreshes_read_at_most_twice(secret_manager):
    secret_manager.set(SECRET, "key-1")
    source = managed(secret_manager)
    assert source.get() == "key-1"
    secret_manager.set(SECRET, "key-2")
    secret_manager.delay(0.1)

    assert run_in_threads(20, source.refresh) == ["key-2"] * 20
    assert len(secret_manager.calls) <= 3  # the first get, then one or two refresh reads


def test_expired_value_is_served_while_another_caller_reads_it(secret_manager):
    secret_manager.set(SECRET, "key-1")
    source = managed(secret_manager, ttl_seconds=0.05)
    assert source.get() == "key-1"
    secret_manager.set(SECRET, "key-2")
    secret_manager.delay(0.5)
    time.sleep(0.1)

    reader = threading.Thread(target=source.get)
    reader.start()
    time.sleep(0.1)  # the reader now holds the read
    started = time.monotonic()
    assert source.get() == "key-1"
    assert time.monotonic() - started < 0.1, "waited for the other caller's read"
    reader.join()
    assert source.get() == "key-2"
    assert len(secret_manager.calls) == 2


def test_past_the_grace_callers_wait_for_the_read(secret_manager, monkeypatch):
    monkeypatch.setattr(secrets, "STALE_GRACE_SECONDS", 0.0)
    secret_manager.set(SECRET, "key-1")
    source = managed(secret_manager, ttl_seconds=0.05)
    assert source.get() == "key-1"
    secret_manager.set(SECRET, "key-2")
    secret_manager.delay(0.3)
    time.sleep(0.1)

    assert run_in_threads(5, source.get) == ["key-2"] * 5
    assert len(secret_manager.calls) == 2


def test_a_read_ends_by_the_deadline(secret_manager):
    secret_manager.set(SECRET, "key-1")
    secret_manager.delay(3)
    source = managed(secret_manager, timeout_seconds=2.0)

    started = time.monotonic()
    with pytest.raises(SecretUnavailable):
        source.get(deadline=started + 0.3)
    assert time.monotonic() - started < 0.6


def test_no_read_starts_without_time_left(secret_manager):
    secret_manager.set(SECRET, "key-1")
    source = managed(secret_manager)

    with pytest.raises(SecretUnavailable, match="no time left"):
        source.get(deadline=time.monotonic() + secrets.MIN_READ_SECONDS / 2)
    assert secret_manager.calls == []


def test_a_caller_waiting_for_another_read_gives_up_at_its_deadline(secret_manager):
    secret_manager.set(SECRET, "key-1")
    secret_manager.delay(1.0)
    source = managed(secret_manager)
    reader = threading.Thread(target=source.get)
    reader.start()
    time.sleep(0.1)

    started = time.monotonic()
    with pytest.raises(SecretUnavailable, match="timed out waiting"):
        source.get(deadline=started + 0.2)
    assert time.monotonic() - started < 0.5
    reader.join()


def test_read_all_reads_due_secrets_at_the_same_time(secret_manager):
    secret_manager.set(SECRET, "key-1")
    secret_manager.set("projects/p/secrets/shared", "shared-1")
    secret_manager.delay(0.4)
    sources = [managed(secret_manager), managed(secret_manager, "projects/p/secrets/shared"), SecretSource("literal")]

    started = time.monotonic()
    assert secrets.read_all(sources, started + 2.0) == ["key-1", "shared-1", "literal"]
    assert time.monotonic() - started < 0.7, "read one after the other"


def test_read_all_returns_each_failure_in_its_place(secret_manager):
    secret_manager.set(SECRET, "key-1")
    sources = [managed(secret_manager), managed(secret_manager, "projects/p/secrets/missing")]

    values = secrets.read_all(sources, time.monotonic() + 2.0)
    assert values[0] == "key-1"
    assert isinstance(values[1], SecretMisconfigured)
