"""Structured JSON log lines on stdout, shaped for Cloud Logging.

One JSON object per line with ``severity`` and ``message``; Cloud Logging parses it. Callers pass
identifiers, types, outcomes and timings as fields, never payloads or secrets: this module has no
way to tell a secret from an id, so the rule lives at the call sites and in the log-scanning tests.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import re
import sys
import threading
import time

_SEVERITIES = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_rank = {name: rank for rank, name in enumerate(_SEVERITIES)}
_minimum = _rank["INFO"]
_write_lock = threading.Lock()
_ENCODER = json.JSONEncoder(default=str, separators=(",", ":"))

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
    line = _ENCODER.encode(entry) + "\n"
    gathered = _gathering.get()
    if gathered is not None:
        gathered.append(line)
    else:
        _write(line)


@contextlib.contextmanager
def gathered():
    """Lines logged inside the block (from any thread running in its context) are written together
    when it ends: one write per request instead of one per line, each a system call that hands the
    GIL to another thread. Every line keeps the time it was logged at."""
    lines: list[str] = []
    token = _gathering.set(lines)
    try:
        yield
    finally:
        _gathering.reset(token)
        if lines:
            _write("".join(lines))


def _write(text: str) -> None:
    with _write_lock:
        sys.stdout.write(text)
        sys.stdout.flush()


def info(message: str, **fields) -> None:
    log("INFO", message, **fields)


def warning(message: str, **fields) -> None:
    log("WARNING", message, **fields)


def error(message: str, **fields) -> None:
    log("ERROR", message, **fields)
