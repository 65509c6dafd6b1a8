"""``scripts/inbox-demo`` as a user runs it: the ports asked for, exactly two lines on stdout, a real
delivery into the sandbox, and everything stopped with it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
from pathlib import Path

import pytest
import requests

PROJECT_ROOT = Path(__file__).resolve().parent.parent
START_SECONDS = 300  # the first start may install the page's npm packages and build its bundle


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def refused(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def test_the_demo_uses_the_ports_asked_for_prints_two_lines_and_stops_everything(tmp_path):
    function_port, inbox_port = free_port(), free_port()
    log = (tmp_path / "demo.log").open("wb")
    process = subprocess.Popen(["bash", str(PROJECT_ROOT / "scripts" / "inbox-demo")], cwd=PROJECT_ROOT,
                               env={**os.environ, "FUNCTION_PORT": str(function_port), "INBOX_PORT": str(inbox_port)},
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log, start_new_session=True)
    lines: list[bytes] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(process.stdout.readline, b"")), daemon=True)
    reader.start()
    try:
        for _ in range(START_SECONDS * 10):
            if len(lines) >= 2 or process.poll() is not None:
                break
            threading.Event().wait(0.1)
        assert lines[:2] == [f"function: http://127.0.0.1:{function_port}\n".encode(),
                             f"inbox: http://127.0.0.1:{inbox_port}/\n".encode()], (tmp_path / "demo.log").read_text()
        answer = requests.post(f"http://127.0.0.1:{function_port}", timeout=15, json={
            "type": "track", "event": "Order Completed", "userId": "demo-user", "messageId": "demo-1",
            "properties": {"order_id": "o-1", "total": 1, "currency": "EUR"}})
        assert answer.status_code == 200
        assert answer.json()["events"][0] == {
            "index": 0, "messageId": "demo-1", "type": "track", "outcome": "delivered", "reason": "triggered",
            "workflows": ["order-completed"], "novuStatus": 201}
        page = requests.get(f"http://127.0.0.1:{inbox_port}/inbox-config", params={"subscriberId": "demo-user"},
                            timeout=5)
        assert page.status_code == 200 and len(page.json()["subscriberHash"]) == 64
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            status = process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            raise
        log.close()
    reader.join(5)
    assert status == 0
    assert len(lines) == 2  # nothing else on stdout, stopping included
    assert refused(function_port) and refused(inbox_port)
    with pytest.raises(ProcessLookupError):  # no process left in the demo's session (sandbox, function, page)
        os.killpg(process.pid, 0)
    assert "event delivered" in (tmp_path / "demo.log").read_text()  # the function's log lines go to stderr
