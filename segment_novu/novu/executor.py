"""One planned operation → the Novu calls it takes → its ``OperationResult``.

A call that Novu refuses because the subscriber does not exist yet (push credentials, a topic
subscription) creates the subscriber from the operation's ``create_if_missing`` and is sent again.
Triggers go singly or up to 100 in one bulk call, each slot of the bulk response read on its own.
"""

from __future__ import annotations

from segment_novu.mapping.operations import SUBSCRIBERS_PATH, Operation
from segment_novu.novu import responses
from segment_novu.novu.client import NovuClient
from segment_novu.reply.outcomes import REJECTED, RETRY, OperationResult

BULK_PATH = "/v1/events/trigger/bulk"


class Executor:
    def __init__(self, client: NovuClient):
        self.client = client

    def perform(self, operation: Operation, deadline: float) -> OperationResult:
        call = self.client.call
        idempotent = operation.method == "POST"
        response = call(operation.method, operation.path, operation.body, deadline, idempotent=idempotent)
        if operation.create_if_missing is not None and responses.subscriber_missing(response):
            created = call("POST", SUBSCRIBERS_PATH, operation.create_if_missing, deadline, idempotent=True)
            if isinstance(created, OperationResult) or not 200 <= created.status_code < 300:
                return responses.result_of(operation, created)
            # Novu may have cached the refusal under the first Idempotency-Key: send again without one.
            response = call(operation.method, operation.path, operation.body, deadline)
        return responses.result_of(operation, response)

    def trigger_bulk(self, triggers: list[Operation], deadline: float) -> list[OperationResult | None]:
        """One result per trigger, or None for a trigger the bulk response leaves undecided (its slot
        is an error, or Novu refused the whole call, perhaps for one bad event): delivery sends it
        singly, and that response decides."""
        body = {"events": [operation.body for operation in triggers]}
        response = self.client.call("POST", BULK_PATH, body, deadline, idempotent=True)
        if isinstance(response, OperationResult):
            return [response] * len(triggers)
        if not 200 <= response.status_code < 300:
            refusal = responses.failure_result(response)
            return [None if refusal.outcome == REJECTED else refusal] * len(triggers)
        slots = responses.unwrap(responses.read_json(response))
        if not isinstance(slots, list) or len(slots) != len(triggers):
            reason = "Novu's bulk response does not match the events sent"
            mismatch = OperationResult(RETRY, reason, response.status_code)
            return [mismatch] * len(triggers)
        return [
            None if responses.is_error_slot(slot) else responses.trigger_result(slot, response.status_code)
            for slot in slots
        ]
