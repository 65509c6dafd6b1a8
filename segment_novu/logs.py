"""Structured JSON log lines on stdout, shaped for Cloud Logging, through the standard library's ``logging``.

Each entry is one JSON object on one line, with ``severity``, ``message`` and ``time`` (RFC 3339, the
only form Cloud Logging reads as the entry's time), and the request's trace. With ``LOG_EXECUTION_ID=true``
functions-framework swaps ``sys.stdout`` during a request for a wrapper that parses each write as one
JSON document and adds the execution id, so the handler writes to ``sys.stdout`` as it is at each entry,
and to that wrapper one entry per write. The ``segment_novu`` logger is an ordinary
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
import threading
import time

from segment_novu import codec

LOGGER_NAME = "segment_novu"
_SEVERITIES = {
    logging.DEBUG: "DEBUG", logging.INFO: "INFO", logging.WARNING: "WARNING", logging.ERROR: "ERROR",
    logging.CRITICAL: "CRITICAL",
}
_LEVELS = {name: level for level, name in _SEVERITIES.items()}

_trace: contextvars.ContextVar[str | None] = contextvars.ContextVar("trace", default=None)

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


# A request's entries are gathered while it runs (from any thread in its context) and leave when it
# ends, together with those of every request that ended while others were in flight: one write when
# the last request in flight ends, or once the oldest has waited HOLD_SECONDS, so no entry waits longer.
# No lock is taken per entry (every write is a system call where PYTHONUNBUFFERED is set, as on Cloud Run).
# functions-framework's execution-id wrapper (LOG_EXECUTION_ID=true) reads each write as one entry,
# so while it is sys.stdout every entry is written alone, as it is logged.
HOLD_SECONDS = 0.1
_gathering: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar("gathering", default=None)


def _one_entry_per_write(stream) -> bool:
    return type(stream).__module__.startswith("functions_framework")


class StdoutHandler(logging.Handler):
    """Writes each formatted entry to ``sys.stdout`` as it is when the entry leaves, as above."""

    lock: threading.RLock  # made by Handler.__init__

    def __init__(self):
        super().__init__()
        self.in_flight = 0
        self.held: list[str] = []
        self.held_since = 0.0

    def handle(self, record: logging.LogRecord) -> bool:
        """As ``Handler.handle``, but an entry gathered for its request takes no lock."""
        if not self.filter(record):
            return False
        try:
            text = self.format(record) + "\n"
        except Exception:
            self.handleError(record)
            return True
        gathered = _gathering.get()
        if gathered is not None and not _one_entry_per_write(sys.stdout):
            gathered.append(text)
            return True
        with self.lock:
            try:
                self._write_held()
                _write(sys.stdout, text)
            except Exception:
                self.handleError(record)
        return True

    def emit(self, record: logging.LogRecord) -> None:
        self.handle(record)

    def request_started(self) -> None:
        with self.lock:
            self.in_flight += 1

    def request_ended(self, lines: list[str]) -> None:
        with self.lock:
            self.in_flight -= 1
            if lines:
                if not self.held:
                    self.held_since = time.monotonic()
                self.held.extend(lines)
            if self.held and (self.in_flight == 0 or time.monotonic() - self.held_since >= HOLD_SECONDS):
                self._write_held()

    def flush(self) -> None:
        with self.lock:
            self._write_held()

    def _write_held(self) -> None:
        if self.held:
            held, self.held = self.held, []
            stream = sys.stdout
            for text in held if _one_entry_per_write(stream) else ["".join(held)]:
                _write(stream, text)


def _write(stream, text: str) -> None:
    if stream is not None:
        stream.write(text)
        stream.flush()


_handler = StdoutHandler()
_handler.setFormatter(JsonFormatter())
logger = logging.getLogger(LOGGER_NAME)
logger.addHandler(_handler)
logger.setLevel(logging.INFO)
logger.propagate = False
atexit.register(_handler.flush)


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
    """A request in flight: what it logs leaves when it ends, with what other requests held."""

    __slots__ = ("lines", "token")

    def __enter__(self) -> None:
        self.lines: list[str] = []
        self.token = _gathering.set(self.lines)
        _handler.request_started()

    def __exit__(self, *exception) -> None:
        _gathering.reset(self.token)
        _handler.request_ended(self.lines)


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
