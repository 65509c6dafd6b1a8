"""One request, start to finish: receive → events → plans → delivery → one reply.

``Bridge`` runs the stages for each request over what the ``Instance`` holds; it keeps no state of
its own between requests.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from werkzeug.datastructures import Headers

from segment_novu import config, logs, secrets
from segment_novu.instance import Instance
from segment_novu.mapping import planner
from segment_novu.mapping.operations import Operation
from segment_novu.novu.dry_run import DryRunExecutor
from segment_novu.receive import authentication, content_encoding, events, intake
from segment_novu.reply import contract, event_log, outcomes
from segment_novu.reply.contract import EventResult, Reply
from segment_novu.reply.outcomes import OperationResult
from segment_novu.secrets import SecretMisconfigured, SecretUnavailable

ACCEPTED_METHODS = ("POST", "PUT", "PATCH")


@dataclass(frozen=True)
class Request:
    """What the bridge needs from an HTTP request, whatever server carried it."""

    method: str
    headers: Headers  # case-insensitive, with getlist()
    body: bytes | None  # None: larger than the limit
    # When the request arrived: Segment's deadline runs from there, including the first request's set-up.
    received_at: float = field(default_factory=time.monotonic)


class Bridge:
    def __init__(self, settings: config.Settings):
        self.settings = settings
        self.instance = Instance(settings)

    @classmethod
    def from_environment(cls) -> Bridge:
        settings = config.load()
        logs.configure(settings.log_level)
        return cls(settings)

    def handle(self, request: Request) -> Reply:
        started = request.received_at
        deadline = started + self.settings.deadline_seconds
        if request.method not in ACCEPTED_METHODS:
            allowed = {"Allow": ", ".join(ACCEPTED_METHODS)}
            return contract.error(405, f"method {request.method} not allowed: POST events", allowed)
        if request.body is None:
            return contract.error(413, f"body larger than MAX_BODY_BYTES ({self.settings.max_body_bytes} bytes)")
        try:
            body = content_encoding.decode(
                request.body, request.headers.get("Content-Encoding"), self.settings.max_body_bytes
            )
        except intake.Rejected as error:
            return _rejected(error)
        refused = self._authenticate(request, body, deadline)
        if refused is not None:
            return refused
        try:
            intake.check_content_type(request.headers.get("Content-Type"))
            incoming = intake.split(intake.parse_json(body, self.settings.max_json_depth))
        except intake.Rejected as error:
            return _rejected(error)
        reply, results = self._process(incoming, deadline)
        replied = {
            "status": reply.status,
            "events": len(incoming.items),
            "shape": incoming.shape,
            "durationMs": round((time.monotonic() - started) * 1000, 1),
        }
        if incoming.is_batch:
            event_log.log_batch(results, self.settings.log_events)
            logs.info("request answered", **replied)
        else:
            # One event, one line: the event's outcome and the request's reply together.
            event_log.log_event(results[0], in_batch=False, **replied)
        return reply

    def deliver_events(self, items: list, deadline: float) -> Reply:
        """Events from a trusted source (a replayed export): the pipeline after authentication and intake."""
        reply, results = self._process(intake.Incoming("array", items), deadline)
        event_log.log_batch(results, self.settings.log_events)
        return reply

    def _authenticate(self, request: Request, body: bytes, deadline: float) -> Reply | None:
        instance = self.instance
        if not instance.shared_secrets and instance.auth_token is None:
            return None  # nothing to check against (the instance warned at start); the headers go unread
        credentials = [*instance.shared_secrets, *([instance.auth_token] if instance.auth_token else [])]
        # The Novu key is read alongside (its failure is the delivery's to answer): one wait, not two.
        also = [instance.novu_key] if instance.novu_key is not None and not self.settings.dry_run else []
        values = secrets.read_all(credentials + also, deadline)[: len(credentials)]
        misconfigured = [value for value in values if isinstance(value, SecretMisconfigured)]
        if misconfigured:
            # Never authenticate against less than what was configured: refuse until the operator fixes it.
            logs.error("cannot check the request: a credential is misconfigured", error=str(misconfigured[0]))
            return contract.error(500, f"configuration error: {misconfigured[0]}")
        unavailable = [value for value in values if isinstance(value, SecretUnavailable)]
        if unavailable:
            logs.error("cannot read the Segment shared secret", error=str(unavailable[0]))
            return contract.error(503, "the shared secret cannot be read right now; retry later")
        # Every value is text by now: the failures were answered above.
        texts = [value for value in values if isinstance(value, str)]
        shared, token = texts[: len(instance.shared_secrets)], (texts[-1] if instance.auth_token else None)
        try:
            authentication.authenticate(
                body,
                request.headers.getlist("X-Signature"),
                request.headers.getlist("Authorization"),
                shared,
                token,
                accept_first_element=self.settings.accept_first_element_signature,
            )
        except authentication.Unauthenticated as error:
            logs.warning("request refused", reason=str(error))
            return contract.error(401, str(error))
        return None

    def _plan(self, items: list, deadline: float) -> tuple[list[planner.Plan], dict[int, EventResult]]:
        """Each item parsed and planned; the events that end here (rejected, skipped) have their result."""
        instance = self.instance
        ended: dict[int, EventResult] = {}
        plans: list[planner.Plan] = []
        known_workflows, looked_up = None, False
        for index, item in enumerate(items):
            try:
                event = events.parse(item, index)
            except events.InvalidEvent as error:
                message_id, declared_type = events.declared_identity(item)
                ended[index] = EventResult(index, message_id, declared_type, outcomes.REJECTED, error.message)
                continue
            if instance.catalog is not None and not looked_up and planner.uses_default_rule(event, instance.rules):
                known_workflows, looked_up = instance.catalog.known(deadline), True
            plan = planner.plan(event, instance.rules, self.settings.anonymous_events, known_workflows)
            if plan.missing_workflow is not None and instance.catalog is not None:
                rechecked = instance.catalog.recheck(deadline)
                if rechecked is not known_workflows:
                    known_workflows = rechecked
                    plan = planner.plan(event, instance.rules, self.settings.anonymous_events, known_workflows)
            if plan.reject_reason is not None:
                ended[index] = EventResult(index, event.message_id, event.type, outcomes.REJECTED, plan.reject_reason)
            elif plan.skip_reason is not None:
                ended[index] = EventResult(index, event.message_id, event.type, outcomes.SKIPPED, plan.skip_reason)
            else:
                plans.append(plan)
        return plans, ended

    def _process(self, incoming: intake.Incoming, deadline: float) -> tuple[Reply, list[EventResult]]:
        plans, results = self._plan(incoming.items, deadline)
        operations = [operation for plan in plans for operation in plan.operations]
        extra = {}
        if operations:
            courier, catalog = self.instance.courier, self.instance.catalog
            if self.settings.dry_run:
                rehearsal = DryRunExecutor(self.settings.novu_api_url)
                operation_results = courier.deliver(operations, deadline, rehearsal=rehearsal)
                extra = {"dryRun": True, "requests": rehearsal.requests}
            else:
                operation_results = courier.deliver(operations, deadline)
            by_event: dict[int, list[tuple[str | None, OperationResult]]] = {}
            for operation, result in zip(operations, operation_results):
                by_event.setdefault(operation.event_index, []).append((operation.workflow, result))
                if catalog is not None and _workflow_not_found(operation, result):
                    catalog.invalidate()
            for plan in plans:
                event = plan.event
                results[event.index] = contract.event_result(
                    event.index, event.message_id, event.type, by_event[event.index]
                )
        ordered = [results[index] for index in range(len(incoming.items))]
        return contract.decide(ordered, is_batch=incoming.is_batch, extra=extra), ordered


def _rejected(error: intake.Rejected) -> Reply:
    logs.warning("request rejected", status=error.status, reason=error.message)
    return contract.error(error.status, error.message)


def _workflow_not_found(operation: Operation, result: OperationResult) -> bool:
    return operation.by_default_rule and result.outcome == outcomes.SKIPPED and result.novu_status == 422
