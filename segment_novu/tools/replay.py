"""Replay a Segment export (JSON lines, a JSON array, one event, a Tracking API envelope) through
the bridge's own pipeline.

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
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from segment_novu.receive import intake
from segment_novu.reply import outcomes

COLUMNS = ("delivered", "duplicate", "skipped", "rejected", "failed")
MAX_WAIT_SECONDS = 30.0


class ReplayError(Exception):
    """The export cannot be read; the message says where."""


@dataclass(frozen=True)
class Unreadable:
    """A line of the export that holds no event (not JSON, or JSON of another shape): reported, never sent."""

    reason: str


@dataclass(frozen=True)
class NotDelivered:
    """An event the replay did not deliver (skipped, rejected or failed), with the line it starts on."""

    line: int
    message_id: str | None
    outcome: str
    reason: str


@dataclass
class Summary:
    """What became of the replayed events: counts per workflow (or per call type), and every event
    not delivered."""

    rows: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    totals: Counter = field(default_factory=Counter)
    not_delivered: list[NotDelivered] = field(default_factory=list)
    stopped: str | None = None

    @property
    def count(self) -> int:
        return sum(self.totals.values())

    @property
    def failed(self) -> list[NotDelivered]:
        """Those that need attention: rejected or still failing (skipped ones were skipped on purpose)."""
        return [entry for entry in self.not_delivered if entry.outcome != outcomes.SKIPPED]

    def add(self, line: int, result: dict) -> None:
        outcome = result["outcome"]
        column = "failed" if outcome in outcomes.NEEDS_RETRY else outcome
        self.totals[column] += 1
        for row in result.get("workflows") or [f"({result.get('type') or 'invalid'})"]:
            self.rows[row][column] += 1
        if column in ("skipped", "rejected", "failed"):
            self.not_delivered.append(NotDelivered(line, result.get("messageId"), outcome, result["reason"]))

    def table(self) -> str:
        label_width = max([len("total (events)")] + [len(row) for row in self.rows])
        lines = [" " * label_width + "".join(f"{column:>11}" for column in COLUMNS)]
        for row in sorted(self.rows):
            lines.append(f"{row:<{label_width}}" + "".join(f"{self.rows[row][column]:>11}" for column in COLUMNS))
        lines.append(f"{'total (events)':<{label_width}}" + "".join(f"{self.totals[column]:>11}" for column in COLUMNS))
        return "\n".join(lines)


_DECODER = json.JSONDecoder()
_BLANK = " \t\r\n"


def _first_line(path: Path) -> str:
    """The file's first non-blank line, stripped ("" when there is none)."""
    with path.open(encoding="utf-8-sig") as stream:
        return next((line.strip() for line in stream if line.strip()), "")


def _line_at(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def _skip_blank(text: str, index: int) -> int:
    while index < len(text) and text[index] in _BLANK:
        index += 1
    return index


def _element_offsets(text: str, index: int) -> list[int]:
    """Where each element of the array opening at ``index`` starts (the array is known to be valid JSON)."""
    offsets: list[int] = []
    index = _skip_blank(text, index + 1)
    while text[index] != "]":
        offsets.append(index)
        _, index = _DECODER.raw_decode(text, index)
        index = _skip_blank(text, index)
        if text[index] == ",":
            index = _skip_blank(text, index + 1)
    return offsets


def _batch_offsets(text: str, index: int) -> list[int]:
    """Where each event of the envelope object opening at ``index`` starts: its "batch" array's elements."""
    index = _skip_blank(text, index + 1)
    while text[index] != "}":
        key, index = _DECODER.raw_decode(text, index)
        index = _skip_blank(text, _skip_blank(text, index) + 1)  # past the colon
        if key == "batch":
            return _element_offsets(text, index)
        _, index = _DECODER.raw_decode(text, index)
        index = _skip_blank(text, index)
        if text[index] == ",":
            index = _skip_blank(text, index + 1)
    return []


def _events_of(document: Any) -> list:
    """The events a document holds: a Tracking API envelope's (its context and integrations merged
    into each, as a request would have them), an array's, or the one event."""
    try:
        return intake.split(document).items
    except intake.Rejected as error:
        raise ValueError(error.message) from None


def _whole_document(path: Path, text: str, document: Any) -> list[tuple[int, Any]]:
    """The events of a file holding one JSON document (an array, an envelope, or one event, however it
    is laid out), each with the line it starts on."""
    try:
        items = _events_of(document)
    except ValueError as error:
        raise ReplayError(f"{path}: {error}") from None
    start = _skip_blank(text, 0)
    if isinstance(document, list):
        offsets = _element_offsets(text, start)
    elif isinstance(document, dict) and "batch" in document and "type" not in document:
        offsets = _batch_offsets(text, start)
    else:
        offsets = [start]
    return [(_line_at(text, offset), item) for offset, item in zip(offsets, items)]


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except (ValueError, RecursionError):
        return False
    return True


def read_events(path: Path) -> tuple[int, Iterator[tuple[int, Any]]]:
    """How many events the export holds, and each event with the line of the file it starts on.

    Reads JSON lines (one event, or one Tracking API envelope, per line), one JSON array of events,
    one event (pretty-printed or not), and a Tracking API envelope ``{"batch": [...]}``. A file whose
    first line is not JSON on its own is read as one document when it is one, else as JSON lines
    (each unreadable line reported); an array must be valid JSON as a whole.
    """
    try:
        first_line = _first_line(path)
        is_array = first_line.startswith("[")
        if is_array or not (first_line == "" or _is_json(first_line)):
            text = path.read_text(encoding="utf-8-sig")
            try:
                events = _whole_document(path, text, json.loads(text))
                return len(events), iter(events)
            except (ValueError, RecursionError) as error:
                if is_array:
                    raise ReplayError(f"{path}: not valid JSON: {error}") from None
        total = sum(len(events) for _, events in _lines(path))
    except (OSError, UnicodeDecodeError) as error:
        raise ReplayError(f"{path}: cannot be read ({getattr(error, 'strerror', None) or error})") from None
    return total, ((number, item) for number, events in _lines(path) for item in events)


def _lines(path: Path) -> Iterator[tuple[int, list]]:
    """JSON lines: each non-blank line's number and the events on it (an unreadable line is one)."""
    with path.open(encoding="utf-8-sig", newline="") as stream:
        for number, line in enumerate(stream, start=1):
            if not line.strip():
                continue
            try:
                document = json.loads(line)
            except (ValueError, RecursionError) as error:
                yield number, [Unreadable(f"not valid JSON: {error}")]
                continue
            try:
                yield number, _events_of(document)
            except ValueError as error:
                yield number, [Unreadable(str(error))]


def _chunks(items: Iterable, size: int) -> Iterator[list]:
    chunk = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _wait_seconds(reply, stalls: int) -> float:
    if reply.status == 429:
        return float(reply.headers.get("Retry-After", 1))
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
            positions = list(enumerate(chunk))
            readable = [(position, item) for position, (_, item) in positions if not isinstance(item, Unreadable)]
            delivered = self._deliver(readable, summary)
            for position, (line, item) in positions:
                if isinstance(item, Unreadable):
                    summary.add(line, {"outcome": outcomes.REJECTED, "reason": item.reason})
                elif position in delivered:
                    summary.add(line, delivered[position])
            if self.on_progress:
                self.on_progress(summary.count)
            if summary.stopped:
                break
        return summary

    def _deliver(self, pending: list[tuple[int, Any]], summary: Summary) -> dict[int, dict]:
        """Each event's result by its position in the chunk (several events may share a line)."""
        final: dict[int, dict] = {}
        stalls = 0
        while pending:
            deadline = time.monotonic() + self.bridge.settings.deadline_seconds
            reply = self.bridge.deliver_events([item for _, item in pending], deadline)
            if self.on_requests and reply.body.get("requests"):
                self.on_requests(reply.body["requests"])
            unfinished = []
            for (position, item), result in zip(pending, reply.body["events"]):
                final[position] = result
                if result["outcome"] == outcomes.MISCONFIGURED:
                    summary.stopped = result["reason"]
                elif result["outcome"] in outcomes.NEEDS_RETRY:
                    unfinished.append((position, item))
            if summary.stopped or not unfinished:
                break
            stalls = 0 if len(unfinished) < len(pending) else stalls + 1
            if stalls > self.retries:
                break
            time.sleep(_wait_seconds(reply, stalls))
            pending = unfinished
        return final
