"""Delivery ledger: which operations Novu already acknowledged, as key → state.

An operation's key names what it changes and its state what it changed it to: one event's operation
has a single state; a topic's upsert is keyed by the topic and its state is the
name, so the ledger holds the latest name only and a topic renamed back to an earlier one is sent.

Segment resends deliveries (timeouts, retries, batches re-formed with other events); the ledger lets
the bridge skip what Novu already took without spending Novu calls. It is an optimisation only:
every failure answers "nothing known" and delivery falls back to Novu's own transactionId dedup.

A subscriber's deletion undoes some acknowledged changes (its topic memberships, its device tokens),
so the ledger also counts deletions per subscriber (``erase``). Delivery keys those changes with the
count it read before sending them (``erasures``): after a deletion the old entries no longer match,
and the next identical change is sent again rather than skipped.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from segment_novu import logs

_WARN_INTERVAL_SECONDS = 30.0


class Ledger(Protocol):
    def acknowledged(self, entries: Mapping[str, str]) -> set[str]:
        """The keys whose latest recorded state is the one given. Never raises."""

    def record(self, entries: Mapping[str, str]) -> None:
        """Remember each key's state as its latest. Never raises."""

    def erasures(self, subscribers: Sequence[str]) -> dict[str, int] | None:
        """How many deletions of each subscriber were recorded; None when unknown. Never raises."""

    def erase(self, subscribers: Sequence[str]) -> None:
        """Count one more deletion of each subscriber. Never raises."""


class NullLedger:
    """Remembers nothing (ledger disabled)."""

    def acknowledged(self, entries: Mapping[str, str]) -> set[str]:
        return set()

    def record(self, entries: Mapping[str, str]) -> None:
        pass

    def erasures(self, subscribers: Sequence[str]) -> dict[str, int] | None:
        return None

    def erase(self, subscribers: Sequence[str]) -> None:
        pass


class MemoryLedger:
    """Per-instance ledger, bounded in size and age; oldest-recorded entries are evicted first."""

    def __init__(self, max_entries: int = 100_000, ttl_seconds: float = 86_400.0):
        self._max_entries = max_entries
        self._ttl = ttl_seconds
        self._entries: OrderedDict[str, tuple[str, float]] = OrderedDict()  # key → (state, expiry)
        self._erasures: OrderedDict[str, int] = OrderedDict()
        # What a subscriber without a count reads: never below a count evicted for room, so a count
        # never goes back and a stale entry never matches again (other subscribers' entries are then
        # sent once more, which is safe).
        self._erasures_floor = 0
        self._lock = threading.Lock()

    def acknowledged(self, entries: Mapping[str, str]) -> set[str]:
        now = time.monotonic()
        found = set()
        with self._lock:
            for key, state in entries.items():
                recorded = self._entries.get(key)
                if recorded is None:
                    continue
                if recorded[1] <= now:
                    del self._entries[key]
                elif recorded[0] == state:
                    found.add(key)
        return found

    def record(self, entries: Mapping[str, str]) -> None:
        now = time.monotonic()
        expiry = now + self._ttl
        with self._lock:
            for key, state in entries.items():
                self._entries[key] = (state, expiry)
                self._entries.move_to_end(key)
            # Entries sit in recording order, so expiries ascend: expired ones are all at the front.
            while self._entries and next(iter(self._entries.values()))[1] <= now:
                self._entries.popitem(last=False)
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)

    def erasures(self, subscribers: Sequence[str]) -> dict[str, int] | None:
        with self._lock:
            return {subscriber: self._erasures.get(subscriber, self._erasures_floor) for subscriber in subscribers}

    def erase(self, subscribers: Sequence[str]) -> None:
        with self._lock:
            for subscriber in subscribers:
                self._erasures[subscriber] = self._erasures.get(subscriber, self._erasures_floor) + 1
                self._erasures.move_to_end(subscriber)
            while len(self._erasures) > self._max_entries:
                _, evicted = self._erasures.popitem(last=False)
                self._erasures_floor = max(self._erasures_floor, evicted)


class RedisLedger:
    """Ledger shared by all function instances through Redis.

    Each call is one round trip bounded by ``timeout_seconds``. After a failure Redis is skipped
    for ``cooldown_seconds`` so a dead or hung Redis costs nothing per request.
    """

    def __init__(
        self,
        url: str,
        *,
        ttl_seconds: float = 86_400.0,
        timeout_seconds: float = 0.2,
        prefix: str = "segment-novu:ack:",
        erasures_prefix: str = "segment-novu:erased:",
        cooldown_seconds: float = 5.0,
    ):
        self._url = url
        self._ttl_ms = max(1, round(ttl_seconds * 1000))
        self._timeout = timeout_seconds
        self._prefix = prefix
        self._erasures_prefix = erasures_prefix
        self._cooldown = cooldown_seconds
        self._client_instance: Any = None  # redis.Redis, built on first use (redis is imported lazily)
        self._lock = threading.Lock()
        self._skip_until = 0.0
        self._failures = 0
        self._warned_at: float | None = None

    def acknowledged(self, entries: Mapping[str, str]) -> set[str]:
        if not entries:
            return set()
        keys = list(entries)

        def lookup(client) -> set[str]:
            values = client.mget([self._prefix + key for key in keys])
            return {key for key, value in zip(keys, values) if value is not None and value.decode() == entries[key]}

        return self._guarded("acknowledged", len(keys), lookup, set())

    def record(self, entries: Mapping[str, str]) -> None:
        if not entries:
            return

        def store(client) -> None:
            pipe = client.pipeline(transaction=False)
            for key, state in entries.items():
                pipe.set(self._prefix + key, state, px=self._ttl_ms)
            pipe.execute()

        self._guarded("record", len(entries), store, None)

    def erasures(self, subscribers: Sequence[str]) -> dict[str, int] | None:
        if not subscribers:
            return {}

        def lookup(client) -> dict[str, int]:
            values = client.mget([self._erasures_prefix + subscriber for subscriber in subscribers])
            return {subscriber: int(value or 0) for subscriber, value in zip(subscribers, values)}

        return self._guarded("erasures", len(subscribers), lookup, None)

    def erase(self, subscribers: Sequence[str]) -> None:
        if not subscribers:
            return

        def count(client) -> None:
            pipe = client.pipeline(transaction=False)
            for subscriber in subscribers:
                pipe.incr(self._erasures_prefix + subscriber)
                # The count outlives every entry keyed with an older one, so an expired count (read
                # as 0) can never make a stale entry match again.
                pipe.pexpire(self._erasures_prefix + subscriber, self._ttl_ms)
            pipe.execute()

        self._guarded("erase", len(subscribers), count, None)

    def _guarded(self, operation, count, action, fallback):
        if time.monotonic() < self._skip_until:
            return fallback
        try:
            result = action(self._client())
        except Exception as exc:  # any failure, whatever its class, must not reach delivery
            self._failed(operation, count, exc)
            return fallback
        if self._failures:
            self._recovered()
        return result

    def _client(self):
        with self._lock:
            if self._client_instance is None:
                import redis
                from redis.backoff import NoBackoff
                from redis.retry import Retry

                self._client_instance = redis.Redis.from_url(
                    self._url,
                    socket_timeout=self._timeout,
                    socket_connect_timeout=self._timeout,
                    health_check_interval=30,
                    # Retries would multiply the time budget; the cool-down handles outages instead.
                    retry=Retry(NoBackoff(), 0),
                )
            return self._client_instance

    def _failed(self, operation: str, count: int, exc: Exception) -> None:
        now = time.monotonic()
        with self._lock:
            self._skip_until = now + self._cooldown
            self._failures += 1
            if self._warned_at is not None and now - self._warned_at < _WARN_INTERVAL_SECONDS:
                return
            self._warned_at = now
            failures = self._failures
        logs.warning(
            "delivery ledger: redis unavailable, answering nothing known",
            operation=operation,
            keys=count,
            error=type(exc).__name__,
            failures=failures,
            cooldown_seconds=self._cooldown,
        )

    def _recovered(self) -> None:
        with self._lock:
            failures, self._failures = self._failures, 0
        if failures:
            logs.info("delivery ledger: redis reachable again", failures=failures)


def build_ledger(
    redis_url: str | None, *, max_entries: int, ttl_seconds: float, timeout_seconds: float
) -> Ledger:
    """Redis when a URL is given; otherwise in memory, or nothing when ``max_entries`` is 0."""
    if redis_url:
        return RedisLedger(redis_url, ttl_seconds=ttl_seconds, timeout_seconds=timeout_seconds)
    if max_entries <= 0:
        return NullLedger()
    return MemoryLedger(max_entries=max_entries, ttl_seconds=ttl_seconds)
