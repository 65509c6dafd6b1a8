"""Structured JSON log lines on stdout, shaped for Cloud Logging, through the standard library's ``logging``.

Each entry is one JSON object, written in one ``write``, with ``severity``, ``message`` and ``time``
(RFC 3339, the only form Cloud Logging reads as the entry's time), and the request's trace. One write
per entry matters: with ``LOG_EXECUTION_ID=true`` functions-framework swaps ``sys.stdout`` during a
request for a wrapper that parses each write as one JSON document and adds the execution id, so the
handler writes to ``sys.stdout`` as it is at each entry. The ``segment_novu`` logger is an ordinary
one (add handlers, change its level); it does not propagate, so a root handler never doubles a line.

Callers pass identifiers, types, outcomes and timings as fields, never payloads or secrets: this module
has no way to tell a secret from an id, so the rule lives at the call sites and in the log-scanning tests.
"""

from __future__ import annotations

import atexit
import contextvars
import logging
import re
import sys
import time

from segment_novu import codec

LOGGER_NAME = "segment_novu"
_SEVERITIES = {
    logging.DEBUG: "DEBUG", logging.INFO: "INFO", logging.WARNING: "WARNING", logging.ERROR: "ERROR",
    logging.CRITICAL: "CRITICAL",
}
_LEVELS = {name: level for level, name in _SEVERITIES.items()}

_trace = contextvars.ContextVar("trace", default=None)

_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")
_CLOUD_TRACE = re.compile(r"^([0-9a-fA-F]{32})(?:/|$)")


def rfc3339(timestamp: float) -> str:
    """UTC with microseconds and a ``Z``: what Cloud Logging reads from a ``time`` field."""
    whole = int(timestamp)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{int((timestamp - whole) * 1e6):06d}Z"


class JsonFormatter(logging.Formatter):
    """One Cloud Logging entry per record; ``extra={"fields": {...}}`` adds fields (None ones left out)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "severity": _SEVERITIES.get(record.levelno, record.levelname),
            "message": record.getMessage(),
            "time": rfc3339(record.created),
        }
        fields = getattr(record, "fields", None)
        if fields:
            entry.update({key: value for key, value in fields.items() if value is not None})
        trace = _trace.get()
        if trace:
            entry["logging.googleapis.com/trace"] = trace
        # ASCII whatever stdout's encoding: a character it cannot encode would fail the request's answer.
        return codec.dumps(entry, default=str, ensure_ascii=True).decode("ascii")


# While requests are in flight, entries stay in stdout's buffer and leave together when the last one
# ends, or once the oldest has waited HOLD_SECONDS: a flush per request is a system call per request
# (bench/ANALYSIS.md has the figure). Each entry is still its own write, made in its request's context,
# so the execution-id wrapper (which flushes each entry itself) sees them one by one.
HOLD_SECONDS = 0.1


class StdoutHandler(logging.StreamHandler):
    """Writes to ``sys.stdout`` as it is at each entry, and flushes as ``HOLD_SECONDS`` says."""

    def __init__(self):
        super().__init__()
        self.in_flight = 0
        self.unflushed_since: float | None = None

    @property
    def stream(self):
        return sys.stdout

    @stream.setter
    def stream(self, _value) -> None:
        """Always the current ``sys.stdout``: nothing to keep."""

    def flush(self) -> None:
        """After each entry, under the handler's lock."""
        now = time.monotonic()
        if self.unflushed_since is None:
            self.unflushed_since = now
        if self.in_flight == 0 or now - self.unflushed_since >= HOLD_SECONDS:
            self._flush_now()

    def request_started(self) -> None:
        with self.lock:
            self.in_flight += 1

    def request_ended(self) -> None:
        with self.lock:
            self.in_flight -= 1
            if self.unflushed_since is not None and (
                self.in_flight == 0 or time.monotonic() - self.unflushed_since >= HOLD_SECONDS
            ):
                self._flush_now()

    def flush_held(self) -> None:
        with self.lock:
            if self.unflushed_since is not None:
                self._flush_now()

    def _flush_now(self) -> None:
        self.unflushed_since = None
        stream = sys.stdout
        if stream is not None and hasattr(stream, "flush"):
            stream.flush()


_handler = StdoutHandler()
_handler.setFormatter(JsonFormatter())
logger = logging.getLogger(LOGGER_NAME)
logger.addHandler(_handler)
logger.setLevel(logging.INFO)
logger.propagate = False
atexit.register(_handler.flush_held)


def configure(level: str) -> None:
    """Sets the level, and enables the logger again: ``logging.config.dictConfig`` (which
    functions-framework runs under ``LOG_EXECUTION_ID``) disables every logger that already exists."""
    logger.setLevel(_LEVELS.get(level.upper(), logging.INFO))
    logger.disabled = False


def trace_from_headers(headers, project: str | None) -> str | None:
    """Cloud Logging's trace field from ``traceparent`` or ``X-Cloud-Trace-Context``."""
    if not project:
        return None
    match = _TRACEPARENT.match(headers.get("traceparent", "").strip().lower())
    if not match:
        match = _CLOUD_TRACE.match(headers.get("X-Cloud-Trace-Context", "").strip())
    if not match:
        return None
    return f"projects/{project}/traces/{match.group(1).lower()}"


def bind_trace(trace: str | None) -> contextvars.Token:
    return _trace.set(trace)


def reset_trace(token: contextvars.Token) -> None:
    _trace.reset(token)


class request_scope:
    """A request in flight: its entries may wait in stdout's buffer until the last request ends."""

    __slots__ = ()

    def __enter__(self) -> None:
        _handler.request_started()

    def __exit__(self, *exception) -> None:
        _handler.request_ended()


def log(severity: str, message: str, **fields) -> None:
    level = _LEVELS[severity]
    if logger.isEnabledFor(level):
        logger.log(level, message, extra={"fields": fields})


def info(message: str, **fields) -> None:
    log("INFO", message, **fields)


def warning(message: str, **fields) -> None:
    log("WARNING", message, **fields)


def error(message: str, **fields) -> None:
    log("ERROR", message, **fields)
