"""Reading Novu's responses: each one becomes an ``OperationResult`` whose outcome decides, in
``reply.contract``, what Segment is told.

Novu's ways live here: success bodies wrapped in ``data`` (its OpenAPI document shows them bare),
201s that triggered nothing, topic subscriptions that answer 201 with their failures inside, 429's
``Retry-After``, a missing subscriber worded two ways.
"""

from __future__ import annotations

import email.utils
import json
import math
import re
import time

import requests

from segment_novu import codec
from segment_novu.mapping.operations import (
    CANCEL_TRIGGER,
    DELETE_SUBSCRIBER,
    SUBSCRIBE_TO_TOPIC,
    Operation,
)
from segment_novu.novu.transport import NovuResponse
from segment_novu.reply.outcomes import (
    DELIVERED,
    MISCONFIGURED,
    RATE_LIMITED,
    REJECTED,
    RETRY,
    SKIPPED,
    OperationResult,
)

# What a call brings back: the transport's response, or requests' through a proxy it does not carry.
Response = NovuResponse | requests.Response
# "SubscriberId: x not found" (credentials), "Subscriber with ID 'x' could not be found." (topics).
_SUBSCRIBER_NOT_FOUND = re.compile(r"subscriber.*not (?:be )?found", re.IGNORECASE)


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


def retry_after_seconds(response: Response) -> float:
    """What Segment is told to wait after Novu's 429: Novu's value, at least one second."""
    return float(max(1, math.ceil(header_seconds(response.headers.get("Retry-After"), 1.0))))


def read_json(response: Response):
    """The response's JSON document, or None when it is not JSON."""
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


def error_message(response: Response) -> str:
    document = read_json(response)
    if isinstance(document, dict):
        message = document.get("message") or document.get("error")
        if isinstance(message, list):
            message = "; ".join(str(part) for part in message)
        if message:
            return str(message)[:300]
    return (response.reason or "no message")[:300]


def _is_workflow_not_found(response: Response) -> bool:
    document = read_json(response)
    text = json.dumps(document).lower() if document is not None else ""
    return "workflow_not_found" in text or "workflow not found" in text


def subscription_errors(response: Response) -> list[dict]:
    """A topic subscription answers 201 even when it failed: the failures are in ``errors``."""
    document = read_json(response)
    for holder in (document, unwrap(document)):
        if isinstance(holder, dict) and isinstance(holder.get("errors"), list):
            return [error for error in holder["errors"] if isinstance(error, dict)]
    return []


def subscriber_missing(response: Response | OperationResult) -> bool:
    """Did Novu refuse because it does not know the subscriber yet?"""
    if isinstance(response, OperationResult):
        return False
    if response.status_code in (400, 404):
        return bool(_SUBSCRIBER_NOT_FOUND.search(error_message(response)))
    if 200 <= response.status_code < 300:
        return any(error.get("code") == "SUBSCRIBER_NOT_FOUND" for error in subscription_errors(response))
    return False


def is_error_slot(slot) -> bool:
    """A bulk trigger's slot that Novu marked as failed, while the call itself answered 201."""
    return isinstance(slot, dict) and slot.get("status") == "error"


def trigger_result(data, novu_status: int) -> OperationResult:
    """What a trigger's acknowledgement (``{acknowledged, status, transactionId}``) says was done."""
    if not isinstance(data, dict) or "status" not in data:
        return OperationResult(RETRY, "Novu answered without a trigger status", novu_status)
    status = data.get("status")
    if status == "processed":
        return OperationResult(DELIVERED, "triggered", novu_status)
    if status == "error":
        detail = "; ".join(str(part) for part in data.get("error") or [])[:300] or "no detail"
        return OperationResult(RETRY, f"Novu reported an error for this trigger: {detail}", novu_status)
    return OperationResult(SKIPPED, f"Novu did not trigger the workflow: {status}", novu_status)


def result_of(operation: Operation, response: Response | OperationResult) -> OperationResult:
    """The result of one operation from Novu's response (or the result the call already ended in)."""
    if isinstance(response, OperationResult):
        return response
    status = response.status_code
    if 200 <= status < 300:
        failures = subscription_errors(response) if operation.action == SUBSCRIBE_TO_TOPIC else []
        if failures:
            detail = failures[0].get("message") or "no detail"
            return OperationResult(RETRY, f"Novu did not subscribe to the topic: {str(detail)[:300]}", status)
        if not operation.is_trigger:
            return OperationResult(DELIVERED, "done", status)
        return trigger_result(unwrap(read_json(response)), status)
    if status == 404 and operation.action == DELETE_SUBSCRIBER:
        return OperationResult(DELIVERED, "subscriber already absent", status)
    if status == 404 and operation.action == CANCEL_TRIGGER:
        return OperationResult(DELIVERED, "nothing to cancel", status)
    if status == 422 and operation.by_default_rule and _is_workflow_not_found(response):
        return OperationResult(SKIPPED, f"no workflow {operation.workflow!r} in Novu", status)
    return failure_result(response)


def failure_result(response: Response) -> OperationResult:
    """A non-2xx response whatever was asked: retryable, misconfigured or refused."""
    status = response.status_code
    message = error_message(response)
    if status == 429:
        return OperationResult(RATE_LIMITED, "Novu rate limit reached", status, retry_after_seconds(response))
    if status in (401, 403):
        return OperationResult(MISCONFIGURED, f"Novu refused the API key ({status}): check NOVU_API_KEY", status)
    if status == 402:
        return OperationResult(MISCONFIGURED, f"Novu plan limit reached (402): {message}", status)
    if status == 409:
        return OperationResult(RETRY, "Novu is still processing the same request (409)", status)
    if status >= 500 or status in (408, 423):
        return OperationResult(RETRY, f"Novu answered {status}: {message}", status)
    return OperationResult(REJECTED, f"Novu refused the request ({status}): {message}", status)
