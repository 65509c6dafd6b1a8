"""Replay a Segment export (JSON lines, or one JSON array) through the bridge's own pipeline.

Events go in chunks through ``Bridge.deliver_events``: the same mapping, delivery, deadline and
ledger as a request from Segment. A chunk whose answer asks for a retry (Novu's 429, 503, the
deadline) is sent again after a wait, only its unfinished events, and the ledger spares what Novu
already took. A chunk that stops making progress is given up after ``retries`` attempts; a missing
or refused Novu key stops the whole replay, since no retry can fix it.
"""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from segment_novu import outcomes

COLUMNS = ("delivered", "duplicate", "skipped", "rejected", "failed")
MAX_WAIT_SECONDS = 30.0


class ReplayError(Exception):
    """The export cannot be read; the message says where."""


@dataclass(frozen=True)
class Unreadable:
    """A line of the export that is not JSON: reported, never sent."""

    reason: str


@dataclass(frozen=True)
class Failure:
    line: int
    message_id: str | None
    outcome: str
    reason: str


@dataclass
class Summary:
    """What became of the replayed events: counts per workflow (or per call type) and the failures."""

    rows: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    totals: Counter = field(default_factory=Counter)
    failures: list[Failure] = field(default_factory=list)
    stopped: str | None = None

    @property
    def count(self) -> int:
        return sum(self.totals.values())

    def add(self, line: int, report: dict) -> None:
        outcome = report["outcome"]
        column = "failed" if outcome in outcomes.NEEDS_RETRY else outcome
        self.totals[column] += 1
        for row in report.get("workflows") or [f"({report.get('type') or 'invalid'})"]:
            self.rows[row][column] += 1
        if column in ("rejected", "failed"):
            self.failures.append(Failure(line, report.get("messageId"), outcome, report["reason"]))

    def table(self) -> str:
        label_width = max([len("total (events)")] + [len(row) for row in self.rows])
        lines = [" " * label_width + "".join(f"{column:>11}" for column in COLUMNS)]
        for row in sorted(self.rows):
            lines.append(f"{row:<{label_width}}" + "".join(f"{self.rows[row][column]:>11}" for column in COLUMNS))
        lines.append(f"{'total (events)':<{label_width}}" + "".join(f"{self.totals[column]:>11}" for column in COLUMNS))
        return "\n".join(lines)


def _is_array(path: Path) -> bool:
    with path.open("rb") as stream:
        while True:
            byte = stream.read(1)
            if byte not in (b" ", b"\t", b"\r", b"\n", b"\xef", b"\xbb", b"\xbf"):
                return byte == b"["


def read_events(path: Path) -> tuple[int, Iterator[tuple[int, Any]]]:
    """How many events the export holds, and the events with their line (or, in an array, their
    position from 1)."""
    try:
        if _is_array(path):
            try:
                document = json.loads(path.read_text(encoding="utf-8-sig"))
            except ValueError as error:
                raise ReplayError(f"{path}: not valid JSON: {error}") from None
            return len(document), iter(enumerate(document, start=1))
        with path.open(encoding="utf-8-sig") as stream:
            total = sum(1 for line in stream if line.strip())
    except (OSError, UnicodeDecodeError) as error:
        raise ReplayError(f"{path}: cannot be read ({getattr(error, 'strerror', None) or error})") from None
    return total, _lines(path)


def _lines(path: Path) -> Iterator[tuple[int, Any]]:
    with path.open(encoding="utf-8-sig") as stream:
        for number, line in enumerate(stream, start=1):
            if not line.strip():
                continue
            try:
                yield number, json.loads(line)
            except ValueError as error:
                yield number, Unreadable(f"not valid JSON: {error}")


def _chunks(items: Iterable, size: int) -> Iterator[list]:
    chunk = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _wait_seconds(answer, stalls: int) -> float:
    if answer.status == 429:
        return float(answer.headers.get("Retry-After", 1))
    if stalls == 0:
        return 0.0
    return min(MAX_WAIT_SECONDS, 2.0 ** (stalls - 1))


class Replay:
    def __init__(
        self,
        bridge,
        *,
        chunk_size: int = 200,
        retries: int = 5,
        on_requests: Callable[[list[dict]], None] | None = None,
        on_progress: Callable[[int], None] | None = None,
    ):
        self.bridge = bridge
        self.chunk_size = chunk_size
        self.retries = retries
        self.on_requests = on_requests
        self.on_progress = on_progress

    def run(self, items: Iterable[tuple[int, Any]]) -> Summary:
        summary = Summary()
        for chunk in _chunks(items, self.chunk_size):
            readable = []
            for line, item in chunk:
                if isinstance(item, Unreadable):
                    summary.add(line, {"outcome": outcomes.REJECTED, "reason": item.reason})
                else:
                    readable.append((line, item))
            for line, report in sorted(self._deliver(readable, summary).items()):
                summary.add(line, report)
            if self.on_progress:
                self.on_progress(summary.count)
            if summary.stopped:
                break
        return summary

    def _deliver(self, pending: list[tuple[int, Any]], summary: Summary) -> dict[int, dict]:
        final: dict[int, dict] = {}
        stalls = 0
        while pending:
            deadline = time.monotonic() + self.bridge.settings.deadline_seconds
            answer = self.bridge.deliver_events([item for _, item in pending], deadline)
            if self.on_requests and answer.body.get("requests"):
                self.on_requests(answer.body["requests"])
            unfinished = []
            for (line, item), report in zip(pending, answer.body["events"]):
                final[line] = report
                if report["outcome"] == outcomes.MISCONFIGURED:
                    summary.stopped = report["reason"]
                elif report["outcome"] in outcomes.NEEDS_RETRY:
                    unfinished.append((line, item))
            if summary.stopped or not unfinished:
                break
            stalls = 0 if len(unfinished) < len(pending) else stalls + 1
            if stalls > self.retries:
                break
            time.sleep(_wait_seconds(answer, stalls))
            pending = unfinished
        return final
