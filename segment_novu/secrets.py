"""Configuration values that may live in Secret Manager, read at runtime and cached.

A configured value is either the literal secret or a Secret Manager name. Reading at runtime
(rather than ``--set-secrets``, which resolves once per instance) lets a rotated key reach running
instances: after the TTL, or at once through ``refresh()`` when Novu rejects the cached key.
Every read ends by the caller's deadline. When the TTL runs out, one caller reads while the others
go on with the value just expired, for at most ``STALE_GRACE_SECONDS`` beyond it; ``read_all`` reads
several sources at once rather than one after another. A secret that does not exist, may not be read,
is disabled or is blank is the operator's to fix: without a cached value it raises ``SecretMisconfigured``
(answered 500, naming the variable), never an empty credential. Only secret names are ever logged, never values.
"""

from __future__ import annotations

import contextvars
import re
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from segment_novu import logs

SECRET_NAME = re.compile(r"^projects/[^/]+/secrets/[^/]+(/versions/[^/]+)?$")

# After a failed read, a cached value is served this long before the next attempt, so an outage
# does not cost every request a full read timeout.
FAILURE_BACKOFF_SECONDS = 5.0
# How long past its TTL a value is still served to callers who find another caller already reading it.
STALE_GRACE_SECONDS = 60.0
# A read with less time than this before the deadline is not started.
MIN_READ_SECONDS = 0.05

# One client per endpoint for the whole process (None = Google's endpoint with ADC).
_clients: dict[str | None, object] = {}
_clients_lock = threading.Lock()


class SecretUnavailable(Exception):
    """A managed secret could not be read and no cached value exists (the caller answers retryable)."""


class SecretMisconfigured(Exception):
    """A managed secret is missing, denied, disabled or blank: retrying will not help until the operator acts."""


class BlankSecret(Exception):
    """The secret's value is empty or whitespace: never used as a credential."""


# Secret Manager's answers that only the operator can change (gRPC status names).
_OPERATOR_ERRORS = {
    "NotFound": "does not exist",
    "PermissionDenied": "may not be read by the function's service account (grant roles/secretmanager.secretAccessor)",
    "FailedPrecondition": "has its version disabled or destroyed",
    "InvalidArgument": "is not a valid secret version name",
    "BlankSecret": "is blank: add a version with a value",
}


class ChecksumMismatch(Exception):
    """The payload did not match its CRC32C: corrupted in transit or storage."""


def _client(emulator_host: str | None):
    with _clients_lock:
        client = _clients.get(emulator_host)
        if client is None:
            # Imported here: the import alone costs about 0.25 s, and literal values never need it.
            from google.cloud import secretmanager

            if emulator_host:
                import grpc
                from google.cloud.secretmanager_v1.services.secret_manager_service.transports import (
                    SecretManagerServiceGrpcTransport,
                )

                # A transport built on a given channel ignores credentials: no ADC lookup.
                transport = SecretManagerServiceGrpcTransport(channel=grpc.insecure_channel(emulator_host))
                client = secretmanager.SecretManagerServiceClient(transport=transport)
            else:
                client = secretmanager.SecretManagerServiceClient()
            _clients[emulator_host] = client
        return client


class SecretSource:
    """One configured value: either the literal value itself, or a Secret Manager name
    ``projects/P/secrets/S`` or ``projects/P/secrets/S/versions/V`` (no version → ``versions/latest``)."""

    def __init__(
        self,
        configured: str,
        *,
        ttl_seconds: float = 300.0,
        timeout_seconds: float = 2.0,
        emulator_host: str | None = None,
        variable: str = "the secret",
    ) -> None:
        match = SECRET_NAME.match(configured)
        self.is_managed = match is not None
        self.name = "literal"
        self.variable = variable
        self._ttl = ttl_seconds
        self._timeout = timeout_seconds
        self._emulator_host = emulator_host
        self._lock = threading.Lock()
        # (value, monotonic expiry) swapped as one tuple so the lock-free fast path sees a consistent pair.
        self._cached: tuple[str, float] | None = None
        self._retry_at = 0.0
        self._attempt_started = self._attempt_ended = float("-inf")
        self._last_error = ""
        if not self.is_managed:
            self._cached = (configured, float("inf"))
        elif match is not None:
            self.name = configured if match.group(1) else f"{configured}/versions/latest"

    def needs_read(self) -> bool:
        cached = self._cached
        return cached is None or time.monotonic() >= cached[1]

    def get(self, deadline: float | None = None) -> str:
        """The cached value; (re)reads when there is none or the TTL expired, by ``deadline``."""
        arrived = time.monotonic()
        cached = self._cached
        if cached is not None and arrived < cached[1]:
            return cached[0]
        return self._read(arrived, deadline, forced=False)

    def refresh(self, deadline: float | None = None) -> str:
        """Re-read now (the key was rejected, so it was probably rotated).

        Returns the cached value if the read fails, or within the back-off after a failed read."""
        cached = self._cached
        if not self.is_managed and cached is not None:
            return cached[0]
        return self._read(time.monotonic(), deadline, forced=True)

    def _read(self, arrived: float, deadline: float | None, *, forced: bool) -> str:
        cached = self._cached
        if not forced and cached is not None and arrived < cached[1] + STALE_GRACE_SECONDS:
            if not self._lock.acquire(blocking=False):
                return cached[0]  # another caller is reading it
        else:
            wait = -1 if deadline is None else max(0.0, deadline - time.monotonic())
            if not self._lock.acquire(timeout=wait):
                return self._outcome(f"timed out waiting for another read of {self.name}")
        try:
            # Share the outcome of a read made while this caller waited for the lock, so a burst
            # of callers costs one read, success or failure. A forced refresh only trusts a read
            # that started after it was asked for: an earlier one may predate the rotation.
            if (self._attempt_started if forced else self._attempt_ended) >= arrived:
                return self._outcome()
            if self._cached is not None and time.monotonic() < self._retry_at:
                return self._cached[0]
            timeout = self._timeout if deadline is None else min(self._timeout, deadline - time.monotonic())
            if timeout < MIN_READ_SECONDS:
                return self._outcome("no time left before the deadline")
            self._attempt_started = time.monotonic()
            try:
                value = self._access(timeout)
            except Exception as exc:
                self._last_error = type(exc).__name__
                self._retry_at = time.monotonic() + FAILURE_BACKOFF_SECONDS
                if self._cached is not None:
                    message, severity = "secret read failed; serving cached value", logs.warning
                else:
                    message, severity = "secret read failed; no cached value", logs.error
                severity(message, secret=self.name, error=self._last_error)
            else:
                self._cached = (value, time.monotonic() + self._ttl)
                self._retry_at = 0.0
                logs.info("secret read", secret=self.name)
            finally:
                self._attempt_ended = time.monotonic()
            return self._outcome()
        finally:
            self._lock.release()

    def _outcome(self, reason: str | None = None) -> str:
        """The cached value, even past its TTL; without one, SecretUnavailable."""
        cached = self._cached
        if cached is None and reason is None and self._last_error in _OPERATOR_ERRORS:
            raise SecretMisconfigured(
                f"{self.variable} names secret {self.name}, which {_OPERATOR_ERRORS[self._last_error]}"
            )
        if cached is None:
            raise SecretUnavailable(f"secret {self.name} could not be read ({reason or self._last_error})")
        return cached[0]

    def _access(self, timeout: float) -> str:
        import google_crc32c
        from google.api_core import exceptions, retry

        response = _client(self._emulator_host).access_secret_version(
            name=self.name,
            timeout=timeout,
            # The client's default retry can run for 60 s; bound the whole read to the timeout.
            retry=retry.Retry(
                predicate=retry.if_exception_type(exceptions.ServiceUnavailable, exceptions.DeadlineExceeded),
                initial=0.1,
                maximum=1.0,
                timeout=timeout,
            ),
        )
        payload = response.payload
        if "data_crc32c" in payload and google_crc32c.value(payload.data) != payload.data_crc32c:
            raise ChecksumMismatch(self.name)
        value = payload.data.decode("utf-8").strip()
        if not value:
            raise BlankSecret(self.name)
        return value


def read_all(
    sources: Sequence[SecretSource], deadline: float
) -> list[str | SecretUnavailable | SecretMisconfigured]:
    """Each source's value, or the SecretUnavailable its read ended with; the reads that are due run
    at the same time, so together they take as long as the slowest, never past ``deadline``."""
    due = [source for source in sources if source.needs_read()]
    if len(due) <= 1:
        return [_value_or_error(source, deadline) for source in sources]
    with ThreadPoolExecutor(max_workers=len(due), thread_name_prefix="secret") as pool:
        futures = {
            id(source): pool.submit(contextvars.copy_context().run, _value_or_error, source, deadline)
            for source in due
        }
        return [futures[id(source)].result() if id(source) in futures else _value_or_error(source, deadline)
                for source in sources]


def _value_or_error(source: SecretSource, deadline: float) -> str | SecretUnavailable | SecretMisconfigured:
    try:
        return source.get(deadline)
    except (SecretUnavailable, SecretMisconfigured) as error:
        return error
