"""DRY_RUN: an executor that records the Novu requests the plan would send and sends nothing."""

from __future__ import annotations

from segment_novu.mapping.operations import Operation
from segment_novu.novu.executor import BULK_PATH
from segment_novu.reply.outcomes import DELIVERED, OperationResult

REDACTED = "ApiKey [redacted]"
NOT_SENT = OperationResult(DELIVERED, "dry run: not sent")


class DryRunExecutor:
    def __init__(self, base_url: str):
        self.base_url = base_url
        self.requests: list[dict] = []

    def _record(self, method: str, path: str, body) -> None:
        entry = {"method": method, "url": self.base_url + path, "headers": {"Authorization": REDACTED}}
        if body is not None:
            entry["body"] = body
        self.requests.append(entry)

    def perform(self, operation: Operation, deadline: float) -> OperationResult:
        self._record(operation.method, operation.path, operation.body)
        return NOT_SENT

    def trigger_bulk(self, triggers: list[Operation], deadline: float) -> list[OperationResult | None]:
        self._record("POST", BULK_PATH, {"events": [operation.body for operation in triggers]})
        return [NOT_SENT] * len(triggers)
