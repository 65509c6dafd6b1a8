"""Structured JSON log lines on stdout, shaped for Cloud Logging.

One JSON object per line with ``severity`` and ``message``; Cloud Logging parses it. Callers pass
identifiers, types, outcomes and timings as fields, never payloads or secrets: this module has no
way to tell a secret from an id, so the rule lives at the call sites and in the log-scanning tests.
"""

from __future__ import annotations

import atexit
import contextvars
import re
import sys
import threading
import time

from segment_novu import codec

_SEVERITIES = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_rank = {name: rank for rank, name in enumerate(_SEVERITIES)}
_minimum = _rank["INFO"]
_write_lock = threading.Lock()

_trace = contextvars.ContextVar("trace", default=None)
_gathering = contextvars.ContextVar("gathering", default=None)

_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")
_CLOUD_TRACE = re.compile(r"^([0-9a-fA-F]{32})(?:/|$)")


def set_level(name: str) -> None:
    global _minimum
    _minimum = _rank.get(name.upper(), _rank["INFO"])


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


def log(severity: str, message: str, **fields) -> None:
    if _rank[severity] < _minimum:
        return
    entry = {"severity": severity, "message": message, "time": time.time()}
    entry.update({key: value for key, value in fields.items() if value is not None})
    trace = _trace.get()
    if trace:
        entry["logging.googleapis.com/trace"] = trace
    # ASCII whatever stdout's encoding: a character it cannot encode would fail the request's answer.
    line = codec.dumps(entry, default=str, ensure_ascii=True).decode("ascii") + "\n"
    gathered = _gathering.get()
    if gathered is not None:
        gathered.append(line)
    else:
        _write(line)


# A finished request's lines wait while other requests are in flight and leave with theirs: under load
# one write per request was a system call per request, each handing the GIL to another thread. They
# are written when the last request in flight ends, so nothing waits while the instance is idle, or
# once the oldest has waited HOLD_SECONDS.
HOLD_SECONDS = 0.1
_held: list[str] = []
_held_since = 0.0
_in_flight = 0
_held_lock = threading.Lock()


def gathered() -> _Gathered:
    """A request's block: lines logged inside it (from any thread running in its context) are written
    together after it ends, in one write with those of requests that ended alongside it. Every line
    keeps the time it was logged at."""
    return _Gathered()


class _Gathered:
    __slots__ = ("lines", "token")

    def __enter__(self) -> None:
        global _in_flight
        self.lines: list[str] = []
        self.token = _gathering.set(self.lines)
        with _held_lock:
            _in_flight += 1

    def __exit__(self, *exception) -> None:
        global _in_flight, _held_since
        _gathering.reset(self.token)
        now = time.monotonic()
        with _held_lock:
            _in_flight -= 1
            if self.lines:
                if not _held:
                    _held_since = now
                _held.extend(self.lines)
            due = bool(_held) and (_in_flight == 0 or now - _held_since >= HOLD_SECONDS)
        if due:
            flush()


def flush() -> None:
    """Writes the held lines now (also at exit)."""
    with _write_lock:
        with _held_lock:
            text = "".join(_held)
            _held.clear()
        if text:
            _emit(text)


atexit.register(flush)


def _write(text: str) -> None:
    with _write_lock:
        _emit(text)


def _emit(text: str) -> None:
    """Writes ``text`` in one write; the caller holds _write_lock."""
    sys.stdout.write(text)
    sys.stdout.flush()


def info(message: str, **fields) -> None:
    log("INFO", message, **fields)


def warning(message: str, **fields) -> None:
    log("WARNING", message, **fields)


def error(message: str, **fields) -> None:
    log("ERROR", message, **fields)
