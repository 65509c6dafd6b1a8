"""The Novu stand-in (tests/novu_standin.py) served in a process of its own, for the benchmark.

Run as ``python bench/novu_process.py [--latency SECONDS]``: it binds 127.0.0.1 on a free port, prints
one line ``READY http://127.0.0.1:PORT`` on stdout, and serves until its stdin closes (the parent
died or closed the pipe) or it receives SIGTERM/SIGINT.

Its own process keeps the stand-in's GIL and CPU away from the load generator. The benchmark talks
to it through three extra paths, answered before the stand-in sees the request:

- ``GET /_bench/reset?latency=0.05`` forgets everything received and sets the answer latency;
- ``GET /_bench/stats`` answers ``{"requests", "triggers", "bulkCalls", "singleCalls",
  "transactions": {transactionId: count}, "subscribers": {subscriberId: count}}``
  (triggers counted one per event, single or bulk);
- ``GET /_bench/ping`` answers ``{"ok": true}``;
- ``GET /_bench/meter?trigger_rate=60&config_rate=20`` meters calls from now on as Novu's rate limits do
  (``NovuStandIn.enforce_rate_limits``: 429 with Retry-After past the bucket);
- ``GET /_bench/count`` answers ``{"accepted", "acceptedTwice", "rateLimited"}`` cheaply, while load runs.

Unlike the tests' stand-in, it disables Nagle's algorithm like Node.js (Novu's server) does; see
``BenchStandIn``. ``--nagle`` restores the tests' behaviour.

Everything else is answered by ``NovuStandIn`` exactly as in the tests (after ``latency``).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections import Counter
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

PROJECT_ROOT = Path(__file__).resolve().parent.parent
if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))

from tests.novu_standin import NovuStandIn  # noqa: E402

CONTROL_PREFIX = "/_bench/"


class BenchStandIn(NovuStandIn):
    """NovuStandIn plus the control paths above, and TCP_NODELAY on its connections.

    http.server writes the status line and headers in one send and the body in a second one. With
    Nagle's algorithm on (Python's default) the second send waits for the client's delayed ACK, up to
    40 ms on Linux, on every answer over a kept-alive connection, but not on a fresh connection (Linux
    ACKs at once at first). That would charge a pooled client 40 ms per call that real Novu does not:
    Novu is a Node.js server, and Node's HTTP server disables Nagle by default (``noDelay: true``
    since Node 18, nodejs/node#42163). ``nagle=True`` keeps the stand-in's own behaviour.
    """

    def __init__(self, *, nagle: bool = False, **options):
        super().__init__(**options)
        # StreamRequestHandler.setup() sets TCP_NODELAY when this is true.
        self.server.RequestHandlerClass.disable_nagle_algorithm = not nagle

    def _serve(self, handler) -> None:
        if handler.path.startswith(CONTROL_PREFIX):
            self._control(handler)
            return
        super()._serve(handler)

    def _control(self, handler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        if length:
            handler.rfile.read(length)
        parts = urlsplit(handler.path)
        query = parse_qs(parts.query)
        action = parts.path[len(CONTROL_PREFIX):]
        if action == "reset":
            self.reset()
            if "latency" in query:
                self.latency = max(0.0, float(query["latency"][0]))
            answer = {"ok": True, "latency": self.latency}
        elif action == "stats":
            answer = self.stats()
        elif action == "ping":
            answer = {"ok": True, "latency": self.latency}
        elif action == "meter":
            self.enforce_rate_limits(float(query["trigger_rate"][0]), float(query["config_rate"][0]))
            answer = {"ok": True}
        elif action == "count":
            with self._lock:
                counts = list(self.accepted.values())
                answer = {"accepted": sum(counts), "acceptedTwice": sum(1 for count in counts if count > 1),
                          "rateLimited": self.rate_limited}
        else:
            answer = {"message": f"unknown control path {parts.path}"}
        payload = json.dumps(answer).encode()
        handler.send_response(200 if "message" not in answer else 404)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)

    def stats(self) -> dict:
        triggers = self.triggered()
        return {
            "requests": self.count,
            "triggers": len(triggers),
            "accepted": sum(getattr(self, "accepted", {}).values()),  # processed (newer stand-ins only)
            "bulkCalls": len(self.calls("POST", "/v1/events/trigger/bulk")),
            "singleCalls": len(self.calls("POST", "/v1/events/trigger")),
            "transactions": dict(Counter(t.get("transactionId") for t in triggers if t.get("transactionId"))),
            "subscribers": dict(Counter(_subscriber(t) for t in triggers)),
        }


def _subscriber(trigger: dict) -> str | None:
    to = trigger.get("to")
    if isinstance(to, dict):
        return to.get("subscriberId")
    if isinstance(to, str):
        return to
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    parser.add_argument("--workflows", default="",
                        help="comma-separated workflow identifiers Novu has (GET /v2/workflows lists them; "
                             "a trigger of another is refused 422 workflow_not_found); empty: accept any")
    parser.add_argument("--nagle", action="store_true",
                        help="keep Nagle's algorithm on, as tests/novu_standin.py does (adds delayed-ACK stalls)")
    arguments = parser.parse_args()

    workflows = {name.strip() for name in arguments.workflows.split(",") if name.strip()} or None
    standin = BenchStandIn(latency=arguments.latency, record=True, nagle=arguments.nagle, workflows=workflows)
    # A deep listen() backlog whatever the stand-in's own default: naive clients open a connection per
    # event, and a dropped SYN costs a 1 s retry. listen() again on a listening socket resets it (Linux).
    standin.server.socket.listen(1024)
    standin.start()
    stop = threading.Event()

    def on_signal(*_):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    def watch_stdin():
        # The parent holds our stdin open; EOF means it is gone: stop rather than linger.
        try:
            sys.stdin.read()
        finally:
            stop.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    print(f"READY {standin.url}", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        standin.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
