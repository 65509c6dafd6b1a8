"""The Novu HTTP client: one pooled session, explicit timeouts, every answer classified once.

Each call returns a ``Result`` whose ``outcome`` decides, in ``answer``, what Segment is told. The
rules for reading Novu's answers (success bodies wrapped in ``data`` or not, 201s that triggered
nothing, 429's ``Retry-After``, 409 while an idempotent call is in flight, a replayed cached failure,
a rotated key) all live here.
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import math
import re
import time
import requests
from requests.utils import select_proxy

from segment_novu import codec
from segment_novu.operations import CANCEL_TRIGGER, DELETE_SUBSCRIBER, SUBSCRIBE_TO_TOPIC, SUBSCRIBERS_PATH, Operation
from segment_novu.outcomes import DELIVERED, MISCONFIGURED, RATE_LIMITED, REJECTED, RETRY, SKIPPED, Result
from segment_novu.secrets import SecretMisconfigured, SecretSource, SecretUnavailable
from segment_novu.transport import MAX_ANSWER_BYTES, AnswerTooLarge, HTTPAnswer, KeepAliveAdapter

BULK_PATH = "/v1/events/trigger/bulk"
USER_AGENT = "segment-novu-bridge/1.0"
# A call started with less time than this left would likely time out after Novu did the work.
MIN_CALL_SECONDS = 0.2
# "SubscriberId: x not found" (credentials), "Subscriber with ID 'x' could not be found." (topics).
_SUBSCRIBER_NOT_FOUND = re.compile(r"subscriber.*not (?:be )?found", re.IGNORECASE)


class MissingKey(Exception):
    """A Novu call is needed and NOVU_API_KEY is not set."""


def encode(body) -> bytes:
    """The JSON sent to Novu, canonical (sorted keys), so the same body is always the same bytes."""
    return codec.dumps(body, sort_keys=True)


def idempotency_key(path: str, encoded_body: bytes) -> str:
    """Same request body → same key, so Novu never sees one key with two bodies (its 422)."""
    return "sgmt-" + hashlib.sha256(path.encode("utf-8") + b"\x1f" + encoded_body).hexdigest()[:48]


def header_seconds(value: str | None, default: float) -> float:
    """A ``Retry-After`` value (seconds or an HTTP date) as seconds from now, never negative."""
    value = (value or "").strip()
    if not value:
        return default
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = email.utils.parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return default
    return max(0.0, seconds) if math.isfinite(seconds) else default


def retry_after_seconds(response: HTTPAnswer) -> float:
    """What Segment is told to wait after Novu's 429: Novu's value, at least one second."""
    return float(max(1, math.ceil(header_seconds(response.headers.get("Retry-After"), 1.0))))


def _json(response: HTTPAnswer):
    try:
        return codec.loads(response.content)
    except codec.Unsupported:
        pass
    try:
        return json.loads(response.content)  # reads UTF-16 and -32 too
    except ValueError:
        return None


def unwrap(document):
    """Novu wraps success bodies in ``{"data": ...}``; its OpenAPI document shows them bare."""
    if isinstance(document, dict) and "data" in document and len(document) <= 2:
        return document["data"]
    return document


def error_message(response: HTTPAnswer) -> str:
    document = _json(response)
    if isinstance(document, dict):
        message = document.get("message") or document.get("error")
        if isinstance(message, list):
            message = "; ".join(str(part) for part in message)
        if message:
            return str(message)[:300]
    return (response.reason or "no message")[:300]


def _is_workflow_not_found(response: HTTPAnswer) -> bool:
    document = _json(response)
    text = json.dumps(document).lower() if document is not None else ""
    return "workflow_not_found" in text or "workflow not found" in text


def subscription_errors(response: HTTPAnswer) -> list[dict]:
    """A topic subscription answers 201 even when it failed: the failures are in ``errors``."""
    document = _json(response)
    for holder in (document, unwrap(document)):
        if isinstance(holder, dict) and isinstance(holder.get("errors"), list):
            return [error for error in holder["errors"] if isinstance(error, dict)]
    return []


def subscriber_missing(response) -> bool:
    """Did Novu refuse because it does not know the subscriber yet?"""
    if isinstance(response, Result):
        return False
    if response.status_code in (400, 404):
        return bool(_SUBSCRIBER_NOT_FOUND.search(error_message(response)))
    if 200 <= response.status_code < 300:
        return any(error.get("code") == "SUBSCRIBER_NOT_FOUND" for error in subscription_errors(response))
    return False


def _is_error_slot(slot) -> bool:
    return isinstance(slot, dict) and slot.get("status") == "error"


def classify_trigger_data(data, novu_status: int) -> Result:
    if not isinstance(data, dict) or "status" not in data:
        return Result(RETRY, "Novu answered without a trigger status", novu_status)
    status = data.get("status")
    if status == "processed":
        return Result(DELIVERED, "triggered", novu_status)
    if status == "error":
        detail = "; ".join(str(part) for part in data.get("error") or [])[:300] or "no detail"
        return Result(RETRY, f"Novu reported an error for this trigger: {detail}", novu_status)
    return Result(SKIPPED, f"Novu did not trigger the workflow: {status}", novu_status)


class NovuClient:
    def __init__(self, base_url: str, api_key: SecretSource | None, *, timeout_seconds: float = 2.5,
                 pool_size: int = 32):
        self.base_url = base_url.rstrip("/")
        self.timeout_seconds = timeout_seconds
        self.api_key = api_key
        # Proxy settings are read from the environment once, not on every call (a cost per request).
        proxies = requests.utils.get_environ_proxies(self.base_url)
        proxy = select_proxy(self.base_url + "/", proxies)
        self.session = requests.Session()
        self.session.proxies = proxies
        self.session.trust_env = False
        self.transport = KeepAliveAdapter(self.base_url, pool_size=pool_size,
                                          proxy=proxy if KeepAliveAdapter.carries(proxy) else None)
        self.session.mount(self.base_url + "/", self.transport)
        # A proxy the transport cannot carry itself (SOCKS, TLS to the proxy): requests' adapter does.
        self.via_session = proxy is not None and self.transport.proxy is None
        # Novu's answers are small: uncompressed costs less CPU than gzip on both ends.
        self.headers = {"User-Agent": USER_AGENT, "Accept": "application/json", "Accept-Encoding": "identity"}

    def _key(self, refresh: bool, deadline: float) -> str:
        if self.api_key is None:
            raise MissingKey("NOVU_API_KEY is not set")
        return self.api_key.refresh(deadline) if refresh else self.api_key.get(deadline)

    def _send(self, method, path, encoded_body, timeout, key: str, *, idempotent: bool):
        """Novu's answer: an ``HTTPAnswer``, or through requests' adapter its Response (the same fields)."""
        headers = {**self.headers, "Authorization": "ApiKey " + key}
        if encoded_body is not None:
            headers["Content-Type"] = "application/json"
            headers["Content-Length"] = str(len(encoded_body))
        if idempotent:
            headers["Idempotency-Key"] = idempotency_key(path, encoded_body or b"")
        # Through the transport the second limit bounds the whole call, connecting included.
        timeouts = (min(1.0, timeout), timeout)
        if self.via_session:
            return self.session.request(method, self.base_url + path, headers=headers, data=encoded_body,
                                        timeout=timeouts, allow_redirects=False)
        # Straight to the transport mounted for Novu's URL: the session's Request, PreparedRequest and
        # Response objects, with their cookie, hook and redirect handling, cost about a sixth of the call.
        return self.transport.exchange(method, self.base_url + path, headers, encoded_body, timeouts)

    def call(self, method: str, path: str, body, deadline: float, *, idempotent: bool = False):
        """One Novu request with the recoveries that fit in the deadline: a re-read key after 401,
        a wait on 409, a resend without Idempotency-Key after a replayed failure.
        Returns the response, or a Result when the call cannot give one."""
        encoded_body = None if body is None else encode(body)
        refresh_key = False
        attempts = 0
        while True:
            attempts += 1
            if deadline - time.monotonic() < MIN_CALL_SECONDS:
                return Result(RETRY, "not sent: the deadline for answering Segment was reached")
            try:
                key = self._key(refresh_key, deadline)
            except MissingKey:
                return Result(MISCONFIGURED, "NOVU_API_KEY is not set: set it to the Novu secret key "
                                             "or to a Secret Manager name")
            except SecretUnavailable as error:
                return Result(RETRY, f"Novu API key unavailable: {error}")
            except SecretMisconfigured as error:
                return Result(MISCONFIGURED, str(error))
            # Measured after the key: re-reading it may have taken part of the time left.
            remaining = deadline - time.monotonic()
            if remaining < MIN_CALL_SECONDS:
                return Result(RETRY, "not sent: the deadline for answering Segment was reached")
            timeout = min(self.timeout_seconds, remaining)
            try:
                response = self._send(method, path, encoded_body, timeout, key, idempotent=idempotent)
            except requests.Timeout:
                return Result(RETRY, "Novu did not answer in time")
            except requests.exceptions.SSLError as error:
                if "certificate verify failed" in str(error).lower():
                    return Result(RETRY, "could not connect to Novu: its TLS certificate is not trusted (a private "
                                         "CA: name its bundle in REQUESTS_CA_BUNDLE or SSL_CERT_FILE)")
                return Result(RETRY, "could not connect to Novu")
            except requests.ConnectionError:
                return Result(RETRY, "could not connect to Novu")
            except AnswerTooLarge:
                return Result(RETRY, f"Novu's answer is larger than {MAX_ANSWER_BYTES} bytes: not read")
            except requests.RequestException as error:
                return Result(RETRY, f"Novu request failed: {type(error).__name__}")
            if attempts > 3:
                return response
            status = response.status_code
            if status in (401, 403) and not refresh_key and self.api_key is not None and self.api_key.is_managed:
                refresh_key = True
                continue
            if status == 409:
                wait = header_seconds(response.headers.get("Retry-After"), 1.0)
                if time.monotonic() + wait + MIN_CALL_SECONDS < deadline:
                    time.sleep(wait)
                    continue
            if status >= 500 and idempotent and response.headers.get("Idempotency-Replay", "").lower() == "true":
                idempotent = False
                continue
            return response

    def classify(self, operation: Operation, response) -> Result:
        if isinstance(response, Result):
            return response
        status = response.status_code
        if 200 <= status < 300:
            failures = subscription_errors(response) if operation.action == SUBSCRIBE_TO_TOPIC else []
            if failures:
                detail = failures[0].get("message") or "no detail"
                return Result(RETRY, f"Novu did not subscribe to the topic: {str(detail)[:300]}", status)
            if not operation.is_trigger:
                return Result(DELIVERED, "done", status)
            return classify_trigger_data(unwrap(_json(response)), status)
        if status == 404 and operation.action == DELETE_SUBSCRIBER:
            return Result(DELIVERED, "subscriber already absent", status)
        if status == 404 and operation.action == CANCEL_TRIGGER:
            return Result(DELIVERED, "nothing to cancel", status)
        if status == 422 and operation.by_default_rule and _is_workflow_not_found(response):
            return Result(SKIPPED, f"no workflow {operation.workflow!r} in Novu", status)
        return self.classify_failure(response)

    def classify_failure(self, response: HTTPAnswer) -> Result:
        status = response.status_code
        message = error_message(response)
        if status == 429:
            return Result(RATE_LIMITED, "Novu rate limit reached", status, retry_after_seconds(response))
        if status in (401, 403):
            return Result(MISCONFIGURED, f"Novu refused the API key ({status}): check NOVU_API_KEY", status)
        if status == 402:
            return Result(MISCONFIGURED, f"Novu plan limit reached (402): {message}", status)
        if status == 409:
            return Result(RETRY, "Novu is still processing the same request (409)", status)
        if status >= 500 or status in (408, 423):
            return Result(RETRY, f"Novu answered {status}: {message}", status)
        return Result(REJECTED, f"Novu refused the request ({status}): {message}", status)

    def perform(self, operation: Operation, deadline: float) -> Result:
        response = self.call(
            operation.method, operation.path, operation.body, deadline, idempotent=operation.method == "POST"
        )
        if operation.create_if_missing is not None and subscriber_missing(response):
            created = self.call("POST", SUBSCRIBERS_PATH, operation.create_if_missing, deadline, idempotent=True)
            if isinstance(created, Result) or not 200 <= created.status_code < 300:
                return self.classify(operation, created)
            # Novu may have cached the refusal under the first Idempotency-Key: send again without one.
            response = self.call(operation.method, operation.path, operation.body, deadline)
        return self.classify(operation, response)

    def trigger_bulk(self, triggers: list[Operation], deadline: float) -> list[Result | None]:
        """One bulk call for up to 100 triggers; every slot of the answer is read on its own. None for
        a trigger the bulk answer leaves undecided (its slot is an error, or Novu refused the whole
        call, perhaps for one bad event): delivery sends it singly, and that answer decides."""
        body = {"events": [operation.body for operation in triggers]}
        response = self.call("POST", BULK_PATH, body, deadline, idempotent=True)
        if isinstance(response, Result):
            return [response] * len(triggers)
        if not 200 <= response.status_code < 300:
            refusal = self.classify_failure(response)
            return [None if refusal.outcome == REJECTED else refusal] * len(triggers)
        slots = unwrap(_json(response))
        if not isinstance(slots, list) or len(slots) != len(triggers):
            return [Result(RETRY, "Novu's bulk answer does not match the events sent", response.status_code)] * len(
                triggers
            )
        return [None if _is_error_slot(slot) else classify_trigger_data(slot, response.status_code) for slot in slots]
