"""Carries out planned operations within the request's deadline and collects one result each.

- Per subscriber, Segment's order holds: operations run in *stages*; a subscriber's next stage starts
  only after its previous one, so an ``identify`` lands before that subscriber's later triggers and a
  ``delete`` after its earlier ones; within a stage its subscriber changes run one after another. Once
  one of a subscriber's operations must be retried, none of its later ones is sent in that request:
  Segment resends them all, and the ledger (which recorded only what came before) lets them land in
  order.
- Identical operations in one request (same ledger key: two ``group`` events for one topic, an event
  repeated in a batch) are sent once and share the result, unless a deletion of their subscriber
  lies between them.
- Triggers within a stage go in full bulk calls of 100 (100 rate-limit tokens for 100 events, the
  same as single calls) and the remainder as single calls, unless the remainder is too large to send
  singly within two rounds of concurrent calls and triggers are not paced (then it is one more bulk call).
- Every call first takes its tokens from its category's bucket (rate_limits.py: shared by every instance
  through Redis): it waits for them when they come in time, and is answered 429 with the bucket's
  Retry-After when they do not.
- A Novu 429, or a bucket's refusal, stops every call not yet started; so does the deadline.
- A trigger whose cancel came first (recorded in the ledger, or earlier in the request) is skipped.
- The ledger skips what Novu already acknowledged and records what it acknowledges now. A change that
  deleting the subscriber undoes is keyed with the subscriber's count of deletions, so it is sent
  again after one, and never skipped when a deletion precedes it in the same request.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial

from segment_novu.delivery.ledger import Ledger
from segment_novu.delivery.rate_limits import BULK_COST
from segment_novu.mapping.operations import (
    CANCEL_TRIGGER,
    DELETE_SUBSCRIBER,
    SINGLE_STATE,
    Operation,
)
from segment_novu.novu.client import MIN_CALL_SECONDS
from segment_novu.novu.dry_run import DryRunExecutor
from segment_novu.novu.executor import Executor
from segment_novu.reply import outcomes
from segment_novu.reply.outcomes import OperationResult

BULK_SIZE = 100
ALREADY_DELIVERED = OperationResult(outcomes.DUPLICATE, "already delivered (ledger)")
CANCELLED_FIRST = OperationResult(outcomes.SKIPPED, "cancelled: a cancel for this transactionKey arrived first")
HELD_BACK = OperationResult(outcomes.RETRY, "not sent: an earlier operation for this subscriber must be retried first")


class Budgets:
    """The rate buckets delivery spends from (rate_limits.py): triggers (None: not paced) and
    subscriber and topic changes."""

    def __init__(self, triggers, changes):
        self.triggers = triggers
        self.changes = changes

    def reserve(self, is_trigger: bool, cost: float, deadline: float) -> OperationResult | None:
        """Waits for the tokens of one call; None when granted, else the RATE_LIMITED result that answers
        Segment with the bucket's own schedule. A call is never started when the bucket can pay for it
        only too late to finish before the deadline."""
        bucket = self.triggers if is_trigger else self.changes
        if bucket is None:
            return None
        reservation = bucket.reserve(cost, deadline - time.monotonic() - MIN_CALL_SECONDS)
        if not reservation.granted:
            category = "trigger" if is_trigger else "configuration"
            reason = f"not sent: Novu's {category} rate for this deployment leaves no room before the deadline"
            return OperationResult(outcomes.RATE_LIMITED, reason, retry_after=reservation.seconds)
        if reservation.seconds > 0:
            time.sleep(reservation.seconds)
        return None


@dataclass
class _Run:
    executor: Executor | DryRunExecutor
    deadline: float
    budgets: Budgets | None  # None: a rehearsal, which spends nothing
    results: dict[int, OperationResult] = field(default_factory=dict)
    stopped_by: OperationResult | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def settle(self, position: int, result: OperationResult) -> None:
        with self.lock:
            self.results[position] = result
            if result.outcome == outcomes.RATE_LIMITED and self.stopped_by is None:
                self.stopped_by = result

    def refusal(self) -> OperationResult | None:
        """Why no new call may start now, if any."""
        if self.stopped_by is not None:
            reason = "not sent: Novu's rate limit was reached earlier in this request"
            return OperationResult(outcomes.RATE_LIMITED, reason, retry_after=self.stopped_by.retry_after)
        if self.deadline - time.monotonic() < MIN_CALL_SECONDS:
            return OperationResult(outcomes.RETRY, "not sent: the deadline for answering Segment was reached")
        return None


def stages(operations: list[Operation]) -> list[list[int]]:
    """Positions grouped into stages: a subscriber moves to a new stage whenever it switches between
    triggers and subscriber changes, so its order is kept while other subscribers run alongside."""
    if len(operations) == 1:
        return [[0]]
    position_stage: dict[int, int] = {}
    current: dict[str, tuple[int, bool]] = {}
    for position, operation in enumerate(operations):
        owner = operation.subscriber_id or f"#{position}"
        stage, was_trigger = current.get(owner, (0, operation.is_trigger))
        if owner in current and was_trigger != operation.is_trigger:
            stage += 1
        current[owner] = (stage, operation.is_trigger)
        position_stage[position] = stage
    grouped: dict[int, list[int]] = defaultdict(list)
    for position, stage in position_stage.items():
        grouped[stage].append(position)
    return [grouped[stage] for stage in sorted(grouped)]


def split_triggers(
    positions: list[int], max_concurrency: int, *, paced: bool = False
) -> tuple[list[list[int]], list[int]]:
    """Full bulk chunks, plus the remainder as singles, or as one more chunk when it is large and the
    trigger bucket is not paced: a bulk call costs BULK_COST tokens whatever it carries, so when tokens are
    what limits, singles pay less per event."""
    full = len(positions) - len(positions) % BULK_SIZE
    chunks = [positions[start : start + BULK_SIZE] for start in range(0, full, BULK_SIZE)]
    remainder = positions[full:]
    if len(remainder) > 2 * max_concurrency and not paced:
        return chunks + [remainder], []
    return chunks, remainder


def _entries(operations: list[Operation], keys: list[str | None], positions) -> dict[str, str]:
    """The ledger's key → state for the operations at ``positions`` it can vouch for."""
    return {keys[position]: operations[position].state for position in positions if keys[position] is not None}


class Courier:
    def __init__(self, executor: Executor, ledger: Ledger, budgets: Budgets, *, max_concurrency: int):
        self.executor = executor
        self.ledger = ledger
        self.max_concurrency = max_concurrency
        self.budgets = budgets
        self.pool = ThreadPoolExecutor(max_workers=max_concurrency, thread_name_prefix="novu")

    def deliver(self, operations: list[Operation], deadline: float, *, rehearsal: DryRunExecutor | None = None
                ) -> list[OperationResult]:
        """Carries out the operations. With a ``rehearsal`` executor (the dry run) the same plan runs
        against it instead of Novu: the ledger and the rate budgets are neither read nor spent."""
        rehearsing = rehearsal is not None
        run = _Run(rehearsal or self.executor, deadline, None if rehearsing else self.budgets)
        keys = self._ledger_keys(operations, rehearsing)
        asked = _entries(operations, keys, range(len(operations)))
        # A cancel is recorded under the key its trigger names: found there, it arrived first.
        asked.update({operation.cancelled_by: SINGLE_STATE for operation in operations if operation.cancelled_by})
        known = set() if rehearsing else self.ledger.acknowledged(asked)
        pending, twins = self._select(operations, keys, known, run)
        blocked: set[str] = set()
        for stage in stages([operations[position] for position in pending]):
            positions = [pending[index] for index in stage]
            self._run_stage(run, operations, positions, blocked)
            for position in positions:
                if run.results[position].outcome in outcomes.NEEDS_RETRY:
                    for held in (position, *twins.get(position, ())):
                        if operations[held].subscriber_id:
                            blocked.add(operations[held].subscriber_id)
        for original, copies in twins.items():
            for position in copies:
                run.results[position] = run.results[original]
        if not rehearsing:
            self._remember(operations, keys, pending, run.results)
        return [run.results[position] for position in range(len(operations))]

    def _ledger_keys(self, operations: list[Operation], rehearsing: bool) -> list[str | None]:
        """Each operation's ledger key; None where the ledger cannot vouch for it (the deletion count
        of its subscriber is unknown), so it is neither skipped nor recorded."""
        erasable = sorted({op.subscriber_id for op in operations if op.undone_by_delete and op.subscriber_id})
        erasures = self.ledger.erasures(erasable) if erasable and not rehearsing else {}
        keys: list[str | None] = []
        for operation in operations:
            if not operation.undone_by_delete:
                keys.append(operation.key)
            elif erasures is None or operation.subscriber_id not in erasures:
                keys.append(None)
            else:
                keys.append(f"{operation.key}@{erasures[operation.subscriber_id]}")
        return keys

    @staticmethod
    def _select(operations, keys, known, run: _Run) -> tuple[list[int], dict[int, list[int]]]:
        """The positions to send, and for each of them the later identical ones that share its result.
        Already-acknowledged operations are settled as duplicates, except a change a deletion earlier
        in this request undid."""
        pending: list[int] = []
        twins: dict[int, list[int]] = defaultdict(list)
        first_with_key: dict[str, int] = {}
        undone_keys: dict[str, list[str]] = defaultdict(list)  # per subscriber: its undoable changes so far
        deleted: set[str] = set()
        cancels: set[str] = set()  # ledger keys of the cancels met so far in this request
        for position, operation in enumerate(operations):
            subscriber = operation.subscriber_id
            if operation.action == CANCEL_TRIGGER:
                cancels.add(operation.key)
            cancelled_by = operation.cancelled_by
            if cancelled_by is not None and (cancelled_by in known or cancelled_by in cancels):
                run.results[position] = CANCELLED_FIRST
                continue
            if operation.action == DELETE_SUBSCRIBER and subscriber:
                deleted.add(subscriber)
                for key in undone_keys.pop(subscriber, ()):
                    first_with_key.pop(key, None)
            twin_key = operation.action + "|" + operation.key + "|" + operation.state
            if keys[position] in known and not (operation.undone_by_delete and subscriber in deleted):
                run.results[position] = ALREADY_DELIVERED
            elif twin_key in first_with_key:
                twins[first_with_key[twin_key]].append(position)
            else:
                first_with_key[twin_key] = position
                if operation.undone_by_delete and subscriber:
                    undone_keys[subscriber].append(twin_key)
                pending.append(position)
        return pending, twins

    def _remember(self, operations, keys, pending, results) -> None:
        delivered = [position for position in pending if results[position].outcome == outcomes.DELIVERED]
        deleted = [
            operations[position].subscriber_id
            for position in delivered
            if operations[position].action == DELETE_SUBSCRIBER and operations[position].subscriber_id
        ]
        if deleted:
            self.ledger.erase(deleted)
        acknowledged = _entries(operations, keys, delivered)
        if acknowledged:
            self.ledger.record(acknowledged)

    def _run_stage(self, run: _Run, operations, positions, blocked) -> None:
        runnable = []
        for position in positions:
            subscriber = operations[position].subscriber_id
            if subscriber in blocked:
                run.settle(position, HELD_BACK)
            else:
                runnable.append(position)
        if len(runnable) == 1:  # a single event's usual case: what the general path below would do
            position = runnable[0]
            self._single(run, operations, position)
            return
        triggers = [position for position in runnable if operations[position].is_trigger]
        changes: dict[str, list[int]] = defaultdict(list)
        for position in runnable:
            if not operations[position].is_trigger:
                changes[operations[position].subscriber_id or f"#{position}"].append(position)
        trigger_bucket = run.budgets.triggers if run.budgets is not None else None
        paced = trigger_bucket is not None
        chunks: list[list[int]]
        # A bucket smaller than one bulk call's cost: Novu would refuse every bulk call.
        if trigger_bucket is not None and trigger_bucket.capacity < BULK_COST:
            chunks, singles = [], triggers
        else:
            chunks, singles = split_triggers(triggers, self.max_concurrency, paced=paced)
        tasks: list[Callable[[], object]] = [partial(self._bulk, run, operations, chunk) for chunk in chunks]
        tasks += [partial(self._single, run, operations, position) for position in singles]
        tasks += [partial(self._sequence, run, operations, sequence) for sequence in changes.values()]
        undecided = [position for retry in self._run_all(tasks) for position in retry or ()]
        self._run_all([partial(self._single, run, operations, position) for position in undecided])

    def _run_all(self, tasks: list) -> list:
        """Runs the tasks, on the pool when there are several; each in a copy of the request's context
        so what it logs carries the request's trace."""
        if len(tasks) <= 1:
            return [task() for task in tasks]
        futures = [self.pool.submit(contextvars.copy_context().run, task) for task in tasks]
        return [future.result() for future in futures]

    @staticmethod
    def _spend(run: _Run, is_trigger: bool, cost: float) -> OperationResult | None:
        """Why the call may not start (the request's earlier stop, the deadline, the bucket), if any."""
        refusal = run.refusal()
        if refusal is None and run.budgets is not None:
            refusal = run.budgets.reserve(is_trigger, cost, run.deadline)
        return refusal

    def _single(self, run: _Run, operations, position: int) -> None:
        refusal = self._spend(run, operations[position].is_trigger, 1)
        run.settle(position, refusal or run.executor.perform(operations[position], run.deadline))

    def _sequence(self, run: _Run, operations, sequence: list[int]) -> None:
        for index, position in enumerate(sequence):
            self._single(run, operations, position)
            if run.results[position].outcome in outcomes.NEEDS_RETRY:
                for later in sequence[index + 1 :]:
                    run.settle(later, HELD_BACK)
                return

    def _bulk(self, run: _Run, operations, chunk: list[int]) -> list[int]:
        """One bulk call; returns the positions its answer left undecided, to be sent as single triggers."""
        refusal = self._spend(run, True, BULK_COST)
        if refusal is not None:
            for position in chunk:
                run.settle(position, refusal)
            return []
        results = run.executor.trigger_bulk([operations[position] for position in chunk], run.deadline)
        undecided = []
        for position, result in zip(chunk, results):
            if result is None:
                undecided.append(position)
            else:
                run.settle(position, result)
        return undecided
