"""Novu's rate limits as buckets the deployment spends from before each call.

Novu meters an environment, not an instance, with one token bucket per category: refilled at the plan's
rate and holding ``WINDOW_SECONDS`` of it plus 10 % (triggers: a bulk call costs 100 tokens whatever it
carries, a single trigger 1; configuration: subscriber and topic changes, 1 each). The bridge's buckets
have the same rate and window but leave Novu's 10 % out: a call reaches Novu a little after its tokens
were taken, and a Novu bucket that was full meanwhile could not store the refill the bridge counted on.
With ``REDIS_URL`` every instance spends from one bucket per category in Redis, taken by one Lua script
per reservation; without it, and while Redis is slow or unreachable, each instance spends from a bucket
of its own.

A reservation is granted now, or after a wait that still leaves time for the call before the deadline
(the tokens are taken at once, so later callers queue behind it), or refused with the time at which the
tokens will be there: that is the ``Retry-After`` Segment is answered with.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from segment_novu import logs

WINDOW_SECONDS = 5.0
BULK_COST = 100
# Per plan: (trigger, configuration) tokens per second (Novu's pricing page; see docs/batches.md).
PLANS = {"free": (60.0, 20.0), "pro": (240.0, 80.0), "team": (600.0, 200.0), "enterprise": (6000.0, 2000.0)}
COOLDOWN_SECONDS = 5.0

# KEYS[1]: the bucket; ARGV: rate, capacity, cost, longest wait. Redis's clock, so instances agree.
# Returns {granted (1/0), wait or retry-after in seconds as a string (Lua numbers reply as integers)}.
_RESERVE = """
local rate, capacity = tonumber(ARGV[1]), tonumber(ARGV[2])
local cost, longest = tonumber(ARGV[3]), tonumber(ARGV[4])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens, at = tonumber(state[1]), tonumber(state[2])
if tokens == nil or at == nil then tokens, at = capacity, now end
tokens = math.min(capacity, tokens + math.max(0, now - at) * rate)
local wait = 0
if tokens < cost then wait = (cost - tokens) / rate end
if wait > longest then return {0, tostring(wait)} end
tokens = tokens - cost
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((capacity - tokens) / rate * 1000) + 1000)
return {1, tostring(wait)}
"""


@dataclass(frozen=True)
class Reservation:
    granted: bool
    seconds: float  # granted: how long to wait before the call; refused: until the tokens will be there


def capacity_for(rate: float) -> float:
    return rate * WINDOW_SECONDS


class LocalBucket:
    """One instance's bucket, in Novu's shape."""

    def __init__(self, rate: float):
        self.rate = rate
        self.capacity = capacity_for(rate)
        self._tokens = self.capacity
        self._at = time.monotonic()
        self._lock = threading.Lock()

    def reserve(self, cost: float, longest_wait: float) -> Reservation:
        with self._lock:
            now = time.monotonic()
            tokens = min(self.capacity, self._tokens + (now - self._at) * self.rate)
            wait = max(0.0, (cost - tokens) / self.rate)
            if wait > longest_wait:
                self._tokens, self._at = tokens, now
                return Reservation(False, wait)
            self._tokens, self._at = tokens - cost, now
            return Reservation(True, wait)


class SharedBucket:
    """The deployment's bucket in Redis; the instance's own bucket while Redis fails, with one warning
    per episode. Each reservation is one round trip bounded by ``timeout_seconds``."""

    def __init__(self, url: str, name: str, rate: float, *, timeout_seconds: float, prefix: str = "segment-novu:rate:"):
        self.rate = rate
        self.capacity = capacity_for(rate)
        self.fallback = LocalBucket(rate)
        self._url = url
        self._key = prefix + name
        self._name = name
        self._timeout = timeout_seconds
        self._script: Any = None  # redis Script, registered on first use (redis is imported lazily)
        self._lock = threading.Lock()
        self._skip_until = 0.0
        self._failing = False

    def reserve(self, cost: float, longest_wait: float) -> Reservation:
        if time.monotonic() < self._skip_until:
            return self.fallback.reserve(cost, longest_wait)
        try:
            granted, seconds = self._reserve_script()(
                keys=[self._key], args=[repr(self.rate), repr(self.capacity), repr(cost), repr(max(0.0, longest_wait))]
            )
        except Exception as exc:  # any Redis trouble: delivery goes on with the instance's bucket
            self._failed(exc)
            return self.fallback.reserve(cost, longest_wait)
        if self._failing:
            self._failing = False
            logs.info("rate budget: redis reachable again, the shared bucket is back", bucket=self._name)
        return Reservation(bool(int(granted)), float(seconds))

    def _reserve_script(self):
        with self._lock:
            if self._script is None:
                import redis
                from redis.backoff import NoBackoff
                from redis.retry import Retry

                client = redis.Redis.from_url(
                    self._url,
                    socket_timeout=self._timeout,
                    socket_connect_timeout=self._timeout,
                    health_check_interval=30,
                    retry=Retry(NoBackoff(), 0),
                )
                self._script = client.register_script(_RESERVE)
            return self._script

    def _failed(self, exc: Exception) -> None:
        self._skip_until = time.monotonic() + COOLDOWN_SECONDS
        if not self._failing:
            self._failing = True
            logs.warning(
                "rate budget: redis unavailable, each instance spends from its own bucket until it is back",
                bucket=self._name,
                error=type(exc).__name__,
            )


def build_bucket(redis_url: str | None, name: str, rate: float | None, *, timeout_seconds: float):
    """The bucket for one category, or None when its rate is not set (no pacing)."""
    if rate is None:
        return None
    if redis_url:
        return SharedBucket(redis_url, name, rate, timeout_seconds=timeout_seconds)
    return LocalBucket(rate)
