"""One request, start to finish: intake → events → plans → delivery → one answer.

``Bridge`` holds what lives for the instance (settings, mapping rules, the Novu client and its
session, secrets, the ledger); ``handle`` is called once per request and owns no state of its own.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from segment_novu import (
    answer, authentication, config, content_encoding, events, intake, logs, mapping, outcomes, rate_limits, rules,
    secrets,
)
from segment_novu.answer import Answer
from segment_novu.delivery import Budgets, Courier
from segment_novu.ledger import build_ledger
from segment_novu.novu import NovuClient
from segment_novu.operations import Operation
from segment_novu.outcomes import Result
from segment_novu.secrets import SecretMisconfigured, SecretSource, SecretUnavailable
from segment_novu.workflows import FETCH_SECONDS, WorkflowCatalog

ACCEPTED_METHODS = ("POST", "PUT", "PATCH")
REDACTED = "ApiKey [redacted]"


@dataclass(frozen=True)
class Request:
    """What the bridge needs from an HTTP request, whatever server carried it."""

    method: str
    headers: object  # case-insensitive, with getlist(): werkzeug's Headers
    body: bytes | None  # None: larger than the limit
    # When the request arrived: Segment's deadline runs from there, including the first request's set-up.
    received_at: float = field(default_factory=time.monotonic)


class DryRunClient:
    """Stands in for NovuClient under DRY_RUN: records what would be sent, sends nothing."""

    def __init__(self, base_url: str):
        self.base_url = base_url
        self.requests: list[dict] = []

    def _record(self, method: str, path: str, body) -> None:
        entry = {"method": method, "url": self.base_url + path, "headers": {"Authorization": REDACTED}}
        if body is not None:
            entry["body"] = body
        self.requests.append(entry)

    def perform(self, operation: Operation, deadline: float) -> Result:
        self._record(operation.method, operation.path, operation.body)
        return Result(outcomes.DELIVERED, "dry run: not sent")

    def trigger_bulk(self, triggers: list[Operation], deadline: float) -> list[Result]:
        self._record("POST", "/v1/events/trigger/bulk", {"events": [operation.body for operation in triggers]})
        return [Result(outcomes.DELIVERED, "dry run: not sent")] * len(triggers)


class Bridge:
    def __init__(self, settings: config.Settings):
        self.settings = settings
        self.rules = rules.load(settings.mapping_file)
        secret_options = {
            "ttl_seconds": settings.secret_ttl_seconds,
            # A secret read happens inside a request: it must leave time to answer Segment.
            "timeout_seconds": min(2.0, settings.deadline_seconds / 2),
            "emulator_host": settings.secret_manager_emulator_host,
        }
        self.novu_key = (
            SecretSource(settings.novu_api_key, variable="NOVU_API_KEY", **secret_options)
            if settings.novu_api_key else None
        )
        self.shared_secrets = [
            SecretSource(value, variable=variable, **secret_options)
            for value, variable in zip(
                settings.segment_shared_secrets, ("SEGMENT_SHARED_SECRET", "SEGMENT_SHARED_SECRET_PREVIOUS")
            )
        ]
        self.auth_token = (
            SecretSource(settings.segment_auth_token, variable="SEGMENT_AUTH_TOKEN", **secret_options)
            if settings.segment_auth_token else None
        )
        self.client = NovuClient(
            settings.novu_api_url,
            self.novu_key,
            timeout_seconds=settings.novu_timeout_seconds,
            pool_size=settings.max_concurrency * 2,
        )
        ledger = build_ledger(
            settings.redis_url,
            max_entries=settings.ledger_max_entries,
            ttl_seconds=settings.ledger_ttl_seconds,
            timeout_seconds=settings.ledger_timeout_seconds,
        )
        bucket_options = {"timeout_seconds": settings.ledger_timeout_seconds}
        budgets = Budgets(
            rate_limits.build_bucket(settings.redis_url, "trigger", settings.trigger_rate_per_second, **bucket_options),
            rate_limits.build_bucket(settings.redis_url, "config", settings.config_rate_per_second, **bucket_options),
        )
        self.courier = Courier(self.client, ledger, budgets, max_concurrency=settings.max_concurrency)
        self.catalog = (
            WorkflowCatalog(self.client, ttl_seconds=settings.workflow_cache_seconds)
            if settings.workflow_discovery else None
        )
        self._announce()
        self._report_missing_workflows()

    @classmethod
    def from_environment(cls) -> "Bridge":
        settings = config.load()
        logs.configure(settings.log_level)
        return cls(settings)

    def _announce(self) -> None:
        settings = self.settings
        logs.info(
            "bridge ready",
            novuApiUrl=settings.novu_api_url,
            dryRun=settings.dry_run,
            mapping=self.rules.source,
            ledger="redis" if settings.redis_url else "memory",
        )
        if not self.shared_secrets and not self.auth_token:
            logs.warning(
                "SEGMENT_SHARED_SECRET is not set: unsigned requests are accepted from anyone who knows the URL"
            )
        if settings.accept_first_element_signature and self.shared_secrets:
            logs.warning(
                "ACCEPT_FIRST_ELEMENT_SIGNATURE is on: a batch is accepted when its first event is signed,"
                " so events appended to a signed body reach Novu unproven"
            )
        if self.novu_key is None and not settings.dry_run:
            logs.warning("NOVU_API_KEY is not set: events that need a Novu call will be answered 500")

    def _report_missing_workflows(self) -> None:
        if self.catalog is None or not self.rules.workflows:
            return
        known = self.catalog.refresh(time.monotonic() + FETCH_SECONDS)
        missing = sorted(self.rules.workflows - known) if known is not None else []
        if missing:
            logs.error(
                "the mapping names workflows Novu does not have: their events will be refused (400)",
                mapping=self.rules.source,
                workflows=missing,
            )

    def _authenticate(self, request: Request, body: bytes, deadline: float) -> Answer | None:
        if not self.shared_secrets and self.auth_token is None:
            return None  # nothing to check against (the bridge warned at start); the headers go unread
        credentials = [*self.shared_secrets, *([self.auth_token] if self.auth_token else [])]
        # The Novu key is read alongside (its failure is the delivery's to answer): one wait, not two.
        also = [self.novu_key] if self.novu_key is not None and not self.settings.dry_run else []
        values = secrets.read_all(credentials + also, deadline)[: len(credentials)]
        misconfigured = [value for value in values if isinstance(value, SecretMisconfigured)]
        if misconfigured:
            # Never authenticate against less than what was configured: refuse until the operator fixes it.
            logs.error("cannot check the request: a credential is misconfigured", error=str(misconfigured[0]))
            return answer.error(500, f"configuration error: {misconfigured[0]}")
        unavailable = [value for value in values if isinstance(value, SecretUnavailable)]
        if unavailable:
            logs.error("cannot read the Segment shared secret", error=str(unavailable[0]))
            return answer.error(503, "the shared secret cannot be read right now; retry later")
        shared, token = values[: len(self.shared_secrets)], (values[-1] if self.auth_token else None)
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
            return answer.error(401, str(error))
        return None

    def handle(self, request: Request) -> Answer:
        started = request.received_at
        deadline = started + self.settings.deadline_seconds
        if request.method not in ACCEPTED_METHODS:
            return answer.error(405, f"method {request.method} not allowed: POST events", {"Allow": "POST, PUT, PATCH"})
        if request.body is None:
            return answer.error(413, f"body larger than MAX_BODY_BYTES ({self.settings.max_body_bytes} bytes)")
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
        result, reports = self._process(incoming, deadline)
        answered = {
            "status": result.status,
            "events": len(incoming.items),
            "shape": incoming.shape,
            "durationMs": round((time.monotonic() - started) * 1000, 1),
        }
        if incoming.is_batch:
            for entry in reports:
                _log_event(entry, in_batch=True)
            logs.info("request answered", **answered)
        else:
            # One event, one line: the event's outcome and the request's answer together.
            _log_event(reports[0], in_batch=False, **answered)
        return result

    def deliver_events(self, items: list, deadline: float) -> Answer:
        """Events from a trusted source (a replayed export): the pipeline after authentication and intake."""
        result, reports = self._process(intake.Incoming("array", items), deadline)
        for entry in reports:
            _log_event(entry, in_batch=True)
        return result

    def _process(self, incoming: intake.Incoming, deadline: float) -> tuple[Answer, list[answer.EventReport]]:
        reports: dict[int, answer.EventReport] = {}
        plans: list[mapping.Plan] = []
        known_workflows, looked_up = None, False
        for index, item in enumerate(incoming.items):
            try:
                event = events.parse(item, index)
            except events.InvalidEvent as error:
                message_id = item.get("messageId") if isinstance(item, dict) else None
                message_id = message_id if isinstance(message_id, str) else None
                reports[index] = answer.EventReport(index, message_id, None, outcomes.REJECTED, error.message)
                continue
            if self.catalog is not None and not looked_up and mapping.uses_default_rule(event, self.rules):
                known_workflows, looked_up = self.catalog.known(deadline), True
            plan = mapping.plan(event, self.rules, self.settings.anonymous_events, known_workflows)
            if plan.missing_workflow is not None:
                rechecked = self.catalog.recheck(deadline)
                if rechecked is not known_workflows:
                    known_workflows = rechecked
                    plan = mapping.plan(event, self.rules, self.settings.anonymous_events, known_workflows)
            if plan.reject_reason is not None:
                reports[index] = answer.EventReport(
                    index, event.message_id, event.type, outcomes.REJECTED, plan.reject_reason
                )
            elif plan.skip_reason is not None:
                reports[index] = answer.EventReport(
                    index, event.message_id, event.type, outcomes.SKIPPED, plan.skip_reason
                )
            else:
                plans.append(plan)

        operations = [operation for plan in plans for operation in plan.operations]
        extra = {}
        if operations:
            if self.settings.dry_run:
                dry_run = DryRunClient(self.settings.novu_api_url)
                results = self.courier.deliver(operations, deadline, rehearsal_client=dry_run)
                extra = {"dryRun": True, "requests": dry_run.requests}
            else:
                results = self.courier.deliver(operations, deadline)
            by_event: dict[int, list[tuple[str | None, Result]]] = {}
            for operation, result in zip(operations, results):
                by_event.setdefault(operation.event_index, []).append((operation.workflow, result))
                if self.catalog is not None and _workflow_not_found(operation, result):
                    self.catalog.invalidate()
            for plan in plans:
                event = plan.event
                reports[event.index] = answer.report(event.index, event.message_id, event.type, by_event[event.index])

        ordered = [reports[index] for index in range(len(incoming.items))]
        return answer.decide(ordered, is_batch=incoming.is_batch, extra=extra), ordered


def _rejected(error: intake.Rejected) -> Answer:
    logs.warning("request rejected", status=error.status, reason=error.message)
    return answer.error(error.status, error.message)


def _workflow_not_found(operation: Operation, result: Result) -> bool:
    return operation.by_default_rule and result.outcome == outcomes.SKIPPED and result.novu_status == 422


def _log_event(entry: answer.EventReport, *, in_batch: bool, **request_fields) -> None:
    severity = "INFO"
    if entry.outcome == outcomes.REJECTED:
        severity = "ERROR" if in_batch else "WARNING"
    elif entry.outcome in outcomes.NEEDS_RETRY or (entry.outcome == outcomes.SKIPPED and entry.novu_status):
        severity = "WARNING"
    logs.log(
        severity,
        f"event {entry.outcome}",
        messageId=entry.message_id,
        type=entry.type,
        index=entry.index,
        outcome=entry.outcome,
        reason=entry.reason,
        workflows=list(entry.workflows) or None,
        novuStatus=entry.novu_status,
        **request_fields,
    )
